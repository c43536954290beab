// Fine-tuning of a (pruned) recommender on the user's interaction data, for TF.js layers models
// and for ONNX models (through the TF.js translation in onnx-to-tfjs.ts). A custom loop with
// Adam and binary cross-entropy runs on the active TF.js backend (initTfjs: WASM in Node, with
// our UnsortedSegmentSum kernel for the embedding gradients). With masks 'keep-zeros' every
// weight that is exactly zero before training is set back to zero after each optimizer step, so
// pruning survives fine-tuning. Output: the same file structure with new weight values (ONNX:
// writeOnnxModel replaces values at byte level; TF.js: writeTfjsModel keeps model.json as is).
//
// The pieces shared with distillation (CSV reading, negative sampling, the model adapters, the
// candidate metrics) are exported from here.

import * as tf from '@tensorflow/tfjs';
import { DType, ModelFileError, ModelIR, ModelTensor } from '../model/ir.js';
import { buildTfjsFunctionFromOnnx, OnnxTfjsFunction } from '../model/onnx-to-tfjs.js';
import { writeOnnxModel, OnnxTensorReplacement } from '../model/onnx-write.js';
import { fileSystemLoadHandler } from '../model/tfjs-io.js';
import { writeTfjsModel, TfjsReplacement } from '../model/tfjs-write.js';
import { float32ToFloat16Bits } from '../model/tensor-data.js';
import { initTfjs } from '../runtime/tfjs-backend.js';
import { createRng, Rng } from '../samples/prng.js';
import { readInteractions } from '../eval/interactions.js';
import type { CompressionContext, CompressionOutcome, TensorChange } from './types.js';
import { resolveSamplePruning, samplePruningNotes, SamplePruningReport, SamplePruningSettings, trainWithSamplePruning } from './sample-pruning.js';
import { polynomialDecaySparsity, pruneMasks, PruneMagnitudeSettings, PruneMasks } from './prune-magnitude.js';

// ---------------------------------------------------------------------------------------------
// Interaction data

/** Rows of an interactions CSV, in columns. */
export interface InteractionTable {
  file: string;
  user: Int32Array;
  item: Int32Array;
  label: Float32Array;
  /** row-major [rows, extraNames.length]: integer columns other than user/item/label/rating/timestamp, in file order */
  extra: Int32Array;
  extraNames: string[];
  /** true when the file has no 0 labels (only positives, or ratings): negatives must be sampled */
  implicit: boolean;
}

/**
 * Reads `user,item[,label|rating][,timestamp][,extra...]` with the evaluation's streaming reader
 * (delimiter sniffed, errors name the line) and shapes it for training. Ratings are taken as
 * implicit positives (the NCF convention); a 0/1 label column with zeros gives explicit negatives.
 */
export async function readInteractionTable(file: string, opts: { userColumn?: string; itemColumn?: string } = {}): Promise<InteractionTable> {
  const t = await readInteractions(file, { columns: { user: opts.userColumn, item: opts.itemColumn }, extraColumns: 'all' });
  const n = t.rows;
  const label = new Float32Array(n);
  let implicit = true;
  if (t.label && t.labelColumn !== 'rating') {
    for (let r = 0; r < n; r++) {
      const l = t.label[r];
      // the reader counts lines from 1 with the header first: data row r is on line r + 2
      if (!(l >= 0 && l <= 1)) throw new ModelFileError(file, `line ${r + 2}: ${t.labelColumn} '${l}' is not in [0, 1]`);
      label[r] = l;
      if (l === 0) implicit = false;
    }
  } else {
    label.fill(1);
  }
  const E = t.extra.length;
  const extra = new Int32Array(n * E);
  t.extra.forEach((col, e) => {
    for (let r = 0; r < n; r++) extra[r * E + e] = col.values[r];
  });
  return { file, user: t.user, item: t.item, label, extra, extraNames: t.extra.map((c) => c.name), implicit };
}

/** One batch of model inputs: ids, and all field columns (user, item, extras) when the model takes `fields`. */
export interface Batch {
  user: Int32Array;
  item: Int32Array;
  extra: Int32Array;
  extraCount: number;
  label: Float32Array;
}

/**
 * Training rows for one epoch: the table as is when it has explicit negatives; otherwise its
 * positives plus `negatives` sampled items per positive (uniform over the items seen, not a
 * positive of that user), redrawn every epoch. Extra columns of a negative come from the item
 * when the column is an item attribute in the data, from the user when it is a user attribute,
 * else from the positive's row.
 */
export class EpochSampler {
  private readonly positivesOf = new Map<number, Set<number>>();
  private readonly itemCount: number;
  private readonly itemAttr: Int32Array | undefined;
  private readonly userAttr: Int32Array | undefined;
  private readonly source: Int32Array[] = [];

