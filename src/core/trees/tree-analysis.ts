// What a tree ensemble is made of: trees, nodes, depth and leaf histograms, per-feature
// importance (split count, cover, cover-weighted gain, and output change on a dataset), unused
// features, and the quirks ORT has with some attribute combinations.

import { evaluateTreeEnsemble, singleScore, type FeatureMatrix } from './tree-eval.js';
import { collapseFeatures } from './tree-collapse.js';
import { ensembleMetric, type TreeMetric } from './tree-metric.js';
import { countNodes, maxFeature, nodeDepths, reachableNodes, type TreeEnsemble } from './tree-model.js';
import { mulberry32 } from '../samples/prng.js';

export interface FeatureImportance {
  feature: number;
  /** number of splits on the feature */
  splits: number;
  /** sum of the cover of those splits (when the file records cover) */
  cover?: number;
  /**
   * Sum over its splits of cL*vL^2 + cR*vR^2 - c*v^2, where v is the cover-weighted mean of the
   * leaves under a node: the reduction of squared output spread the split makes (when cover is
   * recorded). For a GBDT this is proportional to the usual split gain on the training data.
   */
  gain?: number;
  /** with a dataset: mean |change| of the score (summed over the outputs of a multi-output ensemble) when the feature's splits collapse to their majority child */
  outputChange?: number;
  /**
   * with labelled data: permutation importance, the metric drop (AUC points for 0/1 labels,
   * accuracy of a multi-class classifier, RMSE increase otherwise) when the feature's column is
   * shuffled among the rows; mean over repeats
   */
  permutation?: number;
  /** standard deviation of the drop over the repeats */
  permutationSpread?: number;
  /** 1 = most important */
  rank: number;
}

export interface PermutationSettings {
  metric: TreeMetric;
  repeats: number;
  seed: number;
  rows: number;
  /** the metric of the unshuffled data */
  baseline: number;
}

export interface Histogram {
  /** value -> number of trees with that value */
  [value: number]: number;
}

export interface TreeEnsembleAnalysis {
  op: TreeEnsemble['op'];
  trees: number;
  nodes: number;
  leaves: number;
  targets: number;
  postTransform: TreeEnsemble['postTransform'];
  aggregate: TreeEnsemble['aggregate'];
  double: boolean;
  hasCover: boolean;
  baseValues: number[];
  nodesPerTree: { min: number; mean: number; max: number };
  depth: { min: number; mean: number; max: number; histogram: Histogram };
  leavesPerTree: { min: number; mean: number; max: number; histogram: Histogram };
  /** input width: given by the model's input shape, else highest feature used + 1 */
  features: number;
  /** by rank; how it was ranked */
  importance: FeatureImportance[];
  rankedBy: 'permutation' | 'outputChange' | 'gain' | 'splits';
  /** with labelled data: how permutation importance was measured */
  permutation?: PermutationSettings;
  unusedFeatures: number[];
  /** unreachable nodes (in the file but no path from the root) */
  unreachableNodes: number;
  notes: string[];
}

function stats(xs: number[]): { min: number; mean: number; max: number } {
  if (!xs.length) return { min: 0, mean: 0, max: 0 };
  let min = Infinity, max = -Infinity, sum = 0;
  for (const x of xs) {
    min = Math.min(min, x);
    max = Math.max(max, x);
    sum += x;
  }
  return { min, mean: sum / xs.length, max };
}

function histogram(xs: number[]): Histogram {
  const h: Histogram = {};
  for (const x of xs) h[x] = (h[x] ?? 0) + 1;
  return h;
}

/**
 * Cover-weighted gain of each feature's splits, summed over the ensemble's targets: for each
 * target, the split's reduction of the sum of squares of the leaf values under it (cover x value
 * summed bottom-up). With one target (a GBDT, a regressor) it is proportional to the usual split
 * gain; with a forest's class votes (probabilities that add up to 1 at every leaf) it is the Gini
 * impurity decrease, scikit-learn's feature_importances_ before normalisation. Summed over the
 * classes first, a forest's leaves all held 1 and every gain was rounding noise (~1e-14).
 */
