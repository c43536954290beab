// The bookkeeping of the compress-to-target search, kept pure so that tests can pin it down:
// the Pareto front of evaluated candidates (smaller on disk, more accurate, faster), the choice
// under a budget, and which candidates survive a round of successive halving.

/** One evaluated candidate, as the search's bookkeeping sees it. */
export interface Evaluated {
  id: string;
  /** bytes of all the model's files on disk */
  bytes: number;
  /** the metric the budget is on (higher is better), measured on the rows named by `users` */
  metric: number;
  /** users the metric was measured on (successive halving compares like with like) */
  users: number;
  /** p50 latency / the original's at the latency batch, when measured */
  latencyRatio?: number;
  /** standard error of (metric - the original's metric) on these users, paired per user */
  se?: number;
}

/** Does a dominate b? No worse in size and metric (and latency when both have it), better in one. */
export function dominates(a: Evaluated, b: Evaluated): boolean {
  const la = a.latencyRatio;
  const lb = b.latencyRatio;
  const withLatency = la !== undefined && lb !== undefined;
  const noWorse = a.bytes <= b.bytes && a.metric >= b.metric && (!withLatency || la <= lb);
  const better = a.bytes < b.bytes || a.metric > b.metric || (withLatency && la < lb);
  return noWorse && better;
}

/**
 * The non-dominated candidates, smallest first. Candidates equal in every figure are all kept
 * (the first by id wins the tie in ordering), so a caller never loses a recipe silently.
 */
