// TF.js reader: model.json (layers models, graph models) and bare weights manifests (a JSON array
// of manifest groups, as face-api and tfjs `io.encodeWeights` users ship them) -> the model IR.
//
// Byte layout follows tfjs-core io_utils.decodeWeights: within a manifest group the shards
// (`paths`) are concatenated in order and the weights lie back to back in manifest order, so a
// weight may straddle a shard boundary. Quantized weights store uint8/uint16 (value = q*scale+min,
// int32 weights rounded after) or float16 bits; `ModelTensor.dtype` keeps the manifest's dtype
// (what TF.js computes with), `storage` says what the bytes are.

import { lstat, open, readFile, realpath, stat } from 'node:fs/promises';
import * as path from 'node:path';
import {
  DType,
  GraphNode,
  GraphValueInfo,
  ModelFile,
  ModelFileError,
  ModelFormat,
  ModelGraph,
  ModelIR,
  ModelLayer,
  ModelTensor,
  QuantizationInfo,
  TensorRole,
  TensorSource,
} from './ir.js';
import { tensorElementCount } from './tensor-data.js';
import { dtypeByteSize } from './dtype.js';

export interface ReadTfjsOptions {
  signal?: AbortSignal;
  /** fraction of the weight bytes read so far, 0..1 */
  onProgress?: (fraction: number) => void;
  /**
   * Models whose shards together are at most this many bytes are read into memory ('bytes'
   * sources); larger ones are left on disk ('file' sources) except weights that straddle two
   * shards, which are copied. Default 256 MiB.
   */
  maxInMemoryBytes?: number;
}

/** One weight as a manifest declares it (tfjs-core WeightsManifestEntry). */
export interface TfjsManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
  group?: string;
  quantization?: { dtype: string; scale?: number; min?: number; original_dtype?: string };
}

export interface TfjsManifestGroup {
  paths: string[];
  weights: TfjsManifestEntry[];
}

/** TF.js weight dtypes (tfjs-core DataType as it appears in manifests). */
const MANIFEST_DTYPES: ReadonlySet<string> = new Set(['float32', 'int32', 'bool', 'string', 'complex64']);
/** TF.js string tensors: each string is a little-endian uint32 byte length followed by its bytes. */
const STRING_LENGTH_BYTES = 4;
/** V8 cannot hold a longer string, so JSON.parse could not read a larger model.json. */
const MAX_JSON_BYTES = 512 * 1024 * 1024 - 64;
const DEFAULT_IN_MEMORY_BYTES = 256 * 1024 * 1024;
/** Largest single buffer we allocate for a weight that straddles shards (Node's Buffer limit is 4 GiB). */
const MAX_COPY_BYTES = 2 ** 31;

// ---------------------------------------------------------------------------------------------
// JSON

/**
 * Deepest nesting of arrays/objects accepted in model.json. Keras configs nest a few dozen levels;
 * the walkers over the document (and JSON.stringify) recurse, so a hostile file nested 100,000
 * deep would overflow the stack. Python's json stops near 1000 too.
 */
export const MAX_JSON_DEPTH = 1000;

/** The nesting depth of a parsed JSON value, computed without recursion; stops past `limit`. */
function jsonDepthOver(root: unknown, limit: number): boolean {
  const stack: Array<{ v: unknown; d: number }> = [{ v: root, d: 0 }];
  while (stack.length > 0) {
    const { v, d } = stack.pop() as { v: unknown; d: number };
    if (typeof v !== 'object' || v === null) continue;
    if (d + 1 > limit) return true;
    for (const x of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) {
      if (typeof x === 'object' && x !== null) stack.push({ v: x, d: d + 1 });
    }
  }
  return false;
}

/** A short JSON rendering of a value from the file, for messages (never the whole of a huge value). */
function jsonSnippet(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 120 ? `${s.slice(0, 120)}...` : s;
}

