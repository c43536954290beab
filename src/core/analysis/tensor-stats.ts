// One fused pass of per-tensor statistics over float32 chunks. A tensor is seen as a matrix
// [rows, rowLength] (N-D flattened to [shape[0], rest]); chunks must hold whole rows, so that
// per-row figures (row L2 norm, per-row int8 error) are finished inside the chunk while the row
// is still in L1 cache. Everything a report needs from the values is gathered in one loop:
// zeros, near-zeros, min/max, sums (mean/std by Chan's row-wise combination), mean |w|, the
// log-spaced magnitude histogram (read from the float's bits, no Math.log), float16 round-trip
// error, row norms, per-row int8 error and heatmap tile sums; sampled Gram rows for the spectrum.
//
// Speed notes (measured on 2-core Node 20, 256 MB tensor): data-dependent branches (x < 0 ? ..,
// if (x < min) ..) mispredict on weights with random signs and zeros and made the loop 5-8x
// slower than Math.abs / Math.min / Math.max and integer sign tricks; the kernel is a free
// function over typed arrays (no `this` fields in the loop) so it stays monomorphic. Float64
// Math.min / Math.max were still ~40% of the JS loop: extremes are taken on int32 keys instead.
// Per-element CPU time on a [1M, 64] table (machine loaded, ratios matter): JS loop ~14 ns with
// the errors of every row, ~9 ns without them. The WebAssembly SIMD kernel (kernels/) does the
// per-row work too (Chan's combination, row norms, the errors of sampled rows, in SIMD): ~2.0-2.3
// ns per element with errors on every 8th row, as fast as its per-element part alone was before
// (when its per-row part ran in JS, ~150-200 ms of CPU on a [2M, 64] table). The round-trip
// errors cost ~5 ns per element in JS and ~0.4 in the kernel: the row sample for huge tables
// stays, as it bounds both.

import { STATS_KERNEL_WASM_BASE64 } from './kernels/stats-kernel-wasm.js';
import type { HelperBuffers, StatsHelperThread } from './stats-helper-thread.js';

/** histogram bin = |w| bits >>> 21: 8 exponent bits + 2 mantissa bits = 4 bins per octave */
export const HIST_SHIFT = 21;
export const HIST_BINS = 1 << (31 - HIST_SHIFT); // 1024
// The kernel writes its bit constants as literals (it must not reference module scope): 0x7fffffff
// clears the sign, 0x7f800000 = Infinity, 0x38800000 = 2^-14 (smallest normal float16),
// 0x477ff000 = 65520 (the first value float16 rounds to Infinity), 2^42 + 1 = Veltkamp's splitter.
export const MAX_TILE_CELLS = 256;

// scalar state slots of the kernel (a Float64Array, so that the kernel needs no object)
const S_MIN = 0;
const S_MAX = 1;
const S_N = 2; // finite values so far (Chan)
const S_MEAN = 3;
const S_M2 = 4;
const S_ABS = 5;
const S_SQ = 6;
const S_F16SQ = 7;
const S_F16MAX = 8;
const S_F16OVER = 9;
const S_I8SQ = 10;
const S_I8MAX = 11;
const S_ZEROS = 12;
const S_NEAR = 13;
const S_NONFINITE = 14;
const S_ZEROROWS = 15;
const S_EPSBITS = 16;
const S_INT8ROW = 17;
const S_ERR_EVERY = 18; // round-trip errors of every n-th row (1 = all rows)
const S_ERR_ROWS = 19; // rows whose errors were measured
const S_ERR_N = 20; // finite values in those rows
const S_ERR_SQ = 21; // sum of w^2 of those values
export const STATE_SLOTS = 22;
/** Int32 histogram counts are folded into float64 before this many elements could overflow a bin */
export const HIST_FLUSH_ELEMENTS = 2 ** 30;

/**
 * float16 and (if int8PerRow and the row's absmax `ra` > 0) symmetric int8 round-trip errors of
 * one row, added into the kernel state (st[7], st[8], st[10], st[11]). `rowBad` says whether the
 * row holds non-finite values to skip. Self-contained, as the kernel. The squares are summed in 4
 * partial sums by column mod 4, then (s0 + s2) + (s1 + s3): the order of the WebAssembly
 * kernel's lanes, so that both give the same bits.
 */
