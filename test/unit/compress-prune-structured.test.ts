import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { fileSystemLoadHandler, fileSystemSaveHandler } from '../../src/core/model/tfjs-io.js';
import { readModel } from '../../src/core/model/read-model.js';
import { readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import type { ModelIR } from '../../src/core/model/ir.js';
import { buildDeepFM, buildNeuMF, buildTwoTower } from '../../src/core/samples/models.js';
import { exportLayersModelToOnnx } from '../../src/core/samples/to-onnx.js';
import { pruneRows } from '../../src/core/compress/prune-rows.js';
import { pruneNeurons } from '../../src/core/compress/prune-neurons.js';
import { pruneDims } from '../../src/core/compress/prune-dims.js';
import { pruneMagnitude } from '../../src/core/compress/prune-magnitude.js';
import { modelVocab } from '../../src/core/eval/evaluate.js';
import type { CompressionOutcome } from '../../src/core/compress/types.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-struct-'));
let counter = 0;
after(() => fs.rmSync(root, { recursive: true, force: true }));

interface Pair {
  tfjs: string;
  onnx: string;
}

/** Saves a tf.layers model as TF.js and as ONNX (same weights) into a fresh folder. */
async function save(model: tf.LayersModel): Promise<Pair> {
  const dir = path.join(root, `m${counter++}`);
  const tfjs = path.join(dir, 'tfjs', 'model.json');
  await model.save(fileSystemSaveHandler(tfjs));
  const onnx = path.join(dir, 'model.onnx');
  await exportLayersModelToOnnx(model, onnx);
  return { tfjs, onnx };
}

function neumf(users = 40, items = 60, dim = 8, seed = 3): tf.LayersModel {
  return buildNeuMF({ users, items, gmfDim: dim, mlpDim: dim, hidden: [16, 8], seed });
}

/** Sets one weight of a layer by a function of its current values. */
function edit(model: tf.LayersModel, layer: string, index: number, fn: (v: Float32Array, shape: number[]) => void): void {
  const l = model.getLayer(layer);
  const ws = l.getWeights();
  const v = Float32Array.from(ws[index].dataSync() as Float32Array);
  fn(v, ws[index].shape);
  const copy = ws.map((w, i) => (i === index ? tf.tensor(v, w.shape) : w));
  l.setWeights(copy);
}

function hashes(files: string[]): string[] {
  return files.map((f) => createHash('sha256').update(fs.readFileSync(f)).digest('hex'));
}

function allFiles(p: Pair): string[] {
  const dir = path.dirname(p.tfjs);
  return [p.onnx, ...fs.readdirSync(dir).map((f) => path.join(dir, f))];
}

/** Every (user, item) pair of the given ids. */
function grid(users: number[], items: number[]): { u: number[]; i: number[] } {
  const u: number[] = [];
  const i: number[] = [];
  for (const a of users) for (const b of items) {
    u.push(a);
    i.push(b);
  }
  return { u, i };
}

async function scoreOnnx(file: string, u: number[], i: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  const r = await s.run({
    user: new ort.Tensor('int64', BigInt64Array.from(u, BigInt), [u.length]),
    item: new ort.Tensor('int64', BigInt64Array.from(i, BigInt), [i.length]),
  });
  return Float32Array.from(r.score.data as Float32Array);
}

async function scoreTfjs(file: string, u: number[], i: number[]): Promise<Float32Array> {
  const m = await tf.loadLayersModel(fileSystemLoadHandler(file));
  const y = m.predict([tf.tensor2d(u, [u.length, 1], 'int32'), tf.tensor2d(i, [i.length, 1], 'int32')]) as tf.Tensor;
  const out = Float32Array.from(y.dataSync() as Float32Array);
  tf.dispose(y);
  m.dispose();
  return out;
}

async function writeBoth(
  p: Pair, run: (ir: ModelIR) => Promise<CompressionOutcome>,
): Promise<{ tfjs: string; onnx: string; irs: { tfjs: ModelIR; onnx: ModelIR }; outcomes: CompressionOutcome[] }> {
  const before = hashes(allFiles(p));
  const dir = path.join(root, `out${counter++}`);
  const outTfjs = path.join(dir, 'tfjs', 'model.json');
  const outOnnx = path.join(dir, 'model.onnx');
  const a = await run(await readModel(p.tfjs));
  await a.write(outTfjs);
  const b = await run(await readModel(p.onnx));
  await b.write(outOnnx);
  assert.deepEqual(hashes(allFiles(p)), before, 'the original files are byte-identical');
  return { tfjs: outTfjs, onnx: outOnnx, irs: { tfjs: await readModel(outTfjs), onnx: await readModel(outOnnx) }, outcomes: [a, b] };
}

