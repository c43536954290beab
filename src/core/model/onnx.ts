// Reads an ONNX model into the IR. The file is decoded once with onnx-proto; every raw_data is a
// view into the file buffer (no copy, usually unaligned), external data stays on disk until a
// tensor's values are asked for. Every size in the file is checked against the real sizes before
// anything is allocated, and roles/layers are derived from the ops that consume each tensor.

import { isFloatDtype } from './dtype.js';
import { open, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, sep } from 'node:path';
import { onnx } from 'onnx-proto';
import {
  DType,
  GraphNode,
  GraphValueInfo,
  ModelFile,
  ioReason,
  ModelFileError,
  ModelGraph,
  ModelIR,
  ModelLayer,
  ModelTensor,
  StoredCodes,
  TensorRole,
  TensorSource,
} from './ir.js';
import { ONNX_ELEMENT_BYTES, dtypeFromOnnx, onnxDtypeName } from './onnx/dtypes.js';
import { findStoredCodes } from './onnx-codes.js';

/** Subgraphs nested deeper than this are treated as a malformed (or hostile) file. */
export const MAX_SUBGRAPH_DEPTH = 64;
/** Largest element count accepted for one tensor (same bound as tensor-data.ts). */
const MAX_ELEMENTS = 2 ** 40;
/** Largest dense size a sparse initializer may expand to (it is densified in memory). */
const MAX_SPARSE_DENSE_BYTES = 2 ** 30;
/** protobuf messages (and so .onnx files) cannot reach 2 GB. */
const MAX_ONNX_FILE_BYTES = 2 ** 31;

/**
 * What `ModelIR.native` holds for ONNX. `tensorKeys` maps each IR tensor name to the structural
 * place of its TensorProto ("g/i3", "g/n5/a0/t", "g/n2/a1/g/i0", "g/s1"): the writer finds the
 * same places in the original bytes and rewrites only those.
 */
export interface OnnxNative {
  kind: 'onnx';
  model: onnx.ModelProto;
  /** the whole original file */
  bytes: Uint8Array;
  /** absolute path of the original model file */
  path: string;
  tensorKeys: Map<string, string>;
}

export function isOnnxNative(x: unknown): x is OnnxNative {
  return typeof x === 'object' && x !== null && (x as OnnxNative).kind === 'onnx' && (x as OnnxNative).tensorKeys instanceof Map;
}

type LongLike = number | { toNumber(): number; toString(): string };

function safeInt(x: LongLike | null | undefined, file: string, what: string): number {
  if (x === null || x === undefined) return 0;
  if (typeof x === 'number') {
    if (!Number.isSafeInteger(x)) throw new ModelFileError(file, `${what}: ${x} is not a safe integer`);
    return x;
  }
  const n = x.toNumber();
  if (!Number.isSafeInteger(n) || String(n) !== x.toString()) {
    throw new ModelFileError(file, `${what}: ${x.toString()} is out of range`);
  }
  return n;
}

function longToBigInt(x: LongLike): bigint {
  return typeof x === 'number' ? BigInt(x) : BigInt(x.toString());
}

const utf8 = new TextDecoder('utf-8');

// ---------------------------------------------------------------------------------------------
// Format check at wire level: ONNX has no magic number, so we walk the top-level protobuf fields
// of ModelProto. Anything that is not a well-formed sequence of fields with known wire types,
// containing a graph, is not an ONNX model; a field running past the end means truncation.

function readVarint(b: Uint8Array, pos: number): { value: number; next: number } | undefined {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= b.length) return undefined;
    const byte = b[pos + i];
    value += (byte & 0x7f) * mul;
    mul *= 128;
    if ((byte & 0x80) === 0) return { value, next: pos + i + 1 };
  }
  return undefined;
}

function describeStart(b: Uint8Array): string {
  const head = utf8.decode(b.subarray(0, 16)).replace(/[^\x20-\x7e]/g, '.');
  const t = head.trimStart();
  if (t.startsWith('{') || t.startsWith('[')) return 'it looks like JSON';
  if (t.startsWith('PK')) return 'it looks like a zip archive';
  if (t.startsWith('<')) return 'it looks like XML/HTML';
  if (b[0] === 0x93 && head.slice(1, 6) === 'NUMPY') return 'it looks like a numpy file';
  return `it starts with bytes ${Array.from(b.subarray(0, 8), (x) => x.toString(16).padStart(2, '0')).join(' ')}`;
}

/** ModelProto field numbers and their wire types (0 varint, 2 length-delimited). */
const MODEL_FIELDS: Record<number, number> = { 1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2 };

/**
 * Most nodes plus initializers accepted in the main graph. Decoding costs ~2 KB of JS objects per
 * entry whatever its size (a 10 MB file of 500,000 one-float initializers took 1.1 GB to read),
 * so a small hostile file could exhaust memory. Real models have at most tens of thousands.
 */
export const MAX_GRAPH_ENTRIES = 300_000;

/** Counts the nodes and (sparse) initializers of a GraphProto at wire level, before decoding. */
function checkGraphEntries(file: string, b: Uint8Array, start: number, end: number): void {
  let pos = start;
  let entries = 0;
  while (pos < end) {
    const tag = readVarint(b, pos);
    if (!tag || tag.next > end) return; // malformed: the decoder reports it
    const field = Math.floor(tag.value / 8);
    const wire = tag.value & 7;
    pos = tag.next;
    if (wire === 0) {
      const v = readVarint(b, pos);
      if (!v) return;
      pos = v.next;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const len = readVarint(b, pos);
      if (!len) return;
      pos = len.next + len.value;
      // GraphProto: node = 1, initializer = 5, sparse_initializer = 15
      if ((field === 1 || field === 5 || field === 15) && ++entries > MAX_GRAPH_ENTRIES) {
        throw new ModelFileError(file, `the graph has more than ${MAX_GRAPH_ENTRIES} nodes and initializers: refusing to decode it (it would take gigabytes of memory)`);
      }
    } else return;
  }
}