function splitGains(e: TreeEnsemble): Map<number, number> {
  const gains = new Map<number, number>();
  for (const t of e.trees) {
    const order = reachableNodes(t);
    let targets = 1;
    for (const n of t.nodes) for (const vt of n.votes) targets = Math.max(targets, vt.target + 1);
    const c = new Float64Array(t.nodes.length);
    const s = new Float64Array(t.nodes.length * targets);
    const v = (k: number) => {
      if (!(c[k] > 0)) return 0;
      let q = 0;
      for (let j = 0; j < targets; j++) q += s[k * targets + j] * s[k * targets + j];
      return q / c[k];
    };
    for (let j = order.length - 1; j >= 0; j--) {
      const i = order[j];
      const n = t.nodes[i];
      if (n.split) {
        const a = n.split.trueChild;
        const b = n.split.falseChild;
        c[i] = c[a] + c[b];
        for (let k = 0; k < targets; k++) s[i * targets + k] = s[a * targets + k] + s[b * targets + k];
        const g = v(a) + v(b) - v(i);
        gains.set(n.split.feature, (gains.get(n.split.feature) ?? 0) + Math.max(0, g));
      } else {
        c[i] = n.cover ?? 0;
        for (const vt of n.votes) s[i * targets + vt.target] += c[i] * vt.value;
      }
    }
  }
  return gains;
}

export interface AnalyzeTreesOptions {
  /** input width when known (the model input's second dimension) */
  features?: number;
  /** for output-change importance (and permutation importance with `labels`) */
  data?: FeatureMatrix;
  /** labels of `data`: importance is then ranked by permutation (metric drop when a column is shuffled) */
  labels?: Float32Array;
  /** permutation repeats (default 5) and seed (default 1) */
  repeats?: number;
  seed?: number;
}


/** Higher is better: the ensemble's validation metric (tree-metric.ts), RMSE negated. */
function goodness(e: TreeEnsemble, X: FeatureMatrix, labels: Float32Array): { metric: TreeMetric; value: number } {
  const m = ensembleMetric(e, { X, labels });
  return { metric: m.metric, value: m.metric === 'rmse' ? -m.value : m.value };
}

/** The outputs a feature's removal is measured on: the one score per row, or every output of a multi-output ensemble. */
function outputsOf(e: TreeEnsemble, X: FeatureMatrix): Float32Array {
  const out = evaluateTreeEnsemble(e, X);
  return out.columns === 1 || (e.op === 'TreeEnsembleClassifier' && out.columns === 2) ? singleScore(e, out) : out.scores;
}

/**
 * Permutation importance on labelled rows: for every feature some split uses, the metric drop when
 * that column is shuffled among the rows (seeded), `repeats` times; mean and standard deviation.
 * Features no split uses get 0 (shuffling cannot change the output).
 */
