// One tensor in detail: importance heatmap (zoomable), embedding-row heat, magnitude histogram,
// singular values. A graph node's tensors are offered as a row of buttons above.

import { html, nothing, type TemplateResult } from 'lit';
import type { ModelReport, TensorReport } from '../../src/shared/report.js';
import { formatBytes, formatCount, formatNum } from '../../src/shared/format.js';
import { getState, update, type PanelState } from '../store.js';
import { saveState } from '../host.js';
import { barChart } from '../charts.js';
import { viridis } from '../colormap.js';
import { stretchedCopy } from '../canvas.js';
import { zoomableHeatmap } from '../heatmap.js';
import { selectTensor } from '../layer-stats.js';
import { button, hoverable, legendBar, pngButton, safeName, sectionView } from '../ui.js';

function shownTensor(s: PanelState, r: ModelReport): TensorReport | undefined {
  return r.tensors.find((x) => x.name === s.selected) ?? [...r.tensors].filter((x) => x.trainable).sort((a, b) => b.params - a.params)[0];
}

function heatmapPart(s: PanelState, t: TensorReport, safe: string): TemplateResult | typeof nothing {
  if (!t.tiles) return nothing;
  const tip = document.createElement('div');
  tip.className = 'muted tip';
  tip.textContent = `${t.tiles.rows}×${t.tiles.cols} cells of ${t.tiles.cellRows}×${t.tiles.cellCols} weights · wheel or +/− to zoom, drag to pan, hover for values`;
  const view = zoomableHeatmap(t.tiles, s.heatScale, (_r, _c, text) => (tip.textContent = text), t.shape.length === 2 ? [t.shape[0], t.shape[1]] : undefined);
  const toggle = () => {
    const heatScale = s.heatScale === 'linear' ? 'log' : 'linear';
    saveState({ selected: s.selected, heatScale, overlay: s.overlay });
    update({ heatScale });
  };
  return html`<div class="sub-head"><h3>Importance heatmap (mean |w| per cell, ${s.heatScale} colour scale)</h3>
      ${button(s.heatScale === 'linear' ? 'Log scale' : 'Linear scale', toggle, { secondary: true })}${pngButton(`${safe}.heatmap`, () => view.fullImage())}</div>
    ${view.element}${tip}${legendBar('low |w|', 'high |w|')}`;
}

/** Mean row norm per bucket of ids, one pixel column each; the PNG is stretched to a readable size. */
function rowStrip(t: TensorReport): { element: HTMLElement; png: () => HTMLCanvasElement } {
  const rs = t.rows!;
  const c = document.createElement('canvas');
  c.width = rs.rowHeat.length;
  c.height = 1;
  c.className = 'strip';
  const max = Math.max(1e-30, ...rs.rowHeat);
  const g = c.getContext('2d');
  if (g) {
    const img = g.createImageData(rs.rowHeat.length, 1);
    rs.rowHeat.forEach((v, i) => img.data.set([...viridis(v / max), 255], i * 4));
    g.putImageData(img, 0, 0);
  }
  const idle = `${rs.rowsPerBucket} id(s) per column; row-norm quantiles p5 ${formatNum(rs.normQuantiles.p5)}, p50 ${formatNum(rs.normQuantiles.p50)}, p95 ${formatNum(rs.normQuantiles.p95)}; near zero ≤ ${formatNum(rs.nearZeroRowNorm)}`;
  const element = hoverable(c, (x) => {
    const i = Math.min(rs.rowHeat.length - 1, Math.floor((x / c.getBoundingClientRect().width) * rs.rowHeat.length));
    return `ids ${i * rs.rowsPerBucket}–${Math.min(rs.rows, (i + 1) * rs.rowsPerBucket) - 1}: mean row norm ${formatNum(rs.rowHeat[i])}`;
  }, idle);
  const png = () => stretchedCopy(c, rs.rowHeat.length, 48);
  return { element, png };
}

