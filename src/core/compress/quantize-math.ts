// The arithmetic of quantization, on plain arrays (no model, no file): symmetric int8 with a
// scale per row (embedding tables) or per output column (dense kernels), TF.js-style affine
// uint8/uint16 per tensor, and float16. Every function returns the exact values the runtime will
// reconstruct, so the callers can report the weight error without a second pass.

import { float16BitsToFloat32, float32ToFloat16Bits } from '../model/tensor-data.js';
import { packedRowBytes, packRowCodes, type LowBits } from '../model/packed-codes.js';

/** Smallest positive normal float16: scales below it lose precision as subnormals. */
export const FLOAT16_MIN_NORMAL = 2 ** -14;

/** Tables narrower than this get one scale per table (int8) or per column (int4/int3/int2) instead of one per row. */
export const NARROW_TABLE_COLS = 8;

/** Largest float32 table quantized with per-column scales (fitted on the whole table, read into memory with a transposed copy). */
export const COLUMN_SCALES_MAX_BYTES = 256 * 2 ** 20;
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
  // Rounds .5 up, as Math.round does; ties are measure-zero for real weights, and both runtimes
  // only ever read the stored integer, so the tie rule does not need to match numpy's.
  // floor(x + 0.5) equals Math.round(x) for every quotient of two float32 values (it differs only
  // at 0.5 - 2^-54, which no such quotient rounds to) and compiles without Math.round's branch,
  // which random weights mispredict half the time: it quantizes 2x faster.
  const r = Math.floor(x + 0.5);
  return r > qmax ? qmax : r < -qmax ? -qmax : r;
}

/** Every scale is 0 or (times `low`, the smallest factor it may still be multiplied by) a normal float16. */
function fitsFloat16(scales: Float32Array, low = 1): boolean {
  return scales.every((s) => s === 0 || (s * low >= FLOAT16_MIN_NORMAL && s <= FLOAT16_MAX));
}

/** Rounds the scales to float16 in place; returns their float16 bits. */
function roundScalesToFloat16(scales: Float32Array): Uint16Array {
  const bits = new Uint16Array(scales.length);
  for (let r = 0; r < scales.length; r++) {
    bits[r] = float32ToFloat16Bits(scales[r]);
    scales[r] = float16BitsToFloat32(bits[r]);
  }
  return bits;
}

/**
 * Pass 1 of per-row int8 over a stream of chunks: folds max |v| of each row into `absmax`. The
 * chunk holds elements [first, first + chunk.length) of a row-major table of rows `rowLen` long
 * (a chunk may start or end inside a row).
 */
export function accumulateRowAbsMax(chunk: ArrayLike<number>, first: number, rowLen: number, absmax: Float64Array): void {
  let i = 0;
  while (i < chunk.length) {
    const r = Math.floor((first + i) / rowLen);
    const end = Math.min(chunk.length, (r + 1) * rowLen - first);
    let m = absmax[r];
    for (; i < end; i++) {
      const a = Math.abs(chunk[i]);
      if (a > m) m = a;
      else if (Number.isNaN(a)) throw new Error(`quantize: row ${r} holds NaN`);
    }
    absmax[r] = m;
  }
}

/** Row scales from row maxima (max / qmax), rounded to float16 when asked and every scale fits. */
export function rowScalesFromAbsMax(absmax: Float64Array, qmax: number, float16Scales: boolean): { scales: Float32Array; scaleBits?: Uint16Array } {
  checkQmax(qmax);
  const scales = new Float32Array(absmax.length);
  for (let r = 0; r < absmax.length; r++) {
    if (!Number.isFinite(absmax[r])) throw new Error(`quantize: row ${r} holds an infinite value`);
    scales[r] = absmax[r] / qmax;
  }
  const scaleBits = float16Scales && fitsFloat16(scales) ? roundScalesToFloat16(scales) : undefined;
  return { scales, ...(scaleBits ? { scaleBits } : {}) };
}