function shapes(ir: ModelIR): Record<string, number[]> {
  return Object.fromEntries(ir.tensors.map((t) => [t.name, t.shape]));
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

// ---------------------------------------------------------------------------------------------
// Rows

test('rows: 50% by norm -> tables [kept + 1, d], one remap per id input; kept ids give identical outputs (ORT and TF.js)', async () => {
  await initTfjs('cpu');
  const model = neumf();
  const p = await save(model);
  const r = await writeBoth(p, (ir) => pruneRows(ir, { keep: 0.5 }));
  const s = shapes(r.irs.onnx);
  assert.deepEqual(s['user_gmf_embedding/embeddings'], [21, 8]);
  assert.deepEqual(s['user_mlp_embedding/embeddings'], [21, 8]);
  assert.deepEqual(s['item_gmf_embedding/embeddings'], [31, 8]);
  assert.deepEqual(s['item_mlp_embedding/embeddings'], [31, 8]);
  // tables read with the same ids share one remap (uint8: 21 and 31 new rows), widened by a Cast
  const remaps = r.irs.onnx.tensors.filter((t) => t.name.endsWith('row_remap'));
  assert.deepEqual(remaps.map((t) => [t.name, t.dtype, t.shape]), [['user/row_remap', 'uint8', [40]], ['item/row_remap', 'uint8', [60]]]);
  const st = shapes(r.irs.tfjs);
  assert.deepEqual(st['user_gmf_embedding/embeddings'], [21, 8]);
  assert.deepEqual(st['item_mlp_embedding/embeddings'], [31, 8]);
  const tRemap = r.irs.tfjs.tensors.find((t) => t.name.startsWith('user_row_remap/'))!;
  assert.deepEqual([tRemap.shape, tRemap.storage.dtype], [[40, 1], 'uint8']);
  // an index, not weights: a constant in TF.js as in ONNX, and its length is the ids' vocabulary
  assert.deepEqual([tRemap.role, tRemap.trainable], ['constant', false]);
  assert.deepEqual([modelVocab(r.irs.tfjs).user, modelVocab(r.irs.onnx).user], [40, 40]);

  // which ids were kept: those whose remap is below the fallback index
  const userRemap = await readTensorFloat32(remaps[0]);
  const itemRemap = await readTensorFloat32(remaps[1]);
  assert.deepEqual(Array.from(await readTensorFloat32(tRemap)), Array.from(userRemap), 'the TF.js remap holds the same indices');
  const keptUsers = range(40).filter((u) => userRemap[u] < 20);
  const keptItems = range(60).filter((i) => itemRemap[i] < 30);
  assert.equal(keptUsers.length, 20);
  assert.equal(keptItems.length, 30);
  assert.deepEqual(keptUsers.map((u) => userRemap[u]), range(20), 'kept rows keep their order');

  const k = grid(keptUsers, keptItems);
  assert.deepEqual(await scoreOnnx(r.onnx, k.u, k.i), await scoreOnnx(p.onnx, k.u, k.i));
  assert.deepEqual(await scoreTfjs(r.tfjs, k.u, k.i), await scoreTfjs(p.tfjs, k.u, k.i));
  // dropped ids share the fallback row: for a fixed item every dropped user scores the same
  const droppedUsers = range(40).filter((u) => userRemap[u] === 20);
  const d = grid(droppedUsers, [keptItems[0]]);
  const ds = await scoreOnnx(r.onnx, d.u, d.i);
  assert.ok(ds.every((v) => v === ds[0]));
  const dt = await scoreTfjs(r.tfjs, d.u, d.i);
  assert.ok(dt.every((v) => v === dt[0]));
  assert.ok(Math.abs(dt[0] - ds[0]) < 1e-6);
  // the fallback row is the mean of the dropped rows
  const orig = await readModel(p.onnx);
  const table = await readTensorFloat32(orig.tensors.find((t) => t.name === 'user_gmf_embedding/embeddings')!);
  const pruned = await readTensorFloat32(r.irs.onnx.tensors.find((t) => t.name === 'user_gmf_embedding/embeddings')!);
  for (let j = 0; j < 8; j++) {
    const mean = droppedUsers.reduce((a, u) => a + table[u * 8 + j], 0) / droppedUsers.length;
    assert.ok(Math.abs(pruned[20 * 8 + j] - mean) < 1e-7);
  }
});

test('rows: removing all-zero rows (fallback = their mean = zero) leaves every output identical', async () => {
  await initTfjs('cpu');
  const model = neumf(40, 60, 8, 5);
  for (const layer of ['user_gmf_embedding', 'user_mlp_embedding']) {
    edit(model, layer, 0, (v) => {
      for (const u of [3, 7, 30]) v.fill(0, u * 8, u * 8 + 8);
    });
  }
  const p = await save(model);
  // 3 of 40 rows: floor(0.075 * 40) = 3; only the user tables (item tables share no id input with them)
  const r = await writeBoth(p, (ir) => pruneRows(ir, { sparsity: 0.075, table: ir.format === 'onnx' ? 'user_gmf_embedding/embeddings' : 'user_gmf_embedding' }));
  assert.deepEqual(shapes(r.irs.onnx)['user_gmf_embedding/embeddings'], [38, 8]);
  assert.deepEqual(shapes(r.irs.onnx)['user_mlp_embedding/embeddings'], [40, 8], 'a table not asked for stays');
  const all = grid(range(40), [0, 5, 59]);
  assert.deepEqual(await scoreOnnx(r.onnx, all.u, all.i), await scoreOnnx(p.onnx, all.u, all.i));
  assert.deepEqual(await scoreTfjs(r.tfjs, all.u, all.i), await scoreTfjs(p.tfjs, all.u, all.i));
});

test('rows of every table: one whose lookups cannot be remapped (gathered on axis 1) is left as it is with its reason, the others pruned', async () => {
  const file = path.join(root, 'mixed-lookups.onnx');
  const U = Float32Array.from({ length: 100 * 16 }, (_, i) => Math.sin(i * 0.37));
  const V = Float32Array.from({ length: 16 * 120 }, (_, i) => Math.cos(i * 0.11));
  await writeOnnxFile(
    file,
    new OnnxGraphBuilder({ graphName: 'mixed', opset: 11, irVersion: 6 })
      .input('user', 'int64', ['batch'])
      .input('item', 'int64', ['batch'])
      .output('score', 'float32', ['batch'])
      .initializer('user_embedding', 'float32', [100, 16], U)
      .initializer('item_factors', 'float32', [16, 120], V)
      .node('Gather', ['user_embedding', 'user'], ['u'], {}, { name: 'gu' })
      .node('Gather', ['item_factors', 'item'], ['vt'], { axis: 1 }, { name: 'gv' })
      .node('Transpose', ['vt'], ['v'], { perm: [1, 0] }, { name: 'tv' })
      .node('Mul', ['u', 'v'], ['uv'], {}, { name: 'mul' })
      .node('ReduceSum', ['uv'], ['score'], { axes: [1], keepdims: 0 }, { name: 'sum' })
      .toModelProto(),
  );
  const ir = await readModel(file);
  const o = await pruneRows(ir, { sparsity: 0.5 });
  assert.deepEqual(o.changes.map((c) => c.tensor), ['user_embedding']);
  assert.ok(o.notes.includes('Left as they are: rows of item_factors cannot be remapped: it is also read by Gather node "gv" on axis 1.'), o.notes.join('\n'));
  // named, the same table is refused with that reason
  await assert.rejects(pruneRows(ir, { sparsity: 0.5, table: 'item_factors' }), /rows of item_factors cannot be remapped: it is also read by Gather node "gv" on axis 1/);
});

test('rows: frequency importance keeps the most frequent ids; ties dropped in id order', async () => {
  await initTfjs('cpu');
  // 64 wide: the 4 rows dropped outweigh the remap and its nodes (4 wide they would not: left as they are)
  const p = await save(neumf(10, 12, 64, 9));
  const counts = Int32Array.from([5, 0, 9, 1, 1, 7, 0, 3, 8, 2]);
  const ir = await readModel(p.onnx);
  const o = await pruneRows(ir, { keep: 0.5, importance: { counts } });
  const out = path.join(root, 'freq.onnx');
  await o.write(out);
  const remap = await readTensorFloat32((await readModel(out)).tensors.find((t) => t.name === 'user/row_remap')!);
  // kept: counts 9, 8, 7, 5, 3 -> ids 2, 8, 5, 0, 7 (in id order: 0, 2, 5, 7, 8)
  assert.deepEqual(Array.from(remap), [0, 5, 1, 5, 5, 2, 5, 3, 4, 5]);
  assert.equal((await readModel(out)).tensors.some((t) => t.name === 'item/row_remap'), false, 'counts of 10 ids only apply to 10-row tables');
});

test('rows: 50% of the rows of a table-dominated NeuMF (d = 32) makes the files >= 1.8x smaller, remap included', async () => {
  await initTfjs('cpu');
  const p = await save(buildNeuMF({ users: 2000, items: 3000, gmfDim: 32, mlpDim: 32, hidden: [16, 8], seed: 4 }));
  const r = await writeBoth(p, (ir) => pruneRows(ir, { keep: 0.5 }));
  const size = (files: string[]) => files.reduce((a, f) => a + fs.statSync(f).size, 0);
  const tfjsFiles = (json: string) => [json, ...fs.readdirSync(path.dirname(json)).filter((f) => f.endsWith('.bin')).map((f) => path.join(path.dirname(json), f))];
  const onnxRatio = size([p.onnx]) / size([r.onnx]);
  const tfjsRatio = size(tfjsFiles(p.tfjs)) / size(tfjsFiles(r.tfjs));
  console.log(`# rows 50%, NeuMF 2000x3000 d=32: ONNX ${size([p.onnx])} -> ${size([r.onnx])} bytes (${onnxRatio.toFixed(3)}x); TF.js ${size(tfjsFiles(p.tfjs))} -> ${size(tfjsFiles(r.tfjs))} bytes (${tfjsRatio.toFixed(3)}x)`);
  for (const o of r.outcomes) console.log(`# ${o.notes[o.notes.length - 1]}`);
  assert.ok(onnxRatio >= 1.8, `ONNX ratio ${onnxRatio}`);
  assert.ok(tfjsRatio >= 1.8, `TF.js ratio ${tfjsRatio}`);
  // still runs in ORT with the same inputs
  const y = await scoreOnnx(r.onnx, [0, 1999], [0, 2999]);
  assert.equal(y.length, 2);
});

// ---------------------------------------------------------------------------------------------
// Neurons

test('neurons: keep 50% -> exact shapes in both formats, the output layer untouched', async () => {
  await initTfjs('cpu');
  const p = await save(neumf());
  const r = await writeBoth(p, (ir) => pruneNeurons(ir, { keep: 0.5 }));
  for (const ir of [r.irs.onnx, r.irs.tfjs]) {
    const s = shapes(ir);
    assert.deepEqual(s['mlp_dense_0/kernel'], [16, 8]);
    assert.deepEqual(s['mlp_dense_0/bias'], [8]);
    assert.deepEqual(s['mlp_dense_1/kernel'], [8, 4]);
    assert.deepEqual(s['mlp_dense_1/bias'], [4]);
    // prediction reads [gmf 8 | mlp_dense_1 4] through the Concat
    assert.deepEqual(s['prediction/kernel'], [12, 1]);
    assert.deepEqual(s['prediction/bias'], [1]);
  }
  const x = grid([0, 1, 39], [0, 59]);
  const a = await scoreOnnx(r.onnx, x.u, x.i);
  const b = await scoreTfjs(r.tfjs, x.u, x.i);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-6, 'both formats prune the same neurons');
  assert.ok(r.outcomes[0].notes.some((n) => /Not pruned: prediction/.test(n)));
});

