import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { computeTensorStats, errorFigures, Int8ColumnErrorAccumulator, TensorStatsAccumulator } from '../../src/core/analysis/tensor-stats.js';
import { StatsHelperThread } from '../../src/core/analysis/stats-helper-thread.js';
import { compactHistogram, MAX_ROW_HEAT_BUCKETS, summarizeRows, tilesReport } from '../../src/core/analysis/tensor-report.js';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../src/core/model/tensor-data.js';

test('zeros, near-zeros, min/max/mean/std/absMean of a hand-made tensor', () => {
  const v = new Float32Array([0, -0, 1e-7, -2, 3, 0.5]);
  const s = computeTensorStats(v, { epsilon: 1e-6 });
  assert.equal(s.zeros, 2);
  assert.equal(s.nearZeros, 3);
  assert.equal(s.min, -2);
  assert.equal(s.max, 3);
  const xs = Array.from(v);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
  assert.ok(Math.abs(s.mean - mean) < 1e-15);
  assert.ok(Math.abs(s.std - Math.sqrt(variance)) < 1e-15);
  assert.ok(Math.abs(s.absMean - (Math.fround(1e-7) + 5.5) / 6) < 1e-15);
  assert.equal(s.absMax, 3);
  assert.equal(s.sumSquares, 4 + 9 + 0.25 + Math.fround(1e-7) ** 2);
});

test('std stays exact when the mean dwarfs the spread (norm gammas near 1)', () => {
  const v = new Float32Array(1000);
  for (let i = 0; i < v.length; i++) v[i] = 1000 + (i % 2 === 0 ? 0.5 : -0.5);
  const s = computeTensorStats(v, { epsilon: 1e-6, rowLength: 10 });
  assert.equal(s.mean, 1000);
  assert.equal(s.std, 0.5);
});

test('NaN and Infinity are counted apart and excluded from every other figure', () => {
  const s = computeTensorStats(new Float32Array([1, NaN, -Infinity, 3, Infinity]), { epsilon: 1e-6 });
  assert.equal(s.nonFinite, 3);
  assert.equal(s.finite, 2);
  assert.equal(s.min, 1);
  assert.equal(s.max, 3);
  assert.equal(s.mean, 2);
});

test('histogram bins at known magnitudes, 4 bins per octave, zeros apart', () => {
  const s = computeTensorStats(new Float32Array([1, 1.3, 2, 0.5, 0, -1, -0]), { epsilon: 1e-6 });
  const h = compactHistogram(s);
  assert.deepEqual(h.edges, [0.5, 0.625, 0.75, 0.875, 1, 1.25, 1.5, 1.75, 2, 2.5]);
  assert.deepEqual(h.counts, [1, 0, 0, 0, 2, 1, 0, 0, 1]);
  assert.equal(h.zeroCount, 2);
});

test('histogram merges neighbours to at most 64 bins, edges stay bin edges', () => {
  const s = computeTensorStats(new Float32Array([2 ** -20, 1, 2 ** 20]), { epsilon: 0 });
  const h = compactHistogram(s);
  assert.ok(h.counts.length <= 64);
  assert.equal(h.edges.length, h.counts.length + 1);
  assert.equal(h.counts.reduce((a, b) => a + b, 0), 3);
  assert.equal(h.edges[0], 2 ** -20);
  assert.ok(h.edges[h.edges.length - 1] > 2 ** 20);
  for (const e of h.edges) assert.ok(Number.isFinite(e));
});

test('row norms, quantiles, zero and near-zero rows of a small embedding table', () => {
  // rows: [3,4] -> 5, [0,0] -> 0, [0.5,0] -> 0.5, [6,8] -> 10
  const v = new Float32Array([3, 4, 0, 0, 0.5, 0, 6, 8]);
  const s = computeTensorStats(v, { epsilon: 1e-6, rowLength: 2, keepRowNorms: true });
  assert.deepEqual(Array.from(s.rowNorms!), [5, 0, 0.5, 10]);
  assert.equal(s.zeroRows, 1);
  const r = summarizeRows(s.rowNorms!, 2, 1e-6, s.zeroRows);
  assert.deepEqual(r.normQuantiles, { p0: 0, p1: 0, p5: 0, p25: 0, p50: 0.5, p75: 5, p95: 10, p99: 10, p100: 10 });
  assert.equal(r.nearZeroRowNorm, 0.1); // 1% of p95
  assert.equal(r.nearZeroRows, 1);
  assert.equal(r.zeroRows, 1);
  assert.deepEqual(r.rowHeat, [5, 0, 0.5, 10]);
  assert.equal(r.rowsPerBucket, 1);
});

