// Structured pruning of MLP neurons: output neurons of Dense / MatMul(+Add bias) / Gemm layers
// are removed (kernel columns, bias entries) together with the rows of the next kernels that
// read them (found by the channel walk of graph-deps.ts, through activations, bias adds and
// Concats, and across element-wise couplings such as a two-tower dot). The file really shrinks
// and the dense kernels really get smaller, so unlike unstructured zeros this buys speed too.
//
// A neuron whose incoming weights are all zero outputs the constant act(bias); removing it adds
// act(bias) * (its row of the next kernel) to the next bias, so its removal changes no output.
//
// Big tensors (embedding tables of millions of rows) are never held whole: their importance is
// summed over chunks of rows, and (ONNX) their pruned bytes are produced chunk by chunk while the
// writer writes them, in the same order as the in-memory path, so the file is the same byte for byte.

import { DType, ModelFileError, ModelIR, ModelTensor } from '../model/ir.js';
import { encodeFloats, forEachTensorChunk, readTensorFloat32, tensorElementCount } from '../model/tensor-data.js';
import { TensorByteStream } from '../model/tensor-stream.js';
import { writeEditedOnnxModel } from '../model/onnx/edit.js';
import { writeTfjsModel } from '../model/tfjs-write.js';
import { isOnnxNative } from '../model/onnx.js';
import type { CompressionContext, CompressionOutcome, TensorChange } from './types.js';
import {
  ChannelGroup,
  DepGraph,
  applyActivation,
  buildDepGraph,
  channelGroup,
  channelSources,
  dropAlongAxis,
  forEachIndexInSlice,
  isObject,
  kerasLayers,
  layerConfig,
  keptCount,
  selectLowest,
} from './graph-deps.js';
import { encodeFloatsAs, tensorBytes } from './prune-magnitude.js';
import { writeAndMeasure } from './measured-size.js';

export interface PruneNeuronsSettings {
  /** fraction of each layer's neurons kept (give this or sparsity) */
  keep?: number;
  /** fraction of each layer's neurons removed */
  sparsity?: number;
  /** layer names (TF.js layer / ONNX node or kernel layer) to prune; default every hidden dense layer whose outputs can be followed */
  layers?: string[];
  /** 'l2': L2 norm of the neuron's incoming weights and bias; 'l2xnext': that times the L2 norm of its outgoing weights. Default 'l2'. */
  importance?: 'l2' | 'l2xnext';
}

// ---------------------------------------------------------------------------------------------
// Shared by the structured methods (neurons, dims): apply drop masks to channel groups and write.

export interface PlannedGroup {
  group: ChannelGroup;
  /** 1 = channel removed, over group.width */
  drop: Uint8Array;
  label: string;
}

export interface StructuredResult {
  /** new values and shapes of every changed tensor (but the streamed ones) */
  tensors: Map<string, { values: Float32Array; shape: number[] }>;
  /** ONNX: big tensors that only lose indices, written from the original chunk by chunk */
  streamed?: Map<string, { shape: number[]; data: TensorByteStream }>;
  /** TF.js topology edits: layer name -> config field -> new value */
  topology: Map<string, Record<string, number>>;
  changes: TensorChange[];
  exactRemovals: number;
}

/**
 * Tensors of at least `minBytes` (as float32) are read in chunks of about `chunkElements` values
 * (whole rows), never whole; tests may lower both.
 */
export const structuredStreaming = { minBytes: 64 * 1024 * 1024, chunkElements: 1 << 20 };

function isStreamed(t: ModelTensor, cache: Map<string, Float32Array>): boolean {
  return t.shape.length >= 1 && !cache.has(t.name) && tensorElementCount(t.shape) * 4 >= structuredStreaming.minBytes;
}

/** Rows (index 0 of the shape) per chunk of `t` at the current setting. */
function chunkRowsOf(t: ModelTensor): number {
  return Math.max(1, Math.floor(structuredStreaming.chunkElements / Math.max(1, tensorElementCount(t.shape.slice(1)))));
}

/** Calls fn on chunks of `rows` whole rows: the values, the first row and the chunk's shape. */
async function forEachRowChunk(t: ModelTensor, rows: number, fn: (chunk: Float32Array, row0: number, shape: number[]) => void | Promise<void>): Promise<void> {
  const rowLen = tensorElementCount(t.shape.slice(1));
  if (rowLen === 0) return;
  await forEachTensorChunk(t, rows * rowLen, (chunk, first) => fn(chunk, first / rowLen, [chunk.length / rowLen, ...t.shape.slice(1)]));
}

