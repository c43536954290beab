// The typed message protocol between the extension host and the analysis panel (webview), and
// the JSON results of jobs that the panel renders. The webview imports only this file and
// report.ts. Every message from the webview is checked by `parseWebviewMessage` before the host
// acts on it: a webview is untrusted input.

import type { ModelReport, OpportunityKind, ReportFormat } from './report.js';

/** The cheap look at a model the models tree shows (no statistics beyond exact zeros). */
export interface ModelScan {
  format: ReportFormat;
  path: string;
  fileBytes: number;
  totalParams: number;
  trainableParams: number;
  /** exact zeros among trainable params */
  zeros: number;
  tensors: number;
  /** names of the tensors the model's layers hold, largest first (at most 8) */
  largest: Array<{ name: string; params: number }>;
  /** ONNX files with ai.onnx.ml tree-ensemble nodes: their trees, all nodes together (absent otherwise) */
  trees?: number;
}

/** A before/after pair; null where a side could not be measured. */
export interface MetricPair {
  before: number | null;
  after: number | null;
}

/** The before/after comparison of a compression job, JSON-safe (no NaN, no undefined values in arrays). */
export interface ComparisonView {
  k: number;
  params: MetricPair;
  bytes: MetricPair;
  gzipBytes: MetricPair;
  hr?: MetricPair;
  ndcg?: MetricPair;
  auc?: MetricPair;
  /** p50 latency per batch size, ms */
  /** `pairedRatio`: after / before in paired (alternating) calls, which decide `withinNoise` */
  latency: Array<{ batch: number; p50Before: number; p50After: number; withinNoise: boolean; pairedRatio?: number }>;
  /** what ran the models ('onnxruntime-node cpu', 'tfjs wasm'...), when they were run */
  runtime?: string;
  /** the dataset the accuracy figures come from */
  dataset?: string;
  /** plain sentences for the report */
  summary: string[];
}

export interface TensorChangeView {
  tensor: string;
  action: string;
  beforeShape: number[];
  beforeBytes: number;
  after: Array<{ name: string; shape: number[]; bytes: number }>;
}

/** Accuracy against how hard one layer is compressed (one curve per layer). */
export interface SensitivityCurve {
  layer: string;
  metric: string;
  points: Array<{ amount: number; value: number }>;
}

/** A sensitivity study: each tensor pruned alone at several sparsities, the metric measured. */
export interface SensitivityView {
  model: string;
  metric: 'ndcg' | 'hr';
  k: number;
  /** largest relative drop allowed per tensor */
  budget: number;
  baseline: { hr: number; ndcg: number };
  curves: SensitivityCurve[];
  /** per-tensor sparsities proposed (checked together) */
  proposal: Record<string, number>;
  /** per tensor, the sparsity that kept the budget when pruned alone (before scaling back) */
  alone?: Record<string, number>;
  /** how many times the targets were scaled back (x0.75 each) to meet the budget together */
  backoffs?: number;
  combined: { hr: number; ndcg: number; drop: number; sparsity: number };
  seconds: number;
}

/** What a training step (finetune, distill) ran on, for reports and `--json`. */
export interface TrainingView {
  method: string;
  /** the TF.js backend ('wasm', 'webgpu', ...) */
  backend: string;
  /** 'compiled' (tables outside the wasm heap, row-wise lazy Adam) or 'tape' (TF.js autodiff) */
  engine: 'compiled' | 'tape';
  /** probability, logit or rating, and why */
  outputKind: string;
  outputKindReason: string;
  samplesPerSecond: number;
  seconds: number;
  losses: number[];
}

export interface CompressJobResult {
  /** one entry per training step of the job, in order */
  training?: TrainingView[];
  method: string;
  settings: Record<string, unknown>;
  original: string;
  output: string;
  outputFiles: string[];
  changes: TensorChangeView[];
  notes: string[];
  comparison: ComparisonView;
  before: ModelReport;
  after: ModelReport;
  seconds: number;
}

/** Accuracy figures of one model on candidates (AUC null when the labels cannot give one). */
export interface PlanMetrics {
  ndcg: number;
  hr: number;
  auc: number | null;
}

