// Writes an ONNX model read by onnx.ts back to disk, with some tensors replaced.
//
// Lossless by construction: onnx-proto knows the ONNX 1.10 schema only and protobufjs drops
// fields it does not know when decoding, so re-encoding the decoded ModelProto would silently
// lose newer fields (NodeProto/TensorProto metadata_props, ModelProto.configuration, ...).
// Instead the ORIGINAL FILE BYTES are the template:
//  - when every change keeps each tensor's byte size (and nothing lives in external data), the
//    file is copied and the raw_data bytes are patched in place;
//  - otherwise the file is re-spliced at the protobuf wire level: every field is copied verbatim
//    except the TensorProto messages being changed, in which only the data fields (dims,
//    data_type, *_data, raw_data, external_data, data_location) are rewritten; the enclosing
//    messages get new lengths. Unknown fields, field order and everything else survive.
// The original model and its data files are never written to.

import { open, realpath, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { FileHandle } from 'node:fs/promises';
import { DType, ModelFileError, ModelIR, ModelTensor } from './ir.js';
import { ONNX_ELEMENT_BYTES, onnxDtypeCode } from './onnx-dtypes.js';
import {
  ExternalDataOptions,
  PROTOBUF_LIMIT,
  checkExternalFileName,
  commitTempFiles,
  writeAll,
  writeTempFile,
} from './onnx-build.js';
import { OnnxNative, isOnnxNative } from './onnx.js';

export interface OnnxTensorReplacement {
  dtype: DType;
  shape: number[];
  /** little-endian stored bytes */
  data: Uint8Array;
}

export interface WriteOnnxOptions {
  replace?: Map<string, OnnxTensorReplacement>;
  /**
   * Where tensors go. Without it, tensors that were in external data stay external (in a new
   * file `<output name>.data` next to the output) and the others stay inline. With it, tensors
   * of at least minBytes (and all that were external) go to `fileName` next to the output.
   */
  externalData?: ExternalDataOptions;
}

// ---------------------------------------------------------------------------------------------
// Wire level

/** Wire-level helpers below are shared with onnx-edit.ts (structural edits); not a public API. */
export interface WireField {
  field: number;
  wire: number;
  /** the whole field: tag, (length), payload */
  start: number;
  end: number;
  /** payload of a length-delimited field */
  payloadStart: number;
}

export function readVarint(b: Uint8Array, pos: number, limit: number): { value: number; next: number } {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= limit) throw new Error(`varint runs past the end at byte ${pos}`);
    const byte = b[pos + i];
    value += (byte & 0x7f) * mul;
    mul *= 128;
    if ((byte & 0x80) === 0) return { value, next: pos + i + 1 };
  }
  throw new Error(`varint too long at byte ${pos}`);
}

export function parseFields(b: Uint8Array, start: number, end: number): WireField[] {
  const out: WireField[] = [];
  let pos = start;
  while (pos < end) {
    const tag = readVarint(b, pos, end);
    const field = Math.floor(tag.value / 8);
    const wire = tag.value & 7;
    let p = tag.next;
    let payloadStart = p;
    if (wire === 0) p = readVarint(b, p, end).next;
    else if (wire === 1) p += 8;
    else if (wire === 5) p += 4;
    else if (wire === 2) {
      const len = readVarint(b, p, end);
      payloadStart = len.next;
      p = len.next + len.value;
    } else throw new Error(`unsupported wire type ${wire} at byte ${pos}`);
    if (p > end) throw new Error(`field ${field} runs past its message at byte ${pos}`);
    out.push({ field, wire, start: pos, end: p, payloadStart });
    pos = p;
  }
  return out;
}

export function varintBytes(n: number): Uint8Array {
  const out: number[] = [];
  let v = n;
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Uint8Array.from(out);
}

