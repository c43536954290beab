// Tensor values, wherever their bytes are. Format readers only say WHERE a tensor's bytes lie
// (ir.ts TensorSource); this file turns those bytes into values. Bytes in model files are
// little-endian and usually unaligned (ONNX raw_data is a view at an arbitrary offset of the file
// buffer), so nothing here builds a typed array over a foreign buffer: bytes are copied into
// aligned memory, one chunk at a time for tensors on disk.

import { FileHandle, open } from 'node:fs/promises';
import { dtypeByteSize } from './dtype.js';
import { DType, ioReason, ModelFileError, ModelTensor, TensorSource } from './ir.js';

export { dtypeByteSize } from './dtype.js';

/** Largest element count we accept for one tensor: beyond it a shape is a corrupt file, not a model. */
export const MAX_TENSOR_ELEMENTS = 2 ** 40;

/** Product of a shape's dims; throws on negative, fractional or overflowing dims. */
export function tensorElementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`invalid dimension ${d} in shape [${shape.join(', ')}]`);
    n *= d;
    if (n > MAX_TENSOR_ELEMENTS) throw new Error(`shape [${shape.join(', ')}] has more than 2^40 elements`);
  }
  return n;
}

// float16 <-> float32 through a lookup of the 65536 possible halves: one table, built once
// (256 KB), makes decoding a plain indexed load in the hot loops.
let halfTable: Float32Array | undefined;
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = decodeHalf(h);
  halfTable = t;
  return t;
}

function decodeHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function float16BitsToFloat32(bits: number): number {
  return halfToFloatTable()[bits & 0xffff];
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Round-to-nearest-even float32 -> IEEE half bits (what numpy's astype(float16) does). */
export function float32ToFloat16Bits(x: number): number {
  f32Scratch[0] = x;
  const f = u32Scratch[0];
  const sign = (f >>> 16) & 0x8000;
  const exp = (f >>> 23) & 0xff;
  let mant = f & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mant |= 0x800000; // implicit leading 1
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r++; // may carry into the exponent: correct
  return sign | r;
}

/** float32 -> bfloat16 bits: the top half of the float32 bits, rounded to nearest even (zeros stay zeros). */
export function float32ToBfloat16Bits(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * The one float encoder: little-endian stored bytes of float values for a tensor stored as
 * float32, float16, bfloat16 or float64. float32 is copied (the caller may reuse `values`).
 */
export function encodeFloats(dtype: DType, values: Float32Array, where: string): Uint8Array {
  switch (dtype) {
    case 'float32':
      return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    case 'float64':
      return new Uint8Array(Float64Array.from(values).buffer);
    case 'float16':
    case 'bfloat16': {
      const out = new Uint16Array(values.length);
      const enc = dtype === 'float16' ? float32ToFloat16Bits : float32ToBfloat16Bits;
      for (let i = 0; i < values.length; i++) out[i] = enc(values[i]);
      return new Uint8Array(out.buffer);
    }
    default:
      throw new ModelFileError(where, `cannot store float values as ${dtype}`);
  }
}

/** Bytes one element takes in storage (quantized storage counts, not the logical dtype). */
function storedElementSize(t: ModelTensor): number {
  return dtypeByteSize(t.storage.quantization?.dtype ?? t.storage.dtype);
}

function fileOf(t: ModelTensor): string {
  const src = t.storage.source;
  if (src.kind === 'file') return src.path;
  if (src.kind === 'file-parts' && src.parts.length) return src.parts[0].path;
  return t.storage.location;
}

/** The byte ranges on disk of a 'file' or 'file-parts' source, in order. */
function partsOf(src: TensorSource): Array<{ path: string; offset: number; length: number }> {
  if (src.kind === 'file') return [{ path: src.path, offset: src.offset, length: src.length }];
  if (src.kind === 'file-parts') return src.parts;
  return [];
}

/** The handle of `path` in `handles`, opened on first use (several reads may ask at once). */
function handleOf(path: string, handles: Map<string, Promise<FileHandle>>): Promise<FileHandle> {
  let h = handles.get(path);
  if (!h) {
    h = open(path, 'r').catch((e: unknown) => {
      // the file was there when the model was read: moved, deleted or locked since
      throw new ModelFileError(path, `cannot open weights: ${ioReason(e)}`, { cause: e });
    });
    h.catch(() => undefined); // awaited by the read that asked, and by closeAll
    handles.set(path, h);
  }
  return h;
}

/**
 * Reads bytes [from, from + out.length) of the concatenation of `parts` into `out`. File handles
 * are opened on demand and kept in `handles` (closed by the caller).
 */
async function readParts(
  parts: Array<{ path: string; offset: number; length: number }>,
  from: number,
  out: Uint8Array,
  handles: Map<string, Promise<FileHandle>>,
): Promise<void> {
  let partStart = 0;
  let done = 0;
  for (const part of parts) {
    if (done >= out.byteLength) break;
    const partEnd = partStart + part.length;
    const want = from + done;
    if (want < partEnd) {
      const within = want - partStart;
      const n = Math.min(part.length - within, out.byteLength - done);
      const fh = await handleOf(part.path, handles);
      let got = 0;
      while (got < n) {
        let bytesRead: number;
        try {
          ({ bytesRead } = await fh.read(out, done + got, n - got, part.offset + within + got));
        } catch (e) {
          throw new ModelFileError(part.path, `cannot read weights at offset ${part.offset + within + got}: ${ioReason(e)}`, { cause: e });
        }
        if (bytesRead === 0) {
          throw new ModelFileError(part.path, `truncated: expected ${part.length} bytes at offset ${part.offset}, the file ends after ${within + got}`);
        }
        got += bytesRead;
      }
      done += n;
    }
    partStart = partEnd;
  }
  if (done < out.byteLength) throw new Error(`internal: asked for bytes past the end of a tensor's parts`);
}

async function closeAll(handles: Map<string, Promise<FileHandle>>): Promise<void> {
  await Promise.all(
    [...handles.values()].map((h) =>
      h.then(
        (fh) => fh.close(),
        () => undefined, // never opened: nothing to close (the read that asked reported it)
      ),
    ),
  );
}

/**
 * Decodes `count` stored elements starting at byte 0 of `bytes` into `out` (from out[0]).
 * `bytes` must be an ALIGNED copy (byteOffset a multiple of 8) or is read through a DataView.
 */
function decodeInto(t: ModelTensor, bytes: Uint8Array, count: number, out: Float32Array): void {
  const q = t.storage.quantization;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (q) {
    if (q.dtype === 'float16') {
      const table = halfToFloatTable();
      for (let i = 0; i < count; i++) out[i] = table[dv.getUint16(i * 2, true)];
    } else {
      const scale = q.scale ?? 1;
      const min = q.min ?? 0;
      // TF.js rounds dequantized int32 weights (+0 turns Math.round's -0 into 0, as TF.js has it)
      const isInt = q.originalDtype === 'int32' || t.dtype === 'int32';
      if (q.dtype === 'uint8') {
        for (let i = 0; i < count; i++) {
          const v = bytes[i] * scale + min;
          out[i] = isInt ? Math.round(v) + 0 : v;
        }
      } else {
        for (let i = 0; i < count; i++) {
          const v = dv.getUint16(i * 2, true) * scale + min;
          out[i] = isInt ? Math.round(v) + 0 : v;
        }
      }
    }
    return;
  }
  switch (t.storage.dtype) {
    case 'float32':
      // a byte copy into the (aligned) output is a memcpy; hosts we run on are little-endian
      new Uint8Array(out.buffer, out.byteOffset, count * 4).set(bytes.subarray(0, count * 4));
      return;
    case 'float16': {
      const table = halfToFloatTable();
      for (let i = 0; i < count; i++) out[i] = table[dv.getUint16(i * 2, true)];
      return;
    }
    case 'bfloat16':
      for (let i = 0; i < count; i++) {
        u32Scratch[0] = dv.getUint16(i * 2, true) << 16;
        out[i] = f32Scratch[0];
      }
      return;
    case 'float64':
      for (let i = 0; i < count; i++) out[i] = dv.getFloat64(i * 8, true);
      return;
    case 'int8':
      for (let i = 0; i < count; i++) out[i] = dv.getInt8(i);
      return;
    case 'uint8':
    case 'bool':
      for (let i = 0; i < count; i++) out[i] = bytes[i];
      return;
    case 'int16':
      for (let i = 0; i < count; i++) out[i] = dv.getInt16(i * 2, true);
      return;
    case 'uint16':
      for (let i = 0; i < count; i++) out[i] = dv.getUint16(i * 2, true);
      return;
    case 'int32':
      for (let i = 0; i < count; i++) out[i] = dv.getInt32(i * 4, true);
      return;
    case 'uint32':
      for (let i = 0; i < count; i++) out[i] = dv.getUint32(i * 4, true);
      return;
    case 'int64':
      for (let i = 0; i < count; i++) out[i] = Number(dv.getBigInt64(i * 8, true));
      return;
    case 'uint64':
      for (let i = 0; i < count; i++) out[i] = Number(dv.getBigUint64(i * 8, true));
      return;
    case 'complex64':
      // magnitude of each complex value: what "how big is this weight" means for analysis
      for (let i = 0; i < count; i++) out[i] = Math.hypot(dv.getFloat32(i * 8, true), dv.getFloat32(i * 8 + 4, true));
      return;
    case 'string':
      throw new ModelFileError(fileOf(t), `tensor ${t.name} holds strings, which have no numeric values`);
  }
}

function checkStoredLength(t: ModelTensor, count: number, have: number): void {
  const need = count * storedElementSize(t);
  if (have !== need) {
    throw new ModelFileError(
      fileOf(t),
      `tensor ${t.name} [${t.shape.join(', ')}] ${t.storage.quantization?.dtype ?? t.storage.dtype} needs ${need} bytes, the file holds ${have}`,
    );
  }
}

/** The raw stored bytes of a tensor, as an aligned copy. */
export async function readTensorBytes(t: ModelTensor): Promise<Uint8Array> {
  const src = t.storage.source;
  if (src.kind === 'bytes') {
    const copy = new Uint8Array(src.bytes.byteLength);
    copy.set(src.bytes);
    return copy;
  }
  if (src.kind === 'file' || src.kind === 'file-parts') {
    const parts = partsOf(src);
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    const handles = new Map<string, Promise<FileHandle>>();
    try {
      await readParts(parts, 0, out, handles);
    } finally {
      await closeAll(handles);
    }
    return out;
  }
  const count = src.values.length;
  const size = storedElementSize(t);
  const out = new Uint8Array(count * size);
  const dv = new DataView(out.buffer);
  const vals = src.values;
  const dt = t.storage.quantization?.dtype ?? t.storage.dtype;
  for (let i = 0; i < count; i++) {
    const v = vals[i] as number | bigint | string;
    if (typeof v === 'string') throw new ModelFileError(fileOf(t), `tensor ${t.name} holds strings, which have no byte form here`);
    writeElement(dv, i * size, dt, v);
  }
  return out;
}

function writeElement(dv: DataView, off: number, dt: DType, v: number | bigint): void {
  const n = typeof v === 'bigint' ? Number(v) : v;
  switch (dt) {
    case 'float32': dv.setFloat32(off, n, true); return;
    case 'float64': dv.setFloat64(off, n, true); return;
    case 'float16': dv.setUint16(off, float32ToFloat16Bits(n), true); return;
    case 'bfloat16': dv.setUint16(off, float32ToBfloat16Bits(n), true); return;
    case 'int8': dv.setInt8(off, n); return;
    case 'uint8': case 'bool': dv.setUint8(off, n); return;
    case 'int16': dv.setInt16(off, n, true); return;
    case 'uint16': dv.setUint16(off, n, true); return;
    case 'int32': dv.setInt32(off, n, true); return;
    case 'uint32': dv.setUint32(off, n, true); return;
    case 'int64': dv.setBigInt64(off, typeof v === 'bigint' ? v : BigInt(n), true); return;
    case 'uint64': dv.setBigUint64(off, typeof v === 'bigint' ? v : BigInt(n), true); return;
    case 'complex64': dv.setFloat32(off, n, true); return;
    case 'string': throw new Error('strings have no fixed byte form');
  }
}

/** Every logical value of a tensor as float32 (dequantized), in a new aligned array. */
export async function readTensorFloat32(t: ModelTensor): Promise<Float32Array> {
  const count = tensorElementCount(t.shape);
  const out = new Float32Array(count);
  await forEachTensorChunk(t, count || 1, (chunk, first) => {
    out.set(chunk, first);
  });
  return out;
}

export interface ChunkOptions {
  /**
   * For tensors read from files: start reading the next chunk(s) before `cb` runs on this one,
   * so the reads (thread-pool jobs) run beside the caller's work. Costs a chunk buffer per read
   * in flight; the chunk arrays then rotate between the buffers.
   */
  readAhead?: boolean;
  /**
   * With readAhead: how many reads are in flight while `cb` runs (default 1). Two keep a disk
   * busier than one: a cold 512 MB file read in 4 MB pieces took 0.30 s with two, 0.35-0.47 s
   * with one (and the page-cache copies of both run on the thread pool).
   */
  inFlight?: number;
  /**
   * For tensors read from files: chunk arrays to use instead of allocating them (inFlight + 1
   * with readAhead, else 1; each at least `maxElements` long), e.g. views of a WebAssembly
   * kernel's memory, so the bytes land where the caller's kernel reads them without a copy.
   */
  buffers?: Float32Array[];
}

/**
 * Streams a tensor's dequantized values in chunks of at most `maxElements` (the last may be
 * shorter). The chunk array is reused between calls: copy what you keep. Memory stays bounded
 * by the chunk for tensors on disk; in-memory tensors are decoded chunk by chunk too.
 */
export async function forEachTensorChunk(
  t: ModelTensor,
  maxElements: number,
  cb: (chunk: Float32Array, firstElement: number) => void | Promise<void>,
  opts: ChunkOptions = {},
): Promise<void> {
  const count = tensorElementCount(t.shape);
  if (count === 0) return;
  const step = Math.max(1, Math.min(Math.floor(maxElements), count));
  const src = t.storage.source;
  const elemSize = storedElementSize(t);

  if (src.kind === 'values') {
    if (src.values.length !== count) {
      throw new ModelFileError(fileOf(t), `tensor ${t.name} [${t.shape.join(', ')}] has ${src.values.length} values, its shape needs ${count}`);
    }
    const buf = new Float32Array(step);
    const vals = src.values;
    for (let first = 0; first < count; first += step) {
      const n = Math.min(step, count - first);
      const view = n === step ? buf : buf.subarray(0, n);
      for (let i = 0; i < n; i++) {
        const v = vals[first + i] as number | bigint | string;
        if (typeof v === 'string') throw new ModelFileError(fileOf(t), `tensor ${t.name} holds strings, which have no numeric values`);
        view[i] = Number(v);
      }
      if (t.storage.quantization) dequantizeInPlace(t, view);
      await cb(view, first);
    }
    return;
  }

  if (src.kind === 'bytes') {
    checkStoredLength(t, count, src.bytes.byteLength);
    const buf = new Float32Array(step);
    for (let first = 0; first < count; first += step) {
      const n = Math.min(step, count - first);
      const view = n === step ? buf : buf.subarray(0, n);
      decodeInto(t, src.bytes.subarray(first * elemSize, (first + n) * elemSize), n, view);
      await cb(view, first);
    }
    return;
  }

  const parts = partsOf(src);
  checkStoredLength(t, count, parts.reduce((n, p) => n + p.length, 0));
  // float32 on a little-endian host: the file's bytes are the values, read straight into the chunk
  const direct = !t.storage.quantization && t.storage.dtype === 'float32';
  const depth = opts.readAhead && count > step ? Math.max(1, Math.floor(opts.inFlight ?? 1)) : 0;
  const slots = depth + 1;
  const bufs: Float32Array[] = [];
  const raws: Uint8Array[] = [];
  const given = opts.buffers;
  if (given && (given.length < slots || given.some((b) => b.length < step))) {
    throw new RangeError(`forEachTensorChunk: ${slots} chunk buffer(s) of ${step} elements needed`);
  }
  for (let k = 0; k < slots; k++) {
    const b = given ? given[k].subarray(0, step) : new Float32Array(step);
    bufs.push(b);
    raws.push(direct ? new Uint8Array(b.buffer, b.byteOffset, step * 4) : new Uint8Array(step * elemSize));
  }
  const handles = new Map<string, Promise<FileHandle>>();
  const chunks = Math.ceil(count / step);
  // chunk i lies in buffer i % slots; reads[that] is its read while in flight
  const reads: Array<Promise<void> | undefined> = new Array(slots).fill(undefined);
  const issue = (i: number): void => {
    if (i >= chunks) return;
    const first = i * step;
    const n = Math.min(step, count - first);
    const p = readParts(parts, first * elemSize, raws[i % slots].subarray(0, n * elemSize), handles);
    p.catch(() => undefined); // awaited in turn below, or in `finally`: never unhandled
    reads[i % slots] = p;
  };
  try {
    issue(0);
    for (let i = 1; i < depth; i++) issue(i);
    for (let i = 0; i < chunks; i++) {
      const slot = i % slots;
      const p = reads[slot];
      reads[slot] = undefined;
      await p;
      // the buffer of chunk i + depth was freed when `cb` returned on chunk i - 1
      if (depth > 0) issue(i + depth);
      const first = i * step;
      const n = Math.min(step, count - first);
      const buf = bufs[slot];
      const view = n === step ? buf : buf.subarray(0, n);
      if (!direct) decodeInto(t, raws[slot].subarray(0, n * elemSize), n, view);
      await cb(view, first);
      if (depth === 0) issue(i + 1);
    }
  } finally {
    await Promise.all(reads.map((p) => p?.catch(() => undefined)));
    await closeAll(handles);
  }
}

/** For 'values' sources of quantized storage (rare): apply the affine map in place. */
function dequantizeInPlace(t: ModelTensor, v: Float32Array): void {
  const q = t.storage.quantization;
  if (!q) return;
  if (q.dtype === 'float16') {
    const table = halfToFloatTable();
    for (let i = 0; i < v.length; i++) v[i] = table[v[i] & 0xffff];
    return;
  }
  const scale = q.scale ?? 1;
  const min = q.min ?? 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i] * scale + min;
    v[i] = q.originalDtype === 'int32' || t.dtype === 'int32' ? Math.round(x) + 0 : x;
  }
}
