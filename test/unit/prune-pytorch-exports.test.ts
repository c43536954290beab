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
import { pruneDims } from '../../src/core/compress/prune-dims.js';
import { readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { modelFields, pruneFields } from '../../src/core/compress/prune-fields.js';
import { writeEditedOnnxModel } from '../../src/core/model/onnx/edit.js';
import * as ort from 'onnxruntime-node';
import { compareModels, evaluateModel, modelVocab } from '../../src/core/eval/evaluate.js';
import { pruneRows } from '../../src/core/compress/prune-rows.js';
import { fieldColumns } from '../../src/core/model/field-columns.js';
import { pytorchExports } from '../fixtures/pytorch/exports.js';

/** PyTorch's export whose file name starts with `prefix`, read; undefined where PyTorch is not installed. */
async function exported(prefix: string) {
  const e = pytorchExports();
  if (!e) return undefined;
  const m = e.models.find((x) => x.file.startsWith(prefix));
  assert.ok(m, `the exports have a ${prefix} model`);
  const file = path.join(e.dir, m.file);
  return { e, m, file, ir: await readModel(file) };
}

/** Largest |score difference| of two DeepFM models on the first 300 rows of a candidates CSV (user,item,genre,age,label). */
async function maxScoreDiff(candidates: string, a: string, b: string): Promise<number> {
  const rows = fs.readFileSync(candidates, 'utf8').trim().split('\n').slice(1, 301).map((l) => l.split(',').slice(0, 4).map(Number));
  const fieldsIn = new ort.Tensor('int64', BigInt64Array.from(rows.flat().map((x) => BigInt(x))), [rows.length, 4]);
  const score = async (f: string) => {
    const s = await ort.InferenceSession.create(f);
    try {
      return (await s.run({ fields: fieldsIn }))[s.outputNames[0]].data as Float32Array;
    } finally {
      await s.release();
    }
  };
  const [x, y] = [await score(a), await score(b)];
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  return worst;
}

test('PyTorch two-tower export: neurons pruned in pairs across the towers through Mul -> ReduceSum (Constant axes); runs and keeps the ranking', async (t) => {
  const x = await exported('twotower');
  if (!x) return t.skip('PyTorch not installed');
  const { e, m, file, ir } = x;
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

test('PyTorch DeepFM export: fields found though each column index is a Constant node, and removed from its [batch, fields, dim] stack exactly', async (t) => {
  const x = await exported('deepfm');
  if (!x) return t.skip('PyTorch not installed');
  const { e, m, file, ir } = x;
  const fields = await modelFields(ir);
  assert.deepEqual(fields.map((f) => f.column), [0, 1, 2, 3]);
  // PyTorch names the selects "/Gather", "/Gather_1", ...: the fields are named after their tables
  assert.deepEqual(fields.map((f) => f.name), ['user', 'item', 'genre', 'age']);
  // PyTorch stacks the fields' embeddings (Unsqueeze -> Concat on axis 1), sums and squares them
  // over the field axis (FM) and flattens the stack into the MLP
  assert.ok(ir.graph.nodes.some((n) => n.op === 'Concat' && n.attrs.axis === 1 && n.inputs.length === 4));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-fields-pytorch-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const o = await pruneFields(ir, { fields: ['age'], compensate: false });
  const out = path.join(dir, 'no-age.onnx');
  await o.write(out);
  const pruned = await readModel(out);
  assert.deepEqual(pruned.tensors.find((x) => x.name === 'mlp.0.weight')?.shape, [16, 24], 'the MLP lost the 8 rows of the age field');
  assert.ok(!pruned.tensors.some((x) => x.name.startsWith('age_')), 'the age tables are gone');
  assert.ok(!pruned.graph.nodes.some((n) => n.op === 'Constant' && !pruned.graph.nodes.some((c) => c.inputs.includes(n.outputs[0]))), 'no Constant is left unread');
  // without compensation, it is the original with the age tables zeroed, on every row
  const zeroed = path.join(dir, 'age-zero.onnx');
  const zeros = (name: string) => {
    const shape = ir.tensors.find((x) => x.name === name)!.shape;
    return { name, dtype: 'float32' as const, shape, data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * 4) };
  };
  await writeEditedOnnxModel(ir, { setInitializers: [zeros('age_embedding.weight'), zeros('age_linear.weight')] }, zeroed);
  const worst = await maxScoreDiff(path.join(e.dir, m.candidates), out, zeroed);
  assert.ok(worst < 1e-5, `max |difference| ${worst}`);
  // and with compensation (the default) the ranking stays close
  const c = await pruneFields(ir, { fields: ['age'] });
  const withMean = path.join(dir, 'no-age-mean.onnx');
  await c.write(withMean);
  const r = await compareModels(file, withMean, { candidates: path.join(e.dir, m.candidates), k: 10, latency: false });
  assert.ok(r.ndcg && r.ndcg.after / r.ndcg.before >= 0.8, `NDCG@10 ${r.ndcg?.before} -> ${r.ndcg?.after}`);
});

test('PyTorch DeepFM export: dims pruned across every stacked field (the FM couples them) and out of the MLP, exactly as zeroing those columns', async (t) => {
  const x = await exported('deepfm');
  if (!x) return t.skip('PyTorch not installed');
  const { e, m, ir } = x;
  const o = await pruneDims(ir, { sparsity: 0.25 });
  const tables = ['user_embedding.weight', 'item_embedding.weight', 'genre_embedding.weight', 'age_embedding.weight'];
  const actions = Object.fromEntries(o.changes.map((c) => [c.tensor, c.action]));
  for (const name of tables) assert.equal(actions[name], 'removed 2 of 8 along axis 1', JSON.stringify(actions));
  assert.equal(actions['mlp.0.weight'], 'removed 8 of 32 along axis 1', JSON.stringify(actions));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-dims-pytorch-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'dims.onnx');
  await o.write(out);
  // which columns went: the kept ones are the pruned table's columns, in order
  const pruned = await readModel(out);
  const full = await readTensorFloat32(ir.tensors.find((x) => x.name === 'user_embedding.weight')!);
  const kept = await readTensorFloat32(pruned.tensors.find((x) => x.name === 'user_embedding.weight')!);
  const keptCols: number[] = [];
  for (let j = 0, c = 0; j < 6; j++) {
    while (c < 8 && !Array.from({ length: 300 }, (_, r) => full[r * 8 + c] === kept[r * 6 + j]).every(Boolean)) c++;
    keptCols.push(c++);
  }
  assert.equal(keptCols.length, 6);
  assert.ok(keptCols.every((c) => c < 8), `kept columns ${keptCols}`);
  // the original with the other two columns zeroed in every field table scores the same
  const zeroed = path.join(dir, 'zeroed.onnx');
  const setInitializers = await Promise.all(tables.map(async (name) => {
    const tt = ir.tensors.find((x) => x.name === name)!;
    const v = Float32Array.from(await readTensorFloat32(tt));
    for (let r = 0; r < tt.shape[0]; r++) for (let c = 0; c < 8; c++) if (!keptCols.includes(c)) v[r * 8 + c] = 0;
    return { name, dtype: 'float32' as const, shape: tt.shape.slice(), data: new Uint8Array(v.buffer) };
  }));
  await writeEditedOnnxModel(ir, { setInitializers }, zeroed);
  const worst = await maxScoreDiff(path.join(e.dir, m.candidates), out, zeroed);
  assert.ok(worst < 1e-5, `max |difference| ${worst}`);
});

test('PyTorch DeepFM export, rows pruned: ids are checked against the remap in front of each table (its full vocabulary), so the pruned model is evaluated', async (t) => {
  const x = await exported('deepfm');
  if (!x) return t.skip('PyTorch not installed');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-pt-deepfm-rows-'));
  const out = path.join(dir, 'rows.onnx');
  const outcome = await pruneRows(x.ir, { sparsity: 0.3 });
  await outcome.write(out);
  const pruned = await readModel(out);
  const item = pruned.tensors.find((tt) => tt.name === 'item_embedding.weight')!;
  assert.ok(item.shape[0] < 400, `item rows pruned: ${item.shape[0]}`);
  // the 6-row genre and 5-row age tables would grow the file (fallback row, remap and its nodes): left as they are
  assert.deepEqual(['genre_embedding.weight', 'age_embedding.weight'].map((n) => pruned.tensors.find((tt) => tt.name === n)!.shape), [[6, 8], [5, 8]]);
  assert.ok(
    outcome.notes.some((n) => /^Left as they are .*: genre_embedding\.weight \+ genre_linear\.weight \(6 rows, 1 dropped, remap 6 bytes \+ about 512 of graph\), age_embedding\.weight \+ age_linear\.weight \(5 rows, 1 dropped/.test(n)),
    outcome.notes.join('\n'),
  );
  // the remap is named after the ids it maps, not after a table: the vocabulary comes from the graph
  assert.deepEqual([modelVocab(pruned).user, modelVocab(pruned).item, modelVocab(pruned).ofColumn('genre')], [300, 400, 6]);
  // and each table's fields column is still found through the remap and its Cast
  assert.deepEqual(['user', 'item', 'genre', 'age'].map(fieldColumns(pruned).at), [0, 1, 2, 3]);
  const candidates = path.join(x.e.dir, 'deepfm_candidates.csv');
  const [a, b] = [await evaluateModel(x.file, { candidates }), await evaluateModel(out, { candidates })];
  assert.equal(b.users, a.users);
  assert.ok(b.ndcg! > 0.5 * a.ndcg!, `NDCG@10 ${b.ndcg} after 30% of the rows, ${a.ndcg} before`);
});