  /**
   * `rows`: table rows to draw from (training-sample pruning: the kept subset); default all.
   * Negatives still avoid every positive of the user in the whole table, and come from all items.
   */
  constructor(private readonly table: InteractionTable, private readonly negatives: number, private readonly rows?: Int32Array) {
    let maxItem = 0;
    let maxUser = 0;
    for (let i = 0; i < table.item.length; i++) {
      maxItem = Math.max(maxItem, table.item[i]);
      maxUser = Math.max(maxUser, table.user[i]);
    }
    this.itemCount = maxItem + 1;
    if (!table.implicit) return;
    for (let i = 0; i < table.user.length; i++) {
      let s = this.positivesOf.get(table.user[i]);
      if (!s) this.positivesOf.set(table.user[i], (s = new Set()));
      s.add(table.item[i]);
    }
    const E = table.extraNames.length;
    if (E > 0) {
      // per column: 0 = item attribute, 1 = user attribute, 2 = per row
      const itemAttr = new Int32Array(this.itemCount * E).fill(-1);
      const userAttr = new Int32Array((maxUser + 1) * E).fill(-1);
      const kind = new Int32Array(E);
      for (let e = 0; e < E; e++) {
        let byItem = true;
        let byUser = true;
        for (let i = 0; i < table.user.length && (byItem || byUser); i++) {
          const v = table.extra[i * E + e];
          const a = table.item[i] * E + e;
          const b = table.user[i] * E + e;
          if (itemAttr[a] === -1) itemAttr[a] = v;
          else if (itemAttr[a] !== v) byItem = false;
          if (userAttr[b] === -1) userAttr[b] = v;
          else if (userAttr[b] !== v) byUser = false;
        }
        kind[e] = byItem ? 0 : byUser ? 1 : 2;
      }
      this.itemAttr = itemAttr;
      this.userAttr = userAttr;
      this.source.push(kind);
    }
  }

  /** rows per epoch */
  get size(): number {
    return this.table.implicit ? this.rowCount * (1 + this.negatives) : this.rowCount;
  }

  /** table rows per epoch (positives for implicit data) */
  get rowCount(): number {
    return this.rows ? this.rows.length : this.table.user.length;
  }

  /** rows per table row: 1 + negatives for implicit data, else 1 */
  get group(): number {
    return this.table.implicit ? 1 + this.negatives : 1;
  }

  /**
   * One epoch's rows. `shuffle` false (importance scoring): table row r's group (the row, then its
   * sampled negatives) is at [r * group, (r + 1) * group).
   */
  epoch(rng: Rng, shuffle = true): Batch {
    const t = this.table;
    const E = t.extraNames.length;
    const n = this.size;
    const out: Batch = { user: new Int32Array(n), item: new Int32Array(n), extra: new Int32Array(n * E), extraCount: E, label: new Float32Array(n) };
    let w = 0;
    const kind = this.source[0];
    const count = this.rowCount;
    for (let r = 0; r < count; r++) {
      const i = this.rows ? this.rows[r] : r;
      out.user[w] = t.user[i];
      out.item[w] = t.item[i];
      out.label[w] = t.label[i];
      out.extra.set(t.extra.subarray(i * E, i * E + E), w * E);
      w++;
      if (!t.implicit) continue;
      const pos = this.positivesOf.get(t.user[i])!;
      for (let k = 0; k < this.negatives; k++) {
        let neg = rng.int(this.itemCount);
        // a user with (almost) every item as positive: give up after a few tries
        for (let tries = 0; pos.has(neg) && tries < 50; tries++) neg = rng.int(this.itemCount);
        out.user[w] = t.user[i];
        out.item[w] = neg;
        out.label[w] = 0;
        for (let e = 0; e < E; e++) {
          const fromItem = this.itemAttr![neg * E + e];
          const v = kind[e] === 0 && fromItem >= 0 ? fromItem : kind[e] === 1 ? this.userAttr![t.user[i] * E + e] : t.extra[i * E + e];
          out.extra[w * E + e] = v;
        }
        w++;
      }
    }
    // shuffle in place (Fisher-Yates on all columns)
    for (let i = shuffle ? n - 1 : 0; i > 0; i--) {
      const j = rng.int(i + 1);
      swap(out.user, i, j);
      swap(out.item, i, j);
      swap(out.label, i, j);
      for (let e = 0; e < E; e++) swap(out.extra, i * E + e, j * E + e);
    }
    return out;
  }
}

function swap(a: Int32Array | Float32Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}

export function sliceBatch(b: Batch, start: number, end: number): Batch {
  const E = b.extraCount;
  return {
    user: b.user.subarray(start, end),
    item: b.item.subarray(start, end),
    extra: b.extra.subarray(start * E, end * E),
    extraCount: E,
    label: b.label.subarray(start, end),
  };
}

export function tableAsBatch(t: InteractionTable): Batch {
  return { user: t.user, item: t.item, extra: t.extra, extraCount: t.extraNames.length, label: t.label };
}

// ---------------------------------------------------------------------------------------------
// Model adapters: one interface over a tf.LayersModel and a translated ONNX graph

/** What a model input is fed with. */
type InputFeed = { name: string; kind: 'user' | 'item' | 'fields'; rank: number; fields?: number };

function inputFeed(name: string, shape: ReadonlyArray<number | string | null | undefined> | undefined, file: string): InputFeed {
  const rank = shape?.length ?? 1;
  const lower = name.toLowerCase();
  const second = shape && shape.length === 2 ? shape[1] : undefined;
  if (rank === 2 && typeof second === 'number' && second > 1) return { name, kind: 'fields', rank, fields: second };
  if (/user/.test(lower)) return { name, kind: 'user', rank };
  if (/item/.test(lower)) return { name, kind: 'item', rank };
  if (lower === 'fields') return { name, kind: 'fields', rank, fields: typeof second === 'number' ? second : undefined };
  throw new ModelFileError(file, `cannot tell what to feed model input '${name}': expected a user id, an item id, or a [batch, fields] input`);
}

