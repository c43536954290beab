// Layer-wise sparsity: layers x kinds of sparsity, one viridis cell each.

import { html, nothing, type TemplateResult } from 'lit';
import type { LayerReport, TensorReport } from '../../src/shared/report.js';
import { formatPct } from '../../src/shared/format.js';
import { getState, type PanelState } from '../store.js';
import { viridis } from '../colormap.js';
import { ratio, outputs, selectLayer, tensorsOfLayer } from '../layer-stats.js';
import { cssProps, legendBar, sectionView } from '../ui.js';

const INT8_ERROR_FULL_SCALE = 0.05;

/** name, value, and the value coloured as full scale (1 = 100%) */
const COLUMNS: Array<[string, (l: LayerReport, ts: TensorReport[]) => number | null, number]> = [
  ['exact zeros', (l) => l.sparsity, 1],
  ['near-zero |w|', (_l, ts) => ratio(ts, (t) => t.nearZeros), 1],
  ['near-zero rows', (_l, ts) => { const rs = ts.find((t) => t.rows)?.rows; return rs ? rs.nearZeroRows / Math.max(1, rs.rows) : null; }, 1],
  ['dead neurons', (_l, ts) => { const t = ts.find((x) => x.deadNeurons !== undefined); return t && t.shape.length ? t.deadNeurons! / Math.max(1, outputs(t)) : null; }, 1],
  // int8's relative error is a fraction of a percent where it is worth doing: coloured on 0-5%
  ['int8 rel. error', (_l, ts) => ts.find((t) => t.quantError)?.quantError?.int8.relRmse ?? null, INT8_ERROR_FULL_SCALE],
  ['rank @95% / full', (_l, ts) => { const s = ts.find((t) => t.spectrum)?.spectrum; return s && s.rankFor95 !== null && s.fullRank > 0 ? s.rankFor95 / s.fullRank : null; }, 1],
];

function cell(l: LayerReport, name: string, v: number | null, fullScale: number): TemplateResult {
  const title = `${l.name} · ${name}: ${v === null ? 'n/a' : formatPct(v, 2)}`;
  const click = () => selectLayer(getState(), l.name);
  if (v === null) return html`<td class="empty" title=${title} @click=${click}></td>`;
  const [r, g, b] = viridis(Math.min(1, Math.max(0, v / fullScale)));
  const colors = { background: `rgb(${r}, ${g}, ${b})`, color: r * 0.299 + g * 0.587 + b * 0.114 > 140 ? '#000' : '#fff' };
  // small shares keep their digits: 0.31% is not "0%"
  const digits = v === 0 || v >= 0.1 ? 0 : v >= 0.01 ? 1 : 2;
  return html`<td title=${title} ${cssProps(colors)} @click=${click}>${formatPct(v, digits)}</td>`;
}

export const sparsitySection = {
  deps: (s: PanelState) => [s.report],
  view(s: PanelState): TemplateResult | typeof nothing {
    const r = s.report;
    if (!r) return nothing;
    const rows = r.layers.filter((l) => l.trainableParams > 0);
    if (rows.length === 0) return nothing;
    return sectionView(
      'sparsity',
      'Layer-wise sparsity',
      html`<div class="scroll"><table class="heat-grid">
          <tr><th>layer</th>${COLUMNS.map(([c]) => html`<th>${c}</th>`)}</tr>
          ${rows.map((l) => {
            const ts = tensorsOfLayer(r, l).filter((t) => t.trainable);
            return html`<tr><th class="row-head" title=${l.name}>${l.name}</th>${COLUMNS.map(([name, f, full]) => cell(l, name, f(l, ts), full))}</tr>`;
          })}
        </table></div>
        ${legendBar('0%', '100%')}
        <p class="muted">Colours run 0-100%, int8 error 0-${formatPct(INT8_ERROR_FULL_SCALE, 0)}. Click a layer to see its tensors below. Hatched: not applicable.</p>`,
    );
  },
};
