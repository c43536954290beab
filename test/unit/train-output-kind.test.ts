// Output semantics: what a model's output is (probability / logit / rating), decided from the
// graph or the scores, and the loss each kind trains with. The bug this guards against: a model
// that outputs logits (PyTorch's BCEWithLogitsLoss habit) trained with a cross-entropy on clipped
// probabilities gets no gradient on most rows.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { readModel } from '../../src/core/model/read-model.js';
import type { ModelIR } from '../../src/core/model/ir.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { createSampleModel, SampleModelResult } from '../../src/core/samples/sample-models.js';
import type { SampleKind } from '../../src/core/samples/models.js';
import { bce, bceWithLogits, lossFor, rowLoss, rowOutputGradient } from '../../src/core/compress/train/loss.js';
import { decideOutputKind, graphOutputFinding } from '../../src/core/compress/train/output-kind.js';
import { distillationLoss, distillModel } from '../../src/core/compress/distill.js';
import { finetuneModel } from '../../src/core/compress/finetune.js';
import { pruneMagnitude } from '../../src/core/compress/prune-magnitude.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-output-kind-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

const samples = new Map<string, SampleModelResult>();
async function sample(kind: SampleKind, output: 'probability' | 'logit'): Promise<SampleModelResult> {
  const key = `${kind}-${output}`;
  let r = samples.get(key);
  if (!r) {
    r = await createSampleModel(kind, path.join(dir, key), { size: 'tiny', formats: ['tfjs', 'onnx'], seed: 5, output });
    samples.set(key, r);
  }
  return r;
}

test('losses: BCE with logits equals BCE of the sigmoid where both are finite, and keeps its gradient where clipping kills it', async () => {
  await initTfjs('cpu');
  const z = tf.tensor1d([-4, -1, 0, 0.5, 3]);
  const y = tf.tensor1d([0, 1, 1, 0, 1]);
  const a = bceWithLogits(z, y).dataSync()[0];
  const b = bce(tf.sigmoid(z), y).dataSync()[0];
  assert.ok(Math.abs(a - b) < 1e-5, `${a} vs ${b}`);
  // a confidently wrong logit: -20 for a positive. With logits the gradient is sigmoid(z) - y = -1
  // (over the batch of 1); through clipped probabilities it is 0: the clipping bug.
  const zBad = tf.tensor1d([-20]);
  const one = tf.tensor1d([1]);
  const gLogit = tf.grad((x: tf.Tensor) => bceWithLogits(x, one))(zBad).dataSync()[0];
  const gClipped = tf.grad((x: tf.Tensor) => bce(x, one))(zBad).dataSync()[0];
  assert.ok(Math.abs(gLogit + 1) < 1e-6, `logit gradient ${gLogit}`);
  assert.equal(gClipped, 0);
  // rating: squared error
  assert.ok(Math.abs(lossFor('rating')(tf.tensor1d([3, 5]), tf.tensor1d([4, 4])).dataSync()[0] - 1) < 1e-6);
  // per-row forms agree with the batch losses
  for (const [kind, s, t] of [['logit', -3, 1], ['logit', 2, 0], ['probability', 0.2, 1], ['rating', 2.5, 4]] as const) {
    const batch = lossFor(kind)(tf.tensor1d([s]), tf.tensor1d([t])).dataSync()[0];
    assert.ok(Math.abs(rowLoss(kind, s, t) - batch) < 1e-5, `${kind} row loss`);
  }
  assert.ok(Math.abs(rowOutputGradient('logit', 0, 1) + 0.5) < 1e-9);
  assert.equal(rowOutputGradient('probability', 0.25, 1), -0.75);
  assert.equal(rowOutputGradient('rating', 5, 4), 2);
});

test('distillation loss: zero gradient when the student matches the teacher, for logits and probabilities, at any temperature', async () => {
  await initTfjs('cpu');
  const teacher = tf.tensor1d([-3, -0.5, 0.7, 4]);
  const labels = tf.tensor1d([0, 1, 1, 1]);
  for (const T of [1, 3]) {
    const soft = distillationLoss('logit', 1, T);
    // the student's scores are a copy: the gradient must not also flow into the targets
    const g = tf.grad((x: tf.Tensor) => soft(x, labels, teacher))(teacher.clone()).dataSync();
    for (const v of g) assert.ok(Math.abs(v) < 1e-5, `logit T=${T}: gradient ${v}`);
    // moving the student away raises the soft loss
    const at = soft(teacher, labels, teacher).dataSync()[0];
    const off = soft(tf.add(teacher, 1), labels, teacher).dataSync()[0];
    assert.ok(off > at, `T=${T}: ${off} > ${at}`);
    // probability teacher and student: the same at the teacher's probabilities
    const p = tf.sigmoid(teacher);
    const gp = tf.grad((x: tf.Tensor) => distillationLoss('probability', 1, T)(x, labels, p))(p.clone()).dataSync();
    for (const v of gp) assert.ok(Math.abs(v) < 1e-3, `probability T=${T}: gradient ${v}`);
  }
  // a soft loss can never be negative (the bug printed -27.5 when raw logits were used as targets)
  const l = distillationLoss('logit', 0.5, 2)(tf.tensor1d([-10, 6]), tf.tensor1d([0, 1]), tf.tensor1d([-12, 8])).dataSync()[0];
  assert.ok(l >= 0);
});

