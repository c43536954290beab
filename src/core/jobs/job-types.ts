// Job specs and the messages between a job's host (extension host or CLI) and its worker thread.
// Results are plain JSON (they cross a worker boundary and end up in a webview).

import type { ModelReport } from '../../shared/report.js';
import type { CompressJobResult, GraphView, ModelScan, PlanView, SensitivityView, TreeFeaturesResult, TreeRemovalResult, TreesView } from '../../shared/protocol.js';

export interface AnalyzeJobSpec {
  kind: 'analyze';
  path: string;
  epsilon?: number;
  spectrum?: boolean;
}

/** A cheap look at a model for lists (tree view): sizes, parameter counts and exact zeros only. */
export interface ScanJobSpec {
  kind: 'scan';
  path: string;
}

/** Which TF.js backend the worker's process would use (the extension host never loads TF.js itself). */
export interface BackendJobSpec {
  kind: 'backend';
  prefer?: 'auto' | 'tfjs-node' | 'webgpu' | 'wasm' | 'cpu';
}

/** The compression methods a compress job can run; each one is a file in src/core/compress/. */
export type CompressMethod =
  | 'prune-magnitude'
  | 'prune-rows'
  | 'prune-dims'
  | 'prune-neurons'
  | 'prune-fields'
  | 'quantize'
  | 'factorize'
  | 'distill'
  | 'finetune';

export const COMPRESS_METHODS: readonly CompressMethod[] = [
  'prune-magnitude',
  'prune-rows',
  'prune-dims',
  'prune-neurons',
  'prune-fields',
  'quantize',
  'factorize',
  'distill',
  'finetune',
];

export interface CompressStep {
  method: CompressMethod;
  settings: Record<string, unknown>;
}

export interface CompressJobSpec {
  kind: 'compress';
  /** the original model (model.json or .onnx); never written to */
  path: string;
  method: CompressMethod;
  /** the method's own settings object (e.g. PruneMagnitudeSettings), checked by the method */
  settings: Record<string, unknown>;
  /**
   * A recipe: methods applied one after the other, each to the previous one's output (in the
   * temp folder). When given, `method`/`settings` name the first step.
   */
  steps?: CompressStep[];
  /** where the compressed model goes: a .onnx file, or model.json inside a folder of its own (TF.js) */
  outPath: string;
  /** replace an existing output (only when the user chose to) */
  overwrite?: boolean;
  /**
   * Folder the model is first written into; renamed into place at the end. The host picks it (in
   * the output's folder, so the rename is on one file system) and removes it if the worker dies.
   */
  tempDir: string;
  /**
   * ONNX: write the output's tensors of 1 KiB or more to `<output>.data` (external data), as big
   * models are shipped and as protobuf's 2 GB limit requires, whatever layout the method wrote.
   */
  externalData?: boolean;
  /** evaluation for the before/after report; omitted = sizes, parameters and analysis only */
  evaluate?: {
    /** candidates CSV (user,item,label) for HR@K / NDCG@K / AUC */
    candidates?: string;
    /**
     * the candidates file is the workspace's default (a setting), not one chosen for this model:
     * when it does not fit the model, the job runs without HR/NDCG and says so, instead of failing
     */
    candidatesFromSetting?: boolean;
    k?: number;
    /** measure latency of both models (default true) */
    latency?: boolean;
  };
  epsilon?: number;
}

/** Runs two existing models side by side (sizes, latency, accuracy on a dataset when given). */
export interface CompareJobSpec {
  kind: 'compare';
  before: string;
  after: string;
  candidates?: string;
  k?: number;
  latency?: boolean;
  epsilon?: number;
}

/** Prunes each tensor alone at several sparsities and measures HR/NDCG on a candidates CSV. */
export interface SensitivityJobSpec {
  kind: 'sensitivity';
  path: string;
  candidates: string;
  k?: number;
  sparsities?: number[];
  budget?: number;
  metric?: 'ndcg' | 'hr';
}

/** Analyses every ai.onnx.ml tree ensemble of an ONNX file (none: an empty list). */
export interface TreesJobSpec {
  kind: 'trees';
  path: string;
}

