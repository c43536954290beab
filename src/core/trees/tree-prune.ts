// Tree pruning jobs on an existing ensemble: max depth / min cover limits, reduced-error
// post-pruning and greedy ensemble pruning on a validation set, feature pruning. Each returns
// a new TreeEnsemble (write it with writeReplacedTreeEnsemble) and what changed.

import { isBinary, rmse } from '../eval/metrics.js';
import { featureImportance } from './tree-analysis.js';
import { classIndices, ensembleMetric, isMultiClass, type TreeMetric } from './tree-metric.js';
import { collapseFeatures, collapseNode, rowsPerNode, usedFeatures, type MajorityBy } from './tree-collapse.js';
import { evaluateTreeEnsemble, leafIndex, singleScore, type FeatureMatrix } from './tree-eval.js';
import { cloneEnsemble, compactTree, countNodes, nodeDepths, reachableNodes, type TreeEnsemble } from './tree-model.js';

export interface LabeledRows {
  X: FeatureMatrix;
  labels: Float32Array;
}

export interface EnsembleSize {
  trees: number;
  nodes: number;
  leaves: number;
}

export interface ValidationScore {
  /** 'auc' for 0/1 labels, 'accuracy' for a multi-class classifier, else 'rmse' */
  metric: TreeMetric;
  before: number;
  after: number;
  /** the same rows weighted the collapsed leaves (a model with no recorded cover): not held out */
  coverFromRows?: boolean;
}

export interface TreePruneResult {
  ensemble: TreeEnsemble;
  before: EnsembleSize;
  after: EnsembleSize;
  /** splits turned into leaves */
  collapsed: number;
  /** ids of the trees removed (ensemble pruning) */
  droppedTrees?: number[];
  removedFeatures?: number[];
  /** removed features that had splits (inputs the model no longer reads) */
  becameUnused?: number[];
  /** features no split used before pruning */
  alreadyUnused?: number[];
  majorityBy?: MajorityBy;
  baseValues?: { before: number[]; after: number[] };
  /**
   * feature pruning: on the --data rows (the rows the features were ranked on, so not held out),
   * computed by our evaluator on the written ensemble
   */
  validation?: ValidationScore;
  /** post-pruning / tree removal: on the rows the pruning chose on (optimistic, never held out) */
  tuning?: ValidationScore & { rows: number };
  /** post-pruning / tree removal: on rows the pruning never saw (when given) */
  heldOut?: ValidationScore & { rows: number; source: string };
  notes: string[];
}

/** Rows the pruning did not choose on, and where they come from (for the report). */
export interface HeldOutRows {
  rows: LabeledRows;
  /** e.g. 'the other half of valid.csv' or 'test.csv' */
  source: string;
}

function subset(d: LabeledRows, idx: number[]): LabeledRows {
  const F = d.X.features;
  const data = new Float32Array(idx.length * F);
  const labels = new Float32Array(idx.length);
  idx.forEach((r, i) => {
    data.set(d.X.data.subarray(r * F, (r + 1) * F), i * F);
    labels[i] = d.labels[r];
  });
  return { X: { data, rows: idx.length, features: F }, labels };
}

/** The seed of the tuning / held-out split, shared by the CLI and the editor so that both choose the same trees. */
export const TUNING_SPLIT_SEED = 1;

/**
 * Rows to choose on and rows to report on: all of `data` and the `test` file when one is given,
 * else a seeded half of `data` each; `selection` says which in words (no trailing hint).
 */
export function honestSplit(data: LabeledRows, dataName: string, test?: { rows: LabeledRows; name: string }): { tuning: LabeledRows; heldOut: HeldOutRows; selection: string } {
  if (test) {
    return {
      tuning: data,
      heldOut: { rows: test.rows, source: test.name },
      selection: `chose on all ${data.X.rows} rows of ${dataName}; reported on the ${test.rows.X.rows} rows of ${test.name}`,
    };
  }
  const sp = splitTuning(data, { fraction: 0.5, seed: TUNING_SPLIT_SEED });
  return {
    tuning: sp.tune,
    heldOut: { rows: sp.holdout, source: `the other half of ${dataName}` },
    selection: `chose on a seeded half of ${dataName} (${sp.tune.X.rows} rows, seed ${sp.seed}${sp.stratified ? ', stratified by label' : ''}); reported on the other ${sp.holdout.X.rows} rows`,
  };
}

