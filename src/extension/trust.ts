// Workspace trust: analysis reads files and works in Restricted Mode; anything that writes files
// or runs a model (compression jobs, evaluation) asks for trust first.

import * as vscode from 'vscode';

export async function ensureTrusted(what: string): Promise<boolean> {
  if (vscode.workspace.isTrusted) return true;
  const manage = 'Manage Workspace Trust';
  const a = await vscode.window.showWarningMessage(
    `PruneScope: ${what} writes files and runs the model, which Restricted Mode does not allow. Trust this workspace to continue.`,
    { modal: true },
    manage,
  );
  if (a === manage) await vscode.commands.executeCommand('workbench.trust.manage');
  return vscode.workspace.isTrusted;
}