function checkWireFormat(file: string, b: Uint8Array): void {
  if (b.length === 0) throw new ModelFileError(file, 'not an ONNX model: the file is empty');
  let pos = 0;
  let fields = 0;
  let sawGraph = false;
  while (pos < b.length) {
    const tag = readVarint(b, pos);
    if (!tag) {
      if (fields > 0) throw new ModelFileError(file, `truncated: the file ends inside a field header at byte ${pos}`);
      throw new ModelFileError(file, `not an ONNX model: ${describeStart(b)}`);
    }
    const field = Math.floor(tag.value / 8);
    const wire = tag.value & 7;
    const known = MODEL_FIELDS[field];
    // Unknown field numbers are allowed (newer ONNX versions) if their wire type is valid.
    if (field === 0 || (known !== undefined && known !== wire) || ![0, 1, 2, 5].includes(wire)) {
      throw new ModelFileError(
        file,
        fields === 0 ? `not an ONNX model: ${describeStart(b)}` : `not an ONNX model: invalid field ${field} (wire type ${wire}) at byte ${pos}`,
      );
    }
    pos = tag.next;
    if (wire === 0) {
      const v = readVarint(b, pos);
      if (!v) throw new ModelFileError(file, `truncated: the file ends inside field ${field} at byte ${pos}`);
      pos = v.next;
    } else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (pos + n > b.length) throw new ModelFileError(file, `truncated: field ${field} at byte ${pos} needs ${n} bytes`);
      pos += n;
    } else {
      const len = readVarint(b, pos);
      if (!len) throw new ModelFileError(file, `truncated: the file ends inside the length of field ${field} at byte ${pos}`);
      pos = len.next;
      if (pos + len.value > b.length) {
        // A huge length right at the start is noise, not a cut-off model.
        if (fields === 0 && field !== 7 && len.value > b.length * 4) {
          throw new ModelFileError(file, `not an ONNX model: ${describeStart(b)}`);
        }
        throw new ModelFileError(
          file,
          `truncated: field ${field} at byte ${pos} declares ${len.value} bytes but only ${b.length - pos} remain (file size ${b.length})`,
        );
      }
      if (field === 7) {
        sawGraph = true;
        checkGraphEntries(file, b, pos, pos + len.value);
      }
      pos += len.value;
    }
    fields++;
  }
  if (!sawGraph) throw new ModelFileError(file, 'not an ONNX model: no graph in the file');
}

// ---------------------------------------------------------------------------------------------
// Tensor decoding

interface TensorFound {
  proto: onnx.ITensorProto;
  /** IR name (initializer name, or the Constant node's output) */
  name: string;
  key: string;
  origin: string;
  location: string;
  /** set for sparse initializers: the SparseTensorProto */
  sparse?: onnx.ISparseTensorProto;
}

interface ExternalCtx {
  file: string;
  dir: string;
  realDir: string;
  sizes: Map<string, { path: string; size: number }>;
  files: ModelFile[];
}

function elementCount(file: string, what: string, dims: number[]): number {
  let n = 1;
  for (const d of dims) {
    if (d < 0) throw new ModelFileError(file, `${what}: negative dimension ${d} in shape [${dims.join(', ')}]`);
    n *= d;
    if (n > MAX_ELEMENTS) throw new ModelFileError(file, `${what}: shape [${dims.join(', ')}] has more than 2^40 elements`);
  }
  return n;
}

/** Resolves an external data location inside the model's folder, refusing anything outside. */
async function resolveExternal(ctx: ExternalCtx, location: string, what: string): Promise<{ path: string; size: number }> {
  const cached = ctx.sizes.get(location);
  if (cached) return cached;
  const refuse = (why: string): never => {
    throw new ModelFileError(ctx.file, `${what}: external data location "${location}" refused: ${why}`);
  };
  if (!location) refuse('empty location');
  if (location.includes('\0')) refuse('contains a NUL byte');
  if (isAbsolute(location) || /^[a-zA-Z]:/.test(location) || location.startsWith('\\') || location.startsWith('/')) {
    refuse('absolute paths are not allowed');
  }
  if (location.split(/[\\/]/).includes('..')) refuse('".." is not allowed');
  const joined = join(ctx.dir, location);
  let real: string;
  try {
    real = await realpath(joined);
  } catch (e) {
    throw new ModelFileError(ctx.file, `${what}: external data file "${location}" not found next to the model (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!real.startsWith(ctx.realDir.endsWith(sep) ? ctx.realDir : ctx.realDir + sep)) {
    refuse(`it resolves to ${real}, outside the model's folder`);
  }
  const st = await stat(real);
  if (!st.isFile()) refuse('not a regular file');
  const entry = { path: real, size: st.size };
  ctx.sizes.set(location, entry);
  ctx.files.push({ path: real, bytes: st.size, kind: 'external-data' });
  return entry;
}

/** Little-endian bytes of typed-field values (float_data, int32_data, ...), in a new aligned buffer. */
function typedFieldBytes(
  file: string,
  what: string,
  dtype: DType,
  t: onnx.ITensorProto,
  count: number,
): Uint8Array | undefined {
  const size = ONNX_ELEMENT_BYTES[dtype];
  const need = (got: number, field: string, per = 1): void => {
    if (got !== count * per) {
      throw new ModelFileError(file, `${what}: ${field} has ${got} values, shape needs ${count * per}`);
    }
  };
  // Sizes are checked against the field's real length BEFORE the output is allocated: a corrupt
  // shape must not make us allocate terabytes.
  const fieldLength = (): { len: number; per: number; field: string } => {
    switch (dtype) {
      case 'float32': return { len: (t.floatData ?? []).length, per: 1, field: 'float_data' };
      case 'complex64': return { len: (t.floatData ?? []).length, per: 2, field: 'float_data' };
      case 'float64': return { len: (t.doubleData ?? []).length, per: 1, field: 'double_data' };
      case 'int64': return { len: (t.int64Data ?? []).length, per: 1, field: 'int64_data' };
      case 'uint32':
      case 'uint64': return { len: (t.uint64Data ?? []).length, per: 1, field: 'uint64_data' };
      case 'string': return { len: 0, per: 1, field: 'string_data' };
      default: return { len: (t.int32Data ?? []).length, per: 1, field: 'int32_data' };
    }
  };
  const fl = fieldLength();
  if (dtype === 'string' || (fl.len === 0 && count > 0)) return undefined;
  need(fl.len, fl.field, fl.per);
  const out = new Uint8Array(count * size);
  const dv = new DataView(out.buffer);
  switch (dtype) {
    case 'float32': {
      const v = t.floatData ?? [];
      for (let i = 0; i < count; i++) dv.setFloat32(i * 4, v[i], true);
      return out;
    }
    case 'complex64': {
      const v = t.floatData ?? [];
      for (let i = 0; i < count * 2; i++) dv.setFloat32(i * 4, v[i], true);
      return out;
    }
    case 'float64': {
      const v = t.doubleData ?? [];
      for (let i = 0; i < count; i++) dv.setFloat64(i * 8, v[i], true);
      return out;
    }
    case 'int64': {
      const v = (t.int64Data ?? []) as LongLike[];
      for (let i = 0; i < count; i++) dv.setBigInt64(i * 8, longToBigInt(v[i]), true);
      return out;
    }
    case 'uint32':
    case 'uint64': {
      const v = (t.uint64Data ?? []) as LongLike[];
      for (let i = 0; i < count; i++) {
        // protobufjs gives uint64 as an unsigned Long; its decimal string is the exact value
        const big = BigInt.asUintN(64, longToBigInt(v[i]));
        if (dtype === 'uint64') dv.setBigUint64(i * 8, big, true);
        else dv.setUint32(i * 4, Number(BigInt.asUintN(32, big)), true);
      }
      return out;
    }
    case 'int32':
    case 'int16':
    case 'int8':
    case 'uint16':
    case 'uint8':
    case 'bool':
    case 'float16':
    case 'bfloat16': {
      // int32_data carries every type of 16 bits or less (float16/bfloat16 as their bit patterns)
      const v = t.int32Data ?? [];
      for (let i = 0; i < count; i++) {
        const x = v[i];
        if (dtype === 'int32') dv.setInt32(i * 4, x, true);
        else if (dtype === 'int16') dv.setInt16(i * 2, x, true);
        else if (dtype === 'int8') dv.setInt8(i, x);
        else if (dtype === 'uint8' || dtype === 'bool') dv.setUint8(i, x & 0xff);
        else dv.setUint16(i * 2, x & 0xffff, true);
      }
      return out;
    }
  }
}

function externalEntries(t: onnx.ITensorProto): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of t.externalData ?? []) m.set(e.key ?? '', e.value ?? '');
  return m;
}

