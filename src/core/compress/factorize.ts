// Low-rank factorization by truncated SVD (issue 3, method 4).
//
// - Dense kernel W [in, out] ~ A [in, r] . B [r, out] with A = U sqrt(S), B = sqrt(S) V^T: the
//   layer becomes two matmuls. ONNX: MatMul(x, W) -> MatMul(MatMul(x, A), B); Gemm -> Gemm (no
//   bias) then Gemm with the original bias, beta and transB (a transB=1 kernel stays stored
//   [out, in]: the factors are stored transposed too). TF.js layers: a new Dense(in -> r, no bias,
//   linear) `<layer>_lowrank` feeds the original Dense, whose kernel becomes B (bias and
//   activation kept).
// - Embedding table E [N, d] ~ E' [N, r] . P [r, d] with E' = U S (= E V) and P = V^T: a narrower
//   table and a projection. ONNX: Gather(E', ids) then MatMul(., P), same output shape.
//   TF.js: the Embedding keeps its name with output_dim r, followed by `<layer>_proj`
//   Dense(r -> d, no bias, linear), which acts on the last axis: [batch, len, r] -> [batch, len, d],
//   the shape every consumer (Flatten, ...) saw before.
// - Tall tables are factorized streaming: A^T A in one pass over the rows, V from its
//   eigenvectors, and E' = E V produced chunk by chunk while the ONNX writer writes it (exact;
//   O(d^2) extra memory: the narrower table is never held whole; TF.js collects it).
// The rank is given, or the smallest keeping a share of sum sigma^2 (`energy`), or both (the
// energy's rank, at most `rank`). A tensor is factorized only when r (m + n) < m n (1 - minSaving).

import { unknownTensorNames } from './method-settings.js';
import * as path from 'node:path';
import { DType, ModelFileError, ModelIR, ModelTensor } from '../model/ir.js';
import { forEachTensorChunk, readTensorFloat32, tensorElementCount } from '../model/tensor-data.js';
import { TensorByteStream, collectBytes } from '../model/tensor-stream.js';
import { writeOnnxModel } from '../model/onnx/write.js';
import { nativeOf } from '../model/onnx/splice.js';
import { OnnxGraphEdit, OnnxNodeSpec, onnxDefaultOpset, writeEditedOnnxModel } from '../model/onnx/edit.js';
import { writeTfjsModel, writeEditedTfjsModel, TfjsModelEdit } from '../model/tfjs-write.js';
import { rankForEnergy } from '../analysis/spectrum.js';
import { GramAccumulator, svdFromGram, truncatedSvd } from './svd.js';
import { buildDepGraph, kerasLayerName as layerName } from './graph-deps.js';
import { Fold, foldIntoKernel, projectionFoldSites } from './fold-projection.js';
import type { CompressionContext, CompressionOutcome, TensorChange } from './types.js';

export interface FactorizeSettings {
  /** the rank to keep (with `energy`: the largest rank allowed) */
  rank?: number;
  /** keep the smallest rank whose sigma^2 sum reaches this share of the total, 0 < energy <= 1 (default 0.95 when no rank is given) */
  energy?: number;
  /** which tensors: 'all' (default: embedding tables and dense kernels), 'embeddings', 'dense', or tensor names */
  tensors?: 'embeddings' | 'dense' | 'all' | string[];
  /**
   * Factorize a tensor only when the factors save at least this share of its parameters:
   * r (m + n) < m n (1 - minSaving). Default 0.1. May be negative to factorize even when the
   * factors are larger (checks at full rank, experiments).
   */
  minSaving?: number;
  /**
   * Fold an embedding table's projection into the dense kernels that read its vectors through
   * linear plumbing only (fold-projection.ts): no projection op, fewer parameters. Default true.
   */
  fold?: boolean;
}

export interface FactorizedTensor {
  tensor: string;
  kind: 'table' | 'kernel';
  /** the stored shape */
  shape: [number, number];
  rank: number;
  /** min(m, n) */
  fullRank: number;
  /** sum of the kept sigma^2 over the sum of all sigma^2 */
  energyKept: number;
  /** |W - A B|_F / |W|_F (= sqrt(1 - energyKept) for an exact SVD) */
  relativeError: number;
  paramsBefore: number;
  paramsAfter: number;
  /** names of the two new tensors, in application order (a folded table: the narrower table and the first kernel that absorbed its projection) */
  factors: [string, string];
  method: string;
  /** a table whose projection was folded: the kernels that absorbed it */
  foldedInto?: string[];
  /** with foldedInto: how many parameters those kernels gained (negative: they lost (d - r) rows or columns each) */
  foldedParams?: number;
  /** a table whose projection stays an op of its own: why it was not folded (fold on) */
  notFolded?: string;
}

export interface FactorizeOutcome extends CompressionOutcome {
  factorized: FactorizedTensor[];
  skipped: Array<{ tensor: string; reason: string }>;
}

/** Columns up to which an embedding table goes through the streaming Gram (its d x d eigensystem costs ~9 d^3). */
const STREAM_MAX_WIDTH = 1024;
/** New ONNX initializers beyond this many bytes go to an external data file. */
const EXTERNAL_DATA_BYTES = 512 * 1024 * 1024;
/** Values per chunk of the streaming passes (whole rows; tests may lower it). */
export const tableStreaming = { chunkElements: 1 << 20 };

interface Resolved {
  rank?: number;
  energy?: number;
  tensors: 'embeddings' | 'dense' | 'all' | string[];
  minSaving: number;
  fold: boolean;
}

