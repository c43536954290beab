// Truncated singular value decomposition in float64 for low-rank factorization.
// - Short side <= EXACT_MAX_SIDE (or a rank close to it): exact. The Gram matrix of the short
//   side (A^T A, or A A^T for wide matrices) is diagonalized (Householder + implicit QL): V and
//   sigma^2; then U = A V S^-1 (columns of zero singular values completed
//   to an orthonormal set). The Gram squares the condition number, so a singular value below
//   ~1e-8 * sigma_1 is known only to absolute accuracy ~1e-8 * sigma_1: harmless for a
//   truncation, whose error is sqrt(sum of the dropped sigma^2).
// - Larger matrices: randomized SVD (Halko, Martinsson, Tropp 2011): Gaussian sketch with
//   oversampling, power iterations re-orthonormalized after each product, then the exact SVD
//   of the small projected matrix.
// - Tall tables that do not fit twice in memory ([2M, 64]): `GramAccumulator` builds A^T A in
//   one streaming pass, `svdFromGram` gives V and sigma, and A V (= U S) is formed row by row
//   in a second pass by the caller (factorize.ts): exact, two passes, O(d^2) memory.

import { rankForEnergy } from '../analysis/spectrum.js';
import { orthonormalizeColumns, randomizedSketch, symmetricEigen } from '../analysis/linalg.js';

/** Short side up to which `truncatedSvd` is exact by default (the Gram costs rows * n^2 / 2, its eigensystem ~9 n^3). */
export const EXACT_MAX_SIDE = 512;


/** A^T A of a [rows, d] matrix fed a block of rows at a time (streaming), in float64. */
export class GramAccumulator {
  readonly d: number;
  /** upper triangle while accumulating; `gram()` returns the full symmetric matrix */
  private readonly g: Float64Array;
  private readonly row: Float64Array;
  rows = 0;
  /** sum of squares of every value seen = trace of the Gram = sum of sigma^2 */
  sumSquares = 0;

  constructor(d: number) {
    if (!Number.isInteger(d) || d < 1) throw new RangeError(`GramAccumulator: bad width ${d}`);
    this.d = d;
    this.g = new Float64Array(d * d);
    this.row = new Float64Array(d);
  }

  /** Adds `values.length / d` whole rows (row-major). */
  addRows(values: Float32Array | Float64Array): void {
    const d = this.d;
    if (values.length % d !== 0) throw new RangeError(`GramAccumulator: ${values.length} values is not whole rows of ${d}`);
    const g = this.g;
    const x = this.row;
    const n = values.length / d;
    let ss = 0;
    let r = 0;
    // four rows per sweep over the triangle: one load/store of g per four multiply-adds
    for (; r + 4 <= n; r += 4) {
      const b0 = r * d;
      const b1 = b0 + d;
      const b2 = b1 + d;
      const b3 = b2 + d;
      for (let p = 0; p < d; p++) {
        const x0 = values[b0 + p];
        const x1 = values[b1 + p];
        const x2 = values[b2 + p];
        const x3 = values[b3 + p];
        ss += x0 * x0 + x1 * x1 + x2 * x2 + x3 * x3;
        const gp = p * d;
        for (let q = p; q < d; q++) g[gp + q] += x0 * values[b0 + q] + x1 * values[b1 + q] + x2 * values[b2 + q] + x3 * values[b3 + q];
      }
    }
    for (; r < n; r++) {
      const base = r * d;
      for (let k = 0; k < d; k++) x[k] = values[base + k];
      for (let p = 0; p < d; p++) {
        const xp = x[p];
        if (xp === 0) continue;
        ss += xp * xp;
        const gp = p * d;
        for (let q = p; q < d; q++) g[gp + q] += xp * x[q];
      }
    }
    this.sumSquares += ss;
    this.rows += n;
  }

  gram(): Float64Array {
    const d = this.d;
    const out = Float64Array.from(this.g);
    for (let p = 0; p < d; p++) for (let q = 0; q < p; q++) out[p * d + q] = out[q * d + p];
    return out;
  }
}

export interface GramSvd {
  /** every singular value (sqrt of the Gram's eigenvalues, negatives from rounding clamped to 0), largest first */
  singularValues: Float64Array;
  /** d x d row-major; column j is the right singular vector of singularValues[j] */
  vectors: Float64Array;
}

/** Right singular vectors and singular values of A from its Gram matrix A^T A (d x d). */
export function svdFromGram(gram: Float64Array, d: number): GramSvd {
  const { values, vectors } = symmetricEigen(gram, d);
  const singularValues = new Float64Array(d);
  for (let i = 0; i < d; i++) singularValues[i] = Math.sqrt(Math.max(0, values[i]));
  return { singularValues, vectors };
}