function parseNonNegative(file: string, what: string, key: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new ModelFileError(file, `${what}: external data ${key} "${v}" is not a non-negative integer`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new ModelFileError(file, `${what}: external data ${key} ${v} is too large`);
  return n;
}

interface DecodedTensor {
  shape: number[];
  dtype: DType;
  source: TensorSource;
  byteLength: number;
}

async function decodeTensor(ctx: ExternalCtx, f: TensorFound): Promise<DecodedTensor> {
  const file = ctx.file;
  const t = f.proto;
  const what = `tensor "${f.name}" (${f.origin})`;
  const code = t.dataType ?? 0;
  const dtype = dtypeFromOnnx(code);
  if (!dtype) throw new ModelFileError(file, `${what}: element type ${onnxDtypeName(code)} is not supported`);
  const shape = (t.dims ?? []).map((d, i) => safeInt(d as LongLike, file, `${what} dim ${i}`));
  const count = elementCount(file, what, shape);
  const size = ONNX_ELEMENT_BYTES[dtype];
  if (t.segment) throw new ModelFileError(file, `${what}: segmented tensors are not supported`);

  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    if (dtype === 'string') throw new ModelFileError(file, `${what}: string tensors cannot live in external data`);
    const e = externalEntries(t);
    const location = e.get('location');
    if (location === undefined) throw new ModelFileError(file, `${what}: external data without a location`);
    const offset = e.has('offset') ? parseNonNegative(file, what, 'offset', e.get('offset') as string) : 0;
    const expected = count * size;
    const length = e.has('length') ? parseNonNegative(file, what, 'length', e.get('length') as string) : expected;
    if (length !== expected) {
      throw new ModelFileError(file, `${what}: external data length ${length} but shape [${shape.join(', ')}] ${dtype} needs ${expected} bytes`);
    }
    const ext = await resolveExternal(ctx, location, what);
    if (offset + length > ext.size) {
      throw new ModelFileError(file, `${what}: external data range ${offset}+${length} runs past the end of "${location}" (${ext.size} bytes)`);
    }
    return { shape, dtype, byteLength: length, source: { kind: 'file', path: ext.path, offset, length } };
  }

  if (dtype === 'string') {
    const s = t.stringData ?? [];
    if (s.length !== count) throw new ModelFileError(file, `${what}: string_data has ${s.length} values, shape needs ${count}`);
    const values = s.map((b) => utf8.decode(b));
    return { shape, dtype, byteLength: s.reduce((a, b) => a + b.length, 0), source: { kind: 'values', values } };
  }

  const raw = t.rawData;
  if (raw && raw.length > 0) {
    const expected = count * size;
    if (raw.length !== expected) {
      throw new ModelFileError(file, `${what}: raw_data has ${raw.length} bytes but shape [${shape.join(', ')}] ${dtype} needs ${expected}`);
    }
    return { shape, dtype, byteLength: raw.length, source: { kind: 'bytes', bytes: raw } };
  }
  const typed = typedFieldBytes(file, what, dtype, t, count);
  if (typed) return { shape, dtype, byteLength: typed.length, source: { kind: 'bytes', bytes: typed } };
  if (count === 0) return { shape, dtype, byteLength: 0, source: { kind: 'bytes', bytes: new Uint8Array(0) } };
  throw new ModelFileError(file, `${what}: no data (shape [${shape.join(', ')}] needs ${count} ${dtype} values)`);
}

/** A sparse initializer as its dense tensor (values scattered into zeros). */
async function decodeSparse(ctx: ExternalCtx, f: TensorFound): Promise<DecodedTensor> {
  const file = ctx.file;
  const sp = f.sparse as onnx.ISparseTensorProto;
  const what = `sparse tensor "${f.name}" (${f.origin})`;
  if (!sp.values || !sp.indices) throw new ModelFileError(file, `${what}: missing values or indices`);
  const shape = (sp.dims ?? []).map((d, i) => safeInt(d as LongLike, file, `${what} dim ${i}`));
  const count = elementCount(file, what, shape);
  const values = await decodeTensor(ctx, { ...f, proto: sp.values, name: `${f.name}/values` });
  const indices = await decodeTensor(ctx, { ...f, proto: sp.indices, name: `${f.name}/indices` });
  if (values.dtype === 'string') throw new ModelFileError(file, `${what}: string values are not supported`);
  if (indices.dtype !== 'int64') throw new ModelFileError(file, `${what}: indices must be int64, got ${indices.dtype}`);
  const size = ONNX_ELEMENT_BYTES[values.dtype];
  if (count * size > MAX_SPARSE_DENSE_BYTES) throw new ModelFileError(file, `${what}: dense form of ${count * size} bytes is too large`);
  const nnz = values.shape.length === 1 ? values.shape[0] : -1;
  if (nnz < 0) throw new ModelFileError(file, `${what}: values must be 1-D`);
  const readBytes = async (d: DecodedTensor): Promise<Uint8Array> => {
    if (d.source.kind === 'bytes') return d.source.bytes;
    if (d.source.kind === 'file') {
      const fh = await open(d.source.path, 'r');
      try {
        const out = new Uint8Array(d.source.length);
        const { bytesRead } = await fh.read(out, 0, out.length, d.source.offset);
        if (bytesRead !== out.length) throw new ModelFileError(file, `${what}: short read of external data`);
        return out;
      } finally {
        await fh.close();
      }
    }
    throw new ModelFileError(file, `${what}: unexpected value source`);
  };
  const vb = await readBytes(values);
  const ib = await readBytes(indices);
  const idv = new DataView(ib.buffer, ib.byteOffset, ib.byteLength);
  const linear = indices.shape.length === 1;
  if (linear ? indices.shape[0] !== nnz : indices.shape[0] !== nnz || indices.shape[1] !== shape.length) {
    throw new ModelFileError(file, `${what}: indices shape [${indices.shape.join(', ')}] does not fit ${nnz} values of rank ${shape.length}`);
  }
  const dense = new Uint8Array(count * size);
  for (let k = 0; k < nnz; k++) {
    let lin: number;
    if (linear) lin = Number(idv.getBigInt64(k * 8, true));
    else {
      lin = 0;
      for (let d = 0; d < shape.length; d++) {
        const ix = Number(idv.getBigInt64((k * shape.length + d) * 8, true));
        if (ix < 0 || ix >= shape[d]) throw new ModelFileError(file, `${what}: index ${ix} out of range for dim ${d}`);
        lin = lin * shape[d] + ix;
      }
    }
    if (!(lin >= 0 && lin < count)) throw new ModelFileError(file, `${what}: index ${lin} out of range`);
    dense.set(vb.subarray(k * size, (k + 1) * size), lin * size);
  }
  return { shape, dtype: values.dtype, byteLength: values.byteLength + indices.byteLength, source: { kind: 'bytes', bytes: dense } };
}

