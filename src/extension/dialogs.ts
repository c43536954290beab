// The commands' dialogs: one choice, several choices, a line of text, a share, a CSV file. Each
// takes a scripted answer first when one is queued (dialog-answers.ts), else shows.

import * as vscode from 'vscode';
import { dirname } from 'node:path';
import { scriptedInput, scriptedPick, takeDialogAnswer } from './dialog-answers.js';

export async function pickOne<T extends vscode.QuickPickItem & { value?: unknown; method?: unknown }>(items: T[], title: string, last: unknown): Promise<T | undefined> {
  const scripted = takeDialogAnswer();
  if (scripted !== undefined) return scriptedPick(items, scripted, title);
  const qp = vscode.window.createQuickPick<T>();
  qp.title = `PruneScope: ${title}`;
  qp.items = items;
  const remembered = items.find((i) => (i.value ?? i.method) === last);
  if (remembered) qp.activeItems = [remembered];
  return new Promise((resolvePick) => {
    qp.onDidAccept(() => {
      resolvePick(qp.selectedItems[0] ?? qp.activeItems[0]);
      qp.hide();
    });
    qp.onDidHide(() => {
      resolvePick(undefined);
      qp.dispose();
    });
    qp.show();
  });
}

/** Several items; a scripted answer names them separated by ' | '. */
export async function pickMany<T extends vscode.QuickPickItem>(items: T[], title: string, placeHolder: string): Promise<T[] | undefined> {
  const scripted = takeDialogAnswer();
  if (scripted !== undefined) return scripted.split(' | ').map((a) => scriptedPick(items, a, title));
  return vscode.window.showQuickPick(items, { title: `PruneScope: ${title}`, placeHolder, canPickMany: true });
}

export async function inputBox(options: vscode.InputBoxOptions & { title: string }): Promise<string | undefined> {
  const scripted = takeDialogAnswer();
  if (scripted !== undefined) return scriptedInput(scripted, options.title, (v) => options.validateInput?.(v) as string | undefined);
  return vscode.window.showInputBox(options);
}

export async function pickFraction(title: string, last: number, presets: number[]): Promise<number | undefined> {
  const values = [...new Set([...presets, last])].sort((a, b) => a - b);
  const items: Array<vscode.QuickPickItem & { value: number | 'custom' }> = values.map((v) => ({
    label: `${Math.round(v * 1000) / 10}%`,
    value: v,
    description: v === last ? 'last used' : undefined,
  }));
  items.push({ label: 'Other…', value: 'custom' });
  const pick = await pickOne(items, title, last);
  if (!pick) return undefined;
  if (pick.value !== 'custom') return pick.value;
  const typed = await inputBox({
    title: `PruneScope: ${title}`,
    value: String(Math.round(last * 100)),
    prompt: 'A percentage between 0 and 100',
    validateInput: (v) => {
      const n = Number(v.trim().replace(/%$/, ''));
      return Number.isFinite(n) && n > 0 && n < 100 ? undefined : 'a number between 0 and 100 (exclusive)';
    },
  });
  return typed === undefined ? undefined : Number(typed.trim().replace(/%$/, '')) / 100;
}

export async function pickFile(title: string, last: string, near: vscode.Uri): Promise<string | undefined> {
  const csvs = await vscode.workspace.findFiles('**/*.{csv,tsv}', '**/node_modules/**', 200);
  const items: Array<vscode.QuickPickItem & { value: string }> = csvs.map((u) => ({ label: vscode.workspace.asRelativePath(u), value: u.fsPath, description: u.fsPath === last ? 'last used' : undefined }));
  items.push({ label: 'Browse…', value: '' });
  const pick = await pickOne(items, title, last);
  if (!pick) return undefined;
  if (pick.value) return pick.value;
  return browseCsv(near);
}

/** The open dialog for a CSV / TSV file near the model. */
export async function browseCsv(near: vscode.Uri): Promise<string | undefined> {
  const chosen = await vscode.window.showOpenDialog({ canSelectMany: false, defaultUri: vscode.Uri.file(dirname(near.fsPath)), filters: { 'Interactions (CSV, TSV)': ['csv', 'tsv'] } });
  return chosen?.[0]?.fsPath;
}