export interface TruncatedSvdOptions {
  /** keep the smallest rank (<= `rank`) whose sigma^2 sum reaches this share of the total energy */
  energy?: number;
  /** 'auto' (default): exact when the short side is <= EXACT_MAX_SIDE or the sketch would not be smaller */
  method?: 'auto' | 'exact' | 'randomized';
  /** extra sketch columns of the randomized method (default 10) */
  oversample?: number;
  /** power iterations of the randomized method (default 2) */
  powerIterations?: number;
  seed?: number;
}

export interface TruncatedSvd {
  rows: number;
  cols: number;
  rank: number;
  /** rows x rank, row-major, orthonormal columns */
  u: Float64Array;
  /** rank values, largest first */
  s: Float64Array;
  /** rank x cols, row-major (V^T): orthonormal rows */
  v: Float64Array;
  /** every singular value computed: all min(rows, cols) when exact, the sketch's when randomized */
  singularValues: Float64Array;
  /** sum of squares of all values of A (= sum of all sigma^2) */
  totalEnergy: number;
  exact: boolean;
  method: 'gram-eigen' | 'randomized-svd';
}

function checkDims(values: ArrayLike<number>, rows: number, cols: number, rank: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) throw new RangeError(`truncatedSvd: bad shape [${rows}, ${cols}]`);
  if (values.length !== rows * cols) throw new RangeError(`truncatedSvd: ${values.length} values for [${rows}, ${cols}]`);
  if (!(rank >= 1)) throw new RangeError(`truncatedSvd: rank must be >= 1, got ${rank}`);
}

/** Largest-first r-term SVD of a [rows, cols] row-major matrix. `rank` is capped at min(rows, cols). */
export function truncatedSvd(values: Float32Array | Float64Array, rows: number, cols: number, rank: number, opts: TruncatedSvdOptions = {}): TruncatedSvd {
  checkDims(values, rows, cols, rank);
  const short = Math.min(rows, cols);
  const cap = Math.min(Math.floor(rank), short);
  if (opts.energy !== undefined && !(opts.energy > 0 && opts.energy <= 1)) throw new RangeError(`truncatedSvd: energy must be in (0, 1], got ${opts.energy}`);
  const method = opts.method ?? 'auto';
  const oversample = opts.oversample ?? 10;
  const useExact = method === 'exact' || (method === 'auto' && (short <= EXACT_MAX_SIDE || cap + oversample >= short));
  if (useExact) return exactSvd(values, rows, cols, cap, opts.energy);
  return randomizedSvd(values, rows, cols, cap, opts);
}

/** the transpose of a row-major [rows, cols] matrix */
function transpose(values: Float32Array | Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = values[r * cols + c];
  return t;
}

function sumSquares(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i] * values[i];
  return s;
}

function chooseRank(sv: Float64Array, total: number, cap: number, energy: number | undefined): number {
  if (energy === undefined) return cap;
  const r = rankForEnergy(sv, total, energy);
  return Math.max(1, Math.min(cap, r ?? cap));
}

function exactSvd(values: Float32Array | Float64Array, rows: number, cols: number, cap: number, energy: number | undefined): TruncatedSvd {
  if (cols > rows) {
    // A^T = U' S V'^T  =>  A = V' S U'^T
    const t = exactSvd(transpose(values, rows, cols), cols, rows, cap, energy);
    const r = t.rank;
    return {
      ...t,
      rows,
      cols,
      u: transpose(t.v, r, rows),
      v: transpose(t.u, cols, r),
    };
  }
  const d = cols;
  const acc = new GramAccumulator(d);
  acc.addRows(values);
  const total = acc.sumSquares;
  const { singularValues, vectors } = svdFromGram(acc.gram(), d);
  const r = chooseRank(singularValues, total, cap, energy);
  const v = new Float64Array(r * d);
  for (let j = 0; j < r; j++) for (let k = 0; k < d; k++) v[j * d + k] = vectors[k * d + j];
  // U S = A V. sigma_j = |A v_j| is accurate to eps * |A| in absolute terms, while the Gram's
  // sqrt(lambda_j) is only accurate to sqrt(eps) * |A|: take the norms.
  const u = new Float64Array(rows * r);
  for (let i = 0; i < rows; i++) {
    const base = i * d;
    for (let j = 0; j < r; j++) {
      let dot = 0;
      const vb = j * d;
      for (let k = 0; k < d; k++) dot += values[base + k] * v[vb + k];
      u[i * r + j] = dot;
    }
  }
  const s = new Float64Array(r);
  for (let j = 0; j < r; j++) {
    let n2 = 0;
    for (let i = 0; i < rows; i++) n2 += u[i * r + j] ** 2;
    s[j] = Math.sqrt(n2);
  }
  // a direction whose |A v_j| is at rounding level carries nothing: sigma 0, and its U column
  // becomes an orthonormal completion
  const zero = Math.max(s[0], singularValues[0]) * 1e-12;
  const replace: boolean[] = [];
  for (let j = 0; j < r; j++) {
    replace.push(s[j] <= zero);
    if (s[j] <= zero) s[j] = 0;
    const inv = s[j] > 0 ? 1 / s[j] : 0;
    for (let i = 0; i < rows; i++) u[i * r + j] *= inv;
  }
  orthonormalizeColumns(u, rows, r, replace);
  return { rows, cols, rank: r, u, s, v, singularValues, totalEnergy: total, exact: true, method: 'gram-eigen' };
}