export function roundTripRowErrors(
  chunk: Float32Array,
  u: Uint32Array,
  base: number,
  d: number,
  ra: number,
  rowBad: number,
  int8PerRow: boolean,
  st: Float64Array,
): void {
  let f0 = 0;
  let f1 = 0;
  let f2 = 0;
  let f3 = 0;
  let f16Max = st[8];
  let i0 = 0;
  let i1 = 0;
  let i2 = 0;
  let i3 = 0;
  let i8Max = st[11];
  const withInt8 = int8PerRow && ra > 0;
  const scale = withInt8 ? ra / 127 : 0;
  const inv = withInt8 ? 127 / ra : 0;
  for (let j = 0; j < d; j++) {
    const a = u[base + j] & 0x7fffffff;
    if (rowBad !== 0 && a >= 0x7f800000) continue;
    const x = chunk[base + j];
    // float16 keeps 11 significant bits: Veltkamp's split with 2^42 + 1 rounds a double to
    // 53 - 42 = 11 bits to nearest. Valid in the normal float16 range (from 2^-14, 0x38800000);
    // below it float16 is subnormal, a multiple of 2^-24: adding and taking away 1.5 * 2^28
    // rounds to that (ties have the same error either way); overflowing values (|x| >= 65520,
    // counted by the kernel) have no error figure. Measured: this branch costs less than
    // computing both roundings and keeping one by arithmetic.
    let e: number;
    if (a >= 0x38800000) {
      const p = x * 4398046511105;
      e = a < 0x477ff000 ? x - (x - p + p) : 0;
    } else e = x - (x + 402653184 - 402653184);
    const k = j & 3;
    const e2 = e * e;
    if (k === 0) f0 += e2;
    else if (k === 1) f1 += e2;
    else if (k === 2) f2 += e2;
    else f3 += e2;
    f16Max = Math.max(f16Max, Math.abs(e));
    if (withInt8) {
      // round to nearest by the 1.5 * 2^52 trick (|x * inv| <= 127): 2 adds, no call
      const q = x * inv + 6755399441055744 - 6755399441055744;
      const e8 = x - q * scale;
      const s8 = e8 * e8;
      if (k === 0) i0 += s8;
      else if (k === 1) i1 += s8;
      else if (k === 2) i2 += s8;
      else i3 += s8;
      i8Max = Math.max(i8Max, Math.abs(e8));
    }
  }
  st[7] += f0 + f2 + (f1 + f3);
  st[8] = f16Max;
  st[10] += i0 + i2 + (i1 + i3);
  st[11] = i8Max;
}

/**
 * The hot loop: rows [0, nRows) of `chunk` (row length d); the first is row `firstRow` of the
 * tensor. Self-contained on purpose: it uses no identifier from outside its body (constants are
 * literals; roundTripRowErrors is the only function it calls), so its source can also run in a
 * worker thread. rowNorms (or null) receives the L2
 * norm of each row at index firstRow + r. `hist` counts in int32 (HIST_BINS bins): an integer
 * increment is a shorter store-to-load chain than a float64 one when neighbours share a bin.
 *
 * Two passes per row, the second over a row still in L1: the first gathers the exact figures
 * (counts, extremes, moments, histogram, column sums); the second the round-trip errors, which
 * need the row's absmax (int8) and cost as much as everything else, so for huge tables they are
 * measured on every `st[18]`-th row only (an evenly spaced sample, counted in st[19..21]).
 */
export function fusedStatsKernel(
  chunk: Float32Array,
  u: Uint32Array,
  start: number,
  nRows: number,
  d: number,
  st: Float64Array,
  hist: Int32Array,
  colAbs: Float64Array,
  colZeros: Float64Array,
  rowNorms: Float32Array | null,
  firstRow: number,
): void {
  const epsBits = st[16];
  const int8PerRow = st[17] !== 0;
  const errEvery = st[18];
  const keyBits = new Int32Array(1);
  const keyFloat = new Float32Array(keyBits.buffer);
  let zeros = 0;
  let near = 0;
  let nonFinite = 0;
  let zeroRows = 0;
  let sAbs = 0;
  let sSq = 0;
  let f16Over = 0;
  let errRows = 0;
  let errN = 0;
  let errSq = 0;
  let mn = st[0];
  let mx = st[1];
  let cn = st[2];
  let cmean = st[3];
  let cm2 = st[4];
  // the first row of the sample at or after firstRow, relative to this call
  let nextErr = (errEvery - (firstRow % errEvery)) % errEvery;
  for (let r = 0, base = start; r < nRows; r++, base += d) {
    let rs = 0;
    let rsum = 0;
    let rabs = 0;
    // extremes as int32 keys that order like the floats (negative: low 31 bits flipped): an
    // integer Math.min / Math.max is a compare and a move, the float64 one is much longer
    let kmn = 0x7fffffff;
    let kmx = -0x80000000;
    let rowBad = 0;
    const zerosBefore = zeros;
    for (let j = 0; j < d; j++) {
      const i = base + j;
      const b = u[i] | 0;
      const a = b & 0x7fffffff;
      if (a >= 0x7f800000) {
        rowBad++; // NaN / Infinity: never in sane data, a perfectly predicted branch
        continue;
      }
      const x = chunk[i];
      const ax = Math.abs(x);
      // a and epsBits are < 2^31: (a - 1) >>> 31 is 1 exactly when a === 0, and
      // (a - epsBits - 1) >>> 31 exactly when a <= epsBits; (0x477fefff - a) >>> 31 when
      // |x| >= 65520, the first value float16 rounds to Infinity
      zeros += (a - 1) >>> 31;
      near += (a - epsBits - 1) >>> 31;
      f16Over += (0x477fefff - a) >>> 31;
      colAbs[j] += ax;
      hist[a >>> 21]++;
      const k = b ^ ((b >> 31) & 0x7fffffff);
      kmn = Math.min(kmn, k);
      kmx = Math.max(kmx, k);
      rsum += x;
      rabs += ax;
      rs += x * x;
    }
    nonFinite += rowBad;
    if (zeros !== zerosBefore) {
      // zero counts per column only for rows that have zeros: dense rows (most of a trained
      // table) skip this second look at the row, still in L1
      for (let j = 0; j < d; j++) colZeros[j] += ((u[base + j] & 0x7fffffff) - 1) >>> 31;
    }
    sSq += rs;
    sAbs += rabs;
    if (rs === 0) zeroRows++;
    if (rowNorms !== null) rowNorms[firstRow + r] = Math.sqrt(rs);
    const nb = d - rowBad;
    let rmn = Infinity;
    let rmx = -Infinity;
    if (nb > 0) {
      keyBits[0] = kmn ^ ((kmn >> 31) & 0x7fffffff);
      rmn = keyFloat[0];
      keyBits[0] = kmx ^ ((kmx >> 31) & 0x7fffffff);
      rmx = keyFloat[0];
      mn = Math.min(mn, rmn);
      mx = Math.max(mx, rmx);
      // Chan et al.: combine this row (mean, M2) into the running figures; within a row of
      // float64 sums the cancellation of rs - rsum^2/n is negligible, across rows it is avoided
      const mb = rsum / nb;
      const m2b = Math.max(0, rs - rsum * mb);
      const n = cn + nb;
      const delta = mb - cmean;
      cmean += (delta * nb) / n;
      cm2 += m2b + (delta * delta * cn * nb) / n;
      cn = n;
    }
    if (r !== nextErr) continue;
    nextErr += errEvery;
    errRows++;
    if (nb === 0) continue;
    errN += nb;
    errSq += rs;
    roundTripRowErrors(chunk, u, base, d, Math.max(-rmn, rmx), rowBad, int8PerRow, st);
  }
  st[0] = mn;
  st[1] = mx;
  st[2] = cn;
  st[3] = cmean;
  st[4] = cm2;
  st[5] += sAbs;
  st[6] += sSq;
  st[9] += f16Over;
  st[12] += zeros;
  st[13] += near;
  st[14] += nonFinite;
  st[15] += zeroRows;
  st[19] += errRows;
  st[20] += errN;
  st[21] += errSq;
}

