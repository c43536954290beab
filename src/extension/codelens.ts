// CodeLens "Analyze model" above string literals that load a model file in code:
// `tf.loadLayersModel('file://…/model.json')`, `loadGraphModel(…)`, `InferenceSession.create('….onnx')`,
// Python `onnx.load("….onnx")` / `onnxruntime.InferenceSession("….onnx")`.

import * as vscode from 'vscode';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CODELENS_LANGUAGES = ['javascript', 'typescript', 'javascriptreact', 'typescriptreact', 'python'];

// the call, then the first argument when it is a string literal naming a model file
const LOADER = /\b(loadLayersModel|loadGraphModel|InferenceSession\.create|InferenceSession|onnx\.load(?:_model)?)\s*\(\s*(['"`])([^'"`\n]{1,1024}?(?:model\.json|\.onnx))\2/g;

/** The model file a literal names, resolved like the code would (file:// URLs, relative paths). */
export function resolveModelLiteral(literal: string, docPath: string, workspaceRoot: string | undefined): string | undefined {
  let p = literal;
  if (/^file:\/\//i.test(p)) {
    try {
      p = fileURLToPath(p);
    } catch {
      p = p.replace(/^file:\/\//i, '');
    }
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) {
    return undefined; // http(s) and other remote URLs: not a local file
  }
  const candidates = isAbsolute(p) ? [p] : [resolve(dirname(docPath), p), ...(workspaceRoot ? [resolve(workspaceRoot, p)] : [])];
  return candidates.find((c) => existsSync(c));
}

export class ModelLoadCodeLens implements vscode.CodeLensProvider {
  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    const text = doc.getText();
    if (text.length > 2_000_000) return [];
    const root = vscode.workspace.getWorkspaceFolder(doc.uri)?.uri.fsPath;
    const lenses: vscode.CodeLens[] = [];
    LOADER.lastIndex = 0;
    for (let m = LOADER.exec(text); m; m = LOADER.exec(text)) {
      const literalStart = m.index + m[0].length - m[3].length - 1;
      const range = new vscode.Range(doc.positionAt(literalStart - 1), doc.positionAt(literalStart + m[3].length + 1));
      const file = resolveModelLiteral(m[3], doc.uri.fsPath, root);
      if (file) {
        lenses.push(new vscode.CodeLens(range, { title: 'Analyze model', command: 'prunescope.analyzeModel', arguments: [vscode.Uri.file(file)], tooltip: `PruneScope: analyse ${vscode.workspace.asRelativePath(file)}` }));
      } else {
        lenses.push(new vscode.CodeLens(range, { title: 'PruneScope: model file not found', command: '', tooltip: `${m[3]} does not resolve to a file in this workspace` }));
      }
    }
    return lenses;
  }
}