function resolveSettings(ir: ModelIR, s: FactorizeSettings): Resolved {
  const bad = (reason: string): never => {
    throw new ModelFileError(ir.path, `factorize: ${reason}`);
  };
  if (s.rank !== undefined && !(Number.isInteger(s.rank) && s.rank >= 1)) bad(`rank must be a positive integer, got ${s.rank}`);
  if (s.energy !== undefined && !(typeof s.energy === 'number' && s.energy > 0 && s.energy <= 1)) bad(`energy must be in (0, 1], got ${s.energy}`);
  const minSaving = s.minSaving ?? 0.1;
  if (!(typeof minSaving === 'number' && Number.isFinite(minSaving) && minSaving < 1)) bad(`minSaving must be a number below 1, got ${s.minSaving}`);
  const tensors = s.tensors ?? 'all';
  if (!Array.isArray(tensors) && !['embeddings', 'dense', 'all'].includes(tensors)) bad(`tensors must be 'all', 'embeddings', 'dense' or a list of names, got ${String(tensors)}`);
  if (s.fold !== undefined && typeof s.fold !== 'boolean') bad(`fold must be true or false, got ${String(s.fold)}`);
  const energy = s.energy ?? (s.rank === undefined ? 0.95 : undefined);
  return { rank: s.rank, energy, tensors, minSaving, fold: s.fold ?? true };
}

