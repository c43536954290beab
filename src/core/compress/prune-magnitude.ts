// Unstructured magnitude pruning: the weights of smallest |w| become exact zeros.
//
// The zeros are STORED (dense tensors, same shapes, same dtypes): the raw file keeps its size and
// ONNX Runtime / TF.js run the same dense kernels at the same speed; only compressors (gzip on a
// CDN, zip in an app bundle) see the gain, because long runs of zero bytes compress well. The
// outcome says so in its notes, with the measured raw and gzip sizes once written.
//
// Thresholds are exact order statistics (MagnitudeSelector: two histogram passes over the float
// bits, never a sort), and ties at the threshold are broken by position, so a sparsity s over n
// weights zeroes exactly floor(s * n) of them (NaNs are never pruned and do not count in n).
// The planning passes keep per tensor only the cut, how many ties at the cut go (the first ones in
// element order) and, for whole columns, the dead indices: ONNX output re-reads each tensor chunk
// by chunk while it is written, so no table is ever held whole (no mask, no value array).

import { isFloatDtype } from '../model/dtype.js';
import { unknownTensorNames } from './method-settings.js';
import { DType, ModelFileError, ModelIR, ModelTensor, TensorRole } from '../model/ir.js';
import { dtypeByteSize, encodeFloats, forEachTensorChunk, tensorElementCount } from '../model/tensor-data.js';
import { collectBytes, TensorByteStream } from '../model/tensor-stream.js';
import { writeOnnxModel, OnnxTensorReplacement } from '../model/onnx/write.js';
import { writeTfjsModel, TfjsReplacement } from '../model/tfjs-write.js';
import { MagnitudeSelector, prunedCount } from '../analysis/magnitude-select.js';
import type { CompressionContext, CompressionOutcome, TensorChange } from './types.js';
import { measureWritten, sizeNote } from './measured-size.js';
import { ChannelGroup, buildDepGraph, channelGroup, channelSources, frozenTensors, selectLowest } from './graph-deps.js';

export interface PruneMagnitudeSettings {
  /** fraction of the chosen weights to zero, 0..1 */
  sparsity: number;
  /** 'global': one threshold over all chosen tensors; 'layer': each tensor to its own sparsity. Default 'global'. */
  scope?: 'global' | 'layer';
  /** per-tensor (or per-layer) sparsity overrides, by tensor name or layer name; with scope 'layer' */
  perLayer?: Record<string, number>;
  /**
   * Which tensors: 'embeddings+dense' (default: embedding tables and dense/conv kernels; never
   * biases, norms, constants) or explicit tensor names.
   */
  tensors?: 'embeddings+dense' | string[];
  /**
   * 'element' (default): single weights. 'column': whole embedding dimensions of the chosen
   * tables (columns of smallest L2 norm); tables whose vectors meet element-wise (a GMF product,
   * a FM or two-tower dot) lose the same columns, and the rows of chosen next-layer kernels that
   * read only zeroed columns are zeroed too (they multiply zeros). Unstructured zeros in two
   * tables that are multiplied element-wise seldom line up, so the product dies long before the
   * tables do; whole columns keep the surviving dimensions intact. Dense kernels stay
   * element-wise (the scope applies to them).
   */
  granularity?: 'element' | 'column';
}

export interface PruneMasks {
  /** per pruned tensor: 1 = weight kept, 0 = pruned (flat, row-major) */
  masks: Map<string, Uint8Array>;
  /** per tensor: the sparsity asked for, the |w| threshold used and the zeros made */
  perTensor: Array<{ tensor: string; sparsity: number; threshold: number; pruned: number; count: number }>;
  /** the resolved scope */
  scope: 'global' | 'layer';
  /** global scope: the one threshold (|w| at rank floor(s*n)); -Infinity when nothing is pruned */
  threshold?: number;
  /** granularity 'column': per group of tables sharing columns, the columns zeroed */
  columns?: Array<{ tables: string[]; width: number; zeroed: number; deadRows: Array<{ tensor: string; rows: number }> }>;
}

