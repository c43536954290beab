// The "PruneScope Models" tree: every TF.js model.json and ONNX file in the workspace, with its
// format, size, parameter count and sparsity. The counts come from a cheap scan in the worker,
// cached per file and modification time; a file watcher keeps the list current.

import { formatBytes } from '../shared/format.js';
import * as vscode from 'vscode';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { ModelScan, RunRecord } from '../shared/protocol.js';
import { runJobWithProgress } from './job-bridge.js';
import { log } from './log.js';
import { allRuns, onDidChangeRuns } from './run-history-host.js';
import { runTreeItem } from './run-items.js';
import { SerialQueue } from './serial-queue.js';
import { RUNS_DIR } from '../core/jobs/run-history.js';
import { workspaceRelative } from '../core/jobs/run-records.js';

export const MODEL_GLOB = '**/{*.onnx,model.json}';
// hidden folders hold work in progress (job temp folders, sensitivity trials), never a user's model
const EXCLUDE_GLOB = '{**/node_modules/**,**/.*/**}';
const CACHE_KEY = 'prunescope.scanCache.v1';

interface CacheEntry {
  mtimeMs: number;
  size: number;
  scan?: ModelScan;
  error?: string;
}

export type ModelNode =
  | { kind: 'model'; uri: vscode.Uri }
  | { kind: 'tensor'; model: vscode.Uri; name: string; params: number; share: number }
  /** the model's run history (newest first) */
  | { kind: 'runs'; model: vscode.Uri; runs: RunRecord[] }
  | { kind: 'run'; model: vscode.Uri; record: RunRecord };

function fmtBytes(n: number): string {
  return formatBytes(n, true);
}

function fmtParams(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return n.toLocaleString('en-US');
}

export function formatLabel(format: string): string {
  return format === 'onnx' ? 'ONNX' : format === 'tfjs-layers' ? 'TF.js layers' : format === 'tfjs-graph' ? 'TF.js graph' : format === 'tfjs-weights' ? 'TF.js weights' : format;
}

