import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { fileSystemLoadHandler, fileSystemSaveHandler } from '../../src/core/model/tfjs-io.js';
import { buildDeepFM } from '../../src/core/samples/models.js';
import { exportLayersModelToOnnx } from '../../src/core/samples/to-onnx.js';
import { readModel } from '../../src/core/model/read-model.js';
import { readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { evaluateModel } from '../../src/core/eval/evaluate.js';
import { fieldsMatrix, readInteractions } from '../../src/core/eval/interactions.js';
import { fieldImportance } from '../../src/core/compress/field-importance.js';
import { modelFields, pruneFields } from '../../src/core/compress/prune-fields.js';
import { fieldsCommand } from '../../src/cli/fields-command.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const fixtureDir = path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-fields-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const NOISE = ['noise_a', 'noise_b'];

/** ORT scores of the fields matrix (int64 [n, 6]). */
async function ortScores(file: string, fields: Int32Array, n: number): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  try {
    const x = new ort.Tensor('int64', BigInt64Array.from(fields, (v) => BigInt(v)), [n, fields.length / n]);
    const r = await s.run({ [s.inputNames[0]]: x });
    return r[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('field importance ranks the planted useless fields last, within noise of 0 (ONNX via ORT)', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const m = fx.models.deepfm;
  const r = await fieldImportance(m.onnxPath!, { data: m.candidatesCsv, repeats: 3, seed: 1 });
  assert.equal(r.metric, 'auc');
  assert.equal(r.fields.length, 6);
  assert.deepEqual(r.fields.map((f) => f.field).slice(-2).sort(), NOISE);
  assert.equal(r.fields[0].field, 'item');
  for (const f of r.fields.slice(-2)) {
    assert.equal(f.metrics.length, 3);
    assert.ok(Math.abs(f.drop) <= 2 * f.spread + 0.001, `${f.field}: drop ${f.drop} spread ${f.spread}`);
  }
  // the columns are the fields input's columns
  assert.deepEqual(Object.fromEntries(r.fields.map((f) => [f.field, f.column])), { user: 0, item: 1, item_category: 2, user_segment: 3, noise_a: 4, noise_b: 5 });
  // same seed, same figures
  const again = await fieldImportance(m.onnxPath!, { data: m.candidatesCsv, repeats: 1, seed: 1, metric: 'logloss' });
  assert.equal(again.metric, 'logloss');
  // (on leave-one-out candidates, 1 positive in 100, logloss mostly measures calibration: only
  // the strongest field clearly raises it)
  assert.equal(again.fields[0].field, 'item');
  assert.ok(again.fields[0].drop > 0.003, `item logloss drop ${again.fields[0].drop}`);
});

test('pruneFields (ONNX): exact removal equals the model with those tables zeroed; compensated AUC within 0.001; smaller', async () => {
  await initTfjs('cpu');
  const fx = await writeTinyFixtures(fixtureDir);
  const m = fx.models.deepfm;
  const ir = await readModel(m.onnxPath!);
  assert.deepEqual((await modelFields(ir)).map((f) => `${f.column}:${f.name}`), ['0:user', '1:item', '2:item_category', '3:user_segment', '4:noise_a', '5:noise_b']);

  // exact: no compensation = the original model whose removed tables are all zero
  const exact = await pruneFields(ir, { fields: ['noise_a', '5'], compensate: false });
  assert.deepEqual(exact.settings.fields, NOISE);
  const exactOut = path.join(root, 'exact.onnx');
  await exact.write(exactOut);
  const gone = exact.changes.filter((c) => c.after.length === 0).map((c) => c.tensor).sort();
  assert.deepEqual(gone, ['noise_a_embedding/embeddings', 'noise_a_linear/embeddings', 'noise_b_embedding/embeddings', 'noise_b_linear/embeddings']);
  const kernel = exact.changes.find((c) => c.tensor === 'deep_dense_0/kernel')!;
  assert.deepEqual(kernel.before.shape, [48, 16]);
  assert.deepEqual(kernel.after[0].shape, [32, 16]);

  const data = await readInteractions(m.candidatesCsv, { extraColumns: 'all', requireLabel: true });
  const n = 2000;
  const fields = fieldsMatrix(data).subarray(0, n * 6);
  const model = await tf.loadLayersModel(fileSystemLoadHandler(m.tfjsModelJson!));
  for (const name of ['noise_a_embedding', 'noise_a_linear', 'noise_b_embedding', 'noise_b_linear']) {
    const l = model.getLayer(name);
    l.setWeights(l.getWeights().map((w) => tf.zerosLike(w)));
  }
  const zeroed = tf.tidy(() => (model.predict(tf.tensor2d(fields, [n, 6], 'int32')) as tf.Tensor).dataSync() as Float32Array);
  const pruned = await ortScores(exactOut, fields, n);
  assert.ok(maxAbsDiff(pruned, zeroed) < 2e-5, `max diff ${maxAbsDiff(pruned, zeroed)}`);
  // the removed columns are no longer read: any ids there give the same scores
  const scrambled = fields.slice();
  for (let i = 0; i < n; i++) {
    scrambled[i * 6 + 4] = 1_000_000 + i;
    scrambled[i * 6 + 5] = -7;
  }
  assert.deepEqual(await ortScores(exactOut, scrambled, n), pruned);

  // compensated (default): validation AUC within 0.001, file smaller
  const comp = await pruneFields(ir, { fields: NOISE });
  const compOut = path.join(root, 'comp.onnx');
  await comp.write(compOut);
  const before = await evaluateModel(m.onnxPath!, { data: m.candidatesCsv });
  const afterEval = await evaluateModel(compOut, { data: m.candidatesCsv });
  assert.ok(Math.abs(afterEval.auc! - before.auc!) <= 0.001, `AUC ${before.auc} -> ${afterEval.auc}`);
  assert.ok(afterEval.bytes < before.bytes * 0.9, `bytes ${before.bytes} -> ${afterEval.bytes}`);
  assert.ok(comp.notes.some((x) => x.includes('Size on disk')));
  // the compensation moved the biases: scores differ from the exact removal
  assert.ok(maxAbsDiff(await ortScores(compOut, fields, n), pruned) > 1e-4);
  // deep_out/bias gained the removed terms' means: mean linear weights of noise_a/b, and for every
  // FM pair touching them, the dot of the two tables' mean rows
  const orig = await tf.loadLayersModel(fileSystemLoadHandler(m.tfjsModelJson!));
  const names = ['user', 'item', 'item_category', 'user_segment', 'noise_a', 'noise_b'];
  const meanOf = (layer: string): Float64Array => {
    const w = orig.getLayer(layer).getWeights()[0];
    const [rows, d] = w.shape as [number, number];
    const v = w.dataSync();
    const out = new Float64Array(d);
    for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) out[j] += v[r * d + j] / rows;
    return out;
  };
  let expected = meanOf('noise_a_linear')[0] + meanOf('noise_b_linear')[0];
  for (let f = 0; f < 6; f++) {
    for (let h = f + 1; h < 6; h++) {
      if (f < 4 && h < 4) continue;
      const a = meanOf(`${names[f]}_embedding`);
      const b = meanOf(`${names[h]}_embedding`);
      expected += a.reduce((acc, x, j) => acc + x * b[j], 0);
    }
  }
  const biasChange = comp.changes.find((c) => c.tensor === 'deep_out/bias');
  assert.ok(biasChange, 'deep_out/bias changed');
  const origBias = orig.getLayer('deep_out').getWeights()[1].dataSync()[0];
  const newIr = await readModel(compOut);
  const newBias = (await readTensorFloat32(newIr.tensors.find((t) => t.name === 'deep_out/bias')!))[0];
  assert.ok(Math.abs(newBias - origBias - expected) < 1e-6, `bias ${origBias} -> ${newBias}, expected shift ${expected}`);
});

test('pruneFields (TF.js): same result as the ONNX output with the same weights', async () => {
  await initTfjs('cpu');
  const fx = await writeTinyFixtures(fixtureDir);
  const m = fx.models.deepfm;
  const onnxOut = path.join(root, 'same.onnx');
  await (await pruneFields(await readModel(m.onnxPath!), { fields: NOISE })).write(onnxOut);
  const tfjsOut = path.join(root, 'tfjs-pruned', 'model.json');
  const o = await pruneFields(await readModel(m.tfjsModelJson!), { fields: NOISE });
  await o.write(tfjsOut);
  const model = await tf.loadLayersModel(fileSystemLoadHandler(tfjsOut));
  assert.ok(!model.layers.some((l) => l.name.startsWith('noise_')), 'no layer of the removed fields is left');
  assert.deepEqual(model.inputs[0].shape, [null, 6]);
  assert.deepEqual(model.getLayer('deep_dense_0').getWeights()[0].shape, [32, 16]);
  const data = await readInteractions(m.candidatesCsv, { extraColumns: 'all', requireLabel: true });
  const n = 1000;
  const fields = fieldsMatrix(data).subarray(0, n * 6);
  const tfjsScores = tf.tidy(() => (model.predict(tf.tensor2d(fields, [n, 6], 'int32')) as tf.Tensor).dataSync() as Float32Array);
  assert.ok(maxAbsDiff(tfjsScores, await ortScores(onnxOut, fields, n)) < 2e-5);
});

test('pruneFields refuses what it cannot do, naming the reason', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const ir = await readModel(fx.models.deepfm.onnxPath!);
  await assert.rejects(pruneFields(ir, { fields: ['nope'] }), /no field "nope" \(fields: 0:user, 1:item, 2:item_category/);
  await assert.rejects(pruneFields(ir, { fields: ['0', '1', '2', '3', '4', '5'] }), /cannot remove every field/);
  await assert.rejects(pruneFields(ir, { fields: { drop: 0.1, data: fx.models.deepfm.candidatesCsv } }), /removes none/);
  const neumf = await readModel(fx.models.neumf.onnxPath!);
  await assert.rejects(pruneFields(neumf, { fields: ['user'] }), /no \[batch, F\] fields input/);
});

test('fields CLI: --drop 0.34 ranks on the data and removes the two noise fields; output atomic, smaller', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const m = fx.models.deepfm;
  const out = path.join(root, 'cli.onnx');
  const chunks: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array) => {
    chunks.push(String(s));
    return true;
  }) as typeof process.stdout.write;
  let code: number;
  try {
    code = await fieldsCommand([m.onnxPath!, '--data', m.candidatesCsv, '--drop', '0.34', '--repeats', '2', '--out', out, '--json']);
  } finally {
    process.stdout.write = orig;
  }
  assert.equal(code, 0);
  const r = JSON.parse(chunks.join('')) as { settings: { fields: string[] }; evaluation: { before: { auc: number; bytes: number }; after: { auc: number; bytes: number } } };
  assert.deepEqual(r.settings.fields.slice().sort(), NOISE);
  assert.ok(Math.abs(r.evaluation.after.auc - r.evaluation.before.auc) <= 0.001);
  assert.ok(r.evaluation.after.bytes < r.evaluation.before.bytes);
  assert.deepEqual(fs.readdirSync(root).filter((f) => f.includes('tmp')), []);
  await assert.rejects(fieldsCommand([m.onnxPath!, '--remove', 'noise_a', '--out', out]), /exists; pass --force/);
});

