// Every exporter layout we read (issue 13, item 1), generated in code and checked against ONNX
// Runtime single-threaded: our evaluator's scores within 1e-6, the same labels, and the file read
// back and written again in the same layout.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { listTreeEnsembles, readTreeEnsemble, treeEnsembleAttributes, writeTreeEnsembleModel } from '../../src/core/trees/onnx-trees.js';
import { evaluateTreeEnsemble, ortUnwrittenColumns, type FeatureMatrix } from '../../src/core/trees/tree-eval.js';
import { compareWithOrt } from '../../src/core/trees/tree-ort.js';
import { cloneEnsemble, type TreeEnsemble } from '../../src/core/trees/tree-model.js';
import { makeCtrData, trainForest, trainGbdt } from '../fixtures/tree-trainer.js';
import {
  binarySingleWeight,
  forestClassifier,
  gridWithNaN,
  mixModes,
  multiClassPerTree,
  multiTargetRegressor,
  scaledLeaves,
  snapThresholds,
  writeSeveralEnsembles,
} from '../fixtures/tree-layouts.js';

const TOL = 1e-6;
const F = 8;
const data = makeCtrData(500, F, 11);
const gbdt = trainGbdt(data, { trees: 15, maxDepth: 3, seed: 5 });
const forest = trainForest(data, { trees: 8, maxDepth: 4, seed: 6 });
/** the same rows on a quarter grid with 15% NaN cells (EQ / NEQ thresholds hit, missing values routed) */
const gridX = gridWithNaN(data.X, 0.15, 21);

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ps-trees-layouts-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function runOrt(path: string, X: FeatureMatrix, double: boolean): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(path, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const d = double ? Float64Array.from(X.data) : X.data;
    return await s.run({ [s.inputNames[0]]: new ort.Tensor(double ? 'float64' : 'float32', d, [X.rows, X.features]) });
  } finally {
    await s.release();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Number.isNaN(a[i]) || Number.isNaN(b[i]) ? (Number.isNaN(a[i]) && Number.isNaN(b[i]) ? 0 : Infinity) : Math.abs(a[i] - b[i]);
    if (d > m) m = d;
  }
  return m;
}

/** Checks one ensemble against ORT's outputs `scoresName` / `labelName`; returns the max abs diff. */
function checkOutputs(name: string, e: TreeEnsemble, X: FeatureMatrix, r: Record<string, ort.Tensor>, scoresName: string, labelName?: string): number {
  const ours = evaluateTreeEnsemble(e, X);
  // ORT leaves some columns unwritten (binary single-score PROBIT): compare the others
  const skip = ortUnwrittenColumns(e);
  const keep = (a: ArrayLike<number>) => Array.from(a).filter((_, i) => !skip.includes(i % ours.columns));
  const diff = maxAbsDiff(keep(ours.scores), keep(r[scoresName].data as ArrayLike<number>));
  assert.ok(diff <= TOL, `${name}: max abs diff vs ORT ${diff}`);
  if (labelName) {
    const names: Array<number | string> = e.classLabelsInts ?? e.classLabelsStrings ?? [];
    const got = Array.from(r[labelName].data as ArrayLike<bigint | string>, (x) => (typeof x === 'bigint' ? Number(x) : x));
    assert.deepEqual(got, Array.from(ours.labelIndex ?? [], (k) => names[k]), `${name}: labels`);
  }
  return diff;
}

