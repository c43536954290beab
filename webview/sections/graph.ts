// The model's graph, coloured by an overlay the user picks. Repeated blocks are folded (click
// to expand); clicking a node shows its tensors in the tensor section.

import { html, nothing, type TemplateResult } from 'lit';
import type { GraphOverlay } from '../../src/shared/protocol.js';
import { formatCount, formatPct } from '../../src/shared/format.js';
import { currentGraph, getState, update, type PanelState } from '../store.js';
import { saveState } from '../host.js';
import { layoutGraph, overlayScale, type PlacedNode } from '../graph-layout.js';
import { graphCanvas } from '../graph-canvas.js';
import { selectTensor } from '../layer-stats.js';
import { button, legendBar, pngButton, sectionView } from '../ui.js';

export const OVERLAYS: Array<[GraphOverlay, string]> = [
  ['params', 'share of parameters'],
  ['sparsity', 'sparsity (exact zeros)'],
  ['nearZeroRows', 'near-zero embedding rows'],
  ['int8Error', 'int8 error (relative RMSE)'],
  ['sensitivity', 'sensitivity (metric drop pruned alone)'],
];

function describe(n: PlacedNode): string {
  const o = (n.group ?? n.node)!.overlay;
  const parts = [
    n.group ? `${n.group.label} ×${n.group.repeat} (${n.group.nodes.length} nodes; click to expand)` : `${n.node!.label} (${n.sub})`,
    `${formatCount((n.group ?? n.node)!.params)} params`,
    o.params !== null ? `${formatPct(o.params)} of the model` : '',
    o.sparsity !== null ? `sparsity ${formatPct(o.sparsity)}` : '',
    o.nearZeroRows !== null ? `near-zero rows ${formatPct(o.nearZeroRows)}` : '',
    o.int8Error !== null ? `int8 error ${formatPct(o.int8Error, 2)}` : '',
    o.sensitivity !== null ? `sensitivity ${formatPct(o.sensitivity)}` : '',
  ];
  return parts.filter(Boolean).join(' · ');
}

function click(n: PlacedNode): void {
  const s = getState();
  if (n.group) return update({ expanded: [...s.expanded, n.group.id] });
  const ts = n.node?.tensors ?? [];
  if (ts.length) selectTensor(s, ts[0], { label: n.node!.label, tensors: ts });
}

function pickOverlay(e: Event): void {
  const overlay = (e.target as HTMLSelectElement).value as GraphOverlay;
  const s = getState();
  saveState({ selected: s.selected, heatScale: s.heatScale, overlay });
  update({ overlay });
}

export const graphSection = {
  deps: (s: PanelState) => [s.report, s.graphs, s.sens, s.overlay, s.expanded, s.selected],
  view(s: PanelState): TemplateResult | typeof nothing {
    const g = currentGraph(s);
    if (!g) return nothing;
    const expanded = new Set(s.expanded);
    const folded = g.groups.filter((gr) => !expanded.has(gr.id));
    const layout = layoutGraph(g, expanded);
    const scale = overlayScale(layout.nodes, s.overlay);
    const selected = layout.nodes.find((n) => n.node?.tensors.includes(s.selected ?? '\0'))?.id;
    const view = graphCanvas({
      layout,
      value: scale.value,
      describe,
      onClick: click,
      selected,
      idle: 'drag to pan, wheel or +/− to zoom, hover a node for its figures, click it for its tensors (a folded block expands)',
    });
    const name = OVERLAYS.find(([k]) => k === s.overlay)?.[1] ?? s.overlay;
    const top = scale.max === 1 ? '100%' : formatPct(scale.max, scale.max < 0.01 ? 2 : 1);
    const tools = [
      html`<label class="muted" for="graph-overlay">Colour by</label>
        <select id="graph-overlay" @change=${pickOverlay}>${OVERLAYS.map(([k, label]) => html`<option value=${k} ?selected=${k === s.overlay}>${label}</option>`)}</select>`,
      folded.length ? button('Expand all', () => update({ expanded: g.groups.map((gr) => gr.id) }), { secondary: true, title: `Lay out all ${g.nodes.length} nodes` }) : nothing,
      s.expanded.length ? button('Fold blocks', () => update({ expanded: [] }), { secondary: true }) : nothing,
      pngButton('graph', () => view.canvas),
    ];
    return sectionView(
      'graph',
      'Graph',
      html`<p class="muted graph-stats">${layout.nodes.length} nodes shown of ${g.nodes.length}${g.sourceNodes > g.nodes.length ? ` (${g.sourceNodes} in the file, subgraphs folded)` : ''}${folded.length ? `; ${folded.length} repeated block${folded.length === 1 ? '' : 's'} folded` : ''} · layout ${layout.layoutMs.toFixed(0)} ms · first frame ${view.firstFrameMs.toFixed(1)} ms</p>
        ${view.element}
        ${legendBar('0', `${top} (${name})`)}
        ${g.notes.map((n) => html`<p class="muted">note: ${n}</p>`)}`,
      tools,
    );
  },
};