/** Parses JSON text; on failure a ModelFileError with the reason and the line where V8 stopped. */
export function parseJsonFile(file: string, text: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let doc: unknown;
  try {
    doc = JSON.parse(body) as unknown;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    let where = '';
    const lc = /line (\d+) column (\d+)/.exec(msg);
    const pos = /at position (\d+)/.exec(msg);
    if (lc) {
      where = ` at line ${lc[1]}, column ${lc[2]}`;
    } else if (pos) {
      const p = Number(pos[1]);
      const before = body.slice(0, p);
      const line = before.split('\n').length;
      const col = p - before.lastIndexOf('\n');
      where = ` at line ${line}, column ${col}`;
    } else if (/end of JSON input/i.test(msg)) {
      where = ` at line ${body.split('\n').length} (the file ends early)`;
    }
    const reason = msg.replace(/\s*\(line \d+ column \d+\)/, '').replace(/ in JSON at position \d+.*$/, '');
    throw new ModelFileError(file, `not valid JSON: ${reason}${where}`, { cause: e });
  }
  if (jsonDepthOver(doc, MAX_JSON_DEPTH)) {
    throw new ModelFileError(file, `arrays/objects nested more than ${MAX_JSON_DEPTH} deep: not a model.json (or a hostile one)`);
  }
  return doc;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// Manifest validation (before touching any shard)

function validateManifest(file: string, raw: unknown): TfjsManifestGroup[] {
  if (!Array.isArray(raw)) throw new ModelFileError(file, 'weightsManifest is not an array of groups');
  return raw.map((g, gi) => {
    const where = `weightsManifest group ${gi + 1}`;
    if (!isObject(g)) throw new ModelFileError(file, `${where} is not an object`);
    if (!Array.isArray(g.paths) || !g.paths.every((p) => typeof p === 'string')) {
      throw new ModelFileError(file, `${where} has no "paths" list of strings`);
    }
    if (!Array.isArray(g.weights)) throw new ModelFileError(file, `${where} has no "weights" list`);
    const weights = g.weights.map((w, wi) => validateEntry(file, `${where} weight ${wi + 1}`, w));
    return { paths: g.paths as string[], weights };
  });
}

function validateEntry(file: string, where: string, w: unknown): TfjsManifestEntry {
  if (!isObject(w)) throw new ModelFileError(file, `${where} is not an object`);
  if (typeof w.name !== 'string') throw new ModelFileError(file, `${where} has no name`);
  const label = `weight "${w.name}"`;
  if (!Array.isArray(w.shape)) throw new ModelFileError(file, `${label} has no shape list`);
  const shape = w.shape as unknown[];
  if (!shape.every((d): d is number => typeof d === 'number')) {
    throw new ModelFileError(file, `${label} has a shape with a non-number dim: ${jsonSnippet(shape)}`);
  }
  try {
    tensorElementCount(shape);
  } catch (e) {
    throw new ModelFileError(file, `${label}: ${(e as Error).message}`);
  }
  if (typeof w.dtype !== 'string' || !MANIFEST_DTYPES.has(w.dtype)) {
    throw new ModelFileError(file, `${label} has unsupported dtype ${jsonSnippet(w.dtype)} (TF.js weights are float32, int32, bool, string or complex64)`);
  }
  const entry: TfjsManifestEntry = { name: w.name, shape, dtype: w.dtype };
  if (w.quantization !== undefined && w.quantization !== null) {
    const q = w.quantization;
    if (!isObject(q)) throw new ModelFileError(file, `${label} has a quantization that is not an object`);
    if (q.dtype !== 'uint8' && q.dtype !== 'uint16' && q.dtype !== 'float16') {
      throw new ModelFileError(file, `${label} has unknown quantization dtype ${jsonSnippet(q.dtype)} (TF.js knows uint8, uint16, float16)`);
    }
    // Same rules as tfjs-core decodeWeight, so that what we accept TF.js can load.
    if (q.dtype === 'float16' && w.dtype !== 'float32') {
      throw new ModelFileError(file, `${label} is float16-quantized but has dtype ${w.dtype}; TF.js allows float16 only for float32 weights`);
    }
    if (q.dtype !== 'float16') {
      if (typeof q.scale !== 'number' || typeof q.min !== 'number' || !Number.isFinite(q.scale) || !Number.isFinite(q.min)) {
        throw new ModelFileError(file, `${label} has ${q.dtype} quantization without a finite scale and min`);
      }
      if (w.dtype !== 'float32' && w.dtype !== 'int32') {
        throw new ModelFileError(file, `${label} is ${q.dtype}-quantized but has dtype ${w.dtype}; TF.js allows it only for float32 and int32`);
      }
    }
    if (q.original_dtype !== undefined && (typeof q.original_dtype !== 'string' || !MANIFEST_DTYPES.has(q.original_dtype))) {
      throw new ModelFileError(file, `${label} has unknown quantization original_dtype ${jsonSnippet(q.original_dtype)}`);
    }
    entry.quantization = {
      dtype: q.dtype,
      ...(q.scale !== undefined ? { scale: q.scale as number } : {}),
      ...(q.min !== undefined ? { min: q.min as number } : {}),
      ...(q.original_dtype !== undefined ? { original_dtype: q.original_dtype as string } : {}),
    };
  }
  return entry;
}

/** Bytes an entry takes in its group, or undefined for strings (length known only from the data). */
function fixedByteLength(e: TfjsManifestEntry): number | undefined {
  if (!e.quantization && e.dtype === 'string') return undefined;
  const size = dtypeByteSize(e.quantization ? e.quantization.dtype : e.dtype);
  return tensorElementCount(e.shape) * size;
}

// ---------------------------------------------------------------------------------------------
// Shard paths

/**
 * A manifest path must name a file inside the model's folder: no absolute paths, no `..`, no
 * URL schemes, and (checked later with realpath) no symlink that leads outside.
 */
function checkShardPathText(modelFile: string, rel: string): void {
  const refuse = (why: string): never => {
    throw new ModelFileError(modelFile, `refusing weightsManifest path "${rel}": ${why}`);
  };
  if (rel.length === 0) refuse('it is empty');
  if (rel.includes('\0')) refuse('it contains a NUL byte');
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(rel)) refuse('it is a URL or a drive path; only paths relative to model.json are read');
  if (rel.startsWith('/') || rel.startsWith('\\') || path.isAbsolute(rel)) refuse('it is absolute; only paths relative to model.json are read');
  if (rel.split(/[\\/]/).some((seg) => seg === '..')) refuse('it leaves the model folder (..)');
  if (/[?#]/.test(rel)) refuse('it has a URL query or fragment');
}

interface Shard {
  rel: string;
  file: string;
  size: number;
  /** group byte offset where this shard starts */
  start: number;
  bytes?: Uint8Array;
}

async function resolveShard(modelFile: string, realDir: string, dir: string, rel: string): Promise<{ file: string; size: number }> {
  checkShardPathText(modelFile, rel);
  const joined = path.resolve(dir, rel);
  try {
    await lstat(joined);
  } catch {
    throw new ModelFileError(modelFile, `weight shard "${rel}" is missing (looked for ${joined})`);
  }
  let real: string;
  try {
    real = await realpath(joined);
  } catch {
    throw new ModelFileError(modelFile, `weight shard "${rel}" is a broken link (${joined})`);
  }
  if (!real.startsWith(realDir + path.sep)) {
    throw new ModelFileError(modelFile, `refusing weightsManifest path "${rel}": it resolves to ${real}, outside the model folder ${realDir}`);
  }
  const st = await stat(real);
  if (!st.isFile()) throw new ModelFileError(modelFile, `weight shard "${rel}" is not a regular file`);
  return { file: real, size: st.size };
}

/** A manifest group's shards seen as one byte range. */
class GroupBytes {
  readonly total: number;
  constructor(readonly shards: Shard[]) {
    this.total = shards.reduce((s, x) => s + x.size, 0);
  }

  /** index of the shard holding group byte `offset` (offset < total) */
  shardAt(offset: number): number {
    let lo = 0;
    let hi = this.shards.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.shards[mid].start <= offset) lo = mid;
      else hi = mid - 1;
    }
    // skip empty shards that start at the same offset
    while (lo < this.shards.length - 1 && this.shards[lo].start + this.shards[lo].size <= offset) lo++;
    return lo;
  }

  /** Copies `length` bytes starting at group byte `offset` (may cross shards). */
  async copy(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const s = this.shards[this.shardAt(at)];
      const within = at - s.start;
      const n = Math.min(length - done, s.size - within);
      if (s.bytes) {
        out.set(s.bytes.subarray(within, within + n), done);
      } else {
        await readFileRange(s.file, within, out.subarray(done, done + n));
      }
      done += n;
    }
    return out;
  }
}