const PRUNABLE_ROLES: ReadonlySet<TensorRole> = new Set<TensorRole>(['embedding', 'dense-kernel', 'conv-kernel']);
/** Elements per chunk when tensors are streamed (planning passes and the pruned output); tests may lower it. */
export const magnitudeStreaming = { chunkElements: 1 << 20 };

function checkSparsity(s: unknown, what: string, file: string): number {
  if (typeof s !== 'number' || !(s >= 0 && s <= 1)) throw new ModelFileError(file, `${what} must be a number in [0, 1], got ${String(s)}`);
  return s;
}

/** The tensors a magnitude method works on: by default every embedding table and dense kernel. */
export function chooseTensors(ir: ModelIR, which: 'embeddings+dense' | string[] | undefined): ModelTensor[] {
  if (which === undefined || which === 'embeddings+dense') {
    const frozen = frozenTensors(ir);
    const output = outputLayerKernels(ir);
    return ir.tensors.filter(
      (t) => PRUNABLE_ROLES.has(t.role) && isFloatDtype(t.dtype) && t.trainable !== false && !frozen.has(t.name) && !output.has(t.name),
    );
  }
  if (!Array.isArray(which)) throw new ModelFileError(ir.path, `tensors must be 'embeddings+dense' or a list of tensor names`);
  const byName = new Map(ir.tensors.map((t) => [t.name, t]));
  return which.map((name) => {
    const t = byName.get(name);
    if (!t) throw new ModelFileError(ir.path, unknownTensorNames([name], ['embeddings+dense'], [...byName.keys()]));
    if (!isFloatDtype(t.dtype)) throw new ModelFileError(ir.path, `tensor "${name}" is ${t.dtype}; only float tensors can be magnitude-pruned`);
    return t;
  });
}

/** Ops between the last dense layer and the model's output that do not change which layer it is. */
const PASS_THROUGH_TO_OUTPUT = new Set(['Add', 'Sigmoid', 'Relu', 'Tanh', 'Softmax', 'Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Cast']);

/**
 * Kernels of the layers that produce the model's outputs (the scoring layer of a recommender).
 * They are tiny and every weight feeds the score directly: on a NeuMF trained on MovieLens-100K,
 * pruning 50% of its 48 weights alone cost 31% of NDCG@10 while 50% of any other tensor cost at
 * most 3% (`prunescope sensitivity`). Like biases, they are left out unless named explicitly
 * (when the model has other dense layers).
 */
export function outputLayerKernels(ir: ModelIR): Set<string> {
  const out = new Set<string>();
  const kernels = ir.tensors.filter((t) => t.role === 'dense-kernel');
  if (ir.format === 'onnx') {
    const producer = new Map<string, (typeof ir.graph.nodes)[number]>();
    for (const n of ir.graph.nodes) if (!n.scope) for (const o of n.outputs) producer.set(o, n);
    const isKernel = new Set(kernels.map((t) => t.name));
    const tensorNames = new Set(ir.tensors.map((t) => t.name));
    for (const g of ir.graph.outputs) {
      let node = producer.get(g.name);
      for (let hops = 0; node && hops < 16; hops++) {
        if (node.op === 'MatMul' || node.op === 'Gemm') {
          for (const i of node.inputs) if (isKernel.has(i)) out.add(i);
          break;
        }
        if (!PASS_THROUGH_TO_OUTPUT.has(node.op)) break;
        const next: string | undefined = node.inputs.find((i) => i && !tensorNames.has(i));
        node = next ? producer.get(next) : undefined;
      }
    }
  } else {
    const outputLayers = new Set(ir.graph.outputs.map((o) => o.name));
    for (const t of kernels) if (outputLayers.has(t.layer)) out.add(t.name);
  }
  // a model whose only dense layer is its output layer (a bare table + projection) keeps it prunable
  return out.size < kernels.length ? out : new Set();
}

async function streamTensors(tensors: ModelTensor[], cb: (chunk: Float32Array, t: number, first: number) => void): Promise<void> {
  for (let i = 0; i < tensors.length; i++) await forEachTensorChunk(tensors[i], magnitudeStreaming.chunkElements, (c, first) => cb(c, i, first));
}