test('output kind from the graph: sample models ending in a sigmoid and in a logit, TF.js and ONNX, all three architectures', async () => {
  for (const kind of ['neumf', 'two-tower', 'deepfm'] as const) {
    for (const output of ['probability', 'logit'] as const) {
      const r = await sample(kind, output);
      for (const file of [r.tfjsModelJson!, r.onnxPath!]) {
        const ir = await readModel(file);
        const g = graphOutputFinding(ir);
        assert.ok(g, `${kind} ${output} ${file}: the graph should tell`);
        assert.equal(g.bounded, output === 'probability', `${kind} ${output} ${path.basename(file)}: ${g.op} at ${g.node}`);
        const d = decideOutputKind(ir, { scores: () => assert.fail('the graph decides; no scores needed') });
        assert.equal(d.kind, output);
        assert.equal(d.from, 'graph');
      }
    }
  }
});

function irEndingIn(op: string): ModelIR {
  return {
    format: 'onnx',
    path: '/x/model.onnx',
    files: [],
    tensors: [],
    layers: [],
    metadata: {},
    native: undefined,
    graph: { inputs: [{ name: 'user' }], outputs: [{ name: 'score' }], nodes: [{ name: 'last', op, inputs: ['h'], outputs: ['score'], attrs: {} }] },
  };
}

test('output kind when the graph cannot tell: from the scores; ratings by fit; the flag wins', () => {
  const unknown = irEndingIn('TopK');
  assert.equal(graphOutputFinding(unknown), undefined);
  const inUnit = decideOutputKind(unknown, { scores: () => Float32Array.from([0.1, 0.9, 0.5]) });
  assert.deepEqual([inUnit.kind, inUnit.from], ['probability', 'scores']);
  const wide = decideOutputKind(unknown, { scores: () => Float32Array.from([-4, 0.3, 2.5]) });
  assert.deepEqual([wide.kind, wide.from], ['logit', 'scores']);
  // a linear output on rating data: a regression when the scores fit the ratings, else a logit
  const ratings = Float32Array.from([1, 2, 3, 4, 5, 4]);
  const fits = decideOutputKind(irEndingIn('Gemm'), { scores: () => Float32Array.from([1.2, 2.1, 2.8, 4.1, 4.7, 3.9]), targets: { ratings } });
  assert.equal(fits.kind, 'rating');
  const ranks = decideOutputKind(irEndingIn('Gemm'), { scores: () => Float32Array.from([-3, -1, 0.5, 2, 6, 1]), targets: { ratings } });
  assert.equal(ranks.kind, 'logit');
  assert.equal(decideOutputKind(irEndingIn('Sigmoid'), {}).kind, 'probability');
  const forced = decideOutputKind(irEndingIn('Sigmoid'), { flag: 'logit' });
  assert.deepEqual([forced.kind, forced.from], ['logit', 'flag']);
});