async function readFileRange(file: string, offset: number, into: Uint8Array): Promise<void> {
  const fh = await open(file, 'r');
  try {
    let done = 0;
    while (done < into.byteLength) {
      const { bytesRead } = await fh.read(into, done, into.byteLength - done, offset + done);
      if (bytesRead === 0) throw new ModelFileError(file, `file ended early: needed ${into.byteLength} bytes at offset ${offset}`);
      done += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

function sizeMismatchReason(group: number, shards: Shard[], total: number, need: number): string {
  if (shards.length === 0) return `weightsManifest group ${group} lists no shard files, its weights need ${need} bytes`;
  const last = shards[shards.length - 1];
  if (shards.length === 1) return `${last.rel} is ${last.size} bytes, the manifest needs ${need}`;
  // Converter layout: every shard but the last holds the same number of bytes (the shard size,
  // taken as the most common size among them); name the first shard that breaks it.
  const full = shards.slice(0, -1);
  const counts = new Map<number, number>();
  for (const s of full) counts.set(s.size, (counts.get(s.size) ?? 0) + 1);
  let shardSize = full[0].size;
  for (const [size, n] of counts) if (n > (counts.get(shardSize) ?? 0)) shardSize = size;
  const lastNeed = need - shardSize * full.length;
  if (lastNeed > 0 && lastNeed <= shardSize) {
    const bad = full.find((s) => s.size !== shardSize);
    if (bad) return `${bad.rel} is ${bad.size} bytes, the manifest needs ${shardSize}`;
    if (last.size !== lastNeed) return `${last.rel} is ${last.size} bytes, the manifest needs ${lastNeed}`;
  }
  // name a few shards, not thousands (a hostile manifest can list any number)
  const names = shards.length <= 8 ? shards.map((s) => s.rel).join(', ') : `${shards.slice(0, 4).map((s) => s.rel).join(', ')}, ... ${last.rel}`;
  return `the ${shards.length} shards of weightsManifest group ${group} (${names}) hold ${total} bytes, the manifest needs ${need}`;
}

// ---------------------------------------------------------------------------------------------
// Model kinds

type TfjsKind = 'layers' | 'graph' | 'weights';

function kindOf(file: string, doc: unknown): TfjsKind {
  if (Array.isArray(doc)) {
    if (doc.every((g) => isObject(g) && Array.isArray(g.weights))) return 'weights';
    throw new ModelFileError(file, 'not a TF.js model: a JSON array that is not a list of weight manifest groups');
  }
  if (!isObject(doc) || (doc.weightsManifest === undefined && doc.modelTopology === undefined)) {
    throw new ModelFileError(file, 'not a TF.js model: no weightsManifest/modelTopology');
  }
  if (doc.format === 'graph-model') return 'graph';
  if (doc.format === 'layers-model') return 'layers';
  const topo = doc.modelTopology;
  if (isObject(topo)) {
    if (Array.isArray(topo.node)) return 'graph';
    if (typeof topo.class_name === 'string' || isObject(topo.model_config) || isObject(topo.config)) return 'layers';
  }
  if (topo === undefined || topo === null) return 'weights';
  throw new ModelFileError(file, 'not a TF.js model: modelTopology is neither a Keras model nor a TensorFlow graph');
}

const FORMAT_OF: Record<TfjsKind, ModelFormat> = { layers: 'tfjs-layers', graph: 'tfjs-graph', weights: 'tfjs-weights' };

// ---------------------------------------------------------------------------------------------
// Layers models (Keras topology)

interface KerasLayer {
  name: string;
  /** 'outer/inner' for layers of nested models */
  qualified: string;
  kind: string;
  inbound: string[];
  config: Record<string, unknown>;
}

interface KerasTopology {
  layers: KerasLayer[];
  inputs: GraphValueInfo[];
  outputs: GraphValueInfo[];
}

const MODEL_CLASSES = new Set(['Sequential', 'Model', 'Functional']);

function kerasModelConfig(topo: Record<string, unknown>): Record<string, unknown> | undefined {
  if (isObject(topo.model_config)) return topo.model_config;
  if (typeof topo.class_name === 'string') return topo;
  return undefined;
}

/** Layer names from Keras 2 (`[[name, node, tensor, kwargs]]`) or Keras 3 (`{args: [keras tensors]}`) inbound_nodes. */
function inboundNames(inbound: unknown): string[] {
  const names: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) {
      if (typeof v[0] === 'string' && typeof v[1] === 'number') {
        names.push(v[0]);
        return;
      }
      v.forEach(visit);
    } else if (isObject(v)) {
      if (isObject(v.config) && Array.isArray(v.config.keras_history) && typeof v.config.keras_history[0] === 'string') {
        names.push(v.config.keras_history[0]);
        return;
      }
      if (v.args !== undefined) visit(v.args);
      if (v.kwargs !== undefined) visit(v.kwargs);
    }
  };
  visit(inbound);
  return [...new Set(names)];
}

function shapeFromKeras(v: unknown): Array<number | string> | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.map((d) => (typeof d === 'number' ? d : -1));
}

function kerasDtype(v: unknown): DType | undefined {
  if (typeof v === 'string' && ['float32', 'int32', 'bool', 'string', 'float16', 'float64', 'int64'].includes(v)) return v as DType;
  if (isObject(v) && isObject(v.config)) return kerasDtype(v.config.name);
  return undefined;
}

function parseKeras(model: Record<string, unknown>): KerasTopology {
  const layers: KerasLayer[] = [];
  const inputs: GraphValueInfo[] = [];
  const outputs: GraphValueInfo[] = [];

  const walk = (m: Record<string, unknown>, prefix: string, top: boolean): void => {
    const cls = typeof m.class_name === 'string' ? m.class_name : 'Model';
    const config = isObject(m.config) ? m.config : {};
    const list: unknown[] = Array.isArray(config.layers) ? config.layers : Array.isArray(m.config) ? (m.config as unknown[]) : [];
    let previous: string | undefined;
    for (const item of list) {
      if (!isObject(item)) continue;
      const lc = isObject(item.config) ? item.config : {};
      const name = typeof item.name === 'string' ? item.name : typeof lc.name === 'string' ? lc.name : `layer_${layers.length}`;
      const kind = typeof item.class_name === 'string' ? item.class_name : 'Layer';
      let inbound = inboundNames(item.inbound_nodes);
      if (cls === 'Sequential' && inbound.length === 0 && previous !== undefined) inbound = [previous];
      layers.push({ name, qualified: prefix + name, kind, inbound, config: lc });
      if (kind === 'InputLayer' && top) {
        const shape = shapeFromKeras(lc.batch_input_shape ?? lc.batch_shape);
        inputs.push({ name, ...(kerasDtype(lc.dtype) ? { dtype: kerasDtype(lc.dtype) } : {}), ...(shape ? { shape } : {}) });
      }
      if (MODEL_CLASSES.has(kind)) walk(item, `${prefix}${name}/`, false);
      previous = name;
    }
    if (!top) return;
    if (cls === 'Sequential') {
      const first = list.find(isObject);
      const fc = first && isObject(first.config) ? first.config : undefined;
      if (inputs.length === 0 && fc) {
        const shape = shapeFromKeras(fc.batch_input_shape ?? fc.batch_shape);
        if (shape) inputs.push({ name: `${typeof config.name === 'string' ? config.name : 'sequential'}_input`, shape, ...(kerasDtype(fc.dtype) ? { dtype: kerasDtype(fc.dtype) } : {}) });
      }
      if (previous !== undefined) outputs.push({ name: previous });
    } else {
      for (const n of inboundNames(config.output_layers)) outputs.push({ name: n });
      if (inputs.length === 0) for (const n of inboundNames(config.input_layers)) inputs.push({ name: n });
    }
  };
  walk(model, '', true);
  return { layers, inputs, outputs };
}

