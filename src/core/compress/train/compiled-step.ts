// A compiled training step for recommender graphs (the "fast engine"). The TF.js tape path
// (loop.ts) records every op of every step and turns the gradient of each table Gather into a
// dense [rows, dim] tensor; on a NeuMF that is dozens of small ops per step and, on a large
// table, a gradient and Adam state the size of the table inside the 32-bit wasm heap. Here:
//  - the graph is compiled once into a list of ops, each with a forward and a hand-written
//    backward made of direct TF.js kernels (tf.matMul etc., no tape);
//  - embedding tables live outside the wasm heap (sparse-tables.ts): ids are computed in JS,
//    rows gathered in JS into a [batch.., dim] tensor, their gradient read back and
//    scatter-added per distinct row, and row-wise lazy Adam updates only those rows;
//  - dense parameters are small Float32Arrays with ordinary Adam, uploaded once per step.
// The loss gradient enters at the output as dL/dz by output kind (loss.ts semantics): p - y at
// the input of a final Sigmoid for probabilities, sigmoid(z) - y for logits, 2 (z - y) for
// ratings, all divided by the batch size like the tape's mean.
//
// Supported (else planFastEngine says why, and the caller takes the tape path):
//  ONNX: Gather (a trainable table by ids; int Gather/Slice on id inputs such as `fields`),
//  Cast, Reshape, Flatten, Squeeze, Unsqueeze, Identity, Concat, Add, Sub, Mul, Div, Gemm,
//  MatMul, Relu, Sigmoid, Tanh, ReduceSum, ReduceMean, Transpose, Slice, Shape, Constant.
//  TF.js layers: InputLayer, Embedding, Flatten, Reshape, Concatenate, Multiply, Add, Dot,
//  Dense (linear / relu / sigmoid / tanh), Activation, Cropping2D (on id inputs).

import { isFloatDtype } from '../../model/dtype.js';
import * as tf from '@tensorflow/tfjs';
import type { GraphNode, ModelIR, ModelTensor, TensorRole } from '../../model/ir.js';
import { forEachTensorChunk, readTensorFloat32, tensorElementCount } from '../../model/tensor-data.js';
import { Batch } from './interaction-table.js';
import { rowLoss } from './loss.js';
import type { OutputKind } from './output-kind.js';
import { AdamSettings, DenseParam, SparseTable, zeroMask } from './sparse-tables.js';
import { extraColumn, InputFeed, inputFeedsOf } from './input-feed.js';

/** Int values (ids, shapes) are computed in JS. */
export interface IntVal {
  data: Int32Array;
  shape: number[];
}

interface StepState {
  f: Map<string, tf.Tensor>;
  i: Map<string, IntVal>;
  g: Map<string, tf.Tensor>;
  batch: Batch;
}

interface CompiledOp {
  name: string;
  op: string;
  fwd(s: StepState): void;
  /** adds the gradients of the op's float inputs, from the gradient of its output */
  bwd?(s: StepState): void;
}

/** What a model input is fed with (input-feed.ts: the same rule as the tape path). */
export type FeedSpec = InputFeed;

export class UnsupportedGraphError extends Error {}

// ---------------------------------------------------------------------------------------------
// helpers

function size(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function normAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${what}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** sums a broadcast gradient back to `shape` */
function unbroadcast(g: tf.Tensor, shape: number[]): tf.Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead) axes.push(i);
    else if (shape[i - lead] === 1 && g.shape[i] !== 1) axes.push(i);
  }
  const r = axes.length ? tf.sum(g, axes, true) : g;
  return tf.reshape(r, shape);
}

/**
 * Matrix product with transposes materialized first: the wasm backend's BatchMatMul runs
 * XNNPACK only for plain operands; with transposeA/B it takes a path 3-5x slower (measured on
 * [512,64] x [64,32]), while tf.transpose + plain matMul costs about 1.3x the plain product.
 */
function mm(a: tf.Tensor, b: tf.Tensor, transA = false, transB = false): tf.Tensor2D {
  return tf.matMul((transA ? tf.transpose(a) : a) as tf.Tensor2D, (transB ? tf.transpose(b) : b) as tf.Tensor2D);
}

/**
 * A float32 tensor's values without a copy where the backend allows: on wasm a view of the
 * backend's heap (valid until the next op; read it at once). Node's allocation of a fresh 64 KB
 * ArrayBuffer, which dataSync makes, costs ~100 us here, more than the matrix products of a step.
 */
export function readF32(t: tf.Tensor): Float32Array {
  const be = tf.backend() as unknown as { dataIdMap?: { get(id: unknown): { memoryOffset?: number } | undefined }; wasm?: { HEAPU8: Uint8Array } };
  if (t.dtype === 'float32' && be.wasm && be.dataIdMap) {
    const d = be.dataIdMap.get(t.dataId);
    if (d && typeof d.memoryOffset === 'number' && d.memoryOffset % 4 === 0) return new Float32Array(be.wasm.HEAPU8.buffer, d.memoryOffset, t.size);
  }
  return t.dataSync() as Float32Array;
}

/**
 * A float32 tensor to fill from JS: on wasm, allocated in the backend's heap and filled in place
 * (one copy); elsewhere a scratch array uploaded by tf.tensor. Call values() after any other
 * allocation, fill it at once, then tensor().
 */
function newF32(shape: number[], n: number, scratch: (i: number, len: number) => Float32Array, key: number): { values(): Float32Array; tensor(): tf.Tensor } {
  const be = tf.backend() as unknown as { makeOutput?: (shape: number[], dtype: string) => tf.TensorInfo; typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array };
  if (be.makeOutput && be.typedArrayFromHeap) {
    const info = be.makeOutput(shape, 'float32');
    return { values: () => be.typedArrayFromHeap!(info), tensor: () => tf.engine().makeTensorFromTensorInfo(info) };
  }
  const buf = scratch(key, n);
  return { values: () => buf, tensor: () => tf.tensor(buf, shape, 'float32') };
}

function addGrad(s: StepState, name: string, t: tf.Tensor): void {
  const old = s.g.get(name);
  s.g.set(name, old ? tf.add(old, t) : t);
}

function reshapeTarget(inShape: number[], spec: number[], allowZero: boolean): number[] {
  const out = spec.map((d, i) => (d === 0 && !allowZero ? inShape[i] : d));
  const minus = out.filter((d) => d === -1).length;
  if (minus > 1) throw new Error('Reshape has more than one -1');
  if (minus === 1) {
    const known = out.reduce((a, d) => (d === -1 ? a : a * d), 1);
    out[out.indexOf(-1)] = known === 0 ? 0 : size(inShape) / known;
  }
  if (size(out) !== size(inShape)) throw new Error(`cannot reshape [${inShape}] to [${spec}]`);
  return out;
}

function squeezeShape(shape: number[], axes: number[] | undefined): number[] {
  if (!axes) return shape.filter((d) => d !== 1);
  const ax = axes.map((a) => normAxis(a, shape.length, 'Squeeze'));
  return shape.filter((_, i) => !ax.includes(i));
}

function unsqueezeShape(shape: number[], axes: number[]): number[] {
  const outRank = shape.length + axes.length;
  const norm = axes.map((a) => normAxis(a, outRank, 'Unsqueeze'));
  const out: number[] = [];
  let src = 0;
  for (let i = 0; i < outRank; i++) out.push(norm.includes(i) ? 1 : shape[src++]);
  return out;
}

function strides(shape: number[]): number[] {
  const st = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) st[i] = st[i + 1] * shape[i + 1];
  return st;
}

