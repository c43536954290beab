import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { readTreeEnsemble, writeReplacedTreeEnsemble, writeTreeEnsembleModel } from '../../src/core/trees/onnx-trees.js';
import { analyzeTreeEnsemble } from '../../src/core/trees/tree-analysis.js';
import { parseTreeCsv, formatTreeCsv } from '../../src/core/trees/tree-data.js';
import { evaluateTreeEnsemble, type FeatureMatrix } from '../../src/core/trees/tree-eval.js';
import { compareWithOrt } from '../../src/core/trees/tree-ort.js';
import { FastAuc, pruneFeatures, pruneMaxDepth, pruneMinCover, prunePost, pruneTrees, type TreePruneResult } from '../../src/core/trees/tree-prune.js';
import { auc } from '../../src/core/eval/metrics.js';
import type { TreeEnsemble, TreeNode } from '../../src/core/trees/tree-model.js';
import { ModelFileError } from '../../src/core/model/ir.js';
import { validationLabels } from '../../src/core/trees/tree-metric.js';
import { withDataCover, withoutCover } from '../../src/core/trees/tree-collapse.js';
import { makeCtrData, trainGbdt } from '../fixtures/tree-trainer.js';
import { forestClassifier } from '../fixtures/tree-layouts.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ps-trees-prune-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const leaf = (value: number, cover?: number): TreeNode => ({ votes: [{ target: 0, value }], cover });
const split = (feature: number, threshold: number, t: number, f: number, cover?: number): TreeNode => ({
  split: { feature, threshold, mode: 'BRANCH_LEQ', trueChild: t, falseChild: f, missingTracksTrue: false },
  votes: [],
  cover,
});

/**
 * Tree 0: f0 <= 0.5 ? 1 (cover 30) : (f1 <= 0.5 ? 2 (cover 20) : -1 (cover 50)).
 * Tree 1: f2 <= 0.25 ? 0.5 (cover 60) : -0.5 (cover 40).
 */
function handMade(withCover = true): TreeEnsemble {
  const c = (x: number) => (withCover ? x : undefined);
  return {
    op: 'TreeEnsembleRegressor',
    nTargets: 1,
    trees: [
      { id: 0, nodes: [split(0, 0.5, 1, 2, c(100)), leaf(1, c(30)), split(1, 0.5, 3, 4, c(70)), leaf(2, c(20)), leaf(-1, c(50))] },
      { id: 1, nodes: [split(2, 0.25, 1, 2, c(100)), leaf(0.5, c(60)), leaf(-0.5, c(40))] },
    ],
    baseValues: [0.25],
    postTransform: 'NONE',
    aggregate: 'SUM',
    double: false,
    hasCover: withCover,
  };
}

test('trees: max-depth collapse gives the cover-weighted mean of the leaves (or the plain mean without cover)', () => {
  const d1 = pruneMaxDepth(handMade(), 1);
  assert.deepEqual(d1.ensemble.trees[0].nodes.map((n) => n.votes), [[], [{ target: 0, value: 1 }], [{ target: 0, value: (20 * 2 + 50 * -1) / 70 }]]);
  assert.equal(d1.collapsed, 1);
  assert.deepEqual(d1.before, { trees: 2, nodes: 8, leaves: 5 });
  assert.deepEqual(d1.after, { trees: 2, nodes: 6, leaves: 4 });
  const d0 = pruneMaxDepth(handMade(), 0);
  assert.deepEqual(d0.ensemble.trees[0].nodes, [{ split: undefined, votes: [{ target: 0, value: (30 * 1 + 20 * 2 + 50 * -1) / 100 }], cover: 100 }]);
  const plain = pruneMaxDepth(handMade(false), 1);
  assert.deepEqual(plain.ensemble.trees[0].nodes[2].votes, [{ target: 0, value: 0.5 }]);
  assert.match(plain.notes.join(' '), /plain mean/);
});

test('trees: min-cover collapses a split with a child below the cover; needs recorded cover', () => {
  const r = pruneMinCover(handMade(), 25);
  assert.equal(r.collapsed, 1);
  assert.deepEqual(r.ensemble.trees[0].nodes[2].votes, [{ target: 0, value: -10 / 70 }]);
  assert.equal(r.ensemble.trees[1].nodes.length, 3);
  assert.throws(() => pruneMinCover(handMade(false), 25), /nodes_hitrates/);
});