/**
 * Pass 2: the int8 codes of a chunk (elements [first, first + chunk.length) of the table) with
 * the final row scales, into out[0..chunk.length). Returns max |value - q*scale| over the chunk.
 */
export function quantizeChunkInt8(chunk: ArrayLike<number>, first: number, rowLen: number, scales: Float32Array, qmax: number, out: Int8Array): number {
  let maxAbsError = 0;
  let i = 0;
  while (i < chunk.length) {
    const r = Math.floor((first + i) / rowLen);
    const end = Math.min(chunk.length, (r + 1) * rowLen - first);
    const s = scales[r];
    if (s === 0) {
      out.fill(0, i, end);
      i = end;
      continue;
    }
    for (; i < end; i++) {
      const v = chunk[i];
      const k = roundClamp(v / s, qmax);
      out[i] = k;
      const err = Math.abs(v - Math.fround(k * s));
      if (err > maxAbsError) maxAbsError = err;
    }
  }
  return maxAbsError;
}

/**
 * Symmetric per-row int8: scale[r] = max|row r| / qmax, q = round(value / scale). A zero row
 * gets scale 0 and q 0 (exact). With `float16Scales`, scales are rounded to float16 first and
 * the integers computed from the rounded scale (so q*scale is what the model will compute);
 * if any non-zero scale falls outside float16's normal range, float32 scales are used instead.
 * The same passes as the streamed form (accumulateRowAbsMax, quantizeChunkInt8), on one chunk.
 */
export function quantizeRowsInt8(values: ArrayLike<number>, rows: number, cols: number, qmax = 127, float16Scales = false): RowQuantized {
  checkShape(values, rows, cols);
  checkQmax(qmax);
  const absmax = new Float64Array(rows);
  if (cols > 0) accumulateRowAbsMax(values, 0, cols, absmax);
  const { scales, scaleBits } = rowScalesFromAbsMax(absmax, qmax, float16Scales);
  const q = new Int8Array(rows * cols);
  const maxAbsError = cols > 0 ? quantizeChunkInt8(values, 0, cols, scales, qmax, q) : 0;
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
  const err = { maxAbsError: 0, overflow: 0 };
  toFloat16Chunk(values, bits, err);
  return { bits, ...err };
}

/**
 * toFloat16 of a chunk (of any length: no value depends on another): the bits into
 * out[0..values.length), the error and overflow folded into `err`, so a streamed table reports
 * what toFloat16 reports on the whole table.
 */
export function toFloat16Chunk(values: ArrayLike<number>, out: Uint16Array, err: Omit<Float16Converted, 'bits'>): void {
  let maxAbsError = err.maxAbsError;
  let overflow = err.overflow;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const b = float32ToFloat16Bits(v);
    out[i] = b;
    const back = float16BitsToFloat32(b);
    if (!Number.isFinite(back) && Number.isFinite(v)) {
      overflow++;
      continue;
    }
    const e = Math.abs(v - back);
    if (e > maxAbsError) maxAbsError = e;
  }
  err.maxAbsError = maxAbsError;
  err.overflow = overflow;
}

/** The code width of a low-bit dtype's name; undefined for any other dtype. */
export function lowBitsOf(dtype: string): LowBits | undefined {
  return dtype === 'int4' ? 4 : dtype === 'int3' ? 3 : dtype === 'int2' ? 2 : undefined;
}

/** Whether packed rows this wide take fewer bytes than int8 rows (quantize leaves the table otherwise). */
export function packsSmallerThanInt8(cols: number, bits: LowBits): boolean {
  return packedRowBytes(cols, bits) < cols;
}

/**
 * How a low-bit table's scales are stored: 'row' a float16 scale and a uint8 zero point per row;
 * 'byte' one byte per row holding its zero point and the index of its scale among a few levels
 * the table shares (scale-levels.ts); 'column' one scale and zero point per column.
 */