/**
 * A seeded split of labelled rows into a tuning part (what pruning chooses on) and a held-out part
 * (what it is reported on); stratified by label when the labels are classes (0/1, or integers
 * with at most STRATA distinct values), so both parts keep every class in its share.
 */
export function splitTuning(
  d: LabeledRows, opts: { fraction?: number; seed?: number } = {},
): { tune: LabeledRows; holdout: LabeledRows; tuneRows: number[]; fraction: number; seed: number; stratified: boolean } {
  const fraction = opts.fraction ?? 0.5;
  const seed = opts.seed ?? 1;
  if (!(fraction > 0 && fraction < 1)) throw new Error(`tuning fraction must be in (0, 1), got ${fraction}`);
  let a = seed >>> 0;
  const rand = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const classes = labelClasses(d.labels);
  const groups: number[][] = classes ? classes.map(() => []) : [[]];
  const groupOf = new Map((classes ?? []).map((c, i) => [c, i]));
  for (let r = 0; r < d.X.rows; r++) groups[groupOf.get(d.labels[r]) ?? 0].push(r);
  const tune: number[] = [], hold: number[] = [];
  // the tuning part has round(rows * fraction) rows in all; the last group takes what the others left
  const total = Math.round(d.X.rows * fraction);
  let given = 0;
  groups.forEach((g, gi) => {
    for (let i = g.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [g[i], g[j]] = [g[j], g[i]];
    }
    const k = gi === groups.length - 1 ? Math.min(g.length, Math.max(0, total - given)) : Math.round(g.length * fraction);
    given += k;
    tune.push(...g.slice(0, k));
    hold.push(...g.slice(k));
  });
  tune.sort((x, y) => x - y);
  hold.sort((x, y) => x - y);
  if (!tune.length || !hold.length) throw new Error(`${d.X.rows} rows are too few to split into tuning and held-out parts`);
  return { tune: subset(d, tune), holdout: subset(d, hold), tuneRows: tune, fraction, seed, stratified: classes !== undefined };
}

/** Most distinct integer labels that a split stratifies by (more are a regression target). */
const STRATA = 32;

/** The distinct labels, ascending, when they are classes (integers, at most STRATA of them). */
function labelClasses(labels: Float32Array): number[] | undefined {
  const seen = new Set<number>();
  for (const y of labels) {
    if (!Number.isInteger(y)) return undefined;
    seen.add(y);
    if (seen.size > STRATA) return undefined;
  }
  return seen.size > 1 ? [...seen].sort((a, b) => a - b) : undefined;
}

/** Scores before/after on the tuning rows and, when given, on held-out rows. */
function scoreHonestly(e0: TreeEnsemble, e: TreeEnsemble, tuning: LabeledRows, heldOut?: HeldOutRows): Pick<TreePruneResult, 'tuning' | 'heldOut'> {
  const b = ensembleMetric(e0, tuning);
  const out: Pick<TreePruneResult, 'tuning' | 'heldOut'> = { tuning: { metric: b.metric, before: b.value, after: ensembleMetric(e, tuning).value, rows: tuning.X.rows } };
  if (heldOut) {
    if (heldOut.rows.X.features !== tuning.X.features) throw new Error(`held-out rows have ${heldOut.rows.X.features} features, the tuning rows ${tuning.X.features}`);
    const h = ensembleMetric(e0, heldOut.rows);
    out.heldOut = { metric: h.metric, before: h.value, after: ensembleMetric(e, heldOut.rows).value, rows: heldOut.rows.X.rows, source: heldOut.source };
  }
  return out;
}

function size(e: TreeEnsemble): EnsembleSize {
  return { trees: e.trees.length, ...countNodes(e) };
}

function coverNote(e: TreeEnsemble): string[] {
  return e.hasCover ? [] : ['no cover recorded (nodes_hitrates): collapsed subtrees get the plain mean of their leaves'];
}

