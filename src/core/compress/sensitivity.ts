// Sensitivity analysis (NNI's SensitivityAnalysis habit, for recommenders): prune each tensor
// alone at several sparsities, evaluate HR@K / NDCG@K on the candidates, then propose per-tensor
// targets that keep the metric drop within a budget — and check the proposal as a whole, because
// drops add up when every layer is pruned at once.

import { mkdtemp, rm } from 'node:fs/promises';
import { join, dirname, basename } from 'node:path';
import { tmpdir } from 'node:os';
import { readModel } from '../model/read-model.js';
import type { ModelIR } from '../model/ir.js';
import { evaluateModel, EvaluationResult } from '../eval/evaluate.js';
import { chooseTensors, pruneMagnitude } from './prune-magnitude.js';
import type { CompressionContext } from './types.js';

export interface SensitivitySettings {
  /** candidates CSV (user,item,label): the metric is measured on it */
  candidates: string;
  /** default 10 */
  k?: number;
  /** sparsities tried per tensor; default [0.5, 0.7, 0.8, 0.9, 0.95] */
  sparsities?: number[];
  /** largest relative drop of the metric allowed, e.g. 0.01 = 1%; default 0.01 */
  budget?: number;
  /** default 'ndcg' */
  metric?: 'ndcg' | 'hr';
  /** tensors to study; default every embedding table and dense kernel */
  tensors?: string[];
  /** explicit input names, for models whose inputs are not named user/item */
  userInput?: string;
  itemInput?: string;
}

export interface SensitivityPoint {
  sparsity: number;
  hr: number;
  ndcg: number;
  /** relative drop of the chosen metric vs the dense model (negative = it improved) */
  drop: number;
}

export interface SensitivityRow {
  tensor: string;
  layer: string;
  role: string;
  params: number;
  points: SensitivityPoint[];
  /**
   * the largest tried sparsity whose drop stays within the budget for this tensor alone (0 when
   * none does); `SensitivityResult.proposal` holds what is proposed once all are checked together
   */
  proposed: number;
}

export interface SensitivityResult {
  metric: 'ndcg' | 'hr';
  k: number;
  budget: number;
  baseline: { hr: number; ndcg: number };
  rows: SensitivityRow[];
  /** per-tensor sparsities proposed, after checking them together */
  proposal: Record<string, number>;
  /** the whole proposal applied at once */
  combined: { hr: number; ndcg: number; drop: number; sparsity: number };
  /** how many times the proposal was scaled back to meet the budget together */
  backoffs: number;
  seconds: number;
}

function metricOf(r: EvaluationResult, metric: 'ndcg' | 'hr'): number {
  const v = metric === 'ndcg' ? r.ndcg : r.hr;
  if (v === undefined) throw new Error(`the evaluation gave no ${metric}: are the candidates labelled (user,item,label)?`);
  return v;
}

function outName(ir: ModelIR, dir: string, tag: string): string {
  return ir.format === 'onnx' ? join(dir, `${tag}.onnx`) : join(dir, tag, 'model.json');
}

/**
 * Runs the study. Every trial model is written into a temporary folder beside the system's temp
 * dir and removed at the end; the original is only read.
 */
