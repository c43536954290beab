// Before / after of a compression job (or a comparison of two models), and the switch that
// decides which model the analysis sections below show.

import { html, nothing, type TemplateResult } from 'lit';
import type { CompressJobResult } from '../../src/shared/protocol.js';
import { fileName, formatBytes, formatCount, formatMs, formatPairedRatio, describeSettings } from '../../src/shared/format.js';
import { update, type PanelState } from '../store.js';
import { isStatic, post } from '../host.js';
import { button, cssProps, sectionView } from '../ui.js';

export interface CompareRow {
  name: string;
  before: number | null;
  after: number | null;
  fmt: (x: number | null) => string;
  better: 'lower' | 'higher';
  noise?: boolean;
  /** the verdict when another measurement decides it (paired latency calls), not the change of the two figures */
  verdict?: 'good' | 'bad';
}

const fixed4 = (x: number | null): string => (x === null ? '–' : x.toFixed(4));

/** One row: the two values, the relative change coloured by whether it is good, two bars. */
export function compareRow(row: CompareRow): TemplateResult {
  const rel = row.before !== null && row.after !== null && row.before !== 0 ? (row.after - row.before) / row.before : null;
  const good = row.noise ? 'same' : row.verdict ?? (rel === null || Math.abs(rel) < 0.005 ? 'same' : (rel < 0) === (row.better === 'lower') ? 'good' : 'bad');
  const mx = Math.max(Math.abs(row.before ?? 0), Math.abs(row.after ?? 0), 1e-30);
  const bar = (cls: string, v: number | null) => html`<div class="pair ${cls}" ${cssProps({ width: `${Math.max(1, (Math.abs(v ?? 0) / mx) * 100)}%` })}></div>`;
  return html`<tr>
    <th class="row-head">${row.name}</th>
    <td class="num">${row.fmt(row.before)}</td>
    <td class="num">${row.fmt(row.after)}</td>
    <td class="num delta ${good}">${rel === null ? '–' : `${rel > 0 ? '+' : ''}${(rel * 100).toFixed(1)}%`}</td>
    <td class="bars-cell"><div class="pair-bars">${bar('b', row.before)}${bar('a', row.after)}</div></td>
  </tr>`;
}

export function compareTable(rows: CompareRow[]): TemplateResult {
  return html`<div class="scroll"><table class="compare">
    <tr>${['', 'before', 'after', 'change', ''].map((h) => html`<th>${h}</th>`)}</tr>
    ${rows.map(compareRow)}
  </table></div>`;
}

function rowsOf(c: CompressJobResult): CompareRow[] {
  const v = c.comparison;
  const rows: CompareRow[] = [
    { name: 'Parameters', before: v.params.before, after: v.params.after, fmt: (x) => (x === null ? '–' : formatCount(x)), better: 'lower' },
    { name: 'Size on disk', before: v.bytes.before, after: v.bytes.after, fmt: formatBytes, better: 'lower' },
    { name: 'gzip size', before: v.gzipBytes.before, after: v.gzipBytes.after, fmt: formatBytes, better: 'lower' },
  ];
  for (const l of v.latency) rows.push(latencyRow(l));
  if (v.hr) rows.push({ name: `HR@${v.k}`, before: v.hr.before, after: v.hr.after, fmt: fixed4, better: 'higher' });
  if (v.ndcg) rows.push({ name: `NDCG@${v.k}`, before: v.ndcg.before, after: v.ndcg.after, fmt: fixed4, better: 'higher' });
  if (v.auc) rows.push({ name: 'AUC', before: v.auc.before, after: v.auc.after, fmt: fixed4, better: 'higher' });
  return rows;
}

/** Which model the analysis sections show: the original or the compressed one. */
function viewSwitch(s: PanelState, c: CompressJobResult): TemplateResult {
  const sides = [['before', c.method === 'compare' ? fileName(c.original) : 'Original'], ['after', c.method === 'compare' ? fileName(c.output) : 'Compressed']] as const;
  return html`<div class="view-switch" role="group" aria-label="model shown in the analysis below">
    <span class="muted">Analysis below:</span>
    ${sides.map(([key, label]) =>
      button(label, () => {
        update({ viewing: key, report: key === 'after' ? c.after : c.before, selected: undefined, node: undefined });
        document.getElementById('comparison')?.scrollIntoView({ block: 'start' });
      }, { secondary: s.viewing !== key, title: key === 'after' ? c.output : c.original, data: key }),
    )}
  </div>`;
}