/** Writes `e` alone, checks it against ORT, reads it back and checks the layout is kept. */
async function roundTrip(dir: string, name: string, e: TreeEnsemble, X: FeatureMatrix): Promise<number> {
  const path = join(dir, `${name}.onnx`);
  await writeTreeEnsembleModel(path, e, { nFeatures: F });
  const r = await runOrt(path, X, e.double);
  const cls = e.op === 'TreeEnsembleClassifier';
  const diff = checkOutputs(name, e, X, r, cls ? 'probabilities' : 'Y', cls ? 'label' : undefined);
  const back = readTreeEnsemble(await readOnnxModel(path)).ensemble;
  assert.equal(back.op, e.op, name);
  assert.equal(back.double, e.double, name);
  assert.deepEqual(back.baseValues, e.baseValues.map((b) => (e.double ? b : Math.fround(b))), `${name}: base values`);
  // the same evaluation, and written again the same attributes (the exporter's layout is kept)
  checkOutputs(`${name} (read back)`, back, X, r, cls ? 'probabilities' : 'Y', cls ? 'label' : undefined);
  assert.deepEqual(treeEnsembleAttributes(back), treeEnsembleAttributes(e), `${name}: layout written back`);
  // and the tool's own ORT check agrees
  const c = await compareWithOrt(path, back, X);
  assert.ok(c.maxAbsDiff <= TOL, `${name}: compareWithOrt ${c.maxAbsDiff}`);
  if (cls) assert.equal(c.labelsEqual, true, `${name}: compareWithOrt labels`);
  return diff;
}

test('trees layouts: binary single-weight classifiers (skl2onnx / onnxmltools) load, equal ORT, keep their layout', async () => {
  await withDir(async (dir) => {
    for (const post of ['LOGISTIC', 'NONE', 'PROBIT'] as const) {
      for (const base of [-0.4, undefined]) {
        // PROBIT needs scores in (0, 1): a small positive forest sum
        const src = post === 'PROBIT' ? scaledLeaves(forest) : gbdt;
        const b = post === 'PROBIT' && base !== undefined ? -0.05 : base;
        const e = binarySingleWeight(src, post, b);
        const name = `binary-${post}-${b === undefined ? 'nobase' : 'base'}`;
        await roundTrip(dir, name, e, data.X);
        // as ORT: probabilities [1-p, p] or [-s, s] / [sigmoid(-s), sigmoid(s)]
        const back = readTreeEnsemble(await readOnnxModel(join(dir, `${name}.onnx`))).ensemble;
        assert.equal(back.nTargets, 2);
        assert.deepEqual(back.classLabelsInts, [0, 1]);
        assert.ok(back.trees.every((t) => t.nodes.every((n) => n.votes.every((v) => v.target === 0))), `${name}: class_ids all 0`);
        assert.equal(back.baseValues.length, b === undefined ? 0 : 1);
      }
    }
    // the double (`*_as_tensor`) form of the same layout, and the missing-value routing of XGBoost
    const dbl = { ...binarySingleWeight(mixModes(gbdt, 3), 'LOGISTIC', 0.25), double: true };
    await roundTrip(dir, 'binary-double-nan', dbl, gridX);
    await roundTrip(dir, 'binary-float-nan', binarySingleWeight(mixModes(gbdt, 4), 'LOGISTIC', -0.1), gridX);
  });
});

test('trees layouts: the reported failure: one base value for two classes is read (not "base_values has 1 entries")', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'gbdt.onnx');
    await writeTreeEnsembleModel(path, binarySingleWeight(gbdt, 'LOGISTIC', 0.3), { nFeatures: F, nodeName: 'gbdt' });
    const { ref, ensemble } = readTreeEnsemble(await readOnnxModel(path));
    assert.equal(ref.name, 'gbdt');
    assert.deepEqual(ensemble.baseValues, [Math.fround(0.3)]);
    const p = (await runOrt(path, data.X, false)).probabilities.data as Float32Array;
    for (let i = 0; i < 20; i++) assert.ok(Math.abs(p[2 * i] + p[2 * i + 1] - 1) < 1e-6, 'ORT gives [1-p, p]');
  });
});

