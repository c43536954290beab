// VS Code glue only: activation wires the commands, the models tree, the .onnx editor, the
// diagnostics and quick fixes, the CodeLens and the status bar. The engine (src/core) does the
// work in worker threads; nothing heavy runs on the extension host's thread.

import * as vscode from 'vscode';
import type { ModelReport } from '../shared/report.js';
import type { CompressJobResult, ModelScan, TreesView } from '../shared/protocol.js';
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
  panels(): Array<{ model: vscode.Uri; report?: ModelReport; comparison?: CompressJobResult; trees?: TreesView; ready: Promise<void> }>;
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
    panels: () => AnalysisPanel.all().map((p) => ({ model: p.modelUri, report: p.report, comparison: p.comparison, trees: p.trees, ready: p.whenReady() })),
    backend: async () => status.current ?? (await status.refresh()),
    refreshDiagnostics: (doc) => diagnostics.update(doc, true),
    exportHtml: async (model, target) => {
      const panel = AnalysisPanel.find(model);
      if (!panel) throw new Error(`no analysis panel is open for ${model.fsPath}`);
      await panel.writeHtmlReport(target, {}, 'vscode-dark');
    },
  };
}

export function deactivate(): void {
  // nothing to release: panels, workers and channels are disposed with their subscriptions
}
