// Folding a low-rank table's projection into the layers that read it.
//
// A factorized table E ~ E' P (E' [N, r], P [r, d]) is looked up as E'[ids] P. Where the
// looked-up vectors reach dense kernels only through linear plumbing (graph-deps.ts
// ChannelGroup.linear: concatenation on the channel axis, a one-position Flatten, Identity),
// each such kernel K reads them as x P K_slice, and K_slice [d, out] can be replaced by
// P K_slice [r, out]: no projection op, and r·out parameters instead of r·d + d·out. NeuMF's MLP
// tower and a two-tower's first layers read their tables this way; a GMF product, a FM or a dot
// does not (the vectors meet another table's element-wise), and keeps its projection.

import { ModelTensor } from '../model/ir.js';
import { DepGraph, channelGroup, channelSources, kerasLayerName, kerasLayers } from './graph-deps.js';

/** Where a table's vectors enter a kernel: rows (axis 0, [in, out]) or columns (axis 1, Gemm transB [out, in]) offset..offset+width. */
export interface FoldSite {
  kernel: ModelTensor;
  axis: 0 | 1;
  offset: number;
  width: number;
}

/** A projection P [rank, width] (row-major) to fold into the kernel at a site. */
export interface Fold {
  axis: 0 | 1;
  offset: number;
  width: number;
  rank: number;
  proj: Float32Array;
}

/**
 * The kernels that read `table`'s looked-up vectors through linear plumbing only, or why the
 * projection cannot be folded. `busy`: tensors rewritten otherwise by the same step (not
 * folded into).
 */
export function projectionFoldSites(g: DepGraph, table: string, busy: ReadonlySet<string>): FoldSite[] | { skip: string } {
  const sources = channelSources(g).filter((s) => s.kind === 'table' && s.tensor === table);
  if (sources.length !== 1) return { skip: sources.length ? `${sources.length} lookups read the table` : 'no lookup of the table was found' };
  let group;
  try {
    group = channelGroup(g, sources[0]);
  } catch (e) {
    return { skip: (e as Error).message.replace(`${g.ir.path}: `, '') };
  }
  if (!group.linear) return { skip: 'its vectors meet an activation, a constant or another tensor before a dense layer' };
  const sites: FoldSite[] = [];
  for (const s of group.slices) {
    if (s.kind !== 'consumer') continue;
    const k = g.ir.tensors.find((t) => t.name === s.tensor);
    if (!k || k.shape.length !== 2) return { skip: `the kernel ${s.tensor} is not a matrix` };
    if (k.dtype !== 'float32' || k.storage.dtype !== 'float32') return { skip: `the kernel ${k.name} is stored ${k.storage.dtype}` };
    if (busy.has(k.name)) return { skip: `the kernel ${k.name} is factorized too` };
    if (g.ir.format === 'onnx') {
      const why = onnxKernelShared(g, k);
      if (why) return { skip: `the kernel ${k.name} ${why}` };
    }
    sites.push({ kernel: k, axis: s.axis === 1 ? 1 : 0, offset: s.offset, width: s.width });
  }
  if (sites.length === 0) return { skip: 'no dense layer reads its vectors' };
  if (g.ir.format === 'tfjs-layers') {
    const shared = tfjsSharedLayerOnPath(g, sources[0].node, new Set(sites.map((x) => x.kernel.layer)));
    if (shared) return { skip: `layer "${shared}" is called more than once` };
  }
  return sites;
}

/** Why an ONNX kernel cannot take a fold: read by another node (a subgraph's too), or a graph output. */
function onnxKernelShared(g: DepGraph, k: ModelTensor): string | undefined {
  if (k.origin !== 'initializer') return `is not a main-graph initializer (${k.origin})`;
  if (g.outputs.has(k.name)) return 'is a graph output';
  if (g.ir.graph.nodes.some((n) => n.scope !== undefined && n.inputs.includes(k.name))) return 'is read inside a subgraph';
  if ((g.consumers.get(k.name) ?? []).length !== 1) return 'is read by more than one node';
  return undefined;
}

