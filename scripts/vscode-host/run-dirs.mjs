// The folders of one test run of a VS Code host (code-server or desktop VS Code): everything the
// host and the extension host write goes into the run folder, not $HOME; old runs are pruned.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { TEST_USER_SETTINGS } from './host-paths.mjs';

/** Removes all but the newest `keep` run folders of `base`, so it does not grow without bound. */
export function pruneOldRuns(base, keep) {
  if (!existsSync(base)) return;
  const runs = readdirSync(base)
    .filter((n) => n.startsWith('run-'))
    .map((n) => ({ n, t: statSync(path.join(base, n)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { n } of runs.slice(keep)) rmSync(path.join(base, n), { recursive: true, force: true });
}

/** A fresh run folder under `base` with its home, XDG, user-data (quiet test settings), extensions and results folders. */
export function prepareRunDir(base) {
  const runDir = path.join(base, `run-${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
  const dirs = {
    runDir,
    home: path.join(runDir, 'home'),
    xdgConfig: path.join(runDir, 'xdg', 'config'),
    xdgData: path.join(runDir, 'xdg', 'data'),
    xdgCache: path.join(runDir, 'xdg', 'cache'),
    xdgState: path.join(runDir, 'xdg', 'state'),
    userData: path.join(runDir, 'user-data'),
    extensions: path.join(runDir, 'extensions'),
    results: path.join(runDir, 'results'),
  };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  // Keep the test window quiet: no welcome page, no restored editors, no telemetry prompts.
  mkdirSync(path.join(dirs.userData, 'User'), { recursive: true });
  writeFileSync(path.join(dirs.userData, 'User', 'settings.json'), JSON.stringify(TEST_USER_SETTINGS, null, 2) + '\n');
  return dirs;
}

/** The suites' summary file ({passed, failed}) of a run, or null while it is missing or half-written. */
export function readSummary(file) {
  if (!existsSync(file)) return null;
  try {
    const s = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof s.passed === 'number' && typeof s.failed === 'number') return s;
  } catch {
    /* half-written: treated as missing */
  }
  return null;
}

/**
 * The environment of a test host run in `dirs` (prepareRunDir): its own HOME and XDG folders, and
 * none of the VS Code terminal's IPC hooks (they would connect the host to that window) nor
 * ELECTRON_RUN_AS_NODE (it would start Electron as Node); `extra` is added last.
 */
export function hostEnv(dirs, extra = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('VSCODE_') || k === 'ELECTRON_RUN_AS_NODE') delete env[k];
  return Object.assign(env, {
    HOME: dirs.home,
    XDG_CONFIG_HOME: dirs.xdgConfig,
    XDG_DATA_HOME: dirs.xdgData,
    XDG_CACHE_HOME: dirs.xdgCache,
    XDG_STATE_HOME: dirs.xdgState,
    ...extra,
  });
}

/** A free TCP port on 127.0.0.1 (for a code-server). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}
