import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { analyzeTensor, ERROR_SAMPLE_MIN_ELEMENTS, ERROR_SAMPLE_ROWS } from '../../src/core/analysis/analyze-model.js';
import { STATS_KERNEL_WAT_SHA256 } from '../../src/core/analysis/kernels/stats-kernel-wasm.js';
import { statsWasmKernel, TensorStats, TensorStatsAccumulator, TensorStatsConfig, wasmKernelUsable } from '../../src/core/analysis/tensor-stats.js';
import { StatsHelperThread } from '../../src/core/analysis/stats-helper-thread.js';
import { ModelTensor } from '../../src/core/model/ir.js';
import { forEachTensorChunk } from '../../src/core/model/tensor-data.js';

const REPO = join(__dirname, '..', '..', '..');

test('the WebAssembly kernel runs here, for rows a multiple of 4 long', () => {
  assert.notEqual(statsWasmKernel(), null);
  assert.equal(wasmKernelUsable(64), true);
  assert.equal(wasmKernelUsable(4), true);
  assert.equal(wasmKernelUsable(6), false);
  assert.equal(wasmKernelUsable(1), false);
});

test('the embedded kernel bytes were built from the current .wat source', () => {
  const source = readFileSync(join(REPO, 'src/core/analysis/kernels/stats-kernel.wat'), 'utf8');
  const sha = createHash('sha256').update(source).digest('hex');
  assert.equal(STATS_KERNEL_WAT_SHA256, sha, 'stats-kernel.wat changed: run `node scripts/build-kernels.mjs`');
});

/** values of every kind the kernel must tell apart, from a seed */
function mixedValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  // the high bits: an LCG's low bits repeat with a short period
  const next = () => (s = (s * 1103515245 + 12345) >>> 0) >>> 8;
  const special = [0, -0, 1e-7, -1e-7, 1e-3, 2 ** -20, -(2 ** -24), 3e-8, 65504, 65519, 65520, -1e6, 1.5e-45, NaN, Infinity, -Infinity];
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const k = next() % 16;
    if (k === 0) v[i] = special[next() % special.length];
    else if (k < 4) v[i] = 0;
    else v[i] = (next() / 2 ** 24 - 0.5) * (k < 8 ? 2e-3 : 3);
  }
  return v;
}

function run(v: Float32Array, cfg: TensorStatsConfig, chunkRows: number): TensorStats {
  const acc = new TensorStatsAccumulator(cfg);
  const d = cfg.rowLength;
  for (let r = 0; r < cfg.rows; r += chunkRows) acc.add(v.slice(r * d, Math.min(cfg.rows, r + chunkRows) * d), r * d);
  return acc.finish();
}

function close(a: number, b: number, rel: number, what: string): void {
  assert.ok(Object.is(a, b) || Math.abs(a - b) <= rel * Math.max(1, Math.abs(a), Math.abs(b)), `${what}: ${a} vs ${b}`);
}