function chartsPart(t: TensorReport, safe: string): TemplateResult {
  const h = t.histogram;
  const hist = barChart({
    width: 560,
    height: 150,
    values: h.counts,
    label: (i) => `${formatNum(h.edges[i])} ≤ |w| < ${formatNum(h.edges[i + 1])}: ${formatCount(h.counts[i])}`,
    xLabels: h.counts.length ? [formatNum(h.edges[0]), formatNum(h.edges[h.edges.length - 1])] : undefined,
  });
  const s = t.spectrum;
  const r95 = s?.rankFor95 ?? null;
  const spec = s
    ? barChart({
        width: 560,
        height: 150,
        values: s.singularValues,
        label: (i) => `σ${i + 1} = ${formatNum(s.singularValues[i])}`,
        xLabels: ['σ1', `σ${s.singularValues.length}`],
        marker: r95 !== null && r95 <= s.singularValues.length ? { at: r95 - 1, caption: `95% energy at rank ${r95}` } : undefined,
      })
    : undefined;
  return html`<div class="sub-head"><h3>Magnitude histogram (|w|, log-spaced bins)</h3>${pngButton(`${safe}.histogram`, () => hist.canvas)}</div>
    ${hoverable(hist.canvas, hist.hover, h.zeroCount ? `exact zeros: ${formatCount(h.zeroCount)} (not in any bin)` : 'hover a bar for its range and count')}
    ${s && spec
      ? html`<div class="sub-head"><h3>Singular values</h3>${pngButton(`${safe}.spectrum`, () => spec.canvas)}</div>
          <p class="muted">rank for 90/95/99% energy: ${s.rankFor90 ?? '–'} / ${s.rankFor95 ?? '–'} / ${s.rankFor99 ?? '–'} of ${s.fullRank} (${s.exact ? 'exact' : 'estimated'}, ${s.method})</p>
          ${hoverable(spec.canvas, spec.hover, 'hover a bar for its value')}`
      : nothing}`;
}

/** The clicked graph node's tensors, one button each. */
function nodeTensors(s: PanelState, t: TensorReport): TemplateResult | typeof nothing {
  if (!s.node || s.node.tensors.length < 2) return nothing;
  return html`<div class="node-tensors"><span class="muted">${s.node.label}:</span>
    ${s.node.tensors.map((n) => button(n, () => selectTensor(getState(), n, getState().node), { secondary: n !== t.name }))}</div>`;
}

export const tensorSection = {
  deps: (s: PanelState) => [s.report, s.selected, s.heatScale, s.node],
  view(s: PanelState): TemplateResult | typeof nothing {
    const r = s.report;
    const t = r ? shownTensor(s, r) : undefined;
    if (!t) return nothing;
    const safe = safeName(t.name);
    const strip = t.rows ? rowStrip(t) : undefined;
    return sectionView(
      'tensor',
      `Tensor ${t.name}`,
      html`${nodeTensors(s, t)}
        <p class="muted">${t.role} · [${t.shape.join('×')}] ${t.dtype}${t.storedDtype !== t.dtype ? ` (stored ${t.storedDtype})` : ''} · ${formatCount(t.params)} params · ${formatBytes(t.bytes)} · min ${formatNum(t.min)} · max ${formatNum(t.max)} · mean ${formatNum(t.mean)} · std ${formatNum(t.std)}</p>
        <p class="muted">${t.sparsityMeaning}</p>
        ${heatmapPart(s, t, safe)}
        ${strip && t.rows
          ? html`<div class="sub-head"><h3>Embedding-row heat: ${formatCount(t.rows.rows)} ids, ${formatCount(t.rows.nearZeroRows)} near-zero rows</h3>${pngButton(`${safe}.rows`, strip.png)}</div>
              ${strip.element}${legendBar('weak rows', 'strong rows')}`
          : nothing}
        ${chartsPart(t, safe)}`,
    );
  },
};