function feedTensor(f: InputFeed, b: Batch, file: string): tf.Tensor {
  const n = b.user.length;
  if (f.kind === 'fields') {
    const F = 2 + b.extraCount;
    if (f.fields !== undefined && f.fields !== F) {
      throw new ModelFileError(file, `model input '${f.name}' has ${f.fields} fields; the data gives user, item and ${b.extraCount} extra columns (${F})`);
    }
    const fv = new Int32Array(n * F);
    for (let i = 0; i < n; i++) {
      fv[i * F] = b.user[i];
      fv[i * F + 1] = b.item[i];
      for (let e = 0; e < b.extraCount; e++) fv[i * F + 2 + e] = b.extra[i * b.extraCount + e];
    }
    return tf.tensor2d(fv, [n, F], 'int32');
  }
  const ids = f.kind === 'user' ? b.user : b.item;
  return f.rank === 2 ? tf.tensor2d(ids, [n, 1], 'int32') : tf.tensor1d(ids, 'int32');
}

export interface Trainee {
  format: 'onnx' | 'tfjs-layers';
  /** trainable variables, and the IR tensor name of each */
  variables: tf.Variable[];
  names: string[];
  /** scores (probabilities) as a [n] tensor; call inside tf.tidy / an optimizer closure */
  forward(b: Batch): tf.Tensor;
  /** total trainable parameters */
  params: number;
  /** the layers model, for TF.js */
  layers?: tf.LayersModel;
  /**
   * The input h [n, d] of the final dense layer (score = sigmoid(h W + b)), when asked for at load
   * time and the model ends in one such layer: gradient-norm importance of sample pruning uses it.
   */
  lastLayerInput?: (b: Batch) => tf.Tensor;
  dispose(): void;
}