test('neurons: a zero neuron (zero weights and bias) removed gives identical outputs; a constant one is folded into the next bias', async () => {
  await initTfjs('cpu');
  const model = neumf(40, 60, 8, 7);
  edit(model, 'mlp_dense_0', 0, (v) => {
    for (let r = 0; r < 16; r++) v[r * 16 + 3] = 0;
  });
  edit(model, 'mlp_dense_0', 1, (v) => {
    v[3] = 0;
  });
  const p = await save(model);
  const r = await writeBoth(p, (ir) => pruneNeurons(ir, { sparsity: 1 / 16, layers: [ir.format === 'onnx' ? 'mlp_dense_0/MatMul' : 'mlp_dense_0'] }));
  assert.deepEqual(shapes(r.irs.onnx)['mlp_dense_0/kernel'], [16, 15]);
  assert.deepEqual(shapes(r.irs.onnx)['mlp_dense_1/kernel'], [15, 8]);
  assert.deepEqual(shapes(r.irs.tfjs)['mlp_dense_1/kernel'], [15, 8]);
  const x = grid(range(40), [0, 17, 59]);
  assert.deepEqual(await scoreOnnx(r.onnx, x.u, x.i), await scoreOnnx(p.onnx, x.u, x.i));
  assert.deepEqual(await scoreTfjs(r.tfjs, x.u, x.i), await scoreTfjs(p.tfjs, x.u, x.i));

  // constant neuron: zero weights, bias 0.7 -> relu gives 0.7 for every input
  const model2 = neumf(40, 60, 8, 7);
  edit(model2, 'mlp_dense_0', 0, (v) => {
    for (let r = 0; r < 16; r++) v[r * 16 + 5] = 0;
  });
  edit(model2, 'mlp_dense_0', 1, (v) => {
    v[5] = 0.7;
  });
  const p2 = await save(model2);
  const r2 = await writeBoth(p2, (ir) => pruneNeurons(ir, { sparsity: 1 / 16, layers: ['mlp_dense_0'] }));
  assert.ok(r2.outcomes[1].notes.some((n) => /1 removed neurons had all-zero incoming weights/.test(n)), r2.outcomes[1].notes.join('\n'));
  const before = await scoreOnnx(p2.onnx, x.u, x.i);
  const after = await scoreOnnx(r2.onnx, x.u, x.i);
  const afterTfjs = await scoreTfjs(r2.tfjs, x.u, x.i);
  for (let i = 0; i < before.length; i++) {
    assert.ok(Math.abs(before[i] - after[i]) < 1e-6, `ORT ${before[i]} vs ${after[i]}`);
    assert.ok(Math.abs(before[i] - afterTfjs[i]) < 1e-6, `TF.js ${before[i]} vs ${afterTfjs[i]}`);
  }
});