export type LowBitScales = 'row' | 'byte' | 'column';

/** Whether a low-bit table gets one scale and zero point per column: when asked, or too narrow for per-row ones. */
export function columnScaled(cols: number, scales: LowBitScales | undefined): boolean {
  return scales === 'column' || cols < NARROW_TABLE_COLS;
}

export interface RowQuantizedLowBit {
  bits: LowBits;
  rows: number;
  cols: number;
  /** codes [rows, cols] in 0..2^bits-1: value ≈ (code - zeroPoints[row]) * scales[row] */
  codes: Uint8Array;
  /** packRowCodes(codes): what is stored, [rows, packedRowBytes] */
  packed: Uint8Array;
  /** row scales as the runtime sees them (float16-rounded when `scaleBits` is set) */
  scales: Float32Array;
  scaleBits?: Uint16Array;
  zeroPoints: Uint8Array;
  maxAbsError: number;
  /** root mean square of value - dequantized value */
  rmse: number;
}

/**
 * Clip ratios tried per row, widest first. Clipping the range trades error on the few largest
 * values for finer steps on the rest; the ratio with the least squared error wins (ties keep the
 * wider range). On a N(0,1) table [20000 x 64] this lowers RMSE 4% at 4 bits and 22% at 2 bits.
 */
const CLIP_GRID: readonly number[] = Array.from({ length: 15 }, (_, k) => 1 - 0.05 * k);

/** min and max of the row at values[at..at+cols), widened to contain 0 (so the zero point is a code and 0 stays exact); r names it in errors */
export function rowRange(values: ArrayLike<number>, at: number, cols: number, r: number): [number, number] {
  let lo = 0;
  let hi = 0;
  for (let c = at; c < at + cols; c++) {
    const v = values[c];
    if (Number.isNaN(v)) throw new Error(`quantize: row ${r} holds NaN`);
    if (!Number.isFinite(v)) throw new Error(`quantize: row ${r} holds an infinite value`);
    if (v < lo) lo = v;
    else if (v > hi) hi = v;
  }
  return [lo, hi];
}

export function codeOf(v: number, scale: number, zp: number, top: number): number {
  const k = Math.round(v / scale) + zp;
  return k < 0 ? 0 : k > top ? top : k;
}

/** What the graph computes: float32 (code - zp) * scale. */
export function dequantized(code: number, zp: number, scale: number): number {
  return Math.fround((code - zp) * scale);
}

/** Best clip of the row at values[at..at+cols): its scale (already rounded as stored) and zero point. */
export function fitRow(values: ArrayLike<number>, at: number, cols: number, lo: number, hi: number, top: number, round: (s: number) => number): { scale: number; zp: number } {
  if (lo === hi) return { scale: 0, zp: 0 }; // an all-zero row
  let best = { scale: 0, zp: 0, sse: Infinity };
  for (const clip of CLIP_GRID) {
    const scale = round(((hi - lo) * clip) / top);
    if (scale === 0) continue; // a range of float32 subnormals: the row is stored as zeros
    const zp = Math.min(top, Math.max(0, Math.round((-lo * clip) / scale)));
    let sse = 0;
    for (let c = at; c < at + cols && sse < best.sse; c++) {
      const d = values[c] - dequantized(codeOf(values[c], scale, zp, top), zp, scale);
      sse += d * d;
    }
    if (sse < best.sse) best = { scale, zp, sse };
  }
  return best;
}

/**
 * A low-bit table quantized in passes over chunks of whole rows, in row order: quantizeRowsLowBit
 * makes the whole table one chunk, a streamed table many, with the same results bit for bit.
 * startRowsLowBit; accumulateRowRangesLowBit over every chunk; chooseScalesLowBit;
 * quantizeChunkLowBit over every chunk; finishRowsLowBit. Per-row arrays only: no codes.
 */