/**
 * Sum of squares per channel of one slice, added to acc[0 .. width). Chunks of rows visit each
 * channel's values in the order the whole tensor does, so the sums are the same to the bit.
 */
async function addSliceSquares(t: ModelTensor, axis: number, offset: number, width: number, acc: Float64Array, cache: Map<string, Float32Array>): Promise<void> {
  const add = (v: Float32Array, shape: number[], at: number, n: number, j0: number): void =>
    forEachIndexInSlice(shape, axis, at, n, (j, i) => {
      acc[j0 + j] += v[i] * v[i];
    });
  if (!isStreamed(t, cache)) {
    add(await valuesOf(t, cache), t.shape, offset, width, 0);
    return;
  }
  await forEachRowChunk(t, chunkRowsOf(t), (chunk, row0, shape) => {
    if (axis > 0) return add(chunk, shape, offset, width, 0);
    // a slice of rows: the part of it in this chunk
    const lo = Math.max(offset, row0);
    const hi = Math.min(offset + width, row0 + shape[0]);
    if (lo < hi) add(chunk, shape, lo - row0, hi - lo, lo - offset);
  });
}

/** Channel importance of a group: L2 norm over its producer (and bias) slices, optionally times its consumer norm. */
export async function groupImportance(g: DepGraph, group: ChannelGroup, mode: 'l2' | 'l2xnext', cache: Map<string, Float32Array>): Promise<Float32Array> {
  const prod = new Float64Array(group.width);
  const cons = new Float64Array(group.width);
  for (const s of group.slices) {
    await addSliceSquares(tensorOf(g.ir, s.tensor), s.axis, s.offset, group.width, s.kind === 'consumer' ? cons : prod, cache);
  }
  const out = new Float32Array(group.width);
  for (let j = 0; j < group.width; j++) out[j] = mode === 'l2' ? Math.sqrt(prod[j]) : Math.sqrt(prod[j]) * Math.sqrt(cons[j]);
  return out;
}

function forEachInSlice(v: Float32Array, shape: number[], axis: number, offset: number, width: number, cb: (j: number, x: number) => void): void {
  forEachIndexInSlice(shape, axis, offset, width, (j, i) => cb(j, v[i]));
}

export function tensorOf(ir: ModelIR, name: string): ModelTensor {
  const t = ir.tensors.find((x) => x.name === name);
  if (!t) throw new ModelFileError(ir.path, `no tensor named "${name}"`);
  return t;
}

async function valuesOf(t: ModelTensor, cache: Map<string, Float32Array>): Promise<Float32Array> {
  let v = cache.get(t.name);
  if (!v) {
    v = await readTensorFloat32(t);
    cache.set(t.name, v);
  }
  return v;
}