test('neurons: two-tower last layers are pruned together (their outputs meet in a dot)', async () => {
  await initTfjs('cpu');
  const p = await save(buildTwoTower({ users: 30, items: 40, dim: 8, hidden: [12, 6], seed: 2 }));
  const r = await writeBoth(p, (ir) => pruneNeurons(ir, { keep: 0.5 }));
  for (const ir of [r.irs.onnx, r.irs.tfjs]) {
    const s = shapes(ir);
    assert.deepEqual(s['user_tower_0/kernel'], [8, 6]);
    assert.deepEqual(s['user_tower_1/kernel'], [6, 3]);
    assert.deepEqual(s['item_tower_1/kernel'], [6, 3]);
    assert.deepEqual(s['item_tower_1/bias'], [3]);
    assert.deepEqual(s['prediction/kernel'], [1, 1]);
  }
  assert.ok(r.outcomes[0].notes[0].includes('user_tower_1 + item_tower_1 6 -> 3'), r.outcomes[0].notes[0]);
  const x = grid([0, 29], [0, 39]);
  const a = await scoreOnnx(r.onnx, x.u, x.i);
  const b = await scoreTfjs(r.tfjs, x.u, x.i);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-6);
});

test('neurons: named layers that cannot be pruned are refused with the op named', async () => {
  await initTfjs('cpu');
  const p = await save(neumf());
  await assert.rejects(pruneNeurons(await readModel(p.onnx), { keep: 0.5, layers: ['prediction/MatMul'] }), /reach the model output "score"/);
  const fm = await save(buildDeepFM({ fieldVocab: [10, 12, 5], dim: 4, hidden: [8], seed: 1 }));
  await assert.rejects(pruneNeurons(await readModel(fm.tfjs), { keep: 0.5, layers: ['deep_out'] }), /through Add node "deepfm_logit"/);
  await assert.rejects(pruneNeurons(await readModel(p.onnx), { keep: 0.5, layers: ['nope'] }), /no dense layer named "nope"/);
});