test('trees: feature pruning replaces splits by their majority child and reports unused inputs', () => {
  const r = pruneFeatures(handMade(), { features: [1], nFeatures: 4 });
  assert.deepEqual(r.ensemble.trees[0].nodes.map((n) => n.votes), [[], [{ target: 0, value: 1 }], [{ target: 0, value: -1 }]]);
  assert.deepEqual(r.becameUnused, [1]);
  assert.deepEqual(r.alreadyUnused, [3]);
  assert.equal(r.majorityBy, 'cover');
  // f0's false side (cover 70) wins: tree 0 becomes the f1 split
  const r0 = pruneFeatures(handMade(), { features: [0] });
  assert.deepEqual(r0.ensemble.trees[0].nodes.map((n) => n.split?.feature ?? n.votes[0].value), [1, 2, -1]);
});

test('trees: analysis counts, histograms, cover gain and unused features', () => {
  const a = analyzeTreeEnsemble(handMade(), { features: 4 });
  assert.equal(a.trees, 2);
  assert.equal(a.nodes, 8);
  assert.equal(a.leaves, 5);
  assert.deepEqual(a.depth.histogram, { 1: 1, 2: 1 });
  assert.deepEqual(a.leavesPerTree.histogram, { 2: 1, 3: 1 });
  assert.deepEqual(a.unusedFeatures, [3]);
  assert.equal(a.rankedBy, 'gain');
  // gain = cL*vL^2 + cR*vR^2 - c*v^2 with v the cover-weighted leaf mean:
  // f2: 60*0.25 + 40*0.25 - 100*0.01 = 24; f1: 20*4 + 50*1 - 70*(10/70)^2; f0: 30*1 + 70*(10/70)^2 - 100*0.2^2
  const byF = new Map(a.importance.map((x) => [x.feature, x]));
  assert.ok(Math.abs((byF.get(2)?.gain ?? 0) - 24) < 1e-12);
  assert.ok(Math.abs((byF.get(1)?.gain ?? 0) - (130 - 100 / 70)) < 1e-12);
  assert.ok(Math.abs((byF.get(0)?.gain ?? 0) - (30 + 100 / 70 - 4)) < 1e-12);
  assert.deepEqual(a.importance.map((x) => x.feature), [1, 0, 2, 3]);
});

test('trees: a forest classifier (every leaf votes each class a probability) is ranked by the Gini decrease, not by rounding noise', () => {
  const votes = (p0: number, cover: number): TreeNode => ({ votes: [{ target: 0, value: p0 }, { target: 1, value: 1 - p0 }], cover });
  const forest: TreeEnsemble = {
    op: 'TreeEnsembleClassifier',
    nTargets: 2,
    classLabelsInts: [0, 1],
    // tree 0: f0 separates the classes (0.9 / 0.2 of class 0); tree 1: f1 splits into two leaves alike
    trees: [
      { id: 0, nodes: [split(0, 0.5, 1, 2, 100), votes(0.9, 60), votes(0.2, 40)] },
      { id: 1, nodes: [split(1, 0.5, 1, 2, 100), votes(0.5, 30), votes(0.5, 70)] },
    ],
    baseValues: [0, 0],
    postTransform: 'NONE',
    aggregate: 'SUM',
    double: false,
    hasCover: true,
  };
  const a = analyzeTreeEnsemble(forest, { features: 2 });
  const byF = new Map(a.importance.map((x) => [x.feature, x]));
  // Gini decrease: 100 x (1 - 0.62^2 - 0.38^2) - 60 x (1 - 0.81 - 0.01) - 40 x (1 - 0.04 - 0.64) = 47.12 - 10.8 - 12.8
  assert.ok(Math.abs((byF.get(0)?.gain ?? 0) - 23.52) < 1e-9, String(byF.get(0)?.gain));
  assert.ok(Math.abs(byF.get(1)?.gain ?? 1) < 1e-12, String(byF.get(1)?.gain));
  assert.deepEqual(a.importance.map((x) => x.feature), [0, 1]);
});