/** Applies every group's drop mask to every slice it owns (compensating biases first), on the original values. */
export async function applyGroups(g: DepGraph, plans: PlannedGroup[], cache: Map<string, Float32Array>): Promise<StructuredResult> {
  const ir = g.ir;
  // per tensor, per axis: the drop mask over the whole axis
  const drops = new Map<string, Map<number, Uint8Array>>();
  const work = new Map<string, Float32Array>();
  const getWork = async (name: string): Promise<Float32Array> => {
    let w = work.get(name);
    if (!w) {
      w = Float32Array.from(await valuesOf(tensorOf(ir, name), cache));
      work.set(name, w);
    }
    return w;
  };
  let exactRemovals = 0;
  for (const p of plans) {
    const { group, drop } = p;
    for (const s of group.slices) {
      const t = tensorOf(ir, s.tensor);
      if (!drops.has(t.name)) drops.set(t.name, new Map());
      const m = drops.get(t.name)!;
      if (!m.has(s.axis)) m.set(s.axis, new Uint8Array(t.shape[s.axis]));
      const mask = m.get(s.axis)!;
      for (let j = 0; j < group.width; j++) if (drop[j]) mask[s.offset + j] = 1;
    }
    // constant neurons: fold act(bias_j) * W_next[j, :] into the next bias (exact)
    const comp = group.compensation;
    if (comp) {
      const producer = group.slices.find((s) => s.kind === 'producer')!;
      const pt = tensorOf(ir, producer.tensor);
      const pv = await valuesOf(pt, cache);
      const bias = comp.bias ? await valuesOf(tensorOf(ir, comp.bias), cache) : undefined;
      for (let j = 0; j < group.width; j++) {
        if (!drop[j]) continue;
        let zero = true;
        forEachInSlice(pv, pt.shape, producer.axis, j, 1, (_, x) => {
          if (x !== 0) zero = false;
        });
        if (!zero) continue;
        const c = applyActivation(comp.acts, bias ? bias[j] : 0);
        if (c === undefined) continue;
        let ok = true;
        for (const k of comp.consumers) {
          // the folded constant needs a per-output bias of the consumer to go into
          if (c !== 0 && (!k.bias || tensorOf(ir, k.bias).shape.reduce((a, b) => a * b, 1) !== tensorOf(ir, k.kernel).shape[1 - k.axis])) ok = false;
        }
        if (!ok) continue;
        exactRemovals++;
        if (c === 0) continue;
        for (const k of comp.consumers) {
          const kt = tensorOf(ir, k.kernel);
          const kv = await valuesOf(kt, cache);
          const bv = await getWork(k.bias!);
          // the consumer row j: along axis k.axis at k.offset + j, over the other axis
          const outDim = kt.shape[1 - k.axis];
          for (let o = 0; o < outDim; o++) {
            const idx = k.axis === 0 ? (k.offset + j) * kt.shape[1] + o : o * kt.shape[1] + k.offset + j;
            bv[o] += c * kv[idx];
          }
        }
      }
    }
  }
  const tensors = new Map<string, { values: Float32Array; shape: number[] }>();
  const streamed = new Map<string, { shape: number[]; data: TensorByteStream }>();
  const changes: TensorChange[] = [];
  for (const [name, axes] of drops) {
    const t = tensorOf(ir, name);
    const cuts: Array<[number, Uint8Array]> = [];
    const parts: string[] = [];
    const shape = t.shape.slice();
    for (const [axis, mask] of [...axes.entries()].sort((a, b) => a[0] - b[0])) {
      const n = mask.reduce((a, b) => a + b, 0);
      if (n === 0) continue;
      if (n === mask.length) throw new ModelFileError(ir.path, `pruning would remove every index of axis ${axis} of ${name}`);
      cuts.push([axis, mask]);
      shape[axis] -= n;
      parts.push(`removed ${n} of ${mask.length} along axis ${axis}`);
    }
    if (ir.format === 'onnx' && !work.has(name) && isStreamed(t, cache)) {
      streamed.set(name, { shape, data: prunedTensorStream(t, cuts, shape) });
    } else {
      let cur = { values: work.get(name) ?? (await valuesOf(t, cache)), shape: t.shape.slice() };
      for (const [axis, mask] of cuts) cur = dropAlongAxis(cur.values, cur.shape, axis, mask);
      tensors.set(name, cur);
    }
    changes.push({
      tensor: name,
      action: parts.join('; ') || 'bias adjusted',
      before: { shape: t.shape.slice(), dtype: t.dtype, bytes: t.storage.byteLength },
      after: [{ name, shape, dtype: t.dtype, bytes: tensorBytes(ir.format === 'onnx' ? t.storage.dtype : 'float32', shape) }],
    });
  }
  // biases changed by compensation but not shrunk
  for (const [name, w] of work) {
    if (tensors.has(name)) continue;
    const t = tensorOf(ir, name);
    tensors.set(name, { values: w, shape: t.shape.slice() });
  }
  const topology = new Map<string, Record<string, number>>();
  if (ir.format !== 'onnx') {
    for (const p of plans) {
      const kept = p.group.width - p.drop.reduce((a, b) => a + b, 0);
      for (const s of p.group.sources) topology.set(s.node, { ...(topology.get(s.node) ?? {}), [s.kind === 'table' ? 'output_dim' : 'units']: kept });
    }
  }
  return { tensors, streamed, topology, changes, exactRemovals };
}

/**
 * `t` without the indices its masks drop, as its stored dtype's bytes, a chunk of rows at a time:
 * rows dropped along axis 0 are skipped, the other axes' masks cut each chunk, which gives the
 * bytes of the whole tensor cut in memory, in the same order.
 */