export interface LowBitPasses {
  bits: LowBits;
  rows: number;
  cols: number;
  /** largest code, 2^bits - 1 */
  top: number;
  /** each row's range [min(row, 0), max(row, 0)], from pass 1 */
  lo: Float64Array;
  hi: Float64Array;
  /** float16 scales (chosen after pass 1: every scale must fit) */
  f16: boolean;
  scales: Float32Array;
  zeroPoints: Uint8Array;
  /** error of the rows quantized so far; sse is summed in element order, so RMSE does not depend on the chunking */
  maxAbsError: number;
  sse: number;
  /** output-aware rounding: the factor codeRowWithFeedback uses (absent: round to nearest) */
  feedback?: Float64Array;
}

export function startRowsLowBit(rows: number, cols: number, bits: LowBits, feedback?: Float64Array): LowBitPasses {
  if (bits !== 4 && bits !== 3 && bits !== 2) throw new Error(`quantize: bits must be 4, 3 or 2, got ${String(bits)}`);
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0) throw new Error(`quantize: [${rows}, ${cols}] is not a matrix shape`);
  const lo = new Float64Array(rows);
  const hi = new Float64Array(rows);
  const p: LowBitPasses = { bits, rows, cols, top: (1 << bits) - 1, lo, hi, f16: false, scales: new Float32Array(rows), zeroPoints: new Uint8Array(rows), maxAbsError: 0, sse: 0 };
  if (feedback) p.feedback = feedback;
  return p;
}

/** The first row of a chunk of whole rows (elements [first, first + n) of the table), and how many it holds. */
function wholeRows(p: LowBitPasses, n: number, first: number): { r0: number; count: number } {
  const { cols, rows } = p;
  if (cols === 0 || n % cols !== 0 || first % cols !== 0 || first + n > rows * cols) {
    throw new Error(`quantize: ${n} values at element ${first} are not whole rows of a [${rows}, ${cols}] table`);
  }
  return { r0: first / cols, count: n / cols };
}

/** Pass 1: the range of each row of the chunk (elements [first, first + chunk.length) of the table). */
export function accumulateRowRangesLowBit(p: LowBitPasses, chunk: ArrayLike<number>, first: number): void {
  const { r0, count } = wholeRows(p, chunk.length, first);
  for (let i = 0; i < count; i++) [p.lo[r0 + i], p.hi[r0 + i]] = rowRange(chunk, i * p.cols, p.cols, r0 + i);
}

/**
 * Between the passes: float16 scales when asked and every row's widest scale, times the
 * narrowest clip, fits float16's normal range (so whichever clip a row picks still fits).
 */
export function chooseScalesLowBit(p: LowBitPasses, float16Scales: boolean): void {
  const widest = new Float32Array(p.rows);
  for (let r = 0; r < p.rows; r++) widest[r] = (p.hi[r] - p.lo[r]) / p.top;
  p.f16 = float16Scales && fitsFloat16(widest, CLIP_GRID[CLIP_GRID.length - 1]);
}

/**
 * Pass 2's fit alone: the scale and zero point of each row of the chunk into p (byte scales fit
 * the table's levels to these before any row is coded). Returns the chunk's first row.
 */
export function fitChunkScalesLowBit(p: LowBitPasses, chunk: ArrayLike<number>, first: number): number {
  const { r0, count } = wholeRows(p, chunk.length, first);
  const round = p.f16 ? (s: number) => float16BitsToFloat32(float32ToFloat16Bits(s)) : Math.fround;
  for (let i = 0; i < count; i++) {
    const { scale, zp } = fitRow(chunk, i * p.cols, p.cols, p.lo[r0 + i], p.hi[r0 + i], p.top, round);
    p.scales[r0 + i] = scale;
    p.zeroPoints[r0 + i] = zp;
  }
  return r0;
}

/**
 * Pass 2: fits the scale and zero point of each row of the chunk, writes its codes into
 * out[0..chunk.length) and folds the error into p.
 */
