// The layer table, sortable by any column; a row opens its largest tensor below.

import { html, nothing, type TemplateResult } from 'lit';
import { constantOnlyLayers, type ModelReport } from '../../src/shared/report.js';
import { formatCount, formatPct } from '../../src/shared/format.js';
import { getState, update, type LayerSortKey, type PanelState } from '../store.js';
import { ratio, selectLayer, tensorsOfLayer } from '../layer-stats.js';
import { sectionView } from '../ui.js';

type LayerRow = Record<LayerSortKey, string | number> & { name: string; params: number; share: number; sparsity: number; nearZero: number; int8: number; rank: number };

function layerRows(r: ModelReport, skip: ReadonlySet<string>): LayerRow[] {
  return r.layers.filter((l) => !skip.has(l.name)).map((l) => {
    const ts = tensorsOfLayer(r, l);
    const main = ts.filter((t) => t.trainable).sort((a, b) => b.params - a.params)[0] ?? ts[0];
    return {
      name: l.name,
      kind: l.kind,
      role: [...new Set(ts.map((t) => t.role))].join(', '),
      shape: main ? `[${main.shape.join('×')}]` : '',
      params: l.params,
      share: l.share,
      sparsity: l.sparsity ?? -1,
      nearZero: ratio(ts.filter((t) => t.trainable), (t) => t.nearZeros) ?? -1,
      int8: main?.quantError?.int8.relRmse ?? -1,
      rank: main?.spectrum?.rankFor95 ?? -1,
    };
  });
}

const COLS: Array<[LayerSortKey, string, (row: LayerRow) => string]> = [
  ['name', 'layer', (x) => x.name],
  ['kind', 'kind', (x) => String(x.kind)],
  ['role', 'role', (x) => String(x.role)],
  ['shape', 'shape', (x) => String(x.shape)],
  ['params', 'params', (x) => formatCount(x.params)],
  ['share', 'share', (x) => formatPct(x.share)],
  ['sparsity', 'sparsity', (x) => (x.sparsity < 0 ? '–' : formatPct(x.sparsity))],
  ['nearZero', 'near-zeros', (x) => (x.nearZero < 0 ? '–' : formatPct(x.nearZero))],
  ['int8', 'int8 error', (x) => (x.int8 < 0 ? '–' : formatPct(x.int8, 2))],
  ['rank', 'rank @95%', (x) => (x.rank < 0 ? '–' : String(x.rank))],
];

function sortBy(key: LayerSortKey): void {
  const s = getState();
  update(s.sortKey === key ? { sortDesc: !s.sortDesc } : { sortKey: key, sortDesc: true });
}

export const layersSection = {
  deps: (s: PanelState) => [s.report, s.sortKey, s.sortDesc, s.selected],
  view(s: PanelState): TemplateResult | typeof nothing {
    const r = s.report;
    // no learned tensor (a tree ensemble): no table of layers with nothing in them
    if (!r || r.trainableParams === 0) return nothing;
    const constants = constantOnlyLayers(r);
    const rows = layerRows(r, new Set(constants.map((l) => l.name))).sort((a, b) => {
      const x = a[s.sortKey];
      const y = b[s.sortKey];
      const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
      return s.sortDesc ? -c : c;
    });
    const selectedLayer = r.tensors.find((t) => t.name === s.selected)?.layer;
    const onKey = (f: () => void) => (e: KeyboardEvent) => (e.key === 'Enter' ? f() : undefined);
    return sectionView(
      'layers',
      'Layers',
      html`<div class="scroll"><table class="layers">
        <tr>${COLS.map(([key, label], i) => html`<th class=${i >= 4 ? 'num' : ''} role="button" tabindex="0" aria-sort=${s.sortKey === key ? (s.sortDesc ? 'descending' : 'ascending') : 'none'} @click=${() => sortBy(key)} @keydown=${onKey(() => sortBy(key))}>${label + (s.sortKey === key ? (s.sortDesc ? ' ▾' : ' ▴') : '')}</th>`)}</tr>
        ${rows.map((row) => {
          const pick = () => selectLayer(getState(), row.name);
          return html`<tr class=${row.name === selectedLayer ? 'selected' : ''} tabindex="0" @click=${pick} @keydown=${onKey(pick)}>${COLS.map(([, , f], i) => html`<td class=${i >= 4 ? 'num' : ''}>${f(row)}</td>`)}</tr>`;
        })}
      </table></div>
      ${constants.length
        ? html`<p class="muted">${constants.length} layer${constants.length === 1 ? '' : 's'} holding only constants (${formatCount(constants.reduce((a, l) => a + l.params, 0))} values: shapes, axes, indices) not listed.</p>`
        : nothing}`,
    );
  },
};
