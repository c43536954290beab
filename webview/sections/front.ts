// Compress to a target: the Pareto front of size on disk x share of the metric kept, latency as
// colour, the chosen point ringed, the original as a cross, trained candidates as diamonds.
// Clicking a point (or a table row) asks the host to write that model.

import { html, nothing, type TemplateResult } from 'lit';
import { frontRows, type PlanPointView, type PlanView } from '../../src/shared/protocol.js';
import { fileName, formatBytes, formatMs, formatPct, formatRatio } from '../../src/shared/format.js';
import { update, type PanelState } from '../store.js';
import { isStatic, post } from '../host.js';
import { interactiveScatter, scatterChart, type ScatterPoint } from '../scatter.js';
import { pngButton, sectionView } from '../ui.js';

export function metricName(p: Pick<PlanView, 'metric' | 'k'>): string {
  return p.metric === 'auc' ? 'AUC' : `${p.metric.toUpperCase()}@${p.k}`;
}

function recipeText(p: PlanPointView): string {
  return p.recipe.map((s) => `${s.method} ${JSON.stringify(s.settings)}`).join('; ');
}

/** "user_mlp_embedding/embeddings=r0.5+int8" -> "user_mlp=r0.5+int8": one line per unit. */
function shortLabel(p: PlanPointView): string {
  return p.label.replace(/(_embedding)?\/(embeddings|kernel)\b/g, '').replace(/_embedding\b/g, '');
}

/** A recipe step in one short line. */
function stepText(s: PlanPointView['recipe'][number]): string {
  const t = `${s.method} ${JSON.stringify(s.settings).replace(/"/g, '').replace(/(_embedding)?\/(embeddings|kernel)\b/g, '')}`;
  return t.length > 56 ? `${t.slice(0, 55)}…` : t;
}

function pointTip(plan: PlanView, p: PlanPointView): string {
  const m = metricName(plan);
  const lines = [
    `${formatRatio(p.ratio)} · ${formatBytes(p.bytes)} · ${p.origin}${p.id === plan.chosen.id ? ' · chosen' : ''}`,
    `${m} ${p.metrics[plan.metric]?.toFixed(4) ?? '–'} · kept ${formatPct(p.kept)}${plan.chooseBy === 'expected' ? ' expected' : ''}${p.keptSe ? ` (±${formatPct(p.keptSe)})` : ''}`,
  ];
  if (plan.chooseBy === 'expected' && p.keptMeasured !== undefined) lines.push(`measured: kept ${formatPct(p.keptMeasured)}`);
  if (p.heldOut) lines.push(`held out: kept ${formatPct(p.heldOut.kept)}`);
  if (p.latency) lines.push(`latency p50 ${formatMs(p.latency.p50Ms)} (${p.latency.ratio.toFixed(2)}x the original${p.latency.slower ? ', slower' : ''})`);
  lines.push(`recipe: ${shortLabel(p)}`, ...p.recipe.map((s) => `  ${stepText(s)}`));
  if (!isStatic) lines.push('click: write this model');
  return lines.join('\n');
}

function write(p: PlanPointView): void {
  if (isStatic) return;
  update({ writing: p.id });
  post({ type: 'writePlanPoint', id: p.id });
}

/** The front (and the chosen model) and the trained candidates off it, each once. */
function points(plan: PlanView): PlanPointView[] {
  const front = frontRows(plan);
  const seen = new Set(front.map((p) => p.id));
  return [...front, ...plan.trained.filter((p) => !seen.has(p.id))];
}

function chart(plan: PlanView): { element: HTMLElement; canvas: HTMLCanvasElement } {
  const ps = points(plan);
  const lat = ps.map((p) => p.latency?.ratio).filter((x): x is number => x !== undefined);
  const [lo, hi] = [Math.min(...lat, 1), Math.max(...lat, 1)];
  const color = (p: PlanPointView) => (p.latency ? (hi > lo ? (p.latency.ratio - lo) / (hi - lo) : 0.5) : undefined);
  const sp: ScatterPoint[] = ps.map((p) => ({
    x: p.bytes,
    y: p.kept * 100,
    color: color(p),
    shape: p.origin === 'finetuned' || p.origin === 'distilled' ? 'diamond' : 'circle',
    ring: p.id === plan.chosen.id,
    tip: pointTip(plan, p),
  }));
  // enough decimals that a narrow range (a 1% budget, candidates all near it) has distinct ticks
  const ys = [...sp.map((p) => p.y), 100, 100 * (1 - (plan.budget.maxDrop ?? 0))];
  const yRange = Math.max(...ys) - Math.min(...ys);
  const yDigits = yRange < 2 ? 2 : yRange < 10 ? 1 : 0;
  sp.push({ x: plan.baseline.bytes, y: 100, shape: 'cross', tip: `original · ${formatBytes(plan.baseline.bytes)} · ${metricName(plan)} ${plan.baseline.metrics[plan.metric]?.toFixed(4) ?? '–'}${plan.baseline.latencyP50Ms !== undefined ? ` · p50 ${formatMs(plan.baseline.latencyP50Ms)}` : ''}` });
  const view = scatterChart({
    width: 640,
    height: 340,
    points: sp,
    logX: true,
    xCaption: 'size on disk (log scale)',
    yCaption: `${metricName(plan)} kept (%)${plan.chooseBy === 'expected' ? ', expected' : ''}`,
    xFormat: (v) => formatBytes(v).replace('.00', ''),
    yFormat: (v) => `${v.toFixed(yDigits)}%`,
    refY: 100 * (1 - (plan.budget.maxDrop ?? 0)),
    colorLegend: lat.length ? { caption: 'latency / original', lo: `${lo.toFixed(2)}x`, hi: `${hi.toFixed(2)}x` } : undefined,
  });
  return { element: interactiveScatter(view, (i) => sp[i].tip, (i) => (i < ps.length ? write(ps[i]) : undefined)), canvas: view.canvas };
}