export function quantizeChunkLowBit(p: LowBitPasses, chunk: ArrayLike<number>, first: number, out: Uint8Array): void {
  const r0 = fitChunkScalesLowBit(p, chunk, first);
  codeRowsLowBit(chunk, r0, p.cols, p.scales, p.zeroPoints, p.top, out, p, p.feedback);
}

/**
 * The codes of a chunk of whole rows from row r0 on, with the rows' final scales and zero points,
 * into out[0..chunk.length); folds the chunk's error into `err` (sse summed in element order).
 * Streamed tables call it again when the model is written, to produce the codes.
 */
export function codeRowsLowBit(
  chunk: ArrayLike<number>, r0: number, cols: number, scales: Float32Array, zeroPoints: Uint8Array, top: number, out: Uint8Array,
  err: { maxAbsError: number; sse: number }, feedback?: Float64Array,
): void {
  let maxAbsError = err.maxAbsError;
  let sse = err.sse;
  for (let i = 0, r = r0; i < chunk.length; r++) {
    const scale = scales[r];
    const zp = zeroPoints[r];
    if (feedback && scale !== 0) codeRowWithFeedback(chunk, i, cols, scales, zeroPoints, r, 0, top, feedback, out);
    for (const end = i + cols; i < end; i++) {
      const k = scale === 0 ? 0 : feedback ? out[i] : codeOf(chunk[i], scale, zp, top);
      out[i] = k;
      const d = Math.abs(chunk[i] - dequantized(k, zp, scale));
      if (d > maxAbsError) maxAbsError = d;
      sse += d * d;
    }
  }
  err.maxAbsError = maxAbsError;
  err.sse = sse;
}

let feedbackScratch = new Float64Array(0);

/**
 * Output-aware rounding of one row (GPTQ's order-wise error feedback; output-aware-rounding.ts
 * makes `feedback`): the row's values at values[at..at+cols) are coded one column after the
 * other, and each rounding error, divided by U[j][j], is taken off the columns still to code
 * along U's row j, where U is the upper Cholesky factor of H^-1 and H the second moment of the
 * score's gradient with respect to the row: the error left is the one the output sees least.
 * Exact zeros (pruned weights) are coded as zero and take no feedback. Column j's grid is
 * scales[first + step * j] and zeroPoints[first + step * j]: step 0 for a row's own scale, 1 for
 * per-column scales. Writes the codes into out[at..at+cols).
 */
function codeRowWithFeedback(
  values: ArrayLike<number>, at: number, cols: number, scales: Float32Array, zeroPoints: Uint8Array, first: number, step: 0 | 1, top: number,
  feedback: Float64Array, out: Uint8Array,
): void {
  if (feedback.length !== cols * cols) throw new Error(`quantize: an output-aware factor of ${feedback.length} values for rows ${cols} wide`);
  if (feedbackScratch.length < cols) feedbackScratch = new Float64Array(cols);
  const x = feedbackScratch;
  for (let c = 0; c < cols; c++) x[c] = values[at + c];
  for (let j = 0; j < cols; j++) {
    const s = scales[first + step * j];
    const zp = zeroPoints[first + step * j];
    if (values[at + j] === 0 || s === 0) {
      out[at + j] = s === 0 ? 0 : zp;
      continue;
    }
    const k = codeOf(x[j], s, zp, top);
    out[at + j] = k;
    const e = (x[j] - dequantized(k, zp, s)) / feedback[j * cols + j];
    for (let m = j + 1; m < cols; m++) if (values[at + m] !== 0) x[m] -= e * feedback[j * cols + m];
  }
}

