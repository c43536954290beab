// The three sample recommenders, built with tf.layers' functional API from standard layers
// only (no Lambda layers: those cannot be saved), with names that say what each layer is, and
// trained briefly on generated interactions.
//
// Input convention (TF.js): ids are int32 tensors of shape [batch, 1] (`user`, `item`) or
// [batch, numFields] (`fields`): Keras-style inputs need a non-empty shape, and an Embedding on
// [batch, 1] gives [batch, 1, dim], flattened to [batch, dim]. The ONNX export takes int64
// [batch] instead (see to-onnx.ts). Output: `prediction`, a sigmoid score [batch, 1], or with
// `output: 'logit'` the raw score before it (as PyTorch models trained with BCEWithLogitsLoss export).
// Weights are initialised from seeds, and training shuffles with our own PRNG, so a model is a
// function of (kind, size, seed, backend).

import * as tf from '@tensorflow/tfjs';
import { FieldSpec, InteractionData, InteractionRows } from './interactions.js';
import { createRng } from './prng.js';

export type SampleKind = 'neumf' | 'two-tower' | 'deepfm';

/** What the model's output is: a sigmoid probability (default) or the logit before it. */
export type SampleOutput = 'probability' | 'logit';

export interface NeuMFConfig {
  users: number;
  items: number;
  gmfDim: number;
  mlpDim: number;
  hidden: number[];
  seed?: number;
  output?: SampleOutput;
}

export interface TwoTowerConfig {
  users: number;
  items: number;
  dim: number;
  hidden: number[];
  seed?: number;
  output?: SampleOutput;
}

export interface DeepFMConfig {
  /** vocabulary per field, in input column order */
  fieldVocab: number[];
  /** field names (layer names derive from them); default field_0, field_1, ... */
  fieldNames?: string[];
  dim: number;
  hidden: number[];
  seed?: number;
  output?: SampleOutput;
}

// Embedding tables start small (Keras' default range), so rows that never get a gradient stay
// visibly smaller than trained ones.
const EMBEDDING_INIT = 0.05;

type Initializer = ReturnType<typeof tf.initializers.glorotUniform>;

class SeedSource {
  private n = 0;
  constructor(private readonly seed: number) {}
  next(): number {
    this.n++;
    return (this.seed * 1000 + this.n) >>> 0;
  }
  embedding(): Initializer {
    return tf.initializers.randomUniform({ minval: -EMBEDDING_INIT, maxval: EMBEDDING_INIT, seed: this.next() });
  }
  kernel(): Initializer {
    return tf.initializers.glorotUniform({ seed: this.next() });
  }
}