// ---------------------------------------------------------------------------------------------
// Walking the graphs

interface NodeRef {
  node: onnx.INodeProto;
  /** IR node name (never empty) */
  name: string;
  scope?: string;
  depth: number;
}

interface Walk {
  tensors: TensorFound[];
  nodes: NodeRef[];
  /** value name -> [consuming node, input index] */
  consumers: Map<string, Array<{ ref: NodeRef; index: number }>>;
  producers: Map<string, NodeRef>;
}

function constantNodeTensor(n: onnx.INodeProto, file: string): { proto: onnx.ITensorProto; attrIndex: number } | undefined {
  const attrs = n.attribute ?? [];
  for (let i = 0; i < attrs.length; i++) {
    const a = attrs[i];
    const name = a.name ?? '';
    if (name === 'value' && a.t) return { proto: a.t, attrIndex: i };
    if (name === 'value_float') return { proto: { dims: [], dataType: 1, floatData: [a.f ?? 0] }, attrIndex: i };
    if (name === 'value_floats') return { proto: { dims: [(a.floats ?? []).length], dataType: 1, floatData: a.floats ?? [] }, attrIndex: i };
    if (name === 'value_int') return { proto: { dims: [], dataType: 7, int64Data: [a.i ?? 0] }, attrIndex: i };
    if (name === 'value_ints') return { proto: { dims: [(a.ints ?? []).length], dataType: 7, int64Data: a.ints ?? [] }, attrIndex: i };
    if (name === 'sparse_value') {
      throw new ModelFileError(file, `Constant node "${n.name ?? ''}": sparse_value constants are not supported`);
    }
  }
  return undefined;
}

function walkGraphs(file: string, model: onnx.ModelProto): Walk {
  const w: Walk = { tensors: [], nodes: [], consumers: new Map(), producers: new Map() };
  const base = basename(file);
  let unnamed = 0;
  const visit = (g: onnx.IGraphProto, key: string, scope: string | undefined, depth: number): void => {
    if (depth > MAX_SUBGRAPH_DEPTH) {
      // the scope of a hostile file is dozens of segments long: name where it starts and ends
      const segs = (scope ?? 'main graph').split('/');
      const at = segs.length > 8 ? `${segs.slice(0, 4).join('/')}/.../${segs.slice(-4).join('/')}` : segs.join('/');
      throw new ModelFileError(file, `subgraphs nested more than ${MAX_SUBGRAPH_DEPTH} deep (at ${at})`);
    }
    const where = scope ? `subgraph ${scope}` : 'graph';
    (g.initializer ?? []).forEach((t, i) => {
      w.tensors.push({
        proto: t,
        name: t.name ?? '',
        key: `${key}/i${i}`,
        origin: scope ? `initializer of ${where}` : 'initializer',
        location: `${base} ${where} initializer #${i}`,
      });
    });
    (g.sparseInitializer ?? []).forEach((sp, i) => {
      w.tensors.push({
        proto: sp.values ?? {},
        sparse: sp,
        name: sp.values?.name ?? `sparse_initializer_${i}`,
        key: `${key}/s${i}`,
        origin: scope ? `sparse_initializer of ${where}` : 'sparse_initializer',
        location: `${base} ${where} sparse_initializer #${i}`,
      });
    });
    (g.node ?? []).forEach((n, ni) => {
      const name = n.name || `${n.opType ?? 'node'}_${unnamed++}`;
      const ref: NodeRef = { node: n, name, scope, depth };
      w.nodes.push(ref);
      (n.input ?? []).forEach((inp, index) => {
        if (!inp) return;
        let list = w.consumers.get(inp);
        if (!list) w.consumers.set(inp, (list = []));
        list.push({ ref, index });
      });
      for (const o of n.output ?? []) if (o) w.producers.set(o, ref);
      if (n.opType === 'Constant' && (n.domain ?? '') === '') {
        const c = constantNodeTensor(n, file);
        if (c) {
          const out = (n.output ?? [])[0] ?? name;
          w.tensors.push({
            proto: c.proto,
            name: out,
            key: `${key}/n${ni}/a${c.attrIndex}/t`,
            origin: scope ? `Constant node "${name}" in ${where}` : `Constant node "${name}"`,
            location: `${base} Constant node "${name}"`,
          });
        }
      }
      (n.attribute ?? []).forEach((a, ai) => {
        const sub = (sg: onnx.IGraphProto, k: string, label: string): void => {
          visit(sg, `${key}/n${ni}/a${ai}/${k}`, scope ? `${scope}/${name}/${label}` : `${name}/${label}`, depth + 1);
        };
        if (a.g) sub(a.g, 'g', a.name ?? 'graph');
        (a.graphs ?? []).forEach((sg, gi) => sub(sg, `gs${gi}`, `${a.name ?? 'graphs'}[${gi}]`));
      });
    });
  };
  if (!model.graph) throw new ModelFileError(file, 'not an ONNX model: no graph in the file');
  visit(model.graph, 'g', undefined, 0);
  return w;
}

// ---------------------------------------------------------------------------------------------
// Roles

interface RoleGuess {
  role: TensorRole;
  transposed?: boolean;
  /** the op that gives the role (layer kind) */
  op: string;
  /** the node whose name gives the layer */
  ref?: NodeRef;
}

const ROLE_PRIORITY: TensorRole[] = ['embedding', 'dense-kernel', 'conv-kernel', 'norm', 'bias', 'weight', 'quant-param', 'constant'];

/** Integer storage that may hold quantized weights (as opposed to shapes and indices). */
const QUANT_STORAGE = new Set<DType>(['int8', 'uint8', 'int16', 'uint16', 'int32']);