const CONV_CLASSES = /^(Conv[123]D|Conv2DTranspose|Conv3DTranspose|SeparableConv[12]D|DepthwiseConv[12]D|Convolution[123]D)$/;
const NORM_CLASSES = /^(BatchNormalization|LayerNormalization|GroupNormalization|UnitNormalization)$/;
const NORM_LEAVES = new Set(['gamma', 'beta', 'moving_mean', 'moving_variance']);

/** Leaf of a weight name without ':0' and the '_1' suffixes tfjs adds to repeated names. */
function weightLeaf(name: string): string {
  const leaf = name.slice(name.lastIndexOf('/') + 1).replace(/:\d+$/, '');
  return leaf.replace(/_\d+$/, '');
}

function roleFromLayer(kind: string | undefined, leaf: string, rank: number, fullName = ''): { role: TensorRole; transposed?: boolean } {
  if (kind === 'Embedding' && leaf === 'embeddings') return { role: 'embedding' };
  if (leaf === 'bias') return { role: 'bias' };
  if (kind === 'Dense' && leaf === 'kernel') return { role: 'dense-kernel', transposed: false };
  if (kind !== undefined && NORM_CLASSES.test(kind) && NORM_LEAVES.has(leaf)) return { role: 'norm' };
  if (kind !== undefined && CONV_CLASSES.test(kind) && /kernel$/.test(leaf)) return { role: 'conv-kernel' };
  if (kind === undefined) {
    // No topology (weights-only manifest) or no layer of that name: go by the usual weight
    // names (Keras: kernel/embeddings/gamma; TF slim and face-api: weights/biases/filters).
    if (leaf === 'embeddings') return { role: 'embedding' };
    if (leaf === 'biases') return { role: 'bias' };
    if (NORM_LEAVES.has(leaf) || /(^|_)(batch_?norm|bn)(_|$)/i.test(fullName)) return { role: 'norm' };
    const kernelLike = /^(kernel|weights|filters?|depthwise_(kernel|filter)|pointwise_(kernel|filter))$/.test(leaf);
    if (kernelLike && rank === 2 && /^(kernel|weights)$/.test(leaf)) return { role: 'dense-kernel', transposed: false };
    if (kernelLike && rank >= 3) return { role: 'conv-kernel' };
  }
  return { role: 'weight' };
}

/** Finds the layer a weight belongs to from its name: `layer/kernel`, `outer/inner/kernel`, `model/dense/kernel`. */
function layerForWeight(name: string, byQualified: Map<string, KerasLayer>, byName: Map<string, KerasLayer>): KerasLayer | undefined {
  const segs = name.replace(/:\d+$/, '').split('/');
  segs.pop();
  // longest qualified prefix first (nested models), then any scope segment matching a layer name,
  // innermost first; tfjs may suffix repeated names (`dense_1` for a second `dense`), which is
  // why the plain segment is tried before stripping a suffix.
  for (let n = segs.length; n > 0; n--) {
    const hit = byQualified.get(segs.slice(0, n).join('/'));
    if (hit) return hit;
  }
  for (let i = segs.length - 1; i >= 0; i--) {
    const hit = byName.get(segs[i]);
    if (hit) return hit;
  }
  return undefined;
}

/** The layer prune-rows.ts puts before a row-pruned TF.js model's tables: `<ids>_row_remap[_N]`. */
export const TFJS_ROW_REMAP_LAYER = /_row_remap(_\d+)?$/;

// ---------------------------------------------------------------------------------------------
// A topology whose weights the manifest does not list

/** Keras layer classes that always own weights (others tell by an `*_initializer` in their config). */
const KERAS_WEIGHT_LAYERS = new Set([
  'Dense', 'Embedding', 'EinsumDense', 'Conv1D', 'Conv2D', 'Conv3D', 'Conv1DTranspose', 'Conv2DTranspose', 'Conv3DTranspose',
  'SeparableConv1D', 'SeparableConv2D', 'DepthwiseConv1D', 'DepthwiseConv2D', 'BatchNormalization', 'LayerNormalization',
  'SimpleRNN', 'GRU', 'LSTM', 'ConvLSTM2D', 'PReLU', 'MultiHeadAttention',
]);

function declaresInitializer(config: Record<string, unknown>): boolean {
  return Object.entries(config).some(([k, v]) => k.endsWith('_initializer') && v !== null && v !== undefined);
}

function kerasLayerHasWeights(l: KerasLayer): boolean {
  if (KERAS_WEIGHT_LAYERS.has(l.kind) || declaresInitializer(l.config)) return true;
  // wrappers (Bidirectional, TimeDistributed) hold their layer in config.layer
  const inner = l.config.layer;
  if (!isObject(inner)) return false;
  if (typeof inner.class_name === 'string' && KERAS_WEIGHT_LAYERS.has(inner.class_name)) return true;
  return isObject(inner.config) && declaresInitializer(inner.config);
}

/** A graph Const node whose value is not written inline: the converter puts it in the manifest. */
function constFromManifest(n: TfNode): boolean {
  if (n.op !== 'Const') return false;
  const tensor = isObject(n.attr.value) && isObject(n.attr.value.tensor) ? n.attr.value.tensor : {};
  return !['tensorContent', 'floatVal', 'doubleVal', 'halfVal', 'intVal', 'int64Val', 'boolVal', 'stringVal'].some((k) => tensor[k] !== undefined);
}

/**
 * Why a model whose manifest lists no weights cannot be read (undefined: its topology needs none):
 * its layers or Const nodes have weights that no file holds. Without this it would read as a
 * model of 0 parameters.
 */
function missingWeightsReason(manifest: unknown, layers: readonly KerasLayer[], nodes: readonly TfNode[]): string | undefined {
  const needing = layers.length > 0 ? layers.filter(kerasLayerHasWeights).map((l) => l.qualified) : nodes.filter(constFromManifest).map((n) => n.name);
  if (needing.length === 0) return undefined;
  const what = layers.length > 0 ? `${needing.length} of its layers have weights` : `its graph has ${needing.length} Const nodes whose values a manifest holds`;
  const names = needing.slice(0, 3).join(', ') + (needing.length > 3 ? ', ...' : '');
  const head = manifest === undefined ? 'no weightsManifest' : 'the weightsManifest lists no weights';
  return `${head}, but ${what} (${names}): the model's weights are missing`;
}

