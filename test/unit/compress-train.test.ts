import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { ModelIR } from '../../src/core/model/ir.js';
import { readModel } from '../../src/core/model/read-model.js';
import { readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { writeOnnxModel, OnnxTensorReplacement } from '../../src/core/model/onnx/write.js';
import { writeTfjsModel, TfjsReplacement } from '../../src/core/model/tfjs-write.js';
import { fileSystemLoadHandler } from '../../src/core/model/tfjs-io.js';
import { finetuneModel } from '../../src/core/compress/finetune.js';
import { EpochSampler, InteractionTable, ratingsAsPositivesNote, readInteractionTable, tableAsBatch } from '../../src/core/compress/train/interaction-table.js';
import { loadTrainee, scoreRows } from '../../src/core/compress/train/trainee.js';
import { candidateMetrics } from '../../src/core/compress/train/candidate-metrics.js';
import { bce } from '../../src/core/compress/train/loss.js';
import { architectureParams, buildStudent, distillModel, identifyArchitecture } from '../../src/core/compress/distill.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { createRng } from '../../src/core/samples/prng.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const fixtureDir = path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-train-'));

/** The first `rows` data lines of a CSV, as a new file (keeps the tests fast). */
function headCsv(src: string, rows: number, name: string): string {
  const lines = fs.readFileSync(src, 'utf8').split('\n');
  const out = path.join(work, name);
  fs.writeFileSync(out, lines.slice(0, rows + 1).join('\n') + '\n');
  return out;
}

/** Zeros the smallest 90% (by magnitude) of every embedding table and kernel; returns the new values by tensor. */
async function prunedValues(ir: ModelIR): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const t of ir.tensors.filter((x) => x.role === 'embedding' || x.role === 'dense-kernel')) {
    const v = await readTensorFloat32(t);
    const sorted = Float32Array.from(v, Math.abs).sort();
    const threshold = sorted[Math.floor(v.length * 0.9)];
    for (let i = 0; i < v.length; i++) if (Math.abs(v[i]) < threshold) v[i] = 0;
    out.set(t.name, v);
  }
  return out;
}

function zerosOf(values: Float32Array): Set<number> {
  const s = new Set<number>();
  values.forEach((x, i) => x === 0 && s.add(i));
  return s;
}

async function meanLoss(file: string, table: InteractionTable): Promise<number> {
  const t = await loadTrainee(await readModel(file));
  try {
    const p = scoreRows(t, tableAsBatch(table));
    return tf.tidy(() => bce(tf.tensor1d(p), tf.tensor1d(table.label)).dataSync()[0]);
  } finally {
    t.dispose();
  }
}

test('readInteractionTable: columns, implicit detection, extra fields, errors with line numbers', async () => {
  const a = path.join(work, 'a.csv');
  fs.writeFileSync(a, 'user,item,timestamp,genre\n0,3,100,7\n1,2,101,5\n');
  const t = await readInteractionTable(a);
  assert.deepEqual(Array.from(t.user), [0, 1]);
  assert.deepEqual(Array.from(t.item), [3, 2]);
  assert.deepEqual(Array.from(t.label), [1, 1]);
  assert.deepEqual(t.extraNames, ['genre']);
  assert.deepEqual(Array.from(t.extra), [7, 5]);
  assert.equal(t.implicit, true);
  const b = path.join(work, 'b.csv');
  fs.writeFileSync(b, 'user\titem\tlabel\n0\t3\t1\n0\t4\t0\n');
  assert.equal((await readInteractionTable(b)).implicit, false);
  const c = path.join(work, 'c.csv');
  fs.writeFileSync(c, 'user,item\n0,3\n1,x\n');
  await assert.rejects(readInteractionTable(c), /c\.csv: line 3: item 'x' is not a non-negative integer/);
  const d = path.join(work, 'd.csv');
  fs.writeFileSync(d, 'u,item\n0,3\n');
  await assert.rejects(readInteractionTable(d), /d\.csv: line 1: header has no column 'user'/);
  // a name other tools write for the user id is read as the user column
  const e = path.join(work, 'e.csv');
  fs.writeFileSync(e, 'uid,item\n0,3\n');
  assert.deepEqual([...(await readInteractionTable(e)).user], [0]);
});

