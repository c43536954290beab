// Acceptance of tree-ensemble pruning on ensembles our own trainer makes from generated data with
// planted informative (f0..f3) and useless (f4..f9) features.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { readTreeEnsemble, writeReplacedTreeEnsemble, writeTreeEnsembleModel } from '../../src/core/trees/onnx-trees.js';
import { analyzeTreeEnsemble } from '../../src/core/trees/tree-analysis.js';
import { compareWithOrt } from '../../src/core/trees/tree-ort.js';
import { pruneFeatures, prunePost, pruneTrees, type TreePruneResult } from '../../src/core/trees/tree-prune.js';
import { makeCtrData, trainGbdt } from '../fixtures/tree-trainer.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ps-trees-acc-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const F = 10;
const USELESS = [4, 5, 6, 7, 8, 9];
const train = makeCtrData(3000, F, 21);
const valid = makeCtrData(2000, F, 22);

/** Writes the original, replaces its tree node by the pruned ensemble, checks ORT on the result. */
async function writeAndCheck(dir: string, name: string, orig: string, r: TreePruneResult): Promise<{ bytesBefore: number; bytesAfter: number }> {
  const ir = await readOnnxModel(orig);
  const { ref } = readTreeEnsemble(ir);
  const out = join(dir, `${name}.onnx`);
  await writeReplacedTreeEnsemble(ir, ref, r.ensemble, out);
  const back = readTreeEnsemble(await readOnnxModel(out)).ensemble;
  const c = await compareWithOrt(out, back, valid.X);
  assert.ok(c.maxAbsDiff <= 1e-6, `${name}: ORT vs ours ${c.maxAbsDiff}`);
  return { bytesBefore: (await stat(orig)).size, bytesAfter: (await stat(out)).size };
}

test('trees acceptance: GBDT fixture runs in ORT like our evaluator; importance ranks the useless features last; feature pruning removes them', async () => {
  const gbdt = trainGbdt(train, { trees: 40, maxDepth: 3, seed: 3 });
  await withDir(async (dir) => {
    const path = join(dir, 'gbdt.onnx');
    await writeTreeEnsembleModel(path, gbdt, { nFeatures: F });
    const { ensemble } = readTreeEnsemble(await readOnnxModel(path));
    const c = await compareWithOrt(path, ensemble, valid.X);
    assert.ok(c.maxAbsDiff <= 1e-6, `max abs diff ${c.maxAbsDiff}`);

    const byGain = analyzeTreeEnsemble(ensemble, { features: F });
    assert.equal(byGain.rankedBy, 'gain');
    assert.deepEqual(byGain.importance.slice(F - USELESS.length).map((x) => x.feature).sort((a, b) => a - b), USELESS);
    const byOutput = analyzeTreeEnsemble(ensemble, { features: F, data: valid.X });
    assert.equal(byOutput.rankedBy, 'outputChange');
    assert.deepEqual(byOutput.importance.slice(F - USELESS.length).map((x) => x.feature).sort((a, b) => a - b), USELESS);

    const r = pruneFeatures(ensemble, { fraction: 0.6, nFeatures: F, data: valid });
    assert.deepEqual(r.removedFeatures, USELESS);
    assert.deepEqual(r.becameUnused, USELESS.filter((f) => byGain.importance.find((x) => x.feature === f)?.splits));
    assert.ok(r.validation);
    assert.ok(Math.abs(r.validation.after - r.validation.before) <= 0.001, `AUC ${r.validation.before} -> ${r.validation.after}`);
    const a = analyzeTreeEnsemble(r.ensemble, { features: F });
    assert.deepEqual(a.unusedFeatures, USELESS);
    await writeAndCheck(dir, 'features', path, r);
  });
});

test('trees acceptance: post-pruning and ensemble pruning of a 100-tree GBDT shrink the file, AUC within 0.005', async () => {
  const gbdt = trainGbdt(train, { trees: 100, maxDepth: 3, seed: 4 });
  await withDir(async (dir) => {
    const path = join(dir, 'gbdt100.onnx');
    await writeTreeEnsembleModel(path, gbdt, { nFeatures: F });
    const { ensemble } = readTreeEnsemble(await readOnnxModel(path));
    const post = prunePost(ensemble, valid);
    assert.ok(post.after.nodes < post.before.nodes, `${post.before.nodes} -> ${post.after.nodes}`);
    assert.ok(post.tuning && post.tuning.after >= post.tuning.before - 0.005);
    const s1 = await writeAndCheck(dir, 'post', path, post);
    assert.ok(s1.bytesAfter < s1.bytesBefore);

    const drop = pruneTrees(ensemble, valid, { dropFraction: 0.3, tolerance: 0.005 });
    assert.equal(drop.after.trees, 70);
    assert.equal(drop.droppedTrees?.length, 30);
    assert.ok(drop.tuning && drop.tuning.after >= drop.tuning.before - 0.005);
    const s2 = await writeAndCheck(dir, 'drop', path, drop);
    assert.ok(s2.bytesAfter < s2.bytesBefore);
  });
});