// ---------------------------------------------------------------------------------------------
// Dims

test('dims: keep 50% -> GMF tables lose the same columns, the next kernels lose the matching rows', async () => {
  await initTfjs('cpu');
  const p = await save(neumf());
  const r = await writeBoth(p, (ir) => pruneDims(ir, { keep: 0.5 }));
  for (const ir of [r.irs.onnx, r.irs.tfjs]) {
    const s = shapes(ir);
    for (const t of ['user_gmf_embedding', 'item_gmf_embedding']) assert.deepEqual(s[`${t}/embeddings`], [t.startsWith('user') ? 40 : 60, 4]);
    for (const t of ['user_mlp_embedding', 'item_mlp_embedding']) assert.deepEqual(s[`${t}/embeddings`], [t.startsWith('user') ? 40 : 60, 4]);
    assert.deepEqual(s['mlp_dense_0/kernel'], [8, 16]);
    assert.deepEqual(s['prediction/kernel'], [12, 1]);
  }
  assert.ok(r.outcomes[0].notes[0].includes('user_gmf_embedding/embeddings + item_gmf_embedding/embeddings 8 -> 4'), r.outcomes[0].notes[0]);
  const x = grid([0, 1, 39], [0, 59]);
  const a = await scoreOnnx(r.onnx, x.u, x.i);
  const b = await scoreTfjs(r.tfjs, x.u, x.i);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-6);
});

