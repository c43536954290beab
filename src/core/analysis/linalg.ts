// Dense linear algebra shared by the analysis (spectra) and compression (factorization):
// the symmetric eigen-decomposition both build on.

import { PRIVATE_KERNEL_BYTES, privateKernel } from './private-kernel.js';

export interface SymmetricEigen {
  /** eigenvalues, largest first */
  values: Float64Array;
  /** n x n row-major; column j is the unit eigenvector of values[j] */
  vectors: Float64Array;
}

/**
 * Eigenvalues and eigenvectors of a symmetric n x n matrix (row-major, not modified):
 * Householder reduction to tridiagonal form, then the implicit QL algorithm (tred2 / tql2 of
 * EISPACK as in JAMA). O(n^3) with small constants (~0.1 s for n = 256, where cyclic Jacobi
 * with vectors takes seconds); eigenvalues accurate to eps * |A|, vectors orthonormal to ~n eps.
 */
export function symmetricEigen(matrix: Float64Array, n: number): SymmetricEigen {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`symmetricEigen: bad size ${n}`);
  if (matrix.length < n * n) throw new RangeError(`symmetricEigen: ${matrix.length} values for ${n} x ${n}`);
  const V = Float64Array.from(matrix.subarray(0, n * n));
  // symmetrize: rounding in the caller's Gram may leave the halves a few ulps apart
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const m = 0.5 * (V[i * n + j] + V[j * n + i]);
      V[i * n + j] = m;
      V[j * n + i] = m;
    }
  }
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tred2(V, d, e, n);
  tql2(V, d, e, n);
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[j] - d[i]);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = d[src];
    for (let k = 0; k < n; k++) vectors[k * n + dst] = V[k * n + src];
  });
  return { values, vectors };
}

/**
 * Eigenvalues only of a symmetric n x n matrix (row-major, not modified), largest first: as
 * symmetricEigen, bit for bit, without accumulating the QL rotations into eigenvectors (the
 * O(n^3) part of tql2 that the values never read). `kernel` 'js' keeps to the JS code (the
 * reference the tests hold the WebAssembly port to).
 */
export function symmetricEigenvaluesOnly(matrix: Float64Array, n: number, kernel: 'auto' | 'js' = 'auto'): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`symmetricEigen: bad size ${n}`);
  if (matrix.length < n * n) throw new RangeError(`symmetricEigen: ${matrix.length} values for ${n} x ${n}`);
  // the WebAssembly port of the two steps below (private-kernel.ts: the same operations, the
  // same bits), where it runs and the matrix fits its memory: the JS ran mostly interpreted on
  // its first calls in a one-shot run (20-40 ms of CPU per 64 x 64 matrix, ~1 ms in WebAssembly)
  const wk = kernel === 'auto' && 8 * n * (n + 2) <= PRIVATE_KERNEL_BYTES ? privateKernel() : null;
  const V = wk ? new Float64Array(wk.buffer, 0, n * n) : new Float64Array(n * n);
  V.set(matrix.subarray(0, n * n));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const m = 0.5 * (V[i * n + j] + V[j * n + i]);
      V[i * n + j] = m;
      V[j * n + i] = m;
    }
  }
  let d: Float64Array;
  if (wk) {
    wk.tridiag(0, 8 * n * n, 8 * n * (n + 1), n);
    wk.ql(8 * n * n, 8 * n * (n + 1), n);
    d = new Float64Array(wk.buffer, 8 * n * n, n).slice();
  } else {
    d = new Float64Array(n);
    const e = new Float64Array(n);
    tred2(V, d, e, n);
    tql2(V, d, e, n, false);
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[j] - d[i]);
  const values = new Float64Array(n);
  for (let k = 0; k < n; k++) values[k] = d[order[k]];
  return values;
}

/** Householder tridiagonalization; V holds the matrix on entry and the transformation on exit. */
function tred2(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) d[j] = V[(n - 1) * n + j];
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = V[(i - 1) * n + j];
        V[i * n + j] = 0;
        V[j * n + i] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      let f = d[i - 1];
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j];
        V[j * n + i] = f;
        g = e[j] + V[j * n + j] * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[k * n + j] * d[k];
          e[k] += V[k * n + j] * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * d[j];
      for (let j = 0; j < i; j++) {
        f = d[j];
        g = e[j];
        for (let k = j; k <= i - 1; k++) V[k * n + j] -= f * e[k] + g * d[k];
        d[j] = V[(i - 1) * n + j];
        V[i * n + j] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) {
    V[(n - 1) * n + i] = V[i * n + i];
    V[i * n + i] = 1;
    const h = d[i + 1];
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[k * n + i + 1] / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[k * n + i + 1] * V[k * n + j];
        for (let k = 0; k <= i; k++) V[k * n + j] -= g * d[k];
      }
    }
    for (let k = 0; k <= i; k++) V[k * n + i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[(n - 1) * n + j];
    V[(n - 1) * n + j] = 0;
  }
  V[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

/** Implicit QL on the tridiagonal (d, e), accumulating the rotations into V. */
function tql2(V: Float64Array, d: Float64Array, e: Float64Array, n: number, vectors = true): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      // QL converges in 2-3 iterations per eigenvalue; the cap only guards against NaN input
      for (let iter = 0; iter < 100; iter++) {
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          for (let k = 0; vectors && k < n; k++) {
            const kn = k * n;
            h = V[kn + i + 1];
            V[kn + i + 1] = s * V[kn + i] + c * h;
            V[kn + i] = c * V[kn + i] - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
        if (!(Math.abs(e[l]) > eps * tst1)) break;
      }
    }
    d[l] += f;
    e[l] = 0;
  }
}

