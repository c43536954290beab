// Models exported by PyTorch itself (torch.onnx.export of modules trained with
// BCEWithLogitsLoss), made at test time by test/fixtures/pytorch/export_models.py with Debian's
// python3-torch: nothing generated is committed. These are the files our users bring; our own
// fixtures all end in a sigmoid. Skipped where torch is missing, except in CI (.ci/run installs it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { readModel } from '../../src/core/model/read-model.js';
import { loadTrainee, scoreRows, traineeOutputKind } from '../../src/core/compress/train/trainee.js';
import { readInteractionTable } from '../../src/core/compress/train/interaction-table.js';
import { graphOutputFinding } from '../../src/core/compress/train/output-kind.js';
import { finetuneModel } from '../../src/core/compress/finetune.js';
import { distillModel } from '../../src/core/compress/distill.js';

import { pytorchExports } from '../fixtures/pytorch/exports.js';

test('PyTorch exports: output kind from the graph, and our TF.js translation scores as PyTorch did', async (t) => {
  const e = pytorchExports();
  if (!e) return t.skip('PyTorch not installed');
  assert.equal(e.models.length, 4);
  for (const m of e.models) {
    const ir = await readModel(path.join(e.dir, m.file));
    assert.equal(graphOutputFinding(ir)?.bounded, m.output === 'probability', m.file);
    const trainee = await loadTrainee(ir);
    try {
      const table = await readInteractionTable(path.join(e.dir, m.candidates));
      const kind = await traineeOutputKind(ir, trainee, table);
      assert.equal(kind.kind, m.output, `${m.file}: ${kind.reason}`);
      assert.equal(kind.from, 'graph');
      // the manifest's 10 rows, scored by PyTorch
      const ins = m.sample.inputs;
      const fields = ins.fields as number[][] | undefined;
      const n = m.sample.scores.length;
      const user = Int32Array.from(fields ? fields.map((f) => f[0]) : (ins.user as number[]));
      const item = Int32Array.from(fields ? fields.map((f) => f[1]) : (ins.item as number[]));
      const E = fields ? fields[0].length - 2 : 0;
      const extra = Int32Array.from(fields ? fields.flatMap((f) => f.slice(2)) : []);
      const ours = scoreRows(trainee, { user, item, extra, extraCount: E, label: new Float32Array(n) });
      ours.forEach((s, i) => assert.ok(Math.abs(s - m.sample.scores[i]) < 1e-4, `${m.file} row ${i}: ours ${s}, PyTorch ${m.sample.scores[i]}`));
      if (m.output === 'logit') assert.ok(m.scoreMin < 0 && m.scoreMax > 1, `${m.file} outputs unbounded logits`);
    } finally {
      trainee.dispose();
    }
  }
});

test('PyTorch exports: fine-tuning trains each with the loss of its output kind; the output still runs in ORT and keeps the accuracy', async (t) => {
  const e = pytorchExports();
  if (!e) return t.skip('PyTorch not installed');
  for (const m of e.models) {
    const ir = await readModel(path.join(e.dir, m.file));
    const train = path.join(e.dir, m.inputs.includes('fields') ? 'deepfm_train.csv' : 'train.csv');
    const run = finetuneModel(ir, { data: train, candidates: path.join(e.dir, m.candidates), epochs: 1, batchSize: 512 });
    const outcome = (await run) as Awaited<ReturnType<typeof finetuneModel>> & {
      training: { losses: number[]; outputKind: { kind: string }; before: { ndcg: number }; after: { ndcg: number } };
    };
    assert.equal(outcome.training.outputKind.kind, m.output, m.file);
    assert.ok(outcome.training.losses.every((l) => l > 0 && l < 1), `${m.file}: cross-entropy in (0, 1) for a trained model: ${outcome.training.losses}`);
    // before = PyTorch's own NDCG (same candidates, same tie rule)
    assert.ok(Math.abs(outcome.training.before.ndcg - m.ndcg10) < 1e-3, `${m.file}: ${outcome.training.before.ndcg} vs PyTorch ${m.ndcg10}`);
    assert.ok(outcome.training.after.ndcg > 0.95 * outcome.training.before.ndcg, `${m.file}: ${outcome.training.before.ndcg} -> ${outcome.training.after.ndcg}`);
    const out = path.join(e.dir, `ft-${m.file}`);
    await outcome.write(out);
    const s = await ort.InferenceSession.create(out);
    const feeds: Record<string, ort.Tensor> = {};
    const ins = m.sample.inputs;
    if (ins.fields) {
      const f = ins.fields as number[][];
      feeds.fields = new ort.Tensor('int64', BigInt64Array.from(f.flat().map(BigInt)), [f.length, f[0].length]);
    } else {
      feeds.user = new ort.Tensor('int64', BigInt64Array.from((ins.user as number[]).map(BigInt)), [(ins.user as number[]).length]);
      feeds.item = new ort.Tensor('int64', BigInt64Array.from((ins.item as number[]).map(BigInt)), [(ins.item as number[]).length]);
    }
    const res = await s.run(feeds);
    const v = res[s.outputNames[0]].data as Float32Array;
    assert.equal(v.length, m.sample.scores.length);
    if (m.output === 'logit') assert.ok(v.some((x) => x < 0 || x > 1), `${m.file}: the fine-tuned model still outputs logits`);
  }
});

test('PyTorch NeuMF logit teacher: the distilled student outputs logits too and keeps most of the ranking quality', async (t) => {
  const e = pytorchExports();
  if (!e) return t.skip('PyTorch not installed');
  const ir = await readModel(path.join(e.dir, 'neumf_logit.onnx'));
  const o = (await distillModel(ir, { data: path.join(e.dir, 'train.csv'), candidates: path.join(e.dir, 'candidates.csv'), ratio: 4, epochs: 3 })) as Awaited<ReturnType<typeof distillModel>> & {
    distill: { ratio: number; training: { losses: number[] }; outputKind: { kind: string }; teacherMetrics: { ndcg: number }; studentMetrics: { ndcg: number } };
  };
  assert.equal(o.distill.outputKind.kind, 'logit');
  assert.ok(o.distill.ratio >= 4);
  assert.ok(o.distill.training.losses.every((l) => l > 0), `${o.distill.training.losses}`);
  assert.ok(o.distill.studentMetrics.ndcg > 0.7 * o.distill.teacherMetrics.ndcg, `student ${o.distill.studentMetrics.ndcg} vs teacher ${o.distill.teacherMetrics.ndcg}`);
  const out = path.join(e.dir, 'student.onnx');
  await o.write(out);
  assert.equal(graphOutputFinding(await readModel(out))?.bounded, false);
});