function finish(e: TreeEnsemble, before: EnsembleSize, collapsed: number, notes: string[], extra: Partial<TreePruneResult> = {}): TreePruneResult {
  e.trees = e.trees.map(compactTree);
  return { ensemble: e, before, after: size(e), collapsed, notes, ...extra };
}

/** Pre-pruning limit: every split at depth `maxDepth` (root = 0) becomes a leaf. */
export function pruneMaxDepth(e0: TreeEnsemble, maxDepth: number): TreePruneResult {
  if (!Number.isInteger(maxDepth) || maxDepth < 0) throw new Error(`max depth must be an integer >= 0, got ${maxDepth}`);
  const e = cloneEnsemble(e0);
  let collapsed = 0;
  for (const t of e.trees) {
    const d = nodeDepths(t);
    for (const i of reachableNodes(t)) {
      if (d[i] === maxDepth && t.nodes[i].split) {
        collapseNode(t, i, e.hasCover);
        collapsed++;
      }
    }
  }
  return finish(e, size(e0), collapsed, coverNote(e0));
}

/** Pre-pruning limit: a split one of whose children has cover below `minCover` becomes a leaf (top-down). */
export function pruneMinCover(e0: TreeEnsemble, minCover: number): TreePruneResult {
  if (!e0.hasCover) throw new Error('min-cover pruning needs the cover of every node (nodes_hitrates), which this ensemble does not record');
  if (!(minCover >= 0)) throw new Error(`min cover must be >= 0, got ${minCover}`);
  const e = cloneEnsemble(e0);
  let collapsed = 0;
  for (const t of e.trees) {
    const stack = [0];
    while (stack.length) {
      const i = stack.pop() as number;
      const s = t.nodes[i].split;
      if (!s) continue;
      if ((t.nodes[s.trueChild].cover ?? 0) < minCover || (t.nodes[s.falseChild].cover ?? 0) < minCover) {
        collapseNode(t, i, true);
        collapsed++;
      } else stack.push(s.trueChild, s.falseChild);
    }
  }
  return finish(e, size(e0), collapsed, []);
}

/**
 * ROC AUC with ties counting 1/2 (as metrics.auc), from the two classes' scores sorted
 * separately with the native typed-array sort: several times faster than sorting an index array
 * with a comparator, which matters when every candidate collapse is scored.
 */
export class FastAuc {
  private readonly pos: Float64Array;
  private readonly neg: Float64Array;
  constructor(private readonly labels: Float32Array) {
    let p = 0;
    for (const y of labels) if (y > 0.5) p++;
    this.pos = new Float64Array(p);
    this.neg = new Float64Array(labels.length - p);
  }
  auc(scores: ArrayLike<number>): number {
    const { pos, neg, labels } = this;
    if (!pos.length || !neg.length) return 0;
    let a = 0, b = 0;
    for (let i = 0; i < labels.length; i++) {
      if (labels[i] > 0.5) pos[a++] = scores[i];
      else neg[b++] = scores[i];
    }
    pos.sort();
    neg.sort();
    let u = 0, lo = 0, hi = 0;
    for (let i = 0; i < pos.length; i++) {
      const s = pos[i];
      while (lo < neg.length && neg[lo] < s) lo++;
      if (hi < lo) hi = lo;
      while (hi < neg.length && neg[hi] === s) hi++;
      u += lo + 0.5 * (hi - lo);
    }
    return u / (pos.length * neg.length);
  }
}

/**
 * Per-row scores kept as raw sums so that a candidate change costs O(rows): one score per row
 * (single-target regressors with SUM/AVERAGE, binary classifiers voting on one class), or one
 * per class of a multi-class classifier (`width` columns, row-major).
 */