test('pruneFields on a two-field DeepFM: a one-part Concat and one-term sums collapse; both formats equal the zeroed model', async () => {
  await initTfjs('cpu');
  const model = buildDeepFM({ fieldVocab: [7, 5], fieldNames: ['a', 'b'], dim: 3, hidden: [4], seed: 9 });
  // non-zero biases, so that a lost bias would show
  for (const name of ['deep_dense_0', 'deep_out']) {
    const l = model.getLayer(name);
    const [k, b] = l.getWeights();
    l.setWeights([k, tf.fill(b.shape, 0.3)]);
  }
  const dir = path.join(root, 'two');
  const tfjsIn = path.join(dir, 'tfjs', 'model.json');
  await model.save(fileSystemSaveHandler(tfjsIn));
  const onnxIn = path.join(dir, 'model.onnx');
  await exportLayersModelToOnnx(model, onnxIn);
  const n = 35;
  const fields = new Int32Array(n * 2);
  for (let i = 0; i < n; i++) {
    fields[i * 2] = i % 7;
    fields[i * 2 + 1] = (i * 3) % 5;
  }
  for (const name of ['b_embedding', 'b_linear']) {
    const l = model.getLayer(name);
    l.setWeights(l.getWeights().map((w) => tf.zerosLike(w)));
  }
  const zeroed = tf.tidy(() => (model.predict(tf.tensor2d(fields, [n, 2], 'int32')) as tf.Tensor).dataSync() as Float32Array);

  const onnxOut = path.join(dir, 'pruned.onnx');
  const o = await pruneFields(await readModel(onnxIn), { fields: ['b'], compensate: false });
  await o.write(onnxOut);
  assert.ok(maxAbsDiff(await ortScores(onnxOut, fields, n), zeroed) < 1e-5);
  const pruned = await readModel(onnxOut);
  assert.ok(!pruned.graph.nodes.some((x) => x.op === 'Concat'), 'the one-part Concat is gone');
  assert.deepEqual(pruned.tensors.find((t) => t.name === 'deep_dense_0/kernel')!.shape, [3, 4]);

  const tfjsOut = path.join(dir, 'pruned-tfjs', 'model.json');
  await (await pruneFields(await readModel(tfjsIn), { fields: ['b'], compensate: false })).write(tfjsOut);
  const back = await tf.loadLayersModel(fileSystemLoadHandler(tfjsOut));
  assert.ok(!back.layers.some((l) => l.getClassName() === 'Concatenate'));
  const scores = tf.tidy(() => (back.predict(tf.tensor2d(fields, [n, 2], 'int32')) as tf.Tensor).dataSync() as Float32Array);
  assert.ok(maxAbsDiff(scores, zeroed) < 1e-5);
});