test('dims: removing a column that is zero in both GMF tables gives identical outputs', async () => {
  await initTfjs('cpu');
  const model = neumf(40, 60, 8, 8);
  for (const layer of ['user_gmf_embedding', 'item_gmf_embedding']) {
    edit(model, layer, 0, (v, shape) => {
      for (let r = 0; r < shape[0]; r++) v[r * 8 + 2] = 0;
    });
  }
  const p = await save(model);
  const r = await writeBoth(p, (ir) => pruneDims(ir, { sparsity: 1 / 8, table: 'user_gmf_embedding' }));
  assert.deepEqual(shapes(r.irs.onnx)['item_gmf_embedding/embeddings'], [60, 7]);
  assert.deepEqual(shapes(r.irs.onnx)['user_mlp_embedding/embeddings'], [40, 8]);
  assert.deepEqual(shapes(r.irs.tfjs)['prediction/kernel'], [15, 1]);
  const x = grid(range(40), [0, 30, 59]);
  assert.deepEqual(await scoreOnnx(r.onnx, x.u, x.i), await scoreOnnx(p.onnx, x.u, x.i));
  assert.deepEqual(await scoreTfjs(r.tfjs, x.u, x.i), await scoreTfjs(p.tfjs, x.u, x.i));
});

test('dims: DeepFM field tables are coupled through the FM dots; an op the walk does not know is refused by name', async () => {
  await initTfjs('cpu');
  const fm = await save(buildDeepFM({ fieldVocab: [10, 12, 5], dim: 4, hidden: [8], seed: 1 }));
  const o = await pruneDims(await readModel(fm.onnx), { keep: 0.5 });
  const out = path.join(root, 'fm-dims.onnx');
  await o.write(out);
  const s = shapes(await readModel(out));
  assert.deepEqual([s['field_0_embedding/embeddings'], s['field_1_embedding/embeddings'], s['field_2_embedding/embeddings']], [[10, 2], [12, 2], [5, 2]]);
  assert.deepEqual(s['deep_dense_0/kernel'], [6, 8]);
  assert.deepEqual(s['field_0_linear/embeddings'], [10, 1]);
  const sess = await ort.InferenceSession.create(out);
  const y = await sess.run({ fields: new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 2n]), [1, 3]) });
  assert.deepEqual(y.score.dims, [1, 1]);

  const b = new OnnxGraphBuilder({ graphName: 'odd' });
  b.input('ids', 'int64', ['batch']);
  b.initializer('t/embeddings', 'float32', [5, 4], new Float32Array(20).fill(1));
  b.initializer('d/kernel', 'float32', [4, 1], new Float32Array(4).fill(1));
  b.node('Gather', ['t/embeddings', 'ids'], ['e'], { axis: 0 }, { name: 't/Gather' });
  b.node('Softmax', ['e'], ['s'], { axis: 1 }, { name: 'odd/Softmax' });
  b.node('MatMul', ['s', 'd/kernel'], ['y'], {}, { name: 'd/MatMul' });
  b.output('y', 'float32', ['batch', 1]);
  const odd = path.join(root, 'odd.onnx');
  await writeOnnxFile(odd, b.toModelProto());
  await assert.rejects(pruneDims(await readModel(odd), { keep: 0.5, table: 't/embeddings' }), /cannot follow the channels of t\/Gather through Softmax node "odd\/Softmax"/);
});

