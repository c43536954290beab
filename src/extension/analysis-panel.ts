// The analysis panel's host side: one webview per model file (a panel, or the custom editor of
// an .onnx file), fed over the typed protocol (src/shared/protocol.ts). The webview gets
// summaries and downsampled tiles only, never whole tensors.

import * as vscode from 'vscode';
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import type { ModelReport } from '../shared/report.js';
import { CompressJobResult, FindingAction, HostToWebview, parseWebviewMessage, SensitivityView, TreesView } from '../shared/protocol.js';
import type { GraphView, PlanView, RunRecord } from '../shared/protocol.js';
import { log, showError } from './log.js';

/** Models above this size on disk get no graph view. */
const MAX_GRAPH_FILE_BYTES = 512 * 1024 * 1024;

/** What the panel asks of the rest of the extension. */
export interface PanelActions {
  reanalyze(model: vscode.Uri): void;
  /** `report`: the model's report the finding came from (a compressed output's, shown in this panel) */
  runAction(model: vscode.Uri, action: FindingAction, report?: ModelReport): void;
  applyProposal(model: vscode.Uri, proposal: SensitivityView): void;
  dropTreeFeatures(model: vscode.Uri, args: { node: string; features: number[] }): Promise<unknown>;
  removeTrees(model: vscode.Uri, args: { node: string; suggestedFraction: number }): Promise<unknown>;
  /** writes one point of the plan's front (the panel sent its id) */
  writePlanPoint(model: vscode.Uri, plan: PlanView, id: string): Promise<unknown>;
  /** the model's graph with overlays from its report, built in the job worker; undefined when it failed (logged) */
  graphOf(report: ModelReport): Promise<GraphView | undefined>;
}

export class AnalysisPanel {
  private static readonly panels = new Map<string, AnalysisPanel>();
  private ready = false;
  private pending: HostToWebview[] = [];
  private lastReport: ModelReport | undefined;
  private lastComparison: CompressJobResult | undefined;
  private lastSensitivity: SensitivityView | undefined;
  private lastTrees: TreesView | undefined;
  private lastPlan: PlanView | undefined;
  private lastHistory: { model: string; runs: RunRecord[] } | undefined;
  private readonly readyWaiters: Array<() => void> = [];

