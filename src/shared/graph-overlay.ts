// The graph view's per-node overlays, aggregated from the analysis report's per-tensor figures
// (nothing is recomputed from weights). Shared: the engine fills a GraphView with them, the panel
// adds the sensitivity overlay when a sensitivity study arrives later.

import type { GraphOverlayValues, GraphView, SensitivityView } from './protocol.js';
import type { TensorReport } from './report.js';

/** Overlay values of a set of tensors (a node's or a group's). */
export function overlayOf(tensors: TensorReport[], trainableParams: number, sensitivity?: Map<string, number>): GraphOverlayValues {
  const tr = tensors.filter((t) => t.trainable);
  const params = tr.reduce((s, t) => s + t.params, 0);
  const zeros = tr.reduce((s, t) => s + t.zeros, 0);
  const withRows = tr.filter((t) => t.rows);
  const rows = withRows.reduce((s, t) => s + t.rows!.rows, 0);
  const nearRows = withRows.reduce((s, t) => s + t.rows!.nearZeroRows, 0);
  const q = tr.filter((t) => t.quantError?.int8.relRmse !== null && t.quantError?.int8.relRmse !== undefined);
  const qParams = q.reduce((s, t) => s + t.params, 0);
  const sens = tensors.map((t) => sensitivity?.get(t.name)).filter((x): x is number => x !== undefined);
  return {
    params: params > 0 && trainableParams > 0 ? params / trainableParams : null,
    sparsity: params > 0 ? zeros / params : null,
    nearZeroRows: rows > 0 ? nearRows / rows : null,
    int8Error: qParams > 0 ? q.reduce((s, t) => s + t.quantError!.int8.relRmse! * t.params, 0) / qParams : null,
    sensitivity: sens.length ? Math.max(...sens) : null,
  };
}

/** Per tensor: the relative metric drop at the largest sparsity measured (0 when it did not fall). */
export function sensitivityByTensor(v: SensitivityView): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of v.curves) {
    const base = c.points.find((p) => p.amount === 0)?.value ?? c.points[0]?.value;
    const last = c.points.reduce((a, b) => (b.amount > a.amount ? b : a), c.points[0]);
    if (base === undefined || !last || !(base > 0)) continue;
    out.set(c.layer, Math.min(1, Math.max(0, (base - last.value) / base)));
  }
  return out;
}

/** The graph with its sensitivity overlay filled from a study (other overlays kept). */
export function withSensitivity(g: GraphView, v: SensitivityView): GraphView {
  const byTensor = sensitivityByTensor(v);
  const of = (tensors: string[]): number | null => {
    const xs = tensors.map((t) => byTensor.get(t)).filter((x): x is number => x !== undefined);
    return xs.length ? Math.max(...xs) : null;
  };
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  return {
    ...g,
    nodes: g.nodes.map((n) => ({ ...n, overlay: { ...n.overlay, sensitivity: of(n.tensors) } })),
    groups: g.groups.map((gr) => ({ ...gr, overlay: { ...gr.overlay, sensitivity: of(gr.nodes.flatMap((id) => byId.get(id)?.tensors ?? [])) } })),
  };
}
