// Singular-value spectra of weight matrices, to see whether a matrix could be factorized.
// - Tall tables ([n, d], d <= 256): the d x d Gram matrix E^T E accumulated row by row during the
//   statistics pass (tensor-stats.ts), all rows when n*d^2/2 fits the flop budget, every s-th
//   row otherwise (a sketch: exact = false); its eigenvalues are the squared singular values.
// - Small wide matrices (min dim <= 256, in memory): the Gram matrix of the short side.
// - Larger matrices in memory: randomized SVD (Halko et al.) of the top 64 values.
// Eigenvalues come from cyclic Jacobi in float64: simple, robust, exact to rounding.

import type { SpectrumReport } from '../../shared/report.js';
import { randomizedSketch, symmetricEigenvaluesOnly } from './linalg.js';

export const MAX_SPECTRUM_VALUES = 64;
/** Gram side up to which the spectrum is exact */
export const MAX_EXACT_GRAM_DIM = 256;
/**
 * Multiply-adds spent on a streaming Gram before rows are sampled instead: 8M (~30-60 ms here)
 * keeps e.g. 4000 rows of a [2M, 64] table, plenty for a 64-dim spectrum, while an exact Gram
 * of all rows (4G multiply-adds) would cost several times the whole statistics pass.
 */
export const GRAM_FLOP_BUDGET = 8 * 1024 * 1024;

/** Every how many rows a streaming Gram of [rows, d] takes one, within GRAM_FLOP_BUDGET (1 = all). */
export function gramSamplingStep(rows: number, d: number): number {
  const perRow = (d * (d + 1)) / 2;
  return Math.max(1, Math.ceil((rows * perRow) / GRAM_FLOP_BUDGET));
}

/** Eigenvalues of a symmetric n x n matrix (row-major, not modified), largest first. */
export function symmetricEigenvalues(matrix: Float64Array, n: number): Float64Array {
  return symmetricEigenvaluesOnly(matrix, n);
}

/** Smallest r with sum_{i<r} sigma_i^2 >= fraction * totalEnergy; null when the given values do not reach it. */
export function rankForEnergy(singularValues: ArrayLike<number>, totalEnergy: number, fraction: number): number | null {
  if (!(totalEnergy > 0)) return 0;
  const need = fraction * totalEnergy * (1 - 1e-12); // rounding must not push an exact rank one further
  let acc = 0;
  for (let i = 0; i < singularValues.length; i++) {
    acc += singularValues[i] ** 2;
    if (acc >= need) return i + 1;
  }
  return null;
}

/**
 * Spectrum from a Gram matrix (eigenvalues = sigma^2 / scale). `scale` corrects a row-sampled
 * Gram (rows / rowsUsed). The energy is the Gram's trace, so ranks are of the (sampled) matrix.
 */
export function spectrumFromGram(gram: Float64Array, n: number, scale: number, fullRank: number, exact: boolean, method: string): SpectrumReport {
  const ev = symmetricEigenvalues(gram, n);
  const sv = new Float64Array(n);
  let energy = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, ev[i]) * scale;
    sv[i] = Math.sqrt(l);
    energy += l;
  }
  return buildSpectrum(sv, energy, fullRank, exact, method);
}

function buildSpectrum(sv: Float64Array, energy: number, fullRank: number, exact: boolean, method: string): SpectrumReport {
  const values: number[] = [];
  for (let i = 0; i < Math.min(MAX_SPECTRUM_VALUES, sv.length); i++) values.push(Number.isFinite(sv[i]) ? sv[i] : 0);
  return {
    singularValues: values,
    rankFor90: rankForEnergy(sv, energy, 0.9),
    rankFor95: rankForEnergy(sv, energy, 0.95),
    rankFor99: rankForEnergy(sv, energy, 0.99),
    fullRank,
    exact,
    method,
  };
}

/** Exact spectrum of a [rows, cols] matrix in memory whose short side is <= MAX_EXACT_GRAM_DIM. */
export function exactSpectrum(values: Float32Array, rows: number, cols: number): SpectrumReport {
  const fullRank = Math.min(rows, cols);
  if (fullRank > MAX_EXACT_GRAM_DIM) throw new RangeError(`exactSpectrum: short side ${fullRank} > ${MAX_EXACT_GRAM_DIM}`);
  const g = new Float64Array(fullRank * fullRank);
  if (cols <= rows) {
    // A^T A, row by row
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      for (let p = 0; p < cols; p++) {
        const xp = values[base + p];
        if (xp === 0) continue;
        for (let q = p; q < cols; q++) g[p * cols + q] += xp * values[base + q];
      }
    }
  } else {
    // A A^T: dot products of rows
    for (let p = 0; p < rows; p++) {
      for (let q = p; q < rows; q++) {
        let s = 0;
        const bp = p * cols;
        const bq = q * cols;
        for (let k = 0; k < cols; k++) s += values[bp + k] * values[bq + k];
        g[p * rows + q] = s;
      }
    }
  }
  for (let p = 0; p < fullRank; p++) for (let q = 0; q < p; q++) g[p * fullRank + q] = g[q * fullRank + p];
  return spectrumFromGram(g, fullRank, 1, fullRank, true, 'gram-jacobi');
}

/**
 * Top singular values of a [rows, cols] matrix in memory by randomized SVD (oversampling 10,
 * 2 power iterations). `totalEnergy` (sum of w^2) makes the energy ranks true ranks of the
 * whole matrix; a rank beyond the 64 computed values is null.
 */
export function randomizedSpectrum(values: Float32Array, rows: number, cols: number, totalEnergy: number, seed = 1): SpectrumReport {
  const k = Math.min(MAX_SPECTRUM_VALUES, rows, cols);
  const l = Math.min(k + 10, rows, cols);
  const { gram: g } = randomizedSketch(values, rows, cols, l, 2, seed);
  const ev = symmetricEigenvalues(g, l);
  const sv = new Float64Array(k);
  for (let i = 0; i < k; i++) sv[i] = Math.sqrt(Math.max(0, ev[i]));
  return buildSpectrum(sv, totalEnergy, Math.min(rows, cols), false, 'randomized-svd');
}