/** Ops between the final dense layer and the graph output that do not mix examples. */
const OUTPUT_PASSTHROUGH = new Set(['Identity', 'Sigmoid', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);

/**
 * The name of the value fed into the ONNX graph's final dense layer (MatMul / Gemm with a weight
 * initializer, then maybe a bias Add and a Sigmoid), or undefined when the output is not made
 * that way (e.g. DeepFM's sum of several logits).
 */
export function onnxLastLayerInput(ir: ModelIR): string | undefined {
  const initializers = new Set(ir.tensors.map((t) => t.name));
  const producer = new Map<string, (typeof ir.graph.nodes)[number]>();
  for (const n of ir.graph.nodes) if (n.scope === undefined) for (const o of n.outputs) producer.set(o, n);
  let v = ir.graph.outputs[0]?.name;
  for (let steps = 0; v !== undefined && steps < 16; steps++) {
    const n = producer.get(v);
    if (!n) return undefined;
    if ((n.op === 'MatMul' || n.op === 'Gemm') && initializers.has(n.inputs[1]) && !initializers.has(n.inputs[0])) {
      return n.op === 'Gemm' && n.attrs.transA ? undefined : n.inputs[0];
    }
    if (OUTPUT_PASSTHROUGH.has(n.op)) v = n.inputs[0];
    else if (n.op === 'Add' && n.inputs.length === 2 && initializers.has(n.inputs[1])) v = n.inputs[0];
    else if (n.op === 'Add' && n.inputs.length === 2 && initializers.has(n.inputs[0])) v = n.inputs[1];
    else return undefined;
  }
  return undefined;
}

/** The final Dense layer's input as a model output, skipping Activation layers; undefined when the output is made otherwise. */
function layersLastLayerInput(model: tf.LayersModel): tf.LayersModel | undefined {
  let layer: (typeof model.layers)[number] | undefined = model.outputs[0]?.sourceLayer;
  for (let steps = 0; layer && layer.getClassName() === 'Activation' && steps < 4; steps++) {
    const inbound: Array<(typeof model.layers)[number]> | undefined = layer.inboundNodes[0]?.inboundLayers;
    layer = inbound && inbound.length === 1 ? inbound[0] : undefined;
  }
  if (!layer || layer.getClassName() !== 'Dense' || layer.inboundNodes.length !== 1) return undefined;
  const h = layer.input;
  if (Array.isArray(h)) return undefined;
  return tf.model({ inputs: model.inputs, outputs: h });
}

export async function loadTrainee(ir: ModelIR, opts: { lastLayerInput?: boolean } = {}): Promise<Trainee> {
  const file = ir.path;
  if (ir.format === 'onnx') {
    // the last layer's input as an extra graph output of the same function (same variables)
    const h = opts.lastLayerInput ? onnxLastLayerInput(ir) : undefined;
    const built = h ? { ...ir, graph: { ...ir.graph, outputs: [...ir.graph.outputs, { name: h }] } } : ir;
    const fn: OnnxTfjsFunction = await buildTfjsFunctionFromOnnx(built);
    try {
      const feeds = fn.inputs.map((i) => inputFeed(i.name, i.shape, file));
      const names = [...fn.variables.keys()];
      const variables = names.map((n) => fn.variables.get(n)!);
      return {
        format: 'onnx',
        variables,
        names,
        params: variables.reduce((a, v) => a + v.size, 0),
        forward: (b) => {
          const feed: Record<string, tf.Tensor> = {};
          for (const f of feeds) feed[f.name] = feedTensor(f, b, file);
          return tf.reshape(fn.predict(feed), [-1]);
        },
        ...(h
          ? {
              lastLayerInput: (b: Batch) => {
                const feed: Record<string, tf.Tensor> = {};
                for (const f of feeds) feed[f.name] = feedTensor(f, b, file);
                return tf.reshape(fn.run(feed)[h], [b.user.length, -1]);
              },
            }
          : {}),
        dispose: () => fn.dispose(),
      };
    } catch (e) {
      fn.dispose();
      throw e;
    }
  }
  if (ir.format === 'tfjs-layers') {
    const model = await tf.loadLayersModel(fileSystemLoadHandler(ir.path));
    try {
      return layersTrainee(model, file, new Set(ir.tensors.map((t) => t.name)), opts);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  throw new ModelFileError(file, `fine-tuning supports ONNX and TF.js layers models, not ${ir.format}`);
}

/**
 * A Trainee over a tf.LayersModel. `irNames`: the model file's weight names, which every
 * trainable weight must map to (a model built in memory passes none).
 */
export function layersTrainee(model: tf.LayersModel, file: string, irNames?: ReadonlySet<string>, opts: { lastLayerInput?: boolean } = {}): Trainee {
  const feeds = model.inputNames.map((n, i) => inputFeed(n, model.inputs[i].shape, file));
  const ws = model.trainableWeights;
  const names = ws.map((w) => {
    // loadLayersModel matches manifest entries by originalName; the variable may be suffixed
    const n = (w as unknown as { originalName?: string }).originalName ?? w.name;
    if (irNames && !irNames.has(n)) throw new ModelFileError(file, `weight '${n}' of the loaded model is not in the manifest`);
    return n;
  });
  // shares the layers (and so the weights) of `model`: it follows the training
  const hModel = opts.lastLayerInput ? layersLastLayerInput(model) : undefined;
  return {
    format: 'tfjs-layers',
    variables: ws.map((w) => w.read() as tf.Variable),
    names,
    params: model.countParams(),
    layers: model,
    forward: (b) => {
      const xs = feeds.map((f) => feedTensor(f, b, file));
      const y = model.apply(xs.length === 1 ? xs[0] : xs, { training: true }) as tf.Tensor;
      return tf.reshape(y, [-1]);
    },
    ...(hModel
      ? {
          lastLayerInput: (b: Batch) => {
            const xs = feeds.map((f) => feedTensor(f, b, file));
            return tf.reshape(hModel.apply(xs.length === 1 ? xs[0] : xs, { training: false }) as tf.Tensor, [b.user.length, -1]);
          },
        }
      : {}),
    dispose: () => model.dispose(),
  };
}

/** Scores of every row, in batches, outside any gradient tape. */
export function scoreRows(t: Trainee, b: Batch, batchSize = 4096): Float32Array {
  const n = b.user.length;
  const out = new Float32Array(n);
  for (let s = 0; s < n; s += batchSize) {
    const e = Math.min(n, s + batchSize);
    tf.tidy(() => out.set(t.forward(sliceBatch(b, s, e)).dataSync() as Float32Array, s));
  }
  return out;
}

const EPS = 1e-7;

/** Keras' binary cross-entropy on probabilities (clipped to [eps, 1 - eps]). */
export function bce(p: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const q = tf.clipByValue(p, EPS, 1 - EPS);
    const l = tf.add(tf.mul(y, tf.log(q)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, q))));
    return tf.neg(tf.mean(l)) as tf.Scalar;
  });
}

// ---------------------------------------------------------------------------------------------
// Metrics on a candidates file

export interface CandidateMetrics {
  k: number;
  hr: number;
  ndcg: number;
  /** positives ranked (one per user in leave-one-out files) */
  positives: number;
}

/**
 * HR@K / NDCG@K over consecutive blocks of rows with the same user: each positive is ranked
 * against the block's negatives; ties count against the positive.
 */
export function candidateMetrics(users: Int32Array, labels: Float32Array, scores: Float32Array, k = 10): CandidateMetrics {
  let hits = 0;
  let ndcg = 0;
  let positives = 0;
  let start = 0;
  while (start < users.length) {
    let end = start + 1;
    while (end < users.length && users[end] === users[start]) end++;
    for (let i = start; i < end; i++) {
      if (labels[i] < 0.5) continue;
      positives++;
      let rank = 0;
      for (let j = start; j < end; j++) if (labels[j] < 0.5 && scores[j] >= scores[i]) rank++;
      if (rank < k) {
        hits++;
        ndcg += 1 / Math.log2(rank + 2);
      }
    }
    start = end;
  }
  return { k, hr: positives ? hits / positives : 0, ndcg: positives ? ndcg / positives : 0, positives };
}