class RawScores {
  readonly cls: number;
  /** sums per row: 1, or the classes of a multi-class classifier */
  readonly width: number;
  private readonly base: Float64Array;
  private readonly classOf?: Int32Array;
  constructor(readonly e: TreeEnsemble, readonly data: LabeledRows) {
    const classes = new Set<number>();
    for (const t of e.trees) for (const n of t.nodes) for (const v of n.votes) classes.add(v.target);
    if (e.aggregate !== 'SUM' && e.aggregate !== 'AVERAGE') throw new Error(`validation pruning needs SUM or AVERAGE aggregation, not ${e.aggregate}`);
    if (isMultiClass(e)) {
      this.classOf = classIndices(e, data.labels);
    } else if (e.op === 'TreeEnsembleClassifier') {
      if (!isBinary(data.labels)) throw new Error('a binary classifier is validated with 0/1 labels');
    } else if (e.nTargets !== 1) throw new Error(`validation pruning needs one output, this ensemble has ${e.nTargets} targets`);
    this.width = this.classOf ? e.nTargets : 1;
    this.base = Float64Array.from({ length: this.width }, (_, k) => e.baseValues[k] ?? 0);
    // a binary forest's leaves vote both classes (skl2onnx RandomForestClassifier): ranked by
    // class 1's votes minus class 0's, which every finishing (NONE, LOGISTIC, SOFTMAX) keeps in order
    this.both = e.op === 'TreeEnsembleClassifier' && !this.classOf && classes.size === 2;
    this.cls = classes.size ? [...classes][0] : 0;
    if (!this.classOf && isBinary(data.labels)) this.fast = new FastAuc(data.labels);
  }
  private fast?: FastAuc;
  private readonly both: boolean;
  /** The single score a leaf adds (width 1). */
  private leafValue(t: number, i: number): number {
    let v = 0;
    if (this.both) {
      for (const x of this.e.trees[t].nodes[i].votes) v += x.target === 1 ? x.value : -x.value;
      return v;
    }
    for (const x of this.e.trees[t].nodes[i].votes) if (x.target === this.cls) v += x.value;
    return v;
  }
  /** Adds `sign` x what leaf i of tree t gives row r to the sums S. */
  add(S: Float64Array, r: number, t: number, i: number, sign = 1): void {
    if (this.width === 1) {
      S[r] += sign * this.leafValue(t, i);
      return;
    }
    const at = r * this.width;
    for (const x of this.e.trees[t].nodes[i].votes) S[at + x.target] += sign * x.value;
  }
  /** Whether leaves i and j of tree t give every row the same sums. */
  same(t: number, i: number, j: number): boolean {
    if (i === j) return true;
    if (this.width === 1) return this.leafValue(t, i) === this.leafValue(t, j);
    const a = new Float64Array(this.width);
    this.add(a, 0, t, i);
    this.add(a, 0, t, j, -1);
    return a.every((d) => d === 0);
  }
  /**
   * Mean log-loss of the labels under the probabilities ONNX Runtime outputs for the raw sums S,
   * or undefined where those outputs are no probabilities to score (regressors, PROBIT, binary
   * classifiers other than LOGISTIC margins and vote forests). Multi-class: SOFTMAX of the sums
   * plus base values; LOGISTIC per class, normalized; NONE: a vote forest's votes, normalized,
   * else the softmax of the margins.
   */
  logLoss(S: Float64Array): number | undefined {
    const post = this.e.postTransform;
    const rows = this.data.labels.length;
    const eps = 1e-15;
    let sum = 0;
    if (this.classOf) {
      if (post === 'PROBIT') return undefined;
      const w = this.width;
      const votes = post === 'NONE' && isVoteForest(this.e);
      const p = new Float64Array(w);
      for (let r = 0; r < rows; r++) {
        let m = -Infinity;
        for (let k = 0; k < w; k++) {
          p[k] = S[r * w + k] + this.base[k];
          if (p[k] > m) m = p[k];
        }
        let z = 0;
        for (let k = 0; k < w; k++) {
          p[k] = votes ? Math.max(p[k], 0) : post === 'LOGISTIC' ? 1 / (1 + Math.exp(-p[k])) : Math.exp(p[k] - m);
          z += p[k];
        }
        sum -= Math.log(Math.max(z > 0 ? p[this.classOf[r]] / z : 0, eps));
      }
      return sum / rows;
    }
    if (this.e.op !== 'TreeEnsembleClassifier') return undefined;
    // a vote forest scores class 1's votes minus class 0's (adding up to 1): p1 = (1 + S) / 2
    const forest = this.both && post === 'NONE';
    if (!forest && (post !== 'LOGISTIC' || this.both || this.e.baseValues.length > 1)) return undefined;
    for (let r = 0; r < rows; r++) {
      const p1 = forest ? (1 + S[r]) / 2 : 1 / (1 + Math.exp(-(S[r] + this.base[0])));
      const p = this.data.labels[r] > 0.5 ? p1 : 1 - p1;
      sum -= Math.log(Math.min(Math.max(p, eps), 1));
    }
    return sum / rows;
  }
  /**
   * Metric of raw sums S over `trees` trees, higher is better: AUC (invariant to the monotone
   * finishing), -RMSE, or the accuracy of the argmax (the finishing keeps each row's order).
   */
  metric(S: Float64Array, trees: number): number {
    if (this.classOf) {
      const w = this.width;
      let hit = 0;
      for (let r = 0; r < this.classOf.length; r++) {
        let best = 0;
        for (let k = 1; k < w; k++) if (S[r * w + k] + this.base[k] > S[r * w + best] + this.base[best]) best = k;
        if (best === this.classOf[r]) hit++;
      }
      return this.classOf.length ? hit / this.classOf.length : 0;
    }
    if (this.fast) return this.fast.auc(S);
    const out = new Float64Array(S.length);
    for (let r = 0; r < S.length; r++) out[r] = (this.e.aggregate === 'AVERAGE' ? S[r] / trees : S[r]) + this.base[0];
    if (this.e.postTransform === 'PROBIT') throw new Error('RMSE validation of a PROBIT ensemble is not supported: use 0/1 labels');
    return -rmse(this.data.labels, out);
  }
}

