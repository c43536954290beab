// Per-layer figures the sparsity grid and the layer table share, and the layer -> tensor choice.

import type { LayerReport, ModelReport, TensorReport } from '../src/shared/report.js';
import { saveState } from './host.js';
import { update, type PanelState } from './store.js';

export function tensorsOfLayer(r: ModelReport, l: LayerReport): TensorReport[] {
  const byName = new Map(r.tensors.map((t) => [t.name, t]));
  return l.tensors.map((n) => byName.get(n)).filter((t): t is TensorReport => !!t);
}

export function ratio(ts: TensorReport[], f: (t: TensorReport) => number): number | null {
  const n = ts.reduce((s, t) => s + t.params, 0);
  return n ? ts.reduce((s, t) => s + f(t), 0) / n : null;
}

/** Output neurons of a dense kernel. */
export function outputs(t: TensorReport): number {
  if (t.shape.length < 2) return t.shape[0] ?? 1;
  return t.transposed ? t.shape[0] : t.shape[t.shape.length - 1];
}

/** Shows a tensor in the tensor section (and remembers it across panel reloads). */
export function selectTensor(s: PanelState, name: string | undefined, node?: PanelState['node']): void {
  saveState({ selected: name, heatScale: s.heatScale, overlay: s.overlay });
  update({ selected: name, node });
  document.getElementById('tensor')?.scrollIntoView({ behavior: 'smooth', block: 'start' });
}

/** A layer's largest tensor in the tensor section. */
export function selectLayer(s: PanelState, layer: string): void {
  const r = s.report;
  const l = r?.layers.find((x) => x.name === layer);
  if (!r || !l) return;
  const t = tensorsOfLayer(r, l).sort((a, b) => b.params - a.params)[0];
  selectTensor(s, t?.name);
}
