// The editor's side of the run history (core/jobs/run-history.ts): a record is appended after
// every finished compress, compress-to-target, tree and compare job, in the workspace folder that
// holds the model, only in a trusted workspace with a folder open. Reading works everywhere.

import * as vscode from 'vscode';
import { RunHistory } from '../core/jobs/run-history.js';
import { isRecordedSpec, runRecordOf, workspaceRelative } from '../core/jobs/run-records.js';
import type { JobResultMap, JobSpec } from '../core/jobs/job-types.js';
import type { RunRecord } from '../shared/protocol.js';
import { log } from './log.js';

const changed = new vscode.EventEmitter<void>();
/** Fires after a record was written or deleted. */
export const onDidChangeRuns = changed.event;

/** The workspace folder a model's runs are kept in (the one holding it, else the first). */
function folderOf(model: vscode.Uri): vscode.WorkspaceFolder | undefined {
  return vscode.workspace.getWorkspaceFolder(model) ?? vscode.workspace.workspaceFolders?.[0];
}

/** The history of the folder holding `model` and the model's path as records store it. */
export function historyOf(model: vscode.Uri): { history: RunHistory; model: string } | undefined {
  const folder = folderOf(model);
  if (!folder || folder.uri.scheme !== 'file') return undefined;
  const history = new RunHistory(folder.uri.fsPath, (line) => log().warn(line));
  return { history, model: workspaceRelative(folder.uri.fsPath, model.fsPath) };
}

/** The model's runs, newest first (none without a workspace folder). */
export async function runsOf(model: vscode.Uri): Promise<RunRecord[]> {
  const h = historyOf(model);
  return h ? h.history.list(h.model) : [];
}

/** Every run of every folder, newest first within a folder. */
export async function allRuns(): Promise<Array<{ folder: vscode.WorkspaceFolder; runs: RunRecord[] }>> {
  const out: Array<{ folder: vscode.WorkspaceFolder; runs: RunRecord[] }> = [];
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    if (folder.uri.scheme !== 'file') continue;
    out.push({ folder, runs: await new RunHistory(folder.uri.fsPath, (line) => log().warn(line)).list() });
  }
  return out;
}

export async function deleteRun(model: vscode.Uri, id: string): Promise<boolean> {
  const h = historyOf(model);
  const done = h ? await h.history.delete(id) : false;
  if (done) changed.fire();
  return done;
}

/** Appends the record of a finished job (never fails the job: problems are logged). */
export async function recordRun(spec: JobSpec, result: unknown, started: number, title?: string): Promise<RunRecord | undefined> {
  if (!isRecordedSpec(spec) || !vscode.workspace.isTrusted) return undefined;
  const modelPath = spec.kind === 'compare' ? spec.before : spec.path;
  const h = historyOf(vscode.Uri.file(modelPath));
  if (!h) return undefined;
  try {
    const ctx = { workspace: h.history.workspace, startedAt: new Date(started), seconds: (Date.now() - started) / 1000, title };
    const record = runRecordOf(spec, result as JobResultMap[typeof spec.kind], ctx);
    const file = await h.history.append(record);
    log().info(`run history: ${vscode.workspace.asRelativePath(file)} (${record.title})`);
    changed.fire();
    return record;
  } catch (e) {
    log().warn(`run history: the record of ${spec.kind} could not be written: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
}