  static show(extensionUri: vscode.Uri, modelUri: vscode.Uri, actions: PanelActions): AnalysisPanel {
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
      { ...AnalysisPanel.webviewOptions(extensionUri), retainContextWhenHidden: true },
    );
    return AnalysisPanel.attach(panel, extensionUri, modelUri, actions);
  }

  static webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
    return {
      enableScripts: true,
      localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
    };
  }

  /** Hosts the panel app in an existing webview panel (the .onnx custom editor gives one). */
  static attach(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, modelUri: vscode.Uri, actions: PanelActions): AnalysisPanel {
    const p = new AnalysisPanel(panel, extensionUri, modelUri, actions);
    AnalysisPanel.panels.set(modelUri.toString(), p);
    return p;
  }

  /** Every open panel, for tests and for commands that act on "the current analysis". */
  static all(): AnalysisPanel[] {
    return [...AnalysisPanel.panels.values()];
  }

  static find(modelUri: vscode.Uri): AnalysisPanel | undefined {
    return AnalysisPanel.panels.get(modelUri.toString());
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    readonly modelUri: vscode.Uri,
    private readonly actions: PanelActions,
  ) {
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'prunescope.svg');
    panel.webview.options = AnalysisPanel.webviewOptions(extensionUri);
    panel.webview.html = this.html();
    panel.onDidDispose(() => {
      if (AnalysisPanel.panels.get(modelUri.toString()) === this) AnalysisPanel.panels.delete(modelUri.toString());
    });
    panel.webview.onDidReceiveMessage((raw) => void this.onMessage(raw).catch((e: unknown) => showError(e instanceof Error ? e.message : String(e))));
  }

  get report(): ModelReport | undefined {
    return this.lastReport;
  }

  get comparison(): CompressJobResult | undefined {
    return this.lastComparison;
  }

  get sensitivity(): SensitivityView | undefined {
    return this.lastSensitivity;
  }

  /** The tree-ensemble summary last sent to the webview (ONNX files only). */
  get trees(): TreesView | undefined {
    return this.lastTrees;
  }

  /** The compress-to-target search last sent to the webview. */
  get plan(): PlanView | undefined {
    return this.lastPlan;
  }

  /** The run history last sent to the webview. */
  get history(): { model: string; runs: RunRecord[] } | undefined {
    return this.lastHistory;
  }

  /** Resolves once the webview app has started (it sent 'ready'). */
  whenReady(): Promise<void> {
    return this.ready ? Promise.resolve() : new Promise((r) => this.readyWaiters.push(r));
  }

  post(m: HostToWebview): void {
    if (m.type === 'report') this.lastReport = m.report;
    if (m.type === 'comparison') this.lastComparison = m.result;
    if (m.type === 'sensitivity') this.lastSensitivity = m.result;
    if (m.type === 'trees') this.lastTrees = m.result;
    if (m.type === 'plan') this.lastPlan = m.result;
    if (m.type === 'history') this.lastHistory = { model: m.model, runs: m.runs };
    if (m.type === 'report' || m.type === 'comparison') void this.sendGraph(m.type === 'report' ? m.report : m.result.after);
    if (!this.ready) {
      // keep only what the panel needs when it starts: the last state of each kind
      this.pending = this.pending.filter((p) => p.type !== m.type && !((m.type === 'report' || m.type === 'comparison' || m.type === 'sensitivity') && p.type === 'progress'));
      this.pending.push(m);
      return;
    }
    void this.panel.webview.postMessage(m);
  }

  /** The model's graph with overlays from its report, built in the job worker (reading a model blocks). */
  private async sendGraph(report: ModelReport): Promise<void> {
    // a graph is structure only, but reading an ONNX file decodes all of it: huge ones are skipped
    if (report.fileBytes > MAX_GRAPH_FILE_BYTES) return;
    const graph = await this.actions.graphOf(report);
    if (graph) this.post({ type: 'graph', graph });
  }

  private baseName(): string {
    return this.modelUri.fsPath.replace(/(\.onnx|\.json)$/i, '');
  }

  /** Handles a message as if the webview had sent it (integration tests drive the panel's actions with it). */
  receive(raw: unknown): Promise<void> {
    return this.onMessage(raw);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const m = parseWebviewMessage(raw);
    if (!m) {
      log().warn('analysis panel: ignored a malformed message from the webview');
      return;
    }
    switch (m.type) {
      case 'ready':
        this.ready = true;
        for (const p of this.pending) void this.panel.webview.postMessage(p);
        this.pending = [];
        for (const w of this.readyWaiters.splice(0)) w();
        return;
      case 'reanalyze':
        this.actions.reanalyze(this.modelUri);
        return;
      case 'runAction':
        // a finding of the compressed model shown below the comparison: its job starts from that file
        if (m.on === 'after' && this.lastComparison) this.actions.runAction(vscode.Uri.file(this.lastComparison.output), m.action, this.lastComparison.after);
        else this.actions.runAction(this.modelUri, m.action);
        return;
      case 'dropTreeFeatures':
        void this.actions.dropTreeFeatures(this.modelUri, { node: m.node, features: m.features });
        return;
      case 'removeTrees':
        // the finding's share is the dialog's default; the validation CSV and the share are asked for
        void this.actions.removeTrees(this.modelUri, { node: m.node, suggestedFraction: m.fraction });
        return;
      case 'writePlanPoint':
        if (this.lastPlan) void this.actions.writePlanPoint(this.modelUri, this.lastPlan, m.id);
        return;
      case 'applyProposal':
        if (this.lastSensitivity) this.actions.applyProposal(this.modelUri, this.lastSensitivity);
        return;
      case 'revealOutput':
        if (this.lastComparison) await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(this.lastComparison.output));
        return;
      case 'exportJson': {
        if (!this.lastReport) return;
        const target = await vscode.window.showSaveDialog({
          defaultUri: vscode.Uri.file(`${this.baseName()}.prunescope.json`),
          filters: { JSON: ['json'] },
        });
        if (!target) return;
        const data = this.lastComparison ? { report: this.lastReport, comparison: this.lastComparison } : this.lastReport;
        await vscode.workspace.fs.writeFile(target, Buffer.from(JSON.stringify(data, null, 2) + '\n'));
        return;
      }
      case 'exportHtml': {
        if (!this.lastReport) return;
        const target = await vscode.window.showSaveDialog({
          defaultUri: vscode.Uri.file(`${this.baseName()}.prunescope.html`),
          filters: { HTML: ['html'] },
        });
        if (!target) return;
        await this.writeHtmlReport(target, m.themeVars, m.themeKind);
        void vscode.window.showInformationMessage(`PruneScope: report saved to ${vscode.workspace.asRelativePath(target)}`);
        return;
      }
      case 'exportPng': {
        const target = await vscode.window.showSaveDialog({
          defaultUri: vscode.Uri.file(`${this.baseName()}.${m.name}.png`),
          filters: { 'PNG image': ['png'] },
        });
        if (!target) return;
        await vscode.workspace.fs.writeFile(target, Buffer.from(m.dataUrl.slice('data:image/png;base64,'.length), 'base64'));
        return;
      }
      case 'revealTensor':
        return;
    }
  }

  /**
   * A self-contained HTML report: the panel's own script and styles inlined, the report data
   * inlined as JSON, the theme's colours frozen as CSS variables; no remote content at all.
   */
  async writeHtmlReport(target: vscode.Uri, themeVars: Record<string, string>, themeKind: string): Promise<void> {
    const read = async (...p: string[]) => Buffer.from(await vscode.workspace.fs.readFile(vscode.Uri.joinPath(this.extensionUri, ...p))).toString('utf8');
    const [css, js] = await Promise.all([read('media', 'panel.css'), read('dist', 'webview.js')]);
    const data = { report: this.lastReport, comparison: this.lastComparison, sensitivity: this.lastSensitivity, trees: this.lastTrees, exportedAt: new Date().toISOString() };
    // `<` is escaped so that no string in the data can close the script element
    const json = JSON.stringify(data).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
    const vars = Object.entries(themeVars).map(([k, v]) => `${k}: ${v};`).join('\n');
    const safeJs = js.replace(/<\/script/gi, '<\\/script');
    const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data: blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>PruneScope report: ${escapeHtml(basename(this.modelUri.fsPath))}</title>
<style>
html {
${vars}
}
</style>
<style>
${css}
</style>
</head>
<body class="${themeKind === 'vscode-light' ? 'vscode-light' : themeKind === 'vscode-high-contrast' ? 'vscode-high-contrast' : 'vscode-dark'}">
<main id="app"></main>
<script id="prunescope-data" type="application/json">${json}</script>
<script>
${safeJs}
</script>
</body>
</html>
`;
    await vscode.workspace.fs.writeFile(target, Buffer.from(html, 'utf8'));
  }

  private html(): string {
    const webview = this.panel.webview;
    const nonce = randomBytes(16).toString('base64');
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview.js'));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', 'panel.css'));
    const csp = [
      "default-src 'none'",
      `img-src ${webview.cspSource} data: blob:`,
      // vscode-elements components carry their styles in constructable stylesheets (no inline <style>)
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

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}
