// The run history's commands: open one run in the model's panel, compare two or more side by
// side, delete a record. Each takes the Models tree's node (or a model Uri) and optional answers.

import * as vscode from 'vscode';
import type { RunRecord } from '../shared/protocol.js';
import { AnalysisPanel } from './analysis-panel.js';
import type { Commands } from './commands.js';
import { pickMany } from './dialogs.js';
import { deleteRun, historyOf, runsOf } from './run-history-host.js';

type RunNode = { kind: 'run'; model: vscode.Uri; record: RunRecord };

function modelOf(x: unknown): vscode.Uri | undefined {
  if (x instanceof vscode.Uri) return x;
  const o = x as { uri?: unknown; model?: unknown } | undefined;
  if (o?.uri instanceof vscode.Uri) return o.uri;
  if (o?.model instanceof vscode.Uri) return o.model;
  return undefined;
}

function runNodeOf(x: unknown): RunNode | undefined {
  const o = x as Partial<RunNode> | undefined;
  return o?.kind === 'run' && o.model instanceof vscode.Uri && o.record ? (o as RunNode) : undefined;
}

export class RunCommands {
  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly commands: Commands,
  ) {}

  register(): vscode.Disposable[] {
    return [
      vscode.commands.registerCommand('prunescope.openRun', (node?: unknown) => this.open(node)),
      vscode.commands.registerCommand('prunescope.compareRuns', (node?: unknown, args?: { ids?: string[] }) => this.compare(node, args)),
      vscode.commands.registerCommand('prunescope.deleteRun', (node?: unknown) => this.delete(node)),
    ];
  }

  /** Sends runs of a model to its panel ({ type: 'history' }). */
  private show(model: vscode.Uri, runs: RunRecord[]): void {
    const h = historyOf(model);
    const panel = AnalysisPanel.show(this.context.extensionUri, model, this.commands);
    panel.post({ type: 'history', model: h?.model ?? vscode.workspace.asRelativePath(model), runs });
    // a panel opened for the history has no report yet: the webview shows its sections once one comes
    if (!panel.report) void this.commands.analyze(model, panel);
  }

  async open(node?: unknown): Promise<RunRecord[] | undefined> {
    const n = runNodeOf(node);
    if (!n) return undefined;
    this.show(n.model, [n.record]);
    return [n.record];
  }

  /** Two or more runs of a model side by side (the picked ones, or those named by `ids`). */
  async compare(node?: unknown, args: { ids?: string[] } = {}): Promise<RunRecord[] | undefined> {
    const model = modelOf(node) ?? (await this.commands.pickModel(undefined, 'Compare Runs'));
    if (!model) return undefined;
    const runs = await runsOf(model);
    if (runs.length < 2) {
      void vscode.window.showInformationMessage(`PruneScope: ${vscode.workspace.asRelativePath(model)} has ${runs.length} run${runs.length === 1 ? '' : 's'} in its history; comparing needs two or more.`);
      return undefined;
    }
    const picked = args.ids ? runs.filter((r) => args.ids!.includes(r.id)) : await this.pickRuns(runs);
    if (!picked) return undefined;
    if (picked.length < 2) {
      void vscode.window.showInformationMessage('PruneScope: pick two or more runs to compare.');
      return undefined;
    }
    this.show(model, picked);
    return picked;
  }

  private async pickRuns(runs: RunRecord[]): Promise<RunRecord[] | undefined> {
    const items = runs.map((r) => ({ label: r.title, description: r.startedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), detail: r.outputs.join(', '), record: r }));
    const picked = await pickMany(items, 'Compare Runs', 'Two or more runs to compare side by side');
    return picked?.map((p) => p.record);
  }

  /** Removes a run's record file (the models it wrote stay). */
  async delete(node?: unknown): Promise<boolean> {
    const n = runNodeOf(node);
    if (!n) return false;
    const done = await deleteRun(n.model, n.record.id);
    if (done) void vscode.window.showInformationMessage(`PruneScope: deleted the run record "${n.record.title}" (the files it wrote were kept).`);
    return done;
  }
}