// ---------------------------------------------------------------------------------------------
// Graph models (TensorFlow GraphDef as JSON)

interface TfNode {
  name: string;
  op: string;
  input: string[];
  attr: Record<string, unknown>;
}

function parseTfNodes(list: unknown): TfNode[] {
  if (!Array.isArray(list)) return [];
  return list.filter(isObject).map((n) => ({
    name: typeof n.name === 'string' ? n.name : '',
    op: typeof n.op === 'string' ? n.op : '',
    input: Array.isArray(n.input) ? n.input.filter((x): x is string => typeof x === 'string') : [],
    attr: isObject(n.attr) ? n.attr : {},
  }));
}

/** 'scope/node:1' -> 'scope/node'; '^ctrl' -> 'ctrl' */
function nodeOfInput(input: string): string {
  const s = input.startsWith('^') ? input.slice(1) : input;
  const colon = s.lastIndexOf(':');
  return colon > 0 && /^\d+$/.test(s.slice(colon + 1)) ? s.slice(0, colon) : s;
}

const TF_DTYPES: Record<string, DType> = {
  DT_FLOAT: 'float32', DT_HALF: 'float16', DT_BFLOAT16: 'bfloat16', DT_DOUBLE: 'float64', DT_INT8: 'int8', DT_UINT8: 'uint8',
  DT_INT16: 'int16', DT_UINT16: 'uint16', DT_INT32: 'int32', DT_UINT32: 'uint32', DT_INT64: 'int64', DT_UINT64: 'uint64',
  DT_BOOL: 'bool', DT_STRING: 'string', DT_COMPLEX64: 'complex64',
};

function tfShape(v: unknown): Array<number | string> | undefined {
  if (!isObject(v)) return undefined;
  if (v.unknownRank) return undefined;
  if (!Array.isArray(v.dim)) return [];
  return v.dim.map((d) => (isObject(d) && d.size !== undefined ? Number(d.size) : -1));
}

function decodeBase64Text(s: string): string {
  const buf = Buffer.from(s, 'base64');
  const text = buf.toString('utf8');
  // binary payloads (e.g. serialized protos) are summarised rather than shown as mojibake
  return /[\u0000-\u0008\u000e-\u001f\ufffd]/.test(text) ? `<${buf.length} bytes>` : text;
}

/** TF AttrValue JSON (`{i: "1"}`, `{list: {s: [...]}}`, `{tensor: {...}}`) -> plain values. */
function attrValue(v: unknown): unknown {
  if (!isObject(v)) return v;
  if ('list' in v) {
    const l = isObject(v.list) ? v.list : {};
    if (Array.isArray(l.s)) return l.s.map((x) => (typeof x === 'string' ? decodeBase64Text(x) : x));
    if (Array.isArray(l.i)) return l.i.map(Number);
    if (Array.isArray(l.f)) return l.f.map(Number);
    if (Array.isArray(l.b)) return l.b.map(Boolean);
    if (Array.isArray(l.type)) return l.type.map((t) => TF_DTYPES[String(t)] ?? t);
    if (Array.isArray(l.shape)) return l.shape.map(tfShape);
    return [];
  }
  if ('s' in v) return typeof v.s === 'string' ? decodeBase64Text(v.s) : v.s;
  if ('i' in v) return Number(v.i);
  if ('f' in v) return Number(v.f);
  if ('b' in v) return Boolean(v.b);
  if ('type' in v) return TF_DTYPES[String(v.type)] ?? v.type;
  if ('shape' in v) return tfShape(v.shape);
  if ('tensor' in v && isObject(v.tensor)) {
    return { tensor: { dtype: TF_DTYPES[String(v.tensor.dtype)] ?? v.tensor.dtype, shape: tfShape(v.tensor.tensorShape) } };
  }
  if ('func' in v && isObject(v.func)) return { func: v.func.name };
  return {};
}

function graphRole(op: string, inputIndex: number, node: TfNode, dtype: DType, elements: number): { role: TensorRole; transposed?: boolean } {
  const fused = Array.isArray(attrValue(node.attr.fused_ops)) ? (attrValue(node.attr.fused_ops) as string[]) : [];
  switch (op) {
    case 'GatherV2':
    case 'Gather':
    case 'ResourceGather':
    case 'GatherNd':
      return inputIndex === 0 ? { role: 'embedding' } : { role: 'constant' };
    case 'MatMul':
    case '_FusedMatMul':
    case 'BatchMatMul':
    case 'BatchMatMulV2':
    case 'BatchMatMulV3': {
      if (inputIndex >= 2) return fusedArgRole(fused);
      const flag = (k: string): boolean => attrValue(node.attr[k]) === true;
      if (inputIndex === 1) return { role: 'dense-kernel', transposed: flag('transpose_b') || flag('adj_y') };
      // a constant left operand (W @ x) is the weight stored [out, in] unless transposed
      return { role: 'dense-kernel', transposed: !(flag('transpose_a') || flag('adj_x')) };
    }
    case 'BiasAdd':
    case 'BiasAddV1':
      return inputIndex === 1 ? { role: 'bias' } : { role: 'weight' };
    case 'Add':
    case 'AddV2':
      return dtype === 'float32' && elements > 1 ? { role: 'bias' } : { role: 'constant' };
    case 'FusedBatchNorm':
    case 'FusedBatchNormV2':
    case 'FusedBatchNormV3':
      return inputIndex >= 1 ? { role: 'norm' } : { role: 'weight' };
    case 'Conv1D':
    case 'Conv2D':
    case 'Conv3D':
    case 'Conv2DBackpropInput':
    case 'DepthwiseConv2d':
    case 'DepthwiseConv2dNative':
    case '_FusedConv2D':
    case 'FusedDepthwiseConv2dNative':
    case 'FusedConv2D':
      if (inputIndex === 1) return { role: 'conv-kernel' };
      if (inputIndex >= 2) return fusedArgRole(fused);
      return { role: 'weight' };
    case 'Prelu':
      return { role: 'weight' };
    default:
      return elements <= 1 ? { role: 'constant' } : { role: 'weight' };
  }
}

/** Extra args of _FusedMatMul/_FusedConv2D: [bias] for BiasAdd, [scale, offset, mean, var] for FusedBatchNorm, +alpha for Prelu. */
function fusedArgRole(fused: string[]): { role: TensorRole } {
  if (fused.includes('FusedBatchNorm')) return { role: 'norm' };
  if (fused.includes('BiasAdd')) return { role: 'bias' };
  return { role: 'weight' };
}

