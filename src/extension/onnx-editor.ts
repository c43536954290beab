// A read-only custom editor for .onnx files: a click on a binary model opens the analysis panel
// instead of a garbage text view. It only reads the file, so it works in Restricted Mode.

import * as vscode from 'vscode';
import { AnalysisPanel } from './analysis-panel.js';
import type { Commands } from './commands.js';

export const ONNX_EDITOR_VIEW_TYPE = 'prunescope.onnxViewer';

export class OnnxEditorProvider implements vscode.CustomReadonlyEditorProvider<vscode.CustomDocument> {
  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly commands: Commands,
  ) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  async resolveCustomEditor(document: vscode.CustomDocument, webviewPanel: vscode.WebviewPanel): Promise<void> {
    const panel = AnalysisPanel.attach(webviewPanel, this.extensionUri, document.uri, this.commands);
    await this.commands.analyze(document.uri, panel);
  }
}