export async function evaluateCandidates(t: Trainee, file: string, k = 10): Promise<CandidateMetrics> {
  const table = await readInteractionTable(file);
  if (table.implicit) throw new ModelFileError(file, 'a candidates file needs a label column with 0 for the negatives');
  const b = tableAsBatch(table);
  return candidateMetrics(table.user, table.label, scoreRows(t, b), k);
}

// ---------------------------------------------------------------------------------------------
// The training loop

export interface TrainLoopOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** per variable: 1 where the weight may change, 0 where it must stay 0 (undefined: free) */
  masks?: Array<tf.Tensor | undefined>;
  /** extra loss term weight and targets: distillation passes the teacher's scores here */
  loss?: (pred: tf.Tensor, batch: Batch) => tf.Scalar;
  ctx?: CompressionContext;
  /** the fraction of the caller's progress this loop covers */
  progressSpan?: [number, number];
  what?: string;
  /** an optimizer to continue with (its state carries over; the caller disposes it); default a new Adam(lr) */
  optimizer?: tf.Optimizer;
  /** progress labels: epochs before this loop and epochs of the whole run (training-sample pruning runs two loops) */
  epochBase?: number;
  epochTotal?: number;
  /**
   * called before optimizer step `step` (0-based, counted over the whole loop); it may replace
   * entries of `masks` (disposing the old ones) and zero weights: gradual pruning does
   */
  beforeStep?: (step: number) => Promise<void> | void;
}

export interface TrainLoopResult {
  losses: number[];
  samples: number;
  seconds: number;
  samplesPerSecond: number;
}

export function checkAbort(ctx: CompressionContext | undefined, what: string): void {
  if (ctx?.signal?.aborted) throw new Error(`${what} was cancelled`);
}

function formatSeconds(s: number): string {
  return s >= 90 ? `${Math.round(s / 60)} min` : `${Math.max(0, Math.round(s))} s`;
}

/** Adam on `vars` over sampled epochs; masks re-applied after every step. Cancellable between batches. */
export async function trainLoop(vars: tf.Variable[], forward: (b: Batch) => tf.Tensor, sampler: EpochSampler, o: TrainLoopOptions): Promise<TrainLoopResult> {
  const what = o.what ?? 'fine-tuning';
  const optimizer = o.optimizer ?? tf.train.adam(o.lr);
  const epochBase = o.epochBase ?? 0;
  const epochTotal = o.epochTotal ?? o.epochs;
  const rng = createRng(o.seed);
  const losses: number[] = [];
  const [p0, p1] = o.progressSpan ?? [0, 1];
  const perEpoch = sampler.size;
  const batches = Math.ceil(perEpoch / o.batchSize);
  const total = batches * o.epochs;
  const t0 = Date.now();
  let lastYield = Date.now();
  let done = 0;
  const lossFn = o.loss ?? ((p: tf.Tensor, b: Batch) => bce(p, tf.tensor1d(b.label)));
  try {
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const rows = sampler.epoch(rng);
      let sum = 0;
      for (let bi = 0; bi < batches; bi++) {
        checkAbort(o.ctx, what);
        const b = sliceBatch(rows, bi * o.batchSize, Math.min(perEpoch, (bi + 1) * o.batchSize));
        if (o.beforeStep) await o.beforeStep(done);
        const lossT = optimizer.minimize(() => lossFn(forward(b), b), true, vars)!;
        if (o.masks) {
          tf.tidy(() => {
            o.masks!.forEach((m, i) => {
              if (m) vars[i].assign(tf.mul(vars[i], m));
            });
          });
        }
        sum += (await lossT.data())[0] * b.user.length;
        lossT.dispose();
        done++;
        if (Date.now() - lastYield > 200) {
          // lets an abort signal (and progress listeners) run between batches
          await new Promise((r) => setImmediate(r));
          lastYield = Date.now();
          const elapsed = (Date.now() - t0) / 1000;
          const eta = (elapsed / done) * (total - done);
          o.ctx?.onProgress?.(p0 + ((p1 - p0) * done) / total, `${what}: epoch ${epochBase + epoch + 1}/${epochTotal}, ETA ${formatSeconds(eta)}`);
        }
      }
      losses.push(sum / perEpoch);
      const elapsed = (Date.now() - t0) / 1000;
      const eta = (elapsed / done) * (total - done);
      o.ctx?.onProgress?.(p0 + ((p1 - p0) * done) / total, `${what}: epoch ${epochBase + epoch + 1}/${epochTotal} loss ${losses[epoch].toFixed(4)}, ETA ${formatSeconds(eta)}`);
    }
  } finally {
    if (!o.optimizer) optimizer.dispose();
  }
  const seconds = (Date.now() - t0) / 1000;
  const samples = perEpoch * o.epochs;
  return { losses, samples, seconds, samplesPerSecond: samples / Math.max(seconds, 1e-9) };
}

// ---------------------------------------------------------------------------------------------
// Fine-tuning