test('readInteractionTable: a rating column of 0/1 is a label column; ratings 1-5 are positives, with a note; a model without a fields input ignores extra columns', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const ir = await readModel(fx.models.neumf.onnxPath!);
  // MovieLens' header with a 0/1 "rating": explicit negatives, as with a label column
  const zeroOne = path.join(work, 'zero-one.csv');
  fs.writeFileSync(zeroOne, 'userId,movieId,rating,timestamp\n0,3,1,10\n0,4,0,11\n1,2,0,12\n');
  const z = await readInteractionTable(zeroOne, { model: ir, training: true });
  assert.deepEqual([...z.label], [1, 0, 0]);
  assert.equal(z.implicit, false);
  assert.equal(z.ratingsAsPositives, undefined);
  assert.deepEqual(ratingsAsPositivesNote(z, 'probability'), []);
  // star ratings: every rated pair a positive (the NCF convention), and the note says so
  const stars = path.join(work, 'stars.csv');
  fs.writeFileSync(stars, 'userId,movieId,rating\n0,3,4.5\n1,2,1\n');
  const st = await readInteractionTable(stars, { model: ir, training: true });
  assert.deepEqual([...st.label], [1, 1]);
  assert.equal(st.implicit, true);
  assert.deepEqual([...st.rating!], [4.5, 1]);
  assert.match(ratingsAsPositivesNote(st, 'probability')[0], /stars\.csv: its 'rating' column holds ratings, and this model outputs a probability: every rated pair was trained as a positive/);
  assert.deepEqual(ratingsAsPositivesNote(st, 'rating'), [], 'a rating model regresses the ratings');
  // a title column: a NeuMF (no fields input) reads past it, as evaluation does
  const titled = path.join(work, 'titled.csv');
  fs.writeFileSync(titled, 'user,item,label,title\n0,3,1,Toy Story\n1,2,0,"Heat, 1995"\n');
  const tt = await readInteractionTable(titled, { model: ir, training: true });
  assert.deepEqual(tt.extraNames, []);
  assert.deepEqual([...tt.label], [1, 0]);
  // a DeepFM's fields input takes extra columns: a text one is refused naming the line
  const deepfm = await readModel(fx.models.deepfm.onnxPath!);
  await assert.rejects(readInteractionTable(titled, { model: deepfm, training: true }), /titled\.csv: line 2: title 'Toy Story' is not a non-negative integer/);
});

test('candidateMetrics: per-user blocks, ties count against the positive', () => {
  const users = Int32Array.of(0, 0, 0, 1, 1, 1);
  const labels = Float32Array.of(1, 0, 0, 0, 1, 0);
  // user 0: positive beats both (rank 0); user 1: a tie and a higher negative (rank 2)
  const scores = Float32Array.of(0.9, 0.1, 0.2, 0.5, 0.4, 0.4);
  const k1 = candidateMetrics(users, labels, scores, 1);
  assert.deepEqual(k1, { k: 1, hr: 0.5, ndcg: 0.5, positives: 2 });
  const k3 = candidateMetrics(users, labels, scores, 3);
  assert.equal(k3.hr, 1);
  assert.equal(k3.ndcg, (1 + 1 / Math.log2(4)) / 2);
});

test('EpochSampler: sampled negatives are never the user\'s positives; item attributes follow the item', () => {
  const table: InteractionTable = {
    file: 'x.csv',
    user: Int32Array.of(0, 0, 1),
    item: Int32Array.of(0, 1, 2),
    label: Float32Array.of(1, 1, 1),
    // col 0: item category (= item + 10); col 1: per-row noise
    extra: Int32Array.of(10, 7, 11, 8, 12, 9),
    extraNames: ['category', 'noise'],
    implicit: true,
  };
  const s = new EpochSampler(table, 3);
  assert.equal(s.size, 12);
  const e = s.epoch(createRng(3));
  let negatives = 0;
  for (let i = 0; i < 12; i++) {
    assert.equal(e.extra[i * 2], e.item[i] + 10, `row ${i}`);
    if (e.label[i] === 0) {
      negatives++;
      if (e.user[i] === 0) assert.ok(e.item[i] === 2, `user 0 negative ${e.item[i]}`);
      else assert.ok(e.item[i] !== 2);
    }
  }
  assert.equal(negatives, 9);
});