function prunedTensorStream(t: ModelTensor, cuts: Array<[number, Uint8Array]>, shape: number[]): TensorByteStream {
  const dtype: DType = t.storage.dtype;
  const rowDrops = cuts.find(([axis]) => axis === 0)?.[1];
  const inner = cuts.filter(([axis]) => axis > 0);
  const rows = chunkRowsOf(t);
  return {
    byteLength: tensorBytes(dtype, shape),
    async stream(sink) {
      await forEachRowChunk(t, rows, async (chunk, row0, chunkShape) => {
        let cur = { values: chunk, shape: chunkShape };
        if (rowDrops) {
          cur = dropAlongAxis(chunk, chunkShape, 0, rowDrops.subarray(row0, row0 + chunkShape[0]));
          if (cur.shape[0] === 0) return;
        }
        for (const [axis, mask] of inner) cur = dropAlongAxis(cur.values, cur.shape, axis, mask);
        if (cur.values.length > 0) await sink(encodeFloats(dtype, cur.values, t.storage.location));
      });
    },
  };
}

/** A TF.js IR whose tensors hold new values (in memory) and whose model.json has the given topology. */
export function editedTfjsIr(
  ir: ModelIR,
  doc: unknown,
  tensors: Map<string, { values: Float32Array | Uint16Array | Uint8Array; shape: number[]; quantization?: ModelTensor['storage']['quantization']; dtype?: 'float32' }>,
  opts: { remove?: Set<string>; add?: Array<{ name: string; layer: string; role: ModelTensor['role']; before?: string }> } = {},
): ModelIR {
  const mk = (t: Pick<ModelTensor, 'name' | 'role' | 'layer'>, r: { values: Float32Array | Uint16Array | Uint8Array; shape: number[]; quantization?: ModelTensor['storage']['quantization'] }): ModelTensor => {
    const bytes = new Uint8Array(r.values.buffer, r.values.byteOffset, r.values.byteLength);
    return {
      name: t.name,
      shape: r.shape.slice(),
      dtype: 'float32',
      storage: { dtype: r.quantization ? r.quantization.dtype : 'float32', byteLength: bytes.byteLength, quantization: r.quantization, source: { kind: 'bytes', bytes }, location: `${t.name} (compressed, in memory)` },
      role: t.role,
      layer: t.layer,
      trainable: true,
      consumers: [],
      origin: 'weightsManifest',
    };
  };
  const out: ModelTensor[] = [];
  for (const t of ir.tensors) {
    if (opts.remove?.has(t.name)) continue;
    for (const a of opts.add ?? []) if (a.before === t.name) out.push(mk(a, tensors.get(a.name)!));
    const r = tensors.get(t.name);
    out.push(r ? { ...mk(t, r), consumers: t.consumers, transposed: t.transposed, trainable: t.trainable, origin: t.origin } : t);
  }
  for (const a of opts.add ?? []) if (!a.before || !ir.tensors.some((t) => t.name === a.before && !opts.remove?.has(t.name))) {
    if (!out.some((t) => t.name === a.name)) out.push(mk(a, tensors.get(a.name)!));
  }
  return { ...ir, tensors: out, native: doc };
}

/** Writes the structured result in the input's format: ONNX through the graph editor, TF.js through an edited IR. */
export async function writeStructured(ir: ModelIR, res: StructuredResult, outPath: string): Promise<void> {
  if (ir.format === 'onnx') {
    const native = ir.native;
    const valueInfo = isOnnxNative(native) ? (native.model.graph?.valueInfo ?? []).map((v) => v.name ?? '').filter((n) => n) : [];
    await writeEditedOnnxModel(
      ir,
      {
        setInitializers: [
          ...[...res.tensors].map(([name, r]) => {
            const t = tensorOf(ir, name);
            return { name, dtype: t.storage.dtype, shape: r.shape, data: encodeFloatsAs(t.storage.dtype, r.values, t.storage.location) };
          }),
          ...[...(res.streamed ?? [])].map(([name, r]) => ({ name, dtype: tensorOf(ir, name).storage.dtype, shape: r.shape, data: r.data })),
        ],
        // shape hints of intermediate values may now be wrong: ORT infers them again
        dropValueInfo: valueInfo,
      },
      outPath,
    );
    return;
  }
  const doc = JSON.parse(JSON.stringify(ir.native)) as unknown;
  const layers = kerasLayers(doc, ir.path);
  for (const [name, fields] of res.topology) {
    const l = layers.find((x) => x.name === name || (isObject(x.config) && x.config.name === name));
    if (!l) throw new ModelFileError(ir.path, `layer ${name} is not in model.json's topology`);
    Object.assign(layerConfig(l), fields);
  }
  // a Dense that declares its input width (a Sequential model's first layer) must declare the new one
  for (const [name, r] of res.tensors) {
    const t = tensorOf(ir, name);
    if (t.role !== 'dense-kernel' || r.shape[0] === t.shape[0]) continue;
    const l = layers.find((x) => x.name === t.layer || (isObject(x.config) && x.config.name === t.layer));
    if (!l) continue;
    const cfg = layerConfig(l);
    if (typeof cfg.input_dim === 'number') cfg.input_dim = r.shape[0];
    for (const k of ['batch_input_shape', 'batchInputShape']) {
      const s = cfg[k];
      if (Array.isArray(s) && s.length > 0) s[s.length - 1] = r.shape[0];
    }
  }
  await writeTfjsModel(editedTfjsIr(ir, doc, res.tensors), outPath);
}