export function int64VarintBytes(n: number): Uint8Array {
  if (n >= 0) return varintBytes(n);
  // negative int64: ten-byte two's complement varint
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  while (v >= 128n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

export function tagBytes(field: number, wire: number): Uint8Array {
  return varintBytes(field * 8 + wire);
}

/** Output pieces: byte views (of the original file or new small buffers) written in order. */
export type Piece = Uint8Array;

export class Out {
  readonly pieces: Piece[] = [];
  length = 0;
  push(p: Piece): void {
    if (p.length === 0) return;
    this.pieces.push(p);
    this.length += p.length;
  }
  pushAll(o: Out): void {
    for (const p of o.pieces) this.pieces.push(p);
    this.length += o.length;
  }
}

export function lengthDelimited(out: Out, field: number, body: Out): void {
  out.push(tagBytes(field, 2));
  out.push(varintBytes(body.length));
  out.pushAll(body);
}

export function stringField(out: Out, field: number, s: string): void {
  const b = new TextEncoder().encode(s);
  out.push(tagBytes(field, 2));
  out.push(varintBytes(b.length));
  out.push(b);
}

// TensorProto fields that carry the data (replaced as a whole when a tensor changes).
const TENSOR_DATA_FIELDS = new Set([1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 13, 14]);

/** Writes pieces in order, gathering the many small ones into 1 MiB writes. */
export async function writePieces(fh: FileHandle, pieces: Piece[]): Promise<void> {
  const BUF = 1 << 20;
  const buf = new Uint8Array(BUF);
  let used = 0;
  let pos = 0;
  const flush = async (): Promise<void> => {
    if (used === 0) return;
    await writeAll(fh, buf.subarray(0, used), pos);
    pos += used;
    used = 0;
  };
  for (const p of pieces) {
    if (p.length >= BUF / 4) {
      await flush();
      await writeAll(fh, p, pos);
      pos += p.length;
      continue;
    }
    if (used + p.length > BUF) await flush();
    buf.set(p, used);
    used += p.length;
  }
  await flush();
}

// ---------------------------------------------------------------------------------------------

export interface TensorPlan {
  tensor: ModelTensor;
  dtype: DType;
  shape: number[];
  byteLength: number;
  /** how to get the new bytes */
  bytes: () => AsyncIterable<Uint8Array>;
  external: boolean;
  /** converting a Constant value_float(s)/value_int(s) attribute into `value` */
}

export interface SpliceCtx {
  src: Uint8Array;
  plans: Map<string, TensorPlan>; // by structural key
  prefixes: Set<string>;
  dataFile?: { fh: FileHandle; fileName: string; offset: number; align: number };
}

export function keyPrefixes(keys: Iterable<string>): Set<string> {
  const s = new Set<string>();
  for (const k of keys) {
    const parts = k.split('/');
    for (let i = 1; i <= parts.length; i++) s.add(parts.slice(0, i).join('/'));
  }
  return s;
}

export async function* chunksOfBytes(b: Uint8Array): AsyncIterable<Uint8Array> {
  yield b;
}

export async function* chunksOfFile(path: string, offset: number, length: number): AsyncIterable<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const CHUNK = 16 * 1024 * 1024;
    const buf = new Uint8Array(Math.min(CHUNK, Math.max(1, length)));
    let done = 0;
    while (done < length) {
      const want = Math.min(buf.length, length - done);
      const { bytesRead } = await fh.read(buf, 0, want, offset + done);
      if (bytesRead === 0) throw new ModelFileError(path, `truncated: expected ${length} bytes at offset ${offset}`);
      yield buf.subarray(0, bytesRead);
      done += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

export async function newTensorData(ctx: SpliceCtx, plan: TensorPlan): Promise<Out> {
  const out = new Out();
  for (const d of plan.shape) {
    out.push(tagBytes(1, 0));
    out.push(int64VarintBytes(d));
  }
  out.push(tagBytes(2, 0));
  out.push(varintBytes(onnxDtypeCode(plan.dtype)));
  if (plan.external && ctx.dataFile) {
    const df = ctx.dataFile;
    const offset = Math.ceil(df.offset / df.align) * df.align;
    let pos = offset;
    for await (const chunk of plan.bytes()) {
      await writeAll(df.fh, chunk, pos);
      pos += chunk.length;
    }
    if (pos - offset !== plan.byteLength) throw new Error(`tensor ${plan.tensor.name}: wrote ${pos - offset} bytes, expected ${plan.byteLength}`);
    df.offset = pos;
    for (const [k, v] of [
      ['location', df.fileName],
      ['offset', String(offset)],
      ['length', String(plan.byteLength)],
    ]) {
      const e = new Out();
      stringField(e, 1, k);
      stringField(e, 2, v);
      lengthDelimited(out, 13, e);
    }
    out.push(tagBytes(14, 0));
    out.push(varintBytes(1));
  } else {
    const parts: Uint8Array[] = [];
    for await (const chunk of plan.bytes()) parts.push(chunk.slice());
    const total = parts.reduce((a, p) => a + p.length, 0);
    out.push(tagBytes(9, 2));
    out.push(varintBytes(total));
    for (const p of parts) out.push(p);
  }
  return out;
}

export async function spliceTensor(ctx: SpliceCtx, start: number, end: number, plan: TensorPlan): Promise<Out> {
  const out = new Out();
  const fields = parseFields(ctx.src, start, end);
  out.pushAll(await newTensorData(ctx, plan));
  for (const f of fields) if (!TENSOR_DATA_FIELDS.has(f.field)) out.push(ctx.src.subarray(f.start, f.end));
  return out;
}

export async function spliceAttribute(ctx: SpliceCtx, start: number, end: number, key: string): Promise<Out> {
  const out = new Out();
  const fields = parseFields(ctx.src, start, end);
  const tPlan = ctx.plans.get(`${key}/t`);
  if (tPlan && !fields.some((f) => f.field === 5)) {
    // Constant value_float(s)/value_int(s) replaced: it becomes a `value` tensor attribute.
    stringField(out, 1, 'value');
    out.push(tagBytes(20, 0));
    out.push(varintBytes(4));
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

async function spliceGraph(ctx: SpliceCtx, start: number, end: number, key: string): Promise<Out> {
  const out = new Out();
  let ii = 0;
  let ni = 0;
  let si = 0;
  for (const f of parseFields(ctx.src, start, end)) {
    if (f.field === 5 && f.wire === 2) {
      const plan = ctx.plans.get(`${key}/i${ii++}`);
      if (plan) lengthDelimited(out, 5, await spliceTensor(ctx, f.payloadStart, f.end, plan));
      else out.push(ctx.src.subarray(f.start, f.end));
    } else if (f.field === 1 && f.wire === 2) {
      const k = `${key}/n${ni++}`;
      if (ctx.prefixes.has(k)) lengthDelimited(out, 1, await spliceNode(ctx, f.payloadStart, f.end, k));
      else out.push(ctx.src.subarray(f.start, f.end));
    } else if (f.field === 15 && f.wire === 2) {
      const k = `${key}/s${si++}`;
      if (ctx.plans.has(k)) throw new Error(`sparse initializer ${ctx.plans.get(k)?.tensor.name} cannot be rewritten`);
      out.push(ctx.src.subarray(f.start, f.end));
    } else out.push(ctx.src.subarray(f.start, f.end));
  }
  return out;
}

async function spliceModel(ctx: SpliceCtx): Promise<Out> {
  const out = new Out();
  for (const f of parseFields(ctx.src, 0, ctx.src.length)) {
    if (f.field === 7 && f.wire === 2 && ctx.prefixes.has('g')) lengthDelimited(out, 7, await spliceGraph(ctx, f.payloadStart, f.end, 'g'));
    else out.push(ctx.src.subarray(f.start, f.end));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

export function isInitializerKey(key: string): boolean {
  return /\/i\d+$/.test(key);
}

function elementCount(shape: number[], what: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${what}: invalid dimension ${d}`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new Error(`${what}: shape too large`);
  return n;
}

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
 * Resolves the output path and its data file, refusing any path that is a file of the model
 * being read (also through symlinks).
 */
export async function outputPaths(
  ir: ModelIR,
  native: OnnxNative,
  outPath: string,
  ext: ExternalDataOptions | undefined,
): Promise<{ out: string; dataFileName: string; dataPath: string }> {
  const out = resolve(outPath);
  const originals = new Set<string>([resolve(native.path), ...ir.files.map((f) => resolve(f.path))]);
  const realOf = async (p: string): Promise<string> => realpath(p).catch(() => p);
  const realOriginals = new Set(await Promise.all([...originals].map(realOf)));
  const outDirReal = await realOf(dirname(out));
  const outReal = join(outDirReal, basename(out));
  if (originals.has(out) || realOriginals.has(outReal)) {
    throw new ModelFileError(outPath, 'refusing to overwrite a file of the model being read; choose another output path');
  }
  if (ext) checkExternalFileName(ext.fileName);
  const dataFileName = ext?.fileName ?? `${basename(out)}.data`;
  const dataPath = join(outDirReal, dataFileName);
  if (realOriginals.has(dataPath) || dataPath === outReal) {
    throw new ModelFileError(outPath, `refusing to write external data to ${dataPath}: it is a file of the model being read`);
  }
  return { out, dataFileName, dataPath };
}

/**
 * Writes `ir` (read by readOnnxModel) to `outPath`, replacing the tensors in `opts.replace`.
 * Atomic (temp files renamed at the end). Never writes to the original model or its data files.
 */
export async function writeOnnxModel(ir: ModelIR, outPath: string, opts?: WriteOnnxOptions): Promise<void> {
  const native = nativeOf(ir, outPath);
  const { out, dataFileName, dataPath } = await outputPaths(ir, native, outPath, opts?.externalData);
  const replace = opts?.replace ?? new Map<string, OnnxTensorReplacement>();
  const byName = new Map(ir.tensors.map((t) => [t.name, t]));
  for (const name of replace.keys()) {
    if (!byName.has(name)) throw new ModelFileError(outPath, `cannot replace tensor "${name}": no such tensor in ${ir.path}`);
  }
  const ext = opts?.externalData;
  const minBytes = ext?.minBytes ?? 1024;

  // Plan each tensor that must be rewritten.
  const plans = new Map<string, TensorPlan>();
  let anyExternal = false;
  let sameSizeOnly = true;
  for (const t of ir.tensors) {
    const key = native.tensorKeys.get(t.name);
    if (!key) continue;
    const r = replace.get(t.name);
    const src = t.storage.source;
    const wasExternal = src.kind === 'file';
    if (/\/s\d+$/.test(key) && (r || wasExternal)) {
      throw new ModelFileError(outPath, `tensor "${t.name}": rewriting sparse initializers is not supported`);
    }
    let plan: TensorPlan | undefined;
    if (r) {
      if (r.dtype === 'string') throw new ModelFileError(outPath, `tensor "${t.name}": string replacements are not supported`);
      const need = elementCount(r.shape, `tensor ${t.name}`) * ONNX_ELEMENT_BYTES[r.dtype];
      if (r.data.length !== need) {
        throw new ModelFileError(outPath, `tensor "${t.name}": replacement [${r.shape.join(', ')}] ${r.dtype} needs ${need} bytes, got ${r.data.length}`);
      }
      const data = r.data;
      plan = { tensor: t, dtype: r.dtype, shape: r.shape.slice(), byteLength: need, bytes: () => chunksOfBytes(data), external: false };
      const sameLayout =
        src.kind === 'bytes' && offsetInFile(native, src.bytes) >= 0 && src.bytes.length === need &&
        r.dtype === t.storage.dtype && r.shape.length === t.shape.length && r.shape.every((d, i) => d === t.shape[i]);
      if (!sameLayout) sameSizeOnly = false;
    } else if (wasExternal) {
      const s = src;
      plan = {
        tensor: t,
        dtype: t.storage.dtype,
        shape: t.shape.slice(),
        byteLength: s.length,
        bytes: () => chunksOfFile(s.path, s.offset, s.length),
        external: true,
      };
    } else if (ext && src.kind === 'bytes' && isInitializerKey(key) && t.storage.dtype !== 'string' && src.bytes.length >= minBytes) {
      // moving an inline initializer out (its bytes: a raw_data view, or typed fields the reader
      // already turned into bytes)
      const b = src.bytes;
      plan = { tensor: t, dtype: t.storage.dtype, shape: t.shape.slice(), byteLength: b.length, bytes: () => chunksOfBytes(b), external: true };
    }
    if (!plan) continue;
    if (wasExternal) anyExternal = true;
    // Only initializers go to external data (ORT reads external data for those everywhere).
    if (r) plan.external = isInitializerKey(key) && (wasExternal || (ext !== undefined && plan.byteLength >= minBytes));
    if (plan.external) sameSizeOnly = false;
    plans.set(key, plan);
  }

  // Fast path: a copy of the file with raw_data bytes patched in place.
  if (sameSizeOnly && !anyExternal && !ext) {
    const bytes = native.bytes;
    const patches: Array<{ off: number; data: Uint8Array }> = [];
    for (const p of plans.values()) {
      const src = p.tensor.storage.source;
      if (src.kind !== 'bytes') throw new Error('unreachable: patch plan without bytes');
      patches.push({ off: offsetInFile(native, src.bytes), data: replace.get(p.tensor.name)?.data as Uint8Array });
    }
    patches.sort((a, b) => a.off - b.off);
    const tmp = await writeTempFile(out, async (fh) => {
      let pos = 0;
      for (const p of patches) {
        await writeAll(fh, bytes.subarray(pos, p.off), pos);
        await writeAll(fh, p.data, p.off);
        pos = p.off + p.data.length;
      }
      await writeAll(fh, bytes.subarray(pos), pos);
    });
    await commitTempFiles([{ tmp, target: out }]);
    return;
  }

  // General path: wire-level splice of the original bytes.
  const pairs: Array<{ tmp: string; target: string }> = [];
  try {
    const ctx: SpliceCtx = { src: native.bytes, plans, prefixes: keyPrefixes(plans.keys()) };
    let model: Out | undefined;
    const needsData = [...plans.values()].some((p) => p.external);
    const build = async (): Promise<void> => {
      try {
        model = await spliceModel(ctx);
      } catch (e) {
        if (e instanceof ModelFileError) throw e;
        throw new ModelFileError(native.path, `cannot rewrite: ${(e as Error).message}`, { cause: e });
      }
    };
    if (needsData) {
      const tmpData = await writeTempFile(dataPath, async (fh) => {
        ctx.dataFile = { fh, fileName: dataFileName, offset: 0, align: ext?.align ?? 64 };
        await build();
      });
      pairs.push({ tmp: tmpData, target: dataPath });
    } else await build();
    const m = model as unknown as Out;
    if (m.length >= PROTOBUF_LIMIT) {
      throw new ModelFileError(outPath, `the model would be ${m.length} bytes, over protobuf's 2 GB limit: write with external data`);
    }
    const tmp = await writeTempFile(out, (fh) => writePieces(fh, m.pieces));
    pairs.push({ tmp, target: out });
    await commitTempFiles(pairs);
  } catch (e) {
    for (const p of pairs) await unlink(p.tmp).catch(() => undefined);
    throw e;
  }
}