function table(s: PanelState, plan: PlanView): TemplateResult {
  const m = metricName(plan);
  const held = plan.front.some((p) => p.heldOut);
  const lat = plan.front.some((p) => p.latency);
  const expected = plan.chooseBy === 'expected';
  return html`<div class="scroll front-table"><table class="layers">
    <tr><th></th><th class="num">ratio</th><th class="num">size</th><th class="num">${m}</th><th class="num" title=${expected ? 'expected share kept: what the search chose by' : 'share of the original kept'}>${expected ? 'exp. kept' : 'kept'}</th>${expected ? html`<th class="num" title="the measured metric / the original's, same users">measured</th>` : nothing}${held ? html`<th class="num">held out</th>` : nothing}${lat ? html`<th class="num">latency</th>` : nothing}<th>kind</th></tr>
    ${frontRows(plan).map((p) => html`<tr class=${p.id === plan.chosen.id ? 'selected' : ''} data-point=${p.id} tabindex="0" title=${`${shortLabel(p)}\n${recipeText(p)}${isStatic ? '' : '\nclick: write this model'}`}
        @click=${() => write(p)} @keydown=${(e: KeyboardEvent) => (e.key === 'Enter' ? write(p) : undefined)}>
      <td>${p.id === plan.chosen.id ? '*' : ''}${s.writing === p.id ? '…' : ''}</td>
      <td class="num">${formatRatio(p.ratio)}</td><td class="num">${formatBytes(p.bytes)}</td>
      <td class="num">${p.metrics[plan.metric]?.toFixed(4) ?? '–'}</td><td class="num">${formatPct(p.kept)}</td>
      ${expected ? html`<td class="num">${p.keptMeasured !== undefined ? formatPct(p.keptMeasured) : '–'}</td>` : nothing}
      ${held ? html`<td class="num">${p.heldOut ? formatPct(p.heldOut.kept) : '–'}</td>` : nothing}
      ${lat ? html`<td class="num">${p.latency ? `${p.latency.ratio.toFixed(2)}x` : '–'}</td>` : nothing}
      <td>${p.origin}</td>
    </tr>`)}
  </table></div>`;
}

export const frontSection = {
  deps: (s: PanelState) => [s.plan, s.writing],
  view(s: PanelState): TemplateResult | typeof nothing {
    const plan = s.plan;
    if (!plan) return nothing;
    const c = plan.chosen;
    const ch = chart(plan);
    const budget = [
      plan.budget.maxDrop !== undefined ? `at most ${formatPct(plan.budget.maxDrop)} drop` : '',
      plan.budget.targetRatio !== undefined ? `${plan.budget.targetRatio}x smaller` : '',
      plan.budget.maxLatencyRatio !== undefined ? `latency ≤ ${plan.budget.maxLatencyRatio}x` : '',
    ].filter(Boolean).join(', ');
    return sectionView(
      'front',
      `Compress to target: ${metricName(plan)} against size`,
      html`${plan.atChance ? html`<p class="warn">The original ranks these candidates no better than chance (${metricName(plan)} ${plan.atChance.original.toFixed(4)} against ${plan.atChance.mean.toFixed(4)} ± ${plan.atChance.sd.toFixed(4)} for a random order): check that their ids are the model's table rows and their labels its positives. Every figure below is noise until then.</p>` : nothing}
        <p class="muted">${plan.evaluated} candidates in ${plan.seconds.toFixed(1)} s on ${fileName(plan.candidates)}${budget ? ` · budget: ${budget}` : ''}${plan.judgedOn ? ` · judged on ${plan.judgedOn}` : ''}</p>
        <p class=${plan.withinBudget ? '' : 'warn'}>Chosen: ${formatRatio(c.ratio)}, ${formatBytes(c.bytes)}, keeps ${formatPct(c.kept)} of ${metricName(plan)}${plan.chooseBy === 'expected' ? ` expected${c.keptMeasured !== undefined ? `, ${formatPct(c.keptMeasured)} measured` : ''}` : ''}${c.heldOut ? ` (${formatPct(c.heldOut.kept)} held out)` : ''}. ${plan.reason.charAt(0).toUpperCase()}${plan.reason.slice(1)}.${plan.output ? ` Written to ${fileName(plan.output)}.` : ''}</p>
        <div class="front-row">
          <div>${ch.element}
            <div class="legend"><span class="mark ring"></span>chosen<span class="mark diamond"></span>fine-tuned / distilled<span class="mark cross">×</span>original<span class="mark dash"></span>budget</div>
          </div>
          ${table(s, plan)}
        </div>
        ${plan.notes.length ? html`<ul class="notes">${plan.notes.map((n) => html`<li>${n}</li>`)}</ul>` : nothing}`,
      [pngButton('front', () => ch.canvas)],
    );
  },
};

