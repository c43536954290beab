import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GramAccumulator,
  reconstructionError,
  svdFromGram,
  truncatedSvd,
  TruncatedSvd,
} from '../../src/core/compress/svd.js';
import { orthonormalizeColumns, symmetricEigen } from '../../src/core/analysis/linalg.js';

/** deterministic uniform(-1, 1) */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 4294967296) * 2 - 1;
  };
}

/** m x k with orthonormal columns */
function randomOrthonormal(m: number, k: number, seed: number): Float64Array {
  const rnd = lcg(seed);
  const y = new Float64Array(m * k);
  for (let i = 0; i < y.length; i++) y[i] = rnd();
  orthonormalizeColumns(y, m, k);
  return y;
}

/** A = U0 diag(sigma) V0^T, [rows, cols], float64 */
function matrixWithSpectrum(rows: number, cols: number, sigma: number[], seed: number): Float64Array {
  const k = sigma.length;
  const u = randomOrthonormal(rows, k, seed);
  const v = randomOrthonormal(cols, k, seed + 1);
  const a = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < cols; c++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += u[i * k + j] * sigma[j] * v[c * k + j];
      a[i * cols + c] = s;
    }
  }
  return a;
}

function maxOrthoDefect(svd: TruncatedSvd): { u: number; v: number } {
  const { rows, cols, rank: r, u, v } = svd;
  let du = 0;
  let dv = 0;
  for (let p = 0; p < r; p++) {
    for (let q = 0; q < r; q++) {
      let su = 0;
      for (let i = 0; i < rows; i++) su += u[i * r + p] * u[i * r + q];
      let sv = 0;
      for (let c = 0; c < cols; c++) sv += v[p * cols + c] * v[q * cols + c];
      const id = p === q ? 1 : 0;
      du = Math.max(du, Math.abs(su - id));
      dv = Math.max(dv, Math.abs(sv - id));
    }
  }
  return { u: du, v: dv };
}

function droppedNorm(sv: ArrayLike<number>, r: number): number {
  let s = 0;
  for (let i = r; i < sv.length; i++) s += sv[i] ** 2;
  return Math.sqrt(s);
}

const SIGMA = [10, 5, 3, 1, 0.5, 0.1];

test('symmetricEigen: eigenpairs of a known symmetric matrix', () => {
  // [[2,1,0],[1,2,0],[0,0,5]]: eigenvalues 5, 3, 1
  const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 0, 1, 2, 0, 0, 0, 5]), 3);
  assert.deepEqual(Array.from(values, (x) => Math.round(x * 1e12) / 1e12), [5, 3, 1]);
  const m = [2, 1, 0, 1, 2, 0, 0, 0, 5];
  for (let j = 0; j < 3; j++) {
    for (let i = 0; i < 3; i++) {
      let av = 0;
      for (let k = 0; k < 3; k++) av += m[i * 3 + k] * vectors[k * 3 + j];
      assert.ok(Math.abs(av - values[j] * vectors[i * 3 + j]) < 1e-12);
    }
  }
  // a random symmetric 60 x 60: A v = lambda v and V^T V = I to rounding
  const n = 60;
  const rnd = lcg(99);
  const m60 = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) m60[i * n + j] = m60[j * n + i] = rnd();
  const eig = symmetricEigen(m60, n);
  for (let j = 0; j < n; j++) {
    if (j > 0) assert.ok(eig.values[j] <= eig.values[j - 1]);
    for (let i = 0; i < n; i++) {
      let av = 0;
      for (let k = 0; k < n; k++) av += m60[i * n + k] * eig.vectors[k * n + j];
      assert.ok(Math.abs(av - eig.values[j] * eig.vectors[i * n + j]) < 1e-12, `A v - lambda v at ${i},${j}`);
    }
    for (let q = 0; q < n; q++) {
      let dot = 0;
      for (let k = 0; k < n; k++) dot += eig.vectors[k * n + j] * eig.vectors[k * n + q];
      assert.ok(Math.abs(dot - (j === q ? 1 : 0)) < 1e-12);
    }
  }
});

for (const [rows, cols] of [
  [40, 12],
  [12, 40],
] as const) {
  test(`truncatedSvd exact [${rows}, ${cols}]: singular values, orthogonality, optimal error`, () => {
    const a = matrixWithSpectrum(rows, cols, SIGMA, 7);
    for (const r of [1, 3, 6, 12]) {
      const svd = truncatedSvd(a, rows, cols, r);
      assert.equal(svd.exact, true);
      assert.equal(svd.rank, Math.min(r, 12));
      for (let i = 0; i < 12; i++) {
        const want = i < SIGMA.length ? SIGMA[i] : 0;
        assert.ok(Math.abs(svd.singularValues[i] - want) < 1e-7 * SIGMA[0], `sigma_${i} ${svd.singularValues[i]} vs ${want}`);
      }
      const o = maxOrthoDefect(svd);
      assert.ok(o.u < 1e-10 && o.v < 1e-10, `orthogonality u ${o.u} v ${o.v}`);
      // Eckart-Young: the best rank-r error is sqrt of the dropped sigma^2
      const err = reconstructionError(a, svd);
      const best = droppedNorm(SIGMA, r);
      if (best > 0) assert.ok(Math.abs(err - best) <= 1e-6 * best, `r=${r}: error ${err} vs ${best}`);
      else assert.ok(err < 1e-9, `r=${r}: error ${err}`);
    }
  });
}