/** Indices along one axis of a tensor whose whole slices are zeroed (column granularity). */
interface DeadIndices {
  /** elements per step along the axis (product of the later dims) */
  inner: number;
  /** length of the axis */
  dim: number;
  /** 1 = every element at this index along the axis is pruned */
  dead: Uint8Array;
}

/**
 * How one tensor is pruned, found by the planning passes and applied chunk by chunk (so the
 * pruned values are never held whole): every weight with |w| < cut, the first `ties` weights
 * (in element order) with |w| == cut, and every weight on a dead index of `dead`.
 */
interface TensorPrunePlan {
  tensor: ModelTensor;
  sparsity: number;
  /** the threshold reported (NaN for tables pruned by whole columns) */
  threshold: number;
  /** element-wise cut: -Infinity prunes no single weight */
  cut: number;
  ties: number;
  dead: DeadIndices[];
  /** weights pruned */
  pruned: number;
  /** zeros once pruned (pruned ones plus zeros that were kept) */
  zeros: number;
  count: number;
}

interface PrunePlan {
  scope: 'global' | 'layer';
  /** per tensor, in the order of PruneMasks.perTensor */
  tensors: TensorPrunePlan[];
  threshold?: number;
  columns?: PruneMasks['columns'];
}

/** Sets marks[i] = 1 for every element of `c` (the tensor's elements first..) that `p` prunes, else 0; returns the ties left after `c`. */
function markPruned(p: TensorPrunePlan, c: Float32Array, first: number, ties: number, marks: Uint8Array): number {
  const cut = p.cut;
  if (cut === -Infinity) {
    marks.fill(0, 0, c.length);
  } else {
    for (let i = 0; i < c.length; i++) {
      const a = Math.abs(c[i]);
      if (a < cut) {
        marks[i] = 1;
      } else if (a === cut && ties > 0) {
        marks[i] = 1;
        ties--;
      } else {
        marks[i] = 0;
      }
    }
  }
  for (const d of p.dead) {
    let r = first % d.inner;
    let j = Math.floor(first / d.inner) % d.dim;
    for (let i = 0; i < c.length; i++) {
      if (d.dead[j]) marks[i] = 1;
      if (++r === d.inner) {
        r = 0;
        if (++j === d.dim) j = 0;
      }
    }
  }
  return ties;
}

/** Calls cb(chunk, first, marks) over the tensor of `p`, marks saying which weights `p` prunes. */
async function forEachMarkedChunk(p: TensorPrunePlan, cb: (c: Float32Array, first: number, marks: Uint8Array) => void | Promise<void>): Promise<void> {
  const step = magnitudeStreaming.chunkElements;
  const marks = new Uint8Array(Math.max(1, Math.min(step, p.count)));
  let ties = p.ties;
  await forEachTensorChunk(p.tensor, step, (c, first) => {
    ties = markPruned(p, c, first, ties, marks);
    return cb(c, first, marks);
  });
}

/** The pruned tensor's stored bytes in `dtype`, produced chunk by chunk each time they are streamed. */
function prunedTensorStream(p: TensorPrunePlan, dtype: DType): TensorByteStream {
  const where = p.tensor.storage.location;
  return {
    byteLength: tensorBytes(dtype, p.tensor.shape),
    stream: (sink) =>
      forEachMarkedChunk(p, async (c, _first, marks) => {
        for (let i = 0; i < c.length; i++) if (marks[i]) c[i] = 0;
        await sink(dtype === 'float32' ? new Uint8Array(c.buffer, c.byteOffset, c.byteLength) : encodeFloatsAs(dtype, c, where));
      }),
  };
}

/** Exact counts of a plan with dead indices (pruned, zeros once pruned), by one pass. */
async function countPruned(p: TensorPrunePlan): Promise<void> {
  let pruned = 0;
  let zeros = 0;
  await forEachMarkedChunk(p, (c, _first, marks) => {
    for (let i = 0; i < c.length; i++) {
      if (marks[i]) pruned++;
      if (marks[i] || c[i] === 0) zeros++;
    }
  });
  p.pruned = pruned;
  p.zeros = zeros;
}

