import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { foldIntoKernel } from '../../src/core/compress/fold-projection.js';
import { factorizeModel } from '../../src/core/compress/factorize.js';
import { pruneDims } from '../../src/core/compress/prune-dims.js';
import { readModel } from '../../src/core/model/read-model.js';
import { scoreModel } from '../../src/core/eval/evaluate.js';
import { fieldsMatrix, readInteractions } from '../../src/core/eval/interactions.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';
import { pytorchExports, sampleFeeds } from '../fixtures/pytorch/exports.js';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { fileSystemLoadHandler, fileSystemSaveHandler } from '../../src/core/model/tfjs-io.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';

const fixtureDir = path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-fold-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

test('foldIntoKernel: rows (axis 0) and columns (axis 1) of each slice become P . slice; the others are copied', () => {
  // K [5, 2]: rows 0..4 = [1,2] [3,4] [5,6] [7,8] [9,10]; fold rows 1..2 with P [1, 2] = [1, -1],
  // rows 3..4 with P [3, 2] = [[1,0],[0,1],[2,2]]
  const k = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const rows = foldIntoKernel(k, [5, 2], [
    { axis: 0, offset: 3, width: 2, rank: 3, proj: Float32Array.from([1, 0, 0, 1, 2, 2]) },
    { axis: 0, offset: 1, width: 2, rank: 1, proj: Float32Array.from([1, -1]) },
  ]);
  assert.deepEqual(rows.shape, [5, 2]);
  // row 0; [3,4]-[5,6]; [7,8]; [9,10]; 2[7,8]+2[9,10]
  assert.deepEqual([...rows.values], [1, 2, -2, -2, 7, 8, 9, 10, 32, 36]);

  // the same kernel stored transposed (Gemm transB: [out 2, in 5]): columns fold the same way
  const kt = Float32Array.from([1, 3, 5, 7, 9, 2, 4, 6, 8, 10]);
  const cols = foldIntoKernel(kt, [2, 5], [
    { axis: 1, offset: 1, width: 2, rank: 1, proj: Float32Array.from([1, -1]) },
    { axis: 1, offset: 3, width: 2, rank: 3, proj: Float32Array.from([1, 0, 0, 1, 2, 2]) },
  ]);
  assert.deepEqual(cols.shape, [2, 5]);
  assert.deepEqual([...cols.values], [1, -2, 7, 9, 32, 2, -2, 8, 10, 36]);

  // a rank-1 fold shrinks the axis: [5, 2] -> [4, 2]
  const shrink = foldIntoKernel(k, [5, 2], [{ axis: 0, offset: 0, width: 2, rank: 1, proj: Float32Array.from([0.5, 0.5]) }]);
  assert.deepEqual([shrink.shape, [...shrink.values]], [[4, 2], [2, 3, 5, 6, 7, 8, 9, 10]]);

  assert.throws(() => foldIntoKernel(k, [5, 2], [
    { axis: 0, offset: 0, width: 2, rank: 1, proj: Float32Array.from([1, 1]) },
    { axis: 0, offset: 1, width: 2, rank: 1, proj: Float32Array.from([1, 1]) },
  ]), /overlap/);
  assert.throws(() => foldIntoKernel(k, [5, 2], [{ axis: 0, offset: 0, width: 2, rank: 2, proj: Float32Array.from([1, 1]) }]), /not \[2, 2\]/);
});

