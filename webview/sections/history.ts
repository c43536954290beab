// Run history of the model: pick runs, see their before/after tables side by side and one chart
// of all of them (size against NDCG kept; a compress-to-target run adds its whole front).

import { html, nothing, type TemplateResult } from 'lit';
import type { RunRecord } from '../../src/shared/protocol.js';
import { fileName, formatBytes, formatCount, formatPct, localTime } from '../../src/shared/format.js';
import { update, type PanelState } from '../store.js';
import { interactiveScatter, scatterChart, type ScatterPoint } from '../scatter.js';
import { compareTable, latencyRow, type CompareRow } from './comparison.js';
import { cssProps, pngButton, sectionView } from '../ui.js';

/** Tableau 10: distinct series colours that read in light and dark themes. */
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#b07aa1', '#edc948', '#76b7b2', '#ff9da7', '#9c755f', '#bab0ac'];
const DEFAULT_PICKED = 4;

function picked(s: PanelState, runs: RunRecord[]): RunRecord[] {
  const ids = s.picked ?? runs.slice(-DEFAULT_PICKED).map((r) => r.id);
  return runs.filter((r) => ids.includes(r.id));
}

function toggle(s: PanelState, runs: RunRecord[], id: string): void {
  const ids = picked(s, runs).map((r) => r.id);
  update({ picked: ids.includes(id) ? ids.filter((x) => x !== id) : [...ids, id] });
}

function rows(r: RunRecord): CompareRow[] {
  const f4 = (x: number | null) => (x === null ? '–' : x.toFixed(4));
  // the order of the job's own before/after table
  const out: CompareRow[] = [];
  if (r.params) out.push({ name: 'Parameters', before: r.params.before, after: r.params.after, fmt: (x) => (x === null ? '–' : formatCount(x)), better: 'lower' });
  out.push({ name: 'Size on disk', before: r.bytes.before, after: r.bytes.after, fmt: formatBytes, better: 'lower' });
  if (r.gzipBytes) out.push({ name: 'gzip size', before: r.gzipBytes.before, after: r.gzipBytes.after, fmt: formatBytes, better: 'lower' });
  for (const l of r.latency ?? []) out.push(latencyRow(l));
  if (r.ndcg) out.push({ name: `NDCG@${r.k ?? ''}`, before: r.ndcg.before, after: r.ndcg.after, fmt: f4, better: 'higher' });
  if (r.hr) out.push({ name: `HR@${r.k ?? ''}`, before: r.hr.before, after: r.hr.after, fmt: f4, better: 'higher' });
  if (r.auc) out.push({ name: 'AUC', before: r.auc.before, after: r.auc.after, fmt: f4, better: 'higher' });
  if (r.accuracy) out.push({ name: 'Accuracy', before: r.accuracy.before, after: r.accuracy.after, fmt: f4, better: 'higher' });
  if (r.rmse) out.push({ name: 'RMSE', before: r.rmse.before, after: r.rmse.after, fmt: f4, better: 'lower' });
  return out;
}

/** The share of its metric a run's output kept (NDCG, else HR, AUC or accuracy) and that metric's name, when measured. */
function kept(r: RunRecord): { share: number; metric: string } | undefined {
  const [metric, m] =
    r.ndcg ? [`NDCG@${r.k ?? ''}`, r.ndcg]
    : r.hr ? [`HR@${r.k ?? ''}`, r.hr]
    : r.auc ? ['AUC', r.auc]
    : r.accuracy ? ['accuracy', r.accuracy]
    : ['', undefined];
  return m && m.before && m.after !== null ? { share: m.after / m.before, metric } : undefined;
}

function chart(runs: RunRecord[]): { element: HTMLElement; canvas: HTMLCanvasElement } | undefined {
  const pts: ScatterPoint[] = [];
  runs.forEach((r, i) => {
    const color = PALETTE[i % PALETTE.length];
    if (r.front?.length) for (const p of r.front) pts.push({ x: p.bytes, y: p.kept * 100, color, series: i, tip: `${r.title} (${localTime(r.startedAt)})\n${formatBytes(p.bytes)} · kept ${formatPct(p.kept)}\n${p.label}` });
    const k = kept(r);
    if (k !== undefined) pts.push({ x: r.bytes.after, y: k.share * 100, color, ring: true, series: r.front?.length ? undefined : i, tip: `${r.title} (${localTime(r.startedAt)}): output\n${formatBytes(r.bytes.after)} · kept ${formatPct(k.share)} of ${k.metric}` });
  });
  if (!pts.length) return undefined;
  const base = runs[0].bytes.before;
  pts.push({ x: base, y: 100, shape: 'cross', tip: `original · ${formatBytes(base)}` });
  const view = scatterChart({
    width: 720,
    height: 300,
    points: pts,
    logX: true,
    xCaption: 'size on disk (log scale)',
    yCaption: 'metric kept (%): NDCG, else HR, AUC, accuracy',
    xFormat: (v) => formatBytes(v).replace('.00', ''),
    // a narrow range (one run near 100%) needs a decimal, or its ticks repeat ("101%, 101%, 100%")
    yFormat: (v) => `${v.toFixed(ySpan(pts) < 4 ? 1 : 0)}%`,
    refY: 100,
    // the time first: a long title is cut at the legend's edge, and runs of one method differ by their time
    series: runs.map((r, i) => ({ name: `${localTime(r.startedAt).slice(5)} ${r.title}`, color: PALETTE[i % PALETTE.length] })),
  });
  return { element: interactiveScatter(view, (i) => pts[i].tip), canvas: view.canvas };
}

function runCard(r: RunRecord, i: number): TemplateResult {
  return html`<div class="run-card" data-run=${r.id}>
    <h3><span class="swatch" ${cssProps({ background: PALETTE[i % PALETTE.length] })}></span>${r.title}</h3>
    <p class="muted">${localTime(r.startedAt, true)} · ${r.seconds.toFixed(1)} s${r.backend ? ` · ${r.backend}` : ''}${r.dataset ? ` · on ${fileName(r.dataset)}` : ''}${r.outputs.length ? ` · → ${r.outputs.map(fileName).join(', ')}` : ''}</p>
    ${compareTable(rows(r))}
  </div>`;
}

export const historySection = {
  deps: (s: PanelState) => [s.history, s.picked],
  view(s: PanelState): TemplateResult | typeof nothing {
    const hist = s.history;
    if (!hist || !hist.runs.length) return nothing;
    const chosen = picked(s, hist.runs);
    const ch = chart(chosen);
    return sectionView(
      'history',
      `Run history (${hist.runs.length} run${hist.runs.length === 1 ? '' : 's'} of ${fileName(hist.model)})`,
      html`<div class="run-picks" role="group" aria-label="runs compared">
          ${hist.runs.map((r) => html`<label><input type="checkbox" .checked=${chosen.includes(r)} data-run=${r.id} @change=${() => toggle(s, hist.runs, r.id)}>${r.title} <span class="muted">${localTime(r.startedAt)}</span></label>`)}
        </div>
        ${ch ? ch.element : html`<p class="muted">No accuracy measured in the picked runs: nothing to chart.</p>`}
        <div class="run-cards">${chosen.map(runCard)}</div>`,
      ch ? [pngButton('history', () => ch.canvas)] : [],
    );
  },
};

/** The spread of the points' y values (the reference line at 100% included). */
function ySpan(pts: ScatterPoint[]): number {
  const ys = pts.map((p) => p.y).concat(100);
  return Math.max(...ys) - Math.min(...ys);
}
