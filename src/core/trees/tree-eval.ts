// Our own evaluator of tree ensembles, following ONNX Runtime's CPU kernels closely enough that
// outputs match to float rounding: float thresholds compare and sum in float32 (Math.fround after
// every operation), `*_as_tensor` (double) ensembles in double; trees are summed in file order
// (ORT does so when it runs single-threaded: intraOpNumThreads = 1).

import type { BranchMode, Tree, TreeEnsemble } from './tree-model.js';

/** Rows of float32 features, row-major [rows, features]. */
export interface FeatureMatrix {
  data: Float32Array;
  rows: number;
  features: number;
}

function goesTrue(mode: BranchMode, x: number, th: number): boolean {
  switch (mode) {
    case 'BRANCH_LEQ':
      return x <= th;
    case 'BRANCH_LT':
      return x < th;
    case 'BRANCH_GTE':
      return x >= th;
    case 'BRANCH_GT':
      return x > th;
    case 'BRANCH_EQ':
      return x === th;
    case 'BRANCH_NEQ':
      return x !== th;
  }
}

/** Index of the leaf that row `row` reaches in `t`. */
export function leafIndex(t: Tree, X: FeatureMatrix, row: number, double: boolean): number {
  const base = row * X.features;
  let i = 0;
  for (;;) {
    const s = t.nodes[i].split;
    if (!s) return i;
    if (s.feature >= X.features) throw new Error(`a split uses feature ${s.feature}, the data has ${X.features} columns`);
    const x = X.data[base + s.feature];
    const th = double ? s.threshold : Math.fround(s.threshold);
    i = goesTrue(s.mode, x, th) || (s.missingTracksTrue && Number.isNaN(x)) ? s.trueChild : s.falseChild;
  }
}

/** Leaf reached by every row in every tree: [tree][row]. */
export function leafAssignments(e: TreeEnsemble, X: FeatureMatrix): Int32Array[] {
  return e.trees.map((t) => {
    const out = new Int32Array(X.rows);
    for (let r = 0; r < X.rows; r++) out[r] = leafIndex(t, X, r, e.double);
    return out;
  });
}

function logistic(v: number, r: (x: number) => number): number {
  // ORT's ComputeLogistic: 1 / (1 + exp(-|v|)), mirrored for negative v
  const p = r(1 / r(1 + r(Math.exp(-Math.abs(v)))));
  return v < 0 ? r(1 - p) : p;
}

function erfInv(x0: number, r: (x: number) => number): number {
  // ORT's ErfInv (Winitzki's approximation, a = 0.147, pi as float(M_PI))
  const sgn = x0 < 0 ? -1 : 1;
  const x = r(r(1 - x0) * r(1 + x0));
  const lg = r(Math.log(x));
  const v = r(r(2 / r(Math.fround(Math.PI) * Math.fround(0.147))) + r(0.5 * lg));
  const v2 = r(r(1 / Math.fround(0.147)) * lg);
  const v3 = r(-v + r(Math.sqrt(r(r(v * v) - v2))));
  return r(sgn * r(Math.sqrt(v3)));
}

function probit(v: number, r: (x: number) => number): number {
  return r(Math.fround(1.41421356) * erfInv(r(r(2 * v) - 1), r));
}

/**
 * The post_transform ONNX Runtime applies. The opset-5 TreeEnsemble stores it as an integer, which
 * the ONNX spec numbers NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO, PROBIT; ORT (checked with 1.30)
 * casts it to its own enum (NONE, LOGISTIC, SOFTMAX, ...), so a file saying SOFTMAX (1) runs as
 * LOGISTIC and LOGISTIC (2) as SOFTMAX. The model keeps the file's value; we evaluate as ORT runs.
 */
export function ortPostTransform(e: Pick<TreeEnsemble, 'op' | 'postTransform'>): TreeEnsemble['postTransform'] {
  if (e.op === 'TreeEnsemble') {
    if (e.postTransform === 'SOFTMAX') return 'LOGISTIC';
    if (e.postTransform === 'LOGISTIC') return 'SOFTMAX';
  }
  return e.postTransform;
}

