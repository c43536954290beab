// Permutation importance (the default ranking with labelled data), honest selection (tree removal
// and post-pruning choose on a tuning part and report on rows they never saw), and the base-value
// re-fit of binary LOGISTIC classifiers after tree removal.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { treesCommand } from '../../src/cli/trees-command.js';
import { UsageError } from '../../src/cli/args.js';
import { auc } from '../../src/core/eval/metrics.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { readTreeEnsemble, writeTreeEnsembleModel } from '../../src/core/trees/onnx-trees.js';
import { analyzeTreeEnsemble, featureImportance, permutationImportance } from '../../src/core/trees/tree-analysis.js';
import { formatTreeCsv } from '../../src/core/trees/tree-data.js';
import { evaluateTreeEnsemble, singleScore } from '../../src/core/trees/tree-eval.js';
import { compareWithOrt } from '../../src/core/trees/tree-ort.js';
import { pruneFeatures, prunePost, pruneTrees, splitTuning, type LabeledRows } from '../../src/core/trees/tree-prune.js';
import type { TreeEnsemble } from '../../src/core/trees/tree-model.js';
import { makeCtrData, makeNoisyCtrData, trainForest, trainGbdt } from '../fixtures/tree-trainer.js';
import { binarySingleWeight } from '../fixtures/tree-layouts.js';

function aucOf(e: TreeEnsemble, d: LabeledRows): number {
  return auc(d.labels, singleScore(e, evaluateTreeEnsemble(e, d.X))) as number;
}

async function capture(argv: string[]): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array) => {
    chunks.push(String(s));
    return true;
  }) as typeof process.stdout.write;
  try {
    return { code: await treesCommand(argv), out: chunks.join('') };
  } finally {
    process.stdout.write = orig;
  }
}

test('trees importance: permutation ranks 6 planted noise features of 31 in the bottom third, for a GBDT and a forest', () => {
  const F = 31;
  const train = makeNoisyCtrData(4000, 25, 6, 51);
  const valid = makeNoisyCtrData(1500, 25, 6, 52);
  assert.deepEqual(valid.noise, train.noise);
  const ensembles: Array<[string, TreeEnsemble]> = [
    ['gbdt', trainGbdt(train, { trees: 60, maxDepth: 3, seed: 5 })],
    ['forest', trainForest(train, { trees: 60, maxDepth: 6, seed: 6 })],
  ];
  for (const [name, e] of ensembles) {
    const a = analyzeTreeEnsemble(e, { features: F, data: valid.X, labels: valid.labels });
    assert.equal(a.rankedBy, 'permutation');
    assert.equal(a.permutation?.metric, 'auc');
    assert.equal(a.permutation?.repeats, 5);
    assert.equal(a.permutation?.rows, 1500);
    // split counts and gain stay as columns
    assert.ok(a.importance.every((x) => typeof x.splits === 'number' && x.gain !== undefined && x.permutation !== undefined && x.permutationSpread !== undefined));
    const ranks = train.noise.map((f) => a.importance.find((x) => x.feature === f)?.rank as number);
    const mean = ranks.reduce((s, r) => s + r, 0) / ranks.length;
    console.log(`${name}: permutation ranks of the noise features ${ranks.join(', ')} of ${F}, mean ${mean.toFixed(2)}`);
    assert.ok(mean > (2 * F) / 3, `${name}: mean noise rank ${mean} not in the bottom third`);
    // sorted by the mean drop
    for (let i = 1; i < a.importance.length; i++) assert.ok((a.importance[i - 1].permutation ?? 0) >= (a.importance[i].permutation ?? 0));
  }
});