/**
 * The same figures in WebAssembly SIMD (kernels/stats-kernel.wat): 4 lanes at a time, per
 * element and per row (Chan's combination, row norms, extremes, the round-trip errors of sampled
 * rows, rows with NaN), bit-identical to the JS loop but for the order of some float64 sums (see
 * the tests). The JS loop stays as the fallback (no WebAssembly SIMD, rows not a multiple of 4
 * long) and as the reference the tests hold the kernel to.
 */
export interface StatsWasm {
  memory: WebAssembly.Memory;
  stats: (
    data: number,
    nRows: number,
    d: number,
    counts: number,
    colAbs: number,
    colZeros: number,
    st: number,
    norms: number,
    epsBits: number,
    errNext: number,
    errEvery: number,
    int8: number,
  ) => void;
  gram: (row: number, d: number, g: number, x: number) => number;
}

let statsWasm: StatsWasm | null | undefined;

/** The instantiated kernel, shared by every accumulator of this thread; null where it cannot run. */
export function statsWasmKernel(): StatsWasm | null {
  if (statsWasm === undefined) {
    try {
      const mod = new WebAssembly.Module(Buffer.from(STATS_KERNEL_WASM_BASE64, 'base64'));
      const ex = new WebAssembly.Instance(mod, {}).exports as unknown as StatsWasm;
      statsWasm = { memory: ex.memory, stats: ex.stats, gram: ex.gram };
    } catch {
      statsWasm = null; // an engine without SIMD refuses the module: the JS loop does it all
    }
  }
  return statsWasm;
}

/** Whether accumulators of rows `rowLength` long run the WebAssembly kernel (kernel 'auto'). */
export function wasmKernelUsable(rowLength: number): boolean {
  return rowLength % 4 === 0 && rowLength > 0 && statsWasmKernel() !== null;
}

/** elements per kernel call (bounds the kernel's memory at ~14 MB) */
export const WASM_CALL_ELEMENTS = 1 << 20;

export interface WasmViews {
  /** the memory these views lie in (they are stale once it grows) */
  buffer: ArrayBuffer;
  rowsPerCall: number;
  colAbsPtr: number;
  colZerosPtr: number;
  normsPtr: number;
  /** 0 when laid out without a Gram matrix */
  gramPtr: number;
  gramXPtr: number;
  gramRowPtr: number;
  dataPtr: number;
  /** first byte after this layout */
  end: number;
  /** 4 histograms of HIST_BINS int32 bins, one per SIMD lane */
  hist: Int32Array;
  /** zeros, near zeros, float16 overflows */
  counts: Int32Array;
  /** the kernel's copy of the state (STATE_SLOTS float64) */
  st: Float64Array;
  colAbs: Float64Array;
  colZeros: Int32Array;
  norms: Float32Array;
  gram: Float64Array | null;
  gramRow: Float32Array | null;
  data: Float32Array;
}

/**
 * Views of the kernel's memory for rows of d values, `rowsPerCall` rows a call (grown as
 * needed): 4 histograms of 1024 int32 at 0, 3 int32 counts at 16384, the state (22 float64) at
 * 16400, colAbs f64[d], colZeros i32[d], a float32 norm per row, with `gram` a d x d float64
 * matrix, an f64[d] and an f32[d] scratch row, then the rows' float32 values. Self-contained
 * (literals only): the helper thread runs its source too.
 */