function transform(scores: number[], post: TreeEnsemble['postTransform'], r: (x: number) => number): void {
  switch (post) {
    case 'NONE':
      return;
    case 'LOGISTIC':
      for (let k = 0; k < scores.length; k++) scores[k] = logistic(scores[k], r);
      return;
    case 'PROBIT':
      for (let k = 0; k < scores.length; k++) scores[k] = probit(scores[k], r);
      return;
    case 'SOFTMAX':
    case 'SOFTMAX_ZERO': {
      // ORT's ComputeSoftmax / ComputeSoftmaxZero: max and sum kept in float; SOFTMAX_ZERO leaves
      // |s| <= 1e-7 at s * exp(-max) and divides everything by the sum (all zero: 0 / 0 = NaN)
      const zero = post === 'SOFTMAX_ZERO';
      let m = -3.4028234663852886e38;
      for (const s of scores) if (s > m) m = Math.fround(s);
      const eNegMax = Math.fround(Math.exp(-m));
      let sum = 0;
      for (let k = 0; k < scores.length; k++) {
        const s = scores[k];
        if (!zero || s > 1e-7 || s < -1e-7) {
          scores[k] = r(Math.exp(r(s - m)));
          sum = Math.fround(sum + scores[k]);
        } else scores[k] = r(s * eNegMax);
      }
      for (let k = 0; k < scores.length; k++) scores[k] = r(scores[k] / sum);
      return;
    }
  }
}

/**
 * Raw aggregated scores before base values and post_transform, [rows, nTargets], plus which
 * targets received a vote (classifiers treat classes without votes specially).
 */
function aggregate(e: TreeEnsemble, X: FeatureMatrix, row: number, r: (x: number) => number, scores: number[], has: boolean[]): void {
  scores.fill(0);
  has.fill(false);
  for (const t of e.trees) {
    const leaf = t.nodes[leafIndex(t, X, row, e.double)];
    for (const v of leaf.votes) {
      const w = r(v.value);
      const k = v.target;
      if (!has[k]) {
        scores[k] = e.aggregate === 'MIN' || e.aggregate === 'MAX' ? w : r(scores[k] + w);
        has[k] = true;
      } else if (e.aggregate === 'MIN') scores[k] = Math.min(scores[k], w);
      else if (e.aggregate === 'MAX') scores[k] = Math.max(scores[k], w);
      else scores[k] = r(scores[k] + w);
    }
  }
}

export interface TreeOutputs {
  /** [rows, columns] float32: the regressor's Y or the classifier's probabilities/scores */
  scores: Float32Array;
  columns: number;
  /** classifier only: index of the predicted class label */
  labelIndex?: Int32Array;
}

/** What ONNX Runtime returns for `X`, computed by walking the trees. */
export function evaluateTreeEnsemble(e: TreeEnsemble, X: FeatureMatrix): TreeOutputs {
  const r = e.double ? (x: number) => x : Math.fround;
  const n = e.nTargets;
  const scores = new Array<number>(n).fill(0);
  const has = new Array<boolean>(n).fill(false);
  if (e.op !== 'TreeEnsembleClassifier') {
    const out = new Float32Array(X.rows * n);
    for (let row = 0; row < X.rows; row++) {
      aggregate(e, X, row, r, scores, has);
      for (let k = 0; k < n; k++) {
        let v = scores[k];
        if (e.aggregate === 'AVERAGE') v = r(v / e.trees.length);
        scores[k] = r(v + r(e.baseValues[k] ?? 0));
      }
      // ORT applies only PROBIT to a single-target regressor (LOGISTIC, SOFTMAX are ignored there)
      if (n > 1) transform(scores, ortPostTransform(e), r);
      else if (e.postTransform === 'PROBIT') scores[0] = probit(scores[0], r);
      for (let k = 0; k < n; k++) out[row * n + k] = scores[k];
    }
    return { scores: out, columns: n };
  }
  return evaluateClassifier(e, X, r);
}