test('trees importance: permutation is seeded, 0 for unused features, RMSE for non-0/1 labels; without labels the old ranking stays', () => {
  const d = makeCtrData(600, 6, 71);
  const e = trainGbdt(d, { trees: 10, maxDepth: 2, seed: 1 });
  const p1 = permutationImportance(e, d.X, d.labels, { repeats: 3, seed: 9, features: 8 });
  const p2 = permutationImportance(e, d.X, d.labels, { repeats: 3, seed: 9, features: 8 });
  assert.deepEqual(p1, p2);
  assert.equal(p1.drops.length, 8);
  assert.deepEqual(p1.drops[7], { mean: 0, spread: 0, runs: [] });
  assert.equal(p1.drops[0].runs.length, 3);
  assert.ok(p1.drops[0].mean > 0.01 && p1.drops[0].spread >= 0);
  const reg = Float32Array.from(d.labels, (y, i) => y * 2 + (i % 3));
  const pr = permutationImportance(e, d.X, reg, { repeats: 2 });
  assert.equal(pr.settings.metric, 'rmse');
  assert.equal(featureImportance(e, { data: d.X }).rankedBy, 'outputChange');
  assert.equal(featureImportance(e, {}).rankedBy, 'gain');
  // feature pruning ranks by permutation with labelled data
  const r = pruneFeatures(e, { fraction: 0.5, data: d });
  assert.match(r.notes.join(' '), /features ranked by permutation/);
});

test('trees honest split: seeded, disjoint, complete, stratified, exact size', () => {
  const d = makeCtrData(1001, 4, 81);
  const a = splitTuning(d, { seed: 3 });
  const b = splitTuning(d, { seed: 3 });
  const c = splitTuning(d, { seed: 4 });
  assert.deepEqual(a.tuneRows, b.tuneRows);
  assert.notDeepEqual(a.tuneRows, c.tuneRows);
  assert.equal(a.tune.X.rows, Math.round(1001 / 2));
  assert.equal(a.tune.X.rows + a.holdout.X.rows, 1001);
  assert.equal(new Set(a.tuneRows).size, a.tuneRows.length);
  const pos = (l: Float32Array) => l.reduce((s, y) => s + y, 0);
  assert.ok(Math.abs(pos(a.tune.labels) - pos(a.holdout.labels)) <= 2, 'both halves keep the class balance');
  // the rows are the original rows
  const r0 = a.tuneRows[0];
  assert.deepEqual(Array.from(a.tune.X.data.subarray(0, 4)), Array.from(d.X.data.subarray(r0 * 4, r0 * 4 + 4)));
  assert.throws(() => splitTuning(d, { fraction: 1 }), /fraction/);
  assert.equal(a.stratified, true);
  // classes of a multi-class classifier: each keeps its share in both halves (60 / 30 / 10 rows)
  const classes = { X: { data: new Float32Array(100), rows: 100, features: 1 }, labels: Float32Array.from({ length: 100 }, (_, r) => (r < 60 ? 7 : r < 90 ? 8 : 9)) };
  const m = splitTuning(classes, { seed: 3 });
  assert.equal(m.stratified, true);
  assert.deepEqual([7, 8, 9].map((c) => m.tune.labels.filter((y) => y === c).length), [30, 15, 5]);
  // a regression target is not stratified
  const reg = { X: { data: new Float32Array(100), rows: 100, features: 1 }, labels: Float32Array.from({ length: 100 }, (_, r) => r / 7) };
  assert.equal(splitTuning(reg, { seed: 3 }).stratified, false);
});

test('trees honest rule: tree removal chooses on the tuning rows only and reports held-out numbers measured on the other rows', () => {
  const train = makeCtrData(2000, 8, 91);
  const data = makeCtrData(1200, 8, 92);
  const e = trainGbdt(train, { trees: 30, maxDepth: 3, seed: 2 });
  const sp = splitTuning(data, { seed: 1 });
  const alone = pruneTrees(e, sp.tune, { dropFraction: 0.4 });
  const r = pruneTrees(e, sp.tune, { dropFraction: 0.4, heldOut: { rows: sp.holdout, source: 'the other half' } });
  // the held-out rows change nothing that was chosen
  assert.deepEqual(r.droppedTrees, alone.droppedTrees);
  assert.deepEqual(r.ensemble.baseValues, alone.ensemble.baseValues);
  assert.equal(alone.heldOut, undefined);
  assert.equal(r.validation, undefined);
  assert.equal(r.tuning?.rows, sp.tune.X.rows);
  assert.equal(r.tuning?.after, aucOf(r.ensemble, sp.tune));
  assert.deepEqual(r.heldOut, { metric: 'auc', before: aucOf(e, sp.holdout), after: aucOf(r.ensemble, sp.holdout), rows: sp.holdout.X.rows, source: 'the other half' });
});

