// Runs a model and its quantized copy on the same generated inputs and measures how far their
// outputs move. Inputs are generic (no user/item binding needed): integer inputs get ids inside
// the smallest embedding table of the model (valid for every lookup), float inputs get values
// in [-1, 1); symbolic dims become the probe batch size.

import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { ModelIR } from '../model/ir.js';
import { fileSystemLoadHandler } from '../model/tfjs-io.js';
import { initTfjs } from '../runtime/tfjs-backend.js';

export interface OutputDiff {
  /** max |quantized - original| over every element of every output */
  maxAbsDiff: number;
  /** mean |quantized - original| */
  meanAbsDiff: number;
  /** the range of the original outputs, to put the diff in proportion */
  min: number;
  max: number;
  elements: number;
  rows: number;
}

/** Ids valid for every embedding lookup of the model: [0, smallest table's rows). */
export function idRange(ir: ModelIR): number {
  let rows = Infinity;
  for (const t of ir.tensors) if (t.role === 'embedding' && t.shape.length >= 1 && t.shape[0] > 0) rows = Math.min(rows, t.shape[0]);
  return Number.isFinite(rows) ? rows : 2;
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function compare(a: ArrayLike<number>[], b: ArrayLike<number>[], rows: number): OutputDiff {
  let maxAbsDiff = 0;
  let sum = 0;
  let n = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let k = 0; k < a.length; k++) {
    const x = a[k];
    const y = b[k];
    if (x.length !== y.length) throw new Error(`output #${k} has ${x.length} elements in the original and ${y.length} in the quantized model`);
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(Number(x[i]) - Number(y[i]));
      // NaN in the quantized output only is a failure, not a small diff
      const dd = Number.isNaN(d) ? (Number.isNaN(Number(x[i])) ? 0 : Infinity) : d;
      if (dd > maxAbsDiff) maxAbsDiff = dd;
      sum += dd;
      n++;
      const v = Number(x[i]);
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  return { maxAbsDiff, meanAbsDiff: n ? sum / n : 0, min, max, elements: n, rows };
}

type OrtFeeds = Record<string, ort.Tensor>;

function ortFeeds(ir: ModelIR, rows: number, seed: number): OrtFeeds {
  const rnd = lcg(seed);
  const ids = idRange(ir);
  const initNames = new Set(ir.tensors.map((t) => t.name));
  const feeds: OrtFeeds = {};
  for (const inp of ir.graph.inputs) {
    if (initNames.has(inp.name)) continue;
    const dims = (inp.shape ?? ['batch']).map((d) => (typeof d === 'number' && d > 0 ? d : rows));
    const n = dims.reduce((a, d) => a * d, 1);
    switch (inp.dtype) {
      case 'int64':
        feeds[inp.name] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rnd() * ids))), dims);
        break;
      case 'int32':
        feeds[inp.name] = new ort.Tensor('int32', Int32Array.from({ length: n }, () => Math.floor(rnd() * ids)), dims);
        break;
      case 'float32':
      case undefined:
        feeds[inp.name] = new ort.Tensor('float32', Float32Array.from({ length: n }, () => rnd() * 2 - 1), dims);
        break;
      default:
        throw new Error(`input ${inp.name} has dtype ${inp.dtype}, which the check does not generate`);
    }
  }
  return feeds;
}

async function runOrt(file: string, feeds: OrtFeeds): Promise<ArrayLike<number>[]> {
  const session = await ort.InferenceSession.create(file);
  try {
    const out = await session.run(feeds);
    return session.outputNames.map((n) => {
      const d = out[n].data;
      if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Array.from(d, Number);
      if (Array.isArray(d)) throw new Error(`output ${n} is not numeric`);
      return d as ArrayLike<number>;
    });
  } finally {
    await session.release();
  }
}

/** Original (ir.path) vs quantized (file) in onnxruntime-node, on `rows` generated rows. */
export async function compareOnnxOutputs(ir: ModelIR, file: string, rows = 256, seed = 17): Promise<OutputDiff> {
  const feeds = ortFeeds(ir, rows, seed);
  const a = await runOrt(ir.path, feeds);
  const b = await runOrt(file, feeds);
  return compare(a, b, rows);
}

type TfModel = tf.LayersModel | tf.GraphModel;

async function loadTfjs(ir: ModelIR, file: string): Promise<TfModel> {
  const handler = fileSystemLoadHandler(file);
  return ir.format === 'tfjs-graph' ? tf.loadGraphModel(handler) : tf.loadLayersModel(handler);
}

function tfjsInputs(model: TfModel, ids: number, rows: number, seed: number): tf.Tensor[] {
  const rnd = lcg(seed);
  const specs = model instanceof tf.GraphModel
    ? model.inputs.map((i) => ({ shape: i.shape ?? [-1], dtype: i.dtype }))
    : model.inputs.map((i) => ({ shape: i.shape, dtype: i.dtype }));
  return specs.map(({ shape, dtype }) => {
    const dims = shape.map((d) => (typeof d === 'number' && d > 0 ? d : rows));
    const n = dims.reduce((a, d) => a * d, 1);
    if (dtype === 'int32') return tf.tensor(Int32Array.from({ length: n }, () => Math.floor(rnd() * ids)), dims, 'int32');
    if (dtype === 'float32') return tf.tensor(Float32Array.from({ length: n }, () => rnd() * 2 - 1), dims, 'float32');
    throw new Error(`a model input has dtype ${dtype}, which the check does not generate`);
  });
}

async function predictTfjs(model: TfModel, xs: tf.Tensor[]): Promise<Float32Array[]> {
  const input = xs.length === 1 ? xs[0] : xs;
  const y = model instanceof tf.GraphModel ? await model.executeAsync(input) : model.predict(input);
  const ys = Array.isArray(y) ? y : [y as tf.Tensor];
  try {
    return await Promise.all(ys.map(async (t) => Float32Array.from(await t.data())));
  } finally {
    tf.dispose(ys);
  }
}

/** Original (ir.path) vs quantized (file) in TF.js (layers or graph model), same inputs. */
export async function compareTfjsOutputs(ir: ModelIR, file: string, rows = 256, seed = 17): Promise<OutputDiff> {
  await initTfjs();
  const a = await loadTfjs(ir, ir.path);
  let b: TfModel | undefined;
  let xs: tf.Tensor[] = [];
  try {
    b = await loadTfjs(ir, file);
    xs = tfjsInputs(a, idRange(ir), rows, seed);
    const ya = await predictTfjs(a, xs);
    const yb = await predictTfjs(b, xs);
    return compare(ya, yb, rows);
  } finally {
    tf.dispose(xs);
    a.dispose();
    b?.dispose();
  }
}