test('ONNX NeuMF pruned to 90%: fine-tuning keeps every zero, lowers the loss, and ORT runs the written file', async () => {
  await initTfjs('auto');
  const fx = await writeTinyFixtures(fixtureDir);
  const r = fx.models.neumf;
  const ir = await readModel(r.onnxPath!);
  const values = await prunedValues(ir);
  const replace = new Map<string, OnnxTensorReplacement>();
  for (const [name, v] of values) replace.set(name, { dtype: 'float32', shape: ir.tensors.find((t) => t.name === name)!.shape, data: new Uint8Array(v.buffer) });
  const prunedPath = path.join(work, 'neumf-pruned.onnx');
  await writeOnnxModel(ir, prunedPath, { replace });
  const data = headCsv(r.interactionsCsv, 6000, 'neumf-train.csv');
  const table = await readInteractionTable(data);
  assert.equal(table.implicit, false);

  const pruned = await readModel(prunedPath);
  const progress: string[] = [];
  const outcome = await finetuneModel(pruned, { data, epochs: 2, batchSize: 256, lr: 0.005, negatives: 3 }, { onProgress: (_, d) => d && progress.push(d) });
  assert.equal(outcome.settings.masks, 'keep-zeros'); // chosen because the model has pruned zeros
  // labelled data: the sampled negatives asked for are not drawn, and the notes say so
  assert.ok(outcome.notes.includes(`negatives 3 was not used: ${data} has its own negatives (rows labelled 0), so its rows were trained as they are.`), outcome.notes.join('\n'));
  assert.ok(progress.some((p) => /epoch 2\/2 loss .*ETA/.test(p)), progress.join('; '));
  const out = path.join(work, 'neumf-finetuned.onnx');
  await outcome.write(out);
  // value-only replacement: same file size
  assert.equal(fs.statSync(out).size, fs.statSync(prunedPath).size);

  const tuned = await readModel(out);
  let changed = 0;
  for (const [name, before] of values) {
    const after = await readTensorFloat32(tuned.tensors.find((t) => t.name === name)!);
    assert.deepEqual(zerosOf(after), zerosOf(before), name);
    for (let i = 0; i < after.length; i++) if (after[i] !== before[i]) changed++;
  }
  assert.ok(changed > 0);
  const lossBefore = await meanLoss(prunedPath, table);
  const lossAfter = await meanLoss(out, table);
  assert.ok(lossAfter < lossBefore, `loss ${lossBefore} -> ${lossAfter}`);

  const s = await ort.InferenceSession.create(out, { logSeverityLevel: 3 });
  const n = 4;
  const res = await s.run({
    user: new ort.Tensor('int64', BigInt64Array.of(0n, 1n, 2n, 3n), [n]),
    item: new ort.Tensor('int64', BigInt64Array.of(5n, 6n, 7n, 8n), [n]),
  });
  assert.deepEqual(res.score.dims, [n, 1]);
  for (const x of res.score.data as Float32Array) assert.ok(x > 0 && x < 1);
  await s.release();
});