export function wasmViews(w: StatsWasm, d: number, rowsPerCall: number, gram = false): WasmViews {
  const colAbsPtr = 16576;
  const colZerosPtr = colAbsPtr + 8 * d;
  const normsPtr = (colZerosPtr + 4 * d + 15) & ~15;
  let at = (normsPtr + 4 * rowsPerCall + 15) & ~15;
  let gramPtr = 0;
  let gramXPtr = 0;
  let gramRowPtr = 0;
  if (gram) {
    gramPtr = at;
    gramXPtr = gramPtr + 8 * d * d;
    gramRowPtr = gramXPtr + 8 * d;
    at = (gramRowPtr + 4 * d + 15) & ~15;
  }
  const dataPtr = at;
  const end = (dataPtr + 4 * d * rowsPerCall + 15) & ~15;
  const have = w.memory.buffer.byteLength;
  if (have < end) w.memory.grow(Math.ceil((end - have) / 65536));
  const buf = w.memory.buffer;
  return {
    buffer: buf,
    rowsPerCall,
    colAbsPtr,
    colZerosPtr,
    normsPtr,
    gramPtr,
    gramXPtr,
    gramRowPtr,
    dataPtr,
    end,
    hist: new Int32Array(buf, 0, 4096),
    counts: new Int32Array(buf, 16384, 3),
    st: new Float64Array(buf, 16400, 22),
    colAbs: new Float64Array(buf, colAbsPtr, d),
    colZeros: new Int32Array(buf, colZerosPtr, d),
    norms: new Float32Array(buf, normsPtr, rowsPerCall),
    gram: gram ? new Float64Array(buf, gramPtr, d * d) : null,
    gramRow: gram ? new Float32Array(buf, gramRowPtr, d) : null,
    data: new Float32Array(buf, dataPtr, d * rowsPerCall),
  };
}

/**
 * Rows [r0, r0 + n) of `chunk` (row `firstRow` of the tensor first; n <= the views' rows per
 * call) through the kernel, which does all of fusedStatsKernel's work for them. Column sums,
 * histograms and counts stay in the kernel's memory (`v`) for the caller to fold; the kernel
 * state `st` is updated. Self-contained (the helper thread runs its source too).
 */
export function wasmStatsRows(
  w: StatsWasm,
  v: WasmViews,
  chunk: Float32Array,
  r0: number,
  n: number,
  d: number,
  firstRow: number,
  st: Float64Array,
  rowNorms: Float32Array | null,
): void {
  // a chunk that already lies in the kernel's memory (chunkBuffers) is read where it is
  const inPlace = chunk.buffer === w.memory.buffer;
  if (!inPlace) v.data.set(chunk.subarray(r0 * d, (r0 + n) * d));
  const errEvery = st[18];
  v.st.set(st);
  w.stats(
    inPlace ? chunk.byteOffset + r0 * d * 4 : v.dataPtr,
    n,
    d,
    16384,
    v.colAbsPtr,
    v.colZerosPtr,
    16400,
    v.normsPtr,
    st[16],
    (errEvery - (firstRow % errEvery)) % errEvery,
    errEvery,
    st[17] !== 0 ? 1 : 0,
  );
  st.set(v.st);
  if (rowNorms !== null) rowNorms.set(v.norms.subarray(0, n), firstRow);
}

export interface TileGeometry {
  rows: number;
  cols: number;
  cellRows: number;
  cellCols: number;
}

/** How [rows, cols] is cut into at most maxCells x maxCells cells of equal size (the last smaller). */
export function tileGeometry(rows: number, cols: number, maxCells = MAX_TILE_CELLS): TileGeometry {
  const cellRows = Math.max(1, Math.ceil(rows / maxCells));
  const cellCols = Math.max(1, Math.ceil(cols / maxCells));
  return { rows: Math.ceil(rows / cellRows), cols: Math.ceil(cols / cellCols), cellRows, cellCols };
}

export interface TensorStatsConfig {
  /** elements per row (product of shape[1..]; 1 for 1-D tensors and scalars) */
  rowLength: number;
  rows: number;
  /** |w| <= epsilon counts as near zero */
  epsilon: number;
  /** keep every row's L2 norm (embedding tables) */
  keepRowNorms?: boolean;
  /** symmetric int8 error per row, fused (embedding tables, [out, in] kernels) */
  int8PerRow?: boolean;
  /** heatmap tiles, at most this many cells per side (0 = none) */
  maxTileCells?: number;
  /** accumulate the Gram matrix (rowLength x rowLength) of every `gramEvery`-th row */
  gramEvery?: number;
  /** keep the max |w| of every column (dead output neurons / per-column int8 of [in, out] kernels) */
  columnAbsMax?: boolean;
  /** a second thread taking half of every piece of rows (big tensors) */
  helper?: StatsHelperThread;
  /** largest chunk `add` will get (sizes the helper's shared input buffer) */
  maxChunkElements?: number;
  /** pieces shorter than this many rows are not split with the helper (default 256) */
  minSplitRows?: number;
  /**
   * 'auto' (default): the WebAssembly kernel where it can run (rows a multiple of 4 long), else
   * the JS loop; 'js': always the JS loop (tests, benchmarks)
   */
  kernel?: 'auto' | 'js';
  /**
   * measure the float16 / per-row int8 round-trip errors on every n-th row only (default 1: all
   * rows, exact); every other figure stays exact. For huge tables, where the errors would cost
   * as much as all the rest: an evenly spaced sample of >= 256K rows pins them down tightly.
   */
  errorRowEvery?: number;
}