test('trees: post-pruning removes a subtree no validation row reaches, outputs unchanged (ours and ORT)', async () => {
  const rows = 40;
  const X = { data: new Float32Array(rows * 4), rows, features: 4 };
  for (let r = 0; r < rows; r++) {
    X.data[r * 4] = 0.1; // f0's false branch (the f1 subtree) is never reached
    X.data[r * 4 + 2] = r % 2 ? 0.1 : 0.9;
  }
  const e = handMade();
  // labels = the model's own outputs: RMSE 0, so every real change is rejected
  const labels = evaluateTreeEnsemble(e, X).scores;
  const r = prunePost(e, { X, labels });
  assert.equal(r.collapsed, 1);
  assert.deepEqual(r.ensemble.trees[0].nodes.map((n) => n.split?.feature ?? n.votes[0].value), [0, 1, -10 / 70]);
  assert.equal(r.after.nodes, r.before.nodes - 2);
  assert.equal(r.ensemble.trees[1].nodes.length, 3);
  assert.deepEqual(r.tuning, { metric: 'rmse', before: 0, after: 0, rows: X.rows });
  assert.equal(r.heldOut, undefined);
  assert.deepEqual(evaluateTreeEnsemble(r.ensemble, X).scores, labels);
  await withDir(async (dir) => {
    const src = join(dir, 'm.onnx');
    const out = join(dir, 'p.onnx');
    await writeTreeEnsembleModel(src, e, { nFeatures: 4 });
    const ir = await readOnnxModel(src);
    const { ref } = readTreeEnsemble(ir);
    await writeReplacedTreeEnsemble(ir, ref, r.ensemble, out);
    const back = readTreeEnsemble(await readOnnxModel(out)).ensemble;
    assert.equal(back.trees[0].nodes.length, 3);
    assert.equal((await compareWithOrt(out, back, X)).maxAbsDiff, 0);
  });
});

test('trees: post-pruning at tolerance 0 keeps a split the log-loss needs though accuracy would not see it; a tolerance collapses it too', () => {
  // 3 classes, SOFTMAX, base values [0, -3, -3]: class 0 is every row's argmax whatever the trees
  // say, so accuracy (3 of 4) never moves. Tree 0 (f0) is surer of class 0 where all rows are
  // class 0: it lowers the log-loss and stays. Tree 1 (f1) pushes class 0 up exactly on the
  // class-1 row and down on class-0 rows: collapsing it lowers the log-loss, so it goes.
  const vote = (value: number): TreeNode => ({ votes: [{ target: 0, value }] });
  const e: TreeEnsemble = {
    op: 'TreeEnsembleClassifier',
    nTargets: 3,
    classLabelsInts: [0, 1, 2],
    trees: [
      { id: 0, nodes: [split(0, 0.5, 1, 2), vote(2), vote(1)] },
      { id: 1, nodes: [split(1, 0.5, 1, 2), vote(0.5), vote(-0.5)] },
    ],
    baseValues: [0, -3, -3],
    postTransform: 'SOFTMAX',
    aggregate: 'SUM',
    double: false,
    hasCover: false,
  };
  const X = { data: Float32Array.from([0.1, 0.9, 0.1, 0.9, 0.9, 0.9, 0.9, 0.1]), rows: 4, features: 2 };
  const labels = Float32Array.from([0, 0, 0, 1]);
  // log-loss of a class-0 row at class-0 margin m: log(1 + 2 e^(-3 - m)); of the class-1 row: 3 + log(e^m + 2 e^-3)
  const l0 = (m: number) => Math.log(1 + 2 * Math.exp(-3 - m));
  const l1 = (m: number) => 3 + Math.log(Math.exp(m) + 2 * Math.exp(-3));
  const before = (2 * l0(1.5) + l0(0.5) + l1(1.5)) / 4;
  const after = (2 * l0(2) + l0(1) + l1(1)) / 4;
  const r = prunePost(e, { X, labels });
  assert.equal(r.collapsed, 1);
  assert.deepEqual(r.ensemble.trees.map((t) => t.nodes.length), [3, 1]);
  assert.deepEqual(r.ensemble.trees[1].nodes[0].votes, [{ target: 0, value: 0 }]);
  assert.deepEqual(r.tuning, { metric: 'accuracy', before: 0.75, after: 0.75, rows: 4 });
  assert.ok(r.notes.includes(`1 split(s) collapsed where neither the validation accuracy fell nor its log-loss rose (${before.toFixed(4)} -> ${after.toFixed(4)} after them)`), r.notes.join('\n'));
  // accuracy alone cannot tell tree 0's split from noise: with a tolerance it goes as well
  const t = prunePost(e, { X, labels }, { tolerance: 0.01 });
  assert.equal(t.collapsed, 2);
  assert.deepEqual(t.ensemble.trees.map((x) => x.nodes.length), [1, 1]);
  assert.deepEqual(t.tuning, { metric: 'accuracy', before: 0.75, after: 0.75, rows: 4 });
  assert.ok(t.notes.some((n) => n.endsWith('; then 1 more within the tolerance of 0.01')), t.notes.join('\n'));
});