/** element-wise int op with numpy broadcasting */
function intBinary(a: IntVal, b: IntVal, f: (x: number, y: number) => number): IntVal {
  const rank = Math.max(a.shape.length, b.shape.length);
  const pa = [...new Array<number>(rank - a.shape.length).fill(1), ...a.shape];
  const pb = [...new Array<number>(rank - b.shape.length).fill(1), ...b.shape];
  const shape = pa.map((d, i) => Math.max(d, pb[i]));
  const n = size(shape);
  const out = new Int32Array(n);
  const st = strides(shape);
  const sa = strides(pa);
  const sb = strides(pb);
  for (let k = 0; k < n; k++) {
    let ia = 0;
    let ib = 0;
    let rem = k;
    for (let d = 0; d < rank; d++) {
      const c = Math.floor(rem / st[d]);
      rem -= c * st[d];
      if (pa[d] !== 1) ia += c * sa[d];
      if (pb[d] !== 1) ib += c * sb[d];
    }
    out[k] = f(a.data[ia], b.data[ib]);
  }
  return { data: out, shape };
}

/** ONNX Gather on int data along `axis` */
function intGather(x: IntVal, idx: IntVal, axis: number): IntVal {
  const ax = normAxis(axis, x.shape.length, 'Gather');
  const outer = size(x.shape.slice(0, ax));
  const dim = x.shape[ax];
  const inner = size(x.shape.slice(ax + 1));
  const k = idx.data.length;
  const out = new Int32Array(outer * k * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < k; j++) {
      let c = idx.data[j];
      if (c < 0) c += dim;
      if (c < 0 || c >= dim) throw new Error(`Gather index ${idx.data[j]} out of range (${dim})`);
      const src = (o * dim + c) * inner;
      out.set(x.data.subarray(src, src + inner), (o * k + j) * inner);
    }
  }
  return { data: out, shape: [...x.shape.slice(0, ax), ...idx.shape, ...x.shape.slice(ax + 1)] };
}

function sliceRange(dim: number, start: number, end: number, step: number): number[] {
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  const idx: number[] = [];
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
    for (let i = s; i < e; i += step) idx.push(i);
  } else {
    s = Math.min(Math.max(s, 0), dim - 1);
    e = Math.min(Math.max(e, -1), dim - 1);
    for (let i = s; i > e; i += step) idx.push(i);
  }
  return idx;
}

function intConcat(xs: IntVal[], axis: number): IntVal {
  const ax = normAxis(axis, xs[0].shape.length, 'Concat');
  const outer = size(xs[0].shape.slice(0, ax));
  const inner = size(xs[0].shape.slice(ax + 1));
  const total = xs.reduce((a, x) => a + x.shape[ax], 0);
  const out = new Int32Array(outer * total * inner);
  let off = 0;
  for (const x of xs) {
    const w = x.shape[ax] * inner;
    for (let o = 0; o < outer; o++) out.set(x.data.subarray(o * w, o * w + w), o * total * inner + off);
    off += w;
  }
  const shape = xs[0].shape.slice();
  shape[ax] = total;
  return { data: out, shape };
}

function intsOf(v: IntVal | undefined, what: string): number[] {
  if (!v) throw new Error(`${what} is not a constant`);
  return Array.from(v.data);
}

// ---------------------------------------------------------------------------------------------
// the program

export interface FastEnginePlan {
  /** tables by IR tensor name: rows x dim */
  tables: Array<{ tensor: ModelTensor | undefined; name: string; rows: number; dim: number }>;
  dense: Array<{ tensor: ModelTensor | undefined; name: string; shape: number[] }>;
  summary: string;
}

export interface FastEngine {
  tables: SparseTable[];
  dense: DenseParam[];
  /** every trained tensor's values by IR name (tables and dense) */
  values(): Map<string, Float32Array>;
  params: number;
  /** scores of the rows (no gradient) */
  score(b: Batch, batchSize?: number): Float32Array;
  /** one optimizer step on a batch; returns the summed loss of the batch's rows. `seed`: a loss other than the labels' (distillation) */
  trainStep(b: Batch, kind: OutputKind, adam: AdamSettings, step: number, seed?: OutputSeed): number;
  /** computes the gradients of a batch without updating (tests): tables' per-row sums, dense grads */
  gradients(b: Batch, kind: OutputKind, seed?: OutputSeed): { tables: Map<string, Map<number, Float32Array>>; dense: Map<string, Float32Array>; loss: number };
  describe(): string;
  /** masks 'keep-zeros' on or off (tables take each row's zeros at first touch; dense tensors now) */
  setKeepZeros(on: boolean): void;
  dispose(): void;
}

interface Program {
  ops: CompiledOp[];
  feeds: FeedSpec[];
  output: string;
  /** the input of a final Sigmoid (probability outputs seed p - y there), if any */
  sigmoidInput?: string;
  intConsts: Map<string, IntVal>;
  floatConsts: Map<string, tf.Tensor>;
  tables: SparseTable[];
  dense: DenseParam[];
  /** dense kernels also uploaded transposed (as `name^T`) each step, for FusedDense */
  transposed: DenseParam[];
}

function transpose2d(v: Float32Array, rows: number, cols: number, out: Float32Array): Float32Array {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = v[r * cols + c];
  return out;
}

function feedInts(f: FeedSpec, b: Batch): IntVal {
  const n = b.user.length;
  if (f.kind === 'fields') {
    const F = 2 + b.extraCount;
    if (f.fields !== undefined && f.fields !== F) throw new Error(`model input '${f.name}' has ${f.fields} fields; the data gives ${F}`);
    const fv = new Int32Array(n * F);
    for (let i = 0; i < n; i++) {
      fv[i * F] = b.user[i];
      fv[i * F + 1] = b.item[i];
      for (let e = 0; e < b.extraCount; e++) fv[i * F + 2 + e] = b.extra[i * b.extraCount + e];
    }
    return { data: fv, shape: [n, F] };
  }
  const ids = f.kind === 'column' ? extraColumn(b, f.column!, f.name, 'the data') : f.kind === 'user' ? b.user : b.item;
  return { data: ids, shape: f.rank === 2 ? [n, 1] : [n] };
}

function forward(p: Program, b: Batch, training: boolean): StepState {
  const s: StepState = { f: new Map(p.floatConsts), i: new Map(p.intConsts), g: new Map(), batch: b };
  for (const d of p.dense) s.f.set(d.name, tf.tensor(d.values, d.shape, 'float32'));
  for (const d of p.transposed) {
    const [r, c] = d.shape;
    s.f.set(`${d.name}^T`, tf.tensor(transpose2d(d.values, r, c, d.scratch(r * c)), [c, r], 'float32'));
  }
  for (const f of p.feeds) s.i.set(f.name, feedInts(f, b));
  for (const op of p.ops) {
    try {
      op.fwd(s);
    } catch (e) {
      throw new Error(`node '${op.name}' (${op.op}): ${(e as Error).message}`, { cause: e });
    }
  }
  void training;
  return s;
}

function outputScores(p: Program, s: StepState): Float32Array {
  const y = s.f.get(p.output);
  if (!y) throw new Error(`graph output '${p.output}' is not a float value`);
  return readF32(y).slice();
}

let seedScratch = new Float32Array(0);

/**
 * The loss gradient at the output, per row: fills `grad` with dL/d(value) / n, where the value is
 * the graph output, or the input z of a final Sigmoid when `atSigmoidInput` (then scores are
 * p = sigmoid(z)); returns the loss summed over the rows.
 */
export type OutputSeed = (scores: Float32Array, b: Batch, atSigmoidInput: boolean, grad: Float32Array) => number;

/** The labels' loss by output kind (loss.ts): p - y, sigmoid(z) - y, 2 (z - y). */
export function labelSeed(kind: OutputKind): OutputSeed {
  return (scores, b, atSigmoidInput, grad) => {
    const n = scores.length;
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const z = scores[i];
      const t = b.label[i];
      loss += rowLoss(kind, z, t);
      let g: number;
      if (kind === 'rating') g = 2 * (z - t);
      else if (kind === 'logit') g = 1 / (1 + Math.exp(-z)) - t;
      else if (atSigmoidInput) g = z - t;
      else {
        // d bce / dp on clipped probabilities (zero where the clip is active, as on the tape)
        const q = Math.min(1 - 1e-7, Math.max(1e-7, z));
        g = q === z ? (z - t) / (z * (1 - z)) : 0;
      }
      grad[i] = g / n;
    }
    return loss;
  };
}