export interface TensorStats {
  count: number;
  finite: number;
  nonFinite: number;
  zeros: number;
  nearZeros: number;
  min: number;
  max: number;
  mean: number;
  /** population standard deviation */
  std: number;
  absMean: number;
  /** sum of w^2 (float64) */
  sumSquares: number;
  absMax: number;
  /** HIST_BINS counts of finite |w| by bits >>> 21 (bin 0 includes the exact zeros) */
  histogram: Float64Array;
  float16: { maxAbs: number; sumSq: number; overflow: number };
  int8PerRow?: { maxAbs: number; sumSq: number };
  /**
   * present when the errors (float16, int8PerRow) were measured on a row sample: the figures
   * above are then sums over these rows' finite values, and their max is the sample's max
   */
  errorSample?: { rows: number; finite: number; sumSquares: number };
  rowNorms?: Float32Array;
  /** rows whose finite values are all zero */
  zeroRows: number;
  tiles?: { geometry: TileGeometry; sumAbs: Float64Array; zeros: Float64Array; counts: Float64Array };
  gram?: { matrix: Float64Array; rowsUsed: number };
  columnAbsMax?: Float32Array;
}

export class TensorStatsAccumulator {
  private readonly d: number;
  private readonly rows: number;
  private readonly st = new Float64Array(STATE_SLOTS);
  /** counts since the last fold into `hist` (int32: see the kernel) */
  private readonly histCounts = new Int32Array(HIST_BINS);
  private readonly hist = new Float64Array(HIST_BINS);
  private sinceHistFold = 0;
  private readonly rowNorms: Float32Array | null;
  private readonly tileGeo?: TileGeometry;
  private readonly tileSum?: Float64Array;
  private readonly tileZeros?: Float64Array;
  private readonly colAbs: Float64Array;
  private readonly colZeros: Float64Array;
  private readonly colCell?: Int32Array;
  private readonly gramEvery: number;
  private readonly gram?: Float64Array;
  private gramRows = 0;
  private readonly colMax?: Float32Array;
  private readonly int8PerRow: boolean;
  private count = 0;
  private readonly helper?: StatsHelperThread;
  private readonly hb?: HelperBuffers;
  private readonly minSplitRows: number;
  private readonly wasm: StatsWasm | null;
  private views?: WasmViews;

  constructor(cfg: TensorStatsConfig) {
    const d = Math.max(1, cfg.rowLength);
    this.d = d;
    this.rows = cfg.rows;
    const f = new Float32Array([Math.fround(Math.abs(cfg.epsilon))]);
    this.st[S_MIN] = Infinity;
    this.st[S_MAX] = -Infinity;
    this.st[S_EPSBITS] = new Uint32Array(f.buffer)[0];
    this.int8PerRow = cfg.int8PerRow ?? false;
    this.st[S_INT8ROW] = this.int8PerRow ? 1 : 0;
    this.st[S_ERR_EVERY] = Math.max(1, Math.floor(cfg.errorRowEvery ?? 1));
    this.minSplitRows = Math.max(2, cfg.minSplitRows ?? 256);
    this.wasm = cfg.kernel !== 'js' && d % 4 === 0 ? statsWasmKernel() : null;
    if (cfg.helper) {
      if (!cfg.maxChunkElements) throw new Error('TensorStatsAccumulator: a helper thread needs maxChunkElements');
      this.helper = cfg.helper;
      this.hb = cfg.helper.prepare(d, cfg.maxChunkElements, cfg.rows, cfg.keepRowNorms ?? false, this.st);
    }
    this.rowNorms = this.hb ? this.hb.rowNorms : cfg.keepRowNorms ? new Float32Array(cfg.rows) : null;
    this.colAbs = new Float64Array(d);
    this.colZeros = new Float64Array(d);
    if (cfg.maxTileCells && cfg.maxTileCells > 0) {
      const g = tileGeometry(cfg.rows, d, cfg.maxTileCells);
      this.tileGeo = g;
      this.tileSum = new Float64Array(g.rows * g.cols);
      this.tileZeros = new Float64Array(g.rows * g.cols);
      this.colCell = new Int32Array(d);
      for (let j = 0; j < d; j++) this.colCell[j] = Math.floor(j / g.cellCols);
    }
    this.gramEvery = cfg.gramEvery && cfg.gramEvery > 0 ? Math.floor(cfg.gramEvery) : 0;
    if (this.gramEvery) this.gram = new Float64Array(d * d);
    if (cfg.columnAbsMax) this.colMax = new Float32Array(d);
  }

  /**
   * `count` arrays of `elements` float32 each in the WebAssembly kernel's memory (above the
   * region its calls use, grown now so that it does not move while they are in use), for the
   * caller to fill with chunks: the kernel then reads them in place instead of copying them in.
   * Undefined where this accumulator does not run the WebAssembly kernel. Valid until another
   * accumulator grows the kernel's memory (i.e. for this tensor's pass).
   */
  chunkBuffers(count: number, elements: number): Float32Array[] | undefined {
    const w = this.wasm;
    if (!w || count < 1 || elements < 1) return undefined;
    const d = this.d;
    // above the largest layout this accumulator's calls use (wasmViews): they never need more
    const base = wasmViews(w, d, Math.max(1, Math.floor(WASM_CALL_ELEMENTS / d)), this.gram !== undefined).end;
    const need = base + count * elements * 4;
    const have = w.memory.buffer.byteLength;
    if (have < need) w.memory.grow(Math.ceil((need - have) / 65536));
    const out: Float32Array[] = [];
    for (let k = 0; k < count; k++) out.push(new Float32Array(w.memory.buffer, base + k * elements * 4, elements));
    return out;
  }