/** xorshift32 normal deviates (Box-Muller): reproducible sketches without a dependency */
export function normalSource(seed: number): () => number {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/**
 * Orthonormalizes the l columns of Y [m, l] in place (modified Gram-Schmidt, twice). Columns
 * marked in `replace`, or that vanish, become unit vectors orthogonal to the others.
 */
export function orthonormalizeColumns(y: Float64Array, m: number, l: number, replace?: boolean[]): void {
  let nextBasis = 0;
  const setBasis = (j: number) => {
    for (let i = 0; i < m; i++) y[i * l + j] = 0;
    y[(nextBasis++ % m) * l + j] = 1;
  };
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < l; j++) {
      if (pass === 0 && replace?.[j]) setBasis(j);
      for (let attempt = 0; ; attempt++) {
        let before = 0;
        for (let i = 0; i < m; i++) before += y[i * l + j] ** 2;
        for (let k = 0; k < j; k++) {
          let dot = 0;
          for (let i = 0; i < m; i++) dot += y[i * l + j] * y[i * l + k];
          for (let i = 0; i < m; i++) y[i * l + j] -= dot * y[i * l + k];
        }
        let norm = 0;
        for (let i = 0; i < m; i++) norm += y[i * l + j] ** 2;
        // a column that loses all but 1e-10 of its length lay in the span of the others: noise
        if (norm > 0 && norm > 1e-20 * before) {
          const inv = 1 / Math.sqrt(norm);
          for (let i = 0; i < m; i++) y[i * l + j] *= inv;
          break;
        }
        if (j >= m || attempt > m) {
          // more columns than dimensions: nothing orthogonal is left
          for (let i = 0; i < m; i++) y[i * l + j] = 0;
          break;
        }
        setBasis(j);
      }
    }
  }
}

/**
 * The randomized range finder of Halko, Martinsson and Tropp (2011) for a [rows, cols] matrix in
 * memory: a Gaussian sketch of l columns, `power` power iterations re-orthonormalized after each
 * product. Returns Q [rows, l] (orthonormal), Bt = A^T Q [cols, l] and B B^T [l, l], whose
 * eigenvalues are the squared singular values of A restricted to range(Q).
 */
export function randomizedSketch(
  values: Float32Array | Float64Array,
  rows: number,
  cols: number,
  l: number,
  power: number,
  seed: number,
): { q: Float64Array; bt: Float64Array; gram: Float64Array } {
  const rnd = normalSource(seed);
  const omega = new Float64Array(cols * l);
  for (let i = 0; i < omega.length; i++) omega[i] = rnd();
  const y = new Float64Array(rows * l);
  const z = new Float64Array(cols * l);
  // dst [rows, l] = A src [cols, l]
  const mulA = (src: Float64Array, dst: Float64Array) => {
    dst.fill(0);
    for (let r = 0; r < rows; r++) {
      const ob = r * l;
      for (let c = 0; c < cols; c++) {
        const a = values[r * cols + c];
        if (a === 0) continue;
        const sb = c * l;
        for (let j = 0; j < l; j++) dst[ob + j] += a * src[sb + j];
      }
    }
  };
  // dst [cols, l] = A^T src [rows, l]
  const mulAt = (src: Float64Array, dst: Float64Array) => {
    dst.fill(0);
    for (let r = 0; r < rows; r++) {
      const sb = r * l;
      for (let c = 0; c < cols; c++) {
        const a = values[r * cols + c];
        if (a === 0) continue;
        const ob = c * l;
        for (let j = 0; j < l; j++) dst[ob + j] += a * src[sb + j];
      }
    }
  };
  mulA(omega, y);
  orthonormalizeColumns(y, rows, l);
  for (let it = 0; it < power; it++) {
    mulAt(y, z);
    orthonormalizeColumns(z, cols, l);
    mulA(z, y);
    orthonormalizeColumns(y, rows, l);
  }
  mulAt(y, z);
  const gram = new Float64Array(l * l);
  for (let p = 0; p < l; p++) {
    for (let q = p; q < l; q++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += z[c * l + p] * z[c * l + q];
      gram[p * l + q] = s;
      gram[q * l + p] = s;
    }
  }
  return { q: y, bt: z, gram };
}
