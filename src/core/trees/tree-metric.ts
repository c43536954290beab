// The validation metric of a tree ensemble on labelled rows: AUC for 0/1 labels, RMSE for other
// labels, the accuracy of the predicted class for a multi-class classifier (the label column then
// holds each row's class). Pruning and feature importance both measure with it.

import { auc, isBinary, rmse } from '../eval/metrics.js';
import { evaluateTreeEnsemble, singleScore, type FeatureMatrix } from './tree-eval.js';
import type { TreeEnsemble } from './tree-model.js';
import { ModelFileError } from '../model/ir.js';

/** AUC (binary labels), RMSE (other labels) or accuracy (the predicted class of a multi-class classifier). */
export type TreeMetric = 'auc' | 'rmse' | 'accuracy';

/** AUC for 0/1 labels (higher is better), else RMSE (lower is better). */
export function validationMetric(labels: Float32Array, scores: ArrayLike<number>): { metric: 'auc' | 'rmse'; value: number } {
  if (isBinary(labels)) {
    const a = auc(labels, scores);
    if (a === undefined) throw new Error('validation data has only one class: AUC is undefined');
    return { metric: 'auc', value: a };
  }
  return { metric: 'rmse', value: rmse(labels, scores) };
}

/** A classifier with more than two classes: validated by the accuracy of its predicted label. */
export function isMultiClass(e: TreeEnsemble): boolean {
  return e.op === 'TreeEnsembleClassifier' && e.nTargets > 2;
}

/**
 * A data file's labels in the convention the metrics take: a classifier's as class indices (the
 * position of each label in classlabels_int64s, or for string class labels the label itself as
 * the index of its classlabels_strings entry), so that a binary classifier's are 0/1 with the
 * second class positive; a regressor's as they are. A label that is no class of the classifier
 * is an error naming the file and the row: read as a number it would turn AUC into RMSE.
 */
export function validationLabels(e: TreeEnsemble, labels: Float32Array, file: string): Float32Array {
  if (e.op !== 'TreeEnsembleClassifier') return labels;
  const ints = e.classLabelsInts;
  const at = new Map<number, number>();
  if (ints) ints.forEach((c, k) => at.set(c, k));
  const out = new Float32Array(labels.length);
  for (let r = 0; r < labels.length; r++) {
    const y = labels[r];
    const k = ints ? at.get(y) : Number.isInteger(y) && y >= 0 && y < e.nTargets ? y : undefined;
    if (k === undefined) {
      const classes = ints ? `its classes are ${ints.slice(0, 20).join(', ')}${ints.length > 20 ? ', ...' : ''}` : `its ${e.nTargets} classes are named (${(e.classLabelsStrings ?? []).slice(0, 8).join(', ')}): give each row's class as its index 0..${e.nTargets - 1}`;
      throw new ModelFileError(file, `data row ${r + 1}: label ${y} is not a class of this ${e.nTargets}-class classifier (${classes})`);
    }
    out[r] = k;
  }
  return out;
}

/** A multi-class classifier's labels (class indices, see validationLabels) as integers; throws on any other value. */
export function classIndices(e: TreeEnsemble, labels: Float32Array): Int32Array {
  const out = new Int32Array(labels.length);
  for (let r = 0; r < labels.length; r++) {
    const y = labels[r];
    if (!(Number.isInteger(y) && y >= 0 && y < e.nTargets)) throw new Error(`row ${r + 1}: label ${y} is no class index 0..${e.nTargets - 1} (labels go through validationLabels first)`);
    out[r] = y;
  }
  return out;
}

/** Share of rows whose predicted class (argmax, as ONNX Runtime's label output) is the label's. */
function classAccuracy(e: TreeEnsemble, predicted: Int32Array, labels: Float32Array): number {
  const y = classIndices(e, labels);
  let hit = 0;
  for (let r = 0; r < y.length; r++) if (predicted[r] === y[r]) hit++;
  return y.length ? hit / y.length : 0;
}

/** The validation metric of the ensemble on labelled rows (see TreeMetric). */
export function ensembleMetric(e: TreeEnsemble, data: { X: FeatureMatrix; labels: Float32Array }): { metric: TreeMetric; value: number } {
  const out = evaluateTreeEnsemble(e, data.X);
  if (isMultiClass(e)) return { metric: 'accuracy', value: classAccuracy(e, out.labelIndex!, data.labels) };
  return validationMetric(data.labels, singleScore(e, out));
}