/**
 * The layer of a graph constant: its own scope when it has one ('model_1/conv2d_1/Conv2D_weights'
 * -> 'model_1/conv2d_1'; a variable read 'model/dense/MatMul/ReadVariableOp' -> 'model/dense',
 * the op segment dropped), else the scope of the node that uses it ('unknown_26').
 */
function graphLayerName(constName: string, consumerName: string): string {
  if (!constName.includes('/')) return scopeOf(consumerName);
  const scope = scopeOf(constName);
  const leaf = constName.slice(constName.lastIndexOf('/') + 1);
  return /^ReadVariableOp(_\d+)?$/.test(leaf) && scope.includes('/') ? scopeOf(scope) : scope;
}

function scopeOf(name: string): string {
  const i = name.lastIndexOf('/');
  return i > 0 ? name.slice(0, i) : name;
}

// ---------------------------------------------------------------------------------------------
// Reader

interface PendingTensor {
  entry: TfjsManifestEntry;
  group: number;
  index: number;
  offset: number;
  length: number;
}

export async function readTfjsModel(file: string, opts: ReadTfjsOptions = {}): Promise<ModelIR> {
  const modelPath = path.resolve(file);
  const dir = path.dirname(modelPath);
  let st;
  try {
    st = await stat(modelPath);
  } catch {
    throw new ModelFileError(modelPath, 'file not found');
  }
  if (!st.isFile()) throw new ModelFileError(modelPath, 'not a regular file');
  if (st.size > MAX_JSON_BYTES) throw new ModelFileError(modelPath, `${st.size} bytes is too large for a model.json (JSON limit ${MAX_JSON_BYTES})`);
  const doc = parseJsonFile(modelPath, await readFile(modelPath, 'utf8'));
  const kind = kindOf(modelPath, doc);
  const obj = isObject(doc) ? doc : undefined;
  const groups = validateManifest(modelPath, Array.isArray(doc) ? doc : obj?.weightsManifest ?? []);
  opts.signal?.throwIfAborted();

  const realDir = await realpath(dir);
  const files: ModelFile[] = [{ path: modelPath, bytes: st.size, kind: 'model' }];
  const groupShards: Shard[][] = [];
  // a hostile manifest may list one path thousands of times: resolve (realpath + stat) it once
  const resolved = new Map<string, { file: string; size: number }>();
  for (const g of groups) {
    const shards: Shard[] = [];
    let start = 0;
    for (const rel of g.paths) {
      let r = resolved.get(rel);
      if (!r) resolved.set(rel, (r = await resolveShard(modelPath, realDir, dir, rel)));
      shards.push({ rel, file: r.file, size: r.size, start });
      start += r.size;
      files.push({ path: r.file, bytes: r.size, kind: 'weights' });
    }
    groupShards.push(shards);
  }

  // Sizes: every group's shards must hold exactly what its manifest declares. Strings make the
  // size data-dependent, so groups with strings are checked while their lengths are read.
  for (const [gi, g] of groups.entries()) {
    const sizes = g.weights.map(fixedByteLength);
    if (sizes.some((s) => s === undefined)) continue;
    const need = (sizes as number[]).reduce((a, b) => a + b, 0);
    const total = groupShards[gi].reduce((s, x) => s + x.size, 0);
    if (need !== total) throw new ModelFileError(modelPath, sizeMismatchReason(gi + 1, groupShards[gi], total, need));
  }

  const allBytes = files.filter((f) => f.kind === 'weights').reduce((s, f) => s + f.bytes, 0);
  const inMemory = allBytes <= (opts.maxInMemoryBytes ?? DEFAULT_IN_MEMORY_BYTES);
  let readSoFar = 0;
  if (inMemory) {
    const seen = new Map<string, Uint8Array>();
    for (const shards of groupShards) {
      for (const s of shards) {
        opts.signal?.throwIfAborted();
        let bytes = seen.get(s.file);
        if (!bytes) {
          bytes = await readFile(s.file);
          if (bytes.byteLength !== s.size) throw new ModelFileError(s.file, `changed while being read (${s.size} -> ${bytes.byteLength} bytes)`);
          seen.set(s.file, bytes);
        }
        s.bytes = bytes;
        readSoFar += s.size;
        opts.onProgress?.(allBytes > 0 ? Math.min(1, readSoFar / allBytes) : 1);
      }
    }
  }

  // Lay the weights out in their groups.
  const pending: PendingTensor[] = [];
  for (const [gi, g] of groups.entries()) {
    const gb = new GroupBytes(groupShards[gi]);
    let offset = 0;
    for (const [wi, e] of g.weights.entries()) {
      let length = fixedByteLength(e);
      if (length === undefined) length = await stringByteLength(modelPath, gb, offset, e);
      if (offset + length > gb.total) {
        throw new ModelFileError(modelPath, sizeMismatchReason(gi + 1, gb.shards, gb.total, offset + length));
      }
      pending.push({ entry: e, group: gi, index: wi, offset, length });
      offset += length;
    }
    if (offset !== gb.total) throw new ModelFileError(modelPath, sizeMismatchReason(gi + 1, gb.shards, gb.total, offset));
  }

  // Roles and layers.
  const keras = kind === 'layers' && obj && isObject(obj.modelTopology) ? kerasModelConfig(obj.modelTopology) : undefined;
  const topo = keras ? parseKeras(keras) : undefined;
  const tfNodes = kind === 'graph' && obj && isObject(obj.modelTopology) ? parseTfNodes(obj.modelTopology.node) : [];
  if (pending.length === 0) {
    const missing = missingWeightsReason(obj?.weightsManifest, topo?.layers ?? [], tfNodes);
    if (missing) throw new ModelFileError(modelPath, missing);
  }
  const byQualified = new Map<string, KerasLayer>();
  const byName = new Map<string, KerasLayer>();
  for (const l of topo?.layers ?? []) {
    byQualified.set(l.qualified, l);
    if (!byName.has(l.name)) byName.set(l.name, l);
  }
  const consumersOf = new Map<string, Array<{ node: TfNode; index: number }>>();
  const nodeByName = new Map<string, TfNode>();
  for (const n of tfNodes) {
    nodeByName.set(n.name, n);
    n.input.forEach((inp, index) => {
      if (inp.startsWith('^')) return;
      const src = nodeOfInput(inp);
      let list = consumersOf.get(src);
      if (!list) consumersOf.set(src, (list = []));
      list.push({ node: n, index });
    });
  }

  const groupBytes = groupShards.map((shards) => new GroupBytes(shards));
  const tensors: ModelTensor[] = [];
  for (const p of pending) {
    opts.signal?.throwIfAborted();
    const gb = groupBytes[p.group];
    const source = await sourceFor(gb, p.offset, p.length);
    const first = p.length > 0 ? gb.shards[gb.shardAt(p.offset)] : gb.shards[0];
    const e = p.entry;
    const elements = tensorElementCount(e.shape);
    const dtype = e.dtype as DType;
    const q = e.quantization;
    const quantization: QuantizationInfo | undefined = q
      ? {
          dtype: q.dtype as QuantizationInfo['dtype'],
          ...(q.scale !== undefined ? { scale: q.scale } : {}),
          ...(q.min !== undefined ? { min: q.min } : {}),
          // The manifest's dtype is the dtype before quantization (TF.js rounds int32 weights
          // after the affine map); older converters did not repeat it as original_dtype.
          originalDtype: (q.original_dtype ?? e.dtype) as DType,
        }
      : undefined;

    let role: TensorRole;
    let transposed: boolean | undefined;
    let layer: string;
    let consumers: string[] = [];
    let trainable = true;
    if (kind === 'graph') {
      const cons = consumersOf.get(e.name) ?? [];
      consumers = [...new Set(cons.map((c) => c.node.op))];
      const isNumeric = dtype === 'float32' || dtype === 'complex64';
      const main = cons.find((c) => graphRole(c.node.op, c.index, c.node, dtype, elements).role !== 'weight') ?? cons[0];
      if (!isNumeric) {
        role = 'constant';
      } else if (main) {
        const r = graphRole(main.node.op, main.index, main.node, dtype, elements);
        role = r.role;
        transposed = r.transposed;
      } else {
        role = elements <= 1 ? 'constant' : 'weight';
      }
      trainable = role !== 'constant';
      layer = main ? graphLayerName(e.name, main.node.name) : scopeOf(e.name);
    } else {
      const kl = layerForWeight(e.name, byQualified, byName);
      const r = roleFromLayer(kl?.kind, weightLeaf(e.name), e.shape.length, e.name);
      role = r.role;
      transposed = r.transposed;
      layer = kl ? kl.name : scopeOf(e.name);
      if (kl) consumers = [kl.kind];
      // a row-pruned model's id remap (prune-rows.ts: a frozen 1-wide Embedding `<ids>_row_remap`)
      // is an index, not weights: a constant, as the ONNX form's remap initializer is
      const remap = kl?.kind === 'Embedding' && kl.config.trainable === false && TFJS_ROW_REMAP_LAYER.test(kl.name);
      if (remap || (dtype !== 'float32' && dtype !== 'complex64')) {
        role = 'constant';
        trainable = false;
      }
    }

    tensors.push({
      name: e.name,
      shape: [...e.shape],
      dtype,
      storage: {
        dtype: (q ? q.dtype : e.dtype) as DType,
        byteLength: p.length,
        ...(quantization ? { quantization } : {}),
        source,
        location: `${first ? first.rel : '(no shard)'} @ ${first ? p.offset - first.start : 0}`,
      },
      role,
      layer,
      trainable,
      consumers,
      ...(transposed !== undefined ? { transposed } : {}),
      origin: `weightsManifest group ${p.group + 1} weight ${p.index + 1}`,
    });
    if (!inMemory) {
      readSoFar += p.length;
      opts.onProgress?.(allBytes > 0 ? Math.min(1, readSoFar / allBytes) : 1);
    }
  }
  opts.onProgress?.(1);

  const { layers, graph } =
    kind === 'graph'
      ? graphOf(obj ?? {}, tfNodes, tensors, nodeByName)
      : kind === 'layers' && topo
        ? layersGraphOf(topo, tensors)
        : weightsLayersOf(tensors);

  const metadata: Record<string, string> = { format: obj && typeof obj.format === 'string' ? obj.format : kind === 'weights' ? 'weights-manifest' : `${kind}-model (inferred)` };
  if (obj) {
    for (const k of ['generatedBy', 'convertedBy'] as const) if (typeof obj[k] === 'string') metadata[k] = obj[k] as string;
    const t = obj.modelTopology;
    if (isObject(t)) {
      for (const k of ['keras_version', 'backend'] as const) if (typeof t[k] === 'string') metadata[k] = t[k] as string;
      if (isObject(t.versions) && t.versions.producer !== undefined) metadata.graphProducer = String(t.versions.producer);
    }
  }

  return { format: FORMAT_OF[kind], path: modelPath, files, tensors, layers, graph, metadata, native: doc };
}