  /** `chunk` holds whole rows and starts at element `firstElement` (a multiple of rowLength). */
  add(chunk: Float32Array, firstElement: number): void {
    const d = this.d;
    if (firstElement % d !== 0 || (chunk.length % d !== 0 && firstElement + chunk.length !== this.rows * d)) {
      throw new Error(`TensorStatsAccumulator: chunk [${firstElement}, +${chunk.length}) is not row-aligned (row length ${d})`);
    }
    const u = new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.sinceHistFold + chunk.length > HIST_FLUSH_ELEMENTS) this.foldHistograms();
    this.sinceHistFold += chunk.length;
    const nRows = Math.ceil(chunk.length / d);
    const firstRow = firstElement / d;
    const wasm = this.wasm && chunk.length % d === 0 ? this.wasm : null;
    if (wasm) this.addWasm(wasm, chunk, firstRow, nRows);
    else this.addJs(chunk, u, firstRow, nRows);
    if (this.gram) {
      const every = this.gramEvery;
      const row0 = Math.ceil(firstRow / every) * every;
      if (wasm && row0 < firstRow + nRows) this.addGramRowsWasm(wasm, chunk, firstRow, nRows, row0);
      else for (let row = row0; row < firstRow + nRows; row += every) this.addGramRow(chunk, (row - firstRow) * d);
    }
    if (this.colMax) {
      const colMax = this.colMax;
      for (let i = 0, j = 0; i < chunk.length; i++) {
        const ax = Math.abs(chunk[i]);
        if (ax > colMax[j]) colMax[j] = ax; // NaN never wins a comparison (Math.max would keep it)
        if (++j === d) j = 0;
      }
    }
    this.count += chunk.length;
  }

  private addJs(chunk: Float32Array, u: Uint32Array, firstRow: number, nRows: number): void {
    const d = this.d;
    // run the kernel in pieces that end at heatmap cell-row boundaries, folding the column sums
    // into the cells after each piece
    const step = this.tileGeo ? this.tileGeo.cellRows : nRows;
    let r = 0;
    while (r < nRows) {
      const row = firstRow + r;
      const pieceEnd = Math.min(nRows, r + (step - (row % step)));
      const hb = this.hb;
      if (this.helper && hb && pieceEnd - r >= this.minSplitRows) {
        // the helper takes the second half of the piece, we take the first; both halves lie in
        // the same heatmap cell-row, so the helper's column sums fold into that cell-row
        const mid = r + ((pieceEnd - r) >> 1);
        this.helper.start(chunk.subarray(mid * d, pieceEnd * d), pieceEnd - mid, d, firstRow + mid);
        try {
          fusedStatsKernel(chunk, u, r * d, mid - r, d, this.st, this.histCounts, this.colAbs, this.colZeros, this.rowNorms, row);
        } finally {
          this.helper.wait();
        }
        if (this.tileGeo) this.foldColumns(firstRow + mid, hb.colAbs, hb.colZeros);
        else {
          hb.colAbs.fill(0);
          hb.colZeros.fill(0);
        }
      } else {
        fusedStatsKernel(chunk, u, r * d, pieceEnd - r, d, this.st, this.histCounts, this.colAbs, this.colZeros, this.rowNorms, row);
      }
      if (this.tileGeo) {
        const lastRow = firstRow + pieceEnd - 1;
        if ((lastRow + 1) % step === 0 || lastRow + 1 === this.rows) this.foldTileRow(lastRow);
      }
      r = pieceEnd;
    }
    if (!this.tileGeo) {
      this.colAbs.fill(0);
      this.colZeros.fill(0);
    }
  }

  /** The kernel's views for calls of `rows` rows (kept while the memory does not move). */
  private viewsFor(w: StatsWasm, rows: number): WasmViews {
    const v = this.views;
    if (v && v.buffer === w.memory.buffer && v.rowsPerCall === rows) return v;
    return (this.views = wasmViews(w, this.d, rows, this.gram !== undefined));
  }

  /** The same figures as addJs, by the WebAssembly kernel (rows read in its memory). */
  private addWasm(w: StatsWasm, chunk: Float32Array, firstRow: number, nRows: number): void {
    const d = this.d;
    const rowsPerCall = Math.max(1, Math.floor(WASM_CALL_ELEMENTS / d));
    const v = this.viewsFor(w, Math.min(nRows, rowsPerCall));
    v.hist.fill(0);
    v.counts.fill(0);
    // the kernel's memory is shared by every accumulator: column sums of a heatmap cell-row
    // that an earlier chunk began are carried in and, unfinished, carried out again
    v.colAbs.set(this.colAbs);
    v.colZeros.set(this.colZeros);
    const step = this.tileGeo ? this.tileGeo.cellRows : nRows;
    let r = 0;
    while (r < nRows) {
      const row = firstRow + r;
      const end = Math.min(nRows, r + (step - (row % step)), r + rowsPerCall);
      const hb = this.hb;
      if (this.helper && hb && end - r >= this.minSplitRows) {
        // as in addJs: the helper (its own instance of the kernel) takes the second half
        const mid = r + ((end - r) >> 1);
        this.helper.start(chunk.subarray(mid * d, end * d), end - mid, d, firstRow + mid, true);
        try {
          wasmStatsRows(w, v, chunk, r, mid - r, d, row, this.st, this.rowNorms);
        } finally {
          this.helper.wait();
        }
        if (this.tileGeo) this.foldColumns(firstRow + mid, hb.colAbs, hb.colZeros);
        else {
          hb.colAbs.fill(0);
          hb.colZeros.fill(0);
        }
      } else wasmStatsRows(w, v, chunk, r, end - r, d, row, this.st, this.rowNorms);
      if (this.tileGeo) {
        const lastRow = firstRow + end - 1;
        if ((lastRow + 1) % step === 0 || lastRow + 1 === this.rows) this.foldColumns(lastRow, v.colAbs, v.colZeros);
      }
      r = end;
    }
    if (this.tileGeo) {
      this.colAbs.set(v.colAbs);
      this.colZeros.set(v.colZeros);
    }
    const hist = this.hist;
    const h = v.hist;
    for (let b = 0; b < HIST_BINS; b++) hist[b] += h[b] + h[b + HIST_BINS] + h[b + 2 * HIST_BINS] + h[b + 3 * HIST_BINS];
    const st = this.st;
    st[S_ZEROS] += v.counts[0];
    st[S_NEAR] += v.counts[1];
    st[S_F16OVER] += v.counts[2];
  }

  /** addGramRow of the rows row0, row0 + gramEvery, .. of the chunk, by the kernel's `gram` */
  private addGramRowsWasm(w: StatsWasm, chunk: Float32Array, firstRow: number, nRows: number, row0: number): void {
    const d = this.d;
    const v = this.viewsFor(w, Math.min(nRows, Math.max(1, Math.floor(WASM_CALL_ELEMENTS / d))));
    const g = v.gram!;
    g.set(this.gram!);
    const inPlace = chunk.buffer === w.memory.buffer;
    for (let row = row0; row < firstRow + nRows; row += this.gramEvery) {
      const off = (row - firstRow) * d;
      let ptr = v.gramRowPtr;
      if (inPlace) ptr = chunk.byteOffset + off * 4;
      else v.gramRow!.set(chunk.subarray(off, off + d));
      this.gramRows += w.gram(ptr, d, v.gramPtr, v.gramXPtr);
    }
    this.gram!.set(g);
  }

  private addGramRow(chunk: Float32Array, base: number): void {
    const d = this.d;
    const g = this.gram!;
    for (let q = 0; q < d; q++) if (!Number.isFinite(chunk[base + q])) return; // a broken row says nothing of the spectrum
    for (let p = 0; p < d; p++) {
      const xp = chunk[base + p];
      if (xp === 0) continue;
      const off = p * d;
      for (let q = p; q < d; q++) g[off + q] += xp * chunk[base + q];
    }
    this.gramRows++;
  }

  private foldTileRow(row: number): void {
    this.foldColumns(row, this.colAbs, this.colZeros);
  }

  /** adds column sums into the cells of the cell-row holding `row`, and zeroes them */
  private foldColumns(row: number, colAbs: Float64Array, colZeros: Float64Array | Int32Array): void {
    const g = this.tileGeo!;
    const off = Math.floor(row / g.cellRows) * g.cols;
    const colCell = this.colCell!;
    for (let j = 0; j < this.d; j++) {
      const c = off + colCell[j];
      this.tileSum![c] += colAbs[j];
      this.tileZeros![c] += colZeros[j];
    }
    colAbs.fill(0);
    colZeros.fill(0);
  }

  /** int32 bin counts (ours and the helper's, which is idle here) into the float64 histogram */
  private foldHistograms(): void {
    const hist = this.hist;
    const c = this.histCounts;
    const h = this.hb?.hist;
    for (let b = 0; b < HIST_BINS; b++) {
      hist[b] += c[b] + (h ? h[b] : 0);
      c[b] = 0;
      if (h) h[b] = 0;
    }
    this.sinceHistFold = 0;
  }

  /** merges the helper thread's accumulators into ours (Chan's formula for mean / M2) */
  private mergeHelper(): void {
    const hb = this.hb;
    if (!hb) return;
    const st = this.st;
    const h = hb.st;
    st[S_MIN] = Math.min(st[S_MIN], h[S_MIN]);
    st[S_MAX] = Math.max(st[S_MAX], h[S_MAX]);
    const na = st[S_N];
    const nb = h[S_N];
    if (nb > 0) {
      const n = na + nb;
      const delta = h[S_MEAN] - st[S_MEAN];
      st[S_MEAN] += (delta * nb) / n;
      st[S_M2] += h[S_M2] + (delta * delta * na * nb) / n;
      st[S_N] = n;
    }
    for (const k of [S_ABS, S_SQ, S_F16SQ, S_F16OVER, S_I8SQ, S_ZEROS, S_NEAR, S_NONFINITE, S_ZEROROWS, S_ERR_ROWS, S_ERR_N, S_ERR_SQ]) {
      st[k] += h[k];
      h[k] = 0;
    }
    st[S_F16MAX] = Math.max(st[S_F16MAX], h[S_F16MAX]);
    st[S_I8MAX] = Math.max(st[S_I8MAX], h[S_I8MAX]);
    h[S_MIN] = Infinity;
    h[S_MAX] = -Infinity;
    h[S_N] = 0;
    h[S_MEAN] = 0;
    h[S_M2] = 0;
  }

  finish(): TensorStats {
    this.mergeHelper();
    this.foldHistograms();
    const st = this.st;
    const finite = st[S_N];
    const has = finite > 0;
    const stats: TensorStats = {
      count: this.count,
      finite,
      nonFinite: st[S_NONFINITE],
      zeros: st[S_ZEROS],
      nearZeros: st[S_NEAR],
      min: has ? st[S_MIN] : NaN,
      max: has ? st[S_MAX] : NaN,
      mean: has ? st[S_MEAN] : NaN,
      std: has ? Math.sqrt(st[S_M2] / finite) : NaN,
      absMean: has ? st[S_ABS] / finite : NaN,
      sumSquares: st[S_SQ],
      absMax: has ? Math.max(Math.abs(st[S_MIN]), Math.abs(st[S_MAX])) : NaN,
      histogram: this.hist,
      float16: { maxAbs: st[S_F16MAX], sumSq: st[S_F16SQ], overflow: st[S_F16OVER] },
      zeroRows: st[S_ZEROROWS],
    };
    if (this.int8PerRow) stats.int8PerRow = { maxAbs: st[S_I8MAX], sumSq: st[S_I8SQ] };
    if (st[S_ERR_EVERY] > 1) stats.errorSample = { rows: st[S_ERR_ROWS], finite: st[S_ERR_N], sumSquares: st[S_ERR_SQ] };
    if (this.rowNorms) stats.rowNorms = this.rowNorms;
    if (this.tileGeo) {
      const g = this.tileGeo;
      const counts = new Float64Array(g.rows * g.cols);
      for (let r = 0; r < g.rows; r++) {
        const nr = Math.min(g.cellRows, this.rows - r * g.cellRows);
        for (let c = 0; c < g.cols; c++) counts[r * g.cols + c] = nr * Math.min(g.cellCols, this.d - c * g.cellCols);
      }
      stats.tiles = { geometry: g, sumAbs: this.tileSum!, zeros: this.tileZeros!, counts };
    }
    if (this.gram) {
      const d = this.d;
      const g = this.gram;
      for (let p = 0; p < d; p++) for (let q = 0; q < p; q++) g[p * d + q] = g[q * d + p];
      stats.gram = { matrix: g, rowsUsed: this.gramRows };
    }
    if (this.colMax) stats.columnAbsMax = this.colMax;
    return stats;
  }
}