export class ModelsTreeProvider implements vscode.TreeDataProvider<ModelNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ModelNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly cache = new Map<string, CacheEntry>();
  private models: vscode.Uri[] = [];
  private listed = false;
  private readonly scans = new SerialQueue<vscode.Uri>(
    (uri) => uri.fsPath,
    (uri) => this.scan(uri),
    {
      afterBatch: () => this.context.workspaceState.update(CACHE_KEY, Object.fromEntries([...this.cache].filter(([k]) => this.models.some((m) => m.fsPath === k)))),
      onError: (uri, e) => log().warn(`models view: ${uri ? `${uri.fsPath}: ` : 'saving the scan cache: '}${e instanceof Error ? e.message : String(e)}`),
    },
  );
  private readonly disposables: vscode.Disposable[] = [];
  private refreshTimer: NodeJS.Timeout | undefined;
  /** run history records by model path */
  private runs = new Map<string, RunRecord[]>();

  constructor(
    private readonly context: vscode.ExtensionContext,
  ) {
    const stored = context.workspaceState.get<Record<string, CacheEntry>>(CACHE_KEY) ?? {};
    for (const [k, v] of Object.entries(stored)) this.cache.set(k, v);
    const watcher = vscode.workspace.createFileSystemWatcher(MODEL_GLOB);
    const onFs = (uri: vscode.Uri) => {
      if (/(^|[\\/])\.[^\\/]+[\\/]/.test(vscode.workspace.asRelativePath(uri, false))) return;
      this.scheduleRefresh();
    };
    watcher.onDidCreate(onFs);
    watcher.onDidChange(onFs);
    watcher.onDidDelete(onFs);
    this.disposables.push(watcher, this.changed, ...this.watchRuns());
  }

  /** Records written by jobs, and files the user deletes or edits in the runs folder. */
  private watchRuns(): vscode.Disposable[] {
    const reload = () => void this.loadRuns().then(() => this.changed.fire(undefined));
    const watcher = vscode.workspace.createFileSystemWatcher(`**/${RUNS_DIR}/*.json`);
    watcher.onDidCreate(reload);
    watcher.onDidChange(reload);
    watcher.onDidDelete(reload);
    return [watcher, onDidChangeRuns(reload)];
  }

  /** Reads every folder's run history and files the records under the listed models. */
  private async loadRuns(): Promise<void> {
    const byModel = new Map<string, RunRecord[]>();
    for (const { folder, runs } of await allRuns()) {
      for (const uri of this.models) {
        if (vscode.workspace.getWorkspaceFolder(uri)?.uri.toString() !== folder.uri.toString()) continue;
        const rel = workspaceRelative(folder.uri.fsPath, uri.fsPath);
        const mine = runs.filter((r) => r.model === rel);
        if (mine.length) byModel.set(uri.fsPath, mine);
      }
    }
    this.runs = byModel;
  }

  /** The runs listed under a model, newest first. */
  runsOf(uri: vscode.Uri): RunRecord[] {
    return this.runs.get(uri.fsPath) ?? [];
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
  }

  /** Re-lists after a burst of file events (a TF.js write renames several files). */
  scheduleRefresh(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void this.refresh(), 300);
  }

  async refresh(): Promise<void> {
    const found = await vscode.workspace.findFiles(MODEL_GLOB, EXCLUDE_GLOB, 2000);
    this.models = found.sort((a, b) => a.fsPath.localeCompare(b.fsPath));
    this.listed = true;
    for (const uri of this.models) void this.ensureScanned(uri);
    await this.loadRuns();
    this.changed.fire(undefined);
  }

  /** The models listed now with their scans (undefined while a scan is pending), for tests and quick picks. */
  async list(): Promise<Array<{ uri: vscode.Uri; scan?: ModelScan; error?: string }>> {
    if (!this.listed) await this.refresh();
    return this.models.map((uri) => ({ uri, scan: this.cache.get(uri.fsPath)?.scan, error: this.cache.get(uri.fsPath)?.error }));
  }

  /** Resolves when every queued scan has finished. */
  whenIdle(): Promise<void> {
    return this.scans.whenIdle();
  }

  private async ensureScanned(uri: vscode.Uri): Promise<void> {
    let st;
    try {
      st = await stat(uri.fsPath);
    } catch {
      return;
    }
    const c = this.cache.get(uri.fsPath);
    if (c && c.mtimeMs === st.mtimeMs && c.size === st.size) return;
    this.scans.push(uri);
  }

  // One scan at a time (the queue): each runs in its own worker, and a workspace may hold many models.
  private async scan(uri: vscode.Uri): Promise<void> {
    let st;
    try {
      st = await stat(uri.fsPath);
    } catch {
      return;
    }
    const r = await runJobWithProgress(this.context.extensionUri, { kind: 'scan', path: uri.fsPath }, { title: `scanning ${basename(uri.fsPath)}`, silent: true, quietErrors: true });
    const entry: CacheEntry = r.ok ? { mtimeMs: st.mtimeMs, size: st.size, scan: r.value } : { mtimeMs: st.mtimeMs, size: st.size, error: r.message };
    if (!r.ok) log().warn(`models view: ${uri.fsPath}: ${r.message}`);
    this.cache.set(uri.fsPath, entry);
    this.changed.fire(undefined);
  }

  getTreeItem(node: ModelNode): vscode.TreeItem {
    if (node.kind === 'run') return runTreeItem(node.record, node.model);
    if (node.kind === 'runs') return runsGroupItem(node.model, node.runs);
    if (node.kind === 'tensor') {
      const item = new vscode.TreeItem(node.name, vscode.TreeItemCollapsibleState.None);
      item.description = `${fmtParams(node.params)} params · ${(node.share * 100).toFixed(1)}%`;
      item.iconPath = new vscode.ThemeIcon('symbol-array');
      item.contextValue = 'prunescope.tensor';
      return item;
    }
    const uri = node.uri;
    const entry = this.cache.get(uri.fsPath);
    const rel = vscode.workspace.asRelativePath(uri, false);
    const isJson = basename(uri.fsPath) === 'model.json';
    const label = isJson ? `${basename(dirname(uri.fsPath))}/model.json` : basename(uri.fsPath);
    const item = new vscode.TreeItem(label, entry?.scan || this.runsOf(uri).length ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    item.resourceUri = uri;
    item.id = uri.toString();
    item.contextValue = isJson ? 'prunescope.model.tfjs' : 'prunescope.model.onnx';
    item.command = { command: 'prunescope.analyzeModel', title: 'Analyze Model', arguments: [uri] };
    if (entry?.scan) {
      const s = entry.scan;
      const sparsity = s.trainableParams ? s.zeros / s.trainableParams : 0;
      item.description = modelDescription(s);
      const md = new vscode.MarkdownString(undefined, true);
      md.appendMarkdown(`**${rel}**\n\n`);
      md.appendMarkdown(`| | |\n|---|---|\n| format | ${formatLabel(s.format)} |${s.trees !== undefined ? `\n| tree ensemble | ${s.trees} trees |` : ''}\n| size on disk | ${fmtBytes(s.fileBytes)} |\n| parameters | ${s.totalParams.toLocaleString('en-US')} (${s.trainableParams.toLocaleString('en-US')} trainable) |\n| exact zeros | ${s.zeros.toLocaleString('en-US')} (${(sparsity * 100).toFixed(2)}%) |\n| tensors | ${s.tensors} |\n`);
      item.tooltip = md;
      item.iconPath = new vscode.ThemeIcon(s.format === 'onnx' ? 'circuit-board' : 'json');
    } else if (entry?.error) {
      item.description = 'not readable';
      item.tooltip = entry.error;
      item.iconPath = new vscode.ThemeIcon('warning');
    } else {
      item.description = 'scanning…';
      item.iconPath = new vscode.ThemeIcon('loading~spin');
    }
    return item;
  }

  getChildren(node?: ModelNode): vscode.ProviderResult<ModelNode[]> {
    if (!node) {
      if (!this.listed) return this.refresh().then(() => this.models.map((uri) => ({ kind: 'model' as const, uri })));
      return this.models.map((uri) => ({ kind: 'model' as const, uri }));
    }
    if (node.kind === 'tensor' || node.kind === 'run') return [];
    if (node.kind === 'runs') return node.runs.map((record) => ({ kind: 'run' as const, model: node.model, record }));
    const runs = this.runsOf(node.uri);
    const group: ModelNode[] = runs.length ? [{ kind: 'runs', model: node.uri, runs }] : [];
    const s = this.cache.get(node.uri.fsPath)?.scan;
    if (!s) return group;
    return [...group, ...s.largest.map((t) => ({ kind: 'tensor' as const, model: node.uri, name: t.name, params: t.params, share: s.trainableParams ? t.params / s.trainableParams : 0 }))];
  }
}

