// The same PyTorch-trained weights laid out as other export code writes them
// (test/fixtures/pytorch/export_models.py, "layouts"): a DeepFM with one input per field, a table
// stored [dim, items] and gathered on axis 1, a model exported without dynamic_axes (batch fixed
// at 4), a two-tower whose tables are nn.EmbeddingBag (exported as Loops). Each is scored as
// PyTorch scores it; the per-field DeepFM also trains; the bags' tables quantize inside their Loops.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readModel } from '../../src/core/model/read-model.js';
import { evaluateModel, modelVocab, openScorer } from '../../src/core/eval/evaluate.js';
import { finetuneModel } from '../../src/core/compress/finetune.js';
import { quantizeModel } from '../../src/core/compress/quantize.js';
import { searchSpace } from '../../src/core/compress/plan/space.js';
import { analyzeModel } from '../../src/core/analysis/analyze-model.js';
import * as ort from 'onnxruntime-node';
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
  assert.deepEqual(e.layouts.map((l) => l.file), ['deepfm_per_field.onnx', 'mf_item_columns.onnx', 'neumf_fixed_batch.onnx', 'twotower_bags.onnx']);
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

test('PyTorch layouts: nn.EmbeddingBag tables (gathered in Loop bodies) are stored int8 and int4 there, scoring as the float model within rounding', async (t) => {
  const a = layout('twotower_bags.onnx');
  if (!a) return t.skip('PyTorch not installed');
  const src = path.join(a.dir, a.l.file);
  const ir = await readModel(src);
  const bags = ['user_bag.weight', 'item_bag.weight'];
  for (const name of bags) {
    const lookups = ir.graph.nodes.filter((n) => n.op === 'Gather' && n.inputs[0] === name);
    assert.ok(lookups.length === 1 && /\/body$/.test(lookups[0].scope ?? ''), `${name} is gathered in a Loop body (${lookups.map((n) => n.scope)})`);
  }
  // the analysis advises only what rewrites them (int8; its rank and row advice would be left undone)
  const advice = (await analyzeModel(ir)).opportunities.filter((o) => bags.includes(o.target));
  assert.deepEqual(advice.map((o) => `${o.kind} ${o.target}`).sort(), ['quantize-int8 item_bag.weight', 'quantize-int8 user_bag.weight']);
  // the search offers these tables their storage types only: rows, dims and low rank do not rewrite lookups in a Loop
  for (const u of searchSpace(ir).filter((x) => bags.includes(x.name))) {
    assert.ok(u.options.some((o) => o.id === 'int4'), `${u.name}: ${u.options.map((o) => o.id)}`);
    assert.deepEqual(u.options.filter((o) => o.energy !== undefined || o.rowsKeep !== undefined || o.dimsKeep !== undefined).map((o) => o.id), [], u.name);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-bags-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const feeds = { user: new ort.Tensor('int64', BigInt64Array.from([0n, 7n, 299n, 42n]), [4]), item: new ort.Tensor('int64', BigInt64Array.from([399n, 3n, 0n, 42n]), [4]) };
  const run = async (file: string): Promise<number[]> => {
    const s = await ort.InferenceSession.create(file);
    try {
      return Array.from((await s.run(feeds))[s.outputNames[0]].data as Float32Array);
    } finally {
      await s.release();
    }
  };
  const float = await run(src);
  for (const [dtype, tolerance, keep] of [['int8', 0.005, 0.98], ['int4', 0.06, 0.9]] as const) {
    const o = await quantizeModel(ir, { dtype, tensors: 'embeddings' });
    assert.deepEqual(o.changes.map((c) => c.tensor).sort(), [...bags].sort(), `${dtype}: ${JSON.stringify(o.notes)}`);
    const out = path.join(dir, `${dtype}.onnx`);
    await o.write(out);
    const q = await readModel(out);
    assert.deepEqual(q.tensors.filter((x) => bags.includes(x.name)), [], `${dtype}: the float tables are gone`);
    // each Loop body now gathers the stored rows of the main graph's quantized table
    for (const name of bags) {
      const stored = q.tensors.find((x) => x.name.startsWith(name) && x.dtype === (dtype === 'int8' ? 'int8' : 'uint8'));
      assert.ok(stored, `${dtype}: ${name} stored (${q.tensors.map((x) => x.name)})`);
      assert.ok(q.graph.nodes.some((n) => n.op === 'Gather' && n.inputs[0] === stored!.name && /\/body$/.test(n.scope ?? '')), `${dtype}: ${stored!.name} gathered in a body`);
    }
    const scores = await run(out);
    const worst = Math.max(...scores.map((x, i) => Math.abs(x - float[i])));
    assert.ok(worst < tolerance, `${dtype}: max |score change| ${worst} (scores ${float})`);
    const r = await evaluateModel(out, { candidates: path.join(a.dir, a.l.candidates), k: 10 });
    assert.ok(r.ndcg! >= keep * a.l.ndcg10, `${dtype}: NDCG@10 ${r.ndcg} vs ${a.l.ndcg10}`);
  }
});