/** Ops whose output is the same tensor in another form: the role comes from what consumes it. */
const PASS_THROUGH: Record<string, number> = {
  DequantizeLinear: 0,
  Cast: 0,
  Identity: 0,
  Reshape: 0,
  Squeeze: 0,
  Unsqueeze: 0,
  Transpose: 0,
  Flatten: 0,
  QuantizeLinear: 0,
  Slice: 0,
  Split: 0,
  Concat: -1,
};

/** Inputs (by index) that are shapes, axes, indices, sizes: never parameters. */
const SHAPE_INPUTS: Record<string, number[]> = {
  Reshape: [1],
  Expand: [1],
  Tile: [1],
  Slice: [1, 2, 3, 4],
  Squeeze: [1],
  Unsqueeze: [1],
  ConstantOfShape: [0],
  Pad: [1, 2, 3],
  Resize: [1, 2, 3],
  Upsample: [1],
  TopK: [1],
  Range: [0, 1, 2],
  OneHot: [1, 2],
  Split: [1],
  CumSum: [1],
  Gather: [1],
  GatherElements: [1],
  GatherND: [1],
  ScatterND: [1],
  ScatterElements: [1],
  ReduceSum: [1],
  ReduceMean: [1],
  ReduceMax: [1],
  ReduceMin: [1],
  ReduceProd: [1],
  ReduceL2: [1],
  Trilu: [1],
  Clip: [1, 2],
  Where: [0],
  NonMaxSuppression: [2, 3, 4],
  LSTM: [4, 5, 6],
  GRU: [4, 5],
  RNN: [4, 5],
};

function looksLikeParameterName(name: string): boolean {
  return /(^|[./_:])(weight|bias|gamma|beta|kernel|embeddings?|scale|param\w*)(_[a-z0-9]+)*$/i.test(name);
}

function quantParamInput(op: string, index: number): boolean {
  switch (op) {
    case 'DequantizeLinear':
    case 'QuantizeLinear':
      return index === 1 || index === 2;
    case 'MatMulInteger':
    case 'ConvInteger':
      return index === 2 || index === 3;
    case 'QLinearMatMul':
    case 'QLinearConv':
      return index === 1 || index === 2 || index === 4 || index === 5 || index === 6 || index === 7;
    case 'DynamicQuantizeMatMul':
    case 'MatMulIntegerToFloat':
      return index >= 2 && index <= 5;
    default:
      return false;
  }
}

interface RoleCtx {
  walk: Walk;
}

/** Role of a value `name` (an initializer or the output of a pass-through op) from one consumer. */
function roleFromConsumer(
  ctx: RoleCtx,
  op: string,
  index: number,
  ref: NodeRef,
  info: { dtype: DType; rank: number; count: number; name: string },
  transposedSoFar: boolean,
  depth: number,
): RoleGuess {
  const isFloat = isFloatDtype(info.dtype);
  const maybeQuant = isFloat || QUANT_STORAGE.has(info.dtype);
  const attrInt = (n: string): number | undefined => {
    const a = (ref.node.attribute ?? []).find((x) => x.name === n);
    return a && a.i !== undefined && a.i !== null ? Number(a.i) : undefined;
  };
  if (quantParamInput(op, index)) return { role: 'quant-param', op, ref };
  if ((SHAPE_INPUTS[op] ?? []).includes(index)) return { role: 'constant', op, ref };
  if (op in PASS_THROUGH && (PASS_THROUGH[op] === index || PASS_THROUGH[op] === -1) && depth < 8) {
    const out = (ref.node.output ?? [])[0];
    const next = out ? ctx.walk.consumers.get(out) ?? [] : [];
    const flip = op === 'Transpose' ? !transposedSoFar : transposedSoFar;
    const guesses = next.map((c) =>
      roleFromConsumer(ctx, c.ref.node.opType ?? '', c.index, c.ref, info, flip, depth + 1),
    );
    const best = pickBest(guesses);
    if (best) return best;
    return { role: maybeQuant && info.rank >= 2 ? 'weight' : 'constant', op, ref };
  }
  if (!maybeQuant) return { role: 'constant', op, ref };
  switch (op) {
    case 'Gather': {
      // a 2-D table gathered on its second axis (torch.index_select(W, 1, ids)) is stored [dim, ids]
      const axis = attrInt('axis') ?? 0;
      if (index === 0 && info.rank >= 2) return { role: 'embedding', op, ref, ...(info.rank === 2 && (axis === 1 || axis === -1) ? { transposed: true } : {}) };
      return { role: 'constant', op, ref };
    }
    case 'GatherElements':
    case 'EmbedLayerNormalization':
      if (index === 0 && info.rank >= 2) return { role: 'embedding', op, ref };
      return { role: 'constant', op, ref };
    case 'MatMul':
    case 'MatMulInteger':
    case 'QLinearMatMul':
    case 'MatMulNBits': {
      const bIndex = op === 'QLinearMatMul' ? 3 : 1;
      if (info.rank < 2) return { role: 'weight', op, ref };
      if (index === bIndex) return { role: 'dense-kernel', op, ref, transposed: transposedSoFar };
      // weight as the left operand (y = W x): stored [out, in]
      return { role: 'dense-kernel', op, ref, transposed: !transposedSoFar };
    }
    case 'Gemm': {
      if (index === 2) return { role: 'bias', op, ref };
      if (index === 1) return { role: 'dense-kernel', op, ref, transposed: (attrInt('transB') === 1) !== transposedSoFar };
      return { role: 'dense-kernel', op, ref, transposed: (attrInt('transA') !== 1) !== transposedSoFar };
    }
    case 'Conv':
    case 'ConvTranspose':
    case 'ConvInteger':
    case 'QLinearConv':
      if (index === (op === 'QLinearConv' ? 3 : 1)) return { role: 'conv-kernel', op, ref };
      if (index === (op === 'QLinearConv' ? 8 : 2)) return { role: 'bias', op, ref };
      return { role: 'constant', op, ref };
    case 'BatchNormalization':
    case 'InstanceNormalization':
    case 'LayerNormalization':
    case 'GroupNormalization':
    case 'RMSNormalization':
    case 'SimplifiedLayerNormalization':
    case 'SkipLayerNormalization':
    case 'SkipSimplifiedLayerNormalization':
      return index >= 1 ? { role: 'norm', op, ref } : { role: 'weight', op, ref };
    case 'LSTM':
    case 'GRU':
    case 'RNN':
      return { role: 'weight', op, ref };
    case 'PRelu':
      return { role: 'weight', op, ref };
    case 'Add':
    case 'Sum': {
      const others = (ref.node.input ?? []).filter((_, i) => i !== index);
      const fromLinear = others.some((o) => {
        const p = ctx.walk.producers.get(o);
        const pop = p?.node.opType ?? '';
        return ['MatMul', 'Gemm', 'Conv', 'ConvTranspose', 'MatMulInteger', 'MatMulNBits', 'FusedMatMul'].includes(pop);
      });
      if (fromLinear && info.rank <= 1) return { role: 'bias', op, ref };
      break;
    }
    default:
      break;
  }
  // Arithmetic with another constant or an activation: a learned tensor if it looks like one.
  if (info.count <= 1) return { role: 'constant', op, ref };
  if (info.rank >= 2) return { role: 'weight', op, ref };
  return { role: looksLikeParameterName(info.name) ? 'weight' : 'constant', op, ref };
}