function checkPositive(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${what} must be a positive integer, got ${v}`);
}

function idInput(name: string): tf.SymbolicTensor {
  return tf.input({ shape: [1], dtype: 'int32', name });
}

function embed(
  ids: tf.SymbolicTensor,
  rows: number,
  dim: number,
  name: string,
  seeds: SeedSource,
): tf.SymbolicTensor {
  const e = tf.layers
    .embedding({ inputDim: rows, outputDim: dim, embeddingsInitializer: seeds.embedding(), name })
    .apply(ids) as tf.SymbolicTensor;
  return tf.layers.flatten({ name: `${name}_flat` }).apply(e) as tf.SymbolicTensor;
}

function denseStack(
  x: tf.SymbolicTensor,
  units: number[],
  prefix: string,
  seeds: SeedSource,
  lastActivation: 'relu' | 'linear' = 'relu',
): tf.SymbolicTensor {
  units.forEach((u, i) => {
    checkPositive(`${prefix} units`, u);
    x = tf.layers
      .dense({
        units: u,
        activation: i === units.length - 1 ? lastActivation : 'relu',
        kernelInitializer: seeds.kernel(),
        name: `${prefix}_${i}`,
      })
      .apply(x) as tf.SymbolicTensor;
  });
  return x;
}

/**
 * Neural matrix factorisation (He et al. 2017): a GMF branch (element-wise product of user and
 * item embeddings) and an MLP branch over their concatenation, joined by `prediction`.
 */
export function buildNeuMF(c: NeuMFConfig): tf.LayersModel {
  for (const k of ['users', 'items', 'gmfDim', 'mlpDim'] as const) checkPositive(`NeuMF ${k}`, c[k]);
  const seeds = new SeedSource(c.seed ?? 1);
  const user = idInput('user');
  const item = idInput('item');
  const userGmf = embed(user, c.users, c.gmfDim, 'user_gmf_embedding', seeds);
  const itemGmf = embed(item, c.items, c.gmfDim, 'item_gmf_embedding', seeds);
  const userMlp = embed(user, c.users, c.mlpDim, 'user_mlp_embedding', seeds);
  const itemMlp = embed(item, c.items, c.mlpDim, 'item_mlp_embedding', seeds);
  const gmf = tf.layers.multiply({ name: 'gmf_product' }).apply([userGmf, itemGmf]) as tf.SymbolicTensor;
  const mlpIn = tf.layers.concatenate({ name: 'mlp_concat' }).apply([userMlp, itemMlp]) as tf.SymbolicTensor;
  const mlp = denseStack(mlpIn, c.hidden, 'mlp_dense', seeds);
  const joined = tf.layers.concatenate({ name: 'neumf_concat' }).apply([gmf, mlp]) as tf.SymbolicTensor;
  const out = tf.layers
    .dense({ units: 1, activation: c.output === 'logit' ? 'linear' : 'sigmoid', kernelInitializer: seeds.kernel(), name: 'prediction' })
    .apply(joined) as tf.SymbolicTensor;
  return tf.model({ inputs: [user, item], outputs: out, name: 'neumf' });
}

/**
 * Two towers: user and item embeddings each pass an MLP (`user_tower_i`, `item_tower_i`, the last
 * one linear); their dot product, scaled and shifted by `prediction` (a 1x1 Dense), gives the score.
 */
export function buildTwoTower(c: TwoTowerConfig): tf.LayersModel {
  for (const k of ['users', 'items', 'dim'] as const) checkPositive(`two-tower ${k}`, c[k]);
  if (c.hidden.length === 0) throw new Error('two-tower needs at least one tower layer');
  const seeds = new SeedSource(c.seed ?? 1);
  const user = idInput('user');
  const item = idInput('item');
  const u = denseStack(embed(user, c.users, c.dim, 'user_embedding', seeds), c.hidden, 'user_tower', seeds, 'linear');
  const v = denseStack(embed(item, c.items, c.dim, 'item_embedding', seeds), c.hidden, 'item_tower', seeds, 'linear');
  const dot = tf.layers.dot({ axes: 1, name: 'tower_dot' }).apply([u, v]) as tf.SymbolicTensor;
  const out = tf.layers
    .dense({ units: 1, activation: c.output === 'logit' ? 'linear' : 'sigmoid', kernelInitializer: tf.initializers.ones(), name: 'prediction' })
    .apply(dot) as tf.SymbolicTensor;
  return tf.model({ inputs: [user, item], outputs: out, name: 'two_tower' });
}

/**
 * DeepFM (Guo et al. 2017) with one embedding table per field. Columns of the `fields` input are
 * picked with Reshape + Cropping2D (standard, saveable layers; tf.layers has no slice layer).
 * score = sigmoid(sum of first-order weights + sum over field pairs of <e_f, e_g> + deep MLP).
 */
export function buildDeepFM(c: DeepFMConfig): tf.LayersModel {
  const F = c.fieldVocab.length;
  if (F < 2) throw new Error('DeepFM needs at least two fields');
  c.fieldVocab.forEach((v, i) => checkPositive(`DeepFM fieldVocab[${i}]`, v));
  checkPositive('DeepFM dim', c.dim);
  const names = c.fieldNames ?? c.fieldVocab.map((_, i) => `field_${i}`);
  if (names.length !== F) throw new Error('DeepFM fieldNames and fieldVocab differ in length');
  const seeds = new SeedSource(c.seed ?? 1);
  const fields = tf.input({ shape: [F], dtype: 'int32', name: 'fields' });
  const grid = tf.layers.reshape({ targetShape: [F, 1, 1], name: 'fields_grid' }).apply(fields) as tf.SymbolicTensor;
  const embeddings: tf.SymbolicTensor[] = [];
  const linear: tf.SymbolicTensor[] = [];
  names.forEach((name, f) => {
    const ids = tf.layers
      .cropping2D({ cropping: [[f, F - f - 1], [0, 0]], name: `${name}_select` })
      .apply(grid) as tf.SymbolicTensor;
    embeddings.push(embed(ids, c.fieldVocab[f], c.dim, `${name}_embedding`, seeds));
    linear.push(embed(ids, c.fieldVocab[f], 1, `${name}_linear`, seeds));
  });
  const firstOrder = tf.layers.add({ name: 'fm_first_order' }).apply(linear) as tf.SymbolicTensor;
  const pairs: tf.SymbolicTensor[] = [];
  for (let f = 0; f < F; f++) {
    for (let g = f + 1; g < F; g++) {
      pairs.push(tf.layers.dot({ axes: 1, name: `fm_pair_${f}_${g}` }).apply([embeddings[f], embeddings[g]]) as tf.SymbolicTensor);
    }
  }
  const secondOrder = (pairs.length === 1
    ? pairs[0]
    : tf.layers.add({ name: 'fm_second_order' }).apply(pairs)) as tf.SymbolicTensor;
  const deepIn = tf.layers.concatenate({ name: 'deep_concat' }).apply(embeddings) as tf.SymbolicTensor;
  const deepHidden = denseStack(deepIn, c.hidden, 'deep_dense', seeds);
  const deepOut = tf.layers
    .dense({ units: 1, kernelInitializer: seeds.kernel(), name: 'deep_out' })
    .apply(deepHidden) as tf.SymbolicTensor;
  const logit = tf.layers.add({ name: c.output === 'logit' ? 'prediction' : 'deepfm_logit' }).apply([firstOrder, secondOrder, deepOut]) as tf.SymbolicTensor;
  const out = c.output === 'logit' ? logit : (tf.layers.activation({ activation: 'sigmoid', name: 'prediction' }).apply(logit) as tf.SymbolicTensor);
  return tf.model({ inputs: fields, outputs: out, name: 'deepfm' });
}

/** Input tensors for rows [start, end) in the model's input order. Caller disposes. */
export function modelInputs(model: tf.LayersModel, rows: InteractionRows, start = 0, end = rows.user.length): tf.Tensor[] {
  const n = end - start;
  // inputNames are the layer names we gave; symbolic tensor names get `_1` suffixes when a
  // second model with the same input names is built in this process
  return model.inputNames.map((name, i) => {
    const input = model.inputs[i];
    if (name === 'user') return tf.tensor2d(rows.user.subarray(start, end), [n, 1], 'int32');
    if (name === 'item') return tf.tensor2d(rows.item.subarray(start, end), [n, 1], 'int32');
    if (name === 'fields') {
      const F = input.shape[1] as number;
      if (!rows.fields) throw new Error('model needs a `fields` input but the rows carry no fields');
      return tf.tensor2d(rows.fields.subarray(start * F, end * F), [n, F], 'int32');
    }
    throw new Error(`model input '${name}' is not one of user, item, fields`);
  });
}

/** Scores for every row, in batches. */
export function predictScores(model: tf.LayersModel, rows: InteractionRows, batchSize = 4096): Float32Array {
  const n = rows.user.length;
  const out = new Float32Array(n);
  for (let s = 0; s < n; s += batchSize) {
    const e = Math.min(n, s + batchSize);
    tf.tidy(() => {
      const xs = modelInputs(model, rows, s, e);
      const y = model.predict(xs.length === 1 ? xs[0] : xs) as tf.Tensor;
      out.set(y.dataSync() as Float32Array, s);
    });
  }
  return out;
}

export interface RankingMetrics {
  /** share of users whose held-out item ranks in the top k of its candidate block */
  hitRate: number;
  ndcg: number;
  k: number;
  users: number;
  /** what a random ranking gives: k / candidatesPerUser */
  randomHitRate: number;
}

/**
 * Leave-one-out ranking metrics over blocks of `perUser` scores, the positive first. Ties count
 * against the positive (a model that scores everything the same gets HR 0, not 1).
 */
export function rankingMetrics(scores: ArrayLike<number>, perUser: number, k = 10): RankingMetrics {
  if (scores.length % perUser !== 0) throw new Error(`rankingMetrics: ${scores.length} scores are not blocks of ${perUser}`);
  const users = scores.length / perUser;
  let hits = 0;
  let ndcg = 0;
  for (let u = 0; u < users; u++) {
    const base = u * perUser;
    const pos = scores[base];
    let rank = 0;
    for (let j = 1; j < perUser; j++) if (scores[base + j] >= pos) rank++;
    if (rank < k) {
      hits++;
      ndcg += 1 / Math.log2(rank + 2);
    }
  }
  return { hitRate: users ? hits / users : 0, ndcg: users ? ndcg / users : 0, k, users, randomHitRate: Math.min(1, k / perUser) };
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  /** seed of the per-epoch shuffle; default 7 */
  seed?: number;
  onEpoch?: (epoch: number, loss: number) => void;
}

export interface TrainResult {
  /** mean training loss (binary cross-entropy) per epoch */
  losses: number[];
  samplesPerEpoch: number;
  seconds: number;
}

function gatherRows(rows: InteractionRows, order: Int32Array, F: number): InteractionRows {
  const n = order.length;
  const out: InteractionRows = {
    user: new Int32Array(n),
    item: new Int32Array(n),
    label: new Float32Array(n),
    timestamp: new Float64Array(0),
  };
  if (rows.fields) out.fields = new Int32Array(n * F);
  for (let i = 0; i < n; i++) {
    const r = order[i];
    out.user[i] = rows.user[r];
    out.item[i] = rows.item[r];
    out.label[i] = rows.label[r];
    if (rows.fields) out.fields!.set(rows.fields.subarray(r * F, r * F + F), i * F);
  }
  return out;
}

/** Adam + binary cross-entropy on data.train, on whatever backend is active (see initTfjs). */
export async function trainModel(model: tf.LayersModel, data: InteractionData, opts: TrainOptions): Promise<TrainResult> {
  checkPositive('epochs', opts.epochs);
  checkPositive('batchSize', opts.batchSize);
  model.compile({ optimizer: tf.train.adam(opts.lr), loss: 'binaryCrossentropy' });
  const rows = data.train;
  const n = rows.user.length;
  const F = data.fields.length;
  const rng = createRng(opts.seed ?? 7);
  const losses: number[] = [];
  const t0 = Date.now();
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    const order = new Int32Array(n).map((_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    const shuffled = gatherRows(rows, order, F);
    const xs = modelInputs(model, shuffled);
    const y = tf.tensor2d(shuffled.label, [n, 1]);
    try {
      const h = await model.fit(xs.length === 1 ? xs[0] : xs, y, {
        epochs: 1,
        batchSize: opts.batchSize,
        shuffle: false,
        verbose: 0,
      });
      const loss = Number(h.history.loss[0]);
      losses.push(loss);
      opts.onEpoch?.(epoch, loss);
    } finally {
      tf.dispose([...xs, y]);
    }
  }
  return { losses, samplesPerEpoch: n, seconds: (Date.now() - t0) / 1000 };
}

export interface SampleSize {
  users: number;
  items: number;
  meanPositivesPerUser: number;
  epochs: number;
  batchSize: number;
  lr: number;
}

/** Sizes: 'tiny' trains in about a second (tests), 'demo' in seconds on 2 cores (CLI demo). */
export const SAMPLE_SIZES: Record<'tiny' | 'demo', SampleSize> = {
  tiny: { users: 300, items: 500, meanPositivesPerUser: 20, epochs: 2, batchSize: 512, lr: 0.01 },
  demo: { users: 1000, items: 2000, meanPositivesPerUser: 25, epochs: 2, batchSize: 512, lr: 0.01 },
};

/** Builds the model of `kind` sized for `fields` (DeepFM) or users x items. */
export function buildSampleModel(kind: SampleKind, fields: FieldSpec[], size: 'tiny' | 'demo', seed: number, output: SampleOutput = 'probability'): tf.LayersModel {
  const users = fields[0].vocab;
  const items = fields[1].vocab;
  const tiny = size === 'tiny';
  switch (kind) {
    case 'neumf':
      return buildNeuMF({ users, items, gmfDim: tiny ? 8 : 16, mlpDim: tiny ? 8 : 16, hidden: tiny ? [16, 8] : [32, 16, 8], seed, output });
    case 'two-tower':
      return buildTwoTower({ users, items, dim: tiny ? 16 : 32, hidden: tiny ? [16] : [32, 16], seed, output });
    case 'deepfm':
      return buildDeepFM({
        fieldVocab: fields.map((f) => f.vocab),
        fieldNames: fields.map((f) => f.name),
        dim: tiny ? 8 : 12,
        hidden: tiny ? [16] : [32, 16],
        seed,
        output,
      });
  }
}
