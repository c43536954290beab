import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { generateInteractions } from '../../src/core/samples/interactions.js';
import { buildDeepFM, buildNeuMF, buildTwoTower, predictScores, rankingMetrics, SAMPLE_SIZES, trainModel } from '../../src/core/samples/models.js';

test('rankingMetrics on hand-made blocks (ties count against the positive)', () => {
  // user 0: positive ranks first; user 1: two negatives above it (rank 2); user 2: all tied
  const scores = [0.9, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.1, 0.4, 0.4, 0.4, 0.4];
  const m1 = rankingMetrics(scores, 4, 1);
  assert.equal(m1.hitRate, 1 / 3);
  assert.equal(m1.ndcg, 1 / 3);
  const m3 = rankingMetrics(scores, 4, 3);
  assert.equal(m3.hitRate, 2 / 3);
  assert.equal(m3.ndcg, (1 + 1 / Math.log2(4)) / 3);
  assert.equal(m3.randomHitRate, 3 / 4);
  assert.throws(() => rankingMetrics([1, 2, 3], 2), /not blocks of 2/);
});

test('layer names and shapes of the three models', async () => {
  await initTfjs('wasm');
  const neumf = buildNeuMF({ users: 30, items: 40, gmfDim: 4, mlpDim: 6, hidden: [8, 4], seed: 1 });
  assert.deepEqual(neumf.inputNames, ['user', 'item']);
  for (const n of ['user_gmf_embedding', 'item_gmf_embedding', 'user_mlp_embedding', 'item_mlp_embedding', 'mlp_dense_0', 'mlp_dense_1', 'prediction']) {
    assert.ok(neumf.getLayer(n), n);
  }
  assert.deepEqual(neumf.getLayer('item_mlp_embedding').getWeights()[0].shape, [40, 6]);
  assert.deepEqual(neumf.getLayer('prediction').getWeights()[0].shape, [4 + 4, 1]);
  assert.deepEqual(neumf.outputs[0].shape, [null, 1]);

  const tt = buildTwoTower({ users: 30, items: 40, dim: 8, hidden: [6, 5], seed: 1 });
  assert.deepEqual(tt.getLayer('item_tower_1').getWeights()[0].shape, [6, 5]);
  assert.deepEqual(tt.getLayer('prediction').getWeights()[0].shape, [1, 1]);

  const fm = buildDeepFM({ fieldVocab: [30, 40, 5], fieldNames: ['user', 'item', 'genre'], dim: 4, hidden: [8], seed: 1 });
  assert.deepEqual(fm.inputNames, ['fields']);
  assert.deepEqual(fm.getLayer('genre_embedding').getWeights()[0].shape, [5, 4]);
  assert.deepEqual(fm.getLayer('genre_linear').getWeights()[0].shape, [5, 1]);
  assert.ok(fm.getLayer('fm_pair_0_2'));
  // the same seed builds the same weights
  const again = buildNeuMF({ users: 30, items: 40, gmfDim: 4, mlpDim: 6, hidden: [8, 4], seed: 1 });
  assert.deepEqual(again.getWeights().map((w) => Array.from(w.dataSync())), neumf.getWeights().map((w) => Array.from(w.dataSync())));
  tf.dispose([neumf, tt, fm, again].flatMap((m) => m.getWeights()));
});

test('DeepFM: the columns of `fields` reach their own tables (the FM term is the pairwise dot sum)', async () => {
  await initTfjs('wasm');
  const m = buildDeepFM({ fieldVocab: [3, 4], fieldNames: ['a', 'b'], dim: 2, hidden: [2], seed: 9 });
  const ea = m.getLayer('a_embedding').getWeights()[0].arraySync() as number[][];
  const eb = m.getLayer('b_embedding').getWeights()[0].arraySync() as number[][];
  const sub = tf.model({ inputs: m.inputs, outputs: m.getLayer('fm_pair_0_1').output as tf.SymbolicTensor });
  const y = (sub.predict(tf.tensor2d([[2, 3], [0, 1]], [2, 2], 'int32')) as tf.Tensor).dataSync();
  const dot = (p: number[], q: number[]) => Math.fround(Math.fround(p[0] * q[0]) + Math.fround(p[1] * q[1]));
  assert.ok(Math.abs(y[0] - dot(ea[2], eb[3])) < 1e-7);
  assert.ok(Math.abs(y[1] - dot(ea[0], eb[1])) < 1e-7);
});

test('NeuMF trains on tiny data: loss falls, HR@10 well above random, cold item rows untouched', async () => {
  await initTfjs('wasm');
  const size = SAMPLE_SIZES.tiny;
  const data = generateInteractions({ users: size.users, items: size.items, meanPositivesPerUser: size.meanPositivesPerUser, seed: 21 });
  const cfg = { users: size.users, items: size.items, gmfDim: 8, mlpDim: 8, hidden: [16, 8], seed: 21 };
  const model = buildNeuMF(cfg);
  const init = buildNeuMF(cfg).getLayer('item_gmf_embedding').getWeights()[0].arraySync() as number[][];
  const before = rankingMetrics(predictScores(model, data.candidates), data.candidatesPerUser, 10);
  const epochs: number[] = [];
  const r = await trainModel(model, data, { epochs: 2, batchSize: size.batchSize, lr: size.lr, onEpoch: (e) => epochs.push(e) });
  assert.deepEqual(epochs, [0, 1]);
  assert.equal(r.losses.length, 2);
  assert.ok(r.losses[1] < r.losses[0], `loss ${r.losses}`);
  const after = rankingMetrics(predictScores(model, data.candidates), data.candidatesPerUser, 10);
  assert.equal(after.randomHitRate, 0.1);
  assert.ok(after.hitRate > 2.5 * after.randomHitRate, `HR@10 ${after.hitRate} (before training ${before.hitRate})`);

  const trained = model.getLayer('item_gmf_embedding').getWeights()[0].arraySync() as number[][];
  for (const it of data.coldItems) assert.deepEqual(trained[it], init[it], `cold item ${it} moved`);
  // the most popular item's row did move
  let top = 0;
  data.itemPopularity.forEach((p, i) => (p > data.itemPopularity[top] ? (top = i) : 0));
  assert.notDeepEqual(trained[top], init[top]);
  const norm = (v: number[]) => Math.hypot(...v);
  const coldMean = data.coldItems.reduce((a, it) => a + norm(trained[it]), 0) / data.coldItems.length;
  assert.ok(norm(trained[top]) > 2 * coldMean, `popular row norm ${norm(trained[top])}, cold rows ${coldMean}`);
});
