import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { quantizeModel } from '../../src/core/compress/quantize.js';
import { ModelFileError, ModelIR } from '../../src/core/model/ir.js';
import { readModel } from '../../src/core/model/read-model.js';
import { readTensorBytes } from '../../src/core/model/tensor-data.js';
import { fileSystemLoadHandler } from '../../src/core/model/tfjs-io.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';
import { withTempDir } from '../fixtures/temp-dir.js';

const fixturesDir = path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);

async function sha(files: string[]): Promise<string> {
  const h = createHash('sha256');
  for (const f of files.sort()) h.update(await fs.promises.readFile(f));
  return h.digest('hex');
}

const withTemp = (fn: (dir: string) => Promise<void>) => withTempDir('ps-quantize-', fn);

async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for (const f of await fs.promises.readdir(dir)) n += (await fs.promises.stat(path.join(dir, f))).size;
  return n;
}

/** NeuMF scores of fixed (user, item) pairs in ORT. */
async function ortScores(file: string): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  try {
    const n = 300;
    const user = BigInt64Array.from({ length: n }, (_, i) => BigInt(i));
    const item = BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 37) % 500));
    const out = await s.run({ user: new ort.Tensor('int64', user, [n]), item: new ort.Tensor('int64', item, [n]) });
    return out[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function opsOf(ir: ModelIR): string[] {
  return ir.graph.nodes.map((n) => n.op);
}

test('ONNX NeuMF int8: tables 3.2x smaller with float16 row scales, runs in ORT close to float, original untouched', async () => {
  const fx = await writeTinyFixtures(fixturesDir);
  const file = fx.models.neumf.onnxPath!;
  const before = await sha([file]);
  const ir = await readModel(file);
  const o = await quantizeModel(ir, { dtype: 'int8' });
  assert.equal(o.method, 'quantize');
  assert.deepEqual(o.settings, { dtype: 'int8', tensors: 'all', reduceRange: true, dense: 'weights-only', lookup: 'compact', verify: true, verifyRows: 256 });
  // 4 tables (8 wide) + 3 dense kernels
  assert.equal(o.changes.length, 7);
  const table = o.changes.find((c) => c.tensor === 'item_gmf_embedding/embeddings')!;
  assert.deepEqual(table.before, { shape: [500, 8], dtype: 'float32', bytes: 500 * 8 * 4 });
  assert.deepEqual(table.after, [
    { name: 'item_gmf_embedding/embeddings_int8', shape: [500, 8], dtype: 'int8', bytes: 4000 },
    { name: 'item_gmf_embedding/embeddings_scale', shape: [500, 1], dtype: 'float16', bytes: 1000 },
  ]);
  assert.ok(o.outputDiff && o.outputDiff.maxAbsDiff < 0.03, `probe diff ${o.outputDiff?.maxAbsDiff}`);
  assert.ok(o.notes.some((n) => /Checked in onnxruntime-node .* max \|Δoutput\|/.test(n)));
  await withTemp(async (dir) => {
    const out = path.join(dir, 'neumf-int8.onnx');
    await o.write(out);
    const q = await readModel(out);
    const ops = opsOf(q);
    assert.equal(ops.filter((op) => op === 'Gather').length, 8); // 4 lookups x (rows + scales)
    assert.equal(ops.filter((op) => op === 'DequantizeLinear').length, 3);
    const qt = q.tensors.find((t) => t.name === 'item_gmf_embedding/embeddings_int8')!;
    assert.equal(qt.dtype, 'int8');
    const diff = maxDiff(await ortScores(file), await ortScores(out));
    assert.ok(diff < 0.03, `ORT int8 vs float: ${diff}`);
    // the file shrinks (8-wide tables: 10 bytes per row instead of 32, plus graph overhead)
    const ratio = fs.statSync(file).size / fs.statSync(out).size;
    assert.ok(ratio > 2.2, `ratio ${ratio}`);
  });
  assert.equal(await sha([file]), before);
});

test('ONNX int8 dynamic dense mode: 7-bit weights in [-63, 63], MatMulInteger graph runs in ORT', async () => {
  const fx = await writeTinyFixtures(fixturesDir);
  const ir = await readModel(fx.models.neumf.onnxPath!);
  const o = await quantizeModel(ir, { dtype: 'int8', tensors: 'dense', dense: 'dynamic' });
  assert.equal(o.changes.length, 3);
  await withTemp(async (dir) => {
    const out = path.join(dir, 'm.onnx');
    await o.write(out);
    const q = await readModel(out);
    assert.equal(opsOf(q).filter((op) => op === 'MatMulInteger').length, 3);
    assert.equal(opsOf(q).filter((op) => op === 'DynamicQuantizeLinear').length, 3);
    for (const t of q.tensors.filter((x) => x.name.endsWith('/kernel_int8'))) {
      const b = new Int8Array((await readTensorBytes(t)).buffer);
      let lo = 0;
      let hi = 0;
      for (const v of b) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      assert.ok(lo >= -64 && hi <= 63, `${t.name}: [${lo}, ${hi}]`);
      assert.ok(hi === 63 || lo === -63, `${t.name} uses the 7-bit range`);
    }
    const diff = maxDiff(await ortScores(fx.models.neumf.onnxPath!), await ortScores(out));
    assert.ok(diff < 0.05, `dynamic int8 vs float: ${diff}`);
  });
});

test('ONNX float16: half-size tensors, runs in ORT within 2e-3', async () => {
  const fx = await writeTinyFixtures(fixturesDir);
  const file = fx.models.neumf.onnxPath!;
  const ir = await readModel(file);
  const o = await quantizeModel(ir, { dtype: 'float16' });
  for (const c of o.changes) assert.equal(c.after[0].bytes * 2, c.before.bytes);
  assert.ok(o.outputDiff && o.outputDiff.maxAbsDiff < 2e-3);
  await withTemp(async (dir) => {
    const out = path.join(dir, 'neumf-fp16.onnx');
    await o.write(out);
    const q = await readModel(out);
    assert.equal(q.tensors.filter((t) => t.storage.dtype === 'float16').length, o.changes.length);
    assert.ok(maxDiff(await ortScores(file), await ortScores(out)) < 2e-3);
    const ratio = fs.statSync(file).size / fs.statSync(out).size;
    assert.ok(ratio > 1.8, `ratio ${ratio}`);
  });
});

for (const dtype of ['uint8', 'float16', 'uint16'] as const) {
  test(`TF.js ${dtype}: loads with tf.loadLayersModel and predicts close to the original; weights shrink`, async () => {
    await initTfjs();
    const fx = await writeTinyFixtures(fixturesDir);
    const file = fx.models.neumf.tfjsModelJson!;
    const srcDir = path.dirname(file);
    const files = (await fs.promises.readdir(srcDir)).map((f) => path.join(srcDir, f));
    const before = await sha(files);
    const ir = await readModel(file);
    const o = await quantizeModel(ir, { dtype });
    // every float32 weight, biases included, as the tensorflowjs converter does
    assert.equal(o.changes.length, 10);
    const per = dtype === 'uint8' ? 1 : 2;
    for (const c of o.changes) assert.equal(c.after[0].bytes, (c.before.bytes / 4) * per);
    await withTemp(async (dir) => {
      const out = path.join(dir, 'model.json');
      await o.write(out);
      const manifest = JSON.parse(await fs.promises.readFile(out, 'utf8')).weightsManifest[0].weights as Array<{ quantization?: { dtype: string } }>;
      assert.ok(manifest.every((w) => w.quantization?.dtype === dtype));
      const a = await tf.loadLayersModel(fileSystemLoadHandler(file));
      const b = await tf.loadLayersModel(fileSystemLoadHandler(out));
      const n = 300;
      const xs = [tf.tensor2d(Int32Array.from({ length: n }, (_, i) => i), [n, 1], 'int32'), tf.tensor2d(Int32Array.from({ length: n }, (_, i) => (i * 37) % 500), [n, 1], 'int32')];
      const ya = (a.predict(xs) as tf.Tensor).dataSync();
      const yb = (b.predict(xs) as tf.Tensor).dataSync();
      const d = maxDiff(ya, yb);
      tf.dispose(xs);
      a.dispose();
      b.dispose();
      assert.ok(d < (dtype === 'uint8' ? 0.02 : 2e-3), `${dtype}: ${d}`);
      const weightsBefore = files.filter((f) => f.endsWith('.bin')).reduce((s, f) => s + fs.statSync(f).size, 0);
      const weightsAfter = (await dirBytes(dir)) - fs.statSync(out).size;
      assert.equal(weightsAfter * (4 / per), weightsBefore);
    });
    assert.equal(await sha(files), before);
  });
}

test('TF.js int8 becomes manifest uint8 (per tensor) and says so', async () => {
  const fx = await writeTinyFixtures(fixturesDir);
  const ir = await readModel(fx.models['two-tower'].tfjsModelJson!);
  const o = await quantizeModel(ir, { dtype: 'int8', tensors: 'embeddings', verify: false });
  assert.deepEqual(o.changes.map((c) => c.after[0].dtype), ['uint8', 'uint8']);
  assert.ok(o.notes.some((n) => /uint8 affine quantization, one scale and min per tensor/.test(n)));
  assert.ok(o.notes.some((n) => /dequantizes uint8 weights to float32 when it loads/.test(n)));
  assert.equal(o.outputDiff, undefined);
});

test('DeepFM int8: 1-wide linear tables get one scale per table; runs in ORT', async () => {
  const fx = await writeTinyFixtures(fixturesDir);
  const ir = await readModel(fx.models.deepfm.onnxPath!);
  const o = await quantizeModel(ir, { dtype: 'int8', tensors: 'embeddings' });
  const linear = o.changes.filter((c) => c.before.shape[1] === 1);
  assert.ok(linear.length > 0);
  for (const c of linear) assert.deepEqual(c.after[1], { name: c.after[1].name, shape: [], dtype: 'float32', bytes: 4 });
  assert.ok(o.outputDiff && o.outputDiff.maxAbsDiff < 0.03);
});

test('bad settings are ModelFileErrors naming the file', async () => {
  const fx = await writeTinyFixtures(fixturesDir);
  const ir = await readModel(fx.models.neumf.onnxPath!);
  await assert.rejects(quantizeModel(ir, { dtype: 'uint8' }), (e: unknown) => e instanceof ModelFileError && /for ONNX models use int8 or float16/.test(e.message));
  await assert.rejects(quantizeModel(ir, { dtype: 'int8', tensors: ['nope'] }), (e: unknown) => e instanceof ModelFileError && /no tensor named "nope"/.test(e.message));
  // a bias asked for by name is reported as left alone, not silently dropped
  const o = await quantizeModel(ir, { dtype: 'int8', tensors: ['prediction/bias'], verify: false });
  assert.equal(o.changes.length, 0);
  assert.ok(o.notes.some((n) => n.startsWith('Left as it was: prediction/bias')));
});

test('PyTorch-style Gemm transB=1 graph: int8 kernels in both dense modes, layouts and outputs checked', async () => {
  const { OnnxGraphBuilder, writeOnnxFile } = await import('../../src/core/model/onnx/build.js');
  const r = (i: number): number => Math.sin(i * 12.9898) * 0.5;
  const b = new OnnxGraphBuilder({ graphName: 'g', producer: 'pytorch' })
    .input('ids', 'int64', ['batch'])
    .output('y', 'float32', ['batch', 1])
    .initializer('emb.weight', 'float32', [40, 16], Float32Array.from({ length: 640 }, (_, i) => r(i)))
    .initializer('fc.weight', 'float32', [8, 16], Float32Array.from({ length: 128 }, (_, i) => r(i + 999)))
    .initializer('fc.bias', 'float32', [8], Float32Array.from({ length: 8 }, (_, i) => r(i + 5)))
    .initializer('out.weight', 'float32', [1, 8], Float32Array.from({ length: 8 }, (_, i) => r(i + 77)))
    .node('Gather', ['emb.weight', 'ids'], ['e'], { axis: 0 }, { name: '/emb/Gather' })
    .node('Gemm', ['e', 'fc.weight', 'fc.bias'], ['h'], { transB: 1 }, { name: '/fc/Gemm' })
    .node('Relu', ['h'], ['hr'], {}, { name: '/relu' })
    .node('Gemm', ['hr', 'out.weight'], ['y'], { transB: 1 }, { name: '/out/Gemm' });
  await withTemp(async (dir) => {
    const file = path.join(dir, 'torch.onnx');
    await writeOnnxFile(file, b.toModelProto());
    const ir = await readModel(file);
    const wo = await quantizeModel(ir, { dtype: 'int8' });
    const fc = wo.changes.find((c) => c.tensor === 'fc.weight')!;
    // weights-only keeps the [out, in] layout (DequantizeLinear on axis 0)
    assert.deepEqual(fc.after.map((a) => a.shape), [[8, 16], [8]]);
    assert.ok(wo.outputDiff && wo.outputDiff.maxAbsDiff < 0.02, `weights-only ${wo.outputDiff?.maxAbsDiff}`);
    const dyn = await quantizeModel(ir, { dtype: 'int8', dense: 'dynamic' });
    // the integer matmul takes B as [in, out]
    assert.deepEqual(dyn.changes.find((c) => c.tensor === 'fc.weight')!.after.map((a) => a.shape), [[16, 8], [8]]);
    assert.ok(dyn.outputDiff && dyn.outputDiff.maxAbsDiff < 0.05, `dynamic ${dyn.outputDiff?.maxAbsDiff}`);
    const out = path.join(dir, 'q.onnx');
    await dyn.write(out);
    const q = await readModel(out);
    const add = q.graph.nodes.filter((n) => n.op === 'Add');
    assert.equal(add.length, 1); // the bias of /fc/Gemm, after the integer matmul
    assert.ok(add[0].inputs.includes('fc.bias'));
    assert.equal(q.graph.nodes.filter((n) => n.op === 'Gemm').length, 0);
  });
});

test('opset 12 model: weights-only dense falls back to the dynamic form without raising the opset, and says so', async () => {
  const { OnnxGraphBuilder, writeOnnxFile } = await import('../../src/core/model/onnx/build.js');
  const b = new OnnxGraphBuilder({ graphName: 'g', opset: 12 })
    .input('x', 'float32', ['batch', 4])
    .output('y', 'float32', ['batch', 2])
    .initializer('w', 'float32', [4, 2], Float32Array.from([1, -0.5, 0.25, 0.75, -1, 0.5, 0.125, 2]))
    .node('MatMul', ['x', 'w'], ['y'], {}, { name: 'mm' });
  await withTemp(async (dir) => {
    const file = path.join(dir, 'op12.onnx');
    await writeOnnxFile(file, b.toModelProto());
    const o = await quantizeModel(await readModel(file), { dtype: 'int8' });
    assert.ok(o.notes.some((n) => /opset 12 has no per-channel DequantizeLinear/.test(n)));
    assert.deepEqual(o.changes[0].after.map((a) => a.shape), [[4, 2], [2]]);
    assert.ok(o.outputDiff && o.outputDiff.maxAbsDiff < 0.1, `${o.outputDiff?.maxAbsDiff}`);
    const out = path.join(dir, 'q.onnx');
    await o.write(out);
    const q = await readModel(out);
    const { onnxDefaultOpset } = await import('../../src/core/model/onnx/edit.js');
    assert.equal(onnxDefaultOpset(q), 12);
    assert.deepEqual(q.graph.nodes.map((n) => n.op), ['DynamicQuantizeLinear', 'MatMulInteger', 'Cast', 'Mul', 'Mul']);
  });
});

test('int8 lookup "fast": float32 row scales [rows], Gather + DequantizeLinear per lookup, same rows as compact up to scale rounding', async () => {
  const fx = await writeTinyFixtures(fixturesDir);
  const file = fx.models.neumf.onnxPath!;
  const ir = await readModel(file);
  const o = await quantizeModel(ir, { dtype: 'int8', tensors: 'embeddings', lookup: 'fast' });
  const table = o.changes.find((c) => c.tensor === 'user_gmf_embedding/embeddings')!;
  assert.deepEqual(table.after[1], { name: 'user_gmf_embedding/embeddings_scale', shape: [300], dtype: 'float32', bytes: 1200 });
  assert.ok(o.outputDiff && o.outputDiff.maxAbsDiff < 0.03, `${o.outputDiff?.maxAbsDiff}`);
  await withTemp(async (dir) => {
    const out = path.join(dir, 'fast.onnx');
    await o.write(out);
    const q = await readModel(out);
    const ops = opsOf(q);
    assert.equal(ops.filter((op) => op === 'DequantizeLinear').length, 4);
    assert.equal(ops.filter((op) => op === 'Cast').length, 0);
    assert.ok(maxDiff(await ortScores(file), await ortScores(out)) < 0.03);
  });
});