function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** A unique name derived from `base`, avoiding `taken` (which it then joins). */
function uniqueName(base: string, taken: Set<string>): string {
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base}_${i}`;
  taken.add(name);
  return name;
}

// ---------------------------------------------------------------------------------------------
// The factorization of one tensor

interface Factor {
  /** the values, or (a streamed table) their float32 bytes produced on demand */
  data: Float32Array | TensorByteStream;
  shape: [number, number];
}

interface Factors {
  rank: number;
  energyKept: number;
  relativeError: number;
  /** stored factors in application order, with their stored shapes */
  first: Factor;
  second: Factor;
  method: string;
}

/** A factor's values in memory (a streamed table is collected: TF.js writes shards from memory). */
async function factorValues(f: Factor, what: string): Promise<Float32Array> {
  if (f.data instanceof Float32Array) return f.data;
  const b = await collectBytes(f.data, what);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

/** The rank for these singular values, or a reason not to factorize. */
function pickRank(sv: ArrayLike<number>, total: number, m: number, n: number, st: Resolved): { rank: number } | { skip: string } {
  const full = Math.min(m, n);
  const cap = Math.min(st.rank ?? full, full);
  let r = cap;
  if (st.energy !== undefined) {
    const e = rankForEnergy(sv, total, st.energy);
    r = Math.max(1, Math.min(cap, e ?? cap));
  }
  if (!(r * (m + n) < m * n * (1 - st.minSaving))) {
    const saving = 1 - (r * (m + n)) / (m * n);
    return {
      skip:
        `rank ${r}${st.energy !== undefined ? ` (for ${(st.energy * 100).toFixed(1)}% energy)` : ''} ` +
        `would ${saving > 0 ? `save only ${(saving * 100).toFixed(1)}%` : 'not save anything'} of [${m}, ${n}] (minSaving ${st.minSaving})`,
    };
  }
  return { rank: r };
}

/** E [N, d] ~ (E V_r) V_r^T by a streaming Gram: exact, one pass over the rows now, one per write. */
async function factorTableStreaming(t: ModelTensor, N: number, d: number, st: Resolved, signal?: AbortSignal): Promise<Factors | { skip: string }> {
  const rowsPerChunk = Math.max(1, Math.floor(tableStreaming.chunkElements / d));
  const acc = new GramAccumulator(d);
  await forEachTensorChunk(t, rowsPerChunk * d, (chunk) => {
    signal?.throwIfAborted();
    acc.addRows(chunk);
  });
  const total = acc.sumSquares;
  const gram = acc.gram();
  const { singularValues, vectors } = svdFromGram(gram, d);
  const pick = pickRank(singularValues, total, N, d, st);
  if ('skip' in pick) return pick;
  const r = pick.rank;
  // P = V_r^T [r, d]
  const proj = new Float32Array(r * d);
  const vr = new Float64Array(d * r); // V_r [d, r] for the projection
  for (let j = 0; j < r; j++) {
    for (let k = 0; k < d; k++) {
      proj[j * d + k] = vectors[k * d + j];
      vr[k * r + j] = vectors[k * d + j];
    }
  }
  // E V_r V_r^T is the orthogonal projection of the rows onto span(V_r):
  // |E - E'P|^2 = |E|^2 - |E V_r|^2, and |E v_j|^2 = v_j^T (E^T E) v_j
  let kept = 0;
  for (let j = 0; j < r; j++) {
    for (let p = 0; p < d; p++) {
      let gv = 0;
      for (let q = 0; q < d; q++) gv += gram[p * d + q] * vr[q * r + j];
      kept += vr[p * r + j] * gv;
    }
  }
  const energyKept = total > 0 ? Math.min(1, Math.max(0, kept / total)) : 1;
  return {
    rank: r,
    energyKept,
    relativeError: Math.sqrt(Math.max(0, 1 - energyKept)),
    first: { data: projectedTableStream(t, vr, r, rowsPerChunk), shape: [N, r] },
    second: { data: proj, shape: [r, d] },
    method: 'streaming-gram-eigen',
  };
}

/** E V_r [N, r] as float32 bytes, computed (in float64) a chunk of rows at a time on each write. */
function projectedTableStream(t: ModelTensor, vr: Float64Array, r: number, rowsPerChunk: number): TensorByteStream {
  const [N, d] = t.shape;
  return {
    byteLength: N * r * 4,
    async stream(sink) {
      const out = new Float32Array(Math.min(rowsPerChunk, N) * r);
      const row = new Float64Array(r);
      await forEachTensorChunk(t, rowsPerChunk * d, async (chunk) => {
        const rows = chunk.length / d;
        for (let i = 0; i < rows; i++) {
          row.fill(0);
          const base = i * d;
          for (let k = 0; k < d; k++) {
            const x = chunk[base + k];
            if (x === 0) continue;
            const vb = k * r;
            for (let j = 0; j < r; j++) row[j] += x * vr[vb + j];
          }
          out.set(row, i * r);
        }
        await sink(f32Bytes(out.subarray(0, rows * r)));
      });
    },
  };
}

/**
 * A stored [m, n] matrix M = U S V^T split as (U S^a)(S^(1-a) V^T): a = 1 for tables
 * (E' = U S, P = V^T), a = 1/2 for kernels (balanced factors).
 */
async function factorInMemory(t: ModelTensor, m: number, n: number, st: Resolved, split: 'table' | 'balanced'): Promise<(Factors & { u: Float32Array; vt: Float32Array }) | { skip: string }> {
  const values = await readTensorFloat32(t);
  // the full spectrum decides the rank; the randomized method widens its sketch as needed
  const cap = Math.min(st.rank ?? Math.min(m, n), m, n);
  const svd = truncatedSvd(values, m, n, cap, { energy: st.energy });
  const pick = pickRank(svd.s, svd.totalEnergy, m, n, { ...st, energy: undefined, rank: svd.rank });
  if ('skip' in pick) {
    if (st.energy === undefined) return pick;
    return { skip: pick.skip.replace(/^rank (\d+)/, `rank $1 (for ${(st.energy * 100).toFixed(1)}% energy)`) };
  }
  const r = svd.rank;
  const u = new Float32Array(m * r);
  const vt = new Float32Array(r * n);
  let kept = 0;
  for (let j = 0; j < r; j++) kept += svd.s[j] ** 2;
  for (let j = 0; j < r; j++) {
    const sl = split === 'table' ? svd.s[j] : Math.sqrt(svd.s[j]);
    const sr = split === 'table' ? 1 : Math.sqrt(svd.s[j]);
    for (let i = 0; i < m; i++) u[i * r + j] = svd.u[i * r + j] * sl;
    for (let c = 0; c < n; c++) vt[j * n + c] = svd.v[j * n + c] * sr;
  }
  const energyKept = svd.totalEnergy > 0 ? Math.min(1, kept / svd.totalEnergy) : 1;
  return {
    rank: r,
    energyKept,
    relativeError: Math.sqrt(Math.max(0, 1 - energyKept)),
    first: { data: u, shape: [m, r] },
    second: { data: vt, shape: [r, n] },
    u,
    vt,
    method: svd.method,
  };
}

/**
 * Factors of a table [N, d] (E', P) or of a kernel in the orientation its consumers use:
 * `orientation` 'x-w' = y = x W with W stored [in, out] (MatMul input 1, Dense, Gemm transB=0):
 * first [in, r], second [r, out]; 'x-wt' = y = x W^T with W stored [out, in] (Gemm transB=1):
 * first stored [r, in], second stored [out, r] (both read with transB=1);
 * 'w-x' = y = W x (MatMul input 0): first = the right factor [r, n], second = the left [m, r].
 */
async function factorize(t: ModelTensor, kind: 'table' | 'kernel', orientation: 'x-w' | 'x-wt' | 'w-x', st: Resolved, signal?: AbortSignal): Promise<Factors | { skip: string }> {
  const [m, n] = t.shape;
  if (kind === 'table') {
    if (n <= STREAM_MAX_WIDTH && m >= n) return factorTableStreaming(t, m, n, st, signal);
    return factorInMemory(t, m, n, st, 'table');
  }
  const f = await factorInMemory(t, m, n, st, 'balanced');
  if ('skip' in f) return f;
  const r = f.rank;
  if (orientation === 'x-w') return f;
  // 'x-wt': M [out, in] = (U sqrt S)(sqrt S V^T), so x M^T = (x (sqrt S V^T)^T) (U sqrt S)^T;
  // 'w-x': W x = (U sqrt S) ((sqrt S V^T) x). Either way sqrt S V^T applies first.
  return { ...f, first: { data: f.vt, shape: [r, n] }, second: { data: f.u, shape: [m, r] } };
}

// ---------------------------------------------------------------------------------------------
// Where each tensor is used, and how the graph changes

interface Candidate {
  tensor: ModelTensor;
  kind: 'table' | 'kernel';
  orientation: 'x-w' | 'x-wt' | 'w-x';
}

interface OnnxSite extends Candidate {
  /** consumer nodes (real, unique names), with the input index the tensor has there */
  nodes: Array<{ name: string; op: string; inputs: string[]; outputs: string[]; attrs: Record<string, unknown> }>;
}

function attrNum(attrs: Record<string, unknown>, name: string, dflt: number): number {
  const v = attrs[name];
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return dflt;
}

function onnxSite(ir: ModelIR, t: ModelTensor, realNames: Map<string, number>, opset: number): OnnxSite | { skip: string } {
  if (t.origin !== 'initializer') return { skip: `it is not a main-graph initializer (${t.origin})` };
  if (ir.graph.outputs.some((o) => o.name === t.name)) return { skip: 'it is a graph output' };
  const users = ir.graph.nodes.filter((nd) => nd.inputs.includes(t.name));
  if (users.length === 0) return { skip: 'no node reads it' };
  if (users.some((u) => u.scope !== undefined)) return { skip: 'a subgraph reads it' };
  for (const u of users) {
    if ((realNames.get(u.name) ?? 0) !== 1) return { skip: `its consumer node "${u.name}" has no unique name in the file` };
    if (u.inputs.filter((i) => i === t.name).length !== 1) return { skip: `node "${u.name}" reads it twice` };
  }
  const ops = new Set(users.map((u) => u.op));
  if (ops.size === 1 && ops.has('Gather')) {
    for (const u of users) {
      if (u.inputs[0] !== t.name || attrNum(u.attrs, 'axis', 0) !== 0) return { skip: `Gather "${u.name}" does not look rows up in it (axis 0)` };
    }
    return { tensor: t, kind: 'table', orientation: 'x-w', nodes: users };
  }
  let orientation: Candidate['orientation'] | undefined;
  for (const u of users) {
    let o: Candidate['orientation'];
    if (u.op === 'MatMul') o = u.inputs[1] === t.name ? 'x-w' : 'w-x';
    else if (u.op === 'Gemm') {
      if (u.inputs[1] !== t.name) return { skip: `Gemm "${u.name}" reads it as input A` };
      if (opset < 11) return { skip: `Gemm without a bias needs opset 11 (the model has ${opset})` };
      o = attrNum(u.attrs, 'transB', 0) ? 'x-wt' : 'x-w';
    } else return { skip: `node "${u.name}" (${u.op}) reads it: only Gather, MatMul and Gemm consumers can be rewritten` };
    if (orientation !== undefined && orientation !== o) return { skip: 'its consumers read it in different orientations' };
    orientation = o;
  }
  return { tensor: t, kind: 'kernel', orientation: orientation!, nodes: users };
}

type OnnxFactorEdit = Required<Pick<OnnxGraphEdit, 'setInitializers' | 'removeInitializers' | 'insertNodes' | 'removeNodes'>>;

/** A table whose projection is folded into the kernels that read it: one Gather of the narrower table gives the lookup's value. */
function onnxFoldedTableEdit(site: OnnxSite, f: Factors, names: Set<string>, edit: OnnxFactorEdit): string {
  const t = site.tensor;
  const aName = uniqueName(`${t.name}_lowrank`, names);
  const bytes = f.first.data instanceof Float32Array ? f32Bytes(f.first.data) : f.first.data;
  edit.setInitializers.push({ name: aName, dtype: 'float32', shape: f.first.shape, data: bytes });
  edit.removeInitializers.push(t.name);
  for (const nd of site.nodes) {
    const node: OnnxNodeSpec = { name: uniqueName(`${nd.name}_lowrank`, names), op: 'Gather', inputs: [aName, nd.inputs[1]], outputs: [nd.outputs[0]], attrs: { axis: { i: 0 } } };
    edit.insertNodes.push({ before: nd.name, node });
    edit.removeNodes.push(nd.name);
  }
  return aName;
}

function onnxEditFor(site: OnnxSite, f: Factors, names: Set<string>, edit: OnnxFactorEdit): [string, string] {
  const t = site.tensor;
  const aName = uniqueName(site.kind === 'table' ? `${t.name}_lowrank` : `${t.name}_lowrank_a`, names);
  const bName = uniqueName(site.kind === 'table' ? `${t.name}_proj` : `${t.name}_lowrank_b`, names);
  const bytes = (x: Factor) => (x.data instanceof Float32Array ? f32Bytes(x.data) : x.data);
  edit.setInitializers.push({ name: aName, dtype: 'float32', shape: f.first.shape, data: bytes(f.first) });
  edit.setInitializers.push({ name: bName, dtype: 'float32', shape: f.second.shape, data: bytes(f.second) });
  edit.removeInitializers.push(t.name);
  for (const nd of site.nodes) {
    const y = nd.outputs[0];
    const mid = uniqueName(`${y}_lowrank`, names);
    const n1 = uniqueName(`${nd.name}_lowrank_1`, names);
    const n2 = uniqueName(`${nd.name}_lowrank_2`, names);
    let first: OnnxNodeSpec;
    let second: OnnxNodeSpec;
    if (nd.op === 'Gather') {
      first = { name: n1, op: 'Gather', inputs: [aName, nd.inputs[1]], outputs: [mid], attrs: { axis: { i: 0 } } };
      second = { name: n2, op: 'MatMul', inputs: [mid, bName], outputs: [y] };
    } else if (nd.op === 'MatMul') {
      if (site.orientation === 'w-x') {
        first = { name: n1, op: 'MatMul', inputs: [aName, nd.inputs[1]], outputs: [mid] };
        second = { name: n2, op: 'MatMul', inputs: [bName, mid], outputs: [y] };
      } else {
        first = { name: n1, op: 'MatMul', inputs: [nd.inputs[0], aName], outputs: [mid] };
        second = { name: n2, op: 'MatMul', inputs: [mid, bName], outputs: [y] };
      }
    } else {
      // Gemm: alpha and transA on the first product, bias C and beta on the second
      const transB = attrNum(nd.attrs, 'transB', 0);
      const a1: Record<string, { i: number } | { f: number }> = { transB: { i: transB } };
      if (attrNum(nd.attrs, 'transA', 0)) a1.transA = { i: 1 };
      const alpha = attrNum(nd.attrs, 'alpha', 1);
      if (alpha !== 1) a1.alpha = { f: alpha };
      first = { name: n1, op: 'Gemm', inputs: [nd.inputs[0], aName], outputs: [mid], attrs: a1 };
      const a2: Record<string, { i: number } | { f: number }> = { transB: { i: transB } };
      const beta = attrNum(nd.attrs, 'beta', 1);
      if (beta !== 1) a2.beta = { f: beta };
      const c = nd.inputs[2];
      second = { name: n2, op: 'Gemm', inputs: c ? [mid, bName, c] : [mid, bName], outputs: [y], attrs: a2 };
    }
    edit.insertNodes.push({ before: nd.name, node: first }, { before: nd.name, node: second });
    edit.removeNodes.push(nd.name);
  }
  return [aName, bName];
}

// ---------------------------------------------------------------------------------------------
// TF.js layers topology

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

interface KerasModel {
  /** the layer list (edited in place) */
  layers: Json[];
  sequential: boolean;
  /** the functional model's config (output_layers live here) */
  config?: Json;
}

function kerasModelOf(topology: Json): KerasModel | undefined {
  const mc = isObject(topology.model_config) ? topology.model_config : topology;
  if (!isObject(mc)) return undefined;
  const cls = mc.class_name;
  const cfg = mc.config;
  if (cls === 'Sequential') {
    if (Array.isArray(cfg)) return { layers: cfg as Json[], sequential: true };
    if (isObject(cfg) && Array.isArray(cfg.layers)) return { layers: cfg.layers as Json[], sequential: true };
    return undefined;
  }
  if ((cls === 'Model' || cls === 'Functional') && isObject(cfg) && Array.isArray(cfg.layers)) return { layers: cfg.layers as Json[], sequential: false, config: cfg };
  return undefined;
}

/** Keras 2 inbound nodes: [[[name, nodeIndex, tensorIndex, kwargs?], ...], ...] */
function isKeras2Inbound(v: unknown): v is unknown[][][] {
  return Array.isArray(v) && v.every((node) => Array.isArray(node) && node.every((e) => Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number'));
}

function tfjsCandidateCheck(model: KerasModel, t: ModelTensor, kind: 'table' | 'kernel'): Json | { skip: string } {
  const layer = model.layers.find((l) => layerName(l) === t.layer);
  if (!layer) return { skip: `its layer "${t.layer}" is not a top-level layer of the model` };
  const cfg = isObject(layer.config) ? layer.config : undefined;
  if (!cfg) return { skip: `layer "${t.layer}" has no config` };
  if (!model.sequential && !isKeras2Inbound(layer.inbound_nodes)) return { skip: `layer "${t.layer}" has inbound nodes in a format TF.js does not load` };
  if (kind === 'table') {
    if (layer.class_name !== 'Embedding') return { skip: `layer "${t.layer}" is a ${String(layer.class_name)}, not an Embedding` };
    if (cfg.mask_zero === true) return { skip: `Embedding "${t.layer}" has mask_zero, which the projection Dense does not pass on` };
    return layer;
  }
  if (layer.class_name !== 'Dense') return { skip: `layer "${t.layer}" is a ${String(layer.class_name)}, not a Dense` };
  if (!/(^|\/)kernel(_\d+)?$/.test(t.name)) return { skip: `it is not the kernel of Dense "${t.layer}"` };
  return layer;
}

const INPUT_SHAPE_KEYS = ['batch_input_shape', 'input_shape', 'input_dim', 'batch_size'];

/** Inserts `<layer>_lowrank` before a Dense (kernel A [in, r]); returns the new layer's name. */
function tfjsSplitDense(model: KerasModel, layer: Json, r: number, names: Set<string>): string {
  const name = layerName(layer)!;
  const cfg = layer.config as Json;
  const newName = uniqueName(`${name}_lowrank`, names);
  const newCfg: Json = { name: newName, trainable: cfg.trainable ?? true, units: r, activation: 'linear', use_bias: false };
  if (cfg.dtype !== undefined) newCfg.dtype = cfg.dtype;
  // a Sequential model's first layer declares the input: the new first layer takes it over
  for (const k of INPUT_SHAPE_KEYS) {
    if (cfg[k] !== undefined) {
      newCfg[k] = cfg[k];
      delete cfg[k];
    }
  }
  const newLayer: Json = { class_name: 'Dense', config: newCfg };
  if (typeof layer.name === 'string') newLayer.name = newName;
  const at = model.layers.indexOf(layer);
  if (!model.sequential) {
    const inbound = layer.inbound_nodes as unknown[][][];
    newLayer.inbound_nodes = inbound;
    layer.inbound_nodes = inbound.map((_, i) => [[newName, i, 0, {}]]);
  }
  model.layers.splice(at, 0, newLayer);
  return newName;
}

/** Shrinks an Embedding to output_dim r and inserts `<layer>_proj` Dense(r -> d) after it; returns the new layer's name. */
function tfjsSplitEmbedding(model: KerasModel, layer: Json, r: number, d: number, names: Set<string>): string {
  const name = layerName(layer)!;
  const cfg = layer.config as Json;
  cfg.output_dim = r;
  const newName = uniqueName(`${name}_proj`, names);
  const newCfg: Json = { name: newName, trainable: cfg.trainable ?? true, units: d, activation: 'linear', use_bias: false };
  const newLayer: Json = { class_name: 'Dense', config: newCfg };
  if (typeof layer.name === 'string') newLayer.name = newName;
  const at = model.layers.indexOf(layer);
  if (!model.sequential) {
    const count = (layer.inbound_nodes as unknown[]).length;
    // every consumer of the Embedding's outputs now reads the projection's
    const rename = (e: unknown[]) => {
      if (e[0] === name) e[0] = newName;
    };
    for (const l of model.layers) if (isKeras2Inbound(l.inbound_nodes)) for (const node of l.inbound_nodes) for (const e of node) rename(e);
    const outs = model.config?.output_layers;
    if (Array.isArray(outs)) for (const e of outs) if (Array.isArray(e)) rename(e);
    newLayer.inbound_nodes = Array.from({ length: count }, (_, i) => [[name, i, 0, {}]]);
  }
  model.layers.splice(at + 1, 0, newLayer);
  return newName;
}

// ---------------------------------------------------------------------------------------------

function selected(t: ModelTensor, which: Resolved['tensors']): boolean {
  if (Array.isArray(which)) return which.includes(t.name);
  if (which === 'embeddings') return t.role === 'embedding';
  if (which === 'dense') return t.role === 'dense-kernel';
  return t.role === 'embedding' || t.role === 'dense-kernel';
}

/** Factorizes the chosen 2-D weights of an ONNX or TF.js layers model by truncated SVD. */
export async function factorizeModel(ir: ModelIR, settings: FactorizeSettings = {}, ctx: CompressionContext = {}): Promise<FactorizeOutcome> {
  const st = resolveSettings(ir, settings);
  if (ir.format !== 'onnx' && ir.format !== 'tfjs-layers') {
    throw new ModelFileError(ir.path, `factorize works on ONNX models and TF.js layers models; this is a ${ir.format} model`);
  }
  if (Array.isArray(st.tensors)) {
    const known = new Set(ir.tensors.map((t) => t.name));
    const missing = st.tensors.filter((n) => !known.has(n));
    if (missing.length) throw new ModelFileError(ir.path, `factorize: ${unknownTensorNames(missing, ['all', 'embeddings', 'dense'], [...known])}`);
  }
  const signal = ctx.signal;
  const skipped: Array<{ tensor: string; reason: string }> = [];
  const explicit = Array.isArray(st.tensors);
  const chosen = ir.tensors.filter((t) => selected(t, st.tensors));
  const names = new Set<string>(ir.tensors.map((t) => t.name));
  for (const nd of ir.graph.nodes) {
    names.add(nd.name);
    for (const o of nd.outputs) names.add(o);
  }
  for (const v of [...ir.graph.inputs, ...ir.graph.outputs]) names.add(v.name);
  for (const l of ir.layers) names.add(l.name);

  const candidates: Array<OnnxSite | (Candidate & { layer?: Json })> = [];
  let onnxRealNames: Map<string, number> | undefined;
  let opset = 0;
  let keras: KerasModel | undefined;
  let topology: Json | undefined;
  if (ir.format === 'onnx') {
    onnxRealNames = new Map();
    for (const nd of nativeOf(ir, ir.path).model.graph?.node ?? []) if (nd.name) onnxRealNames.set(nd.name, (onnxRealNames.get(nd.name) ?? 0) + 1);
    opset = onnxDefaultOpset(ir);
  } else {
    const doc = ir.native;
    if (!isObject(doc) || !isObject(doc.modelTopology)) throw new ModelFileError(ir.path, 'factorize: the model.json has no modelTopology');
    topology = JSON.parse(JSON.stringify(doc.modelTopology)) as Json;
    keras = kerasModelOf(topology);
    if (!keras) throw new ModelFileError(ir.path, 'factorize: the modelTopology is not a Keras Sequential or functional model');
  }
  for (const t of chosen) {
    const skip = (reason: string) => skipped.push({ tensor: t.name, reason });
    if (t.shape.length !== 2) {
      if (explicit) skip(`it is ${t.shape.length}-D, not a matrix`);
      continue;
    }
    if (t.dtype !== 'float32') {
      skip(`it is ${t.dtype}: only float32 weights are factorized (factorize before quantizing)`);
      continue;
    }
    const [m, n] = t.shape;
    if (Math.min(m, n) < 2 && st.minSaving >= 0) {
      if (explicit) skip(`[${m}, ${n}] has nothing to gain`);
      continue;
    }
    if (ir.format === 'onnx') {
      const site = onnxSite(ir, t, onnxRealNames!, opset);
      if ('skip' in site) skip(site.skip);
      else candidates.push(site);
    } else {
      const kind: 'table' | 'kernel' = t.role === 'embedding' ? 'table' : 'kernel';
      if (t.role !== 'embedding' && t.role !== 'dense-kernel') {
        skip(`its role is ${t.role}`);
        continue;
      }
      if (t.transposed) {
        skip('a transposed Dense kernel is not a TF.js layers layout');
        continue;
      }
      const layer = tfjsCandidateCheck(keras!, t, kind);
      if ('skip' in layer) skip(layer.skip as string);
      else candidates.push({ tensor: t, kind, orientation: 'x-w', layer });
    }
  }
  if (ir.format === 'tfjs-layers') {
    // one layer, one factorization: an Embedding's table or a Dense's kernel
    const seen = new Set<string>();
    for (let i = candidates.length - 1; i >= 0; i--) {
      const c = candidates[i];
      if (seen.has(c.tensor.layer)) {
        skipped.push({ tensor: c.tensor.name, reason: `layer "${c.tensor.layer}" has another factorized weight` });
        candidates.splice(i, 1);
      } else seen.add(c.tensor.layer);
    }
  } else {
    // a node rewritten for one tensor cannot be rewritten for another
    const used = new Set<string>();
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i] as OnnxSite;
      if (c.nodes.some((nd) => used.has(nd.name))) {
        skipped.push({ tensor: c.tensor.name, reason: 'a node that reads it reads another factorized tensor' });
        candidates.splice(i--, 1);
      } else for (const nd of c.nodes) used.add(nd.name);
    }
  }

  const factorized: FactorizedTensor[] = [];
  const changes: TensorChange[] = [];
  const onnxEdit: OnnxFactorEdit = { setInitializers: [], removeInitializers: [], insertNodes: [], removeNodes: [] };
  const tfjsWeights: NonNullable<TfjsModelEdit['setWeights']> = [];
  // folding tables' projections into the kernels that read them: the walks see the model as read
  const depGraph = st.fold && candidates.some((c) => c.kind === 'table') ? buildDepGraph(ir) : undefined;
  const busy = new Set(candidates.map((c) => c.tensor.name));
  const foldsByKernel = new Map<string, { kernel: ModelTensor; folds: Fold[] }>();
  let done = 0;
  for (const c of candidates) {
    signal?.throwIfAborted();
    const t = c.tensor;
    ctx.onProgress?.(done / Math.max(1, candidates.length), `factorizing ${t.name}`);
    const f = await factorize(t, c.kind, c.orientation, st, signal);
    done++;
    if ('skip' in f) {
      skipped.push({ tensor: t.name, reason: f.skip });
      continue;
    }
    const [m, n] = t.shape;
    let factorNames: [string, string];
    const sites = depGraph && c.kind === 'table' ? projectionFoldSites(depGraph, t.name, busy) : undefined;
    const firstCount = f.first.shape[0] * f.first.shape[1];
    const secondCount = f.second.shape[0] * f.second.shape[1];
    let paramsAfter = firstCount + secondCount;
    const extra: Pick<FactorizedTensor, 'foldedInto' | 'foldedParams' | 'notFolded'> = {};
    if (sites && !('skip' in sites)) {
      const proj = await factorValues(f.second, `${t.name} projection`);
      for (const site of sites) {
        const entry = foldsByKernel.get(site.kernel.name) ?? { kernel: site.kernel, folds: [] };
        entry.folds.push({ axis: site.axis, offset: site.offset, width: site.width, rank: f.rank, proj });
        foldsByKernel.set(site.kernel.name, entry);
      }
      // no projection (the table's own count is its factor); each kernel's slice of d rows became r rows
      paramsAfter = firstCount;
      extra.foldedParams = sites.reduce((p, x) => p + (f.rank - x.width) * x.kernel.shape[1 - x.axis], 0);
      extra.foldedInto = sites.map((x) => x.kernel.name);
      if (ir.format === 'onnx') factorNames = [onnxFoldedTableEdit(c as OnnxSite, f, names, onnxEdit), sites[0].kernel.name];
      else {
        ((c as Candidate & { layer: Json }).layer.config as Json).output_dim = f.rank;
        tfjsWeights.push({ name: t.name, dtype: 'float32', shape: f.first.shape, data: await factorValues(f.first, t.name) });
        factorNames = [t.name, sites[0].kernel.name];
      }
    } else if (ir.format === 'onnx') {
      if (sites) extra.notFolded = sites.skip;
      factorNames = onnxEditFor(c as OnnxSite, f, names, onnxEdit);
    } else {
      if (sites) extra.notFolded = sites.skip;
      const layer = (c as Candidate & { layer: Json }).layer;
      if (c.kind === 'table') {
        const proj = tfjsSplitEmbedding(keras!, layer, f.rank, n, names);
        const projWeight = `${proj}/kernel`;
        tfjsWeights.push({ name: t.name, dtype: 'float32', shape: f.first.shape, data: await factorValues(f.first, t.name) });
        tfjsWeights.push({ name: projWeight, dtype: 'float32', shape: f.second.shape, data: await factorValues(f.second, projWeight) });
        factorNames = [t.name, projWeight];
      } else {
        const lowrank = tfjsSplitDense(keras!, layer, f.rank, names);
        const aWeight = `${lowrank}/kernel`;
        tfjsWeights.push({ name: aWeight, dtype: 'float32', shape: f.first.shape, data: await factorValues(f.first, aWeight) });
        tfjsWeights.push({ name: t.name, dtype: 'float32', shape: f.second.shape, data: await factorValues(f.second, t.name) });
        factorNames = [aWeight, t.name];
      }
    }
    factorized.push({
      tensor: t.name,
      kind: c.kind,
      shape: [m, n],
      rank: f.rank,
      fullRank: Math.min(m, n),
      energyKept: f.energyKept,
      relativeError: f.relativeError,
      paramsBefore: m * n,
      paramsAfter,
      factors: factorNames,
      method: f.method,
      ...extra,
    });
    changes.push({
      tensor: t.name,
      action:
        `factorized to rank ${f.rank} of ${Math.min(m, n)} (energy kept ${(f.energyKept * 100).toFixed(2)}%, ` +
        `relative error ${f.relativeError.toPrecision(3)})` +
        (extra.foldedInto ? `; its projection folded into ${extra.foldedInto.join(', ')}` : ''),
      before: { shape: [m, n], dtype: t.dtype, bytes: t.storage.byteLength },
      after: extra.foldedInto
        ? [{ name: factorNames[0], shape: f.first.shape, dtype: 'float32' as DType, bytes: firstCount * 4 }]
        : [
            { name: factorNames[0], shape: f.first.shape, dtype: 'float32' as DType, bytes: firstCount * 4 },
            { name: factorNames[1], shape: f.second.shape, dtype: 'float32' as DType, bytes: secondCount * 4 },
          ],
    });
  }
  for (const { kernel, folds } of foldsByKernel.values()) {
    signal?.throwIfAborted();
    const folded = foldIntoKernel(await readTensorFloat32(kernel), [kernel.shape[0], kernel.shape[1]], folds);
    if (ir.format === 'onnx') onnxEdit.setInitializers.push({ name: kernel.name, dtype: 'float32', shape: folded.shape, data: f32Bytes(folded.values) });
    else tfjsWeights.push({ name: kernel.name, dtype: 'float32', shape: folded.shape, data: folded.values });
    changes.push({
      tensor: kernel.name,
      action: `absorbed the projection of ${folds.length === 1 ? 'a factorized table' : `${folds.length} factorized tables`}`,
      before: { shape: kernel.shape.slice(), dtype: kernel.dtype, bytes: kernel.storage.byteLength },
      after: [{ name: kernel.name, shape: folded.shape, dtype: 'float32' as DType, bytes: folded.values.length * 4 }],
    });
  }
  ctx.onProgress?.(1, 'factorized');

  const notes = factorizeNotes(factorized, skipped, ir);
  const resolvedSettings: Record<string, unknown> = { tensors: st.tensors, minSaving: st.minSaving, fold: st.fold };
  if (st.rank !== undefined) resolvedSettings.rank = st.rank;
  if (st.energy !== undefined) resolvedSettings.energy = st.energy;
  const topo = topology;
  return {
    method: 'factorize',
    settings: resolvedSettings,
    changes,
    notes,
    factorized,
    skipped,
    async write(outPath: string): Promise<void> {
      if (ir.format === 'onnx') {
        if (factorized.length === 0) await writeOnnxModel(ir, outPath);
        else {
          // a model that keeps its weights in external data gets its factors there too; big
          // factors go there anyway (protobuf caps a file at 2 GB)
          const newBytes = onnxEdit.setInitializers.reduce((n, t) => n + t.data.byteLength, 0);
          const external = ir.files.some((f) => f.kind === 'external-data') || newBytes > EXTERNAL_DATA_BYTES;
          // a folded table narrows the values between it and the kernels: their shape hints go (ORT infers them)
          const edit: OnnxGraphEdit = foldsByKernel.size ? { ...onnxEdit, dropAllValueInfo: true } : onnxEdit;
          await writeEditedOnnxModel(ir, edit, outPath, external ? { externalData: { fileName: `${path.basename(outPath)}.data`, minBytes: 1024 } } : undefined);
        }
      } else if (factorized.length === 0) await writeTfjsModel(ir, outPath);
      else await writeEditedTfjsModel(ir, { topology: topo, setWeights: tfjsWeights }, outPath);
    },
  };
}

function factorizeNotes(done: FactorizedTensor[], skipped: Array<{ tensor: string; reason: string }>, ir: ModelIR): string[] {
  const notes: string[] = [];
  if (done.length === 0) {
    notes.push('No tensor was factorized: the model is written unchanged.');
  } else {
    const before = done.reduce((s, f) => s + f.paramsBefore, 0);
    const after = done.reduce((s, f) => s + f.paramsAfter, 0);
    const absorbed = done.reduce((s, f) => s + (f.foldedParams ?? 0), 0);
    // learned parameters only, as the report's parameter row counts them (constants aside)
    const all = ir.tensors.filter((t) => t.trainable).reduce((s, t) => s + (t.shape.length ? tensorElementCountSafe(t.shape) : 1), 0);
    notes.push(
      `${done.length} tensor(s) factorized: ${before} parameters became ${after} ` +
        `(${((1 - after / before) * 100).toFixed(1)}% fewer in those tensors` +
        (absorbed ? `; the dense kernels that absorbed projections ${absorbed < 0 ? `lost ${-absorbed}` : `gained ${absorbed}`}` : '') +
        `; the model goes from ${all} to ${all - before + after + absorbed}).`,
    );
    const kernels = done.filter((f) => f.kind === 'kernel');
    const tables = done.filter((f) => f.kind === 'table');
    if (kernels.length) {
      const macBefore = kernels.reduce((s, f) => s + f.paramsBefore, 0);
      const macAfter = kernels.reduce((s, f) => s + f.paramsAfter, 0);
      notes.push(
        `Each factorized dense layer runs two matrix products (in x r, then r x out) instead of one: ` +
          `${macAfter} multiply-adds per example instead of ${macBefore}. For small layers the extra op's ` +
          `fixed cost outweighs the saving: expect lower latency only from large layers at low rank.`,
      );
    }
    const folded = tables.filter((f) => f.foldedInto);
    const projected = tables.filter((f) => !f.foldedInto);
    if (folded.length) {
      notes.push(
        `The projection of ${folded.map((f) => `${f.tensor} (rank ${f.rank})`).join(', ')} was folded into the dense layer(s) that read the table's ` +
          `vectors (${[...new Set(folded.flatMap((f) => f.foldedInto!))].join(', ')}): the lookup returns r values and the kernel takes r rows ` +
          'instead of d, so there is no projection op and fewer parameters; the model computes the same function.',
      );
    }
    if (projected.length) {
      notes.push(
        `${folded.length ? 'The other factorized tables are' : 'Each factorized embedding table is'} a narrower lookup followed by a projection (r x d ` +
          'multiply-adds per looked-up id): the file and the memory shrink, but latency does not ' +
          'improve: the gather moves fewer bytes while the projection adds one more op, which on ' +
          'small models makes a batch slightly slower.' +
          (projected.some((f) => f.notFolded) ? ` Not folded: ${projected.filter((f) => f.notFolded).map((f) => `${f.tensor} (${f.notFolded})`).join('; ')}.` : ''),
      );
    }
    const approx = done.filter((f) => f.method === 'randomized-svd');
    if (approx.length) notes.push(`Randomized SVD (Halko et al.) was used for ${approx.map((f) => f.tensor).join(', ')}: near-optimal, not exact.`);
    notes.push('This job does not fine-tune: at low rank, fine-tuning the factorized model on interaction data can recover part of the accuracy lost.');
  }
  if (skipped.length) {
    const shown = skipped.slice(0, 8).map((s) => `${s.tensor}: ${s.reason}`);
    notes.push(`Left as they are: ${shown.join('; ')}${skipped.length > 8 ? `; and ${skipped.length - 8} more` : ''}.`);
  }
  return notes;
}

function tensorElementCountSafe(shape: number[]): number {
  try {
    return tensorElementCount(shape);
  } catch {
    return 0;
  }
}
