// Number formatters shared by the panel (webview) and the extension: bytes, counts, shares.
// Pure functions, no DOM and no Node APIs.

/**
 * 1536 -> "1.50 KB" (binary units; two decimals under 10 units, one above), or with `short`
 * "1.5 KB" (one decimal under 10, none above: tables and tree labels).
 */
export function formatBytes(n: number | null | undefined, short = false): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = short ? (v < 10 ? 1 : 0) : v < 10 ? 2 : 1;
  return `${v.toFixed(digits)} ${units[i]}`;
}

/** 1234567 -> "1,234,567" */
export function formatCount(n: number | null | undefined): string {
  return n === null || n === undefined ? '–' : n.toLocaleString('en-US');
}

/** 0.1234 -> "12.3%" */
export function formatPct(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(digits)}%`;
}

/** Four significant digits; exponent form for very small or large magnitudes. */
export function formatNum(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(2) : x.toPrecision(4);
}

/** A size ratio: 10.7 -> "10.7x". */
export function formatRatio(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : `${x.toFixed(x >= 100 ? 0 : 1)}x`;
}

/** A duration in milliseconds: "0.054 ms". */
export function formatMs(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : `${x.toFixed(3)} ms`;
}

/** The last segment of a path (either separator). */
export function fileName(p: string): string {
  return p.split(/[\\/]/).pop() ?? p;
}

/** An after / before latency ratio of paired calls: "1.08x slower", "1.25x faster". */
export function formatPairedRatio(ratio: number): string {
  return ratio >= 1 ? `${ratio.toFixed(2)}x slower` : `${(1 / ratio).toFixed(2)}x faster`;
}

/** A heatmap cell's extent on one axis: "row 3" for one, "rows 0–7" for several; a cell past the matrix' edge ends at it. */
export function cellSpan(what: 'row' | 'col', first: number, perCell: number, total?: number): string {
  const last = Math.min(first + perCell, total ?? Number.POSITIVE_INFINITY) - 1;
  return last <= first ? `${what} ${first}` : `${what}s ${first}–${last}`;
}

/** One setting's value, short: lists of more than two names become "N names"; an object its own settings, one level deep. */
function shortValue(v: unknown, depth = 0): string {
  if (Array.isArray(v)) return v.length > 2 ? `${v.length} names` : v.map((x) => shortValue(x, depth)).join(', ');
  if (v !== null && typeof v === 'object') {
    if (depth > 0) return '{…}';
    return `{${Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => `${k} ${shortValue(x, depth + 1)}`)
      .join(', ')}}`;
  }
  return String(v);
}

/**
 * A job's settings for a one-line header: "energy 0.9, tensors embeddings", or for a recipe of
 * several steps "factorize (energy 0.8, tensors user_mlp) → quantize (dtype int4, tensors 3 names)".
 */
export function describeSettings(settings: Record<string, unknown>): string {
  const one = (st: Record<string, unknown>) =>
    Object.entries(st)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k} ${shortValue(v)}`)
      .join(', ');
  const steps = settings.steps;
  if (Array.isArray(steps) && steps.every((x) => x !== null && typeof x === 'object' && typeof (x as { method?: unknown }).method === 'string')) {
    return (steps as Array<{ method: string; settings?: Record<string, unknown> }>).map((x) => `${x.method} (${one(x.settings ?? {})})`).join(' → ');
  }
  return one(settings);
}

/** An ISO timestamp (UTC, as run records store it) in the viewer's local time: "2026-12-07 16:05" (with seconds: "16:05:09"). */
export function localTime(iso: string, seconds = false): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}${seconds ? `:${p(d.getSeconds())}` : ''}`;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${hm}`;
}
