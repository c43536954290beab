import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DType, ModelTensor, QuantizationInfo, TensorSource } from '../../src/core/model/ir.js';
import {
  float16BitsToFloat32,
  float32ToFloat16Bits,
  forEachTensorChunk,
  readTensorBytes,
  readTensorFloat32,
  tensorElementCount,
} from '../../src/core/model/tensor-data.js';

function tensor(shape: number[], storedDtype: DType, source: TensorSource, quantization?: QuantizationInfo): ModelTensor {
  return {
    name: 't',
    shape,
    dtype: 'float32',
    storage: { dtype: storedDtype, byteLength: 0, source, location: 'test', quantization },
    role: 'weight',
    layer: 'l',
    trainable: true,
    consumers: [],
    origin: 'test',
  };
}

/** Puts `payload` at an odd offset of a bigger buffer, as ONNX raw_data usually is. */
function unaligned(payload: Uint8Array): Uint8Array {
  const big = new Uint8Array(payload.byteLength + 3);
  big.set(payload, 3);
  return big.subarray(3);
}

test('float32 at an unaligned offset decodes exactly', async () => {
  const vals = new Float32Array([1.5, -2.25, 0, 3e-8, -0]);
  const t = tensor([5], 'float32', { kind: 'bytes', bytes: unaligned(new Uint8Array(vals.buffer)) });
  assert.equal(t.storage.source.kind === 'bytes' && t.storage.source.bytes.byteOffset % 4 !== 0, true);
  assert.deepEqual(Array.from(await readTensorFloat32(t)), Array.from(vals));
});

test('int8, uint16, int64, float64 and bfloat16 decode exactly', async () => {
  const i8 = new Int8Array([-128, -1, 0, 127]);
  assert.deepEqual(Array.from(await readTensorFloat32(tensor([4], 'int8', { kind: 'bytes', bytes: unaligned(new Uint8Array(i8.buffer)) }))), [-128, -1, 0, 127]);
  const u16 = new Uint16Array([0, 1, 65535]);
  assert.deepEqual(Array.from(await readTensorFloat32(tensor([3], 'uint16', { kind: 'bytes', bytes: unaligned(new Uint8Array(u16.buffer)) }))), [0, 1, 65535]);
  const i64 = new BigInt64Array([-5n, 7n, 1n << 40n]);
  assert.deepEqual(Array.from(await readTensorFloat32(tensor([3], 'int64', { kind: 'bytes', bytes: unaligned(new Uint8Array(i64.buffer)) }))), [-5, 7, 2 ** 40]);
  const f64 = new Float64Array([0.5, -1e10]);
  assert.deepEqual(Array.from(await readTensorFloat32(tensor([2], 'float64', { kind: 'bytes', bytes: unaligned(new Uint8Array(f64.buffer)) }))), [0.5, -1e10]);
  // bfloat16 1.0 = 0x3f80, -2.0 = 0xc000
  const bf = new Uint16Array([0x3f80, 0xc000]);
  assert.deepEqual(Array.from(await readTensorFloat32(tensor([2], 'bfloat16', { kind: 'bytes', bytes: new Uint8Array(bf.buffer) }))), [1, -2]);
});