export interface PostPruneOptions {
  /** validation metric loss allowed (AUC or accuracy points, or RMSE increase) beyond the free splits; default 0 */
  tolerance?: number;
  /** rows the pruning does not choose on, to report on */
  heldOut?: HeldOutRows;
}

/**
 * Reduced-error post-pruning: bottom-up in every tree, a split whose children are leaves becomes
 * one leaf ((cover-)weighted mean). First pass: a split goes when the validation metric does not
 * fall and, for a classifier whose outputs are probabilities, the validation log-loss does not
 * rise: AUC and above all accuracy barely move when one split of one tree of many goes, so on the
 * metric alone the splits were collapsed one after another until held-out rows lost (a 4-class
 * GBDT of 160 trees: held-out accuracy 0.890 -> 0.861 at tolerance 0). Second pass, only for a
 * tolerance above 0: splits go while the metric stays >= the original's minus `tolerance`.
 * Subtrees no validation row reaches are collapsed (they cannot change either).
 */
export function prunePost(e0: TreeEnsemble, data: LabeledRows, opts: PostPruneOptions = {}): TreePruneResult {
  const tol = opts.tolerance ?? 0;
  const e = cloneEnsemble(e0);
  e.trees = e.trees.map(compactTree);
  const rs = new RawScores(e, data);
  const n = data.X.rows;
  const T = e.trees.length;
  const S = new Float64Array(n * rs.width);
  const leafOf = e.trees.map((t, ti) => {
    const a = new Int32Array(n);
    for (let r = 0; r < n; r++) {
      a[r] = leafIndex(t, data.X, r, e.double);
      rs.add(S, r, ti, a[r]);
    }
    return a;
  });
  // metric() is "higher is better" for AUC, -RMSE and accuracy alike
  const start = rs.metric(S, T);
  let loss = rs.logLoss(S);
  const firstLoss = loss;
  let collapsed = 0;
  const trial = new Float64Array(S.length);
  const pass = (accept: (metric: number, logLoss: number | undefined) => boolean): void =>
    e.trees.forEach((t, ti) => {
      const rows = rowsPerNode(t, data.X, e.double);
      const order = reachableNodes(t);
      // reverse pre-order visits children before parents
      for (let j = order.length - 1; j >= 0; j--) {
        const i = order[j];
        const s = t.nodes[i].split;
        if (!s || t.nodes[s.trueChild].split || t.nodes[s.falseChild].split) continue;
        const saved = t.nodes[i];
        const savedCopy = { split: saved.split, votes: saved.votes, cover: saved.cover };
        collapseNode(t, i, e.hasCover);
        const rr = rows.get(i) ?? [];
        const changed = rr.some((r) => !rs.same(ti, i, leafOf[ti][r]));
        let trialLoss = loss;
        if (changed) {
          trial.set(S);
          for (const r of rr) {
            rs.add(trial, r, ti, leafOf[ti][r], -1);
            rs.add(trial, r, ti, i);
          }
          trialLoss = loss === undefined ? undefined : rs.logLoss(trial);
          if (!accept(rs.metric(trial, T), trialLoss)) {
            t.nodes[i] = savedCopy;
            continue;
          }
          S.set(trial);
          loss = trialLoss;
        }
        for (const r of rr) leafOf[ti][r] = i;
        collapsed++;
      }
    });
  pass((m, l) => m >= start && (l === undefined || loss === undefined || l <= loss + 1e-12 * Math.max(1, loss)));
  const free = collapsed;
  const freeLoss = loss;
  if (tol > 0) pass((m) => m >= start - tol);
  const notes = coverNote(e0);
  if (firstLoss !== undefined) {
    notes.push(
      `${free} split(s) collapsed where neither the validation ${isMultiClass(e) ? 'accuracy' : 'AUC'} fell nor its log-loss rose (${firstLoss.toFixed(4)} -> ${freeLoss!.toFixed(4)} after them)` +
        (tol > 0 ? `; then ${collapsed - free} more within the tolerance of ${tol}` : ''),
    );
  }
  const out = finish(e, size(e0), collapsed, notes);
  Object.assign(out, scoreHonestly(e0, out.ensemble, data, opts.heldOut));
  return out;
}