/**
 * The element-wise cut over `tensors` that prunes exactly k = floor(sparsity * n) weights of
 * smallest |w| (n counts non-NaN values): the k-th smallest |w|, and per tensor how many of the
 * values equal to it are pruned, ties going in order (tensor order, then element order) until
 * exactly k are pruned. Also per tensor the weights pruned and the zeros once pruned.
 */
async function elementCuts(
  tensors: ModelTensor[],
  sparsity: number,
  signal?: AbortSignal,
): Promise<{ threshold: number; ties: number[]; pruned: number[]; zeros: number[] }> {
  const sel = new MagnitudeSelector();
  await streamTensors(tensors, (c) => sel.addPass1(c));
  signal?.throwIfAborted();
  const k = prunedCount(sel.size, sparsity);
  let thr = -Infinity;
  if (k > 0) {
    sel.beginPass2([k]);
    await streamTensors(tensors, (c) => sel.addPass2(c));
    signal?.throwIfAborted();
    thr = sel.results()[0];
  }
  const below = tensors.map(() => 0);
  const equal = tensors.map(() => 0);
  const zerosBefore = tensors.map(() => 0);
  // zeros before pruning matter only when the cut does not prune every zero (|w| = 0 < cut)
  const countZeros = !(thr > 0);
  if (k > 0 || countZeros) {
    await streamTensors(tensors, (c, ti) => {
      let b = 0;
      let e = 0;
      let z = 0;
      for (let i = 0; i < c.length; i++) {
        const a = Math.abs(c[i]);
        if (a < thr) b++;
        else if (a === thr) e++;
        if (countZeros && a === 0) z++;
      }
      below[ti] += b;
      equal[ti] += e;
      zerosBefore[ti] += z;
    });
    signal?.throwIfAborted();
  }
  let left = k - below.reduce((a, b) => a + b, 0); // how many values equal to thr are pruned too
  const ties = equal.map((e) => {
    const t = Math.min(e, Math.max(0, left));
    left -= t;
    return t;
  });
  const pruned = below.map((b, i) => b + ties[i]);
  // thr > 0: every zero is pruned; thr = 0: the zeros are the ties, pruned or kept; none pruned: the zeros as they were
  const zeros = pruned.map((p, i) => p + (countZeros ? zerosBefore[i] - ties[i] : 0));
  return { threshold: thr, ties, pruned, zeros };
}

/** The model IR with current values (by name) in place of the stored ones, for pruneMasks (masks
 * chosen from weights while they train: gradual and dynamic pruning). */
export function irWithValues(ir: ModelIR, values: Map<string, Float32Array>): ModelIR {
  return {
    ...ir,
    tensors: ir.tensors.map((x) => {
      const v = values.get(x.name);
      if (!v) return x;
      return { ...x, dtype: 'float32', storage: { dtype: 'float32', byteLength: v.byteLength, source: { kind: 'values', values: v }, location: `${x.name} (being fine-tuned)` } };
    }),
  };
}

/**
 * The pruning masks a magnitude pruning with these settings would apply, without touching any
 * value: fine-tuning keeps them fixed (multiply the gradients or the weights by the mask after
 * each step) so that pruned weights stay zero.
 */
export async function pruneMasks(ir: ModelIR, settings: PruneMagnitudeSettings, ctx?: CompressionContext): Promise<PruneMasks> {
  const plan = await planPruning(ir, settings, ctx);
  const masks = new Map<string, Uint8Array>();
  for (const p of plan.tensors) {
    const m = new Uint8Array(p.count);
    await forEachMarkedChunk(p, (c, first, marks) => {
      for (let i = 0; i < c.length; i++) m[first + i] = marks[i] ^ 1;
    });
    masks.set(p.tensor.name, m);
  }
  const result: PruneMasks = { masks, perTensor: plan.tensors.map(perTensorEntry), scope: plan.scope };
  if (plan.columns) result.columns = plan.columns;
  if (plan.threshold !== undefined) result.threshold = plan.threshold;
  return result;
}

function perTensorEntry(p: TensorPrunePlan): PruneMasks['perTensor'][number] {
  return { tensor: p.tensor.name, sparsity: p.sparsity, threshold: p.threshold, pruned: p.pruned, count: p.count };
}

