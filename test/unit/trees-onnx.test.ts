import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { ModelFileError } from '../../src/core/model/ir.js';
import { readTreeEnsemble, writeTreeEnsembleModel } from '../../src/core/trees/onnx-trees.js';
import { evaluateTreeEnsemble, type FeatureMatrix } from '../../src/core/trees/tree-eval.js';
import { cloneEnsemble, compactTree, type TreeEnsemble } from '../../src/core/trees/tree-model.js';
import { makeCtrData, trainForest, trainGbdt } from '../fixtures/tree-trainer.js';
import { analyzeTreeEnsemble } from '../../src/core/trees/tree-analysis.js';
import { pruneFeatures } from '../../src/core/trees/tree-prune.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ps-trees-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function runOrt(path: string, X: FeatureMatrix, double = false): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(path, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const data = double ? Float64Array.from(X.data) : X.data;
  const r = await s.run({ [s.inputNames[0]]: new ort.Tensor(double ? 'float64' : 'float32', data, [X.rows, X.features]) });
  await s.release();
  return r;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const data = makeCtrData(600, 8, 3);
const gbdt = trainGbdt(data, { trees: 12, maxDepth: 3, seed: 1 });

test('trees: GBDT fixture written by our writer runs in ORT, equal to our evaluator, and reads back identically', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'gbdt.onnx');
    await writeTreeEnsembleModel(path, gbdt, { nFeatures: 8 });
    const ours = evaluateTreeEnsemble(gbdt, data.X);
    const r = await runOrt(path, data.X);
    const diff = maxAbsDiff(ours.scores, r.Y.data as Float32Array);
    assert.ok(diff <= 1e-6, `max abs diff ${diff}`);
    const { ensemble, ref } = readTreeEnsemble(await readOnnxModel(path));
    assert.equal(ref.op, 'TreeEnsembleRegressor');
    assert.equal(ensemble.trees.length, 12);
    assert.equal(ensemble.hasCover, true);
    assert.deepEqual(ensemble.trees.map(compactTree), gbdt.trees.map(compactTree));
    assert.deepEqual(ensemble.baseValues, gbdt.baseValues);
  });
});

test('trees: nodes_hitrates of one value on every node (skl2onnx writes 1.0 throughout) is no cover; feature pruning then keeps the child the data takes', async () => {
  await withDir(async (dir) => {
    const constant = cloneEnsemble(gbdt);
    for (const t of constant.trees) for (const n of t.nodes) n.cover = 1;
    const path = join(dir, 'hitrates-1.onnx');
    await writeTreeEnsembleModel(path, constant, { nFeatures: 8 });
    const { ensemble } = readTreeEnsemble(await readOnnxModel(path));
    assert.equal(ensemble.hasCover, false);
    assert.equal(ensemble.constantHitrate, 1);
    assert.ok(ensemble.trees.every((t) => t.nodes.every((n) => n.cover === undefined)));
    const a = analyzeTreeEnsemble(ensemble, { features: 8 });
    assert.equal(a.rankedBy, 'splits');
    assert.ok(a.notes.some((n) => n.startsWith('nodes_hitrates is 1 on every node (a constant, as skl2onnx writes it), so it is no cover')), a.notes.join('\n'));
    const r = pruneFeatures(ensemble, { features: [0], nFeatures: 8, data: { X: data.X, labels: data.labels } });
    assert.equal(r.majorityBy, 'data');
    // covers that differ (sample counts) still read as cover
    const real = join(dir, 'real.onnx');
    await writeTreeEnsembleModel(real, gbdt, { nFeatures: 8 });
    assert.equal(readTreeEnsemble(await readOnnxModel(real)).ensemble.hasCover, true);
  });
});