export interface EnsemblePruneOptions {
  /** fraction of the trees to remove, in [0, 1) */
  dropFraction: number;
  /** stop early when the next removal would lose more than this (metric points); default 0.005 */
  tolerance?: number;
  /** re-fit the base value after removal on the tuning rows (regressors, binary LOGISTIC classifiers); default true */
  refitBase?: boolean;
  /** rows the pruning does not choose on, to report on */
  heldOut?: HeldOutRows;
}

/**
 * Greedy backward removal of whole trees: each step removes the tree whose absence gives the best
 * validation metric, until `dropFraction` of the trees are gone or the metric would fall more
 * than `tolerance` below the original. Then the base value is re-fitted on the validation data.
 */
export function pruneTrees(e0: TreeEnsemble, data: LabeledRows, opts: EnsemblePruneOptions): TreePruneResult {
  if (!(opts.dropFraction >= 0 && opts.dropFraction < 1)) throw new Error(`drop fraction must be in [0, 1), got ${opts.dropFraction}`);
  const tol = opts.tolerance ?? 0.005;
  const e = cloneEnsemble(e0);
  const rs = new RawScores(e, data);
  const n = data.X.rows;
  const T0 = e.trees.length;
  const C = e.trees.map((t, ti) => {
    const c = new Float64Array(n * rs.width);
    for (let r = 0; r < n; r++) rs.add(c, r, ti, leafIndex(t, data.X, r, e.double));
    return c;
  });
  const S = new Float64Array(n * rs.width);
  for (const c of C) for (let r = 0; r < S.length; r++) S[r] += c[r];
  const start = rs.metric(S, T0);
  const target = Math.min(Math.round(opts.dropFraction * T0), T0 - 1);
  const alive = new Set(e.trees.map((_, i) => i));
  const dropped: number[] = [];
  const notes: string[] = [];
  const trial = new Float64Array(S.length);
  const metricName = isMultiClass(e) ? 'accuracy' : isBinary(data.labels) ? 'AUC' : 'RMSE';
  while (dropped.length < target) {
    let best = -Infinity, bestT = -1;
    for (const t of alive) {
      for (let r = 0; r < S.length; r++) trial[r] = S[r] - C[t][r];
      const m = rs.metric(trial, alive.size - 1);
      if (m > best) {
        best = m;
        bestT = t;
      }
    }
    if (best < start - tol) {
      notes.push(`stopped after ${dropped.length} of ${target} trees: removing another would lose more than ${tol} validation ${metricName}`);
      break;
    }
    alive.delete(bestT);
    dropped.push(bestT);
    for (let r = 0; r < S.length; r++) S[r] -= C[bestT][r];
  }
  e.trees = e.trees.filter((_, i) => alive.has(i));
  const baseBefore = e0.baseValues.slice();
  if (dropped.length && isVoteForest(e0)) {
    // a forest's votes are each tree's class probabilities / trees: the remaining trees' votes are
    // scaled up so that the probabilities still add up to 1 (the ranking does not change)
    const k = e0.trees.length / e.trees.length;
    for (const t of e.trees) for (const n of t.nodes) for (const v of n.votes) v.value = e.double ? v.value * k : Math.fround(v.value * k);
    notes.push(`votes of the ${e.trees.length} remaining trees scaled by ${e0.trees.length}/${e.trees.length}: a forest's class probabilities still add up to 1`);
  } else if (opts.refitBase !== false && dropped.length) refitBase(e, data, notes);
  const out = finish(e, size(e0), 0, notes, {
    droppedTrees: dropped.map((i) => e0.trees[i].id),
    baseValues: { before: baseBefore, after: e.baseValues.slice() },
  });
  Object.assign(out, scoreHonestly(e0, out.ensemble, data, opts.heldOut));
  return out;
}

