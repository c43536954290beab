import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { installSegmentSumKernels, stockCpuSegmentSumKernel } from '../../src/core/runtime/segment-sum-kernel.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { createRng } from '../../src/core/samples/prng.js';

// Captured before our kernel replaces it, so that ours can be checked against it.
const stock = stockCpuSegmentSumKernel();

function runStock(x: tf.Tensor, ids: tf.Tensor, numSegments: number): Float32Array | Int32Array {
  assert.ok(stock, 'the stock CPU kernel is registered');
  const backend = tf.findBackend('cpu')!;
  const info = stock({ inputs: { x, segmentIds: ids }, backend, attrs: { numSegments } }) as tf.TensorInfo;
  const values = backend.readSync(info.dataId) as Float32Array | Int32Array;
  backend.disposeData(info.dataId);
  return values;
}

function randomCase(seed: number, rows: number, inner: number[], numSegments: number) {
  const rng = createRng(seed);
  const n = rows * inner.reduce((a, b) => a * b, 1);
  const xv = new Float32Array(n);
  for (let i = 0; i < n; i++) xv[i] = rng.normal() * (rng.next() < 0.1 ? 1000 : 1);
  // ids include -1 and numSegments: both must be dropped
  const ids = new Int32Array(rows);
  for (let i = 0; i < rows; i++) ids[i] = rng.int(numSegments + 2) - 1;
  return { xv, ids };
}

test('hand-made case: rows scatter-add into their segments, out-of-range ids are dropped', async () => {
  await initTfjs('cpu');
  installSegmentSumKernels();
  const x = tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]);
  const ids = tf.tensor1d([1, 0, 1, 3], 'int32');
  const y = tf.unsortedSegmentSum(x, ids, 3);
  assert.deepEqual(y.shape, [3, 2]);
  assert.deepEqual(Array.from(y.dataSync()), [3, 4, 6, 8, 0, 0]);
  tf.dispose([x, ids, y]);
});

test('cpu: ours equals the stock CPU kernel bit for bit on random inputs', async () => {
  await initTfjs('cpu');
  installSegmentSumKernels();
  const cases: Array<[number, number[], number]> = [[200, [8], 50], [64, [], 10], [30, [3, 4], 7], [1000, [16], 300]];
  for (const [i, [rows, inner, numSegments]] of cases.entries()) {
    const { xv, ids } = randomCase(100 + i, rows, inner, numSegments);
    const x = tf.tensor(xv, [rows, ...inner]);
    const idt = tf.tensor1d(ids, 'int32');
    const ours = tf.unsortedSegmentSum(x, idt, numSegments);
    assert.deepEqual(ours.shape, [numSegments, ...inner]);
    assert.deepEqual(ours.dataSync(), runStock(x, idt, numSegments), `case ${i}`);
    tf.dispose([x, idt, ours]);
  }
});

test('cpu: int32 input keeps int32 and equals the stock kernel', async () => {
  await initTfjs('cpu');
  installSegmentSumKernels();
  const x = tf.tensor2d([[1, -2], [3, 4], [5, 6]], [3, 2], 'int32');
  const ids = tf.tensor1d([2, 2, 0], 'int32');
  const ours = tf.unsortedSegmentSum(x, ids, 3);
  assert.equal(ours.dtype, 'int32');
  assert.deepEqual(Array.from(ours.dataSync()), [5, 6, 0, 0, 4, 2]);
  assert.deepEqual(Array.from(ours.dataSync()), Array.from(runStock(x, ids, 3)));
  tf.dispose([x, ids, ours]);
});

test('wasm: the kernel exists and equals the stock CPU kernel bit for bit', async () => {
  const chosen = await initTfjs('wasm');
  assert.equal(chosen.backend, 'wasm');
  const { xv, ids } = randomCase(7, 500, [12], 120);
  await tf.setBackend('wasm');
  const x = tf.tensor2d(xv, [500, 12]);
  const idt = tf.tensor1d(ids, 'int32');
  const ours = tf.unsortedSegmentSum(x, idt, 120).dataSync();
  tf.dispose([x, idt]);
  await tf.setBackend('cpu');
  const xc = tf.tensor2d(xv, [500, 12]);
  const ic = tf.tensor1d(ids, 'int32');
  assert.deepEqual(ours, runStock(xc, ic, 120));
  tf.dispose([xc, ic]);
});

test('wasm: the gradient of gather (what embedding training needs) equals the cpu one', async () => {
  const rng = createRng(5);
  const table = Float32Array.from({ length: 40 * 4 }, () => rng.normal());
  const idx = Int32Array.from({ length: 64 }, () => rng.int(40));
  const wv = Float32Array.from({ length: 64 * 4 }, () => rng.normal());
  const gradOn = async (backend: string): Promise<Float32Array> => {
    await tf.setBackend(backend);
    const t = tf.tensor2d(table, [40, 4]);
    const i = tf.tensor1d(idx, 'int32');
    const w = tf.tensor2d(wv, [64, 4]);
    const g = tf.grad((tt: tf.Tensor) => tf.sum(tf.mul(tf.gather(tt, i), w)))(t);
    const out = g.dataSync() as Float32Array;
    tf.dispose([t, i, w, g]);
    return out;
  };
  await initTfjs('wasm');
  const onWasm = await gradOn('wasm');
  const onCpu = await gradOn('cpu');
  assert.deepEqual(onWasm, onCpu);
  // rows never gathered get exactly zero gradient
  const used = new Set(idx);
  for (let r = 0; r < 40; r++) if (!used.has(r)) for (let j = 0; j < 4; j++) assert.equal(onWasm[r * 4 + j], 0);
});
