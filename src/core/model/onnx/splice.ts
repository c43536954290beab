// Rewriting an ONNX file from its own bytes at the protobuf wire level: every field is copied
// verbatim except the TensorProto messages being changed, in which only the data fields (dims,
// data_type, *_data, raw_data, external_data, data_location) are rewritten; enclosing messages
// get new lengths. onnx-proto knows the ONNX 1.10 schema only and would drop newer fields on
// re-encoding; this keeps unknown fields and field order. Tensor bytes stream into the output
// (inline raw_data at write time, or into the external data file while splicing).

import { realpath } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { writeAll, writeFilesAtomically } from '../atomic-write.js';
import { DType, ModelFileError, ModelIR, ModelTensor } from '../ir.js';
import { OnnxNative, isOnnxNative } from '../onnx.js';
import { TensorByteStream, TensorBytes, byteLengthOf, fileByteStream, pipeBytes, streamOf } from '../tensor-stream.js';
import { dtypeByteSize } from '../dtype.js';
import { tensorElementCount } from '../tensor-data.js';
import { onnxDtypeCode } from './dtypes.js';
import { Out, lengthDelimited, parseFields, stringField, tagBytes, varintBytes, varintField, writePieces } from './wire.js';

/** protobuf cannot encode a message of 2 GB or more. */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;

export interface ExternalDataOptions {
  /** file name (no folder) of the data file, written next to the model */
  fileName: string;
  /** tensors with at least this many bytes go to the data file; default 1024 */
  minBytes?: number;
  /** offsets in the data file are multiples of this; default 64 */
  align?: number;
}

/**
 * Where tensors go: undefined = tensors in external data stay external (in `<output>.data`),
 * the others inline; options = also inline initializers of at least minBytes go external;
 * false = everything inline (under protobuf's 2 GB limit).
 */
export type TensorLayout = ExternalDataOptions | false | undefined;

export function checkExternalFileName(fileName: string): void {
  if (!fileName || fileName !== basename(fileName) || fileName === '.' || fileName === '..') {
    throw new Error(`external data file name must be a plain file name, got "${fileName}"`);
  }
}

/** A tensor's new dtype, shape and bytes (little-endian, as stored in raw_data). */
export interface TensorSpec {
  dtype: DType;
  shape: number[];
  data: TensorBytes;
}

export interface TensorPlan {
  name: string;
  dtype: DType;
  shape: number[];
  data: TensorByteStream;
  external: boolean;
}

interface DataFile {
  fh: FileHandle;
  fileName: string;
  offset: number;
  align: number;
}

export interface SpliceCtx {
  src: Uint8Array;
  /** by structural key (onnx.ts tensorKeys: g/i<k>, g/n<k>/a<j>/t, ...) */
  plans: Map<string, TensorPlan>;
  prefixes: Set<string>;
  dataFile?: DataFile;
  /** Subgraphs whose node list is rewritten, by graph key (e.g. g/n3/a0/g); their keys must be in `prefixes`. */
  bodies?: Map<string, EditedBody>;
}

/** A subgraph after an edit. */
export interface EditedBody {
  /** its nodes in order: original nodes of that subgraph by index, inserted ones as encoded bytes */
  nodes: Array<{ idx: number } | { bytes: Uint8Array }>;
  /** value_info entries (by value name) left out */
  dropValueInfo: Set<string>;
}

// TensorProto fields that carry the data (replaced as a whole when a tensor changes).
const TENSOR_DATA_FIELDS = new Set([1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 13, 14]);

export function keyPrefixes(keys: Iterable<string>): Set<string> {
  const s = new Set<string>();
  for (const k of keys) {
    const parts = k.split('/');
    for (let i = 1; i <= parts.length; i++) s.add(parts.slice(0, i).join('/'));
  }
  return s;
}

export function isInitializerKey(key: string): boolean {
  return /\/i\d+$/.test(key);
}

export function isSparseKey(key: string): boolean {
  return /\/s\d+$/.test(key);
}

/** Checks a spec's byte length against its dtype and shape; returns the length. */
export function checkSpec(name: string, s: TensorSpec): number {
  if (s.dtype === 'string') throw new Error(`tensor "${name}": string tensors are not supported`);
  const need = tensorElementCount(s.shape) * dtypeByteSize(s.dtype);
  const have = byteLengthOf(s.data);
  if (have !== need) throw new Error(`tensor "${name}": [${s.shape.join(', ')}] ${s.dtype} needs ${need} bytes, got ${have}`);
  return need;
}

