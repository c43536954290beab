// Trainees: one interface over a tf.LayersModel and an ONNX graph translated to TF.js
// (onnx-to-tfjs.ts), so that every training method runs the same loop on either format.

import * as tf from '@tensorflow/tfjs';
import { ModelFileError, ModelIR } from '../../model/ir.js';
import { buildTfjsFunctionFromOnnx, OnnxTfjsFunction } from '../../model/onnx-to-tfjs.js';
import { fileSystemLoadHandler } from '../../model/tfjs-io.js';
import { Batch, InteractionTable, sliceBatch, tableAsBatch } from './interaction-table.js';
import { extraColumn, InputFeed, inputFeedsOf } from './input-feed.js';
import { decideOutputKind, graphOutputFinding, OutputKind, OutputSemantics } from './output-kind.js';

/** What each model input is fed with. */
function inputFeeds(inputs: ReadonlyArray<{ name: string; shape?: ReadonlyArray<number | string | null | undefined> }>, file: string): InputFeed[] {
  return inputFeedsOf(inputs).map((f, i) => {
    if (!f) throw new ModelFileError(file, `cannot tell what to feed model input '${inputs[i].name}': expected a user id, an item id, a [batch, fields] input, or past user and item inputs one id per row from the data column of its name`);
    return f;
  });
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
  const ids = f.kind === 'column' ? extraColumn(b, f.column!, f.name, file) : f.kind === 'user' ? b.user : b.item;
  return f.rank === 2 ? tf.tensor2d(ids, [n, 1], 'int32') : tf.tensor1d(ids, 'int32');
}

export interface Trainee {
  format: 'onnx' | 'tfjs-layers';
  /** trainable variables, and the IR tensor name of each */
  variables: tf.Variable[];
  names: string[];
  /** the model's scores (probabilities, logits or ratings: output-kind.ts) as a [n] tensor; call inside tf.tidy / an optimizer closure */
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

export async function loadTrainee(ir: ModelIR, opts: { lastLayerInput?: boolean; frozen?: boolean } = {}): Promise<Trainee> {
  const file = ir.path;
  if (ir.format === 'onnx') {
    // the last layer's input as an extra graph output of the same function (same variables)
    const h = opts.lastLayerInput ? onnxLastLayerInput(ir) : undefined;
    const built = h ? { ...ir, graph: { ...ir.graph, outputs: [...ir.graph.outputs, { name: h }] } } : ir;
    // frozen (a teacher): every weight a constant, so no variable is registered under its name
    const fn: OnnxTfjsFunction = await buildTfjsFunctionFromOnnx(built, opts.frozen ? { trainable: () => false } : {});
    try {
      const feeds = inputFeeds(fn.inputs, file);
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
  const feeds = inputFeeds(model.inputNames.map((name, i) => ({ name, shape: model.inputs[i].shape })), file);
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

/**
 * Scores of every row, in batches, outside any gradient tape, read back asynchronously: TF.js's
 * WebGPU backend cannot read synchronously in Node (it needs an OffscreenCanvas).
 */
export async function scoreRowsAsync(t: Trainee, b: Batch, batchSize = 4096): Promise<Float32Array> {
  const n = b.user.length;
  const out = new Float32Array(n);
  for (let s = 0; s < n; s += batchSize) {
    const e = Math.min(n, s + batchSize);
    const y = tf.tidy(() => t.forward(sliceBatch(b, s, e)));
    try {
      out.set((await y.data()) as Float32Array, s);
    } finally {
      y.dispose();
    }
  }
  return out;
}

/** Scores of every row, in batches, outside any gradient tape (synchronous: CPU and WASM backends). */
export function scoreRows(t: Trainee, b: Batch, batchSize = 4096): Float32Array {
  const n = b.user.length;
  const out = new Float32Array(n);
  for (let s = 0; s < n; s += batchSize) {
    const e = Math.min(n, s + batchSize);
    tf.tidy(() => out.set(t.forward(sliceBatch(b, s, e)).dataSync() as Float32Array, s));
  }
  return out;
}

/**
 * The output kind of a loaded trainee (output-kind.ts): the graph first, else its scores on up
 * to 4,096 rows of `table` spread over the file (and, with ratings, how well they fit them).
 */
export async function traineeOutputKind(ir: ModelIR, t: Trainee, table: InteractionTable, flag?: OutputKind | 'auto'): Promise<OutputSemantics> {
  // the scores are read first (asynchronously), and only when the graph and the flag leave it open
  const g = graphOutputFinding(ir);
  const settled = (flag !== undefined && flag !== 'auto') || g?.bounded === true || (g !== undefined && !table.rating);
  let scores: Float32Array | undefined;
  if (!settled) scores = await scoreRowsAsync(t, outputKindSample(table).sample);
  return outputKindByScores(ir, () => scores ?? new Float32Array(0), table, flag);
}

/** Up to 4,096 rows of `table` spread over the file, and their ratings when it has them. */
function outputKindSample(table: InteractionTable): { sample: Batch; ratings?: Float32Array } {
  const n = table.user.length;
  const take = Math.min(n, 4096);
  const rows = Int32Array.from({ length: take }, (_, i) => Math.floor((i * n) / take));
  const all = tableAsBatch(table);
  const E = all.extraCount;
  const sample: Batch = {
    user: rows.map((r) => all.user[r]),
    item: rows.map((r) => all.item[r]),
    label: Float32Array.from(rows, (r) => all.label[r]),
    extra: Int32Array.from({ length: take * E }, (_, j) => all.extra[rows[Math.floor(j / E)] * E + (j % E)]),
    extraCount: E,
  };
  return { sample, ...(table.rating ? { ratings: Float32Array.from(rows, (r) => table.rating![r]) } : {}) };
}

/** traineeOutputKind with any scorer (the fast engine's, compiled-step.ts). */
export function outputKindByScores(ir: ModelIR, score: (b: Batch) => Float32Array, table: InteractionTable, flag?: OutputKind | 'auto'): OutputSemantics {
  const { sample, ratings } = outputKindSample(table);
  return decideOutputKind(ir, { flag, scores: () => score(sample), targets: { ratings } });
}