async function scores(model: string, csv: string, deepfm: boolean): Promise<Float32Array> {
  const t = await readInteractions(csv, { extraColumns: deepfm ? 'all' : undefined });
  return scoreModel(model, { user: t.user, item: t.item, fields: deepfm ? fieldsMatrix(t) : undefined }, { backend: 'cpu' });
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// which tables fold: NeuMF's MLP tables (Concat -> MatMul) and a two-tower's (straight into each
// tower); NeuMF's GMF tables and every DeepFM table meet another table element-wise and keep a projection
const expected = {
  neumf: { 'user_mlp_embedding/embeddings': ['mlp_dense_0/kernel'], 'item_mlp_embedding/embeddings': ['mlp_dense_0/kernel'] },
  'two-tower': { 'user_embedding/embeddings': ['user_tower_0/kernel'], 'item_embedding/embeddings': ['item_tower_0/kernel'] },
  deepfm: {},
} as const;

for (const kind of ['neumf', 'two-tower', 'deepfm'] as const) {
  for (const format of ['onnx', 'tfjs'] as const) {
    test(`${kind} ${format}: a folded factorization scores as the unfolded one, with fewer parameters and no projection tensor`, async () => {
      const fx = await writeTinyFixtures(fixtureDir);
      const src = format === 'onnx' ? fx.models[kind].onnxPath! : fx.models[kind].tfjsModelJson!;
      const ir = await readModel(src);
      const out = (name: string) => (format === 'onnx' ? path.join(work, `${kind}-${name}.onnx`) : path.join(work, `${kind}-${name}`, 'model.json'));
      const folded = await factorizeModel(ir, { tensors: 'embeddings', rank: 3 });
      const plain = await factorizeModel(ir, { tensors: 'embeddings', rank: 3, fold: false });
      assert.deepEqual(Object.fromEntries(folded.factorized.filter((f) => f.foldedInto).map((f) => [f.tensor, f.foldedInto])), expected[kind]);
      assert.equal(plain.factorized.some((f) => f.foldedInto), false);
      for (const f of folded.factorized.filter((x) => !x.foldedInto)) assert.match(f.notFolded ?? '', /meet|cannot follow/, f.tensor);
      await folded.write(out('folded'));
      await plain.write(out('plain'));
      const csv = fx.models[kind].candidatesCsv;
      const d = maxAbsDiff(await scores(out('folded'), csv, kind === 'deepfm'), await scores(out('plain'), csv, kind === 'deepfm'));
      assert.ok(d < 1e-5, `max |score diff| ${d}`);

      const after = await readModel(out('folded'));
      const names = new Set(after.tensors.map((t) => t.name));
      for (const f of folded.factorized) {
        const proj = format === 'onnx' ? `${f.tensor}_proj` : `${f.tensor.split('/')[0]}_proj/kernel`;
        assert.equal(names.has(proj), !f.foldedInto, `${proj} present only where not folded`);
      }
      // each absorbing kernel: its input axis lost (d - r) per folded table, as the change says
      for (const kernel of new Set(folded.factorized.flatMap((f) => f.foldedInto ?? []))) {
        const before = ir.tensors.find((t) => t.name === kernel)!.shape;
        const now = after.tensors.find((t) => t.name === kernel)!.shape;
        const lost = folded.factorized.filter((f) => f.foldedInto?.includes(kernel)).reduce((n, f) => n + f.shape[1] - f.rank, 0);
        assert.equal(before[0] - now[0] + (before[1] - now[1]), lost, kernel);
        assert.deepEqual(folded.changes.find((c) => c.tensor === kernel)!.after[0].shape, now);
      }
      const paramsOf = (o: typeof folded) => o.factorized.reduce((n, f) => n + f.paramsAfter, 0);
      if (Object.keys(expected[kind]).length) assert.ok(paramsOf(folded) < paramsOf(plain), `${paramsOf(folded)} < ${paramsOf(plain)}`);
      else assert.equal(paramsOf(folded), paramsOf(plain));
    });
  }
}

test('PyTorch exports (Gemm with transB, logits out): folded factorizations score as unfolded ones; the NeuMF MLP tables fold into the first Gemm', async (t) => {
  const ex = pytorchExports();
  if (!ex) return t.skip('PyTorch is not installed');
  const run = async (file: string, feeds: Record<string, ort.Tensor>): Promise<Float32Array> => {
    const s = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
    try {
      return Float32Array.from((await s.run(feeds))[s.outputNames[0]].data as Float32Array);
    } finally {
      await s.release();
    }
  };
  const seen: string[] = [];
  for (const m of ex.models) {
    const src = path.join(ex.dir, m.file);
    const ir = await readModel(src);
    const folded = await factorizeModel(ir, { tensors: 'embeddings', rank: 4 });
    const plain = await factorizeModel(ir, { tensors: 'embeddings', rank: 4, fold: false });
    const a = path.join(work, `pt-folded-${m.file}`);
    const b = path.join(work, `pt-plain-${m.file}`);
    await folded.write(a);
    await plain.write(b);
    const feeds = sampleFeeds(m);
    const d = maxAbsDiff(await run(a, feeds), await run(b, feeds));
    assert.ok(d < 1e-4, `${m.file}: max |logit diff| ${d}`);
    for (const f of folded.factorized.filter((x) => x.foldedInto)) {
      seen.push(`${f.tensor} -> ${f.foldedInto!.join(',')}`);
      // a Gemm with transB stores [out, in]: the columns of the folded block shrink
      const k = (await readModel(a)).tensors.find((x) => x.name === f.foldedInto![0])!;
      const before = ir.tensors.find((x) => x.name === f.foldedInto![0])!;
      assert.ok(k.shape[0] * k.shape[1] < before.shape[0] * before.shape[1], `${k.name} [${before.shape}] -> [${k.shape}]`);
    }
    assert.ok(fs.statSync(a).size <= fs.statSync(b).size, m.file);
  }
  assert.ok(seen.includes('embed_user_MLP.weight -> MLP_layers.0.weight') && seen.includes('embed_item_MLP.weight -> MLP_layers.0.weight'), seen.join('; '));
});

async function onnxOut(file: string, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
  try {
    return Float32Array.from((await s.run(feeds))[s.outputNames[0]].data as Float32Array);
  } finally {
    await s.release();
  }
}

function randomMatrix(rows: number, cols: number, seed: number): Float32Array {
  let x = seed;
  return Float32Array.from({ length: rows * cols }, () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1);
}

test('ONNX: no fold where it would be wrong: a kernel that is also a graph output, lookups of ids [batch, 1] concatenated on axis 1; a small table into a wide kernel keeps its counts apart', async () => {
  // kernel W is read by the MatMul and is also a graph output
  const b1 = new OnnxGraphBuilder({ graphName: 'kernout', opset: 13 });
  b1.input('ids', 'int64', ['batch']);
  b1.initializer('E', 'float32', [40, 8], randomMatrix(40, 8, 1));
  b1.initializer('W', 'float32', [8, 4], randomMatrix(8, 4, 2));
  b1.node('Gather', ['E', 'ids'], ['g'], { axis: { i: 0 } }, { name: 'gat' });
  b1.node('MatMul', ['g', 'W'], ['y'], {}, { name: 'mm' });
  b1.output('y', 'float32', ['batch', 4]);
  b1.output('W', 'float32', [8, 4]);
  const f1 = path.join(work, 'kernout.onnx');
  await writeOnnxFile(f1, b1.toModelProto());
  const o1 = await factorizeModel(await readModel(f1), { tensors: ['E'], rank: 2 });
  assert.equal(o1.factorized[0].foldedInto, undefined);
  assert.match(o1.factorized[0].notFolded ?? '', /graph output/);

  // ids [batch, 1]: lookups are [batch, 1, 8], and Concat on axis 1 stacks positions, not channels
  const b2 = new OnnxGraphBuilder({ graphName: 'cat3d', opset: 13 });
  b2.input('a', 'int64', ['batch', 1]);
  b2.input('b', 'int64', ['batch', 1]);
  b2.initializer('A', 'float32', [40, 8], randomMatrix(40, 8, 3));
  b2.initializer('B', 'float32', [50, 8], randomMatrix(50, 8, 4));
  b2.initializer('W', 'float32', [8, 4], randomMatrix(8, 4, 5));
  b2.node('Gather', ['A', 'a'], ['ga'], { axis: { i: 0 } }, { name: 'gA' });
  b2.node('Gather', ['B', 'b'], ['gb'], { axis: { i: 0 } }, { name: 'gB' });
  b2.node('Concat', ['ga', 'gb'], ['c'], { axis: { i: 1 } }, { name: 'cat' });
  b2.node('MatMul', ['c', 'W'], ['y'], {}, { name: 'mm' });
  b2.output('y', 'float32', ['batch', 2, 4]);
  const f2 = path.join(work, 'cat3d.onnx');
  await writeOnnxFile(f2, b2.toModelProto());
  const o2 = await factorizeModel(await readModel(f2), { tensors: 'embeddings', rank: 8, minSaving: -10 });
  assert.equal(o2.factorized.length, 2);
  for (const f of o2.factorized) assert.match(f.notFolded ?? '', /axis 1, not the channel axis of its rank-3 inputs/);
  const out2 = path.join(work, 'cat3d-f.onnx');
  await o2.write(out2);
  const feeds = { a: new ort.Tensor('int64', BigInt64Array.from([0n, 5n, 39n]), [3, 1]), b: new ort.Tensor('int64', BigInt64Array.from([1n, 7n, 49n]), [3, 1]) };
  assert.ok(maxAbsDiff(await onnxOut(f2, feeds), await onnxOut(out2, feeds)) < 1e-5);

  // [10, 16] at rank 2 folded into W [16, 64]: the table's count is its factor, the kernel's loss is apart
  const b3 = new OnnxGraphBuilder({ graphName: 'small', opset: 13 });
  b3.input('ids', 'int64', ['batch']);
  b3.initializer('E', 'float32', [10, 16], randomMatrix(10, 16, 6));
  b3.initializer('W', 'float32', [16, 64], randomMatrix(16, 64, 7));
  b3.node('Gather', ['E', 'ids'], ['g'], { axis: { i: 0 } }, { name: 'gat' });
  b3.node('MatMul', ['g', 'W'], ['y'], {}, { name: 'mm' });
  b3.output('y', 'float32', ['batch', 64]);
  const f3 = path.join(work, 'small.onnx');
  await writeOnnxFile(f3, b3.toModelProto());
  const o3 = await factorizeModel(await readModel(f3), { tensors: ['E'], rank: 2, minSaving: -10 });
  assert.deepEqual(o3.factorized.map((f) => [f.paramsBefore, f.paramsAfter, f.foldedParams]), [[160, 20, (2 - 16) * 64]]);
  assert.match(o3.notes.join('\n'), /160 parameters became 20 \(87\.5% fewer in those tensors; the dense kernels that absorbed projections lost 896; the model goes from 1184 to 148\)/);
});

test('TF.js: a layer called twice between the table and the kernel (a shared tower, a shared Flatten) keeps the projection, and the model scores as unfolded', async () => {
  await initTfjs('cpu');
  const save = async (model: tf.LayersModel, dir: string) => {
    await model.save(fileSystemSaveHandler(path.join(dir, 'model.json')));
  };
  // a shared Dense tower over both tables, then a dot
  {
    const u = tf.input({ shape: [1], dtype: 'int32', name: 'user' });
    const i = tf.input({ shape: [1], dtype: 'int32', name: 'item' });
    const fu = tf.layers.flatten({ name: 'fu' }).apply(tf.layers.embedding({ inputDim: 60, outputDim: 8, name: 'ue' }).apply(u)) as tf.SymbolicTensor;
    const fi = tf.layers.flatten({ name: 'fi' }).apply(tf.layers.embedding({ inputDim: 70, outputDim: 8, name: 'ie' }).apply(i)) as tf.SymbolicTensor;
    const tower = tf.layers.dense({ units: 4, name: 'tower' });
    const dot = tf.layers.dot({ axes: 1, name: 'dot' }).apply([tower.apply(fu) as tf.SymbolicTensor, tower.apply(fi) as tf.SymbolicTensor]) as tf.SymbolicTensor;
    await save(tf.model({ inputs: [u, i], outputs: dot }), path.join(work, 'shared-tower'));
  }
  // one Flatten applied to both lookups, then a Concatenate and a Dense
  {
    const u = tf.input({ shape: [1], dtype: 'int32', name: 'user' });
    const i = tf.input({ shape: [1], dtype: 'int32', name: 'item' });
    const fl = tf.layers.flatten({ name: 'fl' });
    const eu = tf.layers.embedding({ inputDim: 60, outputDim: 8, name: 'ue' }).apply(u) as tf.SymbolicTensor;
    const ei = tf.layers.embedding({ inputDim: 70, outputDim: 8, name: 'ie' }).apply(i) as tf.SymbolicTensor;
    const c = tf.layers.concatenate({ name: 'cat' }).apply([fl.apply(eu) as tf.SymbolicTensor, fl.apply(ei) as tf.SymbolicTensor]) as tf.SymbolicTensor;
    await save(tf.model({ inputs: [u, i], outputs: tf.layers.dense({ units: 1, name: 'd' }).apply(c) as tf.SymbolicTensor }), path.join(work, 'shared-flatten'));
  }
  const users = Int32Array.from([0, 3, 59, 17]);
  const items = Int32Array.from([1, 69, 8, 30]);
  const run = async (file: string) => {
    const m = await tf.loadLayersModel(fileSystemLoadHandler(file));
    try {
      return tf.tidy(() => Float32Array.from((m.predict([tf.tensor2d(users, [4, 1], 'int32'), tf.tensor2d(items, [4, 1], 'int32')]) as tf.Tensor).dataSync() as Float32Array));
    } finally {
      m.dispose();
    }
  };
  for (const [name, shared] of [['shared-tower', 'tower'], ['shared-flatten', 'fl']] as const) {
    const src = path.join(work, name, 'model.json');
    for (const tensors of [['ie/embeddings'], 'embeddings'] as const) {
      const o = await factorizeModel(await readModel(src), { tensors: tensors as string[] | 'embeddings', rank: 8, minSaving: -10 });
      assert.ok(o.factorized.length >= 1, name);
      for (const f of o.factorized) {
        assert.equal(f.foldedInto, undefined, `${name} ${f.tensor}`);
        assert.match(f.notFolded ?? '', new RegExp(`layer "${shared}" is called more than once`), `${name} ${f.tensor}`);
      }
      const out = path.join(work, `${name}-${Array.isArray(tensors) ? 'one' : 'all'}`, 'model.json');
      await o.write(out);
      const d = maxAbsDiff(await run(src), await run(out));
      assert.ok(d < 1e-5, `${name}: max |diff| ${d} at full rank`);
    }
  }
});

test('TF.js Sequential (Embedding with inputLength 1, Flatten, Dense): the first layer declares its input, so the projection folds and dims pruning follows the columns', async () => {
  await initTfjs('cpu');
  const m = tf.sequential({ name: 'seq' });
  m.add(tf.layers.embedding({ inputDim: 60, outputDim: 8, inputLength: 1, name: 'emb' }));
  m.add(tf.layers.flatten({ name: 'fl' }));
  m.add(tf.layers.dense({ units: 6, activation: 'relu', name: 'd0' }));
  m.add(tf.layers.dense({ units: 1, name: 'd1' }));
  const src = path.join(work, 'seq', 'model.json');
  await m.save(fileSystemSaveHandler(src));
  m.dispose();
  const ids = Int32Array.from([0, 5, 59, 17, 33]);
  const run = async (file: string) => {
    const model = await tf.loadLayersModel(fileSystemLoadHandler(file));
    try {
      return tf.tidy(() => Float32Array.from((model.predict(tf.tensor2d(ids, [5, 1], 'int32')) as tf.Tensor).dataSync() as Float32Array));
    } finally {
      model.dispose();
    }
  };
  const ir = await readModel(src);
  const folded = await factorizeModel(ir, { tensors: 'embeddings', rank: 3 });
  assert.deepEqual(folded.factorized.map((f) => [f.tensor, f.foldedInto, f.foldedParams]), [['emb/embeddings', ['d0/kernel'], (3 - 8) * 6]]);
  const plain = await factorizeModel(ir, { tensors: 'embeddings', rank: 3, fold: false });
  await folded.write(path.join(work, 'seq-folded', 'model.json'));
  await plain.write(path.join(work, 'seq-plain', 'model.json'));
  const d = maxAbsDiff(await run(path.join(work, 'seq-folded', 'model.json')), await run(path.join(work, 'seq-plain', 'model.json')));
  assert.ok(d < 1e-6, `max |diff| ${d}`);
  assert.deepEqual((await readModel(path.join(work, 'seq-folded', 'model.json'))).tensors.find((t) => t.name === 'd0/kernel')!.shape, [3, 6]);

  // dims pruning (which refused: "the shape it flattens is not known") keeps 6 of 8 columns and d0's 6 rows for them
  const dims = await pruneDims(ir, { keep: 0.75 });
  const dimsOut = path.join(work, 'seq-dims', 'model.json');
  await dims.write(dimsOut);
  const after = await readModel(dimsOut);
  assert.deepEqual([after.tensors.find((t) => t.name === 'emb/embeddings')!.shape, after.tensors.find((t) => t.name === 'd0/kernel')!.shape], [[60, 6], [6, 6]]);
  assert.equal((await run(dimsOut)).length, 5);
});