test('trees: ensemble pruning drops the tree that does not help and re-fits the base value', () => {
  const e = handMade();
  // labels depend on f0 only: tree 1 (f2) is made loud noise
  e.trees[1].nodes[1].votes[0].value = 3;
  e.trees[1].nodes[2].votes[0].value = -3;
  const rows = 8;
  const X = { data: new Float32Array(rows * 4), rows, features: 4 };
  const labels = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    X.data[r * 4] = r < 4 ? 0.1 : 0.9;
    X.data[r * 4 + 1] = 0.9;
    X.data[r * 4 + 2] = r % 2 ? 0.1 : 0.9;
    labels[r] = r < 4 ? 1 : 0;
  }
  const r = pruneTrees(e, { X, labels }, { dropFraction: 0.5 });
  assert.deepEqual(r.droppedTrees, [1]);
  assert.equal(r.tuning?.before, 0.75);
  assert.equal(r.tuning?.after, 1);
  // margins are 1.25 (4 rows, label 1) and -0.75 (label 0): separable, outputs outside [0,1] -> logloss refit grows |b| freely;
  // what must hold is that the base moved and the note says how it was fitted
  assert.notEqual(r.baseValues?.after[0], r.baseValues?.before[0]);
  assert.match(r.notes.join(' '), /logloss/);
});

test('trees: CSV reader: header f0..,label anywhere, missing cells are NaN, errors name the file', () => {
  const d = parseTreeCsv('v.csv', 'label,f0,f1\n1,0.5,\n0,NaN,2\n');
  assert.deepEqual(Array.from(d.labels), [1, 0]);
  assert.deepEqual(Array.from(d.X.data), [0.5, NaN, NaN, 2]);
  assert.deepEqual(d.featureNames, ['f0', 'f1']);
  const back = parseTreeCsv('w.csv', formatTreeCsv(d));
  assert.deepEqual(Array.from(back.X.data), Array.from(d.X.data));
  assert.throws(() => parseTreeCsv('v.csv', 'f0,f1\n1,2\n'), (e: unknown) => e instanceof ModelFileError && /v\.csv: no 'label' column/.test(e.message));
  assert.throws(() => parseTreeCsv('v.csv', 'f0,label\nx,1\n'), /line 2, column 1 \('f0'\): 'x' is not a number/);
  assert.throws(() => parseTreeCsv('v.csv', 'f0,label\n1\n'), /line 2 has 1 cells, the header has 2/);
});

/** Each pruned ensemble, written into a file of the original, runs in ORT as our evaluator says (labels too). */
async function prunedMatchOrt(original: TreeEnsemble, pruned: Record<string, TreePruneResult>, X: FeatureMatrix): Promise<void> {
  await withDir(async (dir) => {
    const src = join(dir, 'original.onnx');
    await writeTreeEnsembleModel(src, original, { nFeatures: X.features });
    const ir = await readOnnxModel(src);
    const { ref } = readTreeEnsemble(ir);
    for (const [name, r] of Object.entries(pruned)) {
      const out = join(dir, `${name}.onnx`);
      await writeReplacedTreeEnsemble(ir, ref, r.ensemble, out);
      const c = await compareWithOrt(out, readTreeEnsemble(await readOnnxModel(out)).ensemble, X);
      assert.ok(c.maxAbsDiff <= 1e-6 && c.labelsEqual === true, `${name}: ${c.maxAbsDiff} ${c.labelsEqual}`);
    }
  });
}

