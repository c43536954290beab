// The layout of packed low-bit rows (int4, int3, int2 embedding tables): how codes sit in bytes,
// and how a row's zero point and scale level sit in its byte (byte scales).
// Shared by the writer (compress/quantize-onnx.ts packs them), the reader (model/onnx-codes.ts
// recognises them, analysis unpacks them) and quantization-aware training.

function checkShape(values: ArrayLike<number>, rows: number, cols: number): void {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0 || rows * cols !== values.length) {
    throw new Error(`packed codes: ${values.length} values are not a [${rows}, ${cols}] matrix`);
  }
}

/** Bit widths of packed per-row tables. */
export type LowBits = 4 | 3 | 2;

/** Bit widths of one packed plane: a plane packs 8 / bits codes per byte. */
export type PlaneBits = 4 | 2 | 1;

/**
 * The planes a row of `bits`-bit codes is stored in, one after the other: 4 and 2 bits in one
 * plane; 3 bits as a 2-bit plane of each code's low bits and a 1-bit plane of its high bit (3
 * bits per code on disk, like a plain 3-bit packing, but every plane unpacks with the same byte
 * shifts as the 4- and 2-bit tables: no code straddles a byte).
 */
export function codePlanes(bits: LowBits): Array<{ bits: PlaneBits; shift: number }> {
  if (bits === 4 || bits === 2) return [{ bits, shift: 0 }];
  if (bits === 3) return [{ bits: 2, shift: 0 }, { bits: 1, shift: 2 }];
  throw new Error(`packed codes: bits must be 4, 3 or 2, got ${String(bits)}`);
}

/** Stored bytes of one row of a plane: padded to whole bytes (padding codes are 0). */
export function planeRowBytes(cols: number, bits: PlaneBits): number {
  return Math.ceil((cols * bits) / 8);
}

/** Stored bytes of one packed row (all its planes). */
export function packedRowBytes(cols: number, bits: LowBits): number {
  return codePlanes(bits).reduce((n, p) => n + planeRowBytes(cols, p.bits), 0);
}

/**
 * Packs codes [rows, cols] (each in 0..2^bits-1) row by row, plane by plane (codePlanes), each
 * plane planar: byte j of a plane holds the plane's bits of columns j, j+w, j+2w, ... (w = the
 * plane's bytes per row) at bit offsets 0, b, 2b, ... A graph unpacks a plane with one
 * shift+mask per part and a Concat of the parts (no interleave).
 * Into `out` (rows * packedRowBytes long) when given.
 */
export function packRowCodes(codes: ArrayLike<number>, rows: number, cols: number, bits: LowBits, out?: Uint8Array): Uint8Array {
  checkShape(codes, rows, cols);
  const W = packedRowBytes(cols, bits);
  const mask = (1 << bits) - 1;
  // `out` (a streamed chunk's reused buffer) is cleared: the codes are OR-ed in
  if (out && out.length !== rows * W) throw new Error(`packed codes: ${out.length} bytes cannot hold ${rows} packed rows of ${cols} ${bits}-bit codes`);
  const packed = out ? out.fill(0) : new Uint8Array(rows * W);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const k = codes[r * cols + c];
      if (!(Number.isInteger(k) && k >= 0 && k <= mask)) throw new Error(`packed codes: code [${r}, ${c}] = ${k} does not fit ${bits} bits`);
    }
  }
  let at = 0;
  for (const plane of codePlanes(bits)) {
    const w = planeRowBytes(cols, plane.bits);
    const pm = (1 << plane.bits) - 1;
    for (let r = 0; r < rows; r++) {
      const row = r * W + at;
      for (let c = 0; c < cols; c++) packed[row + (c % w)] |= ((codes[r * cols + c] >> plane.shift) & pm) << (plane.bits * Math.floor(c / w));
    }
    at += w;
  }
  return packed;
}

/** The inverse of packRowCodes: codes [rows, cols] (padding dropped). */
export function unpackRowCodes(packed: Uint8Array, rows: number, cols: number, bits: LowBits): Uint8Array {
  const W = packedRowBytes(cols, bits);
  if (packed.length !== rows * W) throw new Error(`packed codes: ${packed.length} bytes are not ${rows} packed rows of ${cols} ${bits}-bit codes`);
  const out = new Uint8Array(rows * cols);
  let at = 0;
  for (const plane of codePlanes(bits)) {
    const w = planeRowBytes(cols, plane.bits);
    const pm = (1 << plane.bits) - 1;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) out[r * cols + c] |= ((packed[r * W + at + (c % w)] >> (plane.bits * Math.floor(c / w))) & pm) << plane.shift;
    }
    at += w;
  }
  return out;
}

// Byte scales (compress/scale-levels.ts): one byte per row holds the row's zero point in its low
// `bits` bits and the index of its scale among the table's levels in the rest.

/** How many scale levels a table of `bits`-bit codes shares: the byte's bits left beside the zero point. */
export function scaleLevelCount(bits: LowBits): number {
  return 1 << (8 - bits);
}

/** The stored byte of each row: (level index << bits) | zero point. */
export function packRowBytes(index: Uint8Array, zeroPoints: Uint8Array, bits: LowBits): Uint8Array {
  if (index.length !== zeroPoints.length) throw new Error(`scale levels: ${index.length} level indices for ${zeroPoints.length} zero points`);
  const out = new Uint8Array(index.length);
  const L = scaleLevelCount(bits);
  for (let r = 0; r < out.length; r++) {
    if (index[r] >= L || zeroPoints[r] >> bits) throw new Error(`scale levels: row ${r}'s level ${index[r]} or zero point ${zeroPoints[r]} does not fit one byte at ${bits} bits`);
    out[r] = (index[r] << bits) | zeroPoints[r];
  }
  return out;
}

/** The per-row scales and zero points that stored bytes and levels stand for. */
export function unpackRowBytes(bytes: ArrayLike<number>, levels: ArrayLike<number>, bits: LowBits): { scales: Float32Array; zeroPoints: Uint8Array } {
  const scales = new Float32Array(bytes.length);
  const zeroPoints = new Uint8Array(bytes.length);
  const mask = (1 << bits) - 1;
  for (let r = 0; r < bytes.length; r++) {
    const i = bytes[r] >> bits;
    if (i >= levels.length) throw new Error(`scale levels: row ${r} names level ${i} of ${levels.length}`);
    scales[r] = levels[i];
    zeroPoints[r] = bytes[r] & mask;
  }
  return { scales, zeroPoints };
}