test('trees layouts: multi-class SOFTMAX / SOFTMAX_ZERO / LOGISTIC / NONE, per-tree classes and forest votes', async () => {
  await withDir(async (dir) => {
    for (const post of ['SOFTMAX', 'SOFTMAX_ZERO', 'LOGISTIC', 'NONE', 'PROBIT'] as const) {
      if (post === 'PROBIT') continue; // PROBIT needs (0, 1) scores: covered by the forest below
      await roundTrip(dir, `multi-${post}-nobase`, multiClassPerTree(gbdt, 3, post), data.X);
      await roundTrip(dir, `multi-${post}-base`, multiClassPerTree(gbdt, 3, post, [0.1, -0.2, 0.05]), data.X);
    }
    // SOFTMAX_ZERO with zero scores for some rows (every tree of a class on a zero leaf) and a
    // class no tree votes for
    const sparse = multiClassPerTree(gbdt, 5, 'SOFTMAX_ZERO');
    for (const t of sparse.trees) for (const n of t.nodes) for (const v of n.votes) {
      if (v.value < 0) v.value = 0;
      if (v.target === 4) v.target = 3;
    }
    await roundTrip(dir, 'multi-softmax-zero-sparse', sparse, data.X);
    await roundTrip(dir, 'multi-double', { ...multiClassPerTree(gbdt, 5, 'SOFTMAX', [0.1, 0.2, 0.3, 0.4, 0.5]), double: true }, data.X);
    const rf = forestClassifier(forest, 3, 9);
    await roundTrip(dir, 'forest-classifier', rf, data.X);
    // PROBIT of class probabilities away from 0 and 1: in the tails ORT's float logf (glibc, not
    // correctly rounded) differs from ours by an ulp, which the probit amplifies past 1e-6
    const mid = forestClassifier(forest, 3, 9, 0.5);
    await roundTrip(dir, 'forest-classifier-probit', { ...mid, postTransform: 'PROBIT' }, data.X);
    await roundTrip(dir, 'forest-classifier-logistic', { ...cloneEnsemble(rf), postTransform: 'LOGISTIC' }, data.X);
    await roundTrip(dir, 'forest-classifier-nan', mixModes(snapThresholds(rf), 12), gridX);
  });
});

test('trees layouts: regressors with several targets (SUM, AVERAGE, MIN, MAX, base values, post transforms, double)', async () => {
  await withDir(async (dir) => {
    for (const agg of ['SUM', 'AVERAGE', 'MIN', 'MAX'] as const) {
      await roundTrip(dir, `multi-target-${agg}`, multiTargetRegressor(gbdt, 3, 1, agg, [0.5, -0.25, 1]), data.X);
      await roundTrip(dir, `multi-target-${agg}-nobase`, multiTargetRegressor(forest, 2, 2, agg), data.X);
    }
    for (const post of ['LOGISTIC', 'SOFTMAX', 'SOFTMAX_ZERO'] as const) {
      await roundTrip(dir, `multi-target-${post}`, { ...multiTargetRegressor(gbdt, 3, 3, 'SUM', [0.5, -0.25, 1]), postTransform: post }, data.X);
    }
    await roundTrip(dir, 'multi-target-double', { ...multiTargetRegressor(gbdt, 4, 4, 'SUM', [1, 2, 3, 4]), double: true }, data.X);
    await roundTrip(dir, 'single-target-probit', { ...cloneEnsemble(forest), postTransform: 'PROBIT' }, data.X);
    await roundTrip(dir, 'single-target-double-avg', { ...cloneEnsemble(forest), double: true, baseValues: [0.125] }, data.X);
  });
});

