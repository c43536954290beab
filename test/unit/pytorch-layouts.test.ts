// The same PyTorch-trained weights laid out as other export code writes them
// (test/fixtures/pytorch/export_models.py, "layouts"): a DeepFM with one input per field, a table
// stored [dim, items] and gathered on axis 1, a model exported without dynamic_axes (batch fixed
// at 4). Each is scored as PyTorch scores it; the per-field DeepFM also trains.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readModel } from '../../src/core/model/read-model.js';
import { evaluateModel, modelVocab, openScorer } from '../../src/core/eval/evaluate.js';
import { finetuneModel } from '../../src/core/compress/finetune.js';
import { quantizeModel } from '../../src/core/compress/quantize.js';
import { pytorchExports, type ManifestLayout } from '../fixtures/pytorch/exports.js';

function layout(name: string): { dir: string; l: ManifestLayout } | undefined {
  const e = pytorchExports();
  if (!e) return undefined;
  const l = e.layouts.find((x) => x.file === name);
  assert.ok(l, `${name} is in the manifest`);
  return { dir: e.dir, l };
}

test('PyTorch layouts: each scores as PyTorch does on its candidates (NDCG@10 within 1e-3)', async (t) => {
  const e = pytorchExports();
  if (!e) return t.skip('PyTorch not installed');
  assert.deepEqual(e.layouts.map((l) => l.file), ['deepfm_per_field.onnx', 'mf_item_columns.onnx', 'neumf_fixed_batch.onnx']);
  for (const l of e.layouts) {
    const r = await evaluateModel(path.join(e.dir, l.file), { candidates: path.join(e.dir, l.candidates), k: 10 });
    assert.ok(Math.abs(r.ndcg! - l.ndcg10) < 1e-3, `${l.file}: NDCG@10 ${r.ndcg} vs PyTorch ${l.ndcg10}`);
  }
});

test('PyTorch layouts: the item table gathered on axis 1 is a transposed embedding of 400 ids; the fixed-batch model runs in calls of 4', async (t) => {
  const a = layout('mf_item_columns.onnx');
  if (!a) return t.skip('PyTorch not installed');
  const ir = await readModel(path.join(a.dir, a.l.file));
  const table = ir.tensors.find((x) => x.name === 'item_factors')!;
  assert.deepEqual([table.role, table.transposed, table.shape], ['embedding', true, [16, 400]]);
  assert.equal(modelVocab(ir).item, 400);
  const b = layout('neumf_fixed_batch.onnx')!;
  const scorer = await openScorer(path.join(b.dir, b.l.file));
  try {
    assert.equal(scorer.fixedBatch, 4);
  } finally {
    await scorer.close();
  }
  // int8 tables on the fixed-batch model (checked against the float model in calls of 4), written with the batch still fixed
  const o = await quantizeModel(await readModel(path.join(b.dir, b.l.file)), { dtype: 'int8' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-layouts-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'q.onnx');
  await o.write(out);
  const r = await evaluateModel(out, { candidates: path.join(b.dir, b.l.candidates), k: 10 });
  assert.ok(r.ndcg! > 0.97 * b.l.ndcg10, `int8: NDCG@10 ${r.ndcg} vs ${b.l.ndcg10}`);
});

test('PyTorch layouts: the per-field DeepFM fine-tunes with each input fed from the data column of its name', async (t) => {
  const a = layout('deepfm_per_field.onnx');
  if (!a) return t.skip('PyTorch not installed');
  const ir = await readModel(path.join(a.dir, a.l.file));
  for (const engine of ['compiled', 'tape'] as const) {
    const settings = { data: path.join(a.dir, a.l.train), candidates: path.join(a.dir, a.l.candidates), epochs: 1, batchSize: 512, engine };
    const o = (await finetuneModel(ir, settings)) as Awaited<ReturnType<typeof finetuneModel>> & {
      training: { before: { ndcg: number }; after: { ndcg: number } };
    };
    assert.ok(Math.abs(o.training.before.ndcg - a.l.ndcg10) < 1e-3, `${engine}: before ${o.training.before.ndcg} vs PyTorch ${a.l.ndcg10}`);
    assert.ok(o.training.after.ndcg > 0.95 * o.training.before.ndcg, `${engine}: ${o.training.before.ndcg} -> ${o.training.after.ndcg}`);
    // the genre and age tables trained: they are fed from their columns, not left out
    const changed = o.changes.map((c) => c.tensor);
    for (const name of ['genre_embedding.weight', 'age_embedding.weight']) assert.ok(changed.some((c) => c.endsWith(name)), `${engine}: ${name} not trained (${changed.join(', ')})`);
  }
});