/** One candidate of the compress-to-target search (core/compress/plan/planner.ts). */
export interface PlanPointView {
  id: string;
  /** what each unit got, e.g. "item_emb=r0.9+int4 dense=int8" */
  label: string;
  origin: 'single' | 'combined' | 'refined' | 'finetuned' | 'distilled';
  bytes: number;
  /** original bytes / bytes */
  ratio: number;
  metrics: PlanMetrics;
  /**
   * the share of the original's metric the search chose by, on the choosing users: for NDCG and
   * HR the expected figure (every candidate item standing in for the positive, weighted by the original's calibrated scores), for AUC the
   * measured figure
   */
  kept: number;
  /** the measured metric / the original's, on the same users (NDCG and HR) */
  keptMeasured?: number;
  /** standard error of `kept` (paired per user with the original; absent or 0 for AUC) */
  keptSe?: number;
  users: number;
  latency?: { p50Ms: number; ratio: number; slower: boolean };
  heldOut?: PlanMetrics & { kept: number };
  /** the steps that reproduce this model from the original (a recipe's `steps`) */
  recipe: Array<{ method: string; settings: Record<string, unknown> }>;
}

/** The result of a compress-to-target search: the front, the choice and how they were found. */
export interface PlanView {
  model: string;
  candidates: string;
  metric: 'ndcg' | 'hr' | 'auc';
  k: number;
  budget: { maxDrop?: number; targetRatio?: number; maxLatencyRatio?: number; confidence?: number };
  /** what `kept` is: the expected figure ('expected') or the measured metric */
  chooseBy?: 'expected' | 'measured';
  baseline: { bytes: number; metrics: PlanMetrics; users: number; latencyP50Ms?: number; heldOut?: PlanMetrics };
  chosen: PlanPointView;
  withinBudget: boolean;
  reason: string;
  /** non-dominated in size x metric, smallest first */
  front: PlanPointView[];
  /** every fine-tuned or distilled candidate, on the front or not */
  trained: PlanPointView[];
  /** distinct candidate models evaluated */
  evaluated: number;
  seconds: number;
  budgetMinutes: number;
  stoppedAtBudget: boolean;
  /** `budgetEnded`: the time budget ended the phase (before it started when it made no candidate) */
  phases: Array<{ name: string; candidates: number; seconds: number; budgetEnded?: boolean }>;
  sensitivity: Array<{ unit: string; option: string; bytes: number; kept: number }>;
  judgedOn?: string;
  /**
   * present when the original ranks the choosing users' candidates no better than chance: its
   * metric, and that of a random order of each user's candidates, mean and standard deviation
   * (exact: eval/metrics.ts chanceRanking); within 3 of them, every figure is noise
   */
  atChance?: { original: number; mean: number; sd: number };
  notes: string[];
  /** where the chosen model was written, when it was */
  output?: string;
}

/**
 * The front as the compress table and the editor show it: with the chosen model in its place by
 * size where it is off the front (under a latency cap, a faster one than those that dominate it).
 */
export function frontRows(plan: Pick<PlanView, 'front' | 'chosen'>): PlanPointView[] {
  return plan.front.some((p) => p.id === plan.chosen.id) ? plan.front : [...plan.front, plan.chosen].sort((a, b) => a.bytes - b.bytes);
}

/**
 * One finished job, as kept in the workspace's run history (`.prunescope/runs/<id>.json`): what
 * went in, what came out and how it measured. Never a copy of a model.
 */
export interface RunRecord {
  /** schema version of this record */
  version: 1;
  /** unique and sortable: ISO time of the start + a short random suffix, e.g. 20261206T112233Z-3f9a */
  id: string;
  kind: 'compress' | 'compress-plan' | 'tree-remove' | 'tree-features' | 'compare';
  /** e.g. "prune-magnitude + quantize", "compress to target" */
  title: string;
  /** the input model, relative to the workspace folder when inside it */
  model: string;
  /** the files written (relative like `model`); empty when nothing was kept */
  outputs: string[];
  /** the steps that made the output (a recipe's `steps`), when a compression ran */
  recipe?: Array<{ method: string; settings: Record<string, unknown> }>;
  /** the candidates / data files the figures were measured on */
  dataset?: string;
  startedAt: string;
  seconds: number;
  /** TF.js backend / ORT execution provider that ran the work, when known */
  backend?: string;
  bytes: { before: number; after: number };
  params?: { before: number; after: number };
  /** accuracy on `dataset` when measured, K for HR/NDCG */
  k?: number;
  ndcg?: { before: number | null; after: number | null };
  hr?: { before: number | null; after: number | null };
  auc?: { before: number | null; after: number | null };
  /** a tree removal's held-out figure when it is not AUC: accuracy of the predicted class (multi-class classifiers), RMSE (regressors) */
  accuracy?: { before: number; after: number };
  rmse?: { before: number; after: number };
  /** p50 ms per batch size, when measured */
  latency?: Array<{ batch: number; p50Before: number; p50After: number; withinNoise?: boolean; pairedRatio?: number }>;
  /** gzip size of every file, when measured (pruning's zeros shrink only this) */
  gzipBytes?: { before: number; after: number };
  /** a compress-to-target run: its front (size x the measured share of the metric kept), for the side-by-side view */
  front?: Array<{ bytes: number; kept: number; label: string }>;
}