export interface FinetuneSettings {
  /** interactions CSV: user,item[,label][,timestamp][,extra fields] */
  data: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  /** 'keep-zeros': exact zeros stay zero (default when the model has pruned zeros); 'none': all weights train */
  masks?: 'keep-zeros' | 'none';
  /** sampled negatives per positive when the data has only positives; default 4 */
  negatives?: number;
  seed?: number;
  /** optional leave-one-out candidates CSV: HR/NDCG@k before and after go into the notes */
  candidates?: string;
  k?: number;
  /** train the epochs after the warm-up on the hardest `keep` fraction of the rows (sample-pruning.ts) */
  samplePruning?: SamplePruningSettings;
  /** magnitude pruning that ramps up during this training (TFMOT's habit), instead of fixed masks */
  gradual?: GradualPruningSettings;
}

/**
 * Gradual magnitude pruning inside one training run, as TFMOT's prune_low_magnitude does: every
 * `frequency` optimizer steps the masks are recomputed from the current weights, with the targets
 * ramped along the cubic polynomial decay from 0 (step 0) to the final ones (end of epoch
 * `rampEpochs`); the remaining epochs train at the final masks. Pruned weights are zero after every
 * step, and the optimizer (Adam and its moments) runs on through the whole schedule, which
 * separate prune-then-fine-tune rounds cannot do.
 */
export interface GradualPruningSettings {
  /** the pruning reached at the end of the ramp: sparsity, scope, per-layer targets, granularity */
  prune: PruneMagnitudeSettings;
  /** epochs of the ramp; 0 prunes to the final targets before the first step */
  rampEpochs: number;
  /** optimizer steps between two mask updates; default 100 (TFMOT's default) */
  frequency?: number;
}

/** Share of exact zeros above which a tensor counts as pruned (trained weights are almost never exactly 0). */
const PRUNED_ZERO_SHARE = 0.01;

function storedBytes(dtype: DType, values: Float32Array): Uint8Array {
  if (dtype === 'float32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (dtype === 'float64') {
    const d = Float64Array.from(values);
    return new Uint8Array(d.buffer);
  }
  if (dtype === 'float16') {
    const h = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) h[i] = float32ToFloat16Bits(values[i]);
    return new Uint8Array(h.buffer);
  }
  throw new Error(`cannot store trained values as ${dtype}`);
}

/** Writes trained values into a copy of the model, same format and structure as `ir`. */
export async function writeTrainedValues(ir: ModelIR, values: Map<string, Float32Array>, outPath: string): Promise<void> {
  const byName = new Map(ir.tensors.map((t) => [t.name, t]));
  if (ir.format === 'onnx') {
    const replace = new Map<string, OnnxTensorReplacement>();
    for (const [name, v] of values) {
      const t = byName.get(name)!;
      replace.set(name, { dtype: t.dtype, shape: t.shape, data: storedBytes(t.dtype, v) });
    }
    await writeOnnxModel(ir, outPath, { replace });
    return;
  }
  const replace = new Map<string, TfjsReplacement>();
  for (const [name, v] of values) replace.set(name, { dtype: 'float32', shape: byName.get(name)!.shape, data: v });
  await writeTfjsModel(ir, outPath, { replace });
}

