// Runs inside a real VS Code (code-server) extension host: see test/integration/index.ts.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EXTENSION_ID, workspaceDir } from './workspace.js';

const ANALYZE_COMMAND = 'prunescope.analyzeModel';

/** What scripts/vscode-host/make-workspace.mjs wrote into expected.json for one fixture model. */
interface ExpectedModel {
  file: string;
  format: string;
  tensors: Record<string, number[]>;
  totalParams: number;
  totalZeros: number;
}

/** The part of the analysis report these tests rely on. */
interface ReportShape {
  format: string;
  totalParams: number;
  totalZeros: number;
  tensors: { name: string; shape: number[] }[];
}

function readExpected(): { onnx: ExpectedModel; tfjs: ExpectedModel } {
  const file = path.join(workspaceDir(), 'expected.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')) as { onnx: ExpectedModel; tfjs: ExpectedModel };
}

const product = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

function assertReport(report: unknown, expected: ExpectedModel): void {
  assert.ok(
    report && typeof report === 'object',
    `${ANALYZE_COMMAND} returned ${String(report)}, not a report object (the PruneScope log in the diagnostics says why)`,
  );
  const r = report as ReportShape;
  assert.equal(r.format, expected.format);
  assert.ok(Array.isArray(r.tensors), 'report.tensors is not an array');
  const shapes = Object.fromEntries(r.tensors.map((t) => [t.name, t.shape]));
  assert.deepEqual(shapes, expected.tensors);
  assert.equal(
    r.totalParams,
    r.tensors.reduce((n, t) => n + product(t.shape), 0),
    'totalParams is not the sum of the tensor shape products',
  );
  assert.equal(r.totalParams, expected.totalParams);
  assert.equal(r.totalZeros, expected.totalZeros);
}

function describeTab(t: vscode.Tab): string {
  const input = t.input;
  if (input instanceof vscode.TabInputWebview) return `webview ${input.viewType} "${t.label}"`;
  if (input instanceof vscode.TabInputText) return `text ${input.uri.fsPath}`;
  return `"${t.label}"`;
}

/**
 * Waits for a webview tab whose view type belongs to this extension (VS Code prefixes the id,
 * e.g. `mainThreadWebview-prunescope.analysis`). The tab model reaches the extension host a
 * round trip after `createWebviewPanel`, so it is polled rather than read once.
 */
async function waitForPruneScopePanel(timeoutMs: number): Promise<vscode.Tab> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs);
    const found = tabs.find((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.toLowerCase().includes('prunescope'));
    if (found) return found;
    if (Date.now() > deadline) {
      assert.fail(`no PruneScope webview panel opened within ${timeoutMs} ms; open tabs: ${tabs.map(describeTab).join(', ') || 'none'}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

suite('PruneScope in a real VS Code', () => {
  suiteSetup(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('the extension is installed and activates', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, `extension ${EXTENSION_ID} is not loaded`);
    await ext.activate();
    assert.equal(ext.isActive, true);
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes(ANALYZE_COMMAND), `${ANALYZE_COMMAND} is not registered`);
  });

  test('analyzeModel on an ONNX model returns its report and opens the panel', async () => {
    const expected = readExpected().onnx;
    const uri = vscode.Uri.file(path.join(workspaceDir(), expected.file));
    const report = await vscode.commands.executeCommand(ANALYZE_COMMAND, uri);
    assertReport(report, expected);
    const panel = await waitForPruneScopePanel(10_000);
    assert.ok(panel.label.includes('tiny.onnx'), `the panel title "${panel.label}" does not name the model file`);
  });

  test('analyzeModel on a TF.js layers model.json returns its report', async () => {
    const expected = readExpected().tfjs;
    const uri = vscode.Uri.file(path.join(workspaceDir(), expected.file));
    const report = await vscode.commands.executeCommand(ANALYZE_COMMAND, uri);
    assertReport(report, expected);
  });
});