test('fine-tuning a pruned logit-output model: the logit loss recovers it; treating its logits as probabilities does not (both formats)', async () => {
  const r = await sample('neumf', 'logit');
  for (const file of [r.onnxPath!, r.tfjsModelJson!]) {
    const ir = await readModel(file);
    const pruned = await pruneMagnitude(ir, { sparsity: 0.8 });
    const cut = file.endsWith('.onnx') ? path.join(dir, 'cut.onnx') : path.join(dir, 'cut-tfjs', 'model.json');
    await pruned.write(cut);
    const cutIr = await readModel(cut);
    const common = { data: r.interactionsCsv, candidates: r.candidatesCsv, epochs: 2, lr: 0.005, batchSize: 256 };
    const auto = (await finetuneModel(cutIr, common)) as Awaited<ReturnType<typeof finetuneModel>> & {
      training: { losses: number[]; outputKind: { kind: string }; before: { ndcg: number }; after: { ndcg: number } };
    };
    const wrong = (await finetuneModel(cutIr, { ...common, outputKind: 'probability' })) as typeof auto;
    assert.equal(auto.training.outputKind.kind, 'logit');
    assert.match(auto.notes.join('\n'), /Output: logit \(the graph ends in/);
    assert.ok(auto.training.losses.every((l) => l > 0), `cross-entropy is positive: ${auto.training.losses}`);
    assert.ok(auto.training.after.ndcg > auto.training.before.ndcg, `${path.basename(file)}: logit loss recovers: ${auto.training.before.ndcg} -> ${auto.training.after.ndcg}`);
    assert.ok(auto.training.after.ndcg > wrong.training.after.ndcg, `${path.basename(file)}: logit loss ${auto.training.after.ndcg} beats clipped probabilities ${wrong.training.after.ndcg}`);
    if (file.endsWith('.onnx')) {
      // the written model still outputs logits and runs in ORT
      const out = path.join(dir, 'ft.onnx');
      await auto.write(out);
      const s = await ort.InferenceSession.create(out);
      const res = await s.run({ user: new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 2n])), item: new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 2n])) });
      const v = res[s.outputNames[0]].data as Float32Array;
      assert.equal(v.length, 3);
      assert.ok(v.every(Number.isFinite));
    }
  }
});

test('distilling a logit teacher gives a logit student (no sigmoid at its end) with positive losses', async () => {
  const r = await sample('neumf', 'logit');
  const ir = await readModel(r.onnxPath!);
  const outcome = (await distillModel(ir, { data: r.interactionsCsv, candidates: r.candidatesCsv, ratio: 2, epochs: 2 })) as Awaited<ReturnType<typeof distillModel>> & {
    distill: { training: { losses: number[] }; outputKind: { kind: string }; teacherMetrics: { ndcg: number }; studentMetrics: { ndcg: number } };
  };
  assert.equal(outcome.distill.outputKind.kind, 'logit');
  assert.ok(outcome.distill.training.losses.every((l) => l > 0 && Number.isFinite(l)), `${outcome.distill.training.losses}`);
  const out = path.join(dir, 'student.onnx');
  await outcome.write(out);
  const student = await readModel(out);
  assert.equal(graphOutputFinding(student)?.bounded, false, 'the student ends in a logit like its teacher');
  assert.ok(outcome.distill.studentMetrics.ndcg > 0.5 * outcome.distill.teacherMetrics.ndcg, `student ${outcome.distill.studentMetrics.ndcg} vs teacher ${outcome.distill.teacherMetrics.ndcg}`);
});

test('dynamic pruning during fine-tuning: the target sparsity holds at the end, masks changed on the way, pruned weights are exact zeros', async () => {
  const r = await sample('neumf', 'logit');
  const ir = await readModel(r.onnxPath!);
  const o = (await finetuneModel(ir, {
    data: r.interactionsCsv,
    candidates: r.candidatesCsv,
    epochs: 2,
    batchSize: 128,
    masks: 'none',
    dynamic: { prune: { sparsity: 0.8 }, regrowEpochs: 1, frequency: 10 },
  })) as Awaited<ReturnType<typeof finetuneModel>> & { training: { before: { ndcg: number }; after: { ndcg: number } } };
  const notes = o.notes.join('\n');
  assert.match(notes, /Engine: TF\.js tape \(dynamic pruning/);
  const m = /\((\d+) choices, (\d+) weights changed sides\), then fixed\. (\d+) of (\d+) chosen weights are zero/.exec(notes);
  assert.ok(m, notes);
  assert.ok(Number(m[1]) >= 3, `mask choices ${m[1]}`);
  assert.ok(Number(m[2]) > 0, 'some masks changed during regrowth');
  assert.equal(Number(m[3]), Math.floor(0.8 * Number(m[4])), 'exactly the target share is zero after the fixed epoch');
  // the written file holds those zeros (the write reads the trained values)
  const out = path.join(dir, 'dynamic.onnx');
  await o.write(out);
  const written = await readModel(out);
  const { chooseTensors } = await import('../../src/core/compress/prune-magnitude.js');
  const { readTensorFloat32 } = await import('../../src/core/model/tensor-data.js');
  let zeros = 0;
  let count = 0;
  for (const t of chooseTensors(written, undefined)) {
    const v = await readTensorFloat32(t);
    count += v.length;
    for (const x of v) if (x === 0) zeros++;
  }
  assert.equal(count, Number(m[4]));
  assert.equal(zeros, Number(m[3]), 'the exact zeros are in the written file');
  assert.ok(o.training.after.ndcg > 0.5 * o.training.before.ndcg, `${o.training.before.ndcg} -> ${o.training.after.ndcg}`);
});