export async function finetuneModel(ir: ModelIR, settings: FinetuneSettings, ctx?: CompressionContext): Promise<CompressionOutcome> {
  const epochs = settings.epochs ?? 2;
  const batchSize = settings.batchSize ?? 512;
  const lr = settings.lr ?? 0.001;
  const negatives = settings.negatives ?? 4;
  const seed = settings.seed ?? 7;
  for (const [k, v] of [['epochs', epochs], ['batchSize', batchSize], ['negatives', negatives]] as const) {
    if (!Number.isInteger(v) || v < (k === 'negatives' ? 0 : 1)) throw new Error(`finetune: ${k} must be a positive integer, got ${v}`);
  }
  if (!(lr > 0)) throw new Error(`finetune: lr must be positive, got ${lr}`);
  const sp = settings.samplePruning ? resolveSamplePruning(settings.samplePruning, epochs, 'finetune') : undefined;
  const gradual = settings.gradual ? resolveGradual(settings.gradual, epochs, ir.path) : undefined;
  if (gradual && sp) throw new Error('finetune: gradual pruning and training-sample pruning cannot be combined in one run');
  const backend = await initTfjs();
  ctx?.onProgress?.(0, 'reading data');
  const table = await readInteractionTable(settings.data);
  checkAbort(ctx, 'fine-tuning');
  const trainee = await loadTrainee(ir, { lastLayerInput: sp?.by === 'gradnorm' });
  let masksAll: Array<tf.Tensor | undefined> = [];
  let live: Array<tf.Tensor | undefined> = [];
  try {
    // masks from the values before training
    const zeros: number[] = [];
    masksAll = trainee.variables.map((v, i) => {
      const data = v.dataSync() as Float32Array;
      let z = 0;
      for (let j = 0; j < data.length; j++) if (data[j] === 0) z++;
      zeros[i] = z;
      return z > 0 ? tf.tidy(() => tf.cast(tf.notEqual(v, 0), 'float32')) : undefined;
    });
    const pruned = trainee.variables.some((v, i) => zeros[i] / v.size >= PRUNED_ZERO_SHARE);
    const masks = settings.masks ?? (pruned ? 'keep-zeros' : 'none');
    const resolved = {
      data: settings.data,
      epochs,
      batchSize,
      lr,
      masks,
      negatives,
      seed,
      ...(settings.candidates ? { candidates: settings.candidates, k: settings.k ?? 10 } : {}),
      ...(sp ? { samplePruning: sp } : {}),
      ...(gradual ? { gradual } : {}),
    };
    const k = settings.k ?? 10;
    const before = settings.candidates ? await evaluateCandidates(trainee, settings.candidates, k) : undefined;
    const sampler = new EpochSampler(table, negatives);
    // gradual pruning replaces entries of `live` as it goes; the zeros kept from before training stay in them
    live = masks === 'keep-zeros' || gradual ? masksAll.slice() : [];
    const batchesPerEpoch = Math.ceil(sampler.size / batchSize);
    const pruner = gradual ? new GradualPruner(ir, trainee, gradual, batchesPerEpoch, batchesPerEpoch * epochs, live, masks === 'keep-zeros' ? masksAll : []) : undefined;
    const loopOptions: TrainLoopOptions = {
      epochs,
      batchSize,
      lr,
      seed,
      masks: masks === 'keep-zeros' || gradual ? live : undefined,
      ctx,
      progressSpan: [0.02, 0.95],
      ...(pruner ? { beforeStep: (step: number) => pruner.beforeStep(step), what: 'fine-tuning with gradual pruning' } : {}),
    };
    let result: TrainLoopResult;
    let pruning: SamplePruningReport | undefined;
    if (sp) {
      const r = await trainWithSamplePruning(trainee.variables, trainee, table, negatives, sp, loopOptions);
      result = r.training;
      pruning = r.report;
    } else {
      result = await trainLoop(trainee.variables, trainee.forward, sampler, loopOptions);
    }
    const after = settings.candidates ? await evaluateCandidates(trainee, settings.candidates, k) : undefined;
    if (pruning && after) pruning.metric = after;

    const values = new Map<string, Float32Array>();
    trainee.variables.forEach((v, i) => values.set(trainee.names[i], Float32Array.from(v.dataSync() as Float32Array)));
    const byName = new Map<string, ModelTensor>(ir.tensors.map((t) => [t.name, t]));
    const changes: TensorChange[] = trainee.names.map((name, i) => {
      const t = byName.get(name)!;
      const entry = { shape: t.shape, dtype: t.dtype, bytes: t.storage.byteLength };
      const zerosNow = pruner?.last?.masks.has(name) ? values.get(name)!.reduce((n, x) => (x === 0 ? n + 1 : n), 0) : undefined;
      const kept =
        zerosNow !== undefined
          ? `, gradually pruned: ${zerosNow} of ${t.shape.reduce((a, b) => a * b, 1)} zero`
          : masks === 'keep-zeros' && zeros[i] > 0
            ? `, ${zeros[i]} zeros kept`
            : '';
      return { tensor: name, action: `fine-tuned${kept}`, before: entry, after: [{ name, ...entry, dtype: ir.format === 'onnx' ? t.dtype : 'float32', bytes: ir.format === 'onnx' ? t.storage.byteLength : t.shape.reduce((a, b) => a * b, 1) * 4 }] };
    });
    const notes = [
      `Fine-tuned ${trainee.names.length} tensors (${trainee.params} parameters) for ${epochs} epochs of ${sampler.size} rows${pruning ? ` (${pruning.prunedEpochs} of them on the ${pruning.samplesPerEpochPruned} rows kept by sample pruning)` : ''}` +
        (table.implicit ? ` (${table.user.length} positives + ${negatives} sampled negatives each, redrawn per epoch)` : '') +
        `: loss ${result.losses.map((l) => l.toFixed(4)).join(' -> ')}.`,
      `Training throughput ${Math.round(result.samplesPerSecond)} samples/s on the TF.js '${backend.backend}' backend (${result.seconds.toFixed(1)} s).`,
      pruner
        ? pruner.summary(values)
        : masks === 'keep-zeros'
          ? `Masks kept: the ${zeros.reduce((a, b) => a + b, 0)} weights that were exactly zero are zero after every optimizer step, so the sparsity is unchanged.`
          : 'No masks: every weight was free to change (zeros may have become non-zero).',
      ir.format === 'onnx'
        ? 'The ONNX graph was trained through its TF.js translation; only initializer values changed, the file structure is untouched.'
        : 'Only weight values changed; model.json keeps its topology.',
    ];
    if (before && after) {
      notes.push(`On ${settings.candidates}: NDCG@${k} ${before.ndcg.toFixed(4)} -> ${after.ndcg.toFixed(4)}, HR@${k} ${before.hr.toFixed(4)} -> ${after.hr.toFixed(4)}.`);
    }
    if (pruning) notes.push(...samplePruningNotes(pruning, k));
    ctx?.onProgress?.(1, 'fine-tuned');
    const outcome: CompressionOutcome & { training: TrainLoopResult & { backend: string; before?: CandidateMetrics; after?: CandidateMetrics }; samplePruning?: SamplePruningReport } = {
      method: 'finetune',
      settings: resolved,
      changes,
      notes,
      write: (outPath) => writeTrainedValues(ir, values, outPath),
      training: { ...result, backend: backend.backend, before, after },
      ...(pruning ? { samplePruning: pruning } : {}),
    };
    return outcome;
  } finally {
    const owned = new Set(masksAll);
    for (const m of live) if (m && !owned.has(m)) m.dispose();
    masksAll.forEach((m) => m?.dispose());
    trainee.dispose();
  }
}