test('TF.js NeuMF: masks keep-zeros vs none, cancellation', async () => {
  await initTfjs('auto');
  const fx = await writeTinyFixtures(fixtureDir);
  const r = fx.models.neumf;
  const ir = await readModel(r.tfjsModelJson!);
  const values = await prunedValues(ir);
  const replace = new Map<string, TfjsReplacement>();
  for (const [name, v] of values) replace.set(name, { dtype: 'float32', shape: ir.tensors.find((t) => t.name === name)!.shape, data: v });
  const prunedPath = path.join(work, 'neumf-pruned-tfjs', 'model.json');
  await writeTfjsModel(ir, prunedPath, { replace });
  const data = headCsv(r.interactionsCsv, 3000, 'neumf-train-small.csv');
  const pruned = await readModel(prunedPath);

  const keep = await finetuneModel(pruned, { data, epochs: 1, batchSize: 256, lr: 0.005, masks: 'keep-zeros', negatives: 2 });
  const free = await finetuneModel(pruned, { data, epochs: 1, batchSize: 256, lr: 0.005, masks: 'none' });
  assert.ok(keep.notes.some((n) => n.startsWith('negatives 2 was not used: ')), keep.notes.join('\n'));
  assert.ok(!free.notes.some((n) => n.startsWith('negatives ')), 'no note when none were asked for');
  const keepPath = path.join(work, 'keep', 'model.json');
  const freePath = path.join(work, 'free', 'model.json');
  await keep.write(keepPath);
  await free.write(freePath);
  const model = await tf.loadLayersModel(fileSystemLoadHandler(keepPath));
  assert.equal(model.countParams(), r.params);
  model.dispose();
  const keepIr = await readModel(keepPath);
  const freeIr = await readModel(freePath);
  const table = 'user_gmf_embedding/embeddings';
  const before = zerosOf(values.get(table)!);
  assert.deepEqual(zerosOf(await readTensorFloat32(keepIr.tensors.find((t) => t.name === table)!)), before);
  // without masks, the rows in the data get gradients and their zeros move
  const freeZeros = zerosOf(await readTensorFloat32(freeIr.tensors.find((t) => t.name === table)!));
  assert.ok(freeZeros.size < before.size, `${freeZeros.size} vs ${before.size}`);

  const ac = new AbortController();
  ac.abort();
  await assert.rejects(finetuneModel(pruned, { data, epochs: 1 }, { signal: ac.signal }), /fine-tuning was cancelled/);
});

test('identifyArchitecture reads the three fixtures; architectureParams matches the builders and the files', async () => {
  await initTfjs('auto');
  const fx = await writeTinyFixtures(fixtureDir);
  const expected = {
    neumf: { kind: 'neumf', users: 300, items: 500, gmfDim: 8, mlpDim: 8, hidden: [16, 8] },
    'two-tower': { kind: 'two-tower', users: 300, items: 500, dim: 16, hidden: [16] },
    deepfm: {
      kind: 'deepfm', users: 300, items: 500, dim: 8, hidden: [16],
      fieldVocab: [300, 500, 16, 8, 40, 25], fieldNames: ['user', 'item', 'item_category', 'user_segment', 'noise_a', 'noise_b'],
    },
  } as const;
  for (const kind of ['neumf', 'two-tower', 'deepfm'] as const) {
    for (const file of [fx.models[kind].onnxPath!, fx.models[kind].tfjsModelJson!]) {
      const arch = await identifyArchitecture(await readModel(file));
      assert.deepEqual(arch, expected[kind], `${kind} ${file}`);
      assert.equal(architectureParams(arch), fx.models[kind].params, kind);
      const m = buildStudent(arch, 1);
      assert.equal(m.countParams(), fx.models[kind].params);
      m.dispose();
    }
  }
});