/**
 * A TF.js layer between the table's Embedding and the absorbing Dense layers (both included)
 * that the topology calls more than once: the reader merges a shared layer's calls into one
 * node, so the walk cannot tell which call's columns a kernel row belongs to.
 */
function tfjsSharedLayerOnPath(g: DepGraph, source: string, consumers: ReadonlySet<string>): string | undefined {
  let layers: Array<Record<string, unknown>>;
  try {
    layers = kerasLayers(g.ir.native, g.ir.path);
  } catch {
    return undefined;
  }
  const shared = new Set<string>();
  for (const l of layers) {
    const name = kerasLayerName(l);
    if (name && Array.isArray(l.inbound_nodes) && l.inbound_nodes.length > 1) shared.add(name);
  }
  if (shared.size === 0) return undefined;
  const seen = new Set<string>([source]);
  const todo = [source];
  for (let n = todo.pop(); n !== undefined; n = todo.pop()) {
    if (shared.has(n)) return n;
    if (consumers.has(n)) continue;
    for (const c of g.consumers.get(n) ?? []) {
      if (!seen.has(c.name)) {
        seen.add(c.name);
        todo.push(c.name);
      }
    }
  }
  return undefined;
}

/**
 * The kernel [rows, cols] with each fold's slice along its axis replaced by the folded one:
 * axis 0, K[offset..offset+width) [width, cols] -> P . K_slice [rank, cols]; axis 1,
 * K[:, offset..offset+width) [rows, width] -> K_slice . P^T [rows, rank]. The folds' slices
 * must not overlap and share one axis.
 */
export function foldIntoKernel(k: Float32Array, shape: readonly [number, number], folds: readonly Fold[]): { values: Float32Array; shape: [number, number] } {
  if (folds.length === 0) return { values: k, shape: [shape[0], shape[1]] };
  const axis = folds[0].axis;
  if (folds.some((f) => f.axis !== axis)) throw new Error('folds into one kernel must share its input axis');
  const sorted = [...folds].sort((a, b) => a.offset - b.offset);
  const len = shape[axis];
  for (let i = 0; i < sorted.length; i++) {
    const f = sorted[i];
    if (f.proj.length !== f.rank * f.width) throw new Error(`a projection of ${f.proj.length} values is not [${f.rank}, ${f.width}]`);
    if (f.offset < 0 || f.offset + f.width > len || (i > 0 && sorted[i - 1].offset + sorted[i - 1].width > f.offset)) throw new Error('fold slices overlap or leave the kernel');
  }
  const newLen = len + sorted.reduce((n, f) => n + f.rank - f.width, 0);
  const [rows, cols] = shape;
  const out = new Float32Array(axis === 0 ? newLen * cols : rows * newLen);
  // emit the input positions in order: untouched ones copied, each fold's block computed
  let src = 0;
  let dst = 0;
  const copy = (from: number, to: number): void => {
    for (let i = from; i < to; i++, dst++) {
      if (axis === 0) out.set(k.subarray(i * cols, (i + 1) * cols), dst * cols);
      else for (let r = 0; r < rows; r++) out[r * newLen + dst] = k[r * cols + i];
    }
  };
  for (const f of sorted) {
    copy(src, f.offset);
    for (let j = 0; j < f.rank; j++, dst++) {
      const p = f.proj.subarray(j * f.width, (j + 1) * f.width);
      if (axis === 0) {
        // row j of P . K_slice
        const row = new Float64Array(cols);
        for (let t = 0; t < f.width; t++) {
          const w = p[t];
          if (w === 0) continue;
          const base = (f.offset + t) * cols;
          for (let c = 0; c < cols; c++) row[c] += w * k[base + c];
        }
        for (let c = 0; c < cols; c++) out[dst * cols + c] = row[c];
      } else {
        // column j of K_slice . P^T
        for (let r = 0; r < rows; r++) {
          let acc = 0;
          for (let t = 0; t < f.width; t++) acc += k[r * cols + f.offset + t] * p[t];
          out[r * newLen + dst] = acc;
        }
      }
    }
    src = f.offset + f.width;
  }
  copy(src, len);
  return { values: out, shape: axis === 0 ? [newLen, cols] : [rows, newLen] };
}