// ---------------------------------------------------------------------------------------------

/** Removes the least important output neurons of every chosen dense layer, shrinking the layers that read them. */
export async function pruneNeurons(ir: ModelIR, settings: PruneNeuronsSettings, ctx?: CompressionContext): Promise<CompressionOutcome> {
  const g = buildDepGraph(ir);
  const mode = settings.importance ?? 'l2';
  if (mode !== 'l2' && mode !== 'l2xnext') throw new ModelFileError(ir.path, `importance must be 'l2' or 'l2xnext', got ${String(mode)}`);
  const all = channelSources(g).filter((s) => s.kind === 'neurons');
  const nameOf = (s: (typeof all)[number]): string[] => [s.node, tensorOf(ir, s.tensor).layer, s.tensor];
  let chosen = all;
  if (settings.layers) {
    for (const l of settings.layers) if (!all.some((s) => nameOf(s).includes(l))) throw new ModelFileError(ir.path, `no dense layer named "${l}" (dense layers: ${all.map((s) => s.node).join(', ')})`);
    chosen = all.filter((s) => settings.layers!.some((l) => nameOf(s).includes(l)));
  }
  const plans: PlannedGroup[] = [];
  const skipped: string[] = [];
  const cache = new Map<string, Float32Array>();
  const claimed = new Set<string>();
  for (const [i, s] of chosen.entries()) {
    ctx?.signal?.throwIfAborted();
    ctx?.onProgress?.(i / chosen.length, `dependencies of ${s.node}`);
    if (claimed.has(s.node)) continue;
    let group: ChannelGroup;
    try {
      group = channelGroup(g, s);
    } catch (e) {
      // the output layer (its channels are the model's output) and layers we cannot follow are
      // skipped when pruning every layer, refused when named
      if (settings.layers) throw e;
      skipped.push(`${s.node}: ${(e as Error).message.replace(`${ir.path}: `, '')}`);
      continue;
    }
    for (const src of group.sources) claimed.add(src.node);
    const kept = keptCount(group.width, settings, ir.path);
    const imp = await groupImportance(g, group, mode, cache);
    plans.push({ group, drop: selectLowest(imp, group.width - kept), label: group.sources.map((x) => x.node).join(' + ') });
  }
  if (plans.length === 0) throw new ModelFileError(ir.path, `no dense layer can be pruned: ${skipped.join('; ') || 'the model has no dense layer'}`);
  const res = await applyGroups(g, plans, cache);
  const notes = [
    `Removed output neurons (${mode === 'l2' ? 'smallest L2 norm of incoming weights and bias' : 'smallest incoming x outgoing L2 norm'}): ` +
      plans.map((p) => `${p.label} ${p.group.width} -> ${p.group.width - p.drop.reduce((a, b) => a + b, 0)}`).join(', ') + '.',
    'Shapes really shrink: the file is smaller and the dense kernels do less work.',
  ];
  if (res.exactRemovals > 0) notes.push(`${res.exactRemovals} removed neurons had all-zero incoming weights: their constant output was folded into the next layer's bias, so removing them changes no output.`);
  for (const s of skipped) notes.push(`Not pruned: ${s}`);
  return {
    method: 'prune-neurons',
    settings: {
      ...(settings.keep !== undefined ? { keep: settings.keep } : { sparsity: settings.sparsity }),
      importance: mode,
      layers: settings.layers ?? plans.map((p) => p.label),
    },
    changes: res.changes,
    notes,
    write: (outPath) => writeAndMeasure(ir, notes, outPath, () => writeStructured(ir, res, outPath)),
  };
}
