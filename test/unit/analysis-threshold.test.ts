import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { magnitudeQuantiles, magnitudeThreshold, magnitudeThresholdStreaming } from '../../src/core/analysis/magnitude-select.js';

/** The definition, by sorting: the k-th smallest |w| among non-NaN values, k = floor(s * n). */
function referenceThreshold(values: Float32Array, sparsity: number): number {
  const mags = Float32Array.from(Array.from(values).filter((x) => !Number.isNaN(x)).map(Math.abs)).sort();
  const k = Math.floor(sparsity * mags.length);
  return k === 0 ? -Infinity : mags[k - 1];
}

// values with many ties, zeros of both signs, NaN, infinities, denormals
const valueArb = fc.oneof(
  fc.float(),
  fc.constantFrom(0, -0, 1, -1, 0.5, -0.5, NaN, Infinity, -Infinity, 1e-40, -1e-40, 3.4e38),
  fc.integer({ min: -3, max: 3 }).map((i) => i / 4),
);

test('threshold equals the sort-based reference on random arrays (ties, zeros, -0, NaN)', () => {
  fc.assert(
    fc.property(fc.array(valueArb, { maxLength: 300 }), fc.double({ min: 0, max: 1, noNaN: true }), (xs, s) => {
      const v = Float32Array.from(xs);
      assert.equal(magnitudeThreshold(v, s), referenceThreshold(v, s));
    }),
    { numRuns: 500 },
  );
});

test('threshold semantics on a hand-made array', () => {
  const v = new Float32Array([-0, 0.5, -0.25, 0.25, 1, NaN, -2]);
  // non-NaN magnitudes sorted: 0, 0.25, 0.25, 0.5, 1, 2 (n = 6)
  assert.equal(magnitudeThreshold(v, 0), -Infinity);
  assert.equal(magnitudeThreshold(v, 1 / 6), 0);
  assert.equal(magnitudeThreshold(v, 0.5), 0.25); // k = 3: ties mean 3 weights have |w| <= 0.25
  assert.equal(magnitudeThreshold(v, 0.9), 1); // k = floor(5.4) = 5
  assert.equal(magnitudeThreshold(v, 1), 2);
  assert.equal(magnitudeThreshold(new Float32Array([NaN, NaN]), 1), -Infinity);
  assert.throws(() => magnitudeThreshold(v, 1.5), RangeError);
  assert.throws(() => magnitudeThreshold(v, NaN), RangeError);
});

test('streaming threshold (two passes over chunks) equals the in-memory one', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(valueArb, { minLength: 1, maxLength: 200 }), fc.integer({ min: 1, max: 17 }), fc.double({ min: 0, max: 1, noNaN: true }), async (xs, chunk, s) => {
      const v = Float32Array.from(xs);
      const streamed = await magnitudeThresholdStreaming(async (cb) => {
        for (let i = 0; i < v.length; i += chunk) cb(v.subarray(i, i + chunk));
      }, s);
      assert.equal(streamed, magnitudeThreshold(v, s));
    }),
    { numRuns: 200 },
  );
});

test('quantiles equal nearest-rank quantiles of the sorted values', () => {
  fc.assert(
    fc.property(fc.array(fc.float({ min: 0, max: 1e6, noNaN: true }).map(Math.abs), { minLength: 1, maxLength: 200 }), (xs) => {
      const v = Float32Array.from(xs);
      const qs = [0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1];
      const sorted = Float32Array.from(v).sort();
      const want = qs.map((q) => sorted[Math.min(v.length, Math.max(1, Math.ceil(q * v.length))) - 1]);
      assert.deepEqual(magnitudeQuantiles(v, qs), want);
    }),
  );
});

test('big arrays (the WebAssembly counting passes, several copy blocks) select what sorting selects', () => {
  let s = 99;
  const next = () => (s = (s * 1103515245 + 12345) >>> 0) >>> 8;
  const special = [0, -0, NaN, Infinity, -Infinity, 1e-40, -1e-40, 0.5, -0.5, 3.4e38];
  for (const n of [70001, (1 << 20) + 4099]) {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const k = next() % 8;
      v[i] = k === 0 ? special[next() % special.length] : k < 3 ? (next() % 64) / 16 : (next() / 2 ** 24 - 0.5) * 10;
    }
    const mags = Float32Array.from(Array.from(v).filter((x) => !Number.isNaN(x)).map(Math.abs)).sort();
    for (const sp of [0, 1e-6, 0.1, 0.5, 0.77, 0.999, 1]) {
      const k = Math.floor(sp * mags.length);
      assert.equal(magnitudeThreshold(v, sp), k === 0 ? -Infinity : mags[k - 1], `n ${n} sparsity ${sp}`);
    }
    // 9 ranks (buckets counted in WebAssembly) and 40 ranks (more buckets than it serves: JS)
    for (const qs of [[0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1], Array.from({ length: 40 }, (_, i) => i / 39)]) {
      const abs = v.map(Math.abs);
      const want = qs.map((q) => mags[Math.min(mags.length, Math.max(1, Math.ceil(q * mags.length))) - 1]);
      assert.deepEqual(magnitudeQuantiles(abs, qs), want);
    }
  }
});