/** backward from the loss; fills table step gradients and dense grads; returns the loss sum */
function backward(p: Program, s: StepState, kind: OutputKind, seedFn: OutputSeed = labelSeed(kind)): number {
  const b = s.batch;
  const n = b.user.length;
  const y = s.f.get(p.output)!;
  const scores = readF32(y);
  if (scores.length !== n) throw new Error(`the model gives ${scores.length} scores for ${n} rows`);
  if (seedScratch.length < n) seedScratch = new Float32Array(n);
  const seed = seedScratch.subarray(0, n);
  const seedAtSigmoid = kind === 'probability' && p.sigmoidInput !== undefined;
  const loss = seedFn(scores, b, seedAtSigmoid, seed);
  const at = seedAtSigmoid ? p.sigmoidInput! : p.output;
  s.g.set(at, tf.tensor(seed, s.f.get(at)!.shape, 'float32'));
  for (const t of p.tables) t.beginStep();
  const start = p.ops.findIndex((o) => o.name === `__out:${at}`);
  for (let k = (start >= 0 ? start : p.ops.length) - 1; k >= 0; k--) {
    const op = p.ops[k];
    if (!op.bwd) continue;
    try {
      op.bwd(s);
    } catch (e) {
      throw new Error(`backward of node '${op.name}' (${op.op}): ${(e as Error).message}`, { cause: e });
    }
  }
  for (const d of p.dense) {
    const g = s.g.get(d.name);
    if (g) d.grad.set(readF32(g));
    else d.grad.fill(0);
  }
  return loss;
}

function makeEngine(p: Program, summary: string): FastEngine {
  const engine: FastEngine = {
    tables: p.tables,
    dense: p.dense,
    params: p.tables.reduce((a, t) => a + t.values.length, 0) + p.dense.reduce((a, d) => a + d.values.length, 0),
    values: () => {
      const m = new Map<string, Float32Array>();
      for (const t of p.tables) m.set(t.name, t.values);
      for (const d of p.dense) m.set(d.name, d.values);
      return m;
    },
    score: (b, batchSize = 4096) => {
      const n = b.user.length;
      const out = new Float32Array(n);
      for (let s0 = 0; s0 < n; s0 += batchSize) {
        const e = Math.min(n, s0 + batchSize);
        const sub: Batch = {
          user: b.user.subarray(s0, e), item: b.item.subarray(s0, e),
          extra: b.extra.subarray(s0 * b.extraCount, e * b.extraCount), extraCount: b.extraCount, label: b.label.subarray(s0, e),
        };
        tf.tidy(() => {
          out.set(outputScores(p, forward(p, sub, false)), s0);
        });
      }
      return out;
    },
    trainStep: (b, kind, adam, step, seed) => {
      const loss = tf.tidy(() => backward(p, forward(p, b, true), kind, seed));
      for (const t of p.tables) t.applyAdam(adam, step);
      for (const d of p.dense) d.applyAdam(adam, step);
      return loss;
    },
    gradients: (b, kind, seed) => {
      const loss = tf.tidy(() => backward(p, forward(p, b, true), kind, seed));
      const tables = new Map<string, Map<number, Float32Array>>();
      for (const t of p.tables) tables.set(t.name, t.stepGradient());
      const dense = new Map<string, Float32Array>();
      for (const d of p.dense) dense.set(d.name, d.grad.slice());
      return { tables, dense, loss };
    },
    describe: () => summary,
    setKeepZeros: (on) => {
      for (const t of p.tables) t.keepZeros = on;
      for (const d of p.dense) {
        d.keep = on ? zeroMask(d.values) : undefined;
        d.mask = d.keep;
      }
    },
    dispose: () => {
      for (const c of p.floatConsts.values()) c.dispose();
    },
  };
  return engine;
}

// ---------------------------------------------------------------------------------------------
// ONNX