/**
 * Which weights of which tensors a magnitude pruning with these settings zeroes, as per-tensor
 * cuts and dead indices (no mask, no values held): the planning passes stream the tensors.
 */
async function planPruning(ir: ModelIR, settings: PruneMagnitudeSettings, ctx?: CompressionContext): Promise<PrunePlan> {
  const scope = settings.scope ?? 'global';
  if (scope !== 'global' && scope !== 'layer') throw new ModelFileError(ir.path, `scope must be 'global' or 'layer', got ${String(scope)}`);
  const granularity = settings.granularity ?? 'element';
  if (granularity !== 'element' && granularity !== 'column') throw new ModelFileError(ir.path, `granularity must be 'element' or 'column', got ${String(granularity)}`);
  const base = checkSparsity(settings.sparsity, 'sparsity', ir.path);
  const tensors = chooseTensors(ir, settings.tensors);
  if (tensors.length === 0) throw new ModelFileError(ir.path, 'no tensor to prune: the model has no embedding table or dense kernel of a float type');
  const per = settings.perLayer ?? {};
  if (scope === 'global' && Object.keys(per).length > 0) {
    throw new ModelFileError(ir.path, "perLayer sparsities need scope 'layer' (global scope uses one threshold over all chosen tensors)");
  }
  const known = new Set<string>([...tensors.map((t) => t.name), ...tensors.map((t) => t.layer)]);
  for (const k of Object.keys(per)) {
    if (!known.has(k)) throw new ModelFileError(ir.path, `perLayer names "${k}", which is none of the chosen tensors or their layers`);
  }
  const sparsityOf = (t: ModelTensor): number => checkSparsity(per[t.name] ?? per[t.layer] ?? base, `sparsity of ${t.name}`, ir.path);

  const plan: PrunePlan = { scope, tensors: [] };
  // a tensor none of whose weights fall under the threshold skips the element-wise test (cut -Infinity)
  const tensorPlan = (t: ModelTensor, sparsity: number, threshold: number, counts = { ties: 0, pruned: 0, zeros: 0 }): TensorPrunePlan => ({
    tensor: t, sparsity, threshold, cut: counts.pruned > 0 ? threshold : -Infinity, ...counts, dead: [], count: count(t),
  });
  // column granularity: whole columns of the tables first, then the kernels element-wise
  const col = granularity === 'column' ? await columnPlan(ir, tensors, sparsityOf, ctx) : undefined;
  const elementwise = col ? tensors.filter((t) => !col.tables.has(t.name)) : tensors;
  /** a plan with dead indices: pruned and zeros counted in one more pass */
  const withDead = async (p: TensorPrunePlan): Promise<TensorPrunePlan> => {
    const dead = col?.dead.get(p.tensor.name);
    if (dead) {
      p.dead = dead;
      await countPruned(p);
    }
    return p;
  };
  if (col) {
    plan.columns = col.groups;
    for (const t of tensors) if (col.tables.has(t.name)) plan.tensors.push(await withDead(tensorPlan(t, sparsityOf(t), NaN)));
  }
  if (elementwise.length === 0) return plan;
  const cutPlans = async (group: ModelTensor[], s: number): Promise<number> => {
    const r = await elementCuts(group, s, ctx?.signal);
    for (const [i, t] of group.entries()) {
      plan.tensors.push(await withDead(tensorPlan(t, s, r.threshold, { ties: r.ties[i], pruned: r.pruned[i], zeros: r.zeros[i] })));
    }
    return r.threshold;
  };
  if (scope === 'global') {
    ctx?.onProgress?.(0, 'global magnitude threshold');
    plan.threshold = await cutPlans(elementwise, base);
    return plan;
  }
  for (let i = 0; i < elementwise.length; i++) {
    const t = elementwise[i];
    const s = sparsityOf(t);
    ctx?.onProgress?.(i / elementwise.length, `threshold of ${t.name}`);
    await cutPlans([t], s);
  }
  return plan;
}

/** Elements per step along `axis` and the axis' length. */
function axisStride(shape: number[], axis: number): { inner: number; dim: number } {
  return { inner: shape.slice(axis + 1).reduce((a, b) => a * b, 1), dim: shape[axis] };
}