test('trees: double (*_as_tensor), forest (AVERAGE), classifier and TreeEnsemble (opset 5) forms match ORT', async () => {
  await withDir(async (dir) => {
    const cases: Array<{ name: string; e: TreeEnsemble; out: string; double?: boolean }> = [];
    cases.push({ name: 'double', e: { ...cloneEnsemble(gbdt), double: true }, out: 'Y' });
    cases.push({ name: 'forest', e: trainForest(data, { trees: 6, maxDepth: 3, seed: 2 }), out: 'Y' });
    // binary classifier, one weight column (class 1 implied): ORT's binary rules
    const cls = cloneEnsemble(gbdt);
    cls.op = 'TreeEnsembleClassifier';
    cls.nTargets = 2;
    cls.classLabelsInts = [0, 1];
    cls.baseValues = [];
    cases.push({ name: 'classifier-logistic', e: cls, out: 'probabilities' });
    const cls2 = { ...cloneEnsemble(cls), postTransform: 'NONE' as const };
    cases.push({ name: 'classifier-none', e: cls2, out: 'probabilities' });
    const v5 = { ...cloneEnsemble(gbdt), op: 'TreeEnsemble' as const, baseValues: [] };
    cases.push({ name: 'v5', e: v5, out: 'Y' });
    cases.push({ name: 'v5-double', e: { ...cloneEnsemble(v5), double: true }, out: 'Y' });
    // all-positive weights (a forest's leaf means summed): the other binary branch, string labels
    const rf = { ...trainForest(data, { trees: 5, maxDepth: 3, seed: 4 }), op: 'TreeEnsembleClassifier' as const, nTargets: 2, classLabelsStrings: ['no', 'yes'], aggregate: 'SUM' as const };
    cases.push({ name: 'classifier-positive', e: rf, out: 'probabilities' });
    // three classes, SOFTMAX, base values
    const multi = cloneEnsemble(gbdt);
    multi.op = 'TreeEnsembleClassifier';
    multi.nTargets = 3;
    multi.classLabelsInts = [7, 8, 9];
    multi.baseValues = [0.1, -0.2, 0.05];
    multi.postTransform = 'SOFTMAX';
    multi.trees.forEach((t, ti) => t.nodes.forEach((n) => n.votes.forEach((v) => (v.target = ti % 3))));
    cases.push({ name: 'classifier-softmax', e: multi, out: 'probabilities' });
    for (const c of cases) {
      const path = join(dir, `${c.name}.onnx`);
      await writeTreeEnsembleModel(path, c.e, { nFeatures: 8 });
      const ours = evaluateTreeEnsemble(c.e, data.X);
      const r = await runOrt(path, data.X, c.e.double);
      const diff = maxAbsDiff(ours.scores, r[c.out].data as Float32Array);
      assert.ok(diff <= 1e-6, `${c.name}: max abs diff ${diff}`);
      if (c.e.op === 'TreeEnsembleClassifier') {
        const names: Array<number | string> = c.e.classLabelsInts ?? c.e.classLabelsStrings ?? [];
        const labels = Array.from(r.label.data as ArrayLike<bigint | string>, (x) => (typeof x === 'bigint' ? Number(x) : x));
        assert.deepEqual(labels, Array.from(ours.labelIndex ?? [], (k) => names[k]), c.name);
      }
      const back = readTreeEnsemble(await readOnnxModel(path)).ensemble;
      assert.equal(back.double, c.e.double, c.name);
      assert.deepEqual(evaluateTreeEnsemble(back, data.X).scores, ours.scores, c.name);
    }
  });
});

test('trees: NaN inputs follow missing_value_tracks_true as in ORT', async () => {
  await withDir(async (dir) => {
    const e = cloneEnsemble(gbdt);
    let k = 0;
    for (const t of e.trees) for (const n of t.nodes) if (n.split) n.split.missingTracksTrue = k++ % 2 === 0;
    const X = { data: Float32Array.from(data.X.data.subarray(0, 80 * 8)), rows: 80, features: 8 };
    for (let i = 0; i < X.data.length; i += 3) X.data[i] = NaN;
    const path = join(dir, 'nan.onnx');
    await writeTreeEnsembleModel(path, e, { nFeatures: 8 });
    const diff = maxAbsDiff(evaluateTreeEnsemble(e, X).scores, (await runOrt(path, X)).Y.data as Float32Array);
    assert.ok(diff <= 1e-6, `max abs diff ${diff}`);
  });
});

test('trees: a node pointing at a missing child is a ModelFileError naming the file', async () => {
  await withDir(async (dir) => {
    const e = cloneEnsemble(gbdt);
    const path = join(dir, 'bad.onnx');
    await writeTreeEnsembleModel(path, e, { nFeatures: 8 });
    const ir = await readOnnxModel(path);
    // corrupt the decoded proto: a true child id beyond the tree
    const node = (ir.native as { model: { graph: { node: Array<{ attribute: Array<{ name: string; ints: number[] }> }> } } }).model.graph.node[0];
    const attr = node.attribute.find((a) => a.name === 'nodes_truenodeids');
    assert.ok(attr);
    attr.ints[0] = 999;
    assert.throws(() => readTreeEnsemble(ir), (err: unknown) => err instanceof ModelFileError && /node id 999, which does not exist/.test(err.message) && err.message.includes(path));
  });
});
