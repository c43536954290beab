// The analysis panel's host side: one webview panel per model file, fed over the typed protocol
// (src/shared/protocol.ts). The webview gets summaries and downsampled tiles only, never tensors.

import * as vscode from 'vscode';
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import type { ModelReport } from '../shared/report.js';
import { HostToWebview, parseWebviewMessage } from '../shared/protocol.js';

export class AnalysisPanel {
  private static readonly panels = new Map<string, AnalysisPanel>();
  private ready = false;
  private pending: HostToWebview[] = [];
  private lastReport: ModelReport | undefined;

  static show(extensionUri: vscode.Uri, modelUri: vscode.Uri, onReanalyze: () => void): AnalysisPanel {
    const key = modelUri.toString();
    const existing = AnalysisPanel.panels.get(key);
    if (existing) {
      existing.panel.reveal(undefined, true);
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(
      'prunescope.analysis',
      `Analysis: ${basename(modelUri.fsPath)}`,
      { viewColumn: vscode.ViewColumn.Active, preserveFocus: false },
      {
        enableScripts: true,
        retainContextWhenHidden: true,
        localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
      },
    );
    const p = new AnalysisPanel(panel, extensionUri, modelUri, onReanalyze);
    AnalysisPanel.panels.set(key, p);
    return p;
  }

  /** Every open panel, for tests and for commands that act on "the current analysis". */
  static all(): AnalysisPanel[] {
    return [...AnalysisPanel.panels.values()];
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    readonly modelUri: vscode.Uri,
    private readonly onReanalyze: () => void,
  ) {
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'prunescope.svg');
    panel.webview.html = this.html();
    panel.onDidDispose(() => AnalysisPanel.panels.delete(modelUri.toString()));
    panel.webview.onDidReceiveMessage((raw) => this.onMessage(raw));
  }

  get report(): ModelReport | undefined {
    return this.lastReport;
  }

  post(m: HostToWebview): void {
    if (m.type === 'report') this.lastReport = m.report;
    if (!this.ready) {
      // keep only what the panel needs when it starts: the last state of each kind
      this.pending = this.pending.filter((p) => p.type !== m.type && !(m.type === 'report' && p.type === 'progress'));
      this.pending.push(m);
      return;
    }
    void this.panel.webview.postMessage(m);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const m = parseWebviewMessage(raw);
    if (!m) return; // malformed: ignored, the webview is untrusted
    switch (m.type) {
      case 'ready':
        this.ready = true;
        for (const p of this.pending) void this.panel.webview.postMessage(p);
        this.pending = [];
        return;
      case 'reanalyze':
        this.onReanalyze();
        return;
      case 'exportJson': {
        if (!this.lastReport) return;
        const target = await vscode.window.showSaveDialog({
          defaultUri: vscode.Uri.file(this.modelUri.fsPath.replace(/(\.onnx|\.json)$/i, '') + '.prunescope.json'),
          filters: { JSON: ['json'] },
        });
        if (!target) return;
        await vscode.workspace.fs.writeFile(target, Buffer.from(JSON.stringify(this.lastReport, null, 2) + '\n'));
        return;
      }
      case 'revealTensor':
        return;
    }
  }

  private html(): string {
    const webview = this.panel.webview;
    const nonce = randomBytes(16).toString('base64');
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview.js'));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', 'panel.css'));
    const csp = [
      "default-src 'none'",
      `img-src ${webview.cspSource} data: blob:`,
      `style-src ${webview.cspSource}`,
      `font-src ${webview.cspSource}`,
      `script-src 'nonce-${nonce}'`,
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}">
<title>PruneScope analysis</title>
</head>
<body>
<main id="app" aria-live="polite"><p class="muted">Analysing…</p></main>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
  }
}