test('trees: a binary classifier with class labels 3 and 7 is validated by AUC on labels 3/7 (7 positive); a label that is no class is an error, not RMSE', () => {
  const train = makeCtrData(600, 6, 41);
  const valid = makeCtrData(300, 6, 42);
  const g = trainGbdt(train, { trees: 8, maxDepth: 3, seed: 2 });
  const cls: TreeEnsemble = { ...g, op: 'TreeEnsembleClassifier', nTargets: 2, classLabelsInts: [3, 7], baseValues: [], postTransform: 'LOGISTIC' };
  for (const t of cls.trees) for (const n of t.nodes) for (const v of n.votes) v.target = 1;
  const asClasses = Float32Array.from(valid.labels, (y) => (y > 0 ? 7 : 3));
  const labels = validationLabels(cls, asClasses, 'valid.csv');
  assert.deepEqual([...labels], [...valid.labels]);
  const a = analyzeTreeEnsemble(cls, { features: 6, data: valid.X, labels });
  assert.equal(a.permutation?.metric, 'auc');
  const out = evaluateTreeEnsemble(cls, valid.X);
  assert.equal(a.permutation?.baseline, auc(valid.labels, Float32Array.from({ length: valid.X.rows }, (_, r) => out.scores[2 * r + 1])));
  // one row labelled 2: an error naming the file and the row (it used to switch the metric to RMSE)
  const bad = asClasses.slice();
  bad[41] = 2;
  assert.throws(() => validationLabels(cls, bad, 'valid.csv'), (e: unknown) => e instanceof ModelFileError && e.message === 'valid.csv: data row 42: label 2 is not a class of this 2-class classifier (its classes are 3, 7)');
  // a regressor's labels are its targets, whatever they are
  assert.equal(validationLabels(g, bad, 'valid.csv'), bad);
});

test('trees: a binary classifier (votes on one class) is post- and ensemble-pruned and still matches ORT', async () => {
  const train = makeCtrData(600, 6, 41);
  const valid = makeCtrData(300, 6, 42);
  const g = trainGbdt(train, { trees: 8, maxDepth: 3, seed: 2 });
  const cls: TreeEnsemble = { ...g, op: 'TreeEnsembleClassifier', nTargets: 2, classLabelsInts: [0, 1], baseValues: [], postTransform: 'LOGISTIC' };
  for (const t of cls.trees) for (const n of t.nodes) for (const v of n.votes) v.target = 1;
  const post = prunePost(cls, valid);
  const drop = pruneTrees(cls, valid, { dropFraction: 0.25 });
  assert.ok(post.after.nodes < post.before.nodes);
  assert.ok((post.tuning?.after ?? 0) >= (post.tuning?.before ?? 1));
  assert.equal(drop.after.trees, 6);
  assert.match(drop.notes.join(' '), /base value not re-fitted/);
  await prunedMatchOrt(cls, { post, drop }, valid.X);
});

test('trees: a binary forest (every leaf votes both classes) is post- and ensemble-pruned; its probabilities still add up to 1 and ORT agrees', async () => {
  const train = makeCtrData(600, 6, 51);
  const valid = makeCtrData(300, 6, 52);
  const forest = forestClassifier(trainGbdt(train, { trees: 8, maxDepth: 3, seed: 3 }), 2, 5);
  const post = prunePost(forest, valid, { tolerance: 0.01 });
  const drop = pruneTrees(forest, valid, { dropFraction: 0.25, tolerance: 1 });
  assert.ok(post.after.nodes < post.before.nodes, `${post.after.nodes} of ${post.before.nodes} nodes`);
  assert.ok((post.tuning?.after ?? 0) >= (post.tuning?.before ?? 1) - 0.01);
  assert.equal(drop.after.trees, 6);
  assert.ok(drop.notes.includes('votes of the 6 remaining trees scaled by 8/6: a forest\'s class probabilities still add up to 1'), drop.notes.join('\n'));
  const out = evaluateTreeEnsemble(drop.ensemble, valid.X);
  for (let r = 0; r < valid.X.rows; r++) assert.ok(Math.abs(out.scores[2 * r] + out.scores[2 * r + 1] - 1) < 1e-5, `row ${r}`);
  // the tuning AUC is the AUC of class 1's probability
  assert.ok(Math.abs((drop.tuning?.after ?? 0) - auc(valid.labels, Float32Array.from({ length: valid.X.rows }, (_, r) => out.scores[2 * r + 1]))!) < 1e-9);
  await prunedMatchOrt(forest, { post, drop }, valid.X);
});