test('distill: an ONNX NeuMF teacher gives an ONNX student of the expected size with the teacher\'s input names', async () => {
  await initTfjs('auto');
  const fx = await writeTinyFixtures(fixtureDir);
  const r = fx.models.neumf;
  const teacher = await readModel(r.onnxPath!);
  const data = headCsv(r.interactionsCsv, 3000, 'neumf-distill.csv');
  const outcome = await distillModel(teacher, { data, studentDim: 2, epochs: 1, alpha: 0.5 });
  // GMF 2, MLP 2, hidden [16, 8] scaled by sqrt(2/8) = [8, 4]:
  // 800 * (2 + 2) + (4*8 + 8) + (8*4 + 4) + (2 + 4) + 1
  const expectedParams = 3200 + 40 + 36 + 7;
  const d = (outcome as unknown as { distill: { teacherParams: number; studentParams: number } }).distill;
  assert.equal(d.studentParams, expectedParams);
  assert.equal(d.teacherParams, r.params);
  assert.deepEqual(outcome.settings.hidden, [8, 4]);
  const out = path.join(work, 'student.onnx');
  await outcome.write(out);
  const student = await readModel(out);
  const params = student.tensors.filter((t) => t.trainable).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  assert.equal(params, expectedParams);
  assert.deepEqual(student.tensors.find((t) => t.name === 'user_gmf_embedding/embeddings')!.shape, [300, 2]);
  const s = await ort.InferenceSession.create(out, { logSeverityLevel: 3 });
  assert.deepEqual([...s.inputNames].sort(), ['item', 'user']);
  assert.deepEqual(s.outputNames, ['score']);
  const res = await s.run({ user: new ort.Tensor('int64', BigInt64Array.of(1n, 2n), [2]), item: new ort.Tensor('int64', BigInt64Array.of(3n, 4n), [2]) });
  assert.deepEqual(res.score.dims, [2, 1]);
  await s.release();
  await assert.rejects(distillModel(teacher, { data, ratio: 1000, epochs: 1 }), /no student of this kind fits 13 parameters/);
  // a teacher whose ids are int32 (as some exporters write them): the student takes int32 too
  const proto = onnx.ModelProto.decode(fs.readFileSync(r.onnxPath!));
  for (const i of proto.graph!.input!) i.type!.tensorType!.elemType = onnx.TensorProto.DataType.INT32;
  const int32Teacher = path.join(work, 'neumf-int32.onnx');
  fs.writeFileSync(int32Teacher, onnx.ModelProto.encode(proto).finish());
  const o32 = await distillModel(await readModel(int32Teacher), { data, studentDim: 2, epochs: 1 });
  const out32 = path.join(work, 'student-int32.onnx');
  await o32.write(out32);
  assert.deepEqual((await readModel(out32)).graph.inputs.map((i) => i.dtype), ['int32', 'int32']);
  const s32 = await ort.InferenceSession.create(out32, { logSeverityLevel: 3 });
  const res32 = await s32.run({ user: new ort.Tensor('int32', Int32Array.of(1, 2), [2]), item: new ort.Tensor('int32', Int32Array.of(3, 4), [2]) });
  assert.deepEqual(res32.score.dims, [2, 1]);
  await s32.release();
});

test('gradual pruning during fine-tuning: masks every 5 steps along the cubic ramp, exact final zeros, columns kept aligned, both formats', async () => {
  await initTfjs('auto');
  const fx = await writeTinyFixtures(fixtureDir);
  const r = fx.models.neumf;
  const data = headCsv(r.interactionsCsv, 2000, 'neumf-gradual.csv');
  const table = await readInteractionTable(data);
  const batchSize = 256;
  // explicit labels: an epoch is the table's rows
  const batchesPerEpoch = Math.ceil(new EpochSampler(table, 4).size / batchSize);
  for (const file of [r.onnxPath!, r.tfjsModelJson!]) {
    const ir = await readModel(file);
    const gradual = { prune: { sparsity: 0.5, scope: 'layer' as const, granularity: 'column' as const }, rampEpochs: 1, frequency: 5 };
    const progress: string[] = [];
    const outcome = await finetuneModel(ir, { data, epochs: 2, batchSize, lr: 0.005, gradual }, { onProgress: (_, d) => d && progress.push(d) });
    // updates at steps 0, 5, ... below the end of the ramp, and one at its end
    const updates = Math.ceil(batchesPerEpoch / 5) + 1;
    const note = outcome.notes.find((n) => n.startsWith('Gradual magnitude pruning'));
    assert.ok(note?.includes(`(${updates} updates)`), `${note} (expected ${updates} updates)`);
    assert.ok(progress.some((p) => /fine-tuning with gradual pruning: epoch 2\/2/.test(p)), progress.join('; '));
    const out = path.join(work, `gradual-${path.basename(path.dirname(file))}-${path.basename(file)}`);
    await outcome.write(out);
    const tuned = await readModel(out);
    const v = async (n: string) => readTensorFloat32(tuned.tensors.find((t) => t.name === n)!);
    const ug = await v('user_gmf_embedding/embeddings');
    const ig = await v('item_gmf_embedding/embeddings');
    const d = tuned.tensors.find((t) => t.name === 'user_gmf_embedding/embeddings')!.shape[1];
    const zeroCols = (x: Float32Array) => Array.from({ length: d }, (_, j) => j).filter((j) => x.every((y, i) => i % d !== j || y === 0));
    assert.equal(zeroCols(ug).length, Math.floor(0.5 * d), 'half of the GMF columns zeroed');
    assert.deepEqual(zeroCols(ug), zeroCols(ig), 'the same columns in both GMF tables');
    // every other GMF weight trained and non-zero
    assert.equal(ug.filter((x) => x === 0).length, (ug.length / d) * Math.floor(0.5 * d));
    // a dense kernel element-wise at exactly floor(0.5 n) zeros (its dead rows, if any, come on top)
    const k1 = await v('mlp_dense_1/kernel');
    assert.equal(k1.filter((x) => x === 0).length, Math.floor(0.5 * k1.length));
    // biases and the scoring layer are untouched by the pruning
    assert.equal((await v('mlp_dense_1/bias')).filter((x) => x === 0).length < (await v('mlp_dense_1/bias')).length, true);
    assert.equal((await v('prediction/kernel')).filter((x) => x === 0).length, 0);
  }
  await assert.rejects(
    finetuneModel(await readModel(r.onnxPath!), { data, epochs: 1, gradual: { prune: { sparsity: 0.5 }, rampEpochs: 2 } }),
    /rampEpochs must be an integer from 0 to the 1 epochs/,
  );
});