/** A forest classifier: SUM of votes with no finishing, every leaf voting every class (the votes of a leaf add up to 1 / trees). */
function isVoteForest(e: TreeEnsemble): boolean {
  if (e.op !== 'TreeEnsembleClassifier' || e.aggregate !== 'SUM' || e.postTransform !== 'NONE') return false;
  for (const t of e.trees) for (const n of t.nodes) if (!n.split && new Set(n.votes.map((v) => v.target)).size !== e.nTargets) return false;
  return true;
}

/** Newton steps on the logloss of sigmoid(raw + b) against 0/1 labels, from b. */
function fitLogisticBias(raw: Float64Array, labels: Float32Array, b0: number): number {
  let b = b0;
  for (let it = 0; it < 50; it++) {
    let g = 0, h = 0;
    for (let r = 0; r < raw.length; r++) {
      const p = 1 / (1 + Math.exp(-(raw[r] + b)));
      g += p - labels[r];
      h += p * (1 - p);
    }
    if (!(h > 1e-12)) break;
    // damped: a separable set would send b to infinity
    const step = Math.max(-5, Math.min(5, g / h));
    b -= step;
    if (Math.abs(step) < 1e-9) break;
  }
  return b;
}

/**
 * Binary classifier with LOGISTIC whose leaves vote for class 0 only (the skl2onnx / onnxmltools
 * layout: ORT outputs [1-p, p], p = sigmoid(sum + base_values[0])): re-fits base_values[0] by
 * maximum likelihood on the rows. Checked against our evaluator; on any other layout nothing
 * changes and false is returned.
 */
function refitClassifierBase(e: TreeEnsemble, data: LabeledRows, notes: string[]): boolean {
  if (e.op !== 'TreeEnsembleClassifier' || e.nTargets !== 2 || e.postTransform !== 'LOGISTIC' || e.aggregate !== 'SUM' || e.baseValues.length > 1) return false;
  if (!isBinary(data.labels)) return false;
  const classes = new Set<number>();
  for (const t of e.trees) for (const n of t.nodes) for (const v of n.votes) classes.add(v.target);
  if (classes.size !== 1 || !classes.has(0)) return false;
  const n = data.X.rows;
  const raw = new Float64Array(n);
  for (const t of e.trees) {
    for (let r = 0; r < n; r++) for (const v of t.nodes[leafIndex(t, data.X, r, e.double)].votes) raw[r] += v.value;
  }
  const before = e.baseValues.slice();
  const b = fitLogisticBias(raw, data.labels, before[0] ?? 0);
  e.baseValues = [e.double ? b : Math.fround(b)];
  // the layout check: the positive column must be sigmoid(raw + b)
  const p = singleScore(e, evaluateTreeEnsemble(e, data.X));
  for (let r = 0; r < Math.min(n, 64); r++) {
    if (Math.abs(p[r] - 1 / (1 + Math.exp(-(raw[r] + e.baseValues[0])))) > 1e-4) {
      e.baseValues = before;
      return false;
    }
  }
  notes.push(`base value re-fitted by maximum likelihood on the ${n} tuning rows (binary LOGISTIC classifier: p = sigmoid(sum + base))`);
  return true;
}