const TRAINABLE_ROLES: ReadonlySet<TensorRole> = new Set(['embedding', 'dense-kernel', 'bias', 'weight', 'norm']);
const TRAINABLE_DTYPES = new Set(['float32', 'float16', 'float64']);
const INT_DTYPES = new Set(['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);

/** the same rule as onnx-to-tfjs.ts' default */
function onnxTrainable(t: ModelTensor): boolean {
  return t.trainable && TRAINABLE_ROLES.has(t.role) && TRAINABLE_DTYPES.has(t.dtype);
}

export const FAST_ONNX_OPS = new Set([
  'Gather', 'Cast', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Concat', 'Add', 'Sub', 'Mul', 'Div', 'Gemm',
  'MatMul', 'Relu', 'Sigmoid', 'Tanh', 'ReduceSum', 'ReduceMean', 'Transpose', 'Slice', 'Shape', 'Constant',
]);

type Kind = 'int' | 'float';

interface OnnxAnalysis {
  kinds: Map<string, Kind>;
  tableNames: Set<string>;
  denseNames: Set<string>;
  feeds: FeedSpec[];
  nodes: GraphNode[];
}

function inputFeedSpecs(inputs: ReadonlyArray<{ name: string; shape?: ReadonlyArray<number | string | null | undefined> }>): FeedSpec[] {
  return inputFeedsOf(inputs).map((f, i) => {
    if (!f) throw new UnsupportedGraphError(`cannot tell what to feed model input '${inputs[i].name}'`);
    return f;
  });
}

function analyzeOnnx(ir: ModelIR): OnnxAnalysis {
  const nodes = ir.graph.nodes.filter((n) => n.scope === undefined);
  for (const n of nodes) if (!FAST_ONNX_OPS.has(n.op)) throw new UnsupportedGraphError(`op ${n.op} (node '${n.name}') is not in the fast engine's op set`);
  const byName = new Map(ir.tensors.filter((t) => !t.origin.includes('subgraph')).map((t) => [t.name, t]));
  const kinds = new Map<string, Kind>();
  const tableNames = new Set<string>();
  const denseNames = new Set<string>();
  // a trainable tensor read only as Gather's data is a table; otherwise a dense parameter
  const uses = new Map<string, Array<{ node: GraphNode; slot: number }>>();
  for (const n of nodes) n.inputs.forEach((x, slot) => x && (uses.get(x) ?? uses.set(x, []).get(x)!).push({ node: n, slot }));
  for (const t of byName.values()) {
    if (onnxTrainable(t)) {
      const u = uses.get(t.name) ?? [];
      if (t.shape.length === 2 && u.length > 0 && u.every((x) => x.node.op === 'Gather' && x.slot === 0 && Number(x.node.attrs.axis ?? 0) === 0)) tableNames.add(t.name);
      else denseNames.add(t.name);
      kinds.set(t.name, 'float');
    } else if (isFloatDtype(t.dtype)) kinds.set(t.name, 'float');
    else if (INT_DTYPES.has(t.dtype) || t.dtype === 'bool') kinds.set(t.name, 'int');
  }
  const produced = new Set(nodes.flatMap((n) => n.outputs));
  const fed = ir.graph.inputs.filter((v) => !byName.has(v.name) && !produced.has(v.name));
  for (const v of fed) {
    if (v.dtype && isFloatDtype(v.dtype)) throw new UnsupportedGraphError(`float graph input '${v.name}' (dense features) is not supported by the fast engine`);
    kinds.set(v.name, 'int');
  }
  const feeds = inputFeedSpecs(fed);
  for (const n of nodes) {
    const ik = n.inputs.map((x) => (x ? kinds.get(x) : undefined));
    let k: Kind;
    switch (n.op) {
      case 'Shape':
        k = 'int';
        break;
      case 'Cast': {
        const to = Number(n.attrs.to);
        k = to === 1 || to === 10 || to === 11 || to === 16 ? 'float' : 'int';
        if (k === 'int' && ik[0] === 'float') throw new UnsupportedGraphError(`node '${n.name}' casts floats to ints`);
        break;
      }
      case 'Gather':
        if (tableNames.has(n.inputs[0])) k = 'float';
        else if (ik[0] === 'int') k = 'int';
        else throw new UnsupportedGraphError(`node '${n.name}' gathers from a computed float value`);
        if (ik[1] !== 'int') throw new UnsupportedGraphError(`node '${n.name}' gathers with non-integer indices`);
        break;
      case 'Constant':
        k = kinds.get(n.outputs[0]) ?? 'float';
        break;
      default:
        k = ik[0] ?? 'float';
        if (['Add', 'Sub', 'Mul', 'Div', 'Concat'].includes(n.op) && ik.some((x) => x !== undefined && x !== k)) {
          throw new UnsupportedGraphError(`node '${n.name}' (${n.op}) mixes ids and floats`);
        }
        if (['Gemm', 'MatMul', 'Relu', 'Sigmoid', 'Tanh', 'ReduceMean'].includes(n.op) && k !== 'float') {
          throw new UnsupportedGraphError(`node '${n.name}' (${n.op}) computes on integers`);
        }
    }
    for (const o of n.outputs) kinds.set(o, k);
  }
  const out = ir.graph.outputs[0]?.name;
  if (!out || kinds.get(out) !== 'float') throw new UnsupportedGraphError('the graph output is not a float score');
  return { kinds, tableNames, denseNames, feeds, nodes };
}

/** Whether the fast engine can train `ir`, with what tables: a plan (no values read) or the reason it cannot. */
export function planFastEngine(ir: ModelIR): FastEnginePlan | { unsupported: string } {
  try {
    if (ir.format !== 'onnx') return { unsupported: `the fast engine plans ONNX graphs here; ${ir.format} models are compiled from their loaded layers` };
    const a = analyzeOnnx(ir);
    const byName = new Map(ir.tensors.map((t) => [t.name, t]));
    const tables = [...a.tableNames].map((n) => ({ tensor: byName.get(n)!, name: n, rows: byName.get(n)!.shape[0], dim: byName.get(n)!.shape[1] }));
    const dense = [...a.denseNames].map((n) => ({ tensor: byName.get(n)!, name: n, shape: byName.get(n)!.shape.slice() }));
    return { tables, dense, summary: `${tables.length} tables, ${dense.length} dense tensors, ${a.nodes.length} nodes` };
  } catch (e) {
    if (e instanceof UnsupportedGraphError) return { unsupported: e.message };
    throw e;
  }
}

function finalSigmoidInput(ops: Array<{ op: string; inputs: string[]; outputs: string[] }>, output: string): string | undefined {
  const producer = new Map<string, { op: string; inputs: string[]; outputs: string[] }>();
  for (const n of ops) for (const o of n.outputs) producer.set(o, n);
  let v = output;
  for (let steps = 0; steps < 8; steps++) {
    const n = producer.get(v);
    if (!n) return undefined;
    if (n.op === 'Sigmoid') return n.inputs[0];
    if (!['Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze'].includes(n.op)) return undefined;
    v = n.inputs[0];
  }
  return undefined;
}

/** Compiles an ONNX graph for the fast engine, reading its tables and parameters. Throws UnsupportedGraphError. */
export async function compileOnnx(ir: ModelIR, opts: { keepZeros: boolean }): Promise<FastEngine> {
  const a = analyzeOnnx(ir);
  const byName = new Map(ir.tensors.filter((t) => !t.origin.includes('subgraph')).map((t) => [t.name, t]));
  const tables: SparseTable[] = [];
  const tableOf = new Map<string, SparseTable>();
  for (const name of a.tableNames) {
    const t = byName.get(name)!;
    const st = new SparseTable(name, await readTableValues(t), t.shape[1], opts.keepZeros);
    tables.push(st);
    tableOf.set(name, st);
  }
  const dense: DenseParam[] = [];
  for (const name of a.denseNames) {
    const t = byName.get(name)!;
    const v = await readTensorFloat32(t);
    dense.push(new DenseParam(name, v, t.shape.slice(), opts.keepZeros ? zeroMask(v) : undefined));
  }
  const intConsts = new Map<string, IntVal>();
  const floatConsts = new Map<string, tf.Tensor>();
  try {
    for (const t of byName.values()) {
      if (a.tableNames.has(t.name) || a.denseNames.has(t.name)) continue;
      const k = a.kinds.get(t.name);
      if (k === 'float') floatConsts.set(t.name, tf.tensor(await readTensorFloat32(t), t.shape, 'float32'));
      else if (k === 'int') {
        const v = await readIntTensor(t);
        intConsts.set(t.name, { data: v, shape: t.shape.slice() });
      }
    }
    const p = buildProgram(a.nodes, a.kinds, tableOf, dense, a.feeds, ir.graph.outputs[0].name, intConsts, floatConsts, tables);
    const summary = `${tables.length} tables (${tables.map((t) => `${t.name} ${t.rows}x${t.dim}`).join(', ')}), ${dense.length} dense tensors, ${a.nodes.length} ONNX nodes`;
    return makeEngine(p, summary);
  } catch (e) {
    for (const c of floatConsts.values()) c.dispose();
    throw e;
  }
}

/**
 * A tensor's values as float32 with one copy of them in memory: file-backed tensors are read
 * straight into the result (readTensorFloat32 reads a whole tensor through a chunk buffer of
 * its own size, which doubles the peak for a 576 MB table); in-memory ones are decoded in 4 MB
 * chunks.
 */
export async function readTableValues(t: ModelTensor): Promise<Float32Array> {
  const count = tensorElementCount(t.shape);
  const out = new Float32Array(count);
  if (count === 0) return out;
  const src = t.storage.source;
  if (src.kind === 'file' || src.kind === 'file-parts') {
    await forEachTensorChunk(t, count, (chunk, first) => {
      if (chunk.buffer !== out.buffer) out.set(chunk, first);
    }, { buffers: [out] });
  } else {
    await forEachTensorChunk(t, 1 << 20, (chunk, first) => out.set(chunk, first));
  }
  return out;
}

/**
 * Rewrites dense layers into one FusedDense node each: MatMul(x, W) or Gemm(x, W[, b]) (alpha =
 * beta = 1, no transA) with W a trained kernel, then an optional bias Add, then an optional Relu,
 * each intermediate read by nothing else. Forward becomes one tf.fused.matMul (bias and relu in
 * the kernel, W pre-transposed in JS when stored [out, in]): the per-op cost of the wasm backend,
 * not the arithmetic, dominates a NeuMF step.
 */
function fuseDense(nodes: GraphNode[], denseNames: Set<string>, kinds: Map<string, Kind>, keep: Set<string>): GraphNode[] {
  const consumers = new Map<string, number>();
  for (const n of nodes) for (const x of n.inputs) if (x) consumers.set(x, (consumers.get(x) ?? 0) + 1);
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.outputs.forEach((o) => producer.set(o, i)));
  const soleConsumer = (v: string): GraphNode | undefined => {
    if (keep.has(v) || consumers.get(v) !== 1) return undefined;
    return nodes.find((n) => n.inputs.includes(v));
  };
  const isBias = (name: string) => denseNames.has(name) || kinds.get(name) === 'float';
  const absorbed = new Set<GraphNode>();
  const replaced = new Map<GraphNode, GraphNode>();
  for (const n of nodes) {
    if (absorbed.has(n)) continue;
    let transB = false;
    let bias: string | undefined;
    if (n.op === 'MatMul') {
      if (!denseNames.has(n.inputs[1])) continue;
    } else if (n.op === 'Gemm') {
      if (!denseNames.has(n.inputs[1]) || attrNum(n, 'alpha', 1) !== 1 || attrNum(n, 'beta', 1) !== 1 || attrNum(n, 'transA', 0) !== 0) continue;
      transB = attrNum(n, 'transB', 0) !== 0;
      if (n.inputs[2]) {
        if (!isBias(n.inputs[2])) continue;
        bias = n.inputs[2];
      }
    } else continue;
    if (kinds.get(n.inputs[0]) !== 'float' || denseNames.has(n.inputs[0])) continue;
    let out = n.outputs[0];
    const chain: GraphNode[] = [];
    let next = soleConsumer(out);
    if (!bias && next && next.op === 'Add') {
      const other = next.inputs[0] === out ? next.inputs[1] : next.inputs[0];
      if (other !== out && isBias(other)) {
        bias = other;
        chain.push(next);
        out = next.outputs[0];
        next = soleConsumer(out);
      }
    }
    let relu = false;
    if (next && next.op === 'Relu') {
      relu = true;
      chain.push(next);
      out = next.outputs[0];
    }
    for (const c of chain) absorbed.add(c);
    replaced.set(n, { name: n.name, op: 'FusedDense', inputs: [n.inputs[0], n.inputs[1], ...(bias ? [bias] : [])], outputs: [out], attrs: { transB: transB ? 1 : 0, relu: relu ? 1 : 0 } });
  }
  void producer;
  return nodes.filter((n) => !absorbed.has(n)).map((n) => replaced.get(n) ?? n);
}

/**
 * Concat (last axis) of table Gathers by 1-D ids, each read by nothing else, becomes one
 * GatherConcat: rows are gathered in JS straight into the concatenated layout (one upload) and
 * the concatenated gradient is scatter-added with strides (no split). The wasm backend's Concat
 * and Slice run in JS with copies; NeuMF's MLP input is exactly this.
 */
function fuseGatherConcat(nodes: GraphNode[], tableOf: Map<string, SparseTable>, keep: Set<string>): GraphNode[] {
  const consumers = new Map<string, number>();
  for (const n of nodes) for (const x of n.inputs) if (x) consumers.set(x, (consumers.get(x) ?? 0) + 1);
  const producer = new Map<string, GraphNode>();
  for (const n of nodes) for (const o of n.outputs) producer.set(o, n);
  const absorbed = new Set<GraphNode>();
  const replaced = new Map<GraphNode, GraphNode>();
  for (const n of nodes) {
    if (n.op !== 'Concat') continue;
    const axis = attrNum(n, 'axis', 0);
    if (axis !== -1 && axis !== 1) continue;
    const gathers = n.inputs.map((x) => producer.get(x));
    if (!gathers.every((g, i) => g && g.op === 'Gather' && tableOf.has(g.inputs[0]) && consumers.get(n.inputs[i]) === 1 && !keep.has(n.inputs[i]))) continue;
    for (const g of gathers) absorbed.add(g!);
    replaced.set(n, { name: n.name, op: 'GatherConcat', inputs: gathers.flatMap((g) => [g!.inputs[0], g!.inputs[1]]), outputs: n.outputs, attrs: {} });
  }
  return nodes.filter((n) => !absorbed.has(n)).map((n) => replaced.get(n) ?? n);
}

/** needs-gradient analysis, dense fusion, compilation and the sigmoid marker: shared by ONNX and TF.js layers */
function buildProgram(
  nodes0: GraphNode[],
  kinds: Map<string, Kind>,
  tableOf: Map<string, SparseTable>,
  dense: DenseParam[],
  feeds: FeedSpec[],
  output: string,
  intConsts: Map<string, IntVal>,
  floatConsts: Map<string, tf.Tensor>,
  tables: SparseTable[],
): Program {
  const denseNames = new Set(dense.map((d) => d.name));
  const sigIn0 = finalSigmoidInput(nodes0, output);
  const keep = new Set([output, ...(sigIn0 ? [sigIn0] : [])]);
  const nodes = fuseDense(fuseGatherConcat(nodes0, tableOf, keep), denseNames, kinds, keep);
  const needs = new Set<string>([...tableOf.keys(), ...denseNames]);
  for (const n of nodes) {
    if ((n.op === 'Gather' || n.op === 'GatherConcat') && tableOf.has(n.inputs[0])) needs.add(n.outputs[0]);
    else if (n.inputs.some((x) => needs.has(x)) && kinds.get(n.outputs[0]) === 'float') for (const o of n.outputs) needs.add(o);
  }
  const ops = nodes.map((n) => compileOnnxNode(n, kinds, tableOf, needs));
  const sigmoidInput = finalSigmoidInput(nodes, output);
  // a marker op: backward starts below it when the seed is at the sigmoid's input
  if (sigmoidInput) {
    const at = nodes.findIndex((n) => n.outputs.includes(sigmoidInput));
    ops.splice(at + 1, 0, { name: `__out:${sigmoidInput}`, op: 'Marker', fwd: () => undefined });
  }
  const tNames = new Set(nodes.filter((n) => n.op === 'FusedDense').map((n) => n.inputs[1]));
  const transposed = dense.filter((d) => tNames.has(d.name));
  for (const d of transposed) if (d.shape.length !== 2) throw new UnsupportedGraphError(`kernel ${d.name} is not 2-D`);
  return { ops, feeds, output, sigmoidInput, intConsts, floatConsts, tables, dense, transposed };
}

async function readIntTensor(t: ModelTensor): Promise<Int32Array> {
  if (t.dtype === 'int64' || t.dtype === 'uint64') {
    const { readTensorBytes } = await import('../../model/tensor-data.js');
    const bytes = await readTensorBytes(t);
    const n = bytes.byteLength / 8;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v = dv.getBigInt64(i * 8, true);
      out[i] = v > 2147483647n ? 2147483647 : v < -2147483648n ? -2147483648 : Number(v);
    }
    return out;
  }
  return Int32Array.from(await readTensorFloat32(t));
}

