import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exactSpectrum, gramSamplingStep, randomizedSpectrum, rankForEnergy, spectrumFromGram, symmetricEigenvalues } from '../../src/core/analysis/spectrum.js';
import { computeTensorStats } from '../../src/core/analysis/tensor-stats.js';
import { symmetricEigenvaluesOnly } from '../../src/core/analysis/linalg.js';
import { privateKernel } from '../../src/core/analysis/private-kernel.js';

/** Q R for a rotation R in the (i, j) plane of an n x n identity */
function rotation(n: number, i: number, j: number, angle: number): number[][] {
  const m: number[][] = Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => (r === c ? 1 : 0)));
  m[i][i] = Math.cos(angle);
  m[j][j] = Math.cos(angle);
  m[i][j] = -Math.sin(angle);
  m[j][i] = Math.sin(angle);
  return m;
}
function matmul(a: number[][], b: number[][]): number[][] {
  return a.map((row) => b[0].map((_, c) => row.reduce((s, x, k) => s + x * b[k][c], 0)));
}
function flat(m: number[][]): Float32Array {
  return Float32Array.from(m.flat());
}
function close(a: number, b: number, tol: number): void {
  assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
}

test('symmetric eigenvalues of a known matrix', () => {
  // [[2,1],[1,2]] has eigenvalues 3 and 1
  const ev = symmetricEigenvalues(Float64Array.from([2, 1, 1, 2]), 2);
  close(ev[0], 3, 1e-14);
  close(ev[1], 1, 1e-14);
});

test('spectrum of diag(3,2,1) rotated on both sides is 3, 2, 1', () => {
  const u = matmul(rotation(3, 0, 1, 0.7), rotation(3, 1, 2, -0.4));
  const v = matmul(rotation(3, 0, 2, 1.1), rotation(3, 0, 1, 0.3));
  const vt = v[0].map((_, c) => v.map((row) => row[c]));
  const a = matmul(matmul(u, [[3, 0, 0], [0, 2, 0], [0, 0, 1]]), vt);
  const s = exactSpectrum(flat(a), 3, 3);
  assert.equal(s.exact, true);
  assert.equal(s.fullRank, 3);
  close(s.singularValues[0], 3, 1e-6);
  close(s.singularValues[1], 2, 1e-6);
  close(s.singularValues[2], 1, 1e-6);
  // energies 9, 4, 1 of 14: 90% needs 3 values (13/14 = 0.93 >= 0.9 at rank 2 -> 2)
  assert.equal(s.rankFor90, 2);
  assert.equal(s.rankFor95, 3);
});

test('a rank-2 matrix keeps 95% of its energy at rank 2, tall and wide, streaming Gram too', () => {
  // rows of a 6 x 4 matrix: combinations of two orthogonal directions
  const p = [1, 1, 0, 0];
  const q = [0, 0, 1, -1];
  const rows = [
    [1, 0],
    [2, 1],
    [0, 3],
    [-1, 1],
    [2, -2],
    [1, 1],
  ].map(([x, y]) => p.map((_, k) => x * p[k] + y * q[k]));
  const tall = exactSpectrum(flat(rows), 6, 4);
  assert.equal(tall.rankFor95, 2);
  assert.equal(tall.rankFor99, 2);
  close(tall.singularValues[2], 0, 1e-3);
  const wide = exactSpectrum(flat(rows[0].map((_, c) => rows.map((r) => r[c]))), 4, 6);
  assert.equal(wide.rankFor95, 2);
  close(wide.singularValues[0], tall.singularValues[0], 1e-9);
  close(wide.singularValues[1], tall.singularValues[1], 1e-9);
  // the same through the fused accumulator's Gram of every row
  const st = computeTensorStats(flat(rows), { epsilon: 0, rowLength: 4, gramEvery: 1 });
  const g = spectrumFromGram(st.gram!.matrix, 4, 1, 4, true, 'gram-jacobi');
  assert.equal(g.rankFor95, 2);
  close(g.singularValues[0], tall.singularValues[0], 1e-9);
});

test('randomized SVD finds the top singular values of a 300 x 300 rank-3 matrix', () => {
  const n = 300;
  const a = new Float32Array(n * n);
  const sig = [50, 20, 5];
  const vecs = sig.map((_, k) => {
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = Math.sin((k + 1) * (i + 0.5) * Math.PI / n); // orthogonal sines, norm sqrt(n/2)
    return v;
  });
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = sig.reduce((s, sg, k) => s + (sg * vecs[k][i] * vecs[k][j]) / (n / 2), 0);
  let energy = 0;
  for (const x of a) energy += x * x;
  const s = randomizedSpectrum(a, n, n, energy);
  assert.equal(s.exact, false);
  assert.equal(s.method, 'randomized-svd');
  close(s.singularValues[0], 50, 1e-3);
  close(s.singularValues[1], 20, 1e-3);
  close(s.singularValues[2], 5, 1e-3);
  assert.equal(s.rankFor95, 2); // 2500 + 400 of 2925 = 0.991
  assert.equal(s.rankFor99, 2);
});

test('rank for energy: exact thresholds and values short of the target', () => {
  assert.equal(rankForEnergy([3, 2, 1], 14, 0.9), 2);
  assert.equal(rankForEnergy([1, 1], 2, 1), 2);
  assert.equal(rankForEnergy([1], 10, 0.5), null);
  assert.equal(rankForEnergy([], 0, 0.9), 0);
});

test('Gram sampling keeps all rows of small tables and samples big ones', () => {
  assert.equal(gramSamplingStep(1000, 64), 1);
  assert.ok(gramSamplingStep(2_000_000, 64) > 1);
  assert.ok((2_000_000 / gramSamplingStep(2_000_000, 64)) * 64 * 65 / 2 <= 8 * 1024 * 1024);
});

test('eigenvalues in WebAssembly are the JS ones, bit for bit', () => {
  assert.notEqual(privateKernel(), null);
  let seed = 5;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5;
  const cases: Array<[string, number, (i: number, j: number) => number]> = [
    ['1 x 1', 1, () => 3],
    ['zero', 5, () => 0],
    ['diagonal', 6, (i, j) => (i === j ? i - 2.5 : 0)],
    ['a zero row and column', 7, (i, j) => (i === 3 || j === 3 ? 0 : 1 / (1 + i + j))],
    ['rank 2', 9, (i, j) => (i + 1) * (j + 1) + Math.cos(i) * Math.cos(j)],
    ['tiny and huge entries', 8, (i, j) => (i === j ? 1e150 * (i + 1) : 1e-150)],
  ];
  for (const n of [2, 3, 16, 64, 100]) {
    // a Gram matrix X^T X of random rows (what the spectra see), not symmetrized exactly
    const g = new Float64Array(n * n);
    for (let r = 0; r < n + 7; r++) {
      const x = Array.from({ length: n }, rnd);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) g[i * n + j] += x[i] * x[j];
    }
    cases.push([`gram ${n}`, n, (i, j) => g[i * n + j] * (1 + (i < j ? 1e-15 : 0))]);
  }
  for (const [what, n, at] of cases) {
    const m = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) m[i * n + j] = at(i, j);
    const copy = m.slice();
    const w = symmetricEigenvaluesOnly(m, n);
    const j = symmetricEigenvaluesOnly(m, n, 'js');
    assert.deepEqual(Array.from(w), Array.from(j), what);
    assert.deepEqual(m, copy, `${what}: the input is not modified`);
  }
});