/**
 * Re-fits base_values[0] of a single-target regressor on the validation data: by logloss when
 * labels are 0/1 and the output is a margin (SUM, no transform, outputs outside [0, 1]), else by
 * least squares (mean residual).
 */
function refitBase(e: TreeEnsemble, data: LabeledRows, notes: string[]): void {
  if (refitClassifierBase(e, data, notes)) return;
  if (e.op !== 'TreeEnsembleRegressor' || e.nTargets !== 1 || e.postTransform !== 'NONE') {
    notes.push(
      `base value not re-fitted: supported are single-target TreeEnsembleRegressor with post_transform NONE and binary LOGISTIC TreeEnsembleClassifier voting on class 0 with at most one base value (this is ${e.op}, ${e.postTransform})`,
    );
    return;
  }
  const base = e.baseValues[0] ?? 0;
  const out = singleScore(e, evaluateTreeEnsemble(e, data.X));
  const n = out.length;
  const raw = new Float64Array(n);
  let outside = false;
  for (let r = 0; r < n; r++) {
    raw[r] = out[r] - base;
    if (out[r] < 0 || out[r] > 1) outside = true;
  }
  let b = base;
  if (isBinary(data.labels) && e.aggregate === 'SUM' && outside) {
    b = fitLogisticBias(raw, data.labels, b);
    notes.push('base value re-fitted by logloss (the output is a logit margin)');
  } else {
    let s = 0;
    for (let r = 0; r < n; r++) s += data.labels[r] - out[r];
    b += s / n;
    notes.push('base value re-fitted by least squares (mean residual)');
  }
  e.baseValues = [Math.fround(b)];
}

export interface FeaturePruneOptions {
  /** fraction of the input features to remove, least important first */
  fraction?: number;
  /** or: exactly these features */
  features?: number[];
  /** input width (default: highest feature used + 1) */
  nFeatures?: number;
  /** ranks by permutation importance on it; decides majority children when no cover is recorded; scores the result */
  data?: LabeledRows;
  /** permutation repeats (default 5) */
  repeats?: number;
}

/** Removes the least important features: their splits collapse to the majority child. */
export function pruneFeatures(e0: TreeEnsemble, opts: FeaturePruneOptions): TreePruneResult {
  const { importance, rankedBy } = featureImportance(e0, { features: opts.nFeatures, data: opts.data?.X, labels: opts.data?.labels, repeats: opts.repeats });
  let remove: number[];
  if (opts.features) remove = opts.features.slice();
  else {
    const f = opts.fraction ?? 0;
    if (!(f >= 0 && f < 1)) throw new Error(`feature fraction must be in [0, 1), got ${f}`);
    const k = Math.round(f * importance.length);
    remove = importance.slice(importance.length - k).map((x) => x.feature);
  }
  remove.sort((a, b) => a - b);
  const used = usedFeatures(e0);
  if (remove.length > 0 && !remove.some((f) => used.has(f))) {
    throw new Error(
      `nothing to prune: the ${remove.length} lowest-ranked feature${remove.length === 1 ? '' : 's'} (${remove.map((f) => `f${f}`).join(', ')}) ${remove.length === 1 ? 'is' : 'are'} already unused; ` +
        `the trees read ${used.size} of ${importance.length} features: ask for a larger fraction`,
    );
  }
  const { ensemble, majorityBy, replacedSplits } = collapseFeatures(e0, remove, opts.data?.X);
  const out = finish(ensemble, size(e0), replacedSplits, [`features ranked by ${rankedBy}${rankedBy === 'permutation' ? ' (metric drop when the column is shuffled)' : ''}`], {
    removedFeatures: remove,
    becameUnused: remove.filter((f) => used.has(f)),
    alreadyUnused: importance.filter((x) => x.splits === 0).map((x) => x.feature).sort((a, b) => a - b),
    majorityBy,
  });
  if (opts.data) {
    const b = ensembleMetric(e0, opts.data);
    out.validation = { metric: b.metric, before: b.value, after: ensembleMetric(out.ensemble, opts.data).value };
  }
  return out;
}
