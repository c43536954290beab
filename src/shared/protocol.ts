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
  latency: Array<{ batch: number; p50Before: number; p50After: number; withinNoise: boolean }>;
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
  combined: { hr: number; ndcg: number; drop: number; sparsity: number };
  seconds: number;
}

export interface CompressJobResult {
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
  | { type: 'error'; message: string };

export type WebviewToHost =
  | { type: 'ready' }
  | { type: 'reanalyze' }
  | { type: 'exportJson' }
  | { type: 'exportHtml'; themeVars: Record<string, string>; themeKind: string }
  | { type: 'exportPng'; name: string; dataUrl: string }
  | { type: 'runAction'; action: FindingAction }
  | { type: 'revealOutput' }
  | { type: 'applyProposal' }
  | { type: 'revealTensor'; tensor: string };

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
    case 'runAction': {
      const a = o.action;
      if (typeof a !== 'object' || a === null) return undefined;
      const { kind, target } = a as { kind?: unknown; target?: unknown };
      if (typeof kind !== 'string' || !OPPORTUNITY_KINDS.has(kind) || !isShortString(target)) return undefined;
      return { type, action: { kind: kind as OpportunityKind, target } };
    }
    default:
      return undefined;
  }
}
