import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { readModel } from '../../src/core/model/read-model.js';
import { float32ToFloat16Bits, readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import * as tf from '@tensorflow/tfjs';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { fileSystemLoadHandler, fileSystemSaveHandler } from '../../src/core/model/tfjs-io.js';
import { buildNeuMF } from '../../src/core/samples/models.js';
import { polynomialDecaySparsity, pruneMagnitude, pruneMasks } from '../../src/core/compress/prune-magnitude.js';

const made: string[] = [];
after(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-mag-'));
  made.push(d);
  return d;
}

function sha(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * Table [10, 4] with values 1..40 (row-major) but rows 0-1 all equal to 0.5 (8 ties), a MatMul
 * kernel [4, 5] with values -(1..20)/10 plus one exact tie at 0.5, a bias [5] of tiny values.
 */
function handMade(): { table: Float32Array; kernel: Float32Array; bias: Float32Array } {
  const table = Float32Array.from({ length: 40 }, (_, i) => (i < 8 ? 0.5 : i + 1));
  const kernel = Float32Array.from({ length: 20 }, (_, i) => -(i + 1) / 10);
  kernel[19] = 0.5; // a tie with the table's 0.5s
  const bias = Float32Array.from([1e-6, -1e-6, 0, 2e-6, 3e-6]);
  return { table, kernel, bias };
}

async function writeHandMade(dir: string): Promise<string> {
  const { table, kernel, bias } = handMade();
  const b = new OnnxGraphBuilder({ graphName: 'hand' });
  b.input('ids', 'int64', ['batch']);
  b.initializer('emb/embeddings', 'float32', [10, 4], table);
  b.initializer('dense/kernel', 'float32', [4, 5], kernel);
  b.initializer('dense/bias', 'float32', [5], bias);
  b.node('Gather', ['emb/embeddings', 'ids'], ['e'], { axis: 0 }, { name: 'emb/Gather' });
  b.node('MatMul', ['e', 'dense/kernel'], ['m'], {}, { name: 'dense/MatMul' });
  b.node('Add', ['m', 'dense/bias'], ['y'], {}, { name: 'dense/Add' });
  b.output('y', 'float32', ['batch', 5]);
  const file = path.join(dir, 'hand.onnx');
  await writeOnnxFile(file, b.toModelProto());
  return file;
}

function zeros(a: Float32Array): number {
  return a.reduce((n, v) => n + (v === 0 ? 1 : 0), 0);
}

test('global 90%: exactly floor(0.9 * 60) = 54 zeros over table + kernel, ties broken in order, bias untouched', async () => {
  const dir = tmpDir();
  const file = await writeHandMade(dir);
  const before = sha(file);
  const ir = await readModel(file);
  const outcome = await pruneMagnitude(ir, { sparsity: 0.9, scope: 'global' });
  const out = path.join(dir, 'pruned.onnx');
  await outcome.write(out);
  assert.equal(sha(file), before, 'the original is byte-identical');
  const pruned = await readModel(out);
  const get = async (n: string) => readTensorFloat32(pruned.tensors.find((t) => t.name === n)!);
  const table = await get('emb/embeddings');
  const kernel = await get('dense/kernel');
  const bias = await get('dense/bias');
  assert.equal(zeros(table) + zeros(kernel), 54);
  // |w| sorted: kernel 0.1..1.9 (19), the 9 values 0.5 (8 table + kernel[19]), then table 9..40.
  // k = 54: everything but the 6 largest (35..40) goes, so the threshold is 34.
  assert.deepEqual(Array.from(table.subarray(34)), [35, 36, 37, 38, 39, 40]);
  assert.equal(zeros(kernel), 20);
  assert.deepEqual(Array.from(bias), Array.from(handMade().bias));
  assert.equal(fs.statSync(out).size, fs.statSync(file).size, 'raw size unchanged');
  assert.ok(outcome.notes.some((n) => /raw \d+ -> \d+ bytes \(unchanged\)/.test(n)), outcome.notes.join('\n'));
  assert.ok(outcome.notes.some((n) => /latency does not change/.test(n)));
  // it still runs in ORT
  const s = await ort.InferenceSession.create(out);
  const r = await s.run({ ids: new ort.Tensor('int64', BigInt64Array.from([9n]), [1]) });
  assert.deepEqual(r.y.dims, [1, 5]);
});

test('global sparsity whose k-th value is a tie prunes exactly k: ties in tensor then element order', async () => {
  const dir = tmpDir();
  const ir = await readModel(await writeHandMade(dir));
  // 60 weights, k = floor(0.16 * 60) = 9: |w| 0.1..0.4 of the kernel (4), then 5 of the 10 ties
  // at 0.5 (table[0..7], kernel[4], kernel[19]): the first five table entries (table before kernel).
  const m = await pruneMasks(ir, { sparsity: 0.16 });
  assert.equal(m.threshold, 0.5);
  const t = m.masks.get('emb/embeddings')!;
  const k = m.masks.get('dense/kernel')!;
  assert.deepEqual(Array.from(t.subarray(0, 8)), [0, 0, 0, 0, 0, 1, 1, 1]);
  assert.equal(t.reduce((a, v) => a + v, 0), 40 - 5);
  assert.deepEqual(Array.from(k.subarray(0, 6)), [0, 0, 0, 0, 1, 1]);
  assert.equal(k.reduce((a, v) => a + v, 0), 16);
  assert.deepEqual(m.perTensor.map((p) => p.pruned), [5, 4]);
  assert.equal(m.masks.has('dense/bias'), false);
});

test('per-layer 90%: floor(0.9 * 40) = 36 and floor(0.9 * 20) = 18 zeros; perLayer override by layer name', async () => {
  const dir = tmpDir();
  const ir = await readModel(await writeHandMade(dir));
  const outcome = await pruneMagnitude(ir, { sparsity: 0.9, scope: 'layer' });
  const out = path.join(dir, 'layer.onnx');
  await outcome.write(out);
  const pruned = await readModel(out);
  const table = await readTensorFloat32(pruned.tensors.find((t) => t.name === 'emb/embeddings')!);
  const kernel = await readTensorFloat32(pruned.tensors.find((t) => t.name === 'dense/kernel')!);
  assert.equal(zeros(table), 36);
  assert.equal(zeros(kernel), 18);
  assert.deepEqual(Array.from(table.subarray(36)), [37, 38, 39, 40]);
  // kernel: |w| 0.1..1.9 plus a second 0.5: the two largest, 1.8 and 1.9, survive
  assert.deepEqual(Array.from(kernel).filter((v) => v !== 0), [-1.8, -1.9].map((x) => Math.fround(x)));

  const m = await pruneMasks(ir, { sparsity: 0.9, scope: 'layer', perLayer: { dense: 0.5 } });
  assert.deepEqual(m.perTensor.map((p) => [p.tensor, p.pruned]), [['emb/embeddings', 36], ['dense/kernel', 10]]);
  await assert.rejects(pruneMasks(ir, { sparsity: 0.9, scope: 'layer', perLayer: { nope: 0.5 } }), /perLayer names "nope"/);
  await assert.rejects(pruneMasks(ir, { sparsity: 1.5 }), /sparsity must be a number in \[0, 1\]/);
});

test('explicit tensor list: only those tensors are pruned; a bias can be chosen explicitly', async () => {
  const dir = tmpDir();
  const ir = await readModel(await writeHandMade(dir));
  const m = await pruneMasks(ir, { sparsity: 0.6, tensors: ['dense/bias'] });
  assert.deepEqual([...m.masks.keys()], ['dense/bias']);
  // |b| = 1e-6, 1e-6, 0, 2e-6, 3e-6: k = 3 prunes 0 and the two 1e-6
  assert.deepEqual(Array.from(m.masks.get('dense/bias')!), [0, 0, 0, 1, 1]);
  await assert.rejects(pruneMasks(ir, { sparsity: 0.5, tensors: ['missing'] }), /no tensor named "missing"/);
});

test('gzip size shrinks on a larger table, raw size does not', async () => {
  const dir = tmpDir();
  const b = new OnnxGraphBuilder({ graphName: 'big' });
  const n = 4000 * 16;
  let seed = 12345;
  const table = Float32Array.from({ length: n }, () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32 - 0.5;
  });
  b.input('ids', 'int64', ['batch']);
  b.initializer('t/embeddings', 'float32', [4000, 16], table);
  b.node('Gather', ['t/embeddings', 'ids'], ['y'], { axis: 0 }, { name: 't/Gather' });
  b.output('y', 'float32', ['batch', 16]);
  const file = path.join(dir, 'big.onnx');
  await writeOnnxFile(file, b.toModelProto());
  const ir = await readModel(file);
  const outcome = await pruneMagnitude(ir, { sparsity: 0.9 });
  await outcome.write(path.join(dir, 'big-pruned.onnx'));
  const line = outcome.notes.find((x) => x.startsWith('Size on disk'))!;
  const [, rawB, rawA, gzB, gzA] = /raw (\d+) -> (\d+) bytes.*gzip (\d+) -> (\d+)/.exec(line)!.map(Number);
  assert.equal(rawA, rawB);
  assert.ok(gzA * 3 < gzB, `gzip ${gzB} -> ${gzA} should shrink > 3x at 90% zeros`);
  console.log(`# 90% global magnitude on a [4000,16] table: ${line}`);
});

test('polynomialDecaySparsity follows TFMOT: final + (initial - final) * (1 - t)^3', () => {
  const s = { initial: 0.5, final: 0.9, begin: 0, end: 100 };
  assert.equal(polynomialDecaySparsity(0, s), 0.5);
  assert.equal(polynomialDecaySparsity(100, s), 0.9);
  assert.equal(polynomialDecaySparsity(500, s), 0.9);
  assert.equal(polynomialDecaySparsity(-5, s), 0.5);
  assert.ok(Math.abs(polynomialDecaySparsity(50, s) - (0.9 - 0.4 * 0.125)) < 1e-12);
  assert.ok(Math.abs(polynomialDecaySparsity(50, { ...s, power: 1 }) - 0.7) < 1e-12);
  assert.throws(() => polynomialDecaySparsity(1, { ...s, end: 0 }), /end > begin/);
});

test('TF.js layers model: 90% global zeros stored (sizes of the shards unchanged), biases untouched, loads and runs in TF.js', async () => {
  await initTfjs('cpu');
  const dir = tmpDir();
  const model = buildNeuMF({ users: 30, items: 40, gmfDim: 4, mlpDim: 4, hidden: [8], seed: 6 });
  const src = path.join(dir, 'src', 'model.json');
  await model.save(fileSystemSaveHandler(src));
  const files = fs.readdirSync(path.dirname(src)).map((f) => path.join(path.dirname(src), f));
  const before = files.map(sha);
  const ir = await readModel(src);
  const outcome = await pruneMagnitude(ir, { sparsity: 0.9 });
  const out = path.join(dir, 'out', 'model.json');
  await outcome.write(out);
  assert.deepEqual(files.map(sha), before, 'the original is byte-identical');
  const pruned = await readModel(out);
  // chosen: 4 tables (30x4, 40x4, 30x4, 40x4 = 560) + the hidden kernel 8x8; the scoring
  // layer's kernel (prediction) is left out by default
  const chosen = ir.tensors.filter((t) => (t.role === 'embedding' || t.role === 'dense-kernel') && t.layer !== 'prediction');
  const n = chosen.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  let z = 0;
  for (const t of pruned.tensors.filter((x) => chosen.some((c) => c.name === x.name))) z += zeros(await readTensorFloat32(t));
  assert.equal(z, Math.floor(0.9 * n));
  for (const t of ir.tensors.filter((x) => x.role === 'bias')) {
    const a = await readTensorFloat32(t);
    const b = await readTensorFloat32(pruned.tensors.find((x) => x.name === t.name)!);
    assert.deepEqual(Array.from(b), Array.from(a));
  }
  const shardSize = (json: string) => fs.readdirSync(path.dirname(json)).filter((f) => f.endsWith('.bin')).reduce((a, f) => a + fs.statSync(path.join(path.dirname(json), f)).size, 0);
  assert.equal(shardSize(out), shardSize(src));
  const m = await tf.loadLayersModel(fileSystemLoadHandler(out));
  const y = m.predict([tf.tensor2d([[1], [2]], [2, 1], 'int32'), tf.tensor2d([[3], [4]], [2, 1], 'int32')]) as tf.Tensor;
  assert.deepEqual(y.shape, [2, 1]);
});

test('float16 ONNX table: zeros written as float16 (same bytes, same dtype), runs in ORT', async () => {
  const dir = tmpDir();
  const b = new OnnxGraphBuilder({ graphName: 'half' });
  const vals = Float32Array.from({ length: 24 }, (_, i) => (i % 2 ? -1 : 1) * (i + 1) / 8);
  b.input('ids', 'int64', ['batch']);
  b.initializer('h/embeddings', 'float16', [6, 4], Uint16Array.from(vals, float32ToFloat16Bits));
  b.node('Gather', ['h/embeddings', 'ids'], ['y'], { axis: 0 }, { name: 'h/Gather' });
  b.output('y', 'float16', ['batch', 4]);
  const file = path.join(dir, 'half.onnx');
  await writeOnnxFile(file, b.toModelProto());
  const outcome = await pruneMagnitude(await readModel(file), { sparsity: 0.75 });
  const out = path.join(dir, 'half-pruned.onnx');
  await outcome.write(out);
  assert.equal(fs.statSync(out).size, fs.statSync(file).size);
  const t = (await readModel(out)).tensors[0];
  assert.equal(t.storage.dtype, 'float16');
  const v = await readTensorFloat32(t);
  assert.deepEqual(Array.from(v), Array.from(vals, (x, i) => (i < 18 ? 0 : x)));
  const s = await ort.InferenceSession.create(out);
  const r = await s.run({ ids: new ort.Tensor('int64', BigInt64Array.from([5n]), [1]) });
  assert.deepEqual(r.y.dims, [1, 4]);
});

test('the scoring layer is left out by default: the output kernel of NeuMF in both formats', async () => {
  const { outputLayerKernels, chooseTensors } = await import('../../src/core/compress/prune-magnitude.js');
  const { readModel } = await import('../../src/core/model/read-model.js');
  const { writeTinyFixtures, FIXTURE_VERSION } = await import('../fixtures/write-fixtures.js');
  const os = await import('node:os');
  const path = await import('node:path');
  const fx = await writeTinyFixtures(path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`));
  for (const p of [fx.models.neumf.onnxPath!, fx.models.neumf.tfjsModelJson!]) {
    const ir = await readModel(p);
    assert.deepEqual([...outputLayerKernels(ir)], ['prediction/kernel'], p);
    const chosen = chooseTensors(ir, undefined).map((t) => t.name);
    assert.ok(!chosen.includes('prediction/kernel'), p);
    assert.ok(chosen.includes('mlp_dense_0/kernel'), p);
    // named explicitly, it is pruned like any other
    assert.deepEqual(chooseTensors(ir, ['prediction/kernel']).map((t) => t.name), ['prediction/kernel']);
  }
});
