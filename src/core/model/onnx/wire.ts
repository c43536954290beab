// Protobuf wire primitives for writing ONNX files from the original file's bytes: field
// parsing, varints, and an output made of pieces (views of the source, small new buffers, or
// tensor bytes produced only when the file is written).

import type { FileHandle } from 'node:fs/promises';
import { writeAll } from '../atomic-write.js';
import { TensorByteStream, pipeBytes } from '../tensor-stream.js';

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

/** Bytes known by length only, produced when the file is written. */
export interface LazyPiece {
  lazy: TensorByteStream;
  length: number;
  what: string;
}

/** Output pieces: byte views (of the original file or new small buffers) or lazy tensor bytes, in order. */
export type Piece = Uint8Array | LazyPiece;

export class Out {
  readonly pieces: Piece[] = [];
  length = 0;
  push(p: Piece): void {
    if (p.length === 0) return;
    this.pieces.push(p);
    this.length += p.length;
  }
  pushLazy(lazy: TensorByteStream, what: string): void {
    this.push({ lazy, length: lazy.byteLength, what });
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

export function varintField(out: Out, field: number, n: number): void {
  out.push(tagBytes(field, 0));
  out.push(int64VarintBytes(n));
}

/** A length-delimited field whose payload is `body` bytes as they are. */
export function bytesField(out: Out, field: number, body: Uint8Array): void {
  out.push(tagBytes(field, 2));
  out.push(varintBytes(body.length));
  out.push(body);
}

const WRITE_BUF = 1 << 20;

/** Writes pieces in order from byte 0, gathering small ones into 1 MiB writes; lazy pieces are produced here. */
export async function writePieces(fh: FileHandle, pieces: Piece[]): Promise<void> {
  const buf = new Uint8Array(WRITE_BUF);
  let used = 0;
  let pos = 0;
  const flush = async (): Promise<void> => {
    if (used === 0) return;
    await writeAll(fh, buf.subarray(0, used), pos);
    pos += used;
    used = 0;
  };
  const put = async (p: Uint8Array): Promise<void> => {
    if (p.length >= WRITE_BUF / 4) {
      await flush();
      await writeAll(fh, p, pos);
      pos += p.length;
      return;
    }
    if (used + p.length > WRITE_BUF) await flush();
    buf.set(p, used);
    used += p.length;
  };
  for (const p of pieces) {
    if (p instanceof Uint8Array) await put(p);
    else await pipeBytes(p.lazy, put, p.what);
  }
  await flush();
}