async function writeExternal(df: DataFile, plan: TensorPlan, out: Out): Promise<void> {
  const offset = Math.ceil(df.offset / df.align) * df.align;
  let pos = offset;
  await pipeBytes(plan.data, async (chunk) => {
    await writeAll(df.fh, chunk, pos);
    pos += chunk.length;
  }, `tensor ${plan.name}`);
  df.offset = pos;
  for (const [k, v] of [['location', df.fileName], ['offset', String(offset)], ['length', String(plan.data.byteLength)]]) {
    const e = new Out();
    stringField(e, 1, k);
    stringField(e, 2, v);
    lengthDelimited(out, 13, e);
  }
  varintField(out, 14, 1);
}

/** The data fields of a TensorProto for `plan`: dims, data_type and raw_data or external_data. */
export async function newTensorData(ctx: SpliceCtx, plan: TensorPlan): Promise<Out> {
  const out = new Out();
  for (const d of plan.shape) varintField(out, 1, d);
  varintField(out, 2, onnxDtypeCode(plan.dtype));
  if (plan.external && ctx.dataFile) await writeExternal(ctx.dataFile, plan, out);
  else {
    out.push(tagBytes(9, 2));
    out.push(varintBytes(plan.data.byteLength));
    out.pushLazy(plan.data, `tensor ${plan.name}`);
  }
  return out;
}

export async function spliceTensor(ctx: SpliceCtx, start: number, end: number, plan: TensorPlan): Promise<Out> {
  const out = new Out();
  out.pushAll(await newTensorData(ctx, plan));
  for (const f of parseFields(ctx.src, start, end)) if (!TENSOR_DATA_FIELDS.has(f.field)) out.push(ctx.src.subarray(f.start, f.end));
  return out;
}

export async function spliceAttribute(ctx: SpliceCtx, start: number, end: number, key: string): Promise<Out> {
  const out = new Out();
  const fields = parseFields(ctx.src, start, end);
  const tPlan = ctx.plans.get(`${key}/t`);
  if (tPlan && !fields.some((f) => f.field === 5)) {
    // Constant value_float(s)/value_int(s) replaced: it becomes a `value` tensor attribute.
    stringField(out, 1, 'value');
    varintField(out, 20, 4);
    lengthDelimited(out, 5, await newTensorData(ctx, tPlan));
    for (const f of fields) if (f.field === 13) out.push(ctx.src.subarray(f.start, f.end));
    return out;
  }
  let gi = 0;
  for (const f of fields) {
    if (f.field === 5 && f.wire === 2 && tPlan) {
      lengthDelimited(out, 5, await spliceTensor(ctx, f.payloadStart, f.end, tPlan));
    } else if (f.field === 6 && f.wire === 2 && ctx.prefixes.has(`${key}/g`)) {
      lengthDelimited(out, 6, await spliceGraph(ctx, f.payloadStart, f.end, `${key}/g`));
    } else if (f.field === 11 && f.wire === 2) {
      const k = `${key}/gs${gi++}`;
      if (ctx.prefixes.has(k)) lengthDelimited(out, 11, await spliceGraph(ctx, f.payloadStart, f.end, k));
      else out.push(ctx.src.subarray(f.start, f.end));
    } else out.push(ctx.src.subarray(f.start, f.end));
  }
  return out;
}

/** A node with its planned attribute tensors rewritten (other fields verbatim). */
export async function spliceNode(ctx: SpliceCtx, start: number, end: number, key: string): Promise<Out> {
  const out = new Out();
  let ai = 0;
  for (const f of parseFields(ctx.src, start, end)) {
    if (f.field === 5 && f.wire === 2) {
      const k = `${key}/a${ai++}`;
      if (ctx.prefixes.has(k)) lengthDelimited(out, 5, await spliceAttribute(ctx, f.payloadStart, f.end, k));
      else out.push(ctx.src.subarray(f.start, f.end));
    } else out.push(ctx.src.subarray(f.start, f.end));
  }
  return out;
}

