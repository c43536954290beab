// What the integration suites share: the test workspace (scripts/vscode-host/make-workspace.mjs
// wrote it), the extension's API, and waiting for something the extension does asynchronously.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { PruneScopeApi } from '../../src/extension/extension.js';

export const EXTENSION_ID = 'prunescope.prunescope';

export function workspaceDir(): string {
  const fromEnv = process.env.PRUNESCOPE_TEST_WORKSPACE;
  if (fromEnv) return fromEnv;
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the test window has no workspace folder open');
  return folder.uri.fsPath;
}

/** A path inside the test workspace. */
export const ws = (rel: string): string => path.join(workspaceDir(), rel);
export const sha = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function api(): Promise<PruneScopeApi> {
  const ext = vscode.extensions.getExtension<PruneScopeApi>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not loaded`);
  return ext.activate();
}

/** Polls `probe` every 100 ms until it gives a value (not undefined, null or false); fails after timeoutMs. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== null && (v as unknown) !== false) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}
