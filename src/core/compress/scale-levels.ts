// Row scales in one byte ("byte" scales) for int4 / int3 / int2 embedding tables. A per-row table
// spends 3 bytes a row on its float16 scale and uint8 zero point: on the narrow rows of a small
// model (a 15-wide int4 row is 8 bytes of codes) that is 27% of the table. Here each row keeps
// its own zero point (`bits` bits) and picks its scale among 2^(8 - bits) levels the table shares
// (16 for int4, 32 for int3, 64 for int2), both in one byte: (level << bits) | zero point. The
// levels are a 1-D k-means of the logarithms of the rows' own best scales, each weighted by its
// square (a histogram of 4096 bins, Lloyd's iterations: fitScaleLevels); each row then takes
// whichever of the levels next to its own scale, with its best zero point, leaves the least
// squared error. On the 15-wide GMF tables of a PyTorch NeuMF's 3.4x student the RMSE came out
// at or under per-row scales' (2.83e-2 against 2.83e-2, 2.48e-2 against 2.55e-2: a row picks
// among nearby levels and zero points), and the share of candidate pairs whose order changed
// against the float student was 2.60% against 2.63% (per row) and 3.67% (per column). Weighting
// each row equally or by its scale gave 2.61% and 2.59%, with a higher RMSE. Column scales (one
// range for rows of every norm) cost far more accuracy on tables whose row norms spread, as
// embedding tables' do (popular against rare items).
//
// The passes stream as per-row tables' do (quantize-math.ts LowBitPasses): ranges; each row's
// own scale (fitChunkScalesLowBit, coding nothing); fitScaleLevels; levelChunkLowBit, which sets
// the rows' final scales and zero points, so that codeRowsLowBit codes the rows afterwards as it
// does per-row ones.

import { packRowBytes, packRowCodes, scaleLevelCount, type LowBits } from '../model/packed-codes.js';
import {
  LowBitPasses,
  RowQuantizedLowBit,
  accumulateRowRangesLowBit,
  chooseScalesLowBit,
  codeOf,
  codeRowsLowBit,
  dequantized,
  finishRowsLowBit,
  fitChunkScalesLowBit,
  rowRange,
  startRowsLowBit,
} from './quantize-math.js';

const HISTOGRAM_BINS = 4096;
const LLOYD_ITERATIONS = 100;

/**
 * The levels (ascending, float32) of a table whose rows' own scales are `scales` (0 for an
 * all-zero row, which any level stores exactly): a weighted k-means of their logarithms into
 * scaleLevelCount(bits) clusters. A row whose scale is off by a factor e^d from its own loses
 * about s^2 d^2 more squared error (for small d, its rounding error grows with the scale), so
 * each row weighs s^2: the levels sit closest where the table's squared error is, and each level
 * is its cluster's weighted geometric mean. A cluster left empty takes the bin farthest from its
 * center in the cluster that costs most, and the iterations go on, so that as many levels are
 * used as there are distinct scales.
 */
