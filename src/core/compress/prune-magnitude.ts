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

import { DType, ModelFileError, ModelIR, ModelTensor, TensorRole } from '../model/ir.js';
import { dtypeByteSize, encodeFloats, forEachTensorChunk, readTensorFloat32, tensorElementCount } from '../model/tensor-data.js';
import { writeOnnxModel, OnnxTensorReplacement } from '../model/onnx/write.js';
import { writeTfjsModel, TfjsReplacement } from '../model/tfjs-write.js';
import { MagnitudeSelector, prunedCount } from '../analysis/magnitude-select.js';
import type { CompressionContext, CompressionOutcome, TensorChange } from './types.js';
import { measureWritten, sizeNote } from './measured-size.js';
import { ChannelGroup, buildDepGraph, channelGroup, channelSources, forEachIndexInSlice, frozenTensors, selectLowest } from './graph-deps.js';

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
const CHUNK = 1 << 20;

function checkSparsity(s: unknown, what: string, file: string): number {
  if (typeof s !== 'number' || !(s >= 0 && s <= 1)) throw new ModelFileError(file, `${what} must be a number in [0, 1], got ${String(s)}`);
  return s;
}

function isFloatDtype(d: DType): boolean {
  return d === 'float32' || d === 'float16' || d === 'bfloat16' || d === 'float64';
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
    if (!t) throw new ModelFileError(ir.path, `no tensor named "${name}" (tensors: ${ir.tensors.map((x) => x.name).join(', ')})`);
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
  for (let i = 0; i < tensors.length; i++) await forEachTensorChunk(tensors[i], CHUNK, (c, first) => cb(c, i, first));
}

/**
 * Masks over `tensors` that zero exactly k = floor(sparsity * n) weights of smallest |w|
 * (n counts non-NaN values). Ties at the k-th value are pruned in order (tensor order, then
 * element order) until exactly k are pruned.
 */
async function masksFor(tensors: ModelTensor[], sparsity: number, signal?: AbortSignal): Promise<{ masks: Uint8Array[]; threshold: number; pruned: number[] }> {
  const masks = tensors.map((t) => new Uint8Array(tensorElementCount(t.shape)).fill(1));
  const pruned = tensors.map(() => 0);
  const sel = new MagnitudeSelector();
  await streamTensors(tensors, (c) => sel.addPass1(c));
  signal?.throwIfAborted();
  const k = prunedCount(sel.size, sparsity);
  if (k === 0) return { masks, threshold: -Infinity, pruned };
  sel.beginPass2([k]);
  await streamTensors(tensors, (c) => sel.addPass2(c));
  signal?.throwIfAborted();
  const thr = sel.results()[0];
  let below = 0;
  await streamTensors(tensors, (c) => {
    for (let i = 0; i < c.length; i++) if (Math.abs(c[i]) < thr) below++;
  });
  let ties = k - below; // how many values equal to thr are pruned too
  await streamTensors(tensors, (c, ti, first) => {
    const m = masks[ti];
    let p = 0;
    for (let i = 0; i < c.length; i++) {
      const a = Math.abs(c[i]);
      if (a < thr) {
        m[first + i] = 0;
        p++;
      } else if (a === thr && ties > 0) {
        m[first + i] = 0;
        p++;
        ties--;
      }
    }
    pruned[ti] += p;
  });
  return { masks, threshold: thr, pruned };
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

  const masks = new Map<string, Uint8Array>();
  const perTensor: PruneMasks['perTensor'] = [];
  // column granularity: whole columns of the tables first, then the kernels element-wise
  const col = granularity === 'column' ? await columnMasks(ir, tensors, sparsityOf, ctx) : undefined;
  const elementwise = col ? tensors.filter((t) => !col.tables.has(t.name)) : tensors;
  const result: PruneMasks = { masks, perTensor, scope };
  if (col) {
    result.columns = col.groups;
    for (const t of tensors) {
      if (!col.tables.has(t.name)) continue;
      const m = col.masks.get(t.name)!;
      masks.set(t.name, m);
      perTensor.push({ tensor: t.name, sparsity: sparsityOf(t), threshold: NaN, pruned: m.length - m.reduce((a, b) => a + b, 0), count: count(t) });
    }
  }
  /** ANDs in the dead rows found by the column pass; returns the pruned count */
  const finish = (t: ModelTensor, m: Uint8Array, pruned: number): number => {
    const dead = col?.masks.get(t.name);
    if (!dead) return pruned;
    let extra = 0;
    for (let i = 0; i < m.length; i++) {
      if (dead[i] === 0 && m[i] === 1) {
        m[i] = 0;
        extra++;
      }
    }
    return pruned + extra;
  };
  if (elementwise.length === 0) return result;
  if (scope === 'global') {
    ctx?.onProgress?.(0, 'global magnitude threshold');
    const r = await masksFor(elementwise, base, ctx?.signal);
    elementwise.forEach((t, i) => {
      masks.set(t.name, r.masks[i]);
      perTensor.push({ tensor: t.name, sparsity: base, threshold: r.threshold, pruned: finish(t, r.masks[i], r.pruned[i]), count: count(t) });
    });
    result.threshold = r.threshold;
    return result;
  }
  for (let i = 0; i < elementwise.length; i++) {
    const t = elementwise[i];
    const s = sparsityOf(t);
    ctx?.onProgress?.(i / elementwise.length, `threshold of ${t.name}`);
    const r = await masksFor([t], s, ctx?.signal);
    masks.set(t.name, r.masks[0]);
    perTensor.push({ tensor: t.name, sparsity: s, threshold: r.threshold, pruned: finish(t, r.masks[0], r.pruned[0]), count: count(t) });
  }
  return result;
}