test('trees: feature pruning that would remove only unused features is refused; a 3-class ensemble is validated by accuracy, a 3-target regressor says what it supports', () => {
  // handMade reads f0, f1, f2 of 5 features: the 2 lowest-ranked are f3 and f4, both unused
  assert.throws(
    () => pruneFeatures(handMade(), { fraction: 0.4, nFeatures: 5 }),
    (e: unknown) => e instanceof Error && e.message === 'nothing to prune: the 2 lowest-ranked features (f3, f4) are already unused; the trees read 3 of 5 features: ask for a larger fraction',
  );
  // 0.6: f3, f4 and the weakest feature read (f2): pruned
  assert.deepEqual(pruneFeatures(handMade(), { fraction: 0.6, nFeatures: 5 }).becameUnused, [2]);
  const three: TreeEnsemble = { ...handMade(), op: 'TreeEnsembleClassifier', nTargets: 3, classLabelsInts: [0, 1, 2], baseValues: [] };
  for (const t of three.trees) for (const n of t.nodes) if (!n.split) n.votes = [0, 1, 2].map((target) => ({ target, value: 0.1 * (target + 1) }));
  const X = { rows: 2, features: 5, data: new Float32Array(10) };
  // every leaf votes class 2 highest: accuracy is the share of rows labelled 2
  const a = analyzeTreeEnsemble(three, { features: 5, data: X, labels: Float32Array.of(2, 1) });
  assert.equal(a.permutation?.metric, 'accuracy');
  assert.equal(a.permutation?.baseline, 0.5);
  // a data file's labels are checked against the classes, naming the file and the row
  assert.throws(
    () => validationLabels(three, Float32Array.of(0, 7), 'valid.csv'),
    (e: unknown) => e instanceof ModelFileError && e.message === 'valid.csv: data row 2: label 7 is not a class of this 3-class classifier (its classes are 0, 1, 2)',
  );
  const regressor: TreeEnsemble = { ...three, op: 'TreeEnsembleRegressor', classLabelsInts: undefined };
  assert.throws(
    () => analyzeTreeEnsemble(regressor, { features: 5, data: X, labels: Float32Array.of(0, 1) }),
    /^Error: validation metrics need one score per row \(AUC, RMSE: a regressor with one target, a binary classifier\) or classes \(accuracy: a multi-class classifier\); this TreeEnsembleRegressor has 3 outputs/,
  );
});