/** The name (field 1) of the ValueInfoProto at src[start..end). */
function valueInfoName(src: Uint8Array, start: number, end: number): string {
  const f = parseFields(src, start, end).find((x) => x.field === 1 && x.wire === 2);
  return f ? new TextDecoder().decode(src.subarray(f.payloadStart, f.end)) : '';
}

async function spliceGraph(ctx: SpliceCtx, start: number, end: number, key: string): Promise<Out> {
  const out = new Out();
  let ii = 0;
  let ni = 0;
  let si = 0;
  const fields = parseFields(ctx.src, start, end);
  const edited = ctx.bodies?.get(key);
  const nodeFields = fields.filter((f) => f.field === 1 && f.wire === 2);
  const emitNode = async (idx: number): Promise<void> => {
    const f = nodeFields[idx];
    if (!f) throw new Error(`${key}: no node #${idx}`);
    const k = `${key}/n${idx}`;
    if (ctx.prefixes.has(k)) lengthDelimited(out, 1, await spliceNode(ctx, f.payloadStart, f.end, k));
    else out.push(ctx.src.subarray(f.start, f.end));
  };
  let nodesDone = false;
  const emitEdited = async (body: EditedBody): Promise<void> => {
    nodesDone = true;
    for (const e of body.nodes) {
      if ('idx' in e) await emitNode(e.idx);
      else {
        out.push(tagBytes(1, 2));
        out.push(varintBytes(e.bytes.length));
        out.push(e.bytes);
      }
    }
  };
  for (const f of fields) {
    if (f.field === 5 && f.wire === 2) {
      const plan = ctx.plans.get(`${key}/i${ii++}`);
      if (plan) lengthDelimited(out, 5, await spliceTensor(ctx, f.payloadStart, f.end, plan));
      else out.push(ctx.src.subarray(f.start, f.end));
    } else if (f.field === 1 && f.wire === 2) {
      if (edited) {
        if (!nodesDone) await emitEdited(edited);
      } else await emitNode(ni++);
    } else if (f.field === 13 && f.wire === 2 && edited?.dropValueInfo.size) {
      if (!edited.dropValueInfo.has(valueInfoName(ctx.src, f.payloadStart, f.end))) out.push(ctx.src.subarray(f.start, f.end));
    } else if (f.field === 15 && f.wire === 2) {
      const k = `${key}/s${si++}`;
      if (ctx.plans.has(k)) throw new Error(`sparse initializer ${ctx.plans.get(k)?.name} cannot be rewritten`);
      out.push(ctx.src.subarray(f.start, f.end));
    } else out.push(ctx.src.subarray(f.start, f.end));
  }
  return out;
}

