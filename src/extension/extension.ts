// VS Code glue only: commands, the analysis panel, the job bridge. The engine (src/core) does
// the work in a worker thread; this file never computes anything heavy on the host's thread.

import * as vscode from 'vscode';
import { basename } from 'node:path';
import { runJob, JobCancelledError } from '../core/jobs/job-runner.js';
import type { ModelReport } from '../shared/report.js';
import { AnalysisPanel } from './analysis-panel.js';

let output: vscode.LogOutputChannel | undefined;

function log(): vscode.LogOutputChannel {
  output ??= vscode.window.createOutputChannel('PruneScope', { log: true });
  return output;
}

/** What the extension exports to other extensions and to its integration tests. */
export interface PruneScopeApi {
  analyze(uri: vscode.Uri): Promise<ModelReport | undefined>;
}

export function activate(context: vscode.ExtensionContext): PruneScopeApi {
  const analyze = (uri?: vscode.Uri) => analyzeCommand(context, uri);
  context.subscriptions.push(
    vscode.commands.registerCommand('prunescope.analyzeModel', analyze),
    { dispose: () => output?.dispose() },
  );
  return { analyze: (uri) => analyzeCommand(context, uri) };
}

export function deactivate(): void {
  // nothing to release: panels and workers are disposed with their subscriptions
}

async function pickModel(): Promise<vscode.Uri | undefined> {
  const active = vscode.window.activeTextEditor?.document.uri;
  if (active && /(\.onnx|\.json)$/i.test(active.fsPath)) return active;
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Analyze',
    filters: { 'Models (TF.js, ONNX)': ['json', 'onnx'] },
  });
  return picked?.[0];
}

/**
 * Analyses a model in a worker with a cancellable progress notification, shows the panel and
 * returns the report (undefined when cancelled or failed; failures are shown, not thrown).
 */
async function analyzeCommand(context: vscode.ExtensionContext, uri?: vscode.Uri): Promise<ModelReport | undefined> {
  const target = uri ?? (await pickModel());
  if (!target) return undefined;
  if (target.scheme !== 'file') {
    void vscode.window.showErrorMessage(`PruneScope reads models from local files; ${target.toString()} is not one.`);
    return undefined;
  }
  const panel = AnalysisPanel.show(context.extensionUri, target, () => void analyzeCommand(context, target));
  panel.post({ type: 'loading', path: target.fsPath });
  const name = basename(target.fsPath);
  log().info(`analyse ${target.fsPath}`);
  const started = Date.now();
  try {
    const report = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `PruneScope: analysing ${name}`, cancellable: true },
      async (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        let shown = 0;
        return runJob(
          { kind: 'analyze', path: target.fsPath, epsilon: vscode.workspace.getConfiguration('prunescope').get<number>('nearZeroEpsilon') },
          {
            signal: abort.signal,
            workerPath: vscode.Uri.joinPath(context.extensionUri, 'dist', 'worker.js').fsPath,
            onProgress: (p) => {
              const pct = Math.round(p.fraction * 100);
              if (pct > shown) {
                progress.report({ increment: pct - shown, message: `${p.phase}${p.detail ? ` ${p.detail}` : ''}` });
                shown = pct;
              }
              panel.post({ type: 'progress', fraction: p.fraction, phase: p.phase, detail: p.detail });
            },
          },
        );
      },
    );
    log().info(`analysed ${name} in ${Date.now() - started} ms: ${report.totalParams} params, ${report.totalZeros} zeros`);
    panel.post({ type: 'report', report });
    return report;
  } catch (e) {
    if (e instanceof JobCancelledError) {
      log().info(`analysis of ${name} cancelled`);
      panel.post({ type: 'error', message: 'Analysis cancelled.' });
      return undefined;
    }
    const message = e instanceof Error ? e.message : String(e);
    log().error(`analysis of ${name} failed: ${message}`);
    panel.post({ type: 'error', message });
    void vscode.window.showErrorMessage(`PruneScope: ${message}`, 'Show Log').then((a) => {
      if (a === 'Show Log') log().show();
    });
    return undefined;
  }
}