/** After pass 2: the stored scales (float16 bits when chosen) and the error of the table. */
export function finishRowsLowBit(p: LowBitPasses): Pick<RowQuantizedLowBit, 'scales' | 'scaleBits' | 'zeroPoints' | 'maxAbsError' | 'rmse'> {
  const scaleBits = p.f16 ? roundScalesToFloat16(p.scales) : undefined;
  const n = p.rows * p.cols;
  return { scales: p.scales, ...(scaleBits ? { scaleBits } : {}), zeroPoints: p.zeroPoints, maxAbsError: p.maxAbsError, rmse: n ? Math.sqrt(p.sse / n) : 0 };
}

/**
 * Asymmetric per-row quantization to 4, 3 or 2 bits: one scale and one integer zero point per row,
 * the row's range [min(row, 0), max(row, 0)] clipped by the best ratio of CLIP_GRID. Zero maps
 * to the zero point exactly (pruned weights stay 0); an all-zero row gets scale 0. With
 * `float16Scales`, scales are float16 (when every one fits float16's normal range after the
 * widest clip) and the codes are computed from the rounded scales.
 * The same passes as the streamed form (LowBitPasses), on one chunk.
 */
export function quantizeRowsLowBit(values: ArrayLike<number>, rows: number, cols: number, bits: LowBits, float16Scales = false, feedback?: Float64Array): RowQuantizedLowBit {
  checkShape(values, rows, cols);
  const p = startRowsLowBit(rows, cols, bits, feedback);
  const codes = new Uint8Array(rows * cols);
  if (values.length > 0) accumulateRowRangesLowBit(p, values, 0);
  chooseScalesLowBit(p, float16Scales);
  if (values.length > 0) quantizeChunkLowBit(p, values, 0, codes);
  const packed = packRowCodes(codes, rows, cols, bits);
  return { bits, rows, cols, codes, packed, ...finishRowsLowBit(p) };
}

/**
 * A table quantized per column (quantizeColumnsLowBit): the fields of RowQuantizedLowBit, with
 * `scales` (float32) and `zeroPoints` one per column: value ≈ (code - zeroPoints[col]) * scales[col].
 */
export type ColumnQuantizedLowBit = Omit<RowQuantizedLowBit, 'scaleBits'>;

/**
 * Asymmetric per-column quantization to 4, 3 or 2 bits, for tables too narrow for a scale and zero
 * point per row (a low-rank factor 2-7 wide, whose columns differ in scale by their singular
 * values): each column's scale, zero point and clip are fitted as quantizeRowsLowBit fits a row's
 * (it quantizes the transposed table), and the codes are packed per row of the table, so a Gather
 * of rows still reads whole packed rows.
 */
export function quantizeColumnsLowBit(values: ArrayLike<number>, rows: number, cols: number, bits: LowBits, feedback?: Float64Array): ColumnQuantizedLowBit {
  checkShape(values, rows, cols);
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = values[r * cols + c];
  const q = quantizeRowsLowBit(t, cols, rows, bits, false);
  const codes = new Uint8Array(rows * cols);
  if (!feedback) {
    for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) codes[r * cols + c] = q.codes[c * rows + r];
    return { bits, rows, cols, codes, packed: packRowCodes(codes, rows, cols, bits), scales: q.scales, zeroPoints: q.zeroPoints, maxAbsError: q.maxAbsError, rmse: q.rmse };
  }
  // output-aware: the columns' grids as fitted, the codes of each row chosen with error feedback
  const top = (1 << bits) - 1;
  const { scales, zeroPoints } = q;
  let maxAbsError = 0;
  let sse = 0;
  for (let r = 0; r < rows; r++) {
    codeRowWithFeedback(values, r * cols, cols, scales, zeroPoints, 0, 1, top, feedback, codes);
    for (let c = 0; c < cols; c++) {
      const d = Math.abs(values[r * cols + c] - dequantized(codes[r * cols + c], zeroPoints[c], scales[c]));
      if (d > maxAbsError) maxAbsError = d;
      sse += d * d;
    }
  }
  const rmse = rows * cols ? Math.sqrt(sse / (rows * cols)) : 0;
  return { bits, rows, cols, codes, packed: packRowCodes(codes, rows, cols, bits), scales, zeroPoints, maxAbsError, rmse };
}