function attrNum(n: GraphNode, k: string, d: number): number {
  const v = n.attrs[k];
  return typeof v === 'number' ? v : d;
}

function attrInts(n: GraphNode, k: string): number[] | undefined {
  const v = n.attrs[k];
  return Array.isArray(v) ? (v as number[]) : undefined;
}

function compileOnnxNode(n: GraphNode, kinds: Map<string, Kind>, tableOf: Map<string, SparseTable>, needs: Set<string>): CompiledOp {
  const out = n.outputs[0];
  const isInt = kinds.get(out) === 'int';
  const F = (s: StepState, i: number): tf.Tensor => {
    const v = s.f.get(n.inputs[i]);
    if (!v) throw new Error(`input '${n.inputs[i]}' has no float value`);
    return v;
  };
  const I = (s: StepState, i: number): IntVal => {
    const v = s.i.get(n.inputs[i]);
    if (!v) throw new Error(`input '${n.inputs[i]}' has no integer value`);
    return v;
  };
  const optI = (s: StepState, i: number): IntVal | undefined => (n.inputs[i] ? s.i.get(n.inputs[i]) : undefined);
  const G = (s: StepState): tf.Tensor | undefined => s.g.get(out);
  const wants = (i: number) => needs.has(n.inputs[i]);
  const op = (fwd: (s: StepState) => void, bwd?: (s: StepState, g: tf.Tensor) => void): CompiledOp => ({
    name: n.name,
    op: n.op,
    fwd,
    ...(bwd && needs.has(out)
      ? {
          bwd: (s: StepState) => {
            const g = G(s);
            if (g) bwd(s, g);
          },
        }
      : {}),
  });
  // shape-only ops: the same rule for ints and floats
  const shapeOnly = (target: (s: StepState, shape: number[]) => number[]): CompiledOp =>
    isInt
      ? op((s) => {
          const x = I(s, 0);
          s.i.set(out, { data: x.data, shape: target(s, x.shape) });
        })
      : op(
          (s) => {
            const x = F(s, 0);
            s.f.set(out, tf.reshape(x, target(s, x.shape)));
          },
          (s, g) => wants(0) && addGrad(s, n.inputs[0], tf.reshape(g, F(s, 0).shape)),
        );
  switch (n.op) {
    case 'Constant':
      return op(() => undefined);
    case 'Identity':
      return isInt
        ? op((s) => s.i.set(out, I(s, 0)))
        : op(
            (s) => s.f.set(out, F(s, 0)),
            (s, g) => wants(0) && addGrad(s, n.inputs[0], g),
          );
    case 'Cast':
      if (isInt) return op((s) => s.i.set(out, I(s, 0)));
      return op(
        (s) => {
          const iv = s.i.get(n.inputs[0]);
          s.f.set(out, iv ? tf.tensor(Float32Array.from(iv.data), iv.shape, 'float32') : F(s, 0));
        },
        (s, g) => wants(0) && addGrad(s, n.inputs[0], g),
      );
    case 'Shape':
      return op((s) => {
        const shape = s.f.get(n.inputs[0])?.shape ?? I(s, 0).shape;
        const r = shape.length;
        const c = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
        const dims = shape.slice(c(attrNum(n, 'start', 0)), n.attrs.end === undefined ? r : c(attrNum(n, 'end', r)));
        s.i.set(out, { data: Int32Array.from(dims), shape: [dims.length] });
      });
    case 'Reshape': {
      const allowZero = attrNum(n, 'allowzero', 0) !== 0;
      const attrShape = attrInts(n, 'shape');
      return shapeOnly((s, shape) => reshapeTarget(shape, attrShape ?? intsOf(optI(s, 1), 'the Reshape shape'), allowZero));
    }
    case 'Flatten': {
      const axisAttr = attrNum(n, 'axis', 1);
      return shapeOnly((_, shape) => {
        const ax = axisAttr < 0 ? axisAttr + shape.length : axisAttr;
        const outer = size(shape.slice(0, ax));
        return [outer, outer === 0 ? 0 : size(shape) / outer];
      });
    }
    case 'Squeeze': {
      const axesAttr = attrInts(n, 'axes');
      return shapeOnly((s, shape) => squeezeShape(shape, axesAttr ?? (optI(s, 1) ? intsOf(optI(s, 1), 'axes') : undefined)));
    }
    case 'Unsqueeze': {
      const axesAttr = attrInts(n, 'axes');
      return shapeOnly((s, shape) => unsqueezeShape(shape, axesAttr ?? intsOf(optI(s, 1), 'Unsqueeze axes')));
    }
    case 'Gather': {
      const axis = attrNum(n, 'axis', 0);
      const table = tableOf.get(n.inputs[0]);
      if (table) {
        let scratch = new Float32Array(0);
        return op(
          (s) => {
            const ids = I(s, 1);
            const need = ids.data.length * table.dim;
            if (scratch.length < need) scratch = new Float32Array(need);
            const buf = scratch.subarray(0, need);
            table.gather(ids.data, buf);
            s.f.set(out, tf.tensor(buf, [...ids.shape, table.dim], 'float32'));
          },
          (s, g) => table.accumulate(I(s, 1).data, readF32(g)),
        );
      }
      return op((s) => s.i.set(out, intGather(I(s, 0), I(s, 1), axis)));
    }
    case 'Slice': {
      const sAttr = attrInts(n, 'starts');
      const eAttr = attrInts(n, 'ends');
      const aAttr = attrInts(n, 'axes');
      const spec = (s: StepState, rank: number) => {
        const starts = sAttr ?? intsOf(optI(s, 1), 'Slice starts');
        const ends = eAttr ?? intsOf(optI(s, 2), 'Slice ends');
        const axes = (aAttr ?? (optI(s, 3) ? intsOf(optI(s, 3), 'Slice axes') : starts.map((_, i) => i))).map((x) => normAxis(x, rank, 'Slice'));
        const steps = !sAttr && optI(s, 4) ? intsOf(optI(s, 4), 'Slice steps') : starts.map(() => 1);
        return { starts, ends, axes, steps };
      };
      if (isInt) {
        return op((s) => {
          let x = I(s, 0);
          const sp = spec(s, x.shape.length);
          sp.axes.forEach((ax, k) => {
            const idx = sliceRange(x.shape[ax], sp.starts[k], sp.ends[k], sp.steps[k]);
            x = intGather(x, { data: Int32Array.from(idx), shape: [idx.length] }, ax);
          });
          s.i.set(out, x);
        });
      }
      return op(
        (s) => {
          const x = F(s, 0);
          const sp = spec(s, x.rank);
          const begin = new Array<number>(x.rank).fill(0);
          const sz = x.shape.slice();
          sp.axes.forEach((ax, k) => {
            if (sp.steps[k] !== 1) throw new Error('Slice with a step other than 1 on floats');
            const idx = sliceRange(x.shape[ax], sp.starts[k], sp.ends[k], 1);
            begin[ax] = idx.length ? idx[0] : 0;
            sz[ax] = idx.length;
          });
          s.f.set(out, tf.slice(x, begin, sz));
        },
        (s, g) => {
          if (!wants(0)) return;
          const x = F(s, 0);
          const y = s.f.get(out)!;
          const sp = spec(s, x.rank);
          const pad: Array<[number, number]> = x.shape.map(() => [0, 0]);
          sp.axes.forEach((ax, k) => {
            const idx = sliceRange(x.shape[ax], sp.starts[k], sp.ends[k], 1);
            const b0 = idx.length ? idx[0] : 0;
            pad[ax] = [b0, x.shape[ax] - b0 - y.shape[ax]];
          });
          addGrad(s, n.inputs[0], tf.pad(g, pad));
        },
      );
    }
    case 'Concat': {
      const axis = attrNum(n, 'axis', 0);
      const scratch: Float32Array[] = [];
      const splitScratch = (i: number, len: number): Float32Array => {
        if (!scratch[i] || scratch[i].length !== len) scratch[i] = new Float32Array(len);
        return scratch[i];
      };
      if (isInt) return op((s) => s.i.set(out, intConcat(n.inputs.map((_, i) => I(s, i)), axis)));
      return op(
        (s) => {
          const xs = n.inputs.map((_, i) => F(s, i));
          s.f.set(out, tf.concat(xs, normAxis(axis, xs[0].rank, 'Concat')));
        },
        (s, g) => {
          const xs = n.inputs.map((_, i) => F(s, i));
          const ax = normAxis(axis, xs[0].rank, 'Concat');
          // split in JS: the wasm backend's Slice reads its whole input into a new JS array
          const outer = size(g.shape.slice(0, ax));
          const inner = size(g.shape.slice(ax + 1));
          const total = g.shape[ax] * inner;
          let off = 0;
          xs.forEach((x, i) => {
            const w = x.shape[ax] * inner;
            if (wants(i)) {
              const part = newF32(x.shape, outer * w, splitScratch, i);
              // read after the allocation: it may have grown (moved) the heap
              const gv = readF32(g);
              const buf = part.values();
              for (let o = 0; o < outer; o++) {
                const src = o * total + off;
                const dst = o * w;
                for (let j = 0; j < w; j++) buf[dst + j] = gv[src + j];
              }
              addGrad(s, n.inputs[i], part.tensor());
            }
            off += w;
          });
        },
      );
    }
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div': {
      if (isInt) {
        const f = n.op === 'Add' ? (x: number, y: number) => x + y : n.op === 'Sub' ? (x: number, y: number) => x - y : n.op === 'Mul' ? (x: number, y: number) => x * y : (x: number, y: number) => Math.trunc(x / y);
        return op((s) => s.i.set(out, intBinary(I(s, 0), I(s, 1), f)));
      }
      const fn = n.op === 'Add' ? tf.add : n.op === 'Sub' ? tf.sub : n.op === 'Mul' ? tf.mul : tf.div;
      return op(
        (s) => s.f.set(out, fn(F(s, 0), F(s, 1))),
        (s, g) => {
          const a = F(s, 0);
          const b = F(s, 1);
          if (wants(0)) {
            const ga = n.op === 'Mul' ? tf.mul(g, b) : n.op === 'Div' ? tf.div(g, b) : g;
            addGrad(s, n.inputs[0], unbroadcast(ga, a.shape));
          }
          if (wants(1)) {
            const gb = n.op === 'Add' ? g : n.op === 'Sub' ? tf.neg(g) : n.op === 'Mul' ? tf.mul(g, a) : tf.neg(tf.div(tf.mul(g, s.f.get(out)!), b));
            addGrad(s, n.inputs[1], unbroadcast(gb, b.shape));
          }
        },
      );
    }
    case 'Relu':
      return op(
        (s) => s.f.set(out, tf.relu(F(s, 0))),
        (s, g) => wants(0) && addGrad(s, n.inputs[0], tf.mul(g, tf.step(s.f.get(out)!))),
      );
    case 'Sigmoid':
      return op(
        (s) => s.f.set(out, tf.sigmoid(F(s, 0))),
        (s, g) => {
          const y = s.f.get(out)!;
          if (wants(0)) addGrad(s, n.inputs[0], tf.mul(g, tf.mul(y, tf.sub(1, y))));
        },
      );
    case 'Tanh':
      return op(
        (s) => s.f.set(out, tf.tanh(F(s, 0))),
        (s, g) => {
          const y = s.f.get(out)!;
          if (wants(0)) addGrad(s, n.inputs[0], tf.mul(g, tf.sub(1, tf.square(y))));
        },
      );
    case 'MatMul':
      return op(
        (s) => {
          const a = F(s, 0);
          const b = F(s, 1);
          if (b.rank !== 2 || a.rank < 2) throw new Error(`MatMul of ranks ${a.rank} x ${b.rank}`);
          const a2 = a.rank === 2 ? a : tf.reshape(a, [-1, a.shape[a.rank - 1]]);
          const y = mm(a2 as tf.Tensor2D, b as tf.Tensor2D);
          s.f.set(out, a.rank === 2 ? y : tf.reshape(y, [...a.shape.slice(0, -1), b.shape[1] as number]));
        },
        (s, g) => {
          const a = F(s, 0);
          const b = F(s, 1);
          const a2 = (a.rank === 2 ? a : tf.reshape(a, [-1, a.shape[a.rank - 1]])) as tf.Tensor2D;
          const g2 = (g.rank === 2 ? g : tf.reshape(g, [-1, b.shape[1] as number])) as tf.Tensor2D;
          if (wants(0)) addGrad(s, n.inputs[0], tf.reshape(mm(g2, b as tf.Tensor2D, false, true), a.shape));
          if (wants(1)) addGrad(s, n.inputs[1], mm(a2, g2, true, false));
        },
      );
    case 'Gemm': {
      const alpha = attrNum(n, 'alpha', 1);
      const beta = attrNum(n, 'beta', 1);
      const transA = attrNum(n, 'transA', 0) !== 0;
      const transB = attrNum(n, 'transB', 0) !== 0;
      return op(
        (s) => {
          let y: tf.Tensor = mm(F(s, 0) as tf.Tensor2D, F(s, 1) as tf.Tensor2D, transA, transB);
          if (alpha !== 1) y = tf.mul(y, alpha);
          const c = n.inputs[2] ? F(s, 2) : undefined;
          if (c) y = tf.add(y, beta === 1 ? c : tf.mul(c, beta));
          s.f.set(out, y);
        },
        (s, g0) => {
          const A = F(s, 0) as tf.Tensor2D;
          const B = F(s, 1) as tf.Tensor2D;
          const g = (alpha !== 1 ? tf.mul(g0, alpha) : g0) as tf.Tensor2D;
          // Y = op(A) op(B): dop(A) = g op(B)^T, dop(B) = op(A)^T g
          if (wants(0)) addGrad(s, n.inputs[0], transA ? mm(B, g, transB, true) : mm(g, B, false, !transB));
          if (wants(1)) addGrad(s, n.inputs[1], transB ? mm(g, A, true, transA) : mm(A, g, !transA, false));
          if (n.inputs[2] && wants(2)) addGrad(s, n.inputs[2], unbroadcast(beta !== 1 ? tf.mul(g0, beta) : g0, F(s, 2).shape));
        },
      );
    }
    case 'GatherConcat': {
      const parts: Array<{ table: SparseTable; ids: string }> = [];
      for (let i = 0; i < n.inputs.length; i += 2) parts.push({ table: tableOf.get(n.inputs[i])!, ids: n.inputs[i + 1] });
      const width = parts.reduce((a, p) => a + p.table.dim, 0);
      let scratch = new Float32Array(0);
      return op(
        (s) => {
          const B = I(s, 1).data.length;
          if (scratch.length < B * width) scratch = new Float32Array(B * width);
          const buf = scratch.subarray(0, B * width);
          let off = 0;
          for (const p of parts) {
            const ids = I(s, n.inputs.indexOf(p.ids, 1));
            if (ids.shape.length !== 1 || ids.data.length !== B) throw new Error('GatherConcat needs 1-D ids of one batch');
            p.table.gatherStrided(ids.data, buf, width, off);
            off += p.table.dim;
          }
          s.f.set(out, tf.tensor(buf, [B, width], 'float32'));
        },
        (s, g) => {
          const gv = readF32(g);
          let off = 0;
          for (const p of parts) {
            p.table.accumulateStrided(I(s, n.inputs.indexOf(p.ids, 1)).data, gv, width, off);
            off += p.table.dim;
          }
        },
      );
    }
    case 'FusedDense': {
      const transB = attrNum(n, 'transB', 0) !== 0;
      const relu = attrNum(n, 'relu', 0) !== 0;
      const W = n.inputs[1];
      const WT = `${W}^T`;
      const hasBias = n.inputs.length > 2;
      return op(
        (s) => {
          // [in, out] orientation: the stored W, or its JS transpose when stored [out, in]
          const k = s.f.get(transB ? WT : W)! as tf.Tensor2D;
          const x = F(s, 0) as tf.Tensor2D;
          const bias = hasBias ? F(s, 2) : undefined;
          s.f.set(out, tf.fused.matMul({ a: x, b: k, ...(bias ? { bias } : {}), activation: relu ? 'relu' : 'linear' }));
        },
        (s, g) => {
          const y = s.f.get(out)!;
          const gp = (relu ? tf.mul(g, tf.step(y)) : g) as tf.Tensor2D;
          const x = F(s, 0) as tf.Tensor2D;
          // dX = gp K^T: K^T is the stored W when stored [out, in], else its transpose
          if (wants(0)) addGrad(s, n.inputs[0], tf.matMul(gp, s.f.get(transB ? W : WT)! as tf.Tensor2D));
          if (wants(1)) addGrad(s, W, transB ? tf.matMul(tf.transpose(gp), x) : tf.matMul(tf.transpose(x), gp));
          if (hasBias && wants(2)) {
            const bs = F(s, 2).shape;
            addGrad(s, n.inputs[2], bs.length === 1 ? tf.sum(gp, 0) : unbroadcast(tf.sum(gp, 0, true), bs));
          }
        },
      );
    }
    case 'ReduceSum':
    case 'ReduceMean': {
      const keep = attrNum(n, 'keepdims', 1) !== 0;
      const noop = attrNum(n, 'noop_with_empty_axes', 0) !== 0;
      const axesAttr = attrInts(n, 'axes');
      const mean = n.op === 'ReduceMean';
      const axesOf = (s: StepState, rank: number): number[] | undefined => {
        const ax = axesAttr ?? (optI(s, 1) ? intsOf(optI(s, 1), 'axes') : []);
        if (ax.length === 0) return noop ? [] : undefined;
        return ax.map((x) => normAxis(x, rank, n.op));
      };
      return op(
        (s) => {
          const x = F(s, 0);
          const ax = axesOf(s, x.rank);
          s.f.set(out, ax && ax.length === 0 ? x : mean ? tf.mean(x, ax, keep) : tf.sum(x, ax, keep));
        },
        (s, g) => {
          if (!wants(0)) return;
          const x = F(s, 0);
          const ax = axesOf(s, x.rank) ?? x.shape.map((_, i) => i);
          if (ax.length === 0) return addGrad(s, n.inputs[0], g);
          const kept = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
          let gg = tf.broadcastTo(tf.reshape(g, kept), x.shape);
          if (mean) gg = tf.div(gg, ax.reduce((p, i) => p * x.shape[i], 1));
          addGrad(s, n.inputs[0], gg);
        },
      );
    }
    case 'Transpose': {
      const perm = attrInts(n, 'perm');
      return op(
        (s) => s.f.set(out, tf.transpose(F(s, 0), perm)),
        (s, g) => {
          if (!wants(0)) return;
          const r = F(s, 0).rank;
          const p = perm ?? [...Array(r).keys()].reverse();
          const inv = new Array<number>(r);
          p.forEach((v, i) => (inv[v] = i));
          addGrad(s, n.inputs[0], tf.transpose(g, inv));
        },
      );
    }
    default:
      throw new UnsupportedGraphError(`op ${n.op} is not in the fast engine's op set`);
  }
}

