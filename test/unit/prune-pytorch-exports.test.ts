// Structured pruning on models PyTorch trained and exported (test/fixtures/pytorch/exports.ts).
// PyTorch writes a two-tower's dot product as Mul -> ReduceSum with its axes in a Constant node
// (not an initializer): the channel walk must read them there, and prune the towers' last layers
// in pairs, as the dot couples them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readModel } from '../../src/core/model/read-model.js';
import { pruneNeurons } from '../../src/core/compress/prune-neurons.js';
import { modelFields, pruneFields } from '../../src/core/compress/prune-fields.js';
import { ModelFileError } from '../../src/core/model/ir.js';
import { compareModels } from '../../src/core/eval/evaluate.js';
import { pytorchExports } from '../fixtures/pytorch/exports.js';

test('PyTorch two-tower export: neurons pruned in pairs across the towers through Mul -> ReduceSum (Constant axes); runs and keeps the ranking', async (t) => {
  const e = pytorchExports();
  if (!e) return t.skip('PyTorch not installed');
  const m = e.models.find((x) => x.file.startsWith('twotower'));
  assert.ok(m, 'the exports have a two-tower model');
  const file = path.join(e.dir, m.file);
  const ir = await readModel(file);
  const reduce = ir.graph.nodes.find((n) => n.op === 'ReduceSum');
  assert.ok(reduce && reduce.inputs[1], 'the export reduces with an axes input');
  assert.ok(ir.graph.nodes.some((n) => n.op === 'Constant' && n.outputs[0] === reduce.inputs[1]), 'the axes come from a Constant node, as PyTorch writes them');
  const o = await pruneNeurons(ir, { sparsity: 0.25 });
  const removed = Object.fromEntries(o.changes.map((c) => [c.tensor, c.action]));
  for (const tower of ['user_tower.0', 'item_tower.0']) {
    assert.equal(removed[`${tower}.weight`], 'removed 4 of 16 along axis 0', JSON.stringify(removed));
    assert.equal(removed[`${tower}.bias`], 'removed 4 of 16 along axis 0', JSON.stringify(removed));
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-prune-pytorch-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'pruned.onnx');
  await o.write(out);
  const r = await compareModels(file, out, { candidates: path.join(e.dir, m.candidates), k: 10, latency: false });
  assert.ok(r.ndcg && r.ndcg.after / r.ndcg.before >= 0.9, `NDCG@10 ${r.ndcg?.before} -> ${r.ndcg?.after}`);
});

test('PyTorch DeepFM export: its fields are found though each column index is a Constant node; removing one refuses, naming the field-axis Concat', async (t) => {
  const e = pytorchExports();
  if (!e) return t.skip('PyTorch not installed');
  const m = e.models.find((x) => x.file.startsWith('deepfm'));
  assert.ok(m, 'the exports have a DeepFM model');
  const ir = await readModel(path.join(e.dir, m.file));
  const fields = await modelFields(ir);
  assert.deepEqual(fields.map((f) => f.column), [0, 1, 2, 3]);
  // PyTorch names the selects "/Gather", "/Gather_1", ...: the fields are named after their tables
  assert.deepEqual(fields.map((f) => f.name), ['user', 'item', 'genre', 'age']);
  // PyTorch stacks the fields' embeddings as Unsqueeze -> Concat on axis 1 (the field axis), a
  // layout prune-fields does not rewrite yet: it must say so, and write nothing
  await assert.rejects(pruneFields(ir, { fields: ['age'] }), (err: unknown) => err instanceof ModelFileError && /cannot remove a field's part of Concat node/.test(err.message));
});