/** The table the graph reconstructs from a per-column quantization, in float32. */
export function dequantizeColumnsLowBit(q: Pick<ColumnQuantizedLowBit, 'codes' | 'scales' | 'zeroPoints' | 'rows' | 'cols'>): Float32Array {
  const out = new Float32Array(q.rows * q.cols);
  for (let i = 0; i < out.length; i++) out[i] = dequantized(q.codes[i], q.zeroPoints[i % q.cols], q.scales[i % q.cols]);
  return out;
}

/** The table the graph reconstructs: (code - zeroPoint) * scale per row, in float32. */
export function dequantizeRowsLowBit(q: Pick<RowQuantizedLowBit, 'codes' | 'scales' | 'zeroPoints' | 'rows' | 'cols'>): Float32Array {
  const out = new Float32Array(q.rows * q.cols);
  for (let r = 0; r < q.rows; r++) {
    for (let c = r * q.cols; c < (r + 1) * q.cols; c++) out[c] = dequantized(q.codes[c], q.zeroPoints[r], q.scales[r]);
  }
  return out;
}

/**
 * Fake quantization of one row (quantization-aware training): writes into out[at..at+cols) the
 * values that quantizeRowsLowBit with float16 scales reconstructs for the row at
 * values[at..at+cols), fitted alone (the same range, clip and rounding; a row whose scale does not
 * fit float16 keeps a float32 one, as a table of such rows would), made a fixed point of the
 * quantizer: a reconstructed row whose extreme codes went unused (a zero point rounded away from
 * the row's minimum, say) would be fitted to a narrower grid when stored, so it is fitted again
 * until it stores as it is (once or twice; at most FIXED_POINT_FITS). No allocation: it runs for
 * every row an optimizer step touches.
 */
export function fakeQuantRowLowBit(values: ArrayLike<number>, at: number, cols: number, bits: LowBits, out: Float32Array): void {
  fitRowInto(values, at, cols, bits, out);
  for (let i = 0; i < FIXED_POINT_FITS && fitRowInto(out, at, cols, bits, out); i++);
}

const FIXED_POINT_FITS = 8;

/** One fit of the row at values[at..] written into out[at..] (in place when out is values); whether any value changed. */
function fitRowInto(values: ArrayLike<number>, at: number, cols: number, bits: LowBits, out: Float32Array): boolean {
  const top = (1 << bits) - 1;
  const [lo, hi] = rowRange(values, at, cols, at / cols);
  const widest = (hi - lo) / top;
  const f16 = widest === 0 || (widest * CLIP_GRID[CLIP_GRID.length - 1] >= FLOAT16_MIN_NORMAL && widest <= FLOAT16_MAX);
  const { scale, zp } = fitRow(values, at, cols, lo, hi, top, f16 ? (s) => float16BitsToFloat32(float32ToFloat16Bits(s)) : Math.fround);
  let changed = false;
  for (let c = at; c < at + cols; c++) {
    const v = scale === 0 ? 0 : dequantized(codeOf(values[c], scale, zp, top), zp, scale);
    if (v !== values[c]) changed = true;
    out[c] = v;
  }
  return changed;
}

/**
 * Fake quantization of one row against per-column scales and zero points (those of
 * quantizeColumnsLowBit on the table): out[at + c] = the reconstruction of values[at + c] in
 * column c's grid.
 */
export function fakeQuantRowColumns(values: ArrayLike<number>, at: number, cols: number, bits: LowBits, scales: Float32Array, zeroPoints: Uint8Array, out: Float32Array): void {
  const top = (1 << bits) - 1;
  for (let c = 0; c < cols; c++) {
    const s = scales[c];
    out[at + c] = s === 0 ? 0 : dequantized(codeOf(values[at + c], s, zeroPoints[c], top), zeroPoints[c], s);
  }
}