/** A suggestion the panel can turn into a job (same actions as the quick fixes in model.json). */
export interface FindingAction {
  kind: OpportunityKind;
  /** tensor or layer name */
  target: string;
}

export type HostToWebview =
  | { type: 'loading'; path: string }
  | { type: 'progress'; fraction: number; phase: string; detail?: string }
  | { type: 'report'; report: ModelReport; backend?: string; actions?: OpportunityKind[] }
  | { type: 'comparison'; result: CompressJobResult }
  | { type: 'sensitivity'; result: SensitivityView }
  | { type: 'trees'; result: TreesView }
  /** a compress-to-target search: its front and the chosen point (marked by `result.chosen.id`) */
  | { type: 'plan'; result: PlanView }
  /** runs from the workspace's run history of `model` (workspace-relative), to list or compare side by side */
  | { type: 'history'; model: string; runs: RunRecord[] }
  /** the model's graph with per-node overlays (sent after the report of `graph.model`) */
  | { type: 'graph'; graph: GraphView }
  | { type: 'error'; message: string };

export type WebviewToHost =
  | { type: 'ready' }
  | { type: 'reanalyze' }
  | { type: 'exportJson' }
  | { type: 'exportHtml'; themeVars: Record<string, string>; themeKind: string }
  | { type: 'exportPng'; name: string; dataUrl: string }
  /** `on: 'after'`: a finding of the compressed model the panel shows (its job starts from that file) */
  | { type: 'runAction'; action: FindingAction; on?: 'before' | 'after' }
  | { type: 'revealOutput' }
  | { type: 'applyProposal' }
  | { type: 'revealTensor'; tensor: string }
  /** drop these input features of the tree-ensemble node `node` (their splits collapse) */
  | { type: 'dropTreeFeatures'; node: string; features: number[] }
  /** remove this share of the trees of the tree-ensemble node `node` (chosen on validation rows the host asks for) */
  | { type: 'removeTrees'; node: string; fraction: number }
  /** write the model of this point of the last plan's front (its recipe, replayed from the original) */
  | { type: 'writePlanPoint'; id: string };

const OPPORTUNITY_KINDS: ReadonlySet<string> = new Set<OpportunityKind>([
  'prune-rows',
  'prune-weights',
  'prune-neurons',
  'quantize-int8',
  'quantize-float16',
  'factorize',
  'note',
]);

/** 32 MB of base64 is a 24 MB PNG: far beyond any canvas the panel draws. */
export const MAX_PNG_DATA_URL = 32 * 1024 * 1024;
const PNG_PREFIX = 'data:image/png;base64,';

function isShortString(x: unknown, max = 4096): x is string {
  return typeof x === 'string' && x.length <= max;
}