function pickBest(guesses: RoleGuess[]): RoleGuess | undefined {
  let best: RoleGuess | undefined;
  for (const g of guesses) {
    if (!best || ROLE_PRIORITY.indexOf(g.role) < ROLE_PRIORITY.indexOf(best.role)) best = g;
  }
  return best;
}

function guessRole(ctx: RoleCtx, name: string, info: { dtype: DType; rank: number; count: number; name: string }): RoleGuess | undefined {
  const cons = ctx.walk.consumers.get(name) ?? [];
  return pickBest(cons.map((c) => roleFromConsumer(ctx, c.ref.node.opType ?? '', c.index, c.ref, info, false, 0)));
}

// ---------------------------------------------------------------------------------------------
// Layers

const PARAM_SUFFIX = /\.(weight|bias|running_mean|running_var|num_batches_tracked|weight_orig|weight_g|weight_v|in_proj_weight|in_proj_bias|scale|gamma|beta|[a-z_]*(weight|bias)(_[a-z0-9]+)*)$/i;

/** Layer name from a node name: PyTorch scopes "/encoder/layer.0/attn/MatMul" -> "encoder.layer.0.attn". */
export function layerFromNodeName(nodeName: string): string | undefined {
  const slash = nodeName.indexOf('/');
  if (slash < 0) return undefined;
  // text before the first "/" is a prefix added by graph rewriters (inlined subgraphs: "If_0_else_branch__Inline_0__")
  const prefix = nodeName.slice(0, slash);
  const segs = nodeName.slice(slash).split('/').filter((s) => s.length > 0);
  segs.pop(); // the op's own name
  // "item_embedding/Gather" (TF/Keras-style scope, no leading slash): the scope is the layer
  if (segs.length === 0) return prefix.length > 0 ? prefix : undefined;
  const kept: string[] = [];
  for (let i = 0; i < segs.length; i++) {
    // "/mlp/mlp.0/Gemm": the child segment repeats its parent's qualified name
    if (i + 1 < segs.length && segs[i + 1].startsWith(segs[i] + '.')) continue;
    kept.push(segs[i]);
  }
  return prefix + kept.join('.');
}

/** Layer name from a parameter name: "mlp.0.weight" -> "mlp.0". */
export function layerFromTensorName(name: string): string | undefined {
  if (name.startsWith('onnx::') || name.startsWith('/')) return undefined;
  if (PARAM_SUFFIX.test(name)) return name.replace(PARAM_SUFFIX, '');
  return undefined;
}

function valueInfo(v: onnx.IValueInfoProto): GraphValueInfo {
  const out: GraphValueInfo = { name: v.name ?? '' };
  const tt = v.type?.tensorType;
  if (tt) {
    const d = dtypeFromOnnx(tt.elemType ?? 0);
    if (d) out.dtype = d;
    if (tt.shape) {
      out.shape = (tt.shape.dim ?? []).map((dim) => {
        if (dim.dimParam) return dim.dimParam;
        if (dim.dimValue !== undefined && dim.dimValue !== null) {
          const n = Number(dim.dimValue);
          return Number.isSafeInteger(n) && n >= 0 ? n : -1;
        }
        return -1;
      });
    }
  }
  return out;
}

function summariseTensorAttr(t: onnx.ITensorProto): Record<string, unknown> {
  const d = dtypeFromOnnx(t.dataType ?? 0);
  return { tensor: { dtype: d ?? onnxDtypeName(t.dataType ?? 0), shape: (t.dims ?? []).map((x) => Number(x)) } };
}

function attrValue(a: onnx.IAttributeProto): unknown {
  const T = onnx.AttributeProto.AttributeType;
  const num = (x: LongLike): number | string => {
    const n = typeof x === 'number' ? x : x.toNumber();
    return Number.isSafeInteger(n) ? n : x.toString();
  };
  switch (a.type) {
    case T.FLOAT:
      return a.f ?? 0;
    case T.INT:
      return num((a.i ?? 0) as LongLike);
    case T.STRING:
      return utf8.decode(a.s ?? new Uint8Array(0));
    case T.FLOATS:
      return (a.floats ?? []).slice();
    case T.INTS:
      return (a.ints ?? []).map((x) => num(x as LongLike));
    case T.STRINGS:
      return (a.strings ?? []).map((s) => utf8.decode(s));
    case T.TENSOR:
      return a.t ? summariseTensorAttr(a.t) : null;
    case T.TENSORS:
      return (a.tensors ?? []).map(summariseTensorAttr);
    case T.GRAPH:
      return { graph: a.g?.name ?? '', nodes: a.g?.node?.length ?? 0 };
    case T.GRAPHS:
      return (a.graphs ?? []).map((g) => ({ graph: g.name ?? '', nodes: g.node?.length ?? 0 }));
    case T.SPARSE_TENSOR:
      return { sparseTensor: { shape: (a.sparseTensor?.dims ?? []).map((x) => Number(x)) } };
    case T.TYPE_PROTO:
      return { typeProto: true };
    default:
      // untyped attributes from old exporters: infer from the populated field
      if (a.s && a.s.length) return utf8.decode(a.s);
      if (a.ints && a.ints.length) return a.ints.map((x) => num(x as LongLike));
      if (a.floats && a.floats.length) return a.floats.slice();
      if (a.i !== undefined && a.i !== null) return num(a.i as LongLike);
      return a.f ?? null;
  }
}

function buildMetadata(m: onnx.ModelProto): Record<string, string> {
  const md: Record<string, string> = {
    ir_version: String(m.irVersion ?? ''),
    producer_name: m.producerName ?? '',
    producer_version: m.producerVersion ?? '',
    domain: m.domain ?? '',
    model_version: String(m.modelVersion ?? ''),
    opset_import: (m.opsetImport ?? []).map((o) => `${o.domain || 'ai.onnx'}=${String(o.version ?? '')}`).join(','),
  };
  if (m.docString) md.doc_string = m.docString;
  if (m.graph?.name) md.graph_name = m.graph.name;
  for (const p of m.metadataProps ?? []) md[`metadata_props.${p.key ?? ''}`] = p.value ?? '';
  const called = localFunctionsCalled(m);
  if (called.length) md.local_functions = called.join(', ');
  return md;
}

/**
 * The model's local functions (torch.onnx.export(..., export_modules_as_functions=True)) that its
 * graph calls: nodes inside them are not in the IR's graph, so the weights they read are seen as
 * plain tensors and no method rewrites them.
 */