test('row heat is downsampled to at most 4096 buckets of mean norms', () => {
  const norms = new Float32Array(10000);
  for (let i = 0; i < norms.length; i++) norms[i] = i % 3;
  const r = summarizeRows(norms, 8, 1e-6, 0);
  assert.equal(r.rowsPerBucket, 3);
  assert.equal(r.rowHeat.length, 3334);
  assert.equal(r.rowHeat[0], 1);
  assert.equal(r.rowHeat[3333], 0); // the last bucket holds row 9999 alone: 9999 % 3 = 0
});

test('tiles of a 4x4 matrix downsampled to 2x2: mean |w| and zero fraction per cell', () => {
  const v = new Float32Array([1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 5, 0, 0, 0, 0, -6]);
  const s = computeTensorStats(v, { epsilon: 1e-6, rowLength: 4, maxTileCells: 2 });
  const t = tilesReport(s.tiles!);
  assert.deepEqual(t, { rows: 2, cols: 2, cellRows: 2, cellCols: 2, meanAbs: [2.5, 0, 0, 2.75], zeroFrac: [0, 1, 1, 0.5] });
});

test('tiles of a 5x3 matrix into 2x2 cells: the last cells are smaller', () => {
  const v = new Float32Array(15).fill(1);
  v[14] = 0;
  const s = computeTensorStats(v, { epsilon: 1e-6, rowLength: 3, maxTileCells: 2 });
  const t = tilesReport(s.tiles!);
  assert.deepEqual([t.rows, t.cols, t.cellRows, t.cellCols], [2, 2, 3, 2]);
  assert.deepEqual(t.meanAbs, [1, 1, 1, 0.5]); // bottom-right: rows 3-4 x col 2, one zero of two
  assert.deepEqual(t.zeroFrac, [0, 0, 0, 0.5]);
});

test('int8 error of exactly representable values is 0 (per row, per column, per tensor)', () => {
  // every row and column reaches |127| so each scale is exactly 1
  const v = new Float32Array([127, -3, 0, -127, 5, 127, 127, 127, -127]);
  const s = computeTensorStats(v, { epsilon: 1e-6, rowLength: 3, int8PerRow: true, columnAbsMax: true });
  assert.deepEqual(s.int8PerRow, { maxAbs: 0, sumSq: 0 });
  const col = new Int8ColumnErrorAccumulator(s.columnAbsMax!);
  col.add(v, 0);
  assert.deepEqual(col.result(), { maxAbs: 0, sumSq: 0 });
  const whole = new Int8ColumnErrorAccumulator([127]);
  whole.add(v, 0);
  assert.deepEqual(whole.result(), { maxAbs: 0, sumSq: 0 });
});

test('int8 per-row error of a known row', () => {
  // absmax 254 -> scale 2: 1 -> q = round(0.5) -> 0 or 1, either way |error| = 1
  const s = computeTensorStats(new Float32Array([254, 1, 4]), { epsilon: 0, rowLength: 3, int8PerRow: true });
  assert.deepEqual(s.int8PerRow, { maxAbs: 1, sumSq: 1 });
  const f = errorFigures(1, 1, 3, 254 * 254 + 1 + 16);
  assert.equal(f.rmse, Math.sqrt(1 / 3));
  assert.equal(f.relRmse, Math.sqrt(1 / 3) / Math.sqrt((254 * 254 + 17) / 3));
});

test('float16 error of 1/3 equals the true round trip', () => {
  const x = Math.fround(1 / 3);
  const back = float16BitsToFloat32(float32ToFloat16Bits(x));
  const s = computeTensorStats(new Float32Array([x]), { epsilon: 0 });
  assert.equal(s.float16.maxAbs, Math.abs(x - back));
  assert.ok(s.float16.maxAbs > 0);
  assert.equal(s.float16.overflow, 0);
});

test('float16 error matches the reference conversion on random values of every range', () => {
  fc.assert(
    fc.property(fc.array(fc.float({ noNaN: true, noDefaultInfinity: true, min: -60000, max: 60000 }), { minLength: 1, maxLength: 50 }), (xs) => {
      const v = Float32Array.from(xs);
      const s = computeTensorStats(v, { epsilon: 0 });
      let mx = 0;
      let sq = 0;
      for (const x of v) {
        const e = Math.abs(x - float16BitsToFloat32(float32ToFloat16Bits(x)));
        mx = Math.max(mx, e);
        sq += e * e;
      }
      assert.equal(s.float16.maxAbs, mx);
      assert.ok(Math.abs(s.float16.sumSq - sq) <= 1e-12 * sq);
    }),
  );
});

test('float16 overflow is counted (values beyond 65504 round to Infinity)', () => {
  const s = computeTensorStats(new Float32Array([65504, 65519, 65520, -1e6]), { epsilon: 0 });
  assert.equal(s.float16.overflow, 2);
});

