// The extension's settings (documented in package.json contributes.configuration), read in one place.

import * as vscode from 'vscode';

export type BackendPreference = 'auto' | 'tfjs-node' | 'webgpu' | 'wasm' | 'cpu';

export interface PruneScopeSettings {
  nearZeroEpsilon: number;
  /** candidates CSV (user,item,label) for HR@K / NDCG@K / AUC; '' = none */
  datasetPath: string;
  defaultK: number;
  backend: BackendPreference;
  outputPattern: string;
  measureLatency: boolean;
  /** training interactions CSV (user,item[,label]) for fine-tuning and distillation; '' = none */
  trainingDataPath: string;
  /** wall-clock minutes a Compress to Target search may take */
  compressBudgetMinutes: number;
  /** share of the candidates' users a Compress to Target search holds out of its choice (0: none) */
  compressHoldout: number;
}

const BACKENDS: readonly BackendPreference[] = ['auto', 'tfjs-node', 'webgpu', 'wasm', 'cpu'];

export function readSettings(scope?: vscode.Uri): PruneScopeSettings {
  const c = vscode.workspace.getConfiguration('prunescope', scope);
  const backend = c.get<string>('backend', 'auto');
  const k = c.get<number>('defaultK', 10);
  return {
    nearZeroEpsilon: c.get<number>('nearZeroEpsilon', 1e-6),
    datasetPath: c.get<string>('datasetPath', '').trim(),
    defaultK: Number.isInteger(k) && k > 0 ? k : 10,
    backend: (BACKENDS as readonly string[]).includes(backend) ? (backend as BackendPreference) : 'auto',
    outputPattern: c.get<string>('outputPattern', '${dir}/${stem}-${method}') || '${dir}/${stem}-${method}',
    measureLatency: c.get<boolean>('measureLatency', true),
    trainingDataPath: c.get<string>('trainingDataPath', '').trim(),
    compressBudgetMinutes: positive(c.get<number>('compressBudgetMinutes', 10), 10),
    compressHoldout: holdoutShare(c.get<number>('compressHoldout', 0)),
  };
}

/** A holdout share in [0, 0.9]; anything else is none. */
const holdoutShare = (n: number): number => (typeof n === 'number' && n > 0 && n <= 0.9 ? n : 0);

const positive = (n: number, fallback: number): number => (typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : fallback);

/** The dataset path resolved against the first workspace folder; undefined when unset. */
export function datasetFile(settings: PruneScopeSettings): string | undefined {
  return workspaceFile(settings.datasetPath);
}

/** The training interactions path resolved against the first workspace folder; undefined when unset. */
export function trainingDataFile(settings: PruneScopeSettings): string | undefined {
  return workspaceFile(settings.trainingDataPath);
}

function workspaceFile(p: string): string | undefined {
  if (!p) return undefined;
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (p.startsWith('/') || /^[a-zA-Z]:[\\/]/.test(p) || !folder) return p;
  return vscode.Uri.joinPath(folder.uri, p).fsPath;
}

export const BACKEND_CHOICES = BACKENDS;