test('trees honest rule: post-pruning chooses on the tuning rows only and reports held-out numbers measured on the other rows', () => {
  const train = makeCtrData(2000, 8, 93);
  const data = makeCtrData(1200, 8, 94);
  const e = trainForest(train, { trees: 20, maxDepth: 6, seed: 3, minRowsPerLeaf: 5 });
  const sp = splitTuning(data, { seed: 2 });
  const alone = prunePost(e, sp.tune);
  const r = prunePost(e, sp.tune, { heldOut: { rows: sp.holdout, source: 'test.csv' } });
  assert.equal(r.after.nodes, alone.after.nodes);
  assert.equal(r.collapsed, alone.collapsed);
  assert.equal(r.validation, undefined);
  assert.ok((r.tuning?.after ?? 0) >= (r.tuning?.before ?? 1), 'tolerance 0 holds on the rows it chose on');
  assert.deepEqual(r.heldOut, { metric: 'auc', before: aucOf(e, sp.holdout), after: aucOf(r.ensemble, sp.holdout), rows: sp.holdout.X.rows, source: 'test.csv' });
});

test('trees honest rule (CLI): post and drop state the split; --test reports on the test file; no tuning number is called held out', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ps-trees-honest-'));
  try {
    const train = makeCtrData(800, 6, 101);
    const model = join(dir, 'm.onnx');
    await writeTreeEnsembleModel(model, trainGbdt(train, { trees: 12, maxDepth: 3, seed: 1 }), { nFeatures: 6 });
    const csv = join(dir, 'valid.csv');
    const testCsv = join(dir, 'test.csv');
    await writeFile(csv, formatTreeCsv(makeCtrData(300, 6, 102)));
    await writeFile(testCsv, formatTreeCsv(makeCtrData(250, 6, 103)));

    const post = await capture([model, '--prune', 'post', '--data', csv, '--out', join(dir, 'p.onnx')]);
    assert.match(post.out, /selection: chose on a seeded half of valid\.csv \(150 rows, seed 1, stratified by label\); reported on the other 150 rows/);
    assert.match(post.out, /tuning auc \(the 150 rows it chose on, optimistic\)/);
    assert.match(post.out, /held-out auc \(150 rows of the other half of valid\.csv, not used to choose\)/);
    assert.doesNotMatch(post.out, /validation/);

    const drop = await capture([model, '--prune', 'drop=0.5', '--data', csv, '--test', testCsv, '--out', join(dir, 'd.onnx'), '--json']);
    const j = JSON.parse(drop.out) as { selection: string; tuning: { rows: number }; heldOut: { rows: number; source: string }; validation?: unknown };
    assert.match(j.selection, /chose on all 300 rows of valid\.csv; reported on the 250 rows of test\.csv/);
    assert.equal(j.tuning.rows, 300);
    assert.deepEqual([j.heldOut.rows, j.heldOut.source], [250, 'test.csv']);
    assert.equal(j.validation, undefined);

    const an = await capture([model, '--data', csv, '--json']);
    const aj = JSON.parse(an.out) as { rankedBy: string; permutation: { metric: string; rows: number } };
    assert.equal(aj.rankedBy, 'permutation');
    assert.deepEqual([aj.permutation.metric, aj.permutation.rows], ['auc', 300]);

    // a depth limit chooses on no rows: --test is a held-out figure for it, and --data's is not called held out
    const depth = JSON.parse((await capture([model, '--prune', 'depth=2', '--data', csv, '--test', testCsv, '--out', join(dir, 'x.onnx'), '--json'])).out) as {
      validation: { metric: string };
      heldOut: { rows: number; source: string };
      tuning?: unknown;
    };
    assert.deepEqual([depth.validation.metric, depth.heldOut.rows, depth.heldOut.source, depth.tuning], ['auc', 250, 'test.csv', undefined]);
    // --test without --data, and without --prune: usage errors
    await assert.rejects(capture([model, '--prune', 'depth=2', '--test', testCsv, '--out', join(dir, 'y.onnx')]), UsageError);
    await assert.rejects(capture([model, '--test', testCsv]), UsageError);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('trees: after tree removal a binary LOGISTIC classifier (skl2onnx layout) gets the maximum-likelihood base value, and still equals ORT', async () => {
  const train = makeCtrData(1500, 6, 111);
  const data = makeCtrData(1000, 6, 112);
  const g = trainGbdt(train, { trees: 20, maxDepth: 3, seed: 4 });
  const sp = splitTuning(data, { seed: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'ps-trees-base-'));
  try {
    for (const base of [g.baseValues[0], undefined]) {
      const cls = binarySingleWeight(g, 'LOGISTIC', base);
      const r = pruneTrees(cls, sp.tune, { dropFraction: 0.5, tolerance: 1, heldOut: { rows: sp.holdout, source: 'other half' } });
      assert.equal(r.after.trees, 10);
      assert.match(r.notes.join(' '), /base value re-fitted by maximum likelihood on the 500 tuning rows/);
      assert.equal(r.ensemble.baseValues.length, 1);
      assert.notEqual(r.ensemble.baseValues[0], r.baseValues?.before[0] ?? 0);
      // the likelihood's gradient in the bias is ~0 on the tuning rows, and the logloss is no worse than with the old base
      const p = singleScore(r.ensemble, evaluateTreeEnsemble(r.ensemble, sp.tune.X));
      let grad = 0;
      for (let i = 0; i < p.length; i++) grad += p[i] - sp.tune.labels[i];
      assert.ok(Math.abs(grad / p.length) < 1e-4, `mean gradient ${grad / p.length}`);
      const old = { ...r.ensemble, baseValues: base === undefined ? [] : [base] };
      const ll = (e: TreeEnsemble) => {
        const q = singleScore(e, evaluateTreeEnsemble(e, sp.tune.X));
        let s = 0;
        for (let i = 0; i < q.length; i++) s -= sp.tune.labels[i] ? Math.log(q[i]) : Math.log(1 - q[i]);
        return s / q.length;
      };
      assert.ok(ll(r.ensemble) <= ll(old) + 1e-9, `logloss ${ll(r.ensemble)} vs ${ll(old)}`);
      const out = join(dir, `c${base === undefined ? 'nobase' : 'base'}.onnx`);
      await writeTreeEnsembleModel(out, r.ensemble, { nFeatures: 6 });
      const c = await compareWithOrt(out, readTreeEnsemble(await readOnnxModel(out)).ensemble, data.X);
      assert.ok(c.maxAbsDiff <= 1e-6 && c.labelsEqual === true, `ORT ${c.maxAbsDiff} ${c.labelsEqual}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('trees acceptance (honest): 50% of a 150-tree GBDT dropped on a tuning half within 0.003 held-out AUC; a 120-tree forest post-pruned >= 10x within 0.01', () => {
  const train = makeCtrData(4000, 10, 61);
  const data = makeCtrData(3000, 10, 62);
  const sp = splitTuning(data, { seed: 1 });
  const heldOut = { rows: sp.holdout, source: 'the other half' };
  const gb = trainGbdt(train, { trees: 150, maxDepth: 3, seed: 7 });
  const d = pruneTrees(gb, sp.tune, { dropFraction: 0.5, heldOut });
  assert.equal(d.after.trees, 75);
  const h = d.heldOut as NonNullable<typeof d.heldOut>;
  console.log(`drop 50% of 150-tree GBDT: held-out AUC ${h.before.toFixed(5)} -> ${h.after.toFixed(5)} (${(h.after - h.before).toFixed(5)}), tuning ${d.tuning?.before.toFixed(5)} -> ${d.tuning?.after.toFixed(5)}`);
  assert.ok(h.after >= h.before - 0.003, `held-out AUC ${h.before} -> ${h.after}`);

  const fo = trainForest(train, { trees: 120, maxDepth: 6, seed: 8, minRowsPerLeaf: 5 });
  const p = prunePost(fo, sp.tune, { heldOut });
  const ph = p.heldOut as NonNullable<typeof p.heldOut>;
  const ratio = p.before.nodes / p.after.nodes;
  console.log(`post-prune 120-tree forest: nodes ${p.before.nodes} -> ${p.after.nodes} (${ratio.toFixed(1)}x), held-out AUC ${ph.before.toFixed(5)} -> ${ph.after.toFixed(5)} (${(ph.after - ph.before).toFixed(5)})`);
  assert.ok(ratio >= 10, `${ratio}x`);
  assert.ok(ph.after >= ph.before - 0.01, `held-out AUC ${ph.before} -> ${ph.after}`);
});