/** energy[j] += w^2 for every element w of `t` at index offset + j (j < energy.length) along `axis`, streamed. */
async function addSliceEnergy(t: ModelTensor, axis: number, offset: number, energy: Float32Array): Promise<void> {
  const { inner, dim } = axisStride(t.shape, axis);
  const width = energy.length;
  await forEachTensorChunk(t, magnitudeStreaming.chunkElements, (c, first) => {
    let r = first % inner;
    let j = Math.floor(first / inner) % dim;
    for (let i = 0; i < c.length; i++) {
      const k = j - offset;
      if (k >= 0 && k < width) energy[k] += c[i] * c[i];
      if (++r === inner) {
        r = 0;
        if (++j === dim) j = 0;
      }
    }
  });
}

/**
 * Column plan of the chosen embedding tables (granularity 'column'): per group of tables that
 * share columns (graph-deps.ts: tables met element-wise), floor(s * width) columns of smallest
 * L2 norm over the group's tables are zeroed, s being the largest sparsity asked of the group's
 * chosen tables. `dead` holds, per chosen tensor a group reaches, the indices zeroed along each
 * axis: the tables' columns, and for chosen kernels that read a group's channels, the rows that
 * read only zeroed columns, to be pruned on top of their element-wise cut.
 */
async function columnPlan(
  ir: ModelIR,
  tensors: ModelTensor[],
  sparsityOf: (t: ModelTensor) => number,
  ctx?: CompressionContext,
): Promise<{ tables: Set<string>; dead: Map<string, DeadIndices[]>; groups: NonNullable<PruneMasks['columns']> }> {
  const chosen = new Map(tensors.map((t) => [t.name, t]));
  const g = buildDepGraph(ir);
  const sources = channelSources(g).filter((s) => s.kind === 'table' && chosen.has(s.tensor));
  const tables = new Set<string>();
  const dead = new Map<string, DeadIndices[]>();
  const groups: NonNullable<PruneMasks['columns']> = [];
  const claimed = new Set<string>();
  for (const src of sources) {
    ctx?.signal?.throwIfAborted();
    if (claimed.has(src.tensor)) continue;
    let group: ChannelGroup;
    try {
      group = channelGroup(g, src);
    } catch {
      // channels that cannot be followed past some op: the table's own columns still can be zeroed
      const t = chosen.get(src.tensor)!;
      group = { sources: [src], width: src.width, slices: [{ tensor: src.tensor, axis: t.shape.length - 1, offset: 0, width: src.width, kind: 'producer' }], linear: false };
    }
    for (const s of group.sources) claimed.add(s.tensor);
    const members = group.sources.filter((s) => chosen.has(s.tensor)).map((s) => chosen.get(s.tensor)!);
    const s = Math.max(...members.map(sparsityOf));
    const drop = Math.floor(s * group.width + 1e-9);
    // column energy over the group's tables (producer slices)
    const energy = new Float32Array(group.width);
    for (const sl of group.slices) {
      if (sl.kind !== 'producer') continue;
      await addSliceEnergy(chosen.get(sl.tensor) ?? ir.tensors.find((x) => x.name === sl.tensor)!, sl.axis, sl.offset, energy);
    }
    const dropAt = selectLowest(energy, drop);
    const deadRows: Array<{ tensor: string; rows: number }> = [];
    for (const sl of group.slices) {
      const t = chosen.get(sl.tensor);
      if (!t || sl.kind === 'bias') continue; // biases are never pruned by magnitude methods
      let axes = dead.get(t.name);
      if (!axes) dead.set(t.name, (axes = []));
      const { inner, dim } = axisStride(t.shape, sl.axis);
      let d = axes.find((x) => x.inner === inner && x.dim === dim);
      if (!d) axes.push((d = { inner, dim, dead: new Uint8Array(dim) }));
      for (let j = 0; j < group.width; j++) if (dropAt[j]) d.dead[sl.offset + j] = 1;
      if (sl.kind === 'producer') tables.add(t.name);
      else deadRows.push({ tensor: t.name, rows: drop });
    }
    groups.push({ tables: members.map((t) => t.name), width: group.width, zeroed: drop, deadRows });
  }
  return { tables, dead, groups };
}