export const comparisonSection = {
  deps: (s: PanelState) => [s.comparison, s.viewing],
  view(s: PanelState): TemplateResult | typeof nothing {
    const c = s.comparison;
    if (!c) return nothing;
    const v = c.comparison;
    const settings = describeSettings(c.settings);
    // a method's own size line repeats the comparison's measured one
    const said = [...v.summary, ...c.notes.filter((n) => !(n.startsWith('Size on disk') && v.summary.some((x) => x.startsWith('Size on disk'))))];
    const changes = c.changes.length
      ? html`<h3>What changed (${c.changes.length} tensor${c.changes.length === 1 ? '' : 's'})</h3>
          <div class="scroll"><table class="layers changes">
            <tr>${['tensor', 'change', 'before', 'after'].map((h, i) => html`<th class=${i >= 2 ? 'num' : ''}>${h}</th>`)}</tr>
            ${c.changes.slice(0, 200).map((ch) => html`<tr>
              <td>${ch.tensor}</td><td>${unbroken(ch.action)}</td>
              <td class="num">[${ch.beforeShape.join('×')}] ${formatBytes(ch.beforeBytes)}</td>
              <td class="num">${unbroken(ch.after.map((a) => `${a.name === ch.tensor ? '' : `${a.name} `}[${a.shape.join('×')}] ${formatBytes(a.bytes)}`).join(' + '))}</td>
            </tr>`)}
          </table></div>`
      : nothing;
    const body = html`
      <p class="muted">${fileName(c.original)} → <span class="path" title=${c.output}>${fileName(c.output)}</span>${settings ? ` · ${settings}` : ''} · ${c.seconds.toFixed(1)} s${v.runtime ? ` · ran on ${v.runtime}` : ''}${v.dataset ? ` · accuracy on ${fileName(v.dataset)}` : ''}</p>
      ${compareTable(rowsOf(c))}
      <div class="legend"><span class="swatch b"></span>before<span class="swatch a"></span>after</div>
      ${said.length ? html`<ul class="notes">${said.map((x) => html`<li>${x}</li>`)}</ul>` : nothing}
      ${changes}`;
    const tools = [viewSwitch(s, c), !isStatic && c.method !== 'compare' ? button('Reveal Output', () => post({ type: 'revealOutput' }), { secondary: true }) : nothing];
    // a recipe's methods, each once ("factorize + quantize", not "factorize + quantize + quantize")
    const methods = [...new Set(c.method.split(' + '))].join(' + ');
    return sectionView('comparison', c.method === 'compare' ? 'Comparison' : `Before / after: ${methods}`, body, tools);
  },
};

/**
 * A latency row: the two p50s, each timed alone; slower or faster as the paired calls say (the
 * two figures can disagree with them on a busy machine), neutral within noise.
 */
export function latencyRow(l: { batch: number; p50Before: number; p50After: number; withinNoise?: boolean; pairedRatio?: number }): CompareRow {
  const paired = !l.withinNoise && l.pairedRatio !== undefined ? formatPairedRatio(l.pairedRatio) : undefined;
  return {
    name: `Latency p50, batch ${l.batch}${l.withinNoise ? ' (within noise)' : paired ? ` (${paired} in paired calls)` : ''}`,
    before: l.p50Before,
    after: l.p50After,
    fmt: formatMs,
    better: 'lower',
    noise: l.withinNoise === true,
    ...(paired ? { verdict: l.pairedRatio! > 1 ? ('bad' as const) : ('good' as const) } : {}),
  };
}

/** Wrapped text that keeps "3.41e-3" and "7.81 KB" whole: a non-breaking hyphen in exponents, a non-breaking space before units. */
function unbroken(text: string): string {
  return text.replace(/(\de)-(\d)/g, '$1\u2011$2').replace(/ (B|KB|MB|GB|TB)\b/g, '\u00a0$1');
}