/** Statistics of an array in one call (tests, small tensors). */
export function computeTensorStats(values: Float32Array, cfg: Partial<TensorStatsConfig> & { epsilon: number }): TensorStats {
  const rowLength = cfg.rowLength ?? 1;
  const acc = new TensorStatsAccumulator({ ...cfg, rowLength, rows: cfg.rows ?? Math.ceil(values.length / rowLength) });
  acc.add(values, 0);
  return acc.finish();
}

/**
 * Symmetric int8 error with one scale per column of a [rows, cols] matrix (per output channel of
 * an [in, out] kernel). Given a single column max (`[absMax]`) it is the per-tensor error: every
 * element then falls in "column" 0. A second pass: the scales need every row's values first.
 */
export class Int8ColumnErrorAccumulator {
  private maxAbs = 0;
  private sumSq = 0;
  private readonly inv: Float64Array;
  private readonly scale: Float64Array;
  constructor(private readonly colAbsMax: ArrayLike<number>) {
    const d = colAbsMax.length;
    this.inv = new Float64Array(d);
    this.scale = new Float64Array(d);
    for (let j = 0; j < d; j++) {
      const m = colAbsMax[j];
      this.scale[j] = m > 0 ? m / 127 : 0;
      this.inv[j] = m > 0 ? 127 / m : 0;
    }
  }
  add(chunk: Float32Array, firstElement: number): void {
    const d = this.inv.length;
    const inv = this.inv;
    const scale = this.scale;
    let j = firstElement % d;
    let mx = this.maxAbs;
    let sq = 0;
    for (let i = 0; i < chunk.length; i++) {
      const x = chunk[i];
      if (Number.isFinite(x)) {
        const e = x - Math.round(x * inv[j]) * scale[j];
        sq += e * e;
        mx = Math.max(mx, Math.abs(e));
      }
      if (++j === d) j = 0;
    }
    this.maxAbs = mx;
    this.sumSq += sq;
  }
  result(): { maxAbs: number; sumSq: number } {
    return { maxAbs: this.maxAbs, sumSq: this.sumSq };
  }
}

/** Round-trip figures from an error sum of squares: JSON-safe (null where undefined). */
export function errorFigures(maxAbs: number, sumSq: number, count: number, sumSquaresOfValues: number) {
  if (count === 0) return { maxAbs: null, rmse: null, relRmse: null };
  const rmse = Math.sqrt(sumSq / count);
  const rms = Math.sqrt(sumSquaresOfValues / count);
  return { maxAbs: finiteOrNull(maxAbs), rmse: finiteOrNull(rmse), relRmse: rms > 0 ? finiteOrNull(rmse / rms) : null };
}

export function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}
