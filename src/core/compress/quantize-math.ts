// The arithmetic of quantization, on plain arrays (no model, no file): symmetric int8 with a
// scale per row (embedding tables) or per output column (dense kernels), TF.js-style affine
// uint8/uint16 per tensor, and float16. Every function returns the exact values the runtime will
// reconstruct, so the callers can report the weight error without a second pass.

import { float16BitsToFloat32, float32ToFloat16Bits } from '../model/tensor-data.js';

/** Smallest positive normal float16: scales below it lose precision as subnormals. */
export const FLOAT16_MIN_NORMAL = 2 ** -14;
export const FLOAT16_MAX = 65504;

export interface RowQuantized {
  /** [rows, cols] row-major, symmetric: value ≈ q * scale[row] */
  q: Int8Array;
  /** the scale of each row as the runtime sees it (after float16 rounding when `scaleBits` is set) */
  scales: Float32Array;
  /** float16 bits of the scales, when every scale fits float16's normal range (or is 0) */
  scaleBits?: Uint16Array;
  /** max |value - q*scale| over the table */
  maxAbsError: number;
}

function checkShape(values: ArrayLike<number>, rows: number, cols: number): void {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0 || rows * cols !== values.length) {
    throw new Error(`quantize: ${values.length} values are not a [${rows}, ${cols}] matrix`);
  }
}

function checkQmax(qmax: number): void {
  if (!Number.isInteger(qmax) || qmax < 1 || qmax > 127) throw new Error(`quantize: qmax must be an integer in 1..127, got ${qmax}`);
}

function roundClamp(x: number, qmax: number): number {
  // Math.round rounds .5 up; ties are measure-zero for real weights, and both runtimes only
  // ever read the stored integer, so the tie rule does not need to match numpy's.
  const r = Math.round(x);
  return r > qmax ? qmax : r < -qmax ? -qmax : r;
}

/**
 * Symmetric per-row int8: scale[r] = max|row r| / qmax, q = round(value / scale). A zero row
 * gets scale 0 and q 0 (exact). With `float16Scales`, scales are rounded to float16 first and
 * the integers computed from the rounded scale (so q*scale is what the model will compute);
 * if any non-zero scale falls outside float16's normal range, float32 scales are used instead.
 */
export function quantizeRowsInt8(values: ArrayLike<number>, rows: number, cols: number, qmax = 127, float16Scales = false): RowQuantized {
  checkShape(values, rows, cols);
  checkQmax(qmax);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      const a = Math.abs(values[base + c]);
      if (a > m) m = a;
      else if (Number.isNaN(a)) throw new Error(`quantize: row ${r} holds NaN`);
    }
    if (!Number.isFinite(m)) throw new Error(`quantize: row ${r} holds an infinite value`);
    scales[r] = m / qmax;
  }
  let scaleBits: Uint16Array | undefined;
  if (float16Scales && scales.every((s) => s === 0 || (s >= FLOAT16_MIN_NORMAL && s <= FLOAT16_MAX))) {
    scaleBits = new Uint16Array(rows);
    for (let r = 0; r < rows; r++) {
      scaleBits[r] = float32ToFloat16Bits(scales[r]);
      scales[r] = float16BitsToFloat32(scaleBits[r]);
    }
  }
  const q = new Int8Array(rows * cols);
  let maxAbsError = 0;
  for (let r = 0; r < rows; r++) {
    const s = scales[r];
    if (s === 0) continue;
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      const v = values[base + c];
      const k = roundClamp(v / s, qmax);
      q[base + c] = k;
      const err = Math.abs(v - Math.fround(k * s));
      if (err > maxAbsError) maxAbsError = err;
    }
  }
  return { q, scales, ...(scaleBits ? { scaleBits } : {}), maxAbsError };
}

export interface ColumnQuantized {
  /** [in, out] row-major (the layout MatMulInteger's B takes), whatever the source layout */
  q: Int8Array;
  /** one scale per output channel */
  scales: Float32Array;
  inDim: number;
  outDim: number;
  maxAbsError: number;
}