function localFunctionsCalled(m: onnx.ModelProto): string[] {
  const fns = m.functions ?? [];
  if (!fns.length) return [];
  const calls = new Set((m.graph?.node ?? []).map((n) => `${n.domain ?? ''}::${n.opType ?? ''}`));
  return fns.filter((f) => calls.has(`${f.domain ?? ''}::${f.name ?? ''}`)).map((f) => f.name ?? '');
}

// ---------------------------------------------------------------------------------------------

function abortCheck(signal: AbortSignal | undefined, file: string): void {
  if (signal?.aborted) throw new ModelFileError(file, 'reading was cancelled', { cause: signal.reason });
}

/** Decodes the bytes of an ONNX file (format checked first); errors name `file`. */
export function decodeOnnxBytes(file: string, bytes: Uint8Array): onnx.ModelProto {
  checkWireFormat(file, bytes);
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    // protobufjs decodes nested messages recursively: a file nesting subgraphs (or types)
    // thousands of levels deep overflows the stack before walkGraphs can apply its limit.
    if (e instanceof RangeError && /call stack/i.test(msg)) {
      throw new ModelFileError(
        file,
        `corrupt or hostile: messages nested too deeply to decode (subgraphs or types nested thousands of levels; at most ${MAX_SUBGRAPH_DEPTH} levels of subgraphs are accepted)`,
        { cause: e },
      );
    }
    if (/index out of range/i.test(msg)) {
      throw new ModelFileError(file, `truncated or corrupt: a field runs past its end (${msg})`, { cause: e });
    }
    throw new ModelFileError(file, `not an ONNX model: ${msg}`, { cause: e });
  }
}

export async function readOnnxModel(
  path: string,
  opts?: { signal?: AbortSignal; onProgress?: (f: number) => void },
): Promise<ModelIR> {
  const signal = opts?.signal;
  const progress = opts?.onProgress ?? (() => undefined);
  const file = path;
  abortCheck(signal, file);
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new ModelFileError(file, 'not a regular file');
    size = st.size;
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    throw new ModelFileError(file, `cannot open: ${ioReason(e)}`, { cause: e });
  }
  if (size >= MAX_ONNX_FILE_BYTES) {
    throw new ModelFileError(file, `not an ONNX model: ${size} bytes is over protobuf's 2 GB limit (large models keep weights in external data)`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path, { signal });
  } catch (e) {
    abortCheck(signal, file);
    throw new ModelFileError(file, `cannot read: ${ioReason(e)}`, { cause: e });
  }
  progress(0.3);
  const model = decodeOnnxBytes(file, bytes);
  abortCheck(signal, file);
  progress(0.5);

  const walk = walkGraphs(file, model);
  const dir = dirname(path);
  let realDir: string;
  try {
    realDir = await realpath(dir);
  } catch {
    realDir = dir;
  }
  const files: ModelFile[] = [{ path, bytes: size, kind: 'model' }];
  const ext: ExternalCtx = { file, dir, realDir, sizes: new Map(), files };
  const roleCtx: RoleCtx = { walk };

  const graph = buildGraph(model, walk);
  const stored = storedCodesOf(walk, graph);

  const tensors: ModelTensor[] = [];
  const tensorKeys = new Map<string, string>();
  const layerOf = new Map<string, LayerAcc>();
  const usedNames = new Set<string>();
  const total = walk.tensors.length || 1;
  for (let i = 0; i < walk.tensors.length; i++) {
    if (i % 256 === 0) abortCheck(signal, file);
    const f = walk.tensors[i];
    const d = f.sparse ? await decodeSparse(ext, f) : await decodeTensor(ext, f);
    let name = f.name || `${f.origin} #${i}`;
    if (usedNames.has(name)) {
      let k = 2;
      while (usedNames.has(`${name}#${k}`)) k++;
      name = `${name}#${k}`;
    }
    usedNames.add(name);
    const count = d.shape.reduce((a, b) => a * b, 1);
    const info = { dtype: d.dtype, rank: d.shape.length, count, name: f.name };
    const g = guessRole(roleCtx, f.name, info);
    const codes = stored.codes.get(f.name);
    const codesOwner = stored.paramOf.get(f.name);
    let role: TensorRole;
    if (codesOwner !== undefined) role = 'quant-param';
    else if (g) role = g.role;
    else if (!isFloatDtype(d.dtype)) role = 'constant';
    else role = d.shape.length >= 2 || (count > 1 && looksLikeParameterName(f.name)) ? 'weight' : 'constant';
    const consumers = [...new Set((walk.consumers.get(f.name) ?? []).map((c) => c.ref.node.opType ?? ''))];
    const trainable = role !== 'constant' && role !== 'quant-param';
    // a looked-up table stored as codes, and its scales, belong to the table's layer: the nodes
    // that read them (tagged pq0, pq1, ... by quantize) do not name it
    const tableOwner = codes?.lookup ? f.name : codesOwner !== undefined && stored.codes.get(codesOwner)?.lookup ? codesOwner : undefined;
    const layerName =
      (tableOwner !== undefined ? layerOfCodesTable(tableOwner) : undefined) ??
      layerFromTensorName(f.name) ??
      (g?.ref ? layerFromNodeName(g.ref.name) ?? g.ref.name : undefined) ??
      f.name;
    const tensor: ModelTensor = {
      name,
      shape: d.shape,
      dtype: d.dtype,
      storage: { dtype: d.dtype, byteLength: d.byteLength, source: d.source, location: f.location },
      role,
      layer: layerName,
      trainable,
      consumers,
      origin: f.origin,
    };
    if (role === 'dense-kernel') tensor.transposed = g?.transposed ?? false;
    else if (role === 'embedding' && g?.transposed) tensor.transposed = true;
    if (codes) tensor.codes = codes;
    tensors.push(tensor);
    tensorKeys.set(name, f.key);
    let L = layerOf.get(layerName);
    if (!L) layerOf.set(layerName, (L = { kind: g?.op ?? consumers[0] ?? 'Constant', bestRole: role, tensors: [], nodes: new Set() }));
    else if (g && ROLE_PRIORITY.indexOf(role) < ROLE_PRIORITY.indexOf(L.bestRole)) L.kind = g.op;
    if (ROLE_PRIORITY.indexOf(role) < ROLE_PRIORITY.indexOf(L.bestRole)) L.bestRole = role;
    L.tensors.push(name);
    if (g?.ref) L.nodes.add(g.ref);
    progress(0.5 + (0.45 * (i + 1)) / total);
  }

  joinCodesParams(tensors, layerOf);
  const layers = buildLayers(walk, layerOf);
  progress(1);
  return {
    format: 'onnx',
    path,
    files,
    tensors,
    layers,
    graph,
    metadata: buildMetadata(model),
    native: { kind: 'onnx', model, bytes, path, tensorKeys } satisfies OnnxNative,
  };
}


