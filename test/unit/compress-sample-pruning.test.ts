import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { readModel } from '../../src/core/model/read-model.js';
import { finetuneModel } from '../../src/core/compress/finetune.js';
import { Batch, EpochSampler, InteractionTable } from '../../src/core/compress/train/interaction-table.js';
import { loadTrainee, onnxLastLayerInput } from '../../src/core/compress/train/trainee.js';
import { readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { distillModel } from '../../src/core/compress/distill.js';
import { keptRowCount, resolveSamplePruning, rowImportance, SamplePruningReport, selectHardestRows } from '../../src/core/compress/sample-pruning.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { createRng } from '../../src/core/samples/prng.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const fixtureDir = path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-sample-pruning-'));

/** The first `rows` data lines of a CSV, as a new file (keeps the tests fast). */
function headCsv(src: string, rows: number, name: string): string {
  const lines = fs.readFileSync(src, 'utf8').split('\n');
  const out = path.join(work, name);
  fs.writeFileSync(out, lines.slice(0, rows + 1).join('\n') + '\n');
  return out;
}

test('selectHardestRows: exact top fraction by importance, ties by index, NaN counts as hardest', () => {
  const imp = Float32Array.from([0.5, 2, 2, 0.1, 3, 2]);
  // ceil(0.5 x 6) = 3: 3 (row 4), then the tie at 2 goes to rows 1 and 2 before 5
  assert.deepEqual(Array.from(selectHardestRows(imp, 0.5)), [1, 2, 4]);
  assert.deepEqual(Array.from(selectHardestRows(imp, 0.34)), [1, 2, 4]); // ceil(2.04) = 3
  assert.deepEqual(Array.from(selectHardestRows(imp, 0.1)), [4]);
  assert.deepEqual(Array.from(selectHardestRows(imp, 1)), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(Array.from(selectHardestRows(Float32Array.from([1, NaN, 0, 5]), 0.5)), [1, 3]);
  assert.equal(keptRowCount(10, 0.3), 3); // 0.3 x 10 is 3.0000000000000004 in floats
  assert.equal(keptRowCount(7, 0.5), 4);
  assert.equal(keptRowCount(1000, 0.0001), 1);
  assert.equal(keptRowCount(0, 0.5), 0);
});

test('resolveSamplePruning: defaults and errors', () => {
  assert.deepEqual(resolveSamplePruning({ keep: 0.5 }, 2, 'finetune'), { keep: 0.5, by: 'loss', warmupEpochs: 1 });
  assert.throws(() => resolveSamplePruning({ keep: 0 }, 2, 'finetune'), /finetune: samplePruning.keep must be in \(0, 1\], got 0/);
  assert.throws(() => resolveSamplePruning({ keep: 1.5 }, 2, 'finetune'), /keep must be in/);
  assert.throws(() => resolveSamplePruning({ keep: 0.5, by: 'x' as 'loss' }, 2, 'distill'), /distill: samplePruning.by must be 'loss' or 'gradnorm'/);
  assert.throws(() => resolveSamplePruning({ keep: 0.5, warmupEpochs: 2 }, 2, 'finetune'), /needs more epochs \(2\) than warm-up epochs \(2\)/);
});

test('rowImportance: per-row BCE and EL2N on a hand-made model; implicit rows sum their negatives', async () => {
  await initTfjs();
  // explicit labels: p = item / 10
  const table: InteractionTable = {
    file: 'x.csv',
    user: Int32Array.from([0, 0, 1, 1]),
    item: Int32Array.from([9, 2, 5, 8]),
    label: Float32Array.from([1, 1, 0, 0]),
    extra: new Int32Array(0),
    extraNames: [],
    implicit: false,
  };
  const forward = (b: Batch) => tf.div(tf.tensor1d(Float32Array.from(b.item)), 10);
  const sampler = new EpochSampler(table, 4);
  const loss = rowImportance({ forward }, sampler, 'loss', 1, 'probability');
  const expectLoss = [-Math.log(0.9), -Math.log(0.2), -Math.log(0.5), -Math.log(0.2)];
  loss.forEach((v, i) => assert.ok(Math.abs(v - expectLoss[i]) < 1e-5, `loss row ${i}: ${v} vs ${expectLoss[i]}`));
  // without the last layer's input: EL2N |p - y|
  const g = rowImportance({ forward }, sampler, 'gradnorm', 1, 'probability');
  [0.1, 0.8, 0.5, 0.8].forEach((e, i) => assert.ok(Math.abs(g[i] - e) < 1e-6, `gradnorm row ${i}: ${g[i]} vs ${e}`));
  // with h = [user, 2]: |p - y| sqrt(||h||^2 + 1) = |p - y| sqrt(user^2 + 5)
  const lastLayerInput = (b: Batch) => tf.stack([tf.tensor1d(Float32Array.from(b.user)), tf.fill([b.user.length], 2)], 1);
  const gh = rowImportance({ forward, lastLayerInput }, sampler, 'gradnorm', 1, 'probability');
  const expectGh = [0.1 * Math.sqrt(5), 0.8 * Math.sqrt(5), 0.5 * Math.sqrt(6), 0.8 * Math.sqrt(6)];
  gh.forEach((v, i) => assert.ok(Math.abs(v - expectGh[i]) < 1e-5, `gradnorm x ||h|| row ${i}: ${v} vs ${expectGh[i]}`));
  // ||h|| changes the choice: row 2 (0.5 x sqrt 6 = 1.22) now beats row 0... and row 3 beats row 1
  assert.deepEqual(Array.from(selectHardestRows(gh, 0.25)), [3]);
  assert.deepEqual(Array.from(selectHardestRows(g, 0.25)), [1]);
  // rows 1 and 3 (0.2 for a positive, 0.8 for a negative) are the two hardest by loss
  assert.deepEqual(Array.from(selectHardestRows(loss, 0.5)), [1, 3]);

  // implicit: every score 0.5, so each positive with its 3 negatives costs 4 ln 2
  const implicit: InteractionTable = { ...table, label: Float32Array.from([1, 1, 1, 1]), implicit: true };
  const half = (b: Batch) => tf.fill([b.user.length], 0.5);
  const s = new EpochSampler(implicit, 3);
  assert.equal(s.group, 4);
  const li = rowImportance({ forward: half }, s, 'loss', 3, 'probability');
  assert.equal(li.length, 4);
  li.forEach((v) => assert.ok(Math.abs(v - 4 * Math.LN2) < 1e-5));
  // a sampler over a subset draws only those rows (and their negatives)
  const sub = new EpochSampler(implicit, 3, Int32Array.from([2]));
  assert.equal(sub.size, 4);
  assert.equal(sub.rowCount, 1);
  const e = sub.epoch(createRng(5));
  assert.deepEqual(Array.from(e.user), [1, 1, 1, 1]);
  assert.deepEqual(Array.from(e.label).sort(), [0, 0, 0, 1]);
  assert.equal(e.item[Array.from(e.label).indexOf(1)], 5);
  // negatives avoid the user's positives in the whole table (5 and 8), not only the kept rows
  for (let i = 0; i < 4; i++) if (e.label[i] === 0) assert.ok(e.item[i] !== 5 && e.item[i] !== 8);
});

test('last dense layer input: found in the NeuMF ONNX graph and layers model, not in DeepFM (sum of logits)', async () => {
  await initTfjs();
  const fx = await writeTinyFixtures(fixtureDir);
  const neumf = await readModel(fx.models.neumf.onnxPath!);
  assert.equal(onnxLastLayerInput(neumf), 'neumf_concat/out');
  assert.equal(onnxLastLayerInput(await readModel(fx.models.deepfm.onnxPath!)), undefined);
  const b: Batch = { user: Int32Array.from([0, 1]), item: Int32Array.from([2, 3]), extra: new Int32Array(0), extraCount: 0, label: Float32Array.from([1, 0]) };
  for (const file of [fx.models.neumf.onnxPath!, fx.models.neumf.tfjsModelJson!]) {
    const ir = await readModel(file);
    const t = await loadTrainee(ir, { lastLayerInput: true });
    try {
      assert.ok(t.lastLayerInput, file);
      const kernel = ir.tensors.find((x) => x.name.startsWith('prediction/kernel'))!;
      const d = kernel.transposed ? kernel.shape[1] : kernel.shape[0];
      // score = sigmoid(h W + b): recompute it from h and the stored weights
      const [h, p] = tf.tidy(() => [t.lastLayerInput!(b).arraySync() as number[][], t.forward(b).arraySync() as number[]]);
      assert.equal(h[0].length, d);
      const w = await readTensorFloat32(kernel);
      const bias = (await readTensorFloat32(ir.tensors.find((x) => x.name.startsWith('prediction/bias'))!))[0];
      h.forEach((row, i) => {
        const z = row.reduce((a, x, j) => a + x * w[j], bias);
        assert.ok(Math.abs(1 / (1 + Math.exp(-z)) - p[i]) < 1e-5, `${file} row ${i}`);
      });
    } finally {
      t.dispose();
    }
    const plain = await loadTrainee(ir);
    assert.equal(plain.lastLayerInput, undefined);
    plain.dispose();
  }
});

test('finetune with samplePruning keep 0.5 on the tiny NeuMF: exact kept count, ONNX runs in ORT, notes give the time saved', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const r = fx.models.neumf;
  const ir = await readModel(r.onnxPath!);
  const data = headCsv(r.interactionsCsv, 2001, 'neumf-sp.csv');
  const candidates = headCsv(r.candidatesCsv, 1000, 'neumf-sp-cand.csv');
  const progress: string[] = [];
  const outcome = (await finetuneModel(
    ir,
    { data, epochs: 2, batchSize: 256, lr: 0.005, negatives: 2, candidates, samplePruning: { keep: 0.5 } },
    { onProgress: (_, d) => d && progress.push(d) },
  )) as Awaited<ReturnType<typeof finetuneModel>> & { samplePruning: SamplePruningReport; training: { losses: number[] } };
  const sp = outcome.samplePruning;
  assert.equal(sp.rowsTotal, 2001);
  assert.equal(sp.rowsKept, 1001); // ceil(0.5 x 2001)
  // the fixture has explicit 0/1 labels: one sample per row, no sampled negatives
  assert.equal(sp.samplesPerEpochFull, 2001);
  assert.equal(sp.samplesPerEpochPruned, 1001);
  assert.equal(sp.warmupEpochs, 1);
  assert.equal(sp.prunedEpochs, 1);
  assert.equal(sp.by, 'loss');
  assert.ok(sp.meanImportanceKept > sp.meanImportanceDropped, `kept rows must be the harder ones: ${sp.meanImportanceKept} vs ${sp.meanImportanceDropped}`);
  assert.ok(sp.metric && sp.metric.positives > 0);
  assert.equal(outcome.training.losses.length, 2);
  assert.deepEqual(outcome.settings.samplePruning, { keep: 0.5, by: 'loss', warmupEpochs: 1 });
  assert.ok(outcome.notes.some((n) => /1001 rows of highest importance \(50\.0%/.test(n)), outcome.notes.join('\n'));
  assert.ok(outcome.notes.some((n) => /s saved per epoch; estimated total saved -?\d+\.\d\d s over 1 pruned epoch/.test(n)), outcome.notes.join('\n'));
  assert.ok(outcome.notes.some((n) => /With sample pruning the result reaches NDCG@10 \d\.\d{4}/.test(n)));
  assert.ok(progress.some((p) => /epoch 2\/2/.test(p)), progress.join('\n'));

  const out = path.join(work, 'neumf-sp.onnx');
  await outcome.write(out);
  const session = await ort.InferenceSession.create(out, { logSeverityLevel: 3 });
  const res = await session.run({ user: new ort.Tensor('int64', BigInt64Array.of(0n, 1n, 2n), [3]), item: new ort.Tensor('int64', BigInt64Array.of(5n, 6n, 7n), [3]) });
  const y = res[session.outputNames[0]].data as Float32Array;
  assert.deepEqual(session.inputNames.slice().sort(), ['item', 'user']);
  assert.equal(y.length, 3);
  for (const v of y) assert.ok(v > 0 && v < 1 && Number.isFinite(v));
});

test('distill with samplePruning (1 warm-up epoch + 1 pruned, by gradnorm) completes and reports rowsKept', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const r = fx.models.neumf;
  const teacher = await readModel(r.onnxPath!);
  // positives only (implicit data): each kept row is a positive that keeps getting 2 fresh negatives
  const lines = fs.readFileSync(r.interactionsCsv, 'utf8').split('\n').slice(1, 3001).filter((l) => l.split(',')[2] === '1');
  const data = path.join(work, 'neumf-sp-distill.csv');
  fs.writeFileSync(data, 'user,item\n' + lines.map((l) => l.split(',').slice(0, 2).join(',')).join('\n') + '\n');
  const P = lines.length;
  assert.ok(P > 100);
  const outcome = (await distillModel(teacher, { data, studentDim: 2, epochs: 2, negatives: 2, samplePruning: { keep: 0.3, by: 'gradnorm' } })) as Awaited<
    ReturnType<typeof distillModel>
  > & { samplePruning: SamplePruningReport };
  assert.equal(outcome.samplePruning.rowsTotal, P);
  assert.equal(outcome.samplePruning.rowsKept, Math.ceil(0.3 * P));
  assert.equal(outcome.samplePruning.samplesPerEpochFull, 3 * P);
  assert.equal(outcome.samplePruning.samplesPerEpochPruned, 3 * Math.ceil(0.3 * P));
  assert.equal(outcome.samplePruning.by, 'gradnorm');
  // the NeuMF student ends in one dense layer: its input norm is part of the score
  assert.equal(outcome.samplePruning.lastLayerNorm, true);
  assert.ok(outcome.notes.some((n) => /the final layer's gradient norm \(\|p - y\| x \|\|\[h; 1\]\|\|\)/.test(n) && n.includes(`${Math.ceil(0.3 * P)} rows of highest importance`)));
  await outcome.write(path.join(work, 'student-sp.onnx'));
  assert.ok(fs.statSync(path.join(work, 'student-sp.onnx')).size > 0);
});