/** The whole model with the planned tensors rewritten. */
export async function spliceModel(ctx: SpliceCtx): Promise<Out> {
  const out = new Out();
  for (const f of parseFields(ctx.src, 0, ctx.src.length)) {
    if (f.field === 7 && f.wire === 2 && ctx.prefixes.has('g')) lengthDelimited(out, 7, await spliceGraph(ctx, f.payloadStart, f.end, 'g'));
    else out.push(ctx.src.subarray(f.start, f.end));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Planning which tensors are rewritten, and where their bytes go

export function nativeOf(ir: ModelIR, outPath: string): OnnxNative {
  if (ir.format !== 'onnx' || !isOnnxNative(ir.native)) {
    throw new ModelFileError(outPath, `cannot write ${ir.path} as ONNX: it was not read from an ONNX file`);
  }
  return ir.native;
}

/** Offset of a raw_data view inside the original file bytes, or -1 when it is not a view of them. */
export function offsetInFile(native: OnnxNative, view: Uint8Array): number {
  if (view.buffer !== native.bytes.buffer) return -1;
  const off = view.byteOffset - native.bytes.byteOffset;
  return off >= 0 && off + view.length <= native.bytes.length ? off : -1;
}

/**
 * The plan for one existing tensor: its replacement (`spec`), or its current bytes when they must
 * move (external data stays external; `layout` may move inline initializers out, or everything in).
 * Undefined when the tensor is copied verbatim.
 */
export function planTensor(t: ModelTensor, key: string, spec: TensorSpec | undefined, layout: TensorLayout): TensorPlan | undefined {
  const src = t.storage.source;
  const wasExternal = src.kind === 'file';
  const initializer = isInitializerKey(key);
  const minBytes = layout ? layout.minBytes ?? 1024 : Infinity;
  if (isSparseKey(key) && (spec || wasExternal)) throw new Error(`tensor "${t.name}": rewriting sparse initializers is not supported`);
  if (spec) {
    const n = checkSpec(t.name, spec);
    const external = initializer && layout !== false && (wasExternal || n >= minBytes);
    return { name: t.name, dtype: spec.dtype, shape: spec.shape.slice(), data: streamOf(spec.data), external };
  }
  const keep = { name: t.name, dtype: t.storage.dtype, shape: t.shape.slice() };
  if (src.kind === 'file') return { ...keep, data: fileByteStream(src.path, src.offset, src.length), external: layout !== false };
  if (layout && src.kind === 'bytes' && initializer && t.storage.dtype !== 'string' && src.bytes.length >= minBytes) {
    return { ...keep, data: streamOf(src.bytes), external: true };
  }
  return undefined;
}

/** A plan for a tensor new to the model (an added initializer). */
export function planNewTensor(name: string, spec: TensorSpec, layout: TensorLayout): TensorPlan {
  const n = checkSpec(name, spec);
  return { name, dtype: spec.dtype, shape: spec.shape.slice(), data: streamOf(spec.data), external: layout ? n >= (layout.minBytes ?? 1024) : false };
}

export interface OutputPaths {
  out: string;
  dataFileName: string;
  dataPath: string;
}

/**
 * Resolves the output path and its data file, refusing any path that is a file of the model
 * being read (also through symlinks).
 */
export async function outputPaths(ir: ModelIR, native: OnnxNative, outPath: string, layout: TensorLayout): Promise<OutputPaths> {
  const out = resolve(outPath);
  const originals = new Set<string>([resolve(native.path), ...ir.files.map((f) => resolve(f.path))]);
  const realOf = async (p: string): Promise<string> => realpath(p).catch(() => p);
  const realOriginals = new Set(await Promise.all([...originals].map(realOf)));
  const outDirReal = await realOf(dirname(out));
  const outReal = join(outDirReal, basename(out));
  if (originals.has(out) || realOriginals.has(outReal)) {
    throw new ModelFileError(outPath, 'refusing to overwrite a file of the model being read; choose another output path');
  }
  if (layout) checkExternalFileName(layout.fileName);
  const dataFileName = layout ? layout.fileName : `${basename(out)}.data`;
  const dataPath = join(outDirReal, dataFileName);
  if (realOriginals.has(dataPath) || dataPath === outReal) {
    throw new ModelFileError(outPath, `refusing to write external data to ${dataPath}: it is a file of the model being read`);
  }
  return { out, dataFileName, dataPath };
}

/**
 * Splices the model (through `splice`, which reads ctx) and writes it, with its external data
 * file when a plan needs one, atomically: data file first, model last, both renamed at the end.
 */
export async function writeSplicedModel(
  native: OnnxNative,
  paths: OutputPaths,
  layout: TensorLayout,
  ctx: SpliceCtx,
  splice: () => Promise<Out>,
  added: TensorPlan[] = [],
): Promise<void> {
  const needsData = [...ctx.plans.values(), ...added].some((p) => p.external);
  await writeFilesAtomically(async (add) => {
    let model: Out | undefined;
    const build = async (): Promise<void> => {
      try {
        model = await splice();
      } catch (e) {
        if (e instanceof ModelFileError) throw e;
        throw new ModelFileError(native.path, `cannot rewrite: ${(e as Error).message}`, { cause: e });
      }
    };
    if (needsData) {
      await add(paths.dataPath, async (fh) => {
        ctx.dataFile = { fh, fileName: paths.dataFileName, offset: 0, align: (layout && layout.align) || 64 };
        await build();
      });
    } else await build();
    const m = model as Out;
    if (m.length >= PROTOBUF_LIMIT) {
      throw new ModelFileError(paths.out, `the model would be ${m.length} bytes, over protobuf's 2 GB limit: write with external data`);
    }
    // the model goes last: a reader never sees a model whose data file is not there yet
    await add(paths.out, (fh) => writePieces(fh, m.pieces));
  });
}