function evaluateClassifier(e: TreeEnsemble, X: FeatureMatrix, r: (x: number) => number): TreeOutputs {
  const n = e.nTargets;
  const classIds = new Set<number>();
  let allPositive = true;
  for (const t of e.trees) for (const nd of t.nodes) for (const v of nd.votes) {
    classIds.add(v.target);
    if (v.value < 0) allPositive = false;
  }
  const binaryCase = n === 2 && classIds.size === 1;
  const out = new Float32Array(X.rows * n);
  const labels = new Int32Array(X.rows);
  const scores = new Array<number>(n).fill(0);
  const has = new Array<boolean>(n).fill(false);
  const base = e.baseValues.map(r);
  for (let row = 0; row < X.rows; row++) {
    aggregate(e, X, row, r, scores, has);
    let preds = scores.slice();
    let hasP = has.slice();
    let addSecond = -1;
    if (n > 2) {
      for (let k = 0; k < base.length; k++) preds[k] = hasP[k] ? r(preds[k] + base[k]) : base[k];
      let best = 0;
      for (let k = 1; k < n; k++) if (preds[k] > preds[best]) best = k;
      labels[row] = best;
    } else {
      if (base.length === 2) {
        if (hasP[1]) {
          preds[1] = r(base[1] + preds[0]);
          preds[0] = -preds[1];
        } else {
          preds[1] = r(preds[1] + base[1]);
          preds[0] = r(preds[0] + base[0]);
        }
      } else if (base.length === 1) {
        preds[0] = r(preds[0] + base[0]);
        if (!hasP[1]) preds = preds.slice(0, 1), hasP = hasP.slice(0, 1);
      } else if (!hasP[1]) preds = preds.slice(0, 1), hasP = hasP.slice(0, 1);
      const pos = preds.length === 2 && hasP[1] ? preds[1] : hasP[0] ? preds[0] : 0;
      if (binaryCase) {
        if (allPositive) {
          addSecond = pos > 0.5 ? 0 : 1;
          labels[row] = pos > 0.5 ? 1 : 0;
        } else {
          addSecond = pos > 0 ? 2 : 3;
          labels[row] = pos > 0 ? 1 : 0;
        }
      } else labels[row] = pos > 0 ? 1 : 0;
    }
    if (preds.length >= 2) transform(preds, e.postTransform, r);
    else if (e.postTransform === 'PROBIT') preds[0] = probit(preds[0], r);
    else if (addSecond === 0 || addSecond === 1) preds = [r(1 - preds[0]), preds[0]];
    else if (e.postTransform === 'LOGISTIC') preds = [logistic(-preds[0], r), logistic(preds[0], r)];
    else preds = [-preds[0], preds[0]];
    for (let k = 0; k < n; k++) out[row * n + k] = preds[k] ?? 0;
  }
  return { scores: out, columns: n, labelIndex: labels };
}

/**
 * Columns of the output that ORT leaves unwritten (so their content is undefined): a binary
 * classifier scoring only class 0 with PROBIT writes the probit of that score alone.
 */
export function ortUnwrittenColumns(e: TreeEnsemble): number[] {
  if (e.op !== 'TreeEnsembleClassifier' || e.nTargets !== 2 || e.postTransform !== 'PROBIT' || e.baseValues.length === 2) return [];
  for (const t of e.trees) for (const n of t.nodes) for (const v of n.votes) if (v.target === 1) return [];
  return [1];
}

/**
 * The one score per row that validation metrics use: the regressor's single target, or the
 * positive class of a binary classifier. Throws for multi-target / multi-class ensembles.
 */
export function singleScore(e: TreeEnsemble, out: TreeOutputs): Float32Array {
  if (out.columns === 1) return out.scores;
  if (e.op === 'TreeEnsembleClassifier' && out.columns === 2) {
    const rows = out.scores.length / 2;
    const s = new Float32Array(rows);
    for (let i = 0; i < rows; i++) s[i] = out.scores[i * 2 + 1];
    return s;
  }
  throw new Error(
    `validation metrics need one score per row (AUC, RMSE: a regressor with one target, a binary classifier) or classes (accuracy: a multi-class classifier); ` +
      `this ${e.op} has ${out.columns} outputs (without --data, its analysis and depth / cover / features pruning work)`,
  );
}