function randomizedSvd(values: Float32Array | Float64Array, rows: number, cols: number, cap: number, opts: TruncatedSvdOptions): TruncatedSvd {
  const short = Math.min(rows, cols);
  const total = sumSquares(values);
  const oversample = opts.oversample ?? 10;
  const power = opts.powerIterations ?? 2;
  // with an energy target the rank is unknown: sketch 64 (or the cap), and widen while the
  // computed values do not reach the target
  let k = opts.energy === undefined ? cap : Math.min(cap, 64);
  for (;;) {
    const l = Math.min(k + oversample, short);
    const res = randomizedOnce(values, rows, cols, k, l, power, opts.seed ?? 1, total);
    if (opts.energy === undefined) return res;
    const r = rankForEnergy(res.singularValues, total, opts.energy);
    if (r !== null || k >= cap) return truncate(res, Math.max(1, Math.min(cap, r ?? cap)));
    k = Math.min(cap, 2 * k);
    if (k + oversample >= short) return exactSvd(values, rows, cols, cap, opts.energy);
  }
}

function truncate(res: TruncatedSvd, r: number): TruncatedSvd {
  if (r >= res.rank) return res;
  const { rows, cols } = res;
  const u = new Float64Array(rows * r);
  for (let i = 0; i < rows; i++) for (let j = 0; j < r; j++) u[i * r + j] = res.u[i * res.rank + j];
  return { ...res, rank: r, u, s: res.s.slice(0, r), v: res.v.slice(0, r * cols) };
}

function randomizedOnce(values: Float32Array | Float64Array, rows: number, cols: number, k: number, l: number, power: number, seed: number, total: number): TruncatedSvd {
  // B = Q^T A (l x cols); z = B^T = A^T Q. B B^T = z^T z = W diag(sigma^2) W^T.
  const { q: y, bt: z, gram: g } = randomizedSketch(values, rows, cols, l, power, seed);
  const { values: ev, vectors: w } = symmetricEigen(g, l);
  const singularValues = new Float64Array(l);
  for (let i = 0; i < l; i++) singularValues[i] = Math.sqrt(Math.max(0, ev[i]));
  const r = k;
  const s = singularValues.slice(0, r);
  // U = Q W_r (rows x r); V^T rows: v_j = B^T w_j / sigma_j = z w_j / sigma_j
  const u = new Float64Array(rows * r);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < r; j++) {
      let acc = 0;
      for (let p = 0; p < l; p++) acc += y[i * l + p] * w[p * l + j];
      u[i * r + j] = acc;
    }
  }
  const v = new Float64Array(r * cols);
  for (let j = 0; j < r; j++) {
    const inv = s[j] > 0 ? 1 / s[j] : 0;
    for (let c = 0; c < cols; c++) {
      let acc = 0;
      for (let p = 0; p < l; p++) acc += z[c * l + p] * w[p * l + j];
      v[j * cols + c] = acc * inv;
    }
  }
  return { rows, cols, rank: r, u, s, v, singularValues, totalEnergy: total, exact: false, method: 'randomized-svd' };
}

/** Frobenius norm of A - U S V^T (float64), for reports and tests. */
export function reconstructionError(values: ArrayLike<number>, svd: TruncatedSvd): number {
  const { rows, cols, rank: r, u, s, v } = svd;
  let err = 0;
  const row = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    row.fill(0);
    for (let j = 0; j < r; j++) {
      const a = u[i * r + j] * s[j];
      if (a === 0) continue;
      const vb = j * cols;
      for (let c = 0; c < cols; c++) row[c] += a * v[vb + c];
    }
    for (let c = 0; c < cols; c++) err += (values[i * cols + c] - row[c]) ** 2;
  }
  return Math.sqrt(err);
}