/** The models tree's description of a scanned model (tree-ensemble ONNX files say so, with their tree count). */
export function modelDescription(s: ModelScan): string {
  const sparsity = s.trainableParams ? s.zeros / s.trainableParams : 0;
  const head = `${formatLabel(s.format)} · ${fmtBytes(s.fileBytes)}`;
  const trees = s.trees !== undefined ? ` · tree ensemble · ${s.trees} tree${s.trees === 1 ? '' : 's'}` : '';
  // a model made only of trees has no tensors: parameters and sparsity would read "0 params"
  if (trees && s.totalParams === 0) return head + trees;
  return `${head}${trees} · ${fmtParams(s.totalParams)} params · ${(sparsity * 100).toFixed(1)}% sparse`;
}

function runsGroupItem(model: vscode.Uri, runs: RunRecord[]): vscode.TreeItem {
  const item = new vscode.TreeItem(`Runs (${runs.length})`, vscode.TreeItemCollapsibleState.Collapsed);
  item.id = `${model.toString()}#runs`;
  item.description = 'newest first';
  item.tooltip = 'Jobs run on this model in this workspace (.prunescope/runs/). Right-click: Compare Runs…';
  item.iconPath = new vscode.ThemeIcon('history');
  item.contextValue = 'prunescope.runs';
  return item;
}