export function fitScaleLevels(scales: ArrayLike<number>, bits: LowBits): Float32Array {
  const L = scaleLevelCount(bits);
  const levels = new Float32Array(L);
  let lo = Infinity;
  let hi = -Infinity;
  for (let r = 0; r < scales.length; r++) {
    const s = scales[r];
    if (!(s > 0)) continue;
    const l = Math.log(s);
    if (l < lo) lo = l;
    if (l > hi) hi = l;
  }
  if (lo === Infinity) return levels; // every row is zero
  if (hi === lo) return levels.fill(Math.exp(lo));
  // weighted histogram of log scales: each bin's weight and weighted sum, so that a cluster's mean is exact
  const weight = new Float64Array(HISTOGRAM_BINS);
  const sum = new Float64Array(HISTOGRAM_BINS);
  const width = (hi - lo) / HISTOGRAM_BINS;
  let total = 0;
  for (let r = 0; r < scales.length; r++) {
    const s = scales[r];
    if (!(s > 0)) continue;
    const l = Math.log(s);
    const b = Math.min(HISTOGRAM_BINS - 1, Math.floor((l - lo) / width));
    const w = (s / Math.exp(hi)) ** 2; // relative to the largest, so that no weight underflows
    weight[b] += w;
    sum[b] += w * l;
    total += w;
  }
  const bins: Array<{ m: number; w: number }> = [];
  for (let b = 0; b < HISTOGRAM_BINS; b++) if (weight[b] > 0) bins.push({ m: sum[b] / weight[b], w: weight[b] });
  if (bins.length <= L) {
    // as many distinct scales as levels, or fewer: each its own level
    bins.forEach((x, j) => (levels[j] = Math.fround(Math.exp(x.m))));
    for (let j = bins.length; j < L; j++) levels[j] = levels[bins.length - 1];
    return levels.sort();
  }
  // start from the weighted quantiles (k + 1/2) / L
  const centers = new Float64Array(L);
  let seen = 0;
  let k = 0;
  for (const x of bins) {
    seen += x.w;
    while (k < L && seen >= ((k + 0.5) / L) * total) centers[k++] = x.m;
  }
  for (; k < L; k++) centers[k] = bins[bins.length - 1].m;
  const assign = new Int32Array(bins.length);
  const cs = new Float64Array(L);
  const cw = new Float64Array(L);
  for (let round = 0; round <= L; round++) {
    for (let it = 0; it < LLOYD_ITERATIONS; it++) {
      centers.sort();
      cs.fill(0);
      cw.fill(0);
      let c = 0;
      bins.forEach((x, i) => {
        // centers are sorted: the nearest one moves only forward as the bins' means grow
        while (c + 1 < L && Math.abs(centers[c + 1] - x.m) <= Math.abs(centers[c] - x.m)) c++;
        assign[i] = c;
        cs[c] += x.w * x.m;
        cw[c] += x.w;
      });
      let moved = false;
      for (let j = 0; j < L; j++) {
        if (!cw[j]) continue;
        const m = cs[j] / cw[j];
        if (m !== centers[j]) moved = true;
        centers[j] = m;
      }
      if (!moved) break;
    }
    // an empty cluster (two equal centers, or none near) splits the costliest cluster at its farthest bin
    const empty = [...cw.keys()].filter((j) => !cw[j]);
    if (empty.length === 0) break;
    const cost = new Float64Array(L);
    bins.forEach((x, i) => (cost[assign[i]] += x.w * (x.m - centers[assign[i]]) ** 2));
    const worst = cost.indexOf(Math.max(...cost));
    if (!(cost[worst] > 0)) break;
    let far = -1;
    bins.forEach((x, i) => {
      if (assign[i] === worst && (far < 0 || Math.abs(x.m - centers[worst]) > Math.abs(bins[far].m - centers[worst]))) far = i;
    });
    centers[empty[0]] = bins[far].m;
  }
  for (let j = 0; j < L; j++) levels[j] = Math.fround(Math.exp(centers[j]));
  return levels.sort();
}

/** Index of the first level >= s (levels ascending); levels.length when none is. */
function firstAtLeast(levels: Float32Array, s: number): number {
  let a = 0;
  let b = levels.length;
  while (a < b) {
    const m = (a + b) >> 1;
    if (levels[m] < s) a = m + 1;
    else b = m;
  }
  return a;
}

/**
 * The level and zero point of the row at values[at..at+cols) (its own best scale `own`): of the
 * two levels below and the two above `own` (the four lowest or highest at either end), and the
 * zero points next to -min(row, 0) / level, the pair with the least squared error after rounding
 * to nearest (ties keep the lower level).
 * An all-zero row (own 0) takes level 0 and zero point 0.
 */