test('trees layouts: BRANCH_LT / LEQ / GT / GTE / EQ / NEQ and nodes_missing_value_tracks_true with NaN inputs', async () => {
  await withDir(async (dir) => {
    const mixed = mixModes(snapThresholds(gbdt), 7);
    const modes = new Set<string>();
    let tracks = 0;
    for (const t of mixed.trees) for (const n of t.nodes) if (n.split) {
      modes.add(n.split.mode);
      if (n.split.missingTracksTrue) tracks++;
    }
    assert.equal(modes.size, 6, 'every mode is used');
    assert.ok(tracks > 0);
    await roundTrip(dir, 'modes-float', mixed, gridX);
    await roundTrip(dir, 'modes-double', { ...cloneEnsemble(mixed), double: true }, gridX);
    await roundTrip(dir, 'modes-binary', binarySingleWeight(mixed, 'LOGISTIC', 0.1), gridX);
    // NaN never satisfies a comparison, and NEQ: NaN != t is true in C++: check a column all NaN
    const allNan = { data: Float32Array.from(gridX.data), rows: gridX.rows, features: F };
    for (let r = 0; r < allNan.rows; r++) allNan.data[r * F] = NaN;
    await roundTrip(dir, 'modes-all-nan-f0', mixed, allNan);
    await roundTrip(dir, 'v5-modes', { ...cloneEnsemble(mixed), op: 'TreeEnsemble', baseValues: [] }, gridX);
  });
});

test('trees layouts: the opset-5 TreeEnsemble (float, double, several targets, aggregates, post transforms)', async () => {
  await withDir(async (dir) => {
    const v5 = (e: TreeEnsemble): TreeEnsemble => {
      const c = cloneEnsemble(e);
      c.op = 'TreeEnsemble';
      c.baseValues = [];
      c.classLabelsInts = undefined;
      c.classLabelsStrings = undefined;
      c.hasCover = false;
      // TreeEnsemble leaves carry exactly one weight: split multi-target leaves across trees
      return c;
    };
    await roundTrip(dir, 'v5-sum', v5(gbdt), data.X);
    await roundTrip(dir, 'v5-double', { ...v5(gbdt), double: true }, data.X);
    for (const agg of ['AVERAGE', 'MIN', 'MAX'] as const) await roundTrip(dir, `v5-${agg}`, { ...v5(forest), aggregate: agg }, data.X);
    // several targets: tree i votes target i % 3
    const mt = v5(multiClassPerTree(gbdt, 3, 'NONE'));
    mt.op = 'TreeEnsemble';
    await roundTrip(dir, 'v5-targets', mt, data.X);
    await roundTrip(dir, 'v5-softmax', { ...cloneEnsemble(mt), postTransform: 'SOFTMAX' }, data.X);
    await roundTrip(dir, 'v5-logistic-double', { ...cloneEnsemble(mt), postTransform: 'LOGISTIC', double: true }, data.X);
    await roundTrip(dir, 'v5-nan', mixModes(v5(snapThresholds(gbdt)), 8), gridX);
  });
});

test('trees layouts: several ensembles in one graph: the first by default, any by node name, each equal to ORT', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'several.onnx');
    const parts = [
      { name: 'ranker', e: cloneEnsemble(gbdt) },
      { name: 'ctr', e: binarySingleWeight(gbdt, 'LOGISTIC', -0.2) },
      { name: 'genre', e: multiClassPerTree(forest, 4, 'SOFTMAX') },
    ];
    await writeSeveralEnsembles(path, F, parts);
    const ir = await readOnnxModel(path);
    assert.deepEqual(listTreeEnsembles(ir).map((r) => r.name), ['ranker', 'ctr', 'genre']);
    assert.equal(readTreeEnsemble(ir).ref.name, 'ranker');
    const r = await runOrt(path, data.X, false);
    for (const p of parts) {
      const { ref, ensemble } = readTreeEnsemble(ir, p.name);
      assert.equal(ref.name, p.name);
      assert.equal(ref.op, p.e.op);
      const cls = p.e.op === 'TreeEnsembleClassifier';
      checkOutputs(`several/${p.name}`, ensemble, data.X, r, cls ? `${p.name}_probabilities` : `${p.name}_Y`, cls ? `${p.name}_label` : undefined);
    }
    assert.throws(() => readTreeEnsemble(ir, 'nope'), /no tree ensemble node named "nope" \(there are: ranker, ctr, genre\)/);
  });
});