test('the WebAssembly kernel gives the JS loop figures: counts bit-identical, sums equal within rounding', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 60 }),
      fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer(),
      (d4, rows, chunkRows, errorRowEvery, seed) => {
        const d = 4 * d4;
        const v = mixedValues(rows * d, seed);
        const cfg = { rowLength: d, rows, epsilon: 1e-6, keepRowNorms: true, int8PerRow: true, maxTileCells: 3, gramEvery: 2, columnAbsMax: true, errorRowEvery };
        const w = run(v, { ...cfg, kernel: 'auto' }, chunkRows);
        const j = run(v, { ...cfg, kernel: 'js' }, chunkRows);
        for (const k of ['count', 'finite', 'nonFinite', 'zeros', 'nearZeros', 'zeroRows', 'min', 'max', 'absMax'] as const) assert.ok(Object.is(w[k], j[k]), `${k}: ${w[k]} vs ${j[k]}`);
        assert.deepEqual(Array.from(w.histogram), Array.from(j.histogram));
        // errors: the kernel's float64 operations and sum order are roundTripRowErrors' (4 partial sums): the same bits
        assert.deepEqual(w.float16, j.float16);
        assert.deepEqual(w.int8PerRow, j.int8PerRow);
        assert.deepEqual(w.errorSample && { ...w.errorSample, sumSquares: 0 }, j.errorSample && { ...j.errorSample, sumSquares: 0 });
        if (w.errorSample) close(w.errorSample.sumSquares, j.errorSample!.sumSquares, 1e-12, 'errorSample.sumSquares');
        assert.deepEqual(Array.from(w.tiles!.zeros), Array.from(j.tiles!.zeros));
        assert.deepEqual(Array.from(w.tiles!.counts), Array.from(j.tiles!.counts));
        w.tiles!.sumAbs.forEach((x, i) => close(x, j.tiles!.sumAbs[i], 1e-12, `tiles.sumAbs[${i}]`));
        for (const k of ['mean', 'std', 'absMean', 'sumSquares'] as const) close(w[k], j[k], 1e-12, k);
        // a row norm is a float32 square root of a float64 sum added in another order: the last bit may differ
        w.rowNorms!.forEach((x, i) => close(x, j.rowNorms![i], 2 ** -23, `rowNorms[${i}]`));
        assert.deepEqual(Array.from(w.columnAbsMax!), Array.from(j.columnAbsMax!));
        assert.deepEqual(w.gram!.rowsUsed, j.gram!.rowsUsed);
        // the same products added in the same row order, entry by entry
        assert.deepEqual(Array.from(w.gram!.matrix), Array.from(j.gram!.matrix));
      },
    ),
    { numRuns: 200 },
  );
});

test('NaN and Infinity in a row: the kernel leaves them out of zeros, histogram, extremes and column zeros', () => {
  const v = new Float32Array([NaN, 0, -2, 1, 0, Infinity, 3, 0.5]);
  const s = run(v, { rowLength: 4, rows: 2, epsilon: 1e-6, maxTileCells: 4, kernel: 'auto' }, 2);
  assert.equal(s.nonFinite, 2);
  assert.equal(s.zeros, 2);
  assert.equal(s.nearZeros, 2);
  assert.equal(s.histogram.reduce((a, b) => a + b, 0), 6);
  assert.equal(s.min, -2);
  assert.equal(s.max, 3);
  assert.deepEqual(Array.from(s.tiles!.zeros), [0, 1, 0, 0, 1, 0, 0, 0]);
  assert.deepEqual(Array.from(s.tiles!.sumAbs), [0, 0, 2, 1, 0, 0, 3, 0.5]);
});

test('errors on a row sample: every n-th row exactly, the other figures untouched', () => {
  const d = 8;
  const rows = 50;
  const v = mixedValues(rows * d, 5).map((x) => (Number.isFinite(x) ? x : 1));
  for (const kernel of ['auto', 'js'] as const) {
    const sampled = run(v, { rowLength: d, rows, epsilon: 1e-6, int8PerRow: true, errorRowEvery: 3, kernel }, 7);
    // the rows 0, 3, 6, ... on their own, measured exactly
    const picked = new Float32Array(Math.ceil(rows / 3) * d);
    for (let r = 0, k = 0; r < rows; r += 3, k++) picked.set(v.subarray(r * d, (r + 1) * d), k * d);
    const ref = run(picked, { rowLength: d, rows: picked.length / d, epsilon: 1e-6, int8PerRow: true, kernel }, 1000);
    assert.deepEqual({ ...sampled.errorSample!, sumSquares: 0 }, { rows: 17, finite: ref.finite, sumSquares: 0 });
    close(sampled.errorSample!.sumSquares, ref.sumSquares, 1e-12, 'errorSample.sumSquares');
    assert.deepEqual(sampled.float16, { ...ref.float16, overflow: sampled.float16.overflow });
    assert.deepEqual(sampled.int8PerRow, ref.int8PerRow);
    const full = run(v, { rowLength: d, rows, epsilon: 1e-6, int8PerRow: true, kernel }, 7);
    assert.equal(full.errorSample, undefined);
    assert.equal(sampled.float16.overflow, full.float16.overflow); // counted on every value
    assert.deepEqual({ ...sampled, float16: null, int8PerRow: null, errorSample: null }, { ...full, float16: null, int8PerRow: null, errorSample: null });
  }
});