export function fitRowToLevels(values: ArrayLike<number>, at: number, cols: number, own: number, levels: Float32Array, top: number): { index: number; zp: number } {
  if (!(own > 0)) return { index: 0, zp: 0 };
  const [lo] = rowRange(values, at, cols, at / Math.max(1, cols));
  const p = firstAtLeast(levels, own);
  let best = { index: 0, zp: 0, sse: Infinity };
  // the window of four levels around `own`, never empty: past the top level, the top four
  const end = Math.min(levels.length, Math.max(p, 2) + 2);
  const start = Math.max(0, end - 4);
  for (let i = start; i < end; i++) {
    const s = levels[i];
    // a level repeated (fewer distinct scales than levels) is tried once
    if (!(s > 0) || (i > start && levels[i - 1] === s)) continue;
    const z0 = Math.round(-lo / s);
    for (let dz = -1; dz <= 1; dz++) {
      const zp = Math.min(top, Math.max(0, z0 + dz));
      if (dz !== -1 && zp === Math.min(top, Math.max(0, z0 + dz - 1))) continue; // clamped onto the previous one
      let sse = 0;
      for (let c = at; c < at + cols && sse < best.sse; c++) {
        const d = values[c] - dequantized(codeOf(values[c], s, zp, top), zp, s);
        sse += d * d;
      }
      if (sse < best.sse) best = { index: i, zp, sse };
    }
  }
  if (best.sse === Infinity) throw new Error(`scale levels: no positive level near row ${at / Math.max(1, cols)}'s scale ${own}`);
  return { index: best.index, zp: best.zp };
}

/**
 * The pass after fitScaleLevels, over chunks of whole rows: each row's level and zero point
 * (fitRowToLevels from its own scale, p.scales, which this replaces by the level's), its index in
 * `index`, and its codes into out[0..chunk.length) with the error folded into p.
 */
export function levelChunkLowBit(p: LowBitPasses, chunk: ArrayLike<number>, first: number, levels: Float32Array, index: Uint8Array, out: Uint8Array): void {
  const { cols } = p;
  const r0 = first / Math.max(1, cols);
  const count = cols ? chunk.length / cols : 0;
  for (let i = 0; i < count; i++) {
    const f = fitRowToLevels(chunk, i * cols, cols, p.scales[r0 + i], levels, p.top);
    index[r0 + i] = f.index;
    p.scales[r0 + i] = p.scales[r0 + i] > 0 ? levels[f.index] : 0;
    p.zeroPoints[r0 + i] = f.zp;
  }
  codeRowsLowBit(chunk, r0, cols, p.scales, p.zeroPoints, p.top, out, p, p.feedback);
}

export interface LevelQuantizedLowBit extends Omit<RowQuantizedLowBit, 'scaleBits'> {
  /** the table's scale levels, ascending */
  levels: Float32Array;
  /** each row's byte: (level index << bits) | zero point */
  rowBytes: Uint8Array;
}

/**
 * A whole table with byte scales, in memory (the streamed form is quantize-onnx.ts'; both run
 * the same passes). `scales` and `zeroPoints` are each row's, as the graph reconstructs them.
 */
export function quantizeRowsLowBitLevels(values: ArrayLike<number>, rows: number, cols: number, bits: LowBits, feedback?: Float64Array): LevelQuantizedLowBit {
  if (rows * cols !== values.length) throw new Error(`quantize: ${values.length} values are not a [${rows}, ${cols}] matrix`);
  const p = startRowsLowBit(rows, cols, bits, feedback);
  const codes = new Uint8Array(rows * cols);
  if (values.length > 0) accumulateRowRangesLowBit(p, values, 0);
  chooseScalesLowBit(p, false);
  if (values.length > 0) fitChunkScalesLowBit(p, values, 0);
  const levels = fitScaleLevels(p.scales, bits);
  const index = new Uint8Array(rows);
  if (values.length > 0) levelChunkLowBit(p, values, 0, levels, index, codes);
  const q = finishRowsLowBit(p);
  return {
    bits, rows, cols, codes, packed: packRowCodes(codes, rows, cols, bits), scales: q.scales, zeroPoints: q.zeroPoints, maxAbsError: q.maxAbsError, rmse: q.rmse,
    levels, rowBytes: packRowBytes(index, q.zeroPoints, bits),
  };
}