/** Three classes from the first features (argmax of three noisy scores); the rest is noise. */
function threeClassData(rows: number, features: number, seed: number): { X: FeatureMatrix; labels: Float32Array } {
  const d = makeCtrData(rows, features, seed);
  const x = (r: number, f: number) => d.X.data[r * features + f];
  let a = seed;
  const noise = () => ((a = (a * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.6;
  const labels = Float32Array.from({ length: rows }, (_, r) => {
    const s = [2 * x(r, 0) + noise(), 2 * x(r, 1) + noise(), 1.6 * (x(r, 2) > 0.5 ? x(r, 3) : 1 - x(r, 3)) + 0.2 + noise()];
    return s.indexOf(Math.max(...s)) + 10;
  });
  return { X: d.X, labels };
}

test('trees: a 3-class GBDT (one-vs-rest trees, SOFTMAX, class labels 10/11/12) is post- and ensemble-pruned by accuracy; the figures are the predicted labels\' and ORT agrees', async () => {
  const train = threeClassData(900, 6, 61);
  const validRaw = threeClassData(600, 6, 62);
  // per class, boosted trees on "is this class", interleaved as LightGBM writes them (tree i votes class i % 3)
  const perClass = [10, 11, 12].map((c, k) => trainGbdt({ X: train.X, labels: train.labels.map((y) => (y === c ? 1 : 0)) }, { trees: 6, maxDepth: 3, seed: 5 + k }));
  const cls: TreeEnsemble = {
    op: 'TreeEnsembleClassifier',
    nTargets: 3,
    classLabelsInts: [10, 11, 12],
    trees: perClass[0].trees.flatMap((_, i) =>
      perClass.map((g, k) => ({ id: i * 3 + k, nodes: g.trees[i].nodes.map((n) => ({ ...n, votes: n.votes.map((v) => ({ target: k, value: v.value })) })) })),
    ),
    baseValues: perClass.map((g) => g.baseValues[0]),
    postTransform: 'SOFTMAX',
    aggregate: 'SUM',
    double: false,
    hasCover: true,
  };
  // the file's class labels 10/11/12 become class indices, as the CLI and the jobs read them
  const valid = { X: validRaw.X, labels: validationLabels(cls, validRaw.labels, 'valid.csv') };
  assert.deepEqual([...new Set(valid.labels)].sort(), [0, 1, 2]);
  const accuracy = (e: TreeEnsemble) => {
    const p = evaluateTreeEnsemble(e, valid.X).labelIndex!;
    let hit = 0;
    for (let r = 0; r < valid.X.rows; r++) if ([10, 11, 12][p[r]] === validRaw.labels[r]) hit++;
    return hit / valid.X.rows;
  };
  const before = accuracy(cls);
  assert.ok(before > 0.6, `the fixture classifies: accuracy ${before}`);
  const post = prunePost(cls, valid);
  const drop = pruneTrees(cls, valid, { dropFraction: 0.5, tolerance: 0.01 });
  assert.equal(post.tuning?.metric, 'accuracy');
  assert.equal(post.tuning?.before, before);
  assert.equal(post.tuning?.after, accuracy(post.ensemble));
  assert.ok(post.tuning!.after >= before, `post-pruning may not lose accuracy at tolerance 0: ${before} -> ${post.tuning!.after}`);
  assert.ok(post.after.nodes < post.before.nodes, `${post.after.nodes} of ${post.before.nodes} nodes`);
  assert.equal(drop.tuning?.after, accuracy(drop.ensemble));
  assert.ok(drop.tuning!.after >= before - 0.01 - 1e-12, `${before} -> ${drop.tuning!.after}`);
  assert.ok(drop.after.trees < 18 && drop.after.trees >= 9, `${drop.after.trees} trees`);
  assert.match(drop.notes.join(' '), /base value not re-fitted/);
  // ranked by permutation of accuracy; the noise features f4, f5 rank last
  const a = analyzeTreeEnsemble(cls, { features: 6, data: valid.X, labels: valid.labels });
  assert.equal(a.permutation?.metric, 'accuracy');
  assert.deepEqual(a.importance.slice(-2).map((f) => f.feature).sort(), [4, 5]);
  await prunedMatchOrt(cls, { post, drop }, valid.X);
});

test('trees: with no cover recorded, a depth limit can weight the collapsed leaves by the rows of --data reaching them; the counts are not kept', () => {
  const e = handMade(false);
  // tree 0's node 2 (f0 > 0.5) splits on f1: 3 rows go to its leaf 2, 1 row to its leaf -1
  const X: FeatureMatrix = { rows: 5, features: 3, data: Float32Array.of(1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0) };
  const plain = pruneMaxDepth(e, 1);
  assert.deepEqual(plain.ensemble.trees[0].nodes[2].votes, [{ target: 0, value: 0.5 }]);
  const weighted = pruneMaxDepth(withDataCover(e, X), 1);
  assert.deepEqual(weighted.ensemble.trees[0].nodes[2].votes, [{ target: 0, value: (3 * 2 + 1 * -1) / 4 }]);
  assert.deepEqual(withDataCover(e, X).trees[0].nodes.map((n) => n.cover), [5, 1, 4, 3, 1]);
  const written = withoutCover(weighted.ensemble);
  assert.equal(written.hasCover, false);
  assert.ok(written.trees.every((t) => t.nodes.every((n) => n.cover === undefined)));
  assert.equal(e.hasCover, false, 'the original is not changed');
});

test('trees: the pruning AUC equals metrics.auc, ties included', () => {
  const labels = Float32Array.from([1, 0, 1, 0, 0, 1, 1, 0, 0, 1]);
  const scores = [0.3, 0.3, 0.9, 0.1, 0.5, 0.5, 0.5, 0.9, -1, 0.3];
  const fa = new FastAuc(labels);
  assert.equal(fa.auc(scores), auc(labels, scores));
  // positives 0.3, 0.9, 0.5, 0.5, 0.3 against negatives 0.3, 0.1, 0.5, 0.9, -1: 2.5 + 4.5 + 3.5 + 3.5 + 2.5
  assert.equal(fa.auc(scores), 16.5 / 25);
});
