// Turns the raw accumulators of one tensor into its JSON-safe TensorReport parts: the compacted
// magnitude histogram, the row-norm summary of an embedding table, the heatmap tiles, and the
// words that say what a zero means for the tensor's role.

import type { HeatmapTiles, MagnitudeHistogram, ReportRole, RowSummary } from '../../shared/report.js';
import { magnitudeQuantiles } from './magnitude-select.js';
import { privateKernel } from './private-kernel.js';
import { HIST_BINS, HIST_SHIFT, TensorStats } from './tensor-stats.js';

export const MAX_HISTOGRAM_BINS = 64;
export const MAX_ROW_HEAT_BUCKETS = 4096;
/** a row whose norm is below this share of the p95 row norm is "near zero" */
export const NEAR_ZERO_ROW_RELATIVE = 0.01;
/** tables from this many rows get their row heat and near-zero count from the WebAssembly kernel */
const HEAT_WASM_MIN_ROWS = 1 << 16;
/** row norms copied into the private kernel's memory per call (their bucket sums follow them) */
const HEAT_BLOCK = 1 << 19; // 2 MB, and at most 256 KB of bucket sums after them: within PRIVATE_KERNEL_BYTES

const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);
function edgeOfBin(bin: number): number {
  scratchU[0] = bin << HIST_SHIFT;
  return scratchF[0];
}

/** Drops empty outer bins and merges neighbours so that at most `maxBins` remain. */
export function compactHistogram(stats: Pick<TensorStats, 'histogram' | 'zeros'>, maxBins = MAX_HISTOGRAM_BINS): MagnitudeHistogram {
  const h = Float64Array.from(stats.histogram);
  h[0] -= stats.zeros; // bin 0 also received the exact zeros
  const lastFinite = (0x7f800000 >>> HIST_SHIFT) - 1; // bins from here on hold Infinity / NaN
  let lo = -1;
  let hi = -1;
  for (let b = 0; b <= lastFinite && b < HIST_BINS; b++) {
    if (h[b] > 0) {
      if (lo < 0) lo = b;
      hi = b;
    }
  }
  if (lo < 0) return { edges: [], counts: [], zeroCount: stats.zeros };
  const span = hi - lo + 1;
  const merge = Math.ceil(span / maxBins);
  const edges: number[] = [];
  const counts: number[] = [];
  for (let b = lo; b <= hi; b += merge) {
    let c = 0;
    for (let k = b; k < Math.min(b + merge, hi + 1); k++) c += h[k];
    edges.push(edgeOfBin(b));
    counts.push(c);
  }
  edges.push(edgeOfBin(Math.min(lo + counts.length * merge, hi + 1)));
  return { edges, counts, zeroCount: stats.zeros };
}

/** Row-norm summary of an embedding table from its row norms. */
export function summarizeRows(rowNorms: Float32Array, dim: number, epsilon: number, zeroRows: number): RowSummary {
  const n = rowNorms.length;
  const [p0, p1, p5, p25, p50, p75, p95, p99, p100] = magnitudeQuantiles(rowNorms, [0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1]).map((v) =>
    Number.isFinite(v) ? v : 0,
  );
  const nearZeroRowNorm = Math.max(epsilon * Math.sqrt(dim), NEAR_ZERO_ROW_RELATIVE * p95);
  let near = 0;
  const rowsPerBucket = Math.max(1, Math.ceil(n / MAX_ROW_HEAT_BUCKETS));
  const rowHeat: number[] = [];
  const k = n >= HEAT_WASM_MIN_ROWS && rowsPerBucket <= HEAT_BLOCK ? privateKernel() : null;
  if (k) {
    // the same sums and counts by the WebAssembly kernel (heat): a JS loop over millions of
    // rows runs mostly unoptimized in a one-shot run (~20 ms of CPU for 2M rows)
    const per = Math.floor(HEAT_BLOCK / rowsPerBucket) * rowsPerBucket;
    const data = new Float32Array(k.buffer, 0, per);
    const sums = new Float64Array(k.buffer, HEAT_BLOCK * 4, per / rowsPerBucket);
    for (let first = 0; first < n; first += per) {
      const m = Math.min(per, n - first);
      data.set(rowNorms.subarray(first, first + m));
      near += k.heat(0, m, rowsPerBucket, nearZeroRowNorm, HEAT_BLOCK * 4);
      for (let b = 0; b * rowsPerBucket < m; b++) {
        const mean = sums[b] / (Math.min(m, (b + 1) * rowsPerBucket) - b * rowsPerBucket);
        rowHeat.push(Number.isFinite(mean) ? mean : 0);
      }
    }
  } else {
    // near-zero rows and the row heat in one loop over the norms
    for (let b = 0; b < n; b += rowsPerBucket) {
      let s = 0;
      const end = Math.min(n, b + rowsPerBucket);
      for (let i = b; i < end; i++) {
        const x = rowNorms[i];
        s += x;
        near += x <= nearZeroRowNorm ? 1 : 0;
      }
      const m = s / (end - b);
      rowHeat.push(Number.isFinite(m) ? m : 0);
    }
  }
  return {
    rows: n,
    dim,
    normQuantiles: { p0, p1, p5, p25, p50, p75, p95, p99, p100 },
    zeroRows,
    nearZeroRows: near,
    nearZeroRowNorm,
    rowHeat,
    rowsPerBucket,
  };
}

export function tilesReport(tiles: NonNullable<TensorStats['tiles']>): HeatmapTiles {
  const { geometry: g, sumAbs, zeros, counts } = tiles;
  const meanAbs: number[] = new Array(sumAbs.length);
  const zeroFrac: number[] = new Array(sumAbs.length);
  for (let i = 0; i < sumAbs.length; i++) {
    const m = counts[i] > 0 ? sumAbs[i] / counts[i] : 0;
    meanAbs[i] = Number.isFinite(m) ? m : 0;
    zeroFrac[i] = counts[i] > 0 ? zeros[i] / counts[i] : 0;
  }
  return { rows: g.rows, cols: g.cols, cellRows: g.cellRows, cellCols: g.cellCols, meanAbs, zeroFrac };
}

export function sparsityMeaning(role: ReportRole, transposed: boolean | undefined): string {
  switch (role) {
    case 'embedding':
      return transposed
        ? 'stored [dim, ids] (gathered on axis 1): a zero column = an id with no representation; a zero weight = one unused coordinate of one id'
        : 'a zero row of this embedding table = an id with no representation; a zero weight = one unused coordinate of one id';
    case 'dense-kernel':
      return `a zero weight = one pruned connection; an all-zero ${transposed ? 'row' : 'column'} = a dead output neuron`;
    case 'conv-kernel':
      return 'a zero weight = one pruned filter tap; an all-zero filter = a dead output channel';
    case 'bias':
      return 'a zero bias = no offset for that unit (not prunable: biases never count toward sparsity)';
    case 'norm':
      return 'normalization parameters: a zero scale silences a channel (never counted as sparsity)';
    case 'weight':
      return 'a zero weight = one pruned parameter';
    case 'constant':
      return 'a constant, not a parameter: its zeros are data (shapes, indices, buffers), not sparsity';
    case 'quant-param':
      return 'quantization scales / zero points: not parameters, never counted as sparsity';
  }
}
