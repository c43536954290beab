// Byte-level mutations for the fuzzer: plain ones (truncation, bit flips, byte runs, inserted
// noise) and protobuf-aware ones that find the length prefixes and varints of a wire-format
// message, change them, and fix the enclosing lengths so that the damage reaches the nested
// message instead of being caught by the first top-level check.

import { Rng } from './rng.js';

export interface Mutated {
  bytes: Uint8Array;
  desc: string;
}

const INTERESTING_BYTES = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe];

export function truncate(rng: Rng, b: Uint8Array): Mutated {
  const at = rng.bool(0.3) ? Math.max(0, b.length - 1 - rng.int(16)) : rng.int(b.length + 1);
  return { bytes: b.slice(0, at), desc: `truncate to ${at} of ${b.length}` };
}

export function bitFlips(rng: Rng, b: Uint8Array): Mutated {
  const out = b.slice();
  const n = 1 + rng.int(8);
  const at: number[] = [];
  for (let i = 0; i < n && out.length > 0; i++) {
    const p = rng.int(out.length);
    const bit = rng.int(8);
    out[p] ^= 1 << bit;
    at.push(p * 8 + bit);
  }
  return { bytes: out, desc: `flip bits ${at.join(',')}` };
}

export function byteRun(rng: Rng, b: Uint8Array): Mutated {
  const out = b.slice();
  if (out.length === 0) return { bytes: out, desc: 'byte run on empty' };
  const p = rng.int(out.length);
  const len = Math.min(out.length - p, 1 + rng.int(rng.bool(0.8) ? 16 : 512));
  const mode = rng.int(3);
  const v = rng.pick(INTERESTING_BYTES);
  for (let i = 0; i < len; i++) out[p + i] = mode === 0 ? v : mode === 1 ? rng.int(256) : out[(p + i + 1) % out.length];
  return { bytes: out, desc: `byte run @${p} len ${len} ${mode === 0 ? `=0x${v.toString(16)}` : mode === 1 ? 'random' : 'shifted'}` };
}

export function insertBytes(rng: Rng, b: Uint8Array): Mutated {
  const p = rng.int(b.length + 1);
  const len = 1 + rng.int(rng.bool(0.8) ? 8 : 256);
  const ins = new Uint8Array(len);
  const v = rng.pick(INTERESTING_BYTES);
  for (let i = 0; i < len; i++) ins[i] = rng.bool(0.5) ? v : rng.int(256);
  return { bytes: concat(b.subarray(0, p), ins, b.subarray(p)), desc: `insert ${len} bytes @${p}` };
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Protobuf wire format

export interface WireField {
  field: number;
  wire: number;
  tagPos: number;
  /** start of the value (the length varint for wire type 2) */
  valuePos: number;
  /** for wire 2: first byte of the payload */
  dataStart: number;
  /** end of the whole field */
  end: number;
  /** enclosing length-delimited fields, innermost last */
  ancestors: WireField[];
}

function readVarint(b: Uint8Array, pos: number, end: number): { value: number; next: number } | undefined {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= end) return undefined;
    const byte = b[pos + i];
    value += (byte & 0x7f) * mul;
    mul *= 128;
    if ((byte & 0x80) === 0) return { value, next: pos + i + 1 };
  }
  return undefined;
}

export function encodeVarint(value: bigint): Uint8Array {
  let v = BigInt.asUintN(64, value);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Uint8Array.from(out);
}

/** Parses b[start,end) as a message; undefined when it is not a clean sequence of fields. */
function parseMessage(b: Uint8Array, start: number, end: number, ancestors: WireField[], out: WireField[], depth: number): boolean {
  let pos = start;
  const mine: WireField[] = [];
  while (pos < end) {
    const tag = readVarint(b, pos, end);
    if (!tag) return false;
    const field = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    if (field === 0 || field > 536870911) return false;
    const f: WireField = { field, wire, tagPos: pos, valuePos: tag.next, dataStart: tag.next, end: 0, ancestors };
    if (wire === 0) {
      const v = readVarint(b, tag.next, end);
      if (!v) return false;
      f.end = v.next;
    } else if (wire === 1) f.end = tag.next + 8;
    else if (wire === 5) f.end = tag.next + 4;
    else if (wire === 2) {
      const len = readVarint(b, tag.next, end);
      if (!len) return false;
      f.dataStart = len.next;
      f.end = len.next + len.value;
    } else return false;
    if (f.end > end) return false;
    mine.push(f);
    pos = f.end;
  }
  for (const f of mine) {
    out.push(f);
    if (f.wire === 2 && depth < 12 && f.end > f.dataStart) {
      const sub: WireField[] = [];
      // a nested message if it parses cleanly; strings and raw bytes usually do not
      if (parseMessage(b, f.dataStart, f.end, [...ancestors, f], sub, depth + 1)) out.push(...sub);
    }
  }
  return true;
}

export function wireFields(b: Uint8Array): WireField[] {
  const out: WireField[] = [];
  parseMessage(b, 0, b.length, [], out, 0);
  return out;
}

/**
 * Replaces b[from,to) with `ins` inside field `f`'s ancestors and rewrites every ancestor's
 * length prefix (innermost first) so the message stays well-formed around the change.
 */