/**
 * Symmetric per-output-channel int8 of a dense kernel. `transposed` = stored [out, in] (Gemm
 * transB=1, PyTorch Linear), else [in, out] (MatMul, Keras Dense). The result is always laid
 * out [in, out]. qmax 63 gives 7-bit weights (reduce_range), which avoid the int16 overflow of
 * u8*s8 pair sums in AVX2 kernels without VNNI.
 */
export function quantizeColumnsInt8(values: ArrayLike<number>, rows: number, cols: number, transposed: boolean, qmax = 127): ColumnQuantized {
  checkShape(values, rows, cols);
  checkQmax(qmax);
  const inDim = transposed ? cols : rows;
  const outDim = transposed ? rows : cols;
  const at = (i: number, o: number): number => (transposed ? values[o * cols + i] : values[i * cols + o]);
  const scales = new Float32Array(outDim);
  const absmax = new Float64Array(outDim);
  for (let i = 0; i < inDim; i++) {
    for (let o = 0; o < outDim; o++) {
      const v = at(i, o);
      if (!Number.isFinite(v)) throw new Error(`quantize: kernel value [${i}, ${o}] is ${v}`);
      const a = Math.abs(v);
      if (a > absmax[o]) absmax[o] = a;
    }
  }
  for (let o = 0; o < outDim; o++) scales[o] = absmax[o] / qmax;
  const q = new Int8Array(inDim * outDim);
  let maxAbsError = 0;
  for (let i = 0; i < inDim; i++) {
    for (let o = 0; o < outDim; o++) {
      const s = scales[o];
      if (s === 0) continue;
      const v = at(i, o);
      const k = roundClamp(v / s, qmax);
      q[i * outDim + o] = k;
      const err = Math.abs(v - Math.fround(k * s));
      if (err > maxAbsError) maxAbsError = err;
    }
  }
  return { q, scales, inDim, outDim, maxAbsError };
}

export interface AffineQuantized {
  q: Uint8Array | Uint16Array;
  /** value = q * scale + min, what TF.js computes at load */
  scale: number;
  min: number;
  maxAbsError: number;
}

/**
 * TF.js-style affine quantization of a whole tensor to `bits` (8 or 16), as the tensorflowjs
 * converter does it: the range [min, max] is widened to contain 0 and nudged so that 0 maps to
 * an integer, so zeros (pruned weights, padding rows) stay exactly zero after loading.
 */
export function quantizeAffine(values: ArrayLike<number>, bits: 8 | 16): AffineQuantized {
  const levels = bits === 8 ? 255 : 65535;
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) throw new Error(`quantize: value #${i} is ${v}`);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const q = bits === 8 ? new Uint8Array(values.length) : new Uint16Array(values.length);
  if (hi === lo) return { q, scale: 1, min: 0, maxAbsError: 0 }; // all zeros
  const scale = (hi - lo) / levels;
  const zero = Math.round(-lo / scale);
  const min = -zero * scale;
  let maxAbsError = 0;
  // TF.js dequantizes in float32: min + q * scale
  const fScale = Math.fround(scale);
  const fMin = Math.fround(min);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    let k = Math.round((v - min) / scale);
    if (k < 0) k = 0;
    else if (k > levels) k = levels;
    q[i] = k;
    const err = Math.abs(v - Math.fround(fMin + Math.fround(k * fScale)));
    if (err > maxAbsError) maxAbsError = err;
  }
  return { q, scale, min, maxAbsError };
}

export interface Float16Converted {
  bits: Uint16Array;
  maxAbsError: number;
  /** values whose magnitude exceeds float16's range (they become ±Infinity): callers refuse these */
  overflow: number;
}

export function toFloat16(values: ArrayLike<number>): Float16Converted {
  const bits = new Uint16Array(values.length);
  let maxAbsError = 0;
  let overflow = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const b = float32ToFloat16Bits(v);
    bits[i] = b;
    const back = float16BitsToFloat32(b);
    if (!Number.isFinite(back) && Number.isFinite(v)) {
      overflow++;
      continue;
    }
    const err = Math.abs(v - back);
    if (err > maxAbsError) maxAbsError = err;
  }
  return { bits, maxAbsError, overflow };
}