test('fine-tuning against a teacher: itself at alpha 1 changes nothing (compiled: zero gradients), alpha 0 equals plain fine-tuning on both engines', async () => {
  await initTfjs('auto');
  const fx = await writeTinyFixtures(fixtureDir);
  const r = fx.models.neumf;
  const ir = await readModel(r.onnxPath!);
  const data = headCsv(r.interactionsCsv, 3000, 'neumf-teacher.csv');
  const original = new Map<string, Float32Array>();
  for (const t of ir.tensors) if (t.trainable) original.set(t.name, await readTensorFloat32(t));
  const valuesOf = async (o: Awaited<ReturnType<typeof finetuneModel>>, name: string) => {
    const out = path.join(work, `${name}.onnx`);
    await o.write(out);
    const m = new Map<string, Float32Array>();
    for (const t of (await readModel(out)).tensors) if (t.trainable) m.set(t.name, await readTensorFloat32(t));
    return m;
  };
  for (const engine of ['compiled', 'tape'] as const) {
    const common = { data, epochs: 1, batchSize: 256, lr: 0.01, seed: 3, engine };
    const self = await finetuneModel(ir, { ...common, teacher: r.onnxPath!, alpha: 1 });
    assert.equal(self.settings.teacher, r.onnxPath);
    assert.ok(self.notes.some((n) => n.startsWith(`Teacher: ${r.onnxPath}`)), self.notes.join('\n'));
    const same = await valuesOf(self, `self-${engine}`);
    // exact only where teacher and student run the same arithmetic (both compiled); on the tape the
    // teacher still scores on the compiled engine, and Adam scales float-noise gradients up to lr
    if (engine === 'compiled') for (const [name, v] of original) {
      const got = same.get(name)!;
      let maxDiff = 0;
      for (let i = 0; i < v.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - v[i]));
      // the teacher's scores equal the student's at every step: the soft gradient is 0 (float noise aside)
      assert.ok(maxDiff < 1e-6, `${engine}: ${name} moved by ${maxDiff}`);
    }
    const plain = await valuesOf(await finetuneModel(ir, common), `plain-${engine}`);
    const hardOnly = await valuesOf(await finetuneModel(ir, { ...common, teacher: r.onnxPath!, alpha: 0 }), `hard-${engine}`);
    for (const [name, v] of plain) assert.deepEqual(hardOnly.get(name), v, `${engine}: ${name}`);
    const moved = [...plain].some(([name, v]) => v.some((x, i) => x !== original.get(name)![i]));
    assert.ok(moved, 'plain fine-tuning changed the weights');
  }
});