function spliceFixingLengths(b: Uint8Array, ancestors: WireField[], from: number, to: number, ins: Uint8Array): Uint8Array {
  let out = concat(b.subarray(0, from), ins, b.subarray(to));
  let delta = ins.length - (to - from);
  for (let i = ancestors.length - 1; i >= 0 && delta !== 0; i--) {
    const a = ancestors[i];
    const oldLen = a.end - a.dataStart;
    const lenBytes = encodeVarint(BigInt(oldLen + delta));
    const oldLenBytes = a.dataStart - a.valuePos;
    out = concat(out.subarray(0, a.valuePos), lenBytes, out.subarray(a.valuePos + oldLenBytes));
    delta += lenBytes.length - oldLenBytes;
  }
  return out;
}

const HUGE_VARINTS: bigint[] = [
  0n,
  1n,
  127n,
  128n,
  2n ** 31n - 1n,
  2n ** 31n,
  2n ** 32n,
  2n ** 32n + 1n,
  2n ** 40n,
  2n ** 53n + 1n,
  2n ** 63n - 1n,
  2n ** 64n - 1n, // -1 as int64
  2n ** 64n - 2n ** 31n, // -2^31 as int64
];

/** A protobuf-aware edit of one field, picked at random. */
export function protoMutation(rng: Rng, b: Uint8Array): Mutated | undefined {
  const fields = wireFields(b);
  if (fields.length === 0) return undefined;
  const kind = rng.int(6);
  if (kind === 0) {
    // length prefix edit, enclosing lengths fixed
    const lds = fields.filter((f) => f.wire === 2);
    if (lds.length === 0) return undefined;
    const f = rng.pick(lds);
    const old = f.end - f.dataStart;
    const choices = [old + 1, old - 1, old + 8, Math.max(0, old - 8), 0, old * 2, 2 ** 31, 2 ** 32 + old, 2 ** 62];
    const v = Math.max(0, rng.pick(choices));
    const out = spliceFixingLengths(b, f.ancestors, f.valuePos, f.dataStart, encodeVarint(BigInt(v)));
    return { bytes: out, desc: `length of field ${f.field} @${f.tagPos} ${old} -> ${v}` };
  }
  if (kind === 1) {
    const f = rng.pick(fields);
    const out = spliceFixingLengths(b, f.ancestors, f.tagPos, f.end, new Uint8Array(0));
    return { bytes: out, desc: `remove field ${f.field} @${f.tagPos}` };
  }
  if (kind === 2) {
    const f = rng.pick(fields);
    const copy = b.slice(f.tagPos, f.end);
    const n = rng.bool(0.9) ? 1 : 1 + rng.int(64);
    const ins = concat(...Array.from({ length: n + 1 }, () => copy));
    const out = spliceFixingLengths(b, f.ancestors, f.tagPos, f.end, ins);
    return { bytes: out, desc: `duplicate field ${f.field} @${f.tagPos} x${n}` };
  }
  if (kind === 3) {
    const vs = fields.filter((f) => f.wire === 0);
    if (vs.length === 0) return undefined;
    const f = rng.pick(vs);
    const v = rng.bool(0.2) ? BigInt(rng.int(64)) : rng.pick(HUGE_VARINTS);
    const out = spliceFixingLengths(b, f.ancestors, f.valuePos, f.end, encodeVarint(v));
    return { bytes: out, desc: `varint field ${f.field} @${f.tagPos} -> ${v}` };
  }
  if (kind === 4) {
    // packed repeated varints (dims, ints) live in length-delimited payloads: overwrite one
    const lds = fields.filter((f) => f.wire === 2 && f.end - f.dataStart > 0 && f.end - f.dataStart <= 64);
    if (lds.length === 0) return undefined;
    const f = rng.pick(lds);
    const v = rng.pick(HUGE_VARINTS);
    const ins = encodeVarint(v);
    const inner = concat(ins, b.subarray(f.dataStart, f.end));
    const lenBytes = encodeVarint(BigInt(inner.length));
    const out = spliceFixingLengths(b, f.ancestors, f.valuePos, f.end, concat(lenBytes, inner));
    return { bytes: out, desc: `prepend varint ${v} to payload of field ${f.field} @${f.tagPos}` };
  }
  // change the field number or wire type of a tag
  const f = rng.pick(fields);
  const newTag = rng.bool(0.5) ? BigInt(f.field * 8 + rng.pick([0, 1, 2, 5, 3, 7])) : BigInt((1 + rng.int(30)) * 8 + f.wire);
  const out = spliceFixingLengths(b, f.ancestors, f.tagPos, f.valuePos, encodeVarint(newTag));
  return { bytes: out, desc: `tag of field ${f.field} @${f.tagPos} -> ${newTag}` };
}

/** One plain byte mutation. */
export function plainMutation(rng: Rng, b: Uint8Array): Mutated {
  switch (rng.int(4)) {
    case 0:
      return truncate(rng, b);
    case 1:
      return bitFlips(rng, b);
    case 2:
      return byteRun(rng, b);
    default:
      return insertBytes(rng, b);
  }
}