test('a huge embedding table gets sampled error figures, labelled with the sample size', async () => {
  const dim = 8;
  const rows = ERROR_SAMPLE_MIN_ELEMENTS / dim + 16;
  const v = new Float32Array(rows * dim);
  for (let i = 0; i < v.length; i++) v[i] = ((i * 7919) % 2001) / 1000 - 1;
  const t: ModelTensor = {
    name: 'items/table',
    shape: [rows, dim],
    dtype: 'float32',
    storage: { dtype: 'float32', byteLength: v.byteLength, source: { kind: 'bytes', bytes: new Uint8Array(v.buffer) }, location: 'test' },
    role: 'embedding',
    layer: 'items',
    trainable: true,
    consumers: ['Gather'],
    origin: 'test',
  };
  const r = await analyzeTensor(t, { format: 'onnx', epsilon: 1e-6, spectrum: false, maxTiles: 16 });
  const every = Math.floor(rows / ERROR_SAMPLE_ROWS);
  assert.equal(r.quantError!.sampledRows, Math.ceil(rows / every));
  assert.ok(r.quantError!.sampledRows! >= ERROR_SAMPLE_ROWS);
  assert.equal(r.quantError!.int8.granularity, 'per-row');
  // values are multiples of 1/1000 in [-1, 1]: the float16 error is at most half a float16 ulp of 1
  assert.ok(r.quantError!.float16.maxAbs! > 0 && r.quantError!.float16.maxAbs! <= 2 ** -12);
  assert.equal(r.params, rows * dim);
});

test('the WebAssembly kernel split with the helper thread equals the JS loop on one thread', async () => {
  const helper = new StatsHelperThread();
  try {
    for (const [rows, d, every] of [[301, 8, 1], [1000, 16, 3], [77, 4, 2]]) {
      const v = mixedValues(rows * d, rows + d);
      const cfg = { rowLength: d, rows, epsilon: 1e-6, keepRowNorms: true, int8PerRow: true, maxTileCells: 5, gramEvery: 3, errorRowEvery: every };
      const j = run(v, { ...cfg, kernel: 'js' }, 1000);
      const w = run(v, { ...cfg, kernel: 'auto', helper, maxChunkElements: 40 * d, minSplitRows: 2 }, 40);
      for (const k of ['count', 'finite', 'nonFinite', 'zeros', 'nearZeros', 'zeroRows', 'min', 'max'] as const) assert.ok(Object.is(w[k], j[k]), `${k}: ${w[k]} vs ${j[k]}`);
      assert.deepEqual(Array.from(w.histogram), Array.from(j.histogram));
      assert.deepEqual(Array.from(w.tiles!.zeros), Array.from(j.tiles!.zeros));
      assert.equal(w.float16.overflow, j.float16.overflow);
      assert.equal(w.float16.maxAbs, j.float16.maxAbs);
      assert.equal(w.int8PerRow!.maxAbs, j.int8PerRow!.maxAbs);
      assert.deepEqual({ ...w.errorSample, sumSquares: 0 }, { ...j.errorSample, sumSquares: 0 });
      close(w.float16.sumSq, j.float16.sumSq, 1e-12, 'float16.sumSq');
      close(w.int8PerRow!.sumSq, j.int8PerRow!.sumSq, 1e-12, 'int8.sumSq');
      for (const k of ['mean', 'std', 'absMean', 'sumSquares'] as const) close(w[k], j[k], 1e-12, k);
      w.tiles!.sumAbs.forEach((x, i) => close(x, j.tiles!.sumAbs[i], 1e-12, `tiles.sumAbs[${i}]`));
      w.rowNorms!.forEach((x, i) => close(x, j.rowNorms![i], 2 ** -23, `rowNorms[${i}]`));
    }
  } finally {
    await helper.close();
  }
});