function resolveGradual(g: GradualPruningSettings, epochs: number, file: string): Required<GradualPruningSettings> {
  const frequency = g.frequency ?? 100;
  if (!Number.isInteger(g.rampEpochs) || g.rampEpochs < 0 || g.rampEpochs > epochs) {
    throw new ModelFileError(file, `gradual pruning: rampEpochs must be an integer from 0 to the ${epochs} epochs, got ${g.rampEpochs}`);
  }
  if (!Number.isInteger(frequency) || frequency < 1) throw new ModelFileError(file, `gradual pruning: frequency must be a positive integer, got ${frequency}`);
  if (!g.prune || typeof g.prune.sparsity !== 'number') throw new ModelFileError(file, 'gradual pruning needs prune settings with a sparsity');
  return { prune: g.prune, rampEpochs: g.rampEpochs, frequency };
}

/** The model IR with the trainee's current values in place of the stored ones, for pruneMasks. */
function irWithTraineeValues(ir: ModelIR, t: Trainee): ModelIR {
  const at = new Map(t.names.map((n, i) => [n, i]));
  return {
    ...ir,
    tensors: ir.tensors.map((x) => {
      const i = at.get(x.name);
      if (i === undefined) return x;
      const values = t.variables[i].dataSync() as Float32Array;
      return { ...x, dtype: 'float32', storage: { dtype: 'float32', byteLength: values.byteLength, source: { kind: 'values', values }, location: `${x.name} (being fine-tuned)` } };
    }),
  };
}

/** Recomputes the masks of a GradualPruningSettings schedule from the trainee's weights. */
class GradualPruner {
  last?: PruneMasks;
  updates = 0;
  private readonly rampSteps: number;

  constructor(
    private readonly ir: ModelIR,
    private readonly trainee: Trainee,
    private readonly g: Required<GradualPruningSettings>,
    batchesPerEpoch: number,
    totalSteps: number,
    /** the loop's masks, replaced in place */
    private readonly live: Array<tf.Tensor | undefined>,
    /** zeros from before training that stay zero (keep-zeros), by variable; may be empty */
    private readonly keep: Array<tf.Tensor | undefined>,
  ) {
    // the final targets are set at the last step at the latest (a ramp over every epoch)
    this.rampSteps = Math.min(g.rampEpochs * batchesPerEpoch, totalSteps - 1);
  }

  async beforeStep(step: number): Promise<void> {
    const end = this.rampSteps;
    if (!(step === end || (step < end && step % this.g.frequency === 0))) return;
    const f = end === 0 ? 1 : polynomialDecaySparsity(step, { initial: 0, final: 1, begin: 0, end, power: 3 });
    const p = this.g.prune;
    const at = (x: number): number => x * f;
    const settings: PruneMagnitudeSettings = {
      ...p,
      sparsity: at(p.sparsity),
      ...(p.perLayer ? { perLayer: Object.fromEntries(Object.entries(p.perLayer).map(([k, v]) => [k, at(v)])) } : {}),
    };
    const m = await pruneMasks(irWithTraineeValues(this.ir, this.trainee), settings);
    const index = new Map(this.trainee.names.map((n, i) => [n, i]));
    for (const [name, mask] of m.masks) {
      const i = index.get(name);
      if (i === undefined) continue; // a tensor the translation does not train (none today)
      const v = this.trainee.variables[i];
      const old = this.live[i];
      const next = tf.tidy(() => {
        const fresh = tf.tensor(Float32Array.from(mask), v.shape, 'float32');
        const k = this.keep[i];
        return k ? tf.mul(fresh, k) : fresh;
      });
      if (old && old !== this.keep[i]) old.dispose();
      this.live[i] = next;
      tf.tidy(() => v.assign(tf.mul(v, next)));
    }
    this.last = m;
    this.updates++;
  }

  summary(values: Map<string, Float32Array>): string {
    const p = this.g.prune;
    let zeros = 0;
    let n = 0;
    for (const name of this.last?.masks.keys() ?? []) {
      const v = values.get(name);
      if (!v) continue;
      n += v.length;
      for (let j = 0; j < v.length; j++) if (v[j] === 0) zeros++;
    }
    const cols = (this.last?.columns ?? []).map((c) => `${c.tables.join(' + ')} ${c.width - c.zeroed} of ${c.width} columns left`).join('; ');
    const targets = p.perLayer ? `, per-layer targets ${Object.entries(p.perLayer).map(([k, v]) => `${k} ${v}`).join(', ')}` : '';
    return (
      `Gradual magnitude pruning during training (${p.granularity ?? 'element'} granularity, ${p.scope ?? 'global'} scope, target ${p.sparsity}${targets}): ` +
      `the targets ramped along the cubic polynomial decay over ${this.g.rampEpochs} epoch(s), masks recomputed every ${this.g.frequency} steps (${this.updates} updates), ` +
      `then training went on at the final masks. ${zeros} of ${n} chosen weights are zero (${((100 * zeros) / Math.max(1, n)).toFixed(1)}%)` +
      (cols ? `; ${cols}.` : '.')
    );
  }
}
