#!/usr/bin/env node
// `npm run test:electron`: the same integration suites as `npm test` (test/integration, compiled to
// out/test/integration, entry index.js) in a desktop VS Code, through @vscode/test-electron, the
// standard runner on a developer's machine. CI keeps code-server (run-integration.mjs): this
// runner downloads VS Code from update.code.visualstudio.com, which CI cannot reach.
//
//   1. Resolve VS Code (cached in .vscode-test/electron/; the newest stable that satisfies
//      engines.vscode, or --version / PRUNESCOPE_VSCODE_VERSION; or an installed one with
//      --vscode PATH / PRUNESCOPE_VSCODE_EXECUTABLE, e.g. /usr/share/code/code). Offline, nothing cached:
//      print ONE line, `test:electron skipped: cannot download VS Code from ... (offline...)`, exit 0.
//   2. System packages: scripts/vscode-host/system-packages.sh ensure electron [xvfb] (VS Code's
//      shared libraries; xvfb + xauth for xvfb-run when there is no display). Installs them as
//      root / with passwordless sudo, otherwise one line naming the command.
//   3. npm run build && npm run build:tests (skip with --no-build), the fixture workspace.
//   4. VS Code runs under `xvfb-run -a` when there is no DISPLAY, in its own process group (killed
//      whole on timeout or Ctrl+C), with HOME/XDG, user data and extensions in the run folder.
//   5. Prints the mocha report and, last, exactly `N passed, N failed`. Exit 0 only if all passed.
//
// Usage: node scripts/vscode-host/run-electron.mjs [--version X | --vscode PATH] [--grep TEXT] [--timeout-min N]
//          [--no-build] [--keep-runs N]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { HOST_DIR, REPO_ROOT } from './host-paths.mjs';
import { hostEnv, prepareRunDir, pruneOldRuns, readSummary } from './run-dirs.mjs';

const UPDATE_HOST = 'update.code.visualstudio.com';
const ELECTRON_DIR = path.join(HOST_DIR, 'electron');
const VSCODE_CACHE = path.join(ELECTRON_DIR, 'builds');
const SELF = fileURLToPath(import.meta.url);

const { values: opts } = parseArgs({
  options: {
    version: { type: 'string', default: process.env.PRUNESCOPE_VSCODE_VERSION || '' },
    vscode: { type: 'string', default: process.env.PRUNESCOPE_VSCODE_EXECUTABLE || '' },
    grep: { type: 'string', default: process.env.PRUNESCOPE_TEST_GREP || '' },
    'timeout-min': { type: 'string', default: process.env.PRUNESCOPE_TEST_TIMEOUT_MIN || '15' },
    'no-build': { type: 'boolean', default: false },
    'keep-runs': { type: 'string', default: '3' },
    inner: { type: 'boolean', default: false },
  },
});