/** Returns the message if it is well-formed, else undefined (and the host ignores it). */
export function parseWebviewMessage(m: unknown): WebviewToHost | undefined {
  if (typeof m !== 'object' || m === null) return undefined;
  const o = m as Record<string, unknown>;
  const type = o.type;
  switch (type) {
    case 'ready':
    case 'reanalyze':
    case 'exportJson':
    case 'revealOutput':
    case 'applyProposal':
      return { type };
    case 'revealTensor':
      return isShortString(o.tensor) ? { type, tensor: o.tensor } : undefined;
    case 'exportHtml': {
      const vars = o.themeVars;
      if (typeof vars !== 'object' || vars === null || Array.isArray(vars) || !isShortString(o.themeKind, 64)) return undefined;
      const themeVars: Record<string, string> = {};
      const entries = Object.entries(vars as Record<string, unknown>);
      if (entries.length > 2000) return undefined;
      for (const [k, v] of entries) {
        // only CSS custom properties with plain values: they are written into a <style> block
        if (!/^--vscode-[a-zA-Z0-9-]{1,120}$/.test(k) || !isShortString(v, 400) || /[<>{};]/.test(v)) return undefined;
        themeVars[k] = v;
      }
      return { type, themeVars, themeKind: o.themeKind };
    }
    case 'exportPng': {
      const name = o.name;
      const dataUrl = o.dataUrl;
      if (!isShortString(name, 80) || !/^[a-zA-Z0-9._-]+$/.test(name)) return undefined;
      if (typeof dataUrl !== 'string' || dataUrl.length > MAX_PNG_DATA_URL || !dataUrl.startsWith(PNG_PREFIX)) return undefined;
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(dataUrl.slice(PNG_PREFIX.length))) return undefined;
      return { type, name, dataUrl };
    }
    case 'dropTreeFeatures': {
      const f = o.features;
      if (typeof o.node !== 'string' || o.node.length > 1000 || !Array.isArray(f) || f.length === 0 || f.length > 100_000) return undefined;
      if (!f.every((x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) < 2 ** 31)) return undefined;
      return { type, node: o.node, features: (f as number[]).slice() };
    }
    case 'removeTrees': {
      const f = o.fraction;
      if (typeof o.node !== 'string' || o.node.length > 1000 || typeof f !== 'number' || !(f > 0 && f < 1)) return undefined;
      return { type, node: o.node, fraction: f };
    }
    case 'writePlanPoint':
      return typeof o.id === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(o.id) ? { type, id: o.id } : undefined;
    case 'runAction': {
      const a = o.action;
      if (typeof a !== 'object' || a === null) return undefined;
      const { kind, target } = a as { kind?: unknown; target?: unknown };
      if (typeof kind !== 'string' || !OPPORTUNITY_KINDS.has(kind) || !isShortString(target)) return undefined;
      if (o.on !== undefined && o.on !== 'before' && o.on !== 'after') return undefined;
      return { type, action: { kind: kind as OpportunityKind, target }, ...(o.on === 'after' ? { on: 'after' as const } : {}) };
    }
    default:
      return undefined;
  }
}

/** One ai.onnx.ml tree-ensemble node of a model, summarised for the panel (plain JSON). */
export interface TreeEnsembleView {
  /** the node's name ('' when unnamed) */
  node: string;
  op: string;
  trees: number;
  nodes: number;
  leaves: number;
  /** input width (the model input's second dimension, else highest feature used + 1) */
  features: number;
  hasCover: boolean;
  /** [depth, number of trees with it], ascending */
  depthHistogram: Array<[number, number]>;
  /** [leaf count, number of trees with it], ascending */
  leavesHistogram: Array<[number, number]>;
  /** per tree, in file order: reachable depth, leaves and nodes */
  perTree: Array<{ depth: number; leaves: number; nodes: number }>;
  /** most important first */
  importance: Array<{ feature: number; splits: number; cover?: number; gain?: number; rank: number }>;
  rankedBy: 'permutation' | 'outputChange' | 'gain' | 'splits';
  unusedFeatures: number[];
  notes: string[];
}

/** The tree ensembles of an ONNX file (empty when it has none). */
export interface TreesView {
  model: string;
  ensembles: TreeEnsembleView[];
}

/** The result of dropping input features of a tree ensemble (their splits collapse to the majority child). */
export interface TreeFeaturesResult {
  model: string;
  outPath: string;
  node: string;
  removedFeatures: number[];
  /** features some split read before and none reads now */
  becameUnused: number[];
  before: { trees: number; nodes: number; leaves: number; bytes: number };
  after: { trees: number; nodes: number; leaves: number; bytes: number };
}

/**
 * The features a "Drop features" finding proposes: the unused ones and those whose share of the
 * ensemble's importance (gain when recorded, else split count) is below `share`.
 */