function count(t: ModelTensor): number {
  return tensorElementCount(t.shape);
}


/**
 * TFMOT's PolynomialDecay: sparsity at `step` ramps from `initial` (at `begin`) to `final` (at
 * `end`) as final + (initial - final) * (1 - (step - begin) / (end - begin))^power; steps before
 * `begin` give `initial`, after `end` give `final`. Pruning early and fast, then slowly, lets the
 * network recover between steps.
 */
export function polynomialDecaySparsity(
  step: number,
  s: { initial: number; final: number; begin: number; end: number; power?: number },
): number {
  const power = s.power ?? 3;
  if (!(s.end > s.begin)) throw new RangeError(`polynomial decay needs end > begin (got ${s.begin}..${s.end})`);
  for (const [k, v] of [['initial', s.initial], ['final', s.final]] as const) {
    if (!(v >= 0 && v <= 1)) throw new RangeError(`${k} sparsity ${v} outside [0, 1]`);
  }
  const t = Math.min(s.end, Math.max(s.begin, step));
  const frac = 1 - (t - s.begin) / (s.end - s.begin);
  return s.final + (s.initial - s.final) * Math.pow(frac, power);
}

// ---------------------------------------------------------------------------------------------
// Writing values back (shared by the pruning methods)

/** The one float encoder (model/tensor-data.ts), under the name the pruning methods import. */
export const encodeFloatsAs = encodeFloats;

/** A replacement of a float tensor's values (maybe a new shape) in the tensor's own computing dtype. */
export interface FloatReplacement {
  shape: number[];
  values: Float32Array;
}

/**
 * Writes `ir` with some float tensors given new values (and maybe new shapes), through the
 * value-patching writers: ONNX keeps the stored dtype (float32/float16/float64); TF.js writes
 * float32 (a quantized weight is stored dequantized: its quantization cannot hold the new values exactly).
 */
export async function writeFloatReplacements(ir: ModelIR, repl: Map<string, FloatReplacement>, outPath: string): Promise<void> {
  const byName = new Map(ir.tensors.map((t) => [t.name, t]));
  if (ir.format === 'onnx') {
    const replace = new Map<string, OnnxTensorReplacement>();
    for (const [name, r] of repl) {
      const t = byName.get(name);
      if (!t) throw new ModelFileError(ir.path, `no tensor named "${name}"`);
      replace.set(name, { dtype: t.storage.dtype, shape: r.shape, data: encodeFloatsAs(t.storage.dtype, r.values, t.storage.location) });
    }
    await writeOnnxModel(ir, outPath, { replace });
    return;
  }
  const replace = new Map<string, TfjsReplacement>();
  for (const [name, r] of repl) {
    if (!byName.has(name)) throw new ModelFileError(ir.path, `no tensor named "${name}"`);
    replace.set(name, { dtype: 'float32', shape: r.shape, data: r.values });
  }
  await writeTfjsModel(ir, outPath, { replace });
}

export function tensorBytes(dtype: DType, shape: number[]): number {
  return tensorElementCount(shape) * (dtypeByteSize(dtype) || 4);
}

/**
 * Writes `ir` with the planned tensors pruned: ONNX streams each one in its stored dtype (re-read
 * chunk by chunk, never whole); TF.js builds its shards in memory, so it gets float32 values.
 */
async function writePruned(ir: ModelIR, plans: TensorPrunePlan[], outPath: string): Promise<void> {
  if (ir.format === 'onnx') {
    const replace = new Map<string, OnnxTensorReplacement>();
    for (const p of plans) {
      const t = p.tensor;
      replace.set(t.name, { dtype: t.storage.dtype, shape: t.shape.slice(), data: prunedTensorStream(p, t.storage.dtype) });
    }
    await writeOnnxModel(ir, outPath, { replace });
    return;
  }
  const repl = new Map<string, FloatReplacement>();
  for (const p of plans) {
    const b = await collectBytes(prunedTensorStream(p, 'float32'), p.tensor.name);
    repl.set(p.tensor.name, { shape: p.tensor.shape.slice(), values: new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4) });
  }
  await writeFloatReplacements(ir, repl, outPath);
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