/** Drops input features of one tree ensemble (splits collapse to the majority child) into a new ONNX file. */
export interface TreeFeaturesJobSpec {
  kind: 'tree-features';
  /** the original model; never written to */
  path: string;
  /** the tree node's name ('' or omitted: the first tree node) */
  node?: string;
  features: number[];
  outPath: string;
  overwrite?: boolean;
  /** written into first, renamed into place at the end (see CompressJobSpec.tempDir) */
  tempDir: string;
}

/**
 * Removes a share of the trees of one tree ensemble into a new ONNX file (greedy backward removal,
 * base value re-fitted): chosen on a seeded half of `data` and reported on the other half, or
 * chosen on all of `data` and reported on `test` (as `prunescope trees --prune drop=F`).
 */
export interface TreeRemovalJobSpec {
  kind: 'tree-remove';
  /** the original model; never written to */
  path: string;
  /** the tree node's name ('' or omitted: the first tree node) */
  node?: string;
  /** validation CSV (f0,...,label) */
  data: string;
  /** optional separate CSV to report on (then all of `data` is used to choose) */
  test?: string;
  /** share of the trees to remove, in (0, 1) */
  fraction: number;
  /** stop when the next removal would lose more than this (metric points); default 0.005 */
  tolerance?: number;
  outPath: string;
  overwrite?: boolean;
  /** written into first, renamed into place at the end (see CompressJobSpec.tempDir) */
  tempDir: string;
}

/**
 * Compress to a target (core/compress/plan/): searches compositions of the methods, keeps the
 * Pareto front and writes the chosen model at outPath. The front's other candidates live only in
 * the temp folder (removed at the end); a front point is written later by a 'compress' job with
 * its recipe as `steps`.
 */
export interface CompressPlanJobSpec {
  kind: 'compress-plan';
  /** the original model; never written to */
  path: string;
  /** validation candidates CSV (user,item,label) */
  candidates: string;
  /** training interactions: row counts, fine-tuned and distilled candidates */
  data?: string;
  /** relative metric drop allowed (0.01 keeps >= 99%); default 0.01 unless targetRatio */
  maxDrop?: number;
  /** original bytes / bytes to reach, most accurate wins (instead of maxDrop) */
  targetRatio?: number;
  /** p50 latency / the original's at most (1: not slower) */
  maxLatencyRatio?: number;
  metric?: 'ndcg' | 'hr' | 'auc';
  k?: number;
  /** wall-clock budget of the search; default 10 */
  budgetMinutes?: number;
  /** share of the candidates' users judged apart */
  holdout?: number;
  /** a separate candidates CSV to judge on */
  test?: string;
  seed?: number;
  outPath: string;
  overwrite?: boolean;
  /** the search's work folder; removed at the end (see CompressJobSpec.tempDir) */
  tempDir: string;
}

/** The model's graph with overlays from its analysis report (read in the worker, never in the extension host). */
export interface GraphJobSpec {
  kind: 'graph';
  path: string;
  report: ModelReport;
}

export type JobSpec =
  | GraphJobSpec
  | CompressPlanJobSpec
  | TreesJobSpec
  | TreeFeaturesJobSpec
  | TreeRemovalJobSpec
  | SensitivityJobSpec
  | AnalyzeJobSpec
  | ScanJobSpec
  | BackendJobSpec
  | CompressJobSpec
  | CompareJobSpec;

export interface BackendInfo {
  backend: string;
  reason: string;
}

export interface JobResultMap {
  graph: GraphView;
  analyze: ModelReport;
  scan: ModelScan;
  backend: BackendInfo;
  compress: CompressJobResult;
  'compress-plan': PlanView;
  compare: CompressJobResult;
  sensitivity: SensitivityView;
  trees: TreesView;
  'tree-features': TreeFeaturesResult;
  'tree-remove': TreeRemovalResult;
}

export interface JobProgress {
  /** e.g. 'reading', 'analysing' */
  phase: string;
  /** 0..1 over the whole job */
  fraction: number;
  /** what is being worked on, e.g. a tensor name */
  detail?: string;
  /** seconds left, estimated from the rate so far; null until known */
  etaSeconds: number | null;
}

export type WorkerToHost =
  | { type: 'progress'; progress: JobProgress }
  | { type: 'result'; result: unknown }
  | { type: 'error'; message: string; cancelled: boolean };

export type HostToWorker = { type: 'start'; spec: JobSpec } | { type: 'cancel' };