interface LayerAcc {
  kind: string;
  /** the highest-priority role among the layer's tensors: its op names the layer kind */
  bestRole: TensorRole;
  tensors: string[];
  nodes: Set<NodeRef>;
}

/**
 * The scales and zero points of a tensor stored as codes belong to its layer (another exporter's
 * DequantizeLinear nodes would otherwise name a layer of their own for each); a layer left
 * without tensors goes.
 */
function joinCodesParams(tensors: ModelTensor[], layerOf: Map<string, LayerAcc>): void {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  for (const t of tensors) {
    if (!t.codes) continue;
    for (const name of [t.codes.scale, t.codes.zeroPoint, t.codes.rowByte]) {
      const p = name !== undefined ? byName.get(name) : undefined;
      if (!p || p.layer === t.layer) continue;
      const from = layerOf.get(p.layer);
      const to = layerOf.get(t.layer);
      if (!to) continue;
      if (from) {
        from.tensors = from.tensors.filter((n) => n !== p.name);
        if (from.tensors.length === 0) {
          for (const r of from.nodes) to.nodes.add(r);
          layerOf.delete(p.layer);
        }
      }
      to.tensors.push(p.name);
      p.layer = t.layer;
    }
  }
}

/** A protobuf int64 (a number, or a Long where protobufjs decodes one) as a number. */
function longNumber(x: LongLike): number {
  return typeof x === 'number' ? x : Number(x.toString());
}

/** The codes tensors of the graph (model/onnx-codes.ts), and which codes tensor each scale / zero point serves. */
function storedCodesOf(walk: Walk, graph: ModelGraph): { codes: Map<string, StoredCodes>; paramOf: Map<string, string> } {
  const found = new Map<string, TensorFound>();
  for (const f of walk.tensors) if (!f.sparse && !found.has(f.name)) found.set(f.name, f);
  const codes = findStoredCodes({
    nodes: graph.nodes.filter((n) => n.scope === undefined),
    constant(name) {
      const f = found.get(name);
      const dtype = f ? dtypeFromOnnx(f.proto.dataType ?? 0) : undefined;
      return f && dtype ? { dtype, shape: (f.proto.dims ?? []).map((d) => longNumber(d as LongLike)) } : undefined;
    },
    intValues(name) {
      const t = found.get(name)?.proto;
      // int64, int32 and uint8 (the shift amounts and masks of packed tables)
      if (!t || (t.dataType !== 7 && t.dataType !== 6 && t.dataType !== 2)) return undefined;
      if (t.int64Data && t.int64Data.length > 0) return t.int64Data.map((v) => longNumber(v as LongLike));
      if (t.int32Data && t.int32Data.length > 0) return t.int32Data.map(Number);
      const raw = t.rawData;
      if (!raw || raw.byteLength > 64) return undefined;
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      const out: number[] = [];
      if (t.dataType === 7) for (let i = 0; i + 8 <= raw.byteLength; i += 8) out.push(Number(view.getBigInt64(i, true)));
      else if (t.dataType === 2) for (let i = 0; i < raw.byteLength; i++) out.push(view.getUint8(i));
      else for (let i = 0; i + 4 <= raw.byteLength; i += 4) out.push(view.getInt32(i, true));
      return out;
    },
  });
  const paramOf = new Map<string, string>();
  for (const [name, c] of codes) {
    paramOf.set(c.scale, name);
    if (c.zeroPoint !== undefined) paramOf.set(c.zeroPoint, name);
    if (c.rowByte !== undefined) paramOf.set(c.rowByte, name);
  }
  return { codes, paramOf };
}

/**
 * The layer of a looked-up table stored as codes, from the codes' name: quantize names them after
 * the float table ("item_gmf_embedding/embeddings_int4", "embed_item_GMF.weight_int8").
 */
function layerOfCodesTable(codesName: string): string | undefined {
  const table = codesName.replace(/_(int8|uint8|int4|int3|int2|quantized)(_\d+)?$/, '');
  if (table === codesName) return undefined;
  const fromName = layerFromTensorName(table);
  if (fromName !== undefined) return fromName;
  const slash = table.lastIndexOf('/');
  return slash > 0 ? table.slice(0, slash) : table;
}

function buildLayers(walk: Walk, layerOf: Map<string, LayerAcc>): ModelLayer[] {
  // Which layer each node belongs to (nodes that consume a layer's tensors).
  const nodeLayer = new Map<NodeRef, string>();
  for (const [name, L] of layerOf) for (const r of L.nodes) if (!nodeLayer.has(r)) nodeLayer.set(r, name);
  // Forward pass over the main graph (topologically ordered by the ONNX spec): each value
  // carries the nearest upstream layers; a layer node records them as inbound.
  const inbound = new Map<string, Set<string>>();
  const upstream = new Map<string, Set<string>>();
  const CAP = 32;
  // Subgraph nodes are included: their values have graph-unique names and they read outer values.
  for (const ref of walk.nodes) {
    const up = new Set<string>();
    for (const inp of ref.node.input ?? []) for (const l of upstream.get(inp) ?? []) if (up.size < CAP) up.add(l);
    const own = nodeLayer.get(ref);
    let outSet = up;
    if (own) {
      let s = inbound.get(own);
      if (!s) inbound.set(own, (s = new Set()));
      for (const l of up) if (l !== own) s.add(l);
      outSet = new Set([own]);
    }
    for (const o of ref.node.output ?? []) if (o) upstream.set(o, outSet);
  }
  return [...layerOf].map(([name, L]) => ({ name, kind: L.kind, tensors: L.tensors, inbound: [...(inbound.get(name) ?? [])] }));
}

function buildGraph(model: onnx.ModelProto, walk: Walk): ModelGraph {
  const g = model.graph as onnx.IGraphProto;
  const initNames = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
  for (const sp of g.sparseInitializer ?? []) initNames.add(sp.values?.name ?? '');
  const nodes: GraphNode[] = walk.nodes.map((ref) => {
    const attrs: Record<string, unknown> = {};
    for (const a of ref.node.attribute ?? []) attrs[a.name ?? ''] = attrValue(a);
    const n: GraphNode = {
      name: ref.name,
      op: ref.node.domain && ref.node.domain !== 'ai.onnx' ? `${ref.node.domain}:${ref.node.opType ?? ''}` : ref.node.opType ?? '',
      inputs: (ref.node.input ?? []).slice(),
      outputs: (ref.node.output ?? []).slice(),
      attrs,
    };
    if (ref.scope) n.scope = ref.scope;
    return n;
  });
  return {
    inputs: (g.input ?? []).filter((v) => !initNames.has(v.name ?? '')).map(valueInfo),
    outputs: (g.output ?? []).map(valueInfo),
    nodes,
  };
}