function assertClose(a: unknown, b: unknown, path: string): void {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isInteger(a) && Number.isInteger(b) && Math.abs(a) < 2 ** 31) assert.equal(a, b, path);
    else assert.ok(Object.is(a, b) || Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(a), Math.abs(b)), `${path}: ${a} vs ${b}`);
    return;
  }
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    assertClose(Array.from(a as Float64Array), Array.from(b as Float64Array), path);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    assert.equal(a.length, b.length, path);
    a.forEach((x, i) => assertClose(x, b[i], `${path}[${i}]`));
    return;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort(), path);
    for (const k of Object.keys(a)) assertClose((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
    return;
  }
  assert.deepEqual(a, b, path);
}

test('chunked accumulation equals one-shot, for any row-aligned chunking', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 7 }), fc.integer(), (d, rows, chunkRows, seed) => {
      let s = seed >>> 0 || 1;
      const v = new Float32Array(rows * d);
      for (let i = 0; i < v.length; i++) {
        s = (s * 1103515245 + 12345) >>> 0;
        v[i] = s % 5 === 0 ? 0 : (s / 2 ** 32 - 0.5) * 3;
      }
      const cfg = { rowLength: d, rows, epsilon: 1e-3, keepRowNorms: true, int8PerRow: true, maxTileCells: 3, gramEvery: 2, columnAbsMax: true };
      const one = new TensorStatsAccumulator(cfg);
      one.add(v, 0);
      const many = new TensorStatsAccumulator(cfg);
      for (let r = 0; r < rows; r += chunkRows) many.add(v.slice(r * d, Math.min(rows, r + chunkRows) * d), r * d);
      // counts, extremes, histograms, row norms and maxima are exact; float64 sums may differ in
      // the last bits because a chunk boundary regroups the additions
      assertClose(many.finish(), one.finish(), '');
    }),
  );
});

test('a chunk that is not row-aligned is refused', () => {
  const acc = new TensorStatsAccumulator({ rowLength: 4, rows: 2, epsilon: 0 });
  assert.throws(() => acc.add(new Float32Array(3), 0), /not row-aligned/);
});

test('statistics split with the helper thread equal the single-thread ones', async () => {
  const helper = new StatsHelperThread();
  try {
    for (const [rows, d] of [[301, 7], [64, 1], [1000, 16]]) {
      const v = new Float32Array(rows * d);
      let s = 99;
      for (let i = 0; i < v.length; i++) {
        s = (s * 1103515245 + 12345) >>> 0;
        v[i] = s % 4 === 0 ? 0 : (s / 2 ** 32 - 0.5) * (i % 97 === 0 ? 1e5 : 1);
      }
      v[5] = NaN;
      const cfg = { rowLength: d, rows, epsilon: 1e-3, keepRowNorms: true, int8PerRow: true, maxTileCells: 5, gramEvery: 3 };
      const one = new TensorStatsAccumulator(cfg);
      one.add(v, 0);
      const two = new TensorStatsAccumulator({ ...cfg, helper, maxChunkElements: 40 * d, minSplitRows: 2 });
      for (let r = 0; r < rows; r += 40) two.add(v.slice(r * d, Math.min(rows, r + 40) * d), r * d);
      const a = two.finish();
      const b = one.finish();
      assertClose({ ...a, rowNorms: Array.from(a.rowNorms!) }, { ...b, rowNorms: Array.from(b.rowNorms!) }, `[${rows}, ${d}]`);
    }
  } finally {
    await helper.close();
  }
});

test('row summary of a big table (the WebAssembly heat pass, several blocks) equals plain loops', () => {
  let s = 3;
  const next = () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (const n of [70001, 1234567]) {
    const norms = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = next();
      norms[i] = u < 0.2 ? 0 : u < 0.25 ? 1e-9 : u < 0.27 ? NaN : u * (1 + (i % 7));
    }
    const r = summarizeRows(norms, 16, 1e-6, 123);
    const per = Math.max(1, Math.ceil(n / MAX_ROW_HEAT_BUCKETS));
    const heat: number[] = [];
    for (let b = 0; b < n; b += per) {
      let sum = 0;
      for (let i = b; i < Math.min(n, b + per); i++) sum += norms[i];
      const m = sum / (Math.min(n, b + per) - b);
      heat.push(Number.isFinite(m) ? m : 0);
    }
    let near = 0;
    for (let i = 0; i < n; i++) if (norms[i] <= r.nearZeroRowNorm) near++;
    assert.equal(r.rowsPerBucket, per);
    assert.deepEqual(r.rowHeat, heat);
    assert.equal(r.nearZeroRows, near);
    assert.equal(r.zeroRows, 123);
    assert.ok(near > n * 0.2 && near < n * 0.26);
  }
});