async function stringByteLength(modelFile: string, gb: GroupBytes, offset: number, e: TfjsManifestEntry): Promise<number> {
  const count = tensorElementCount(e.shape);
  // every string takes at least its 4-byte length: refuse impossible counts before looping
  if (count * STRING_LENGTH_BYTES > gb.total - offset) {
    throw new ModelFileError(modelFile, `string weight "${e.name}" has ${count} strings, more than the ${gb.total - offset} bytes left in its shards can hold`);
  }
  let len = 0;
  for (let i = 0; i < count; i++) {
    const at = offset + len;
    if (at + STRING_LENGTH_BYTES > gb.total) break;
    const b = await gb.copy(at, STRING_LENGTH_BYTES);
    // uint32 little-endian; `|` on the top byte would wrap to a negative int32 (0xffffffff -> -1)
    const n = (b[0] | (b[1] << 8) | (b[2] << 16)) + b[3] * 2 ** 24;
    len += STRING_LENGTH_BYTES + n;
    if (offset + len > gb.total) {
      throw new ModelFileError(modelFile, `string weight "${e.name}": string ${i + 1} of ${count} is ${n} bytes long, past the end of its shards`);
    }
  }
  return len;
}

async function sourceFor(gb: GroupBytes, offset: number, length: number): Promise<TensorSource> {
  if (length === 0) return { kind: 'bytes', bytes: new Uint8Array(0) };
  const i = gb.shardAt(offset);
  const s = gb.shards[i];
  const within = offset - s.start;
  if (within + length <= s.size) {
    return s.bytes ? { kind: 'bytes', bytes: s.bytes.subarray(within, within + length) } : { kind: 'file', path: s.file, offset: within, length };
  }
  if (!s.bytes) {
    // shards left on disk: the weight stays there too, as consecutive ranges of its shards, so a
    // large table cut into 4 MB shards is streamed, never copied whole
    const parts: Array<{ path: string; offset: number; length: number }> = [];
    let at = offset;
    let left = length;
    for (let k = i; left > 0 && k < gb.shards.length; k++) {
      const sh = gb.shards[k];
      const from = at - sh.start;
      const n = Math.min(sh.size - from, left);
      parts.push({ path: sh.file, offset: from, length: n });
      at += n;
      left -= n;
    }
    return { kind: 'file-parts', parts };
  }
  if (length > MAX_COPY_BYTES) {
    throw new ModelFileError(s.file, `a weight of ${length} bytes straddles shards; weights over ${MAX_COPY_BYTES} bytes across shards are not supported`);
  }
  return { kind: 'bytes', bytes: await gb.copy(offset, length) };
}

