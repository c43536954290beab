// The status bar item: which TF.js backend the worker uses (and why), click to choose one. The
// probe runs in a worker: TF.js is never initialised on the extension host's thread.

import * as vscode from 'vscode';
import { runJobWithProgress } from './job-bridge.js';
import { log } from './log.js';
import { BACKEND_CHOICES, readSettings, type BackendPreference } from './settings.js';

const DESCRIPTIONS: Record<BackendPreference, string> = {
  auto: 'The fastest that works here: tfjs-node, WebGPU, WASM, then CPU',
  'tfjs-node': 'Native TensorFlow (needs @tensorflow/tfjs-node installed)',
  webgpu: 'WebGPU (where the runtime provides it)',
  wasm: 'WebAssembly with SIMD',
  cpu: 'Plain JavaScript (slowest, always there)',
};

export class BackendStatus implements vscode.Disposable {
  readonly item = vscode.window.createStatusBarItem('prunescope.backend', vscode.StatusBarAlignment.Right, 100);
  private probe = 0;
  current: { backend: string; reason: string } | undefined;

  constructor(private readonly extensionUri: vscode.Uri) {
    this.item.name = 'PruneScope backend';
    this.item.command = 'prunescope.chooseBackend';
    this.item.text = '$(loading~spin) TF.js';
    this.item.tooltip = 'PruneScope: finding the TF.js backend…';
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
  }

  async refresh(): Promise<{ backend: string; reason: string } | undefined> {
    const id = ++this.probe;
    const prefer = readSettings().backend;
    const r = await runJobWithProgress(this.extensionUri, { kind: 'backend', prefer }, { title: 'backend probe', silent: true, quietErrors: true });
    if (id !== this.probe) return this.current;
    if (!r.ok) {
      this.item.text = '$(warning) TF.js';
      this.item.tooltip = `PruneScope: no TF.js backend: ${r.message}`;
      log().warn(`backend probe failed: ${r.message}`);
      return undefined;
    }
    this.current = r.value;
    this.item.text = `$(chip) TF.js: ${r.value.backend}`;
    // the engine's methods still ask TF.js for 'auto' themselves: say so rather than imply more
    const caveat = prefer !== 'auto' ? `\n\nJobs use the preference "${prefer}" (setting prunescope.backend).` : '';
    const md = new vscode.MarkdownString(`**PruneScope compute backend: ${r.value.backend}**${prefer !== 'auto' ? ` (preference: ${prefer})` : ''}\n\n${r.value.reason}${caveat}\n\nONNX models run on onnxruntime-node (CPU).\n\n_Click to choose a backend._`);
    this.item.tooltip = md;
    log().info(`TF.js backend: ${r.value.backend} (${r.value.reason})`);
    return r.value;
  }

  async choose(arg?: BackendPreference): Promise<void> {
    let value = arg;
    if (!value) {
      const prefer = readSettings().backend;
      const pick = await vscode.window.showQuickPick(
        BACKEND_CHOICES.map((b) => ({ label: b, description: b === prefer ? 'current' : undefined, detail: DESCRIPTIONS[b], value: b })),
        { title: 'PruneScope: TF.js backend for jobs', placeHolder: this.current ? `In use: ${this.current.backend}` : undefined },
      );
      value = pick?.value;
    }
    if (!value) return;
    await vscode.workspace.getConfiguration('prunescope').update('backend', value, vscode.ConfigurationTarget.Workspace);
    await this.refresh();
  }
}