test('float16 conversions are exact both ways, round to nearest even', () => {
  assert.equal(float16BitsToFloat32(0x3c00), 1);
  assert.equal(float16BitsToFloat32(0xc000), -2);
  assert.equal(float16BitsToFloat32(0x0001), 2 ** -24); // smallest subnormal
  assert.equal(float16BitsToFloat32(0x7bff), 65504); // largest normal
  assert.equal(float16BitsToFloat32(0x7c00), Infinity);
  assert.ok(Number.isNaN(float16BitsToFloat32(0x7e00)));
  for (let h = 0; h < 0x7c00; h++) assert.equal(float32ToFloat16Bits(float16BitsToFloat32(h)), h);
  assert.equal(float32ToFloat16Bits(1 / 3), 0x3555);
  assert.equal(float32ToFloat16Bits(65520), 0x7c00); // rounds up to Inf
  assert.equal(float32ToFloat16Bits(1 + 2 ** -11), 0x3c00); // tie -> even
  assert.equal(float32ToFloat16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
  assert.equal(float32ToFloat16Bits(2 ** -25), 0); // tie at the smallest subnormal -> even (0)
  assert.equal(float32ToFloat16Bits(-0), 0x8000);
});

test('uint8 / uint16 affine and float16 quantization dequantize like TF.js', async () => {
  const q8 = new Uint8Array([0, 1, 255]);
  const v8 = await readTensorFloat32(tensor([3], 'uint8', { kind: 'bytes', bytes: q8 }, { dtype: 'uint8', scale: 0.5, min: -1 }));
  assert.deepEqual(Array.from(v8), [-1, -0.5, 126.5]);
  const q16 = new Uint16Array([0, 3]);
  const v16 = await readTensorFloat32(tensor([2], 'uint16', { kind: 'bytes', bytes: unaligned(new Uint8Array(q16.buffer)) }, { dtype: 'uint16', scale: 0.25, min: 1 }));
  assert.deepEqual(Array.from(v16), [1, 1.75]);
  const qi = await readTensorFloat32(tensor([2], 'uint8', { kind: 'bytes', bytes: new Uint8Array([1, 2]) }, { dtype: 'uint8', scale: 0.3, min: 0.1, originalDtype: 'int32' }));
  assert.deepEqual(Array.from(qi), [0, 1]); // round(0.4)=0, round(0.7)=1
  const h = new Uint16Array([0x3c00, 0xbc00]);
  assert.deepEqual(Array.from(await readTensorFloat32(tensor([2], 'float16', { kind: 'bytes', bytes: new Uint8Array(h.buffer) }, { dtype: 'float16' }))), [1, -1]);
});

test('file sources stream in chunks and match the whole read', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-td-'));
  const vals = new Float32Array(1000).map((_, i) => i * 0.5 - 100);
  const file = join(dir, 'w.bin');
  const pad = new Uint8Array(7);
  writeFileSync(file, Buffer.concat([pad, new Uint8Array(vals.buffer)]));
  const t = tensor([100, 10], 'float32', { kind: 'file', path: file, offset: 7, length: 4000 });
  const seen: number[] = [];
  const firsts: number[] = [];
  await forEachTensorChunk(t, 300, (chunk, first) => {
    firsts.push(first);
    seen.push(...chunk);
  });
  assert.deepEqual(firsts, [0, 300, 600, 900]);
  assert.deepEqual(seen, Array.from(vals));
  assert.deepEqual(Array.from(await readTensorFloat32(t)), Array.from(vals));
  assert.deepEqual(await readTensorBytes(t), new Uint8Array(vals.buffer));
});

test('a file shorter than the tensor gives a clear truncation error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-td-'));
  const file = join(dir, 'short.bin');
  writeFileSync(file, new Uint8Array(10));
  const t = tensor([4], 'float32', { kind: 'file', path: file, offset: 0, length: 16 });
  await assert.rejects(readTensorFloat32(t), (e: Error) => e.message.includes('short.bin') && e.message.includes('truncated'));
});

test('a byte length that disagrees with the shape names the tensor', async () => {
  const t = tensor([3], 'float32', { kind: 'bytes', bytes: new Uint8Array(8) });
  await assert.rejects(readTensorFloat32(t), /tensor t \[3\] float32 needs 12 bytes, the file holds 8/);
});

test('typed values (ONNX float_data / int64_data) decode and re-encode', async () => {
  const t = tensor([3], 'int64', { kind: 'values', values: [1n, -2n, 3n] });
  assert.deepEqual(Array.from(await readTensorFloat32(t)), [1, -2, 3]);
  assert.deepEqual(Array.from(new BigInt64Array((await readTensorBytes(t)).buffer)), [1n, -2n, 3n]);
});

test('element counts refuse negative, fractional and absurd dims', () => {
  assert.equal(tensorElementCount([]), 1);
  assert.equal(tensorElementCount([2, 0, 5]), 0);
  assert.throws(() => tensorElementCount([-1, 4]), /invalid dimension -1/);
  assert.throws(() => tensorElementCount([1.5]), /invalid dimension 1.5/);
  assert.throws(() => tensorElementCount([1e6, 1e6, 1e6]), /more than 2\^40/);
});

test('file-parts sources read across several files in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-td-'));
  const vals = new Float32Array([1, 2, 3, 4, 5, 6]);
  const bytes = new Uint8Array(vals.buffer);
  // 24 bytes cut at 10 and 17 (inside floats), each part at an odd offset of its file
  writeFileSync(join(dir, 'a.bin'), Buffer.concat([new Uint8Array(3), bytes.subarray(0, 10)]));
  writeFileSync(join(dir, 'b.bin'), Buffer.concat([new Uint8Array(1), bytes.subarray(10, 17)]));
  writeFileSync(join(dir, 'c.bin'), bytes.subarray(17));
  const t = tensor([2, 3], 'float32', {
    kind: 'file-parts',
    parts: [
      { path: join(dir, 'a.bin'), offset: 3, length: 10 },
      { path: join(dir, 'b.bin'), offset: 1, length: 7 },
      { path: join(dir, 'c.bin'), offset: 0, length: 7 },
    ],
  });
  assert.deepEqual(Array.from(await readTensorFloat32(t)), [1, 2, 3, 4, 5, 6]);
  const chunks: number[][] = [];
  await forEachTensorChunk(t, 4, (c) => {
    chunks.push(Array.from(c));
  });
  assert.deepEqual(chunks, [[1, 2, 3, 4], [5, 6]]);
  assert.deepEqual(await readTensorBytes(t), bytes);
});