export async function sensitivityAnalysis(ir: ModelIR, s: SensitivitySettings, ctx: CompressionContext = {}): Promise<SensitivityResult> {
  const t0 = Date.now();
  const k = s.k ?? 10;
  const metric = s.metric ?? 'ndcg';
  const budget = s.budget ?? 0.01;
  const sparsities = [...(s.sparsities ?? [0.5, 0.7, 0.8, 0.9, 0.95])].sort((a, b) => a - b);
  if (sparsities.some((x) => !(x > 0 && x < 1))) throw new Error('sensitivity sparsities must lie strictly between 0 and 1');
  if (!(budget >= 0)) throw new Error('the metric-drop budget must be >= 0');
  const tensors = chooseTensors(ir, s.tensors);
  if (tensors.length === 0) throw new Error(`${ir.path}: no embedding table or dense kernel to study`);
  const evalOpts = { candidates: s.candidates, k, userInput: s.userInput, itemInput: s.itemInput };

  const base = await evaluateModel(ir.path, evalOpts);
  const baseMetric = metricOf(base, metric);
  const dropOf = (r: EvaluationResult) => (baseMetric > 0 ? (baseMetric - metricOf(r, metric)) / baseMetric : 0);

  const work = await trialFolder(ir.path);
  const trials = tensors.length * sparsities.length + 4;
  let done = 0;
  const tick = (detail: string) => ctx.onProgress?.(Math.min(1, ++done / trials), detail);
  let trial = 0;
  /** prune with the given settings, write, evaluate, delete */
  const evaluatePruned = async (settings: Parameters<typeof pruneMagnitude>[1]): Promise<EvaluationResult> => {
    ctx.signal?.throwIfAborted();
    const out = outName(ir, work, `trial-${trial++}`);
    const outcome = await pruneMagnitude(ir, settings, { signal: ctx.signal });
    await outcome.write(out);
    try {
      return await evaluateModel(out, evalOpts);
    } finally {
      await rm(ir.format === 'onnx' ? out : dirname(out), { recursive: true, force: true });
      await rm(`${out}.data`, { force: true });
    }
  };

  try {
    const rows: SensitivityRow[] = [];
    for (const t of tensors) {
      const points: SensitivityPoint[] = [];
      for (const sp of sparsities) {
        const r = await evaluatePruned({ sparsity: sp, scope: 'layer', tensors: [t.name] });
        points.push({ sparsity: sp, hr: r.hr ?? 0, ndcg: r.ndcg ?? 0, drop: dropOf(r) });
        tick(`${t.name} @ ${Math.round(sp * 100)}%`);
      }
      // the largest sparsity such that it and every smaller one stay within the budget (a
      // non-monotone curve must not tempt us past a point that already broke the budget)
      let proposed = 0;
      for (const p of points) {
        if (p.drop > budget) break;
        proposed = p.sparsity;
      }
      const params = t.shape.reduce((a, b) => a * b, 1);
      rows.push({ tensor: t.name, layer: t.layer, role: t.role, params, points, proposed });
    }

    // Check the proposal applied to every tensor at once; scale it back until it meets the budget.
    let scale = 1;
    let backoffs = 0;
    let proposal: Record<string, number> = {};
    let combined: EvaluationResult | undefined;
    for (;;) {
      proposal = Object.fromEntries(rows.map((r) => [r.tensor, Math.round(r.proposed * scale * 1000) / 1000]));
      const active = rows.filter((r) => proposal[r.tensor] > 0);
      if (active.length === 0) {
        combined = base;
        break;
      }
      combined = await evaluatePruned({
        sparsity: 0,
        scope: 'layer',
        perLayer: Object.fromEntries(active.map((r) => [r.tensor, proposal[r.tensor]])),
        tensors: active.map((r) => r.tensor),
      });
      tick(`combined proposal x${scale.toFixed(2)}`);
      if (dropOf(combined) <= budget || backoffs >= 4) break;
      backoffs++;
      scale *= 0.75;
    }
    const totalParams = rows.reduce((a, r) => a + r.params, 0);
    const prunedParams = rows.reduce((a, r) => a + r.params * (proposal[r.tensor] ?? 0), 0);
    ctx.onProgress?.(1, 'done');
    return {
      metric,
      k,
      budget,
      baseline: { hr: base.hr ?? 0, ndcg: base.ndcg ?? 0 },
      rows,
      proposal,
      combined: { hr: combined.hr ?? 0, ndcg: combined.ndcg ?? 0, drop: dropOf(combined), sparsity: totalParams ? prunedParams / totalParams : 0 },
      backoffs,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * A folder for the trial models: beside the model (its disk is sized for models of its size), or
 * the system's temp folder where the model's folder cannot be written (a read-only mount).
 */
async function trialFolder(model: string): Promise<string> {
  const prefix = `.${basename(model)}.sensitivity-`;
  try {
    return await mkdtemp(join(dirname(model), prefix));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') throw e;
    return mkdtemp(join(tmpdir(), prefix));
  }
}

/** Convenience for callers that hold a path. */
export async function sensitivityAnalysisOfFile(path: string, s: SensitivitySettings, ctx: CompressionContext = {}): Promise<SensitivityResult> {
  return sensitivityAnalysis(await readModel(path, { signal: ctx.signal }), s, ctx);
}