export function permutationImportance(
  e: TreeEnsemble,
  X: FeatureMatrix,
  labels: Float32Array,
  opts: { repeats?: number; seed?: number; features?: number } = {},
): { drops: Array<{ mean: number; spread: number; runs: number[] }>; settings: PermutationSettings } {
  if (labels.length !== X.rows) throw new Error(`${labels.length} labels for ${X.rows} rows`);
  const repeats = Math.max(1, Math.floor(opts.repeats ?? 5));
  const seed = opts.seed ?? 1;
  const { metric, value: baseline } = goodness(e, X, labels);
  const features = Math.max(opts.features ?? 0, maxFeature(e) + 1);
  const used = new Set<number>();
  for (const t of e.trees) for (const i of reachableNodes(t)) {
    const s = t.nodes[i].split;
    if (s) used.add(s.feature);
  }
  const rand = mulberry32(seed);
  const F = X.features;
  const work = new Float32Array(X.data);
  const Xw: FeatureMatrix = { data: work, rows: X.rows, features: F };
  const perm = new Int32Array(X.rows);
  const drops: Array<{ mean: number; spread: number; runs: number[] }> = [];
  for (let f = 0; f < features; f++) {
    if (!used.has(f)) {
      drops.push({ mean: 0, spread: 0, runs: [] });
      continue;
    }
    const runs: number[] = [];
    for (let k = 0; k < repeats; k++) {
      for (let i = 0; i < X.rows; i++) perm[i] = i;
      for (let i = X.rows - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        const t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
      }
      for (let i = 0; i < X.rows; i++) work[i * F + f] = X.data[perm[i] * F + f];
      runs.push(baseline - goodness(e, Xw, labels).value);
    }
    for (let i = 0; i < X.rows; i++) work[i * F + f] = X.data[i * F + f];
    const mean = runs.reduce((a, b) => a + b, 0) / runs.length;
    const spread = runs.length > 1 ? Math.sqrt(runs.reduce((a, b) => a + (b - mean) * (b - mean), 0) / (runs.length - 1)) : 0;
    drops.push({ mean, spread, runs });
  }
  return { drops, settings: { metric, repeats, seed, rows: X.rows, baseline: metric === 'rmse' ? -baseline : baseline } };
}

export function featureImportance(
  e: TreeEnsemble,
  opts: AnalyzeTreesOptions = {},
): { importance: FeatureImportance[]; rankedBy: TreeEnsembleAnalysis['rankedBy']; features: number; permutation?: PermutationSettings } {
  const features = Math.max(opts.features ?? 0, maxFeature(e) + 1);
  const imp: FeatureImportance[] = [];
  for (let f = 0; f < features; f++) imp.push({ feature: f, splits: 0, rank: 0, ...(e.hasCover ? { cover: 0, gain: 0 } : {}) });
  for (const t of e.trees) {
    for (const i of reachableNodes(t)) {
      const s = t.nodes[i].split;
      if (!s) continue;
      imp[s.feature].splits++;
      if (e.hasCover) imp[s.feature].cover = (imp[s.feature].cover ?? 0) + (t.nodes[i].cover ?? 0);
    }
  }
  if (e.hasCover) for (const [f, g] of splitGains(e)) imp[f].gain = g;
  let rankedBy: TreeEnsembleAnalysis['rankedBy'] = e.hasCover ? 'gain' : 'splits';
  if (opts.data) {
    rankedBy = 'outputChange';
    const base = outputsOf(e, opts.data);
    const rows = opts.data.rows;
    for (const fi of imp) {
      if (fi.splits === 0) {
        fi.outputChange = 0;
        continue;
      }
      const pruned = collapseFeatures(e, [fi.feature], opts.data).ensemble;
      const s = outputsOf(pruned, opts.data);
      let sum = 0;
      for (let r = 0; r < s.length; r++) sum += Math.abs(s[r] - base[r]);
      fi.outputChange = rows ? sum / rows : 0;
    }
  }
  let permutation: PermutationSettings | undefined;
  if (opts.data && opts.labels) {
    rankedBy = 'permutation';
    const p = permutationImportance(e, opts.data, opts.labels, { repeats: opts.repeats, seed: opts.seed, features });
    permutation = p.settings;
    for (const fi of imp) {
      fi.permutation = p.drops[fi.feature].mean;
      fi.permutationSpread = p.drops[fi.feature].spread;
    }
  }
  const key = (x: FeatureImportance): number[] =>
    rankedBy === 'permutation'
      ? [x.permutation ?? 0, x.outputChange ?? 0, x.gain ?? 0, x.splits]
      : rankedBy === 'outputChange' ? [x.outputChange ?? 0, x.gain ?? 0, x.splits] : rankedBy === 'gain' ? [x.gain ?? 0, x.splits] : [x.splits];
  const sorted = imp.slice().sort((a, b) => {
    const ka = key(a), kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return kb[i] - ka[i];
    return a.feature - b.feature;
  });
  sorted.forEach((x, i) => (x.rank = i + 1));
  return { importance: sorted, rankedBy, features, ...(permutation ? { permutation } : {}) };
}