const startedAt = Date.now();
const log = (msg) => console.log(`[vscode-electron ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

/** A failure of the harness itself (not of a test): printed, then counted as one failed test. */
class HarnessError extends Error {}

// ---------------------------------------------------------------------------------------------
// Inner process (under xvfb-run when there is no display): only runTests.
// ---------------------------------------------------------------------------------------------

async function inner() {
  const job = JSON.parse(process.env.PRUNESCOPE_ELECTRON_JOB || '{}');
  const { runTests } = await import('@vscode/test-electron');
  try {
    return await runTests({
      vscodeExecutablePath: job.executable,
      extensionDevelopmentPath: job.extensionPath,
      extensionTestsPath: job.testsPath,
      extensionTestsEnv: job.testsEnv,
      launchArgs: [
        job.workspace,
        `--user-data-dir=${job.userData}`,
        `--extensions-dir=${job.extensions}`,
        '--disable-gpu',
        '--disable-telemetry',
        '--disable-crash-reporter',
        '--no-cached-data',
      ],
    });
  } catch (err) {
    // TestRunFailedError: VS Code exited non-zero (a failed test or a crash); the outer process
    // reads the summary to tell which.
    console.log(`[vscode-electron] ${err?.message || err}`);
    return typeof err?.code === 'number' && err.code !== 0 ? err.code : 1;
  }
}

// ---------------------------------------------------------------------------------------------
// Outer process.
// ---------------------------------------------------------------------------------------------

const NETWORK_CODES = new Set([
  'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENETUNREACH',
  'EHOSTUNREACH', 'ENETDOWN', 'EPIPE', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_HAS_EXPIRED',
]);

/** Why the update service could not be reached, or null when `err` is not a network failure. */
export function networkReason(err, seen = new Set()) {
  if (err === undefined || err === null || seen.has(err)) return null;
  if (typeof err === 'string') return /Failed to get JSON/i.test(err) ? `${UPDATE_HOST} answered with an error status` : null;
  seen.add(err);
  if (typeof err.code === 'string' && NETWORK_CODES.has(err.code)) return `${err.code}${err.hostname ? ` ${err.hostname}` : ''}`;
  const msg = String(err.message ?? '');
  if (err.name === 'TimeoutError' || /request timeout|timed? ?out/i.test(msg)) return msg || 'request timed out';
  if (/getaddrinfo|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ENETUNREACH|socket hang up/i.test(msg)) return msg;
  for (const inner of [err.cause, ...(Array.isArray(err.errors) ? err.errors : [])]) {
    const r = networkReason(inner, seen);
    if (r) return r;
  }
  return null;
}

/** Progress of the download as plain log lines (the default reporter draws a spinner). */
function makeReporter(state) {
  let lastPct = -10;
  return {
    report(r) {
      switch (r.stage) {
        case 'resolvedVersion':
          log(`VS Code ${r.version}`);
          break;
        case 'foundMatchingInstall':
          log(`using the cached build in ${path.relative(REPO_ROOT, r.downloadedPath) || r.downloadedPath}`);
          break;
        case 'downloading': {
          const pct = r.totalBytes ? Math.floor((100 * r.bytesSoFar) / r.totalBytes) : 0;
          if (pct >= lastPct + 10) {
            lastPct = pct - (pct % 10);
            log(`downloading VS Code: ${lastPct}% of ${(r.totalBytes / 2 ** 20).toFixed(0)} MiB`);
          }
          break;
        }
        case 'retrying':
          state.lastError = r.error;
          log(`download failed (${r.error?.message || r.error}); retry ${r.attempt} of ${r.totalAttempts}`);
          break;
        case 'newInstallComplete':
          log(`VS Code unpacked in ${path.relative(REPO_ROOT, r.downloadedPath) || r.downloadedPath}`);
          break;
        default:
          break;
      }
    },
    error(err) {
      state.lastError = err;
    },
  };
}

/** The VS Code executable, or null (after the skip line) when it cannot be downloaded. */
async function resolveVSCode() {
  if (opts.vscode) {
    const exe = path.resolve(opts.vscode);
    if (!existsSync(exe)) throw new HarnessError(`--vscode ${exe} does not exist`);
    log(`VS Code executable given: ${exe} (no download)`);
    return exe;
  }
  const { downloadAndUnzipVSCode } = await import('@vscode/test-electron');
  mkdirSync(VSCODE_CACHE, { recursive: true });
  const state = { lastError: undefined };
  try {
    return await downloadAndUnzipVSCode({
      ...(opts.version ? { version: opts.version } : {}),
      cachePath: VSCODE_CACHE,
      extensionDevelopmentPath: REPO_ROOT,
      reporter: makeReporter(state),
      timeout: 20_000,
    });
  } catch (err) {
    const reason = networkReason(err) ?? networkReason(state.lastError);
    if (reason) {
      console.log(`test:electron skipped: cannot download VS Code from ${UPDATE_HOST} (offline: ${reason})`);
      return null;
    }
    throw new HarnessError(`cannot get VS Code through @vscode/test-electron: ${err?.message || err}${state.lastError ? ` (last error: ${state.lastError?.message || state.lastError})` : ''}`);
  }
}

function onPath(cmd) {
  return (process.env.PATH || '').split(path.delimiter).some((d) => d && existsSync(path.join(d, cmd)));
}

function runStep(what, cmd, args) {
  log(what);
  const r = spawnSync(cmd, args, { cwd: REPO_ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new HarnessError(`${what} failed (exit ${r.status ?? r.signal})`);
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

async function outer() {
  const executable = await resolveVSCode();
  if (!executable) return 0;

  // A desktop session has a display; elsewhere VS Code runs under xvfb-run.
  const hasDisplay = Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY);
  const groups = hasDisplay ? ['electron'] : ['electron', 'xvfb'];
  const sys = spawnSync('bash', [path.join(REPO_ROOT, 'scripts', 'vscode-host', 'system-packages.sh'), 'ensure', ...groups], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (sys.status !== 0) throw new HarnessError('the system packages a desktop VS Code needs are missing (see the line above)');

  if (!hasDisplay && !onPath('xvfb-run')) {
    throw new HarnessError('no display (DISPLAY is unset) and no xvfb-run: install the Debian package xvfb (`sudo apt-get install -y xvfb xauth`) or run from a desktop session');
  }

  if (!opts['no-build']) {
    runStep('npm run build', 'npm', ['run', 'build']);
    runStep('npm run build:tests', 'npm', ['run', 'build:tests']);
  }
  const extensionPath = REPO_ROOT;
  const testsPath = path.join(REPO_ROOT, 'out', 'test', 'integration', 'index.js');
  if (!existsSync(testsPath)) throw new HarnessError(`${testsPath} does not exist: run \`npm run build:tests\` first`);

  const { makeWorkspace } = await import('./make-workspace.mjs');
  const workspace = path.join(ELECTRON_DIR, 'workspace');
  await makeWorkspace(workspace, { samplesCache: path.join(HOST_DIR, 'fixtures-cache') });
  pruneOldRuns(ELECTRON_DIR, Math.max(0, Number(opts['keep-runs']) - 1));
  const dirs = prepareRunDir(ELECTRON_DIR);
  const reportFile = path.join(dirs.results, 'report.txt');
  const summaryFile = path.join(dirs.results, 'summary.json');
  log(`VS Code:   ${executable}`);
  log(`tests:     ${testsPath}`);
  log(`workspace: ${workspace}`);
  log(`run dir:   ${dirs.runDir}`);

  const job = {
    executable,
    extensionPath,
    testsPath,
    workspace,
    userData: dirs.userData,
    extensions: dirs.extensions,
    testsEnv: {
      PRUNESCOPE_TEST_REPORT: reportFile,
      PRUNESCOPE_TEST_SUMMARY: summaryFile,
      PRUNESCOPE_TEST_WORKSPACE: workspace,
      PRUNESCOPE_INTEGRATION_TEST: '1',
      ...(opts.grep ? { PRUNESCOPE_TEST_GREP: opts.grep } : {}),
    },
  };
  const env = hostEnv(dirs, { PRUNESCOPE_ELECTRON_JOB: JSON.stringify(job) });
  const innerCmd = [process.execPath, SELF, '--inner'];
  const [cmd, ...args] = hasDisplay ? innerCmd : ['xvfb-run', '-a', '--server-args=-screen 0 1400x900x24', ...innerCmd];
  log(hasDisplay ? `display ${process.env.DISPLAY || process.env.WAYLAND_DISPLAY}` : 'no DISPLAY: running under xvfb-run -a');

  const timeoutMs = Math.max(0.1, Number(opts['timeout-min']) || 15) * 60_000;
  // detached: its own process group (xvfb-run, Xvfb, VS Code and its helpers), killed as a whole.
  const child = spawn(cmd, args, { cwd: REPO_ROOT, env, detached: true, stdio: ['ignore', 'inherit', 'inherit'] });
  let stopReason = null;
  const stop = (why) => {
    stopReason = why;
    killGroup(child.pid, 'SIGTERM');
    setTimeout(() => killGroup(child.pid, 'SIGKILL'), 5000).unref();
  };
  const timer = setTimeout(() => stop(`overall timeout of ${timeoutMs / 60_000} min reached`), timeoutMs);
  const onSignal = (sig) => stop(`interrupted by ${sig}`);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const exit = await new Promise((resolve) => {
    child.on('error', (err) => resolve({ code: null, error: err }));
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  clearTimeout(timer);
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  killGroup(child.pid, 'SIGKILL'); // leftovers (a VS Code helper that outlived the window)

  if (existsSync(reportFile)) {
    console.log('\n===== integration test report (inside desktop VS Code) =====');
    console.log(readFileSync(reportFile, 'utf8').trimEnd());
    console.log('===== end of report =====\n');
  }
  const summary = readSummary(summaryFile);
  let passed = 0;
  let failed = 1;
  if (exit.error) {
    console.log(`cannot start ${cmd}: ${exit.error.message}`);
  } else if (stopReason) {
    console.log(`The electron run did not finish: ${stopReason}`);
    if (summary) {
      passed = summary.passed;
      failed = summary.failed + 1;
    }
  } else if (!summary) {
    console.log(`VS Code exited (code ${exit.code ?? exit.signal}) without a test summary (${summaryFile}); logs in ${path.join(dirs.userData, 'logs')}`);
  } else {
    passed = summary.passed;
    failed = summary.failed;
    if (exit.code !== 0 && failed === 0) {
      console.log(`VS Code exited with code ${exit.code ?? exit.signal} although no test failed.`);
      failed = 1;
    }
    for (const f of summary.failures ?? []) console.log(`FAILED: ${f.title}\n  ${String(f.error).split('\n').slice(0, 6).join('\n  ')}`);
  }
  log(`done in ${((Date.now() - startedAt) / 1000).toFixed(1)} s (logs kept in ${dirs.runDir})`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed > 0 || passed === 0 ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  (opts.inner ? inner() : outer()).then(
    (code) => process.exit(code),
    (err) => {
      console.error(`[vscode-electron] ${err instanceof HarnessError ? err.message : err?.stack || err}`);
      if (!opts.inner) console.log('0 passed, 1 failed');
      process.exit(1);
    },
  );
}