// ---------------------------------------------------------------------------------------------
// TF.js layers models: compiled from the loaded model's layers, weights copied out of TF.js

type LayerLike = tf.layers.Layer;

/** Compiles a loaded tf.LayersModel; `nameOf` maps a weight to its IR name. Throws UnsupportedGraphError. */
export function compileLayers(model: tf.LayersModel, opts: { keepZeros: boolean; nameOf: (w: tf.LayerVariable) => string }): FastEngine {
  const nodes: GraphNode[] = [];
  const tables: SparseTable[] = [];
  const tableOf = new Map<string, SparseTable>();
  const dense: DenseParam[] = [];
  const kinds = new Map<string, Kind>();
  const intConsts = new Map<string, IntVal>();
  const floatConsts = new Map<string, tf.Tensor>();
  const valueOf = (l: LayerLike) => `${l.name}:out`;
  const feeds = inputFeedSpecs(model.inputNames.map((name, i) => ({ name, shape: model.inputs[i].shape })));
  for (const name of model.inputNames) kinds.set(name, 'int');
  // the model's own inputs keep their names: map them
  const inputAlias = new Map<string, string>();
  model.inputs.forEach((inp, i) => inputAlias.set(`${inp.sourceLayer.name}:out`, model.inputNames[i]));
  const v = (name: string) => inputAlias.get(name) ?? name;
  let k = 0;
  const tmp = (base: string) => `${base}#${k++}`;
  const addDense = (w: tf.LayerVariable): string => {
    const name = opts.nameOf(w);
    const vals = Float32Array.from(w.read().dataSync() as Float32Array);
    dense.push(new DenseParam(name, vals, w.shape as number[], opts.keepZeros ? zeroMask(vals) : undefined));
    kinds.set(name, 'float');
    return name;
  };
  const intConst = (vals: number[]): string => {
    const name = tmp('const');
    intConsts.set(name, { data: Int32Array.from(vals), shape: [vals.length] });
    kinds.set(name, 'int');
    return name;
  };
  const node = (op: string, inputs: string[], output: string, attrs: Record<string, unknown> = {}): void => {
    nodes.push({ name: output, op, inputs, outputs: [output], attrs });
  };
  const activation = (act: string | undefined, x: string, outName: string, lname: string): void => {
    if (!act || act === 'linear') node('Identity', [x], outName);
    else if (act === 'relu') node('Relu', [x], outName);
    else if (act === 'sigmoid') node('Sigmoid', [x], outName);
    else if (act === 'tanh') node('Tanh', [x], outName);
    else throw new UnsupportedGraphError(`activation '${act}' of layer '${lname}'`);
  };
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === 'InputLayer') continue;
    if (layer.inboundNodes.length !== 1) throw new UnsupportedGraphError(`layer '${layer.name}' is applied ${layer.inboundNodes.length} times`);
    const ins = layer.inboundNodes[0].inboundLayers.map((l) => v(valueOf(l)));
    const out = valueOf(layer);
    const cfg = layer.getConfig() as Record<string, unknown>;
    const inKinds = ins.map((x) => kinds.get(x));
    let outKind: Kind = 'float';
    switch (cls) {
      case 'Embedding': {
        const w = layer.trainableWeights[0];
        if (!w) throw new UnsupportedGraphError(`embedding '${layer.name}' is frozen`);
        const name = opts.nameOf(w);
        const shape = w.shape as number[];
        const st = new SparseTable(name, Float32Array.from(w.read().dataSync() as Float32Array), shape[1], opts.keepZeros);
        tables.push(st);
        tableOf.set(name, st);
        kinds.set(name, 'float');
        node('Gather', [name, ins[0]], out, { axis: 0 });
        break;
      }
      case 'Flatten':
        outKind = inKinds[0] ?? 'float';
        node('Flatten', [ins[0]], out, { axis: 1 });
        break;
      case 'Reshape':
        outKind = inKinds[0] ?? 'float';
        node('Reshape', [ins[0], intConst([0, ...(cfg.targetShape as number[])])], out);
        break;
      case 'Cropping2D': {
        // column pick on an id input [batch, F, 1, 1]: crop rows
        const c = cfg.cropping as number[][];
        if (inKinds[0] !== 'int') throw new UnsupportedGraphError(`Cropping2D '${layer.name}' on floats`);
        outKind = 'int';
        const F = (layer.inboundNodes[0].inboundLayers[0].outputShape as number[])[1];
        node('Slice', [ins[0], intConst([c[0][0], c[1][0]]), intConst([F - c[0][1], 1 - c[1][1]]), intConst([1, 2])], out);
        break;
      }
      case 'Concatenate':
        node('Concat', ins, out, { axis: (cfg.axis as number) ?? -1 });
        break;
      case 'Multiply':
      case 'Add': {
        let acc = ins[0];
        for (let i = 1; i < ins.length; i++) {
          const o = i === ins.length - 1 ? out : tmp(out);
          node(cls === 'Add' ? 'Add' : 'Mul', [acc, ins[i]], o);
          acc = o;
        }
        break;
      }
      case 'Dot': {
        const axes = cfg.axes as number | number[];
        const ax = Array.isArray(axes) ? axes : [axes, axes];
        const shapes = layer.inboundNodes[0].inboundLayers.map((l) => l.outputShape as number[]);
        if (shapes.some((s) => s.length !== 2) || ax[0] !== ax[1] || (ax[0] !== 1 && ax[0] !== -1) || cfg.normalize) {
          throw new UnsupportedGraphError(`Dot layer '${layer.name}' other than a row-wise dot product of two vectors`);
        }
        const m = tmp(out);
        node('Mul', [ins[0], ins[1]], m);
        node('ReduceSum', [m], out, { axes: [1], keepdims: 1 });
        break;
      }
      case 'Dense': {
        const [kw, bw] = [layer.weights.find((w) => /kernel/.test(w.name)), layer.weights.find((w) => /bias/.test(w.name))];
        if (!kw || !layer.trainableWeights.includes(kw)) throw new UnsupportedGraphError(`Dense '${layer.name}' without a trainable kernel`);
        const mm = tmp(out);
        node('MatMul', [ins[0], addDense(kw)], mm);
        let x = mm;
        if (bw) {
          const bName = tmp(out);
          node('Add', [mm, addDense(bw)], bName);
          x = bName;
        }
        activation(cfg.activation as string | undefined, x, out, layer.name);
        break;
      }
      case 'Activation':
        activation(cfg.activation as string, ins[0], out, layer.name);
        break;
      case 'Dropout':
        node('Identity', [ins[0]], out);
        break;
      default:
        throw new UnsupportedGraphError(`layer class ${cls} ('${layer.name}') is not in the fast engine's layer set`);
    }
    if (cls !== 'Embedding' && layer.trainableWeights.length > 0 && cls !== 'Dense') {
      throw new UnsupportedGraphError(`layer '${layer.name}' (${cls}) has weights the fast engine does not train`);
    }
    kinds.set(out, outKind);
    for (const n of nodes) for (const o of n.outputs) if (!kinds.has(o)) kinds.set(o, kinds.get(n.inputs[0]) ?? 'float');
  }
  if (model.outputs.length !== 1) throw new UnsupportedGraphError('models with several outputs');
  const output = v(valueOf(model.outputs[0].sourceLayer));
  const p = buildProgram(nodes, kinds, tableOf, dense, feeds, output, intConsts, floatConsts, tables);
  return makeEngine(p, `${tables.length} tables (${tables.map((t) => `${t.name} ${t.rows}x${t.dim}`).join(', ')}), ${dense.length} dense tensors, ${model.layers.length} TF.js layers`);
}
