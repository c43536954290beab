// Permutation importance of the input fields of a deep CTR model (DeepFM-style `fields` input, or
// separate user / item inputs): shuffle one field's column across the rows of a labelled dataset,
// score again, and see how much the metric gets worse. A field whose shuffling costs nothing
// carries nothing the model uses; it is the first to prune (prune-fields.ts).
//
// The model runs through the same scorers as evaluation (ORT for ONNX, TF.js for model.json), so
// the figures are what the deployed model does, not what its weights suggest.

import { ModelFileError } from '../model/ir.js';
import { readModel } from '../model/read-model.js';
import { createRng, shuffleInPlace } from '../samples/prng.js';
import { modelVocab, openScorer, ScorerOptions } from '../eval/evaluate.js';
import type { ScoreBatch } from '../eval/input-binding.js';
import { fieldsMatrix, readInteractions, InteractionColumnNames } from '../eval/interactions.js';
import { auc, isBinary, logloss } from '../eval/metrics.js';
import type { CompressionContext } from './types.js';
import { fieldColumns } from '../model/field-columns.js';

export type FieldMetric = 'auc' | 'logloss';

export interface FieldImportanceOptions extends ScorerOptions {
  /** CSV/TSV with the field columns (user, item, then the extra fields) and a 0/1 label */
  data: string;
  /** default 'auc' */
  metric?: FieldMetric;
  /** shuffles per field; default 3 */
  repeats?: number;
  /** seed of the shuffles; default 1 */
  seed?: number;
  columns?: InteractionColumnNames;
  batchSize?: number;
}

export interface FieldImportance {
  field: string;
  /** column of the `fields` input (or -1 for a separate user / item input) */
  column: number;
  /** the metric with this field shuffled, per repeat */
  metrics: number[];
  /**
   * How much worse the metric got, averaged over repeats: baseline AUC - shuffled AUC, or
   * shuffled logloss - baseline logloss. Near 0 (or below): the model does not use the field.
   */
  drop: number;
  /** sample standard deviation of the drop over repeats (0 with one repeat) */
  spread: number;
}

export interface FieldImportanceReport {
  model: string;
  data: string;
  metric: FieldMetric;
  baseline: number;
  rows: number;
  repeats: number;
  seed: number;
  /** most important first (largest drop) */
  fields: FieldImportance[];
  runtime: string;
}

function metricOf(metric: FieldMetric, labels: Float32Array, scores: Float32Array, file: string): number {
  if (metric === 'logloss') return logloss(labels, scores);
  const a = auc(labels, scores);
  if (a === undefined) throw new ModelFileError(file, 'AUC needs both positive and negative labels');
  return a;
}

/** Permutation importance of every field the model reads. */
export async function fieldImportance(path: string, opts: FieldImportanceOptions, ctx?: CompressionContext): Promise<FieldImportanceReport> {
  const metric = opts.metric ?? 'auc';
  if (metric !== 'auc' && metric !== 'logloss') throw new Error(`metric must be 'auc' or 'logloss', got ${String(metric)}`);
  const repeats = opts.repeats ?? 3;
  if (!Number.isInteger(repeats) || repeats < 1 || repeats > 100) throw new Error(`repeats must be an integer in [1, 100], got ${repeats}`);
  const seed = opts.seed ?? 1;
  const ir = await readModel(path);
  const vocab = modelVocab(ir);
  const scorer = await openScorer(ir.path, opts);
  try {
    const fieldsInput = scorer.inputs.find((i) => i.role === 'fields');
    const table = await readInteractions(opts.data, {
      columns: opts.columns,
      extraColumns: fieldsInput ? 'all' : undefined,
      userVocab: vocab.user,
      itemVocab: vocab.item,
      extraVocabOf: (c) => vocab.ofColumn(c),
      fieldColumns: fieldColumns(ir),
      requireLabel: true,
    });
    const labels = table.label!;
    if (!isBinary(labels)) throw new ModelFileError(opts.data, `field importance needs 0/1 labels; column ${table.labelColumn} is not binary`);
    if (table.rows < 2) throw new ModelFileError(opts.data, 'at least two rows are needed to shuffle a field');
    const F = 2 + table.extra.length;
    if (fieldsInput && typeof fieldsInput.shape[1] === 'number' && fieldsInput.shape[1] !== F) {
      throw new ModelFileError(opts.data, `the model's input "${fieldsInput.name}" takes ${fieldsInput.shape[1]} fields, the file has ${F} (user, item, ${table.extra.map((e) => e.name).join(', ')})`);
    }
    const userName = opts.columns?.user ?? 'user';
    const itemName = opts.columns?.item ?? 'item';
    // the fields the model reads, with where each lives in a batch
    const names = fieldsInput ? [userName, itemName, ...table.extra.map((e) => e.name)] : [userName, itemName];
    const base: ScoreBatch = { user: table.user, item: table.item, fields: fieldsInput ? fieldsMatrix(table) : undefined };
    const steps = 1 + names.length * repeats;
    let done = 0;
    const progress = (what: string): void => {
      done++;
      ctx?.onProgress?.(done / steps, what);
    };
    const baseScores = await scorer.score(base, opts.batchSize);
    const baseline = metricOf(metric, labels, baseScores, opts.data);
    progress('baseline');
    const out: FieldImportance[] = [];
    for (const [f, name] of names.entries()) {
      const rng = createRng(seed).fork(f + 1);
      const metrics: number[] = [];
      for (let r = 0; r < repeats; r++) {
        ctx?.signal?.throwIfAborted();
        const batch: ScoreBatch = { ...base };
        if (fieldsInput) {
          const col = new Int32Array(table.rows);
          for (let i = 0; i < table.rows; i++) col[i] = base.fields![i * F + f];
          shuffleInPlace(col, rng);
          const m = base.fields!.slice();
          for (let i = 0; i < table.rows; i++) m[i * F + f] = col[i];
          batch.fields = m;
        } else {
          const key = f === 0 ? 'user' : 'item';
          batch[key] = shuffleInPlace(base[key].slice(), rng);
        }
        const scores = await scorer.score(batch, opts.batchSize);
        metrics.push(metricOf(metric, labels, scores, opts.data));
        progress(name);
      }
      const drops = metrics.map((m) => (metric === 'auc' ? baseline - m : m - baseline));
      const mean = drops.reduce((a, b) => a + b, 0) / drops.length;
      const spread = drops.length > 1 ? Math.sqrt(drops.reduce((a, d) => a + (d - mean) ** 2, 0) / (drops.length - 1)) : 0;
      out.push({ field: name, column: fieldsInput ? f : -1, metrics, drop: mean, spread });
    }
    out.sort((a, b) => b.drop - a.drop);
    return { model: ir.path, data: table.file, metric, baseline, rows: table.rows, repeats, seed, fields: out, runtime: scorer.runtime };
  } finally {
    await scorer.close();
  }
}
