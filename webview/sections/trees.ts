// ONNX-ML tree ensembles: per-tree shape heatmap, feature importance, and the two findings.

import { html, nothing, type TemplateResult } from 'lit';
import { treeRemovalProposal, weakTreeFeatures, type TreeEnsembleView } from '../../src/shared/protocol.js';
import { formatCount, formatNum } from '../../src/shared/format.js';
import type { PanelState } from '../store.js';
import { isStatic, post } from '../host.js';
import { barChart } from '../charts.js';
import { viridis } from '../colormap.js';
import { stretchedCopy } from '../canvas.js';
import { button, hoverable, pngButton, sectionView } from '../ui.js';

const TREE_ROWS = ['depth', 'leaves', 'nodes'] as const;

/** trees × {depth, leaves, nodes}: one pixel column per tree, each row scaled to its own maximum. */
function treeHeatmap(e: TreeEnsembleView): { element: HTMLElement; png: () => HTMLCanvasElement } {
  const n = Math.max(1, e.perTree.length);
  const c = document.createElement('canvas');
  c.width = n;
  c.height = TREE_ROWS.length;
  c.className = 'tree-heat';
  const max = TREE_ROWS.map((key) => Math.max(1, ...e.perTree.map((t) => t[key])));
  const g = c.getContext('2d');
  if (g) {
    const img = g.createImageData(n, TREE_ROWS.length);
    TREE_ROWS.forEach((key, r) => e.perTree.forEach((t, i) => img.data.set([...viridis(t[key] / max[r]), 255], (r * n + i) * 4)));
    g.putImageData(img, 0, 0);
  }
  const idle = `${e.perTree.length} trees (columns) × depth / leaves / nodes (rows), each row scaled to its maximum (${max.join(' / ')})`;
  const wrap = document.createElement('div');
  wrap.className = 'tree-heat-wrap';
  const labels = document.createElement('div');
  labels.className = 'tree-heat-labels muted';
  for (const key of TREE_ROWS) labels.append(Object.assign(document.createElement('span'), { textContent: key }));
  const hover = hoverable(c, (x) => {
    const i = Math.min(e.perTree.length - 1, Math.floor((x / c.getBoundingClientRect().width) * e.perTree.length));
    const t = e.perTree[i];
    return t ? `tree ${i}: depth ${t.depth}, ${t.leaves} leaves, ${t.nodes} nodes` : undefined;
  }, idle);
  const tip = hover.lastElementChild!;
  wrap.append(labels, c);
  const element = document.createElement('div');
  element.append(wrap, tip);
  const png = () => stretchedCopy(c, n, 96);
  return { element, png };
}

const histText = (h: Array<[number, number]>): string => h.map(([v, n]) => `${v}: ${n}`).join(', ');

function finding(text: string, action: TemplateResult | typeof nothing): TemplateResult {
  return html`<div class="finding"><p>${text}</p>${isStatic ? nothing : action}</div>`;
}

function ensembleView(e: TreeEnsembleView, index: number): TemplateResult {
  const name = e.node || `trees${index}`;
  const safe = name.replace(/[^A-Za-z0-9_.-]/g, '_');
  const heat = treeHeatmap(e);
  const by = e.hasCover ? 'gain' : 'splits';
  const byFeature = e.importance.slice().sort((a, b) => a.feature - b.feature);
  const chart = barChart({
    width: 560,
    height: 150,
    values: byFeature.map((f) => (by === 'gain' ? f.gain ?? 0 : f.splits)),
    label: (i) => {
      const f = byFeature[i];
      return `f${f.feature}: rank ${f.rank}, ${f.splits} split(s)${f.gain !== undefined ? `, gain ${formatNum(f.gain)}` : ''}${f.cover !== undefined ? `, cover ${formatNum(f.cover)}` : ''}`;
    },
    xLabels: byFeature.length ? [`f${byFeature[0].feature}`, `f${byFeature[byFeature.length - 1].feature}`] : undefined,
    yLabel: by,
  });
  const least = e.importance.slice(-Math.min(3, e.importance.length)).map((f) => `f${f.feature}`).join(', ');
  const weak = weakTreeFeatures(e);
  const unused = weak.filter((f) => e.unusedFeatures.includes(f)).length;
  const s = weak.length > 1 ? 's' : '';
  const removable = treeRemovalProposal(e);
  return sectionView(
    `trees-${index}`,
    'Tree ensemble',
    html`<p>${e.op} "${name}": ${formatCount(e.trees)} trees, ${formatCount(e.nodes)} nodes, ${formatCount(e.leaves)} leaves, ${e.features} input features</p>
      <p class="muted">trees per depth: ${histText(e.depthHistogram)}; trees per leaf count: ${histText(e.leavesHistogram)}</p>
      <div class="sub-head"><h3>Per-tree depth, leaves and nodes</h3>${pngButton(`${safe}.trees`, heat.png)}</div>
      ${heat.element}
      <div class="sub-head"><h3>Feature importance (by ${by}; ranked by ${e.rankedBy})</h3>${pngButton(`${safe}.importance`, () => chart.canvas)}</div>
      ${hoverable(chart.canvas, chart.hover, `hover a bar for its feature; least important: ${least || '–'}`)}
      <p class="tree-unused">${e.unusedFeatures.length ? `Unused features (no split reads them): ${e.unusedFeatures.map((f) => `f${f}`).join(', ')}` : 'Every input feature is used by at least one split.'}</p>
      ${weak.length
        ? finding(
            `${weak.map((f) => `f${f}`).join(', ')}: ${unused} unused, ${weak.length - unused} with under 4% of the importance. Dropping them collapses their splits to the majority child and writes a new model with the same inputs.`,
            button(unused === weak.length ? `Drop ${weak.length} unused feature${s}` : `Drop ${weak.length} unused or weak feature${s}`, () => post({ type: 'dropTreeFeatures', node: e.node, features: weak })),
          )
        : nothing}
      ${removable > 0
        ? finding(
            `${formatCount(e.trees)} trees. Large ensembles often carry trees that add little; whether this one does is measured, not assumed: up to ${removable} trees are removed greedily (the base value re-fitted where the layout allows; a multi-class classifier is measured by accuracy), chosen on a seeded half of a validation CSV and reported on the other half (held out); fewer go, or none, if the metric would fall. Writes a new model beside this one.`,
            button(`Remove ${removable} trees…`, () => post({ type: 'removeTrees', node: e.node, fraction: removable / e.trees })),
          )
        : nothing}
      ${e.notes.map((n) => html`<p class="muted">note: ${n}</p>`)}`,
  );
}

export const treesSection = {
  deps: (s: PanelState) => [s.trees],
  view(s: PanelState): TemplateResult | typeof nothing {
    return s.trees && s.trees.ensembles.length ? html`${s.trees.ensembles.map(ensembleView)}` : nothing;
  },
};