test('truncatedSvd on float32 values: error equals sqrt(dropped sigma^2) of the stored matrix', () => {
  const a = Float32Array.from(matrixWithSpectrum(50, 16, [8, 4, 2, 1, 0.5, 0.25, 0.125, 0.0625], 3));
  const full = truncatedSvd(a, 50, 16, 16);
  for (const r of [2, 4, 7]) {
    const svd = truncatedSvd(a, 50, 16, r);
    const err = reconstructionError(a, svd);
    const best = droppedNorm(full.singularValues, r);
    assert.ok(Math.abs(err - best) <= 1e-6 * best, `r=${r}: ${err} vs ${best}`);
  }
});

test('truncatedSvd energy: smallest rank keeping the share of sum sigma^2 (4,3,2,1: energies 16,9,4,1 of 30)', () => {
  const a = matrixWithSpectrum(20, 8, [4, 3, 2, 1], 11);
  const rankFor = (e: number) => truncatedSvd(a, 20, 8, 8, { energy: e }).rank;
  assert.equal(rankFor(0.5), 1); // 16/30 = 0.533
  assert.equal(rankFor(0.55), 2); // 25/30 = 0.833
  assert.equal(rankFor(25 / 30), 2); // exactly reached
  assert.equal(rankFor(0.9), 3); // 29/30 = 0.967
  assert.equal(rankFor(0.99), 4);
  assert.equal(rankFor(1), 4);
  // the rank cap wins over the energy
  assert.equal(truncatedSvd(a, 20, 8, 2, { energy: 0.99 }).rank, 2);
});

test('truncatedSvd exact on a rank-deficient matrix still returns orthonormal U', () => {
  const a = matrixWithSpectrum(30, 10, [3, 2], 5);
  const svd = truncatedSvd(a, 30, 10, 5);
  assert.equal(svd.rank, 5);
  const o = maxOrthoDefect(svd);
  assert.ok(o.u < 1e-10 && o.v < 1e-10, `u ${o.u} v ${o.v}`);
  assert.ok(reconstructionError(a, svd) < 1e-9);
});

test('truncatedSvd randomized: exact low rank recovered; decaying spectrum near optimal', () => {
  const rows = 420;
  const cols = 400;
  const low = Array.from({ length: 12 }, (_, i) => 12 - i);
  const a = matrixWithSpectrum(rows, cols, low, 21);
  const svd = truncatedSvd(a, rows, cols, 12, { method: 'randomized' });
  assert.equal(svd.method, 'randomized-svd');
  for (let i = 0; i < 12; i++) assert.ok(Math.abs(svd.s[i] - low[i]) < 1e-9 * low[0], `sigma_${i} ${svd.s[i]}`);
  const o = maxOrthoDefect(svd);
  assert.ok(o.u < 1e-9 && o.v < 1e-9, `u ${o.u} v ${o.v}`);
  assert.ok(reconstructionError(a, svd) < 1e-8);

  const decay = Array.from({ length: 60 }, (_, i) => 0.85 ** i);
  const b = matrixWithSpectrum(rows, cols, decay, 23);
  const r = 10;
  const approx = truncatedSvd(b, rows, cols, r, { method: 'randomized' });
  const best = droppedNorm(decay, r);
  const err = reconstructionError(b, approx);
  assert.ok(err >= best * (1 - 1e-9) && err <= best * 1.01, `randomized error ${err} vs optimal ${best}`);
  // with an energy target the sketch widens until the target is reached
  const e = truncatedSvd(b, rows, cols, 400, { method: 'randomized', energy: 0.99 });
  let total = 0;
  for (const s of decay) total += s * s;
  let acc = 0;
  let want = 0;
  while (acc < 0.99 * total) acc += decay[want++] ** 2;
  assert.equal(e.rank, want);
});

test('GramAccumulator streamed in chunks gives the same spectrum as the whole matrix', () => {
  const a = Float32Array.from(matrixWithSpectrum(64, 6, [5, 2, 1, 0.3], 9));
  const acc = new GramAccumulator(6);
  for (let r = 0; r < 64; r += 10) acc.addRows(a.subarray(r * 6, Math.min(64, r + 10) * 6));
  assert.equal(acc.rows, 64);
  const g = svdFromGram(acc.gram(), 6);
  const direct = truncatedSvd(a, 64, 6, 6);
  // same Gram up to summation order; the rank-4 matrix's two zero singular values are sqrt(rounding)
  const whole = new GramAccumulator(6);
  whole.addRows(a);
  const g1 = acc.gram();
  const g2 = whole.gram();
  for (let i = 0; i < 36; i++) assert.ok(Math.abs(g1[i] - g2[i]) < 1e-12 * 25, `gram[${i}]`);
  for (let i = 0; i < 6; i++) assert.ok(Math.abs(g.singularValues[i] - direct.singularValues[i]) < 1e-6, `sigma_${i}`);
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(g.singularValues[i] - [5, 2, 1, 0.3][i]) < 1e-6, `sigma_${i} ${g.singularValues[i]}`);
  let ss = 0;
  for (const x of a) ss += x * x;
  assert.ok(Math.abs(acc.sumSquares - ss) < 1e-9 * ss);
  assert.throws(() => acc.addRows(new Float32Array(5)), /whole rows/);
});

test('truncatedSvd rejects bad arguments', () => {
  assert.throws(() => truncatedSvd(new Float32Array(6), 2, 4, 1), /6 values/);
  assert.throws(() => truncatedSvd(new Float32Array(6), 2, 3, 0), /rank/);
  assert.throws(() => truncatedSvd(new Float32Array(6), 2, 3, 1, { energy: 1.5 }), /energy/);
});