/**
 * Column masks of the chosen embedding tables (granularity 'column'): per group of tables that
 * share columns (graph-deps.ts: tables met element-wise), floor(s * width) columns of smallest
 * L2 norm over the group's tables are zeroed, s being the largest sparsity asked of the group's
 * chosen tables. `masks` also holds, for chosen kernels that read a group's channels, the rows
 * that read only zeroed columns (0 = dead), to be ANDed into their element masks.
 */
async function columnMasks(
  ir: ModelIR,
  tensors: ModelTensor[],
  sparsityOf: (t: ModelTensor) => number,
  ctx?: CompressionContext,
): Promise<{ tables: Set<string>; masks: Map<string, Uint8Array>; groups: NonNullable<PruneMasks['columns']> }> {
  const chosen = new Map(tensors.map((t) => [t.name, t]));
  const g = buildDepGraph(ir);
  const sources = channelSources(g).filter((s) => s.kind === 'table' && chosen.has(s.tensor));
  const tables = new Set<string>();
  const masks = new Map<string, Uint8Array>();
  const groups: NonNullable<PruneMasks['columns']> = [];
  const claimed = new Set<string>();
  const values = new Map<string, Float32Array>();
  const valuesOf = async (name: string): Promise<Float32Array> => {
    let v = values.get(name);
    if (!v) values.set(name, (v = await readTensorFloat32(chosen.get(name) ?? ir.tensors.find((t) => t.name === name)!)));
    return v;
  };
  for (const src of sources) {
    ctx?.signal?.throwIfAborted();
    if (claimed.has(src.tensor)) continue;
    let group: ChannelGroup;
    try {
      group = channelGroup(g, src);
    } catch {
      // channels that cannot be followed past some op: the table's own columns still can be zeroed
      const t = chosen.get(src.tensor)!;
      group = { sources: [src], width: src.width, slices: [{ tensor: src.tensor, axis: t.shape.length - 1, offset: 0, width: src.width, kind: 'producer' }] };
    }
    for (const s of group.sources) claimed.add(s.tensor);
    const members = group.sources.filter((s) => chosen.has(s.tensor)).map((s) => chosen.get(s.tensor)!);
    const s = Math.max(...members.map(sparsityOf));
    const drop = Math.floor(s * group.width + 1e-9);
    // column energy over the group's tables (producer slices)
    const energy = new Float32Array(group.width);
    for (const sl of group.slices) {
      if (sl.kind !== 'producer') continue;
      const t = ir.tensors.find((x) => x.name === sl.tensor)!;
      const v = await valuesOf(sl.tensor);
      forEachIndexInSlice(t.shape, sl.axis, sl.offset, group.width, (j, i) => {
        energy[j] += v[i] * v[i];
      });
    }
    const dropAt = selectLowest(energy, drop);
    const deadRows: Array<{ tensor: string; rows: number }> = [];
    for (const sl of group.slices) {
      const t = chosen.get(sl.tensor);
      if (!t || sl.kind === 'bias') continue; // biases are never pruned by magnitude methods
      let m = masks.get(t.name);
      if (!m) masks.set(t.name, (m = new Uint8Array(count(t)).fill(1)));
      forEachIndexInSlice(t.shape, sl.axis, sl.offset, group.width, (j, i) => {
        if (dropAt[j]) m![i] = 0;
      });
      if (sl.kind === 'producer') tables.add(t.name);
      else deadRows.push({ tensor: t.name, rows: drop });
    }
    groups.push({ tables: members.map((t) => t.name), width: group.width, zeroed: drop, deadRows });
  }
  return { tables, masks, groups };
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

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

// ---------------------------------------------------------------------------------------------

/** One-shot magnitude pruning; the outcome writes the same format with the zeros stored. */
export async function pruneMagnitude(ir: ModelIR, settings: PruneMagnitudeSettings, ctx?: CompressionContext): Promise<CompressionOutcome> {
  const m = await pruneMasks(ir, settings, ctx);
  const byName = new Map(ir.tensors.map((t) => [t.name, t]));
  const repl = new Map<string, FloatReplacement>();
  const changes: TensorChange[] = [];
  let total = 0;
  let zeros = 0;
  for (const [i, p] of m.perTensor.entries()) {
    ctx?.signal?.throwIfAborted();
    ctx?.onProgress?.(0.5 + (0.5 * i) / m.perTensor.length, `masking ${p.tensor}`);
    const t = byName.get(p.tensor) as ModelTensor;
    const values = await readTensorFloat32(t);
    const mask = m.masks.get(t.name) as Uint8Array;
    for (let j = 0; j < values.length; j++) if (mask[j] === 0) values[j] = 0;
    let z = 0;
    for (let j = 0; j < values.length; j++) if (values[j] === 0) z++;
    total += values.length;
    zeros += z;
    repl.set(t.name, { shape: t.shape.slice(), values });
    const bytes = t.storage.byteLength;
    changes.push({
      tensor: t.name,
      action: `pruned ${p.pruned} of ${p.count} weights (${pct(p.count ? p.pruned / p.count : 0)}); ${z} zeros now`,
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
  for (const c of m.columns ?? []) {
    const dead = c.deadRows.length ? `; the ${c.deadRows.map((d) => `${d.rows} rows of ${d.tensor}`).join(' and ')} that read them are zeroed too` : '';
    notes.push(
      `${c.tables.join(' + ')}: ${c.zeroed} of ${c.width} columns zeroed (smallest L2 norm${c.tables.length > 1 ? ', the same columns in tables whose vectors meet element-wise' : ''})${dead}.`,
    );
  }
  if (ir.format !== 'onnx' && [...repl.keys()].some((n) => byName.get(n)?.storage.quantization)) {
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
      await writeFloatReplacements(ir, repl, outPath);
      // measured sizes go into the notes the report shows
      const { before, after } = await measureWritten(ir, outPath);
      notes.push(sizeNote(before, after, after.raw === before.raw ? 'unchanged' : `${(before.raw / after.raw).toFixed(2)}x`));
    },
  };
}