test('neurons: PyTorch-style Gemm (transB = 1, weights [out, in]) -> rows of W1 and columns of W2 go; a zero neuron changes nothing', async () => {
  // x[.,4] -> Gemm(W1 [6,4], C1 [6], transB) -> Relu -> Gemm(W2 [3,6], C2 [3], transB) -> y
  const w1 = Float32Array.from({ length: 24 }, (_, i) => ((i * 7) % 11) / 10 - 0.5);
  w1.fill(0, 2 * 4, 3 * 4); // neuron 2: zero weights
  const c1 = Float32Array.from([0.1, -0.2, 0, 0.3, 0.05, -0.1]); // and zero bias
  const w2 = Float32Array.from({ length: 18 }, (_, i) => ((i * 5) % 7) / 7 - 0.4);
  const c2 = Float32Array.from([0.01, 0.02, 0.03]);
  const b = new OnnxGraphBuilder({ graphName: 'torch' });
  b.input('x', 'float32', ['batch', 4]);
  b.initializer('fc1.weight', 'float32', [6, 4], w1);
  b.initializer('fc1.bias', 'float32', [6], c1);
  b.initializer('fc2.weight', 'float32', [3, 6], w2);
  b.initializer('fc2.bias', 'float32', [3], c2);
  b.node('Gemm', ['x', 'fc1.weight', 'fc1.bias'], ['h'], { transB: 1 }, { name: '/fc1/Gemm' });
  b.node('Relu', ['h'], ['r'], {}, { name: '/act/Relu' });
  b.node('Gemm', ['r', 'fc2.weight', 'fc2.bias'], ['y'], { transB: 1 }, { name: '/fc2/Gemm' });
  b.output('y', 'float32', ['batch', 3]);
  const file = path.join(root, 'torch.onnx');
  await writeOnnxFile(file, b.toModelProto());
  const o = await pruneNeurons(await readModel(file), { sparsity: 1 / 6 });
  const out = path.join(root, 'torch-pruned.onnx');
  await o.write(out);
  const s = shapes(await readModel(out));
  assert.deepEqual([s['fc1.weight'], s['fc1.bias'], s['fc2.weight'], s['fc2.bias']], [[5, 4], [5], [3, 5], [3]]);
  assert.ok(o.notes.some((n) => /Not pruned: \/fc2\/Gemm/.test(n)));
  const xs = Float32Array.from({ length: 20 }, (_, i) => Math.sin(i));
  const run = async (f: string) => {
    const sess = await ort.InferenceSession.create(f);
    return Float32Array.from((await sess.run({ x: new ort.Tensor('float32', xs, [5, 4]) })).y.data as Float32Array);
  };
  assert.deepEqual(await run(out), await run(file));
});

test('rows then magnitude / rows again on the TF.js output: the remap (a frozen Embedding) is never pruned', async () => {
  await initTfjs('cpu');
  const p = await save(neumf(40, 60, 8, 12));
  const o1 = await pruneRows(await readModel(p.tfjs), { keep: 0.5 });
  const step1 = path.join(root, 'chain1', 'model.json');
  await o1.write(step1);
  const ir1 = await readModel(step1);
  const remapBefore = await readTensorFloat32(ir1.tensors.find((t) => t.name === 'user_row_remap/embeddings')!);
  const o2 = await pruneMagnitude(ir1, { sparsity: 0.5 });
  assert.ok(o2.changes.every((c) => !c.tensor.includes('row_remap')));
  const step2 = path.join(root, 'chain2', 'model.json');
  await o2.write(step2);
  const ir2 = await readModel(step2);
  assert.deepEqual(Array.from(await readTensorFloat32(ir2.tensors.find((t) => t.name === 'user_row_remap/embeddings')!)), Array.from(remapBefore));
  const o3 = await pruneRows(ir2, { keep: 0.5 });
  assert.ok(o3.changes.every((c) => !c.tensor.includes('row_remap')));
  const step3 = path.join(root, 'chain3', 'model.json');
  await o3.write(step3);
  // 21 rows (20 kept + the fallback): drop floor(0.5 * 21) = 10, keep 11, + a new fallback
  assert.deepEqual(shapes(await readModel(step3))['user_gmf_embedding/embeddings'], [12, 8]);
  const y = await scoreTfjs(step3, [0, 39], [0, 59]);
  assert.equal(y.length, 2);
});

// ---------------------------------------------------------------------------------------------
// Magnitude pruning by columns: the zeros of prune-dims without the shape change