export function weakTreeFeatures(e: TreeEnsembleView, share = 0.04): number[] {
  const value = (f: TreeEnsembleView['importance'][number]): number => (e.hasCover ? f.gain ?? 0 : f.splits);
  const total = e.importance.reduce((n, f) => n + value(f), 0);
  return e.importance
    .filter((f) => f.splits === 0 || (total > 0 && value(f) / total < share))
    .map((f) => f.feature)
    .sort((a, b) => a - b);
}

/**
 * The result of removing trees of an ensemble (greedy backward removal chosen on tuning rows).
 * `tuning` is measured on the rows the removal chose on (optimistic); `heldOut` on rows it never saw.
 */
export interface TreeRemovalResult {
  model: string;
  outPath: string;
  node: string;
  /** the validation CSV the rows came from */
  data: string;
  /** how the rows were split, in words (which rows chose, which rows report) */
  selection: string;
  /** the share of the trees asked for */
  fraction: number;
  /** ids of the removed trees (may be fewer than asked: removal stops when the metric would fall beyond the tolerance) */
  droppedTrees: number[];
  baseValues?: { before: number[]; after: number[] };
  /** on the rows the removal chose on: optimistic, never held out */
  tuning: { metric: 'auc' | 'rmse' | 'accuracy'; before: number; after: number; rows: number };
  /** on rows the removal never saw */
  heldOut: { metric: 'auc' | 'rmse' | 'accuracy'; before: number; after: number; rows: number; source: string };
  before: { trees: number; nodes: number; leaves: number; bytes: number };
  after: { trees: number; nodes: number; leaves: number; bytes: number };
  notes: string[];
}

/** Ensembles with at least this many trees get a "Remove N trees" finding (the share is checked on data when run). */
export const TREE_REMOVAL_MIN_TREES = 10;

/**
 * How many trees the "Remove N trees" finding proposes (0: no finding): half of them, for
 * ensembles of {@link TREE_REMOVAL_MIN_TREES} trees or more. Boosted ensembles usually carry many
 * late trees with small corrections; which ones go is chosen on validation rows when it runs.
 */
export function treeRemovalProposal(e: TreeEnsembleView, fraction = 0.5): number {
  return e.trees >= TREE_REMOVAL_MIN_TREES ? Math.min(Math.round(fraction * e.trees), e.trees - 1) : 0;
}

/** Per-node figures the graph view colours by (shares 0..1; null where one means nothing for the node). */
export interface GraphOverlayValues {
  /** share of the model's trainable parameters */
  params: number | null;
  /** exact zeros among its trainable parameters */
  sparsity: number | null;
  /** near-zero rows among the rows of its embedding tables */
  nearZeroRows: number | null;
  /** relative RMSE int8 storage would cause (parameter-weighted over its tensors) */
  int8Error: number | null;
  /** relative metric drop when its tensors were pruned alone (largest sparsity measured) */
  sensitivity: number | null;
}

export type GraphOverlay = keyof GraphOverlayValues;

/** One node of the graph view: an ONNX node (its subgraphs folded in), a TF.js layer or op, or a model input/output. */
export interface GraphViewNode {
  id: string;
  /** node or layer name */
  label: string;
  /** op type or layer class; 'input' / 'output' for the model's own */
  op: string;
  /** the report's tensors this node reads as weights */
  tensors: string[];
  params: number;
  overlay: GraphOverlayValues;
  /** nodes of If/Loop/Scan bodies folded into this one */
  subgraphNodes?: number;
  /** the repeated block this node belongs to (GraphView.groups) */
  group?: string;
}

/** Consecutive blocks with the same ops and wiring, shown as one node until expanded. */
export interface GraphViewGroup {
  id: string;
  /** the ops of one block, e.g. "MatMul → Add → Relu" */
  label: string;
  /** blocks in the run */
  repeat: number;
  /** member node ids, in order */
  nodes: string[];
  params: number;
  overlay: GraphOverlayValues;
}

/** A model's graph for the panel, built from the IR with overlays from the analysis report. */
export interface GraphView {
  model: string;
  format: ReportFormat;
  /** topological order */
  nodes: GraphViewNode[];
  /** [from id, to id], no duplicates */
  edges: Array<[string, string]>;
  groups: GraphViewGroup[];
  /** nodes in the file's graph, subgraph bodies included */
  sourceNodes: number;
  notes: string[];
}