/** Without labels the ranking is never by permutation (the shape the editor's protocol knows). */
export function analyzeTreeEnsemble(
  e: TreeEnsemble,
  opts?: AnalyzeTreesOptions & { labels?: undefined },
): TreeEnsembleAnalysis & { rankedBy: Exclude<TreeEnsembleAnalysis['rankedBy'], 'permutation'> };
export function analyzeTreeEnsemble(e: TreeEnsemble, opts?: AnalyzeTreesOptions): TreeEnsembleAnalysis;
export function analyzeTreeEnsemble(e: TreeEnsemble, opts: AnalyzeTreesOptions = {}): TreeEnsembleAnalysis {
  const perTree = e.trees.map((t) => {
    const r = reachableNodes(t);
    const d = nodeDepths(t);
    let depth = 0, leaves = 0;
    for (const i of r) {
      depth = Math.max(depth, d[i]);
      if (!t.nodes[i].split) leaves++;
    }
    return { nodes: r.length, depth, leaves, unreachable: t.nodes.length - r.length };
  });
  const { nodes, leaves } = countNodes(e);
  const { importance, rankedBy, features, permutation } = featureImportance(e, opts);
  const notes: string[] = [];
  if (e.op === 'TreeEnsemble' && e.nTargets > 1 && (e.postTransform === 'SOFTMAX' || e.postTransform === 'LOGISTIC')) {
    notes.push(`post_transform ${e.postTransform} of a TreeEnsemble (opset 5): ONNX Runtime applies ${e.postTransform === 'SOFTMAX' ? 'LOGISTIC' : 'SOFTMAX'} (it numbers the enum differently from the ONNX spec); scores here follow ONNX Runtime`);
  }
  if (e.op !== 'TreeEnsembleClassifier' && e.nTargets === 1 && (e.postTransform === 'LOGISTIC' || e.postTransform.startsWith('SOFTMAX'))) {
    notes.push(`post_transform ${e.postTransform} on a single-target ${e.op} is ignored by ONNX Runtime (only PROBIT applies): the output is the raw score`);
  }
  if (!e.hasCover) {
    notes.push(
      `${e.constantHitrate !== undefined ? `nodes_hitrates is ${e.constantHitrate} on every node (a constant, as skl2onnx writes it), so it is no cover` : 'no cover (nodes_hitrates) recorded'}: ` +
        'collapsed subtrees get the plain mean of their leaves, a removed feature keeps the child most --data rows take, and importance is by split count (or by permutation with --data)',
    );
  }
  const unreachable = perTree.reduce((a, p) => a + p.unreachable, 0);
  if (unreachable) notes.push(`${unreachable} nodes cannot be reached from their tree's root: any rewrite drops them`);
  return {
    op: e.op,
    trees: e.trees.length,
    nodes,
    leaves,
    targets: e.nTargets,
    postTransform: e.postTransform,
    aggregate: e.aggregate,
    double: e.double,
    hasCover: e.hasCover,
    baseValues: e.baseValues.slice(),
    nodesPerTree: stats(perTree.map((p) => p.nodes)),
    depth: { ...stats(perTree.map((p) => p.depth)), histogram: histogram(perTree.map((p) => p.depth)) },
    leavesPerTree: { ...stats(perTree.map((p) => p.leaves)), histogram: histogram(perTree.map((p) => p.leaves)) },
    features,
    importance,
    rankedBy,
    ...(permutation ? { permutation } : {}),
    unusedFeatures: importance.filter((x) => x.splits === 0).map((x) => x.feature).sort((a, b) => a - b),
    unreachableNodes: unreachable,
    notes,
  };
}
