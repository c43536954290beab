// VS Code glue only: activation wires the commands, the models tree, the .onnx editor, the
// diagnostics and quick fixes, the CodeLens and the status bar. The engine (src/core) does the
// work in worker threads; nothing heavy runs on the extension host's thread.

import * as vscode from 'vscode';
import type { ModelReport } from '../shared/report.js';
import type { CompressJobResult, ModelScan, PlanView, RunRecord, TreesView } from '../shared/protocol.js';
import { AnalysisPanel } from './analysis-panel.js';
import { Commands } from './commands.js';
import { ModelDiagnostics } from './diagnostics.js';
import { cancelAllJobs, onJobEvent, runningJobs, type JobEvent } from './job-bridge.js';
import { disposeLog, log } from './log.js';
import { ModelsTreeProvider } from './models-tree.js';
import { ModelLoadCodeLens, CODELENS_LANGUAGES } from './codelens.js';
import { OnnxEditorProvider, ONNX_EDITOR_VIEW_TYPE } from './onnx-editor.js';
import { BackendStatus } from './status-bar.js';
import type { BackendPreference } from './settings.js';
import { RunCommands } from './run-commands.js';
import { runsOf } from './run-history-host.js';
import { answerDialogs, clearDialogAnswers } from './dialog-answers.js';

/** What the extension exports to other extensions and to its integration tests. */
export interface PruneScopeApi {
  analyze(uri: vscode.Uri): Promise<ModelReport | undefined>;
  /** the models tree's entries and their scans */
  models(): Promise<Array<{ uri: vscode.Uri; scan?: ModelScan; error?: string }>>;
  /** resolves when the models tree has no scan queued */
  modelsIdle(): Promise<void>;
  onJobEvent: vscode.Event<JobEvent>;
  runningJobs(): number;
  cancelJobs(): number;
  panels(): Array<{
    model: vscode.Uri; report?: ModelReport; comparison?: CompressJobResult; trees?: TreesView; plan?: PlanView;
    history?: { model: string; runs: RunRecord[] }; ready: Promise<void>;
  }>;
  /** the model's run history records, newest first */
  runs(model: vscode.Uri): Promise<RunRecord[]>;
  /** what the models tree shows under a model's "Runs" node: label, description, and the node (for the run commands) */
  treeRuns(model: vscode.Uri): Promise<Array<{ label: string; description: string; node: unknown }>>;
  /** queues answers for the next dialogs (quick pick: an item's label; input box: the text); returns nothing */
  answerDialogs(answers: string[]): void;
  /** drops queued answers nobody took; returns how many */
  clearDialogAnswers(): number;
  /** hands a message to a model's open panel as if its webview had sent it (checked like one) */
  sendFromWebview(model: vscode.Uri, message: unknown): Promise<void>;
  backend(): Promise<{ backend: string; reason: string } | undefined>;
  /** writes the self-contained HTML report of a model's open panel (what "Export HTML" saves) */
  exportHtml(model: vscode.Uri, target: vscode.Uri): Promise<void>;
  /** analyses an open model.json now and sets its diagnostics */
  refreshDiagnostics(doc: vscode.TextDocument): Promise<void>;
}

export function activate(context: vscode.ExtensionContext): PruneScopeApi {
  const commands = new Commands(context);
  const tree = new ModelsTreeProvider(context);
  const diagnostics = new ModelDiagnostics(context, commands);
  const status = new BackendStatus(context.extensionUri);
  const view = vscode.window.createTreeView('prunescope.models', { treeDataProvider: tree, showCollapseAll: true });

  context.subscriptions.push(
    ...commands.register(),
    ...new RunCommands(context, commands).register(),
    tree,
    view,
    diagnostics,
    status,
    vscode.languages.registerCodeActionsProvider({ scheme: 'file', pattern: '**/model.json' }, diagnostics, ModelDiagnostics.metadata),
    vscode.languages.registerCodeLensProvider(CODELENS_LANGUAGES.map((language) => ({ language, scheme: 'file' })), new ModelLoadCodeLens()),
    vscode.window.registerCustomEditorProvider(ONNX_EDITOR_VIEW_TYPE, new OnnxEditorProvider(context.extensionUri, commands), {
      webviewOptions: { retainContextWhenHidden: true },
      supportsMultipleEditorsPerDocument: false,
    }),
    vscode.commands.registerCommand('prunescope.refreshModels', () => tree.refresh()),
    vscode.commands.registerCommand('prunescope.cancelJobs', () => cancelAllJobs()),
    vscode.commands.registerCommand('prunescope.chooseBackend', (b?: BackendPreference) => status.choose(b)),
    vscode.commands.registerCommand('prunescope.showLog', () => log().show()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('prunescope.backend')) void status.refresh();
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => void vscode.commands.executeCommand('setContext', 'prunescope.trusted', true)),
    { dispose: disposeLog },
  );
  void vscode.commands.executeCommand('setContext', 'prunescope.trusted', vscode.workspace.isTrusted);
  void status.refresh();
  void tree.refresh();
  log().info(`PruneScope activated (${vscode.workspace.isTrusted ? 'trusted workspace' : 'Restricted Mode: analysis only'})`);

  return {
    analyze: (uri) => commands.analyze(uri),
    models: () => tree.list(),
    modelsIdle: () => tree.whenIdle(),
    onJobEvent,
    runningJobs,
    cancelJobs: cancelAllJobs,
    panels: () => AnalysisPanel.all().map((p) => ({
      model: p.modelUri, report: p.report, comparison: p.comparison, trees: p.trees, plan: p.plan, history: p.history, ready: p.whenReady(),
    })),
    runs: (model) => runsOf(model),
    treeRuns: (model) => treeRuns(tree, model),
    answerDialogs,
    clearDialogAnswers,
    sendFromWebview: async (model, message) => {
      const panel = AnalysisPanel.find(model);
      if (!panel) throw new Error(`no analysis panel is open for ${model.fsPath}`);
      await panel.receive(message);
    },
    backend: async () => status.current ?? (await status.refresh()),
    refreshDiagnostics: (doc) => diagnostics.update(doc, true),
    exportHtml: async (model, target) => {
      const panel = AnalysisPanel.find(model);
      if (!panel) throw new Error(`no analysis panel is open for ${model.fsPath}`);
      await panel.writeHtmlReport(target, {}, 'vscode-dark');
    },
  };
}

/** The run nodes the tree shows under a model, as rendered. */
async function treeRuns(tree: ModelsTreeProvider, model: vscode.Uri): Promise<Array<{ label: string; description: string; node: unknown }>> {
  await tree.refresh();
  const children = (await tree.getChildren({ kind: 'model', uri: model })) ?? [];
  const group = children.find((c) => c.kind === 'runs');
  if (!group) return [];
  const runs = (await tree.getChildren(group)) ?? [];
  return runs.map((node) => {
    const item = tree.getTreeItem(node);
    return { label: String(item.label), description: String(item.description ?? ''), node };
  });
}

export function deactivate(): void {
  // nothing to release: panels, workers and channels are disposed with their subscriptions
}