export function paretoFront<T extends Evaluated>(points: readonly T[]): T[] {
  const front = points.filter((p) => !points.some((q) => q !== p && dominates(q, p)));
  return front.sort((a, b) => a.bytes - b.bytes || b.metric - a.metric || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Layers of non-dominated sorting: layer 0 is the front, layer 1 the front of the rest, ... */
export function paretoLayers<T extends Evaluated>(points: readonly T[]): T[][] {
  const layers: T[][] = [];
  let rest = points.slice();
  while (rest.length > 0) {
    const front = paretoFront(rest);
    layers.push(front);
    const inFront = new Set(front);
    rest = rest.filter((p) => !inFront.has(p));
  }
  return layers;
}

export interface Budget {
  /** keep metric >= baseline * (1 - maxDrop) (a relative drop: 0.01 keeps 99%) */
  maxDrop?: number;
  /** instead: original bytes / bytes >= targetRatio, the most accurate such candidate */
  targetRatio?: number;
  /** exclude candidates whose latency ratio exceeds this (candidates without a figure are kept) */
  maxLatencyRatio?: number;
  /**
   * With maxDrop: a candidate qualifies when metric - confidence x se stays above the floor, so
   * that the best of many noisy measurements is not taken at face value. Default 0 (face value).
   */
  confidence?: number;
}

export interface Choice<T> {
  chosen: T;
  /** false: nothing met the budget and `chosen` is the best effort */
  withinBudget: boolean;
  /** why this one, in a sentence */
  reason: string;
}

/**
 * The answer under a budget. With maxDrop: the smallest candidate whose metric keeps the share
 * asked; with targetRatio: the most accurate candidate at least that much smaller; with
 * maxLatencyRatio, among the candidates that fast only. When none qualifies, the best effort:
 * under the latency cap, the most accurate smaller-than-original one for maxDrop (closest to the
 * budget), the smallest one for targetRatio; when no candidate is that fast, the fastest of those
 * that meet the rest of the budget, else the fastest.
 */
export function chooseCandidate<T extends Evaluated>(points: readonly T[], baseline: { bytes: number; metric: number }, budget: Budget): Choice<T> {
  if (points.length === 0) throw new Error('chooseCandidate: no candidates');
  const cap = budget.maxLatencyRatio;
  const fast = points.filter((p) => cap === undefined || p.latencyRatio === undefined || p.latencyRatio <= cap);
  const inside = chooseUncapped(fast, baseline, budget);
  if (inside?.withinBudget || cap === undefined) return inside!;
  const capText = `${cap}x the original's latency`;
  // the cap is kept while any candidate meets it: the best effort among those
  if (inside) return { ...inside, reason: `${inside.reason}; candidates slower than ${capText} left out` };
  // no candidate that fast: the fastest that meets the rest of the budget, else the fastest
  const speed = (p: T) => p.latencyRatio ?? Infinity;
  const byLatency = (a: T, b: T) => speed(a) - speed(b) || a.bytes - b.bytes;
  const met = points.filter((p) => qualifies(p, baseline, budget)).sort(byLatency);
  if (met.length > 0) {
    return { chosen: met[0], withinBudget: false, reason: `no candidate runs within ${capText}: the fastest of those that meet the rest of the budget (${speed(met[0]).toFixed(2)}x)` };
  }
  const f = points.slice().sort(byLatency)[0];
  return { chosen: f, withinBudget: false, reason: `no candidate runs within ${capText} and none meets the rest of the budget: the fastest one found (${speed(f).toFixed(2)}x)` };
}

/** Whether a candidate meets the size / metric part of the budget (at face value). */
function qualifies(p: Evaluated, baseline: { bytes: number; metric: number }, budget: Budget): boolean {
  if (budget.targetRatio !== undefined) return baseline.bytes / p.bytes >= budget.targetRatio;
  return keepsFloor(p.metric, baseline.metric * (1 - (budget.maxDrop ?? 0.01)));
}

/**
 * metric >= floor, with a relative 1e-9 of slack: at --max-drop 0 a model whose metric equals the
 * original's up to float rounding (0.99999999 of it) keeps it.
 */
function keepsFloor(metric: number, floor: number): boolean {
  return metric >= floor - 1e-9 * Math.abs(floor);
}

/** The choice by size and metric alone among `pool` (undefined when empty). */
function chooseUncapped<T extends Evaluated>(pool: readonly T[], baseline: { bytes: number; metric: number }, budget: Budget): Choice<T> | undefined {
  if (pool.length === 0) return undefined;
  const bySize = (a: T, b: T) => a.bytes - b.bytes || b.metric - a.metric;
  const byMetric = (a: T, b: T) => b.metric - a.metric || a.bytes - b.bytes;
  if (budget.targetRatio !== undefined) {
    const ok = pool.filter((p) => baseline.bytes / p.bytes >= budget.targetRatio!).sort(byMetric);
    if (ok.length > 0) return { chosen: ok[0], withinBudget: true, reason: `the most accurate candidate at least ${budget.targetRatio}x smaller` };
    const best = pool.slice().sort(bySize)[0];
    return { chosen: best, withinBudget: false, reason: `no candidate is ${budget.targetRatio}x smaller: the smallest one found` };
  }
  const maxDrop = budget.maxDrop ?? 0.01;
  const floor = baseline.metric * (1 - maxDrop);
  const z = budget.confidence ?? 0;
  const ok = pool.filter((p) => keepsFloor(p.metric - z * (p.se ?? 0), floor)).sort(bySize);
  const margin = z > 0 ? ` with ${z} standard error${z === 1 ? '' : 's'} of margin` : '';
  const share = `${((1 - maxDrop) * 100).toFixed(1)}%`;
  if (ok.length > 0) return { chosen: ok[0], withinBudget: true, reason: `the smallest candidate that keeps >= ${share} of the original's metric${margin}` };
  if (z > 0) {
    const face = pool.filter((p) => keepsFloor(p.metric, floor)).sort(bySize);
    if (face.length > 0) {
      return { chosen: face[0], withinBudget: true, reason: `the smallest candidate that keeps >= ${share} of the original's metric at face value (none did${margin}: the data cannot tell a drop this small from noise)` };
    }
  }
  const best = pool.slice().sort(byMetric)[0];
  return { chosen: best, withinBudget: false, reason: `no candidate keeps ${((1 - maxDrop) * 100).toFixed(1)}% of the original's metric: the most accurate one found` };
}

/**
 * One round of successive halving over candidates measured on the same users: keep `keep` of
 * them, whole Pareto layers first; inside the layer that does not fit whole, those nearest the
 * budget's floor of the metric first (they decide the choice), then the smaller ones.
 */
export function survivors<T extends Evaluated>(points: readonly T[], keep: number, floor: number): T[] {
  if (keep >= points.length) return points.slice();
  const out: T[] = [];
  for (const layer of paretoLayers(points)) {
    if (out.length + layer.length <= keep) {
      out.push(...layer);
      continue;
    }
    const room = keep - out.length;
    const ranked = layer.slice().sort((a, b) => Math.abs(a.metric - floor) - Math.abs(b.metric - floor) || a.bytes - b.bytes);
    out.push(...ranked.slice(0, room));
    break;
  }
  return out;
}
