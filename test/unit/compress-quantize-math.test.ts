import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantizeAffine, quantizeColumnsInt8, quantizeRowsInt8, toFloat16 } from '../../src/core/compress/quantize-math.js';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../src/core/model/tensor-data.js';

// [3, 4]: a normal row, a zero row, a row whose absmax is 2 (no value sits on a .5 tie)
const TABLE = [1, -0.6, 0.25, 0, 0, 0, 0, 0, -2, 1.2, 0.5, 2];

test('int8 per-row: exact scales and integers of a hand-made table, zero row exact', () => {
  const r = quantizeRowsInt8(TABLE, 3, 4);
  assert.deepEqual(Array.from(r.scales), [Math.fround(1 / 127), 0, Math.fround(2 / 127)]);
  // 1/(1/127)=127, -0.6*127=-76.2, 0.25*127=31.75; row 2: -127, 1.2*63.5=76.2, 0.5*63.5=31.75, 127
  assert.deepEqual(Array.from(r.q), [127, -76, 32, 0, 0, 0, 0, 0, -127, 76, 32, 127]);
  assert.equal(r.scaleBits, undefined);
  // worst element: 0.25 vs 32/127*2... row 2 element 0.5: |0.5 - 32*2/127| = 0.00394
  const s2 = Math.fround(2 / 127);
  assert.ok(Math.abs(r.maxAbsError - Math.abs(0.5 - Math.fround(32 * s2))) < 1e-7);
});

test('int8 per-row with float16 scales: integers come from the rounded scale', () => {
  const r = quantizeRowsInt8(TABLE, 3, 4, 127, true);
  assert.ok(r.scaleBits);
  assert.deepEqual(Array.from(r.scaleBits), [float32ToFloat16Bits(1 / 127), 0, float32ToFloat16Bits(2 / 127)]);
  const s0 = float16BitsToFloat32(float32ToFloat16Bits(1 / 127));
  assert.equal(r.scales[0], s0);
  assert.equal(r.q[1], Math.round(-0.6 / s0));
  for (const q of r.q) assert.ok(Math.abs(q) <= 127);
  // a scale below float16's normal range falls back to float32 scales
  const tiny = quantizeRowsInt8([1e-4, -5e-5, 1, 0.5], 2, 2, 127, true);
  assert.equal(tiny.scaleBits, undefined);
  assert.equal(tiny.scales[0], Math.fround(1e-4 / 127));
});

test('int8 per-output-channel, 7-bit: range [-63, 63], [out, in] input laid out [in, out]', () => {
  // Gemm transB=1 kernel [out=2, in=3]
  const w = [0.63, -0.315, 0.1, -4, 2, 1];
  const r = quantizeColumnsInt8(w, 2, 3, true, 63);
  assert.equal(r.inDim, 3);
  assert.equal(r.outDim, 2);
  assert.deepEqual(Array.from(r.scales), [Math.fround(0.63 / 63), Math.fround(4 / 63)]);
  // column o of the result is row o of the input
  assert.deepEqual(Array.from(r.q), [63, -63, Math.round(-0.315 / Math.fround(0.01)), Math.round(2 / Math.fround(4 / 63)), 10, Math.round(1 / Math.fround(4 / 63))]);
  for (const q of r.q) assert.ok(q >= -64 && q <= 63);
  // the same matrix stored [in, out] gives the same result
  const wt = [0.63, -4, -0.315, 2, 0.1, 1];
  assert.deepEqual(Array.from(quantizeColumnsInt8(wt, 3, 2, false, 63).q), Array.from(r.q));
  // 8 bits uses the full range
  assert.equal(Math.max(...quantizeColumnsInt8(wt, 3, 2, false).q), 127);
  assert.throws(() => quantizeColumnsInt8([NaN, 1], 1, 2, false), /NaN/);
});

test('affine uint8: zero stays exactly zero, TF.js reconstruction error within one step', () => {
  const v = [-1, 0, 0.5, 3];
  const a = quantizeAffine(v, 8);
  const scale = 4 / 255;
  assert.equal(a.scale, scale);
  assert.equal(a.min, -64 * scale); // round(1 / scale) = round(63.75) = 64
  assert.equal(a.q[1], 64);
  assert.equal(Math.fround(a.min) + Math.fround(a.q[1] * Math.fround(a.scale)), 0);
  assert.deepEqual(Array.from(a.q), [0, 64, Math.round((0.5 - a.min) / scale), 255]);
  assert.ok(a.maxAbsError <= scale);
  const a16 = quantizeAffine(v, 16);
  assert.ok(a16.q instanceof Uint16Array);
  assert.ok(a16.maxAbsError <= 4 / 65535);
  // all-zero tensors are exact
  assert.deepEqual(quantizeAffine([0, 0], 8), { q: new Uint8Array(2), scale: 1, min: 0, maxAbsError: 0 });
});

test('float16: bits, error, overflow counted', () => {
  const h = toFloat16([1, 0.1, 70000]);
  assert.equal(h.bits[0], 0x3c00);
  assert.equal(h.overflow, 1);
  assert.ok(Math.abs(h.maxAbsError - Math.abs(0.1 - float16BitsToFloat32(h.bits[1]))) < 1e-12);
});