test('a table read from disk in several chunks (read overlapped with the statistics) gives the in-memory report', async () => {
  const rows = 40000;
  const dim = 32; // 1.28M elements: two chunks
  const v = mixedValues(rows * dim, 11).map((x) => (Number.isFinite(x) ? x : 0.25));
  const dir = mkdtempSync(join(tmpdir(), 'prunescope-overlap-'));
  const file = join(dir, 'table.bin');
  const pad = 13; // an unaligned offset, as in real external data
  const bytes = new Uint8Array(pad + v.byteLength);
  bytes.set(new Uint8Array(v.buffer), pad);
  writeFileSync(file, bytes);
  const base = {
    name: 'items/table',
    shape: [rows, dim],
    dtype: 'float32',
    role: 'embedding',
    layer: 'items',
    trainable: true,
    consumers: ['Gather'],
    origin: 'test',
  } as const;
  const inMemory: ModelTensor = { ...base, shape: [rows, dim], consumers: ['Gather'], storage: { dtype: 'float32', byteLength: v.byteLength, source: { kind: 'bytes', bytes: new Uint8Array(v.buffer) }, location: 'test' } };
  const onDisk: ModelTensor = { ...inMemory, storage: { ...inMemory.storage, source: { kind: 'file', path: file, offset: pad, length: v.byteLength } } };
  const ctx = { format: 'onnx', epsilon: 1e-6, spectrum: true, maxTiles: 64 };
  let done = 0;
  const a = await analyzeTensor(onDisk, { ...ctx, onElements: (n) => (done += n) });
  const b = await analyzeTensor(inMemory, ctx);
  assert.equal(done, rows * dim);
  assert.deepEqual(a, b);
  const aborted = new AbortController();
  aborted.abort();
  await assert.rejects(analyzeTensor(onDisk, { ...ctx, signal: aborted.signal }), /cancel|abort/i);
});

test('chunks read with several reads in flight (file parts, unaligned) arrive whole and in order; a short file is an error', async () => {
  const v = Float32Array.from({ length: 10007 }, (_, i) => i * 0.5 - 7);
  const dir = mkdtempSync(join(tmpdir(), 'prunescope-inflight-'));
  const bytes = new Uint8Array(v.buffer);
  const a = join(dir, 'a.bin');
  const b = join(dir, 'b.bin');
  writeFileSync(a, Buffer.concat([Buffer.alloc(3), Buffer.from(bytes.subarray(0, 4001 * 4 + 2))]));
  writeFileSync(b, Buffer.concat([Buffer.alloc(5), Buffer.from(bytes.subarray(4001 * 4 + 2))]));
  const t: ModelTensor = {
    name: 't',
    shape: [v.length],
    dtype: 'float32',
    storage: {
      dtype: 'float32',
      byteLength: v.byteLength,
      source: { kind: 'file-parts', parts: [{ path: a, offset: 3, length: 4001 * 4 + 2 }, { path: b, offset: 5, length: v.byteLength - 4001 * 4 - 2 }] },
      location: 'test',
    },
    role: 'weight',
    layer: 'l',
    trainable: true,
    consumers: [],
    origin: 'test',
  };
  for (const inFlight of [1, 2, 3, 7]) {
    const got = new Float32Array(v.length);
    const firsts: number[] = [];
    await forEachTensorChunk(
      t,
      1000,
      async (chunk, first) => {
        firsts.push(first);
        await new Promise((r) => setImmediate(r));
        got.set(chunk, first);
      },
      { readAhead: true, inFlight },
    );
    assert.deepEqual(firsts, Array.from({ length: 11 }, (_, i) => i * 1000));
    assert.deepEqual(got, v);
  }
  writeFileSync(b, Buffer.alloc(5 + 100)); // now too short
  await assert.rejects(forEachTensorChunk(t, 1000, () => undefined, { readAhead: true, inFlight: 3 }), /truncated/);
});