test('magnitude by columns: same columns as dims in both GMF tables, dead next-layer rows zeroed, same scores as dims (ORT and TF.js)', async () => {
  await initTfjs('cpu');
  const p = await save(neumf(40, 60, 8, 11));
  const tables = ['user_gmf_embedding/embeddings', 'item_gmf_embedding/embeddings', 'user_mlp_embedding/embeddings', 'item_mlp_embedding/embeddings'];
  // the kernel reading the MLP tables is chosen with a 0 target of its own: only its dead rows go
  const settings = { sparsity: 0.5, scope: 'layer' as const, granularity: 'column' as const, tensors: [...tables, 'mlp_dense_0/kernel'], perLayer: { 'mlp_dense_0/kernel': 0 } };
  const cols = await writeBoth(p, (ir) => pruneMagnitude(ir, settings));
  const dims = await writeBoth(p, (ir) => pruneDims(ir, { keep: 0.5 }));
  for (const ir of [cols.irs.onnx, cols.irs.tfjs]) {
    assert.deepEqual(shapes(ir), shapes(ir.format === 'onnx' ? await readModel(p.onnx) : await readModel(p.tfjs)), 'shapes unchanged');
    const v = async (n: string) => readTensorFloat32(ir.tensors.find((t) => t.name === n)!);
    const zeroCols = (x: Float32Array, d: number) => range(d).filter((j) => range(x.length / d).every((r) => x[r * d + j] === 0));
    const ug = await v('user_gmf_embedding/embeddings');
    const ig = await v('item_gmf_embedding/embeddings');
    // exactly 4 of 8 columns, the same in both GMF tables, nothing else zero in them
    assert.equal(zeroCols(ug, 8).length, 4);
    assert.deepEqual(zeroCols(ug, 8), zeroCols(ig, 8));
    assert.equal(ug.filter((x) => x === 0).length, 40 * 4);
    assert.equal(ig.filter((x) => x === 0).length, 60 * 4);
    // the rows of mlp_dense_0 [16, 16] reading a zeroed MLP column are all zero, the others untouched
    const um = zeroCols(await v('user_mlp_embedding/embeddings'), 8);
    const im = zeroCols(await v('item_mlp_embedding/embeddings'), 8);
    assert.equal(um.length + im.length, 8);
    const k = await v('mlp_dense_0/kernel');
    const deadRows = [...um, ...im.map((j) => j + 8)];
    for (let r = 0; r < 16; r++) {
      const zeros = range(16).filter((c) => k[r * 16 + c] === 0).length;
      assert.equal(zeros, deadRows.includes(r) ? 16 : 0, `row ${r}`);
    }
  }
  assert.ok(cols.outcomes[1].notes.some((n) => n.includes('user_gmf_embedding/embeddings + item_gmf_embedding/embeddings: 4 of 8 columns zeroed')), cols.outcomes[1].notes.join('\n'));
  assert.ok(cols.outcomes[1].notes.some((n) => /the 4 rows of mlp_dense_0\/kernel that read them are zeroed too/.test(n)), cols.outcomes[1].notes.join('\n'));
  // zeroed columns compute what removed columns compute
  const x = grid(range(40), [0, 17, 59]);
  const a = await scoreOnnx(cols.onnx, x.u, x.i);
  const b = await scoreOnnx(dims.onnx, x.u, x.i);
  const c = await scoreTfjs(cols.tfjs, x.u, x.i);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) < 1e-6, `${a[i]} vs ${b[i]}`);
    assert.ok(Math.abs(a[i] - c[i]) < 1e-6, `${a[i]} vs ${c[i]}`);
  }
});

test('magnitude by columns: a table at sparsity 1 zeroes the whole branch it feeds; global scope prunes the kernels with one threshold', async () => {
  await initTfjs('cpu');
  const p = await save(neumf(40, 60, 8, 12));
  const ir = await readModel(p.onnx);
  const { pruneMasks } = await import('../../src/core/compress/prune-magnitude.js');
  const m = await pruneMasks(ir, { sparsity: 0.25, scope: 'layer', granularity: 'column', perLayer: { user_mlp_embedding: 1, item_mlp_embedding: 1 } });
  const zeros = (n: string) => m.masks.get(n)!.filter((x) => x === 0).length;
  assert.equal(zeros('user_mlp_embedding/embeddings'), 40 * 8);
  assert.equal(zeros('item_mlp_embedding/embeddings'), 60 * 8);
  assert.equal(zeros('mlp_dense_0/kernel'), 16 * 16, 'every input row of the first MLP layer is dead');
  assert.equal(zeros('user_gmf_embedding/embeddings'), 40 * 2, 'floor(0.25 * 8) = 2 columns');
  assert.equal(zeros('mlp_dense_1/kernel'), Math.floor(0.25 * 16 * 8), 'element-wise at its own target');
  const g = await pruneMasks(ir, { sparsity: 0.5, scope: 'global', granularity: 'column' });
  assert.equal(g.threshold !== undefined && Number.isFinite(g.threshold), true);
  const kernels = ['mlp_dense_0/kernel', 'mlp_dense_1/kernel'];
  const n = kernels.reduce((a, k) => a + g.masks.get(k)!.length, 0);
  const pruned = g.perTensor.filter((t) => kernels.includes(t.tensor)).reduce((a, t) => a + t.pruned, 0);
  // one threshold over the kernels: floor(0.5 n) element zeros, plus the rows made dead by the 4 zeroed MLP columns of each table
  const dead = 8 * 16; // rows of mlp_dense_0 whose inputs are zeroed
  assert.ok(pruned >= Math.floor(0.5 * n) && pruned <= Math.floor(0.5 * n) + dead, `${pruned}`);
  await assert.rejects(pruneMasks(ir, { sparsity: 0.5, granularity: 'rows' as never }), /granularity must be 'element' or 'column'/);
});
