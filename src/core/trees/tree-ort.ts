// Running tree-ensemble ONNX files in ONNX Runtime: outputs against our evaluator (single
// threaded, so that ORT sums trees in file order as our evaluator does) and latency.

import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { ModelFileError } from '../model/ir.js';
import { evaluateTreeEnsemble, ortUnwrittenColumns, type FeatureMatrix } from './tree-eval.js';
import type { TreeEnsemble } from './tree-model.js';

async function open(path: string, threads?: number): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(path, threads ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {});
  } catch (e) {
    throw new ModelFileError(path, `ONNX Runtime cannot load it: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
}

function feed(s: ort.InferenceSession, path: string, X: FeatureMatrix, double: boolean): Record<string, ort.Tensor> {
  if (s.inputNames.length !== 1) throw new ModelFileError(path, `expected one input (the feature matrix), the model has ${s.inputNames.length}`);
  const data = double ? Float64Array.from(X.data) : X.data;
  return { [s.inputNames[0]]: new ort.Tensor(double ? 'float64' : 'float32', data, [X.rows, X.features]) };
}

/**
 * Runs `path` in ORT on `X` and compares with our evaluator of `e` (the ensemble the file holds,
 * fed straight from the graph input). Returns the max abs difference over all score columns.
 * Single-threaded by default, so that ORT adds the trees in file order like our evaluator.
 */
export async function compareWithOrt(
  path: string,
  e: TreeEnsemble,
  X: FeatureMatrix,
  opts: { threads?: number } = {},
): Promise<{ maxAbsDiff: number; labelsEqual?: boolean }> {
  // threads 0 = ORT's default pool (it may then sum trees in per-thread chunks: float rounding differs)
  const s = await open(path, opts.threads ?? 1);
  try {
    const r = await s.run(feed(s, path, X, e.double));
    const ours = evaluateTreeEnsemble(e, X);
    const outName = e.op === 'TreeEnsembleClassifier' ? s.outputNames[1] : s.outputNames[0];
    const got = r[outName].data as Float32Array | Float64Array;
    if (got.length !== ours.scores.length) throw new ModelFileError(path, `ORT gave ${got.length} values, our evaluator ${ours.scores.length}`);
    let m = 0;
    // columns ORT does not write hold whatever was in memory: not compared
    const skip = new Set(ortUnwrittenColumns(e));
    for (let i = 0; i < got.length; i++) {
      if (skip.size && skip.has(i % ours.columns)) continue;
      const a = got[i], b = ours.scores[i];
      const d = Number.isNaN(a) || Number.isNaN(b) ? (Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity) : Math.abs(a - b);
      if (d > m) m = d;
    }
    let labelsEqual: boolean | undefined;
    if (e.op === 'TreeEnsembleClassifier' && ours.labelIndex) {
      const lab = r[s.outputNames[0]].data as BigInt64Array | string[];
      const names: Array<number | string> = e.classLabelsInts ?? e.classLabelsStrings ?? [];
      labelsEqual = Array.from(ours.labelIndex).every((k, i) => String(lab[i]) === String(names[k]));
    }
    return { maxAbsDiff: m, labelsEqual };
  } finally {
    await s.release();
  }
}

export interface TreeLatency {
  batch: number;
  runs: number;
  p50Ms: number;
  p95Ms: number;
}

/** ORT latency of one batch of `X` (default session options: ORT's own threading). */
export async function measureTreeLatency(path: string, X: FeatureMatrix, double: boolean, runs = 50, warmup = 5): Promise<TreeLatency> {
  const s = await open(path);
  try {
    const f = feed(s, path, X, double);
    for (let i = 0; i < warmup; i++) await s.run(f);
    const t: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await s.run(f);
      t.push(performance.now() - t0);
    }
    t.sort((a, b) => a - b);
    const q = (p: number) => t[Math.min(t.length - 1, Math.floor(p * t.length))];
    return { batch: X.rows, runs, p50Ms: q(0.5), p95Ms: q(0.95) };
  } finally {
    await s.release();
  }
}
