// The PruneScope output channel (a log channel: levels, timestamps), shared by every part.

import * as vscode from 'vscode';

let channel: vscode.LogOutputChannel | undefined;

export function log(): vscode.LogOutputChannel {
  channel ??= vscode.window.createOutputChannel('PruneScope', { log: true });
  return channel;
}

export function disposeLog(): void {
  channel?.dispose();
  channel = undefined;
}

/** One clear error message with a "Show Log" action (the details are in the channel). */
export function showError(message: string): void {
  void vscode.window.showErrorMessage(`PruneScope: ${message}`, 'Show Log').then((a) => {
    if (a === 'Show Log') log().show();
  });
}