// ---------------------------------------------------------------------------------------------

/** One-shot magnitude pruning; the outcome writes the same format with the zeros stored. */
export async function pruneMagnitude(ir: ModelIR, settings: PruneMagnitudeSettings, ctx?: CompressionContext): Promise<CompressionOutcome> {
  const m = await planPruning(ir, settings, ctx);
  const changes: TensorChange[] = [];
  let total = 0;
  let zeros = 0;
  for (const [i, p] of m.tensors.entries()) {
    ctx?.signal?.throwIfAborted();
    ctx?.onProgress?.(0.5 + (0.5 * i) / m.tensors.length, `masking ${p.tensor.name}`);
    const t = p.tensor;
    total += p.count;
    zeros += p.zeros;
    const bytes = t.storage.byteLength;
    changes.push({
      tensor: t.name,
      action: `pruned ${p.pruned} of ${p.count} weights (${pct(p.count ? p.pruned / p.count : 0)}); ${p.zeros} zeros now`,
      before: { shape: t.shape.slice(), dtype: t.dtype, bytes },
      after: [{ name: t.name, shape: t.shape.slice(), dtype: t.dtype, bytes: ir.format === 'onnx' ? bytes : tensorBytes('float32', t.shape) }],
    });
  }
  const thresholdText = m.threshold !== undefined ? `, |w| threshold ${m.threshold}` : '';
  const notes = [
    m.columns
      ? `Magnitude pruning by embedding columns (${m.scope} scope for the kernels${thresholdText}): ${zeros} of ${total} chosen weights are zero (${pct(total ? zeros / total : 0)}); biases, norms and constants are untouched.`
      : `Unstructured magnitude pruning (${m.scope} scope${thresholdText}): ${zeros} of ${total} chosen weights are zero (${pct(total ? zeros / total : 0)}); biases, norms and constants are untouched.`,
    'The zeros are stored densely: the raw file size does not change, and ONNX Runtime / TF.js run the same dense kernels, so latency does not change either. Only the compressed (gzip) size shrinks.',
  ];
  // a threshold of 0 everywhere cuts only weights that are zero already
  if (!m.columns && total > 0 && m.tensors.every((p) => p.threshold === 0)) {
    notes.push(`Nothing new was pruned: the chosen weights are ${pct(zeros / total)} zeros already, at or above the ${pct(settings.sparsity)} asked for; the output is the same model.`);
  }
  for (const c of m.columns ?? []) {
    const dead = c.deadRows.length ? `; the ${c.deadRows.map((d) => `${d.rows} rows of ${d.tensor}`).join(' and ')} that read them are zeroed too` : '';
    notes.push(
      `${c.tables.join(' + ')}: ${c.zeroed} of ${c.width} columns zeroed (smallest L2 norm${c.tables.length > 1 ? ', the same columns in tables whose vectors meet element-wise' : ''})${dead}.`,
    );
  }
  if (ir.format !== 'onnx' && m.tensors.some((p) => p.tensor.storage.quantization)) {
    notes.push('Quantized TF.js weights were written as float32 (their affine quantization cannot keep exact zeros): quantize after pruning.');
  }
  const settingsOut: Record<string, unknown> = {
    sparsity: settings.sparsity,
    scope: m.scope,
    tensors: settings.tensors ?? 'embeddings+dense',
    ...(settings.granularity ? { granularity: settings.granularity } : {}),
    ...(settings.perLayer ? { perLayer: settings.perLayer } : {}),
  };
  return {
    method: 'prune-magnitude',
    settings: settingsOut,
    changes,
    notes,
    async write(outPath: string): Promise<void> {
      await writePruned(ir, m.tensors, outPath);
      // measured sizes go into the notes the report shows
      const { before, after } = await measureWritten(ir, outPath);
      notes.push(sizeNote(before, after, after.raw === before.raw ? 'unchanged' : `${(before.raw / after.raw).toFixed(2)}x`));
    },
  };
}