function layersGraphOf(topo: KerasTopology, tensors: ModelTensor[]): { layers: ModelLayer[]; graph: ModelGraph } {
  const layers: ModelLayer[] = topo.layers.map((l) => ({ name: l.name, kind: l.kind, tensors: [], inbound: l.inbound }));
  const byName = new Map(layers.map((l) => [l.name, l]));
  for (const t of tensors) {
    let l = byName.get(t.layer);
    if (!l) {
      l = { name: t.layer, kind: 'Unknown', tensors: [], inbound: [] };
      byName.set(l.name, l);
      layers.push(l);
    }
    l.tensors.push(t.name);
  }
  const nodes: GraphNode[] = topo.layers.map((l) => ({
    name: l.name,
    op: l.kind,
    inputs: l.inbound,
    outputs: [l.name],
    attrs: summariseKerasConfig(l.config),
    ...(l.qualified !== l.name ? { scope: l.qualified.slice(0, l.qualified.length - l.name.length - 1) } : {}),
  }));
  return { layers, graph: { inputs: topo.inputs, outputs: topo.outputs, nodes } };
}

/** Keeps a layer config's scalar settings (units, activation, input_dim, ...) for display. */
function summariseKerasConfig(c: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) {
    if (k === 'layers' || k === 'name') continue;
    if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) out[k] = v;
    else if (Array.isArray(v) && v.every((x) => x === null || typeof x === 'number')) out[k] = v;
    else if (isObject(v) && typeof v.class_name === 'string') out[k] = v.class_name;
  }
  return out;
}

function weightsLayersOf(tensors: ModelTensor[]): { layers: ModelLayer[]; graph: ModelGraph } {
  const layers: ModelLayer[] = [];
  const byName = new Map<string, ModelLayer>();
  for (const t of tensors) {
    let l = byName.get(t.layer);
    if (!l) {
      l = { name: t.layer, kind: kindFromRole(t.role), tensors: [], inbound: [] };
      byName.set(l.name, l);
      layers.push(l);
    }
    l.tensors.push(t.name);
  }
  return { layers, graph: { inputs: [], outputs: [], nodes: [] } };
}

function kindFromRole(role: TensorRole): string {
  switch (role) {
    case 'embedding': return 'Embedding';
    case 'dense-kernel': return 'Dense';
    case 'conv-kernel': return 'Conv';
    case 'norm': return 'Normalization';
    default: return 'Unknown';
  }
}

function graphOf(
  doc: Record<string, unknown>,
  tfNodes: TfNode[],
  tensors: ModelTensor[],
  nodeByName: Map<string, TfNode>,
): { layers: ModelLayer[]; graph: ModelGraph } {
  const nodes: GraphNode[] = tfNodes.map((n) => {
    const attrs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(n.attr)) attrs[k] = attrValue(v);
    return { name: n.name, op: n.op, inputs: n.input, outputs: [n.name], attrs };
  });
  const topo = isObject(doc.modelTopology) ? doc.modelTopology : {};
  const lib = isObject(topo.library) ? topo.library : {};
  for (const f of Array.isArray(lib.function) ? lib.function.filter(isObject) : []) {
    const fname = isObject(f.signature) && typeof f.signature.name === 'string' ? f.signature.name : 'function';
    for (const n of parseTfNodes(f.nodeDef)) {
      const attrs: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(n.attr)) attrs[k] = attrValue(v);
      nodes.push({ name: n.name, op: n.op, inputs: n.input, outputs: [n.name], attrs, scope: fname });
    }
  }

  const inputs: GraphValueInfo[] = [];
  const outputs: GraphValueInfo[] = [];
  const sig = isObject(doc.signature) ? doc.signature : undefined;
  const sigValues = (v: unknown): GraphValueInfo[] =>
    isObject(v)
      ? Object.entries(v).map(([key, info]) => {
          const i = isObject(info) ? info : {};
          const dtype = TF_DTYPES[String(i.dtype)];
          const shape = tfShape(i.tensorShape);
          return { name: typeof i.name === 'string' ? i.name : key, ...(dtype ? { dtype } : {}), ...(shape ? { shape } : {}) };
        })
      : [];
  if (sig) {
    inputs.push(...sigValues(sig.inputs));
    outputs.push(...sigValues(sig.outputs));
  }
  if (inputs.length === 0) {
    for (const n of tfNodes.filter((x) => x.op === 'Placeholder')) {
      const dtype = TF_DTYPES[String(isObject(n.attr.dtype) ? n.attr.dtype.type : '')];
      const shape = isObject(n.attr.shape) ? tfShape(n.attr.shape.shape) : undefined;
      inputs.push({ name: n.name, ...(dtype ? { dtype } : {}), ...(shape ? { shape } : {}) });
    }
  }
  if (outputs.length === 0) {
    const consumed = new Set(tfNodes.flatMap((n) => n.input.map(nodeOfInput)));
    for (const n of tfNodes) if (!consumed.has(n.name) && n.op !== 'Const' && n.op !== 'NoOp') outputs.push({ name: n.name });
  }

  // Layers: tensors grouped by the scope of the node that uses them; inbound from the scopes of
  // the nodes that feed that scope's nodes.
  const layers: ModelLayer[] = [];
  const byName = new Map<string, ModelLayer>();
  for (const t of tensors) {
    let l = byName.get(t.layer);
    if (!l) {
      const main = t.consumers.length > 0 ? t.consumers[0] : 'Const';
      l = { name: t.layer, kind: main, tensors: [], inbound: [] };
      byName.set(l.name, l);
      layers.push(l);
    }
    l.tensors.push(t.name);
  }
  const constNames = new Set(tensors.map((t) => t.name));
  for (const n of tfNodes) {
    const l = byName.get(scopeOf(n.name));
    if (!l) continue;
    for (const inp of n.input) {
      const src = nodeOfInput(inp);
      if (constNames.has(src) || !nodeByName.has(src)) continue;
      const from = scopeOf(src);
      if (from !== l.name && !l.inbound.includes(from)) l.inbound.push(from);
    }
  }
  for (const l of layers) {
    const kernel = tensors.find((t) => t.layer === l.name && t.role !== 'bias' && t.role !== 'constant');
    if (kernel && kernel.consumers.length > 0) l.kind = kernel.consumers[0];
  }
  return { layers, graph: { inputs, outputs, nodes } };
}
