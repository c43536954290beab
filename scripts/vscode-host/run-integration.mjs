#!/usr/bin/env node
// Runs the integration tests (out/test/integration/*.test.js) inside a real VS Code extension
// host: code-server 4.139.1 on Node 24, opened by headless Chromium through Playwright with the
// smoke-test driver's `payload` (extensionDevelopmentPath / extensionTestsPath). Why this way:
// /work/shared/notes/VSCODE_HOST.md.
//
// Usage: node scripts/vscode-host/run-integration.mjs [--extension-path DIR] [--tests-path FILE]
//          [--timeout-min N] [--grep TEXT] [--keep-runs N]
// Prints the mocha report and, last, exactly `N passed, N failed`. Exit 0 only if all passed.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  CHROMIUM_BIN,
  CODE_SERVER_ENTRY,
  HOST_DIR,
  NODE_BIN,
  NODE_BIN_DIR,
  REPO_ROOT,
  readInstalledHost,
} from './host-paths.mjs';
import { makeWorkspace } from './make-workspace.mjs';
import { freePort, hostEnv, prepareRunDir, pruneOldRuns, readSummary } from './run-dirs.mjs';

const { values: opts } = parseArgs({
  options: {
    'extension-path': { type: 'string', default: process.env.PRUNESCOPE_EXTENSION_PATH || REPO_ROOT },
    'tests-path': { type: 'string', default: process.env.PRUNESCOPE_TESTS_PATH || path.join(REPO_ROOT, 'out', 'test', 'integration', 'index.js') },
    'timeout-min': { type: 'string', default: process.env.PRUNESCOPE_TEST_TIMEOUT_MIN || '10' },
    grep: { type: 'string', default: process.env.PRUNESCOPE_TEST_GREP || '' },
    'keep-runs': { type: 'string', default: '3' },
  },
});

const STAGE_TIMEOUTS_MS = {
  serverHealthy: 90_000,
  pageLoaded: 90_000,
  // From page load to index.ts writing its first report line: workbench + extension host start.
  testsStarted: 150_000,
};
const OVERALL_TIMEOUT_MS = Math.max(0.1, Number(opts['timeout-min']) || 10) * 60_000;
const startedAt = Date.now();
const log = (msg) => console.log(`[vscode-host ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

/** A failure of the harness itself (not of a test): printed, then counted as one failed test. */
class HarnessError extends Error {}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


function tail(file, lines) {
  try {
    const text = readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(cannot read ${file}: ${err.message})`;
  }
}

function findFiles(dir, test, out = []) {
  let entries = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) findFiles(p, test, out);
    else if (test(e.name, p)) out.push(p);
  }
  return out;
}

function ensureHost() {
  if (readInstalledHost()) return;
  log('VS Code host not installed yet: running scripts/vscode-host/setup.mjs');
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'vscode-host', 'setup.mjs')], { stdio: 'inherit' });
  if (r.status !== 0 || !readInstalledHost()) throw new HarnessError('setting up the VS Code host failed (see above)');
}

function checkInputs(extensionPath, testsPath) {
  const pkgFile = path.join(extensionPath, 'package.json');
  if (!existsSync(pkgFile)) throw new HarnessError(`no extension at ${extensionPath} (package.json missing)`);
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
  if (pkg.main) {
    const main = path.resolve(extensionPath, pkg.main);
    const candidates = [main, `${main}.js`];
    if (!candidates.some((c) => existsSync(c))) throw new HarnessError(`extension main ${main} does not exist: run \`npm run build\` first`);
  }
  if (!existsSync(testsPath)) throw new HarnessError(`test entry ${testsPath} does not exist: run \`npm run build:tests\` first`);
  const testDir = path.dirname(testsPath);
  if (!readdirSync(testDir).some((f) => f.endsWith('.test.js'))) throw new HarnessError(`no *.test.js next to ${testsPath}`);
  if (!existsSync(CHROMIUM_BIN)) throw new HarnessError(`${CHROMIUM_BIN} not found: install the Debian package chromium`);
}

function startCodeServer(dirs, port, workspace) {
  const config = path.join(dirs.runDir, 'config.yaml');
  writeFileSync(config, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const env = hostEnv(dirs, { PATH: `${NODE_BIN_DIR}${path.delimiter}${process.env.PATH || ''}` });
  const args = [
    CODE_SERVER_ENTRY,
    '--config', config,
    '--user-data-dir', dirs.userData,
    '--extensions-dir', dirs.extensions,
    '--bind-addr', `127.0.0.1:${port}`,
    '--auth', 'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--vscode-option', 'enable-smoke-test-driver',
    workspace,
  ];
  const logFile = path.join(dirs.runDir, 'code-server.log');
  const out = createWriteStream(logFile);
  // `detached` makes the child call setsid(2): it leads its own process group, so killing
  // the group also stops the extension host and the other children code-server forks.
  const child = spawn(NODE_BIN, args, { cwd: dirs.home, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, logFile };
}

async function killGroup(child) {
  if (!child || child.pid === undefined) return;
  const alive = () => {
    try {
      process.kill(-child.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 50 && alive(); i++) await sleep(100);
  if (alive()) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

async function waitHealthy(port, server) {
  const deadline = Date.now() + STAGE_TIMEOUTS_MS.serverHealthy;
  let exited = null;
  server.child.exited.then((r) => (exited = r));
  while (Date.now() < deadline) {
    if (exited) throw new HarnessError(`code-server exited during start (code ${exited.code}, signal ${exited.signal})`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    await sleep(250);
  }
  throw new HarnessError(`code-server did not answer /healthz within ${STAGE_TIMEOUTS_MS.serverHealthy / 1000} s`);
}

function payloadUrl(port, workspace, extensionPath, testsPath, env) {
  const remote = (p) => `vscode-remote://127.0.0.1:${port}${p}`;
  const payload = [
    ['extensionDevelopmentPath', remote(extensionPath)],
    ['extensionTestsPath', remote(testsPath)],
    ['extensionEnvironment', JSON.stringify(env)],
    ['skipWelcome', 'true'],
  ];
  return `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

/** Polls until `predicate()` is truthy, `stop()` returns a reason to give up, or the time is out. */
async function waitFor(what, timeoutMs, predicate, stop) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await predicate();
    if (v) return v;
    const reason = stop();
    if (reason) throw new HarnessError(`${reason} (while waiting: ${what})`);
    await sleep(250);
  }
  throw new HarnessError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting: ${what}`);
}

function printDiagnostics(dirs, server, browserLog) {
  console.log('\n===== diagnostics =====');
  if (server) {
    console.log(`--- code-server output (${server.logFile}), last 60 lines ---`);
    console.log(tail(server.logFile, 60));
  }
  const logsDir = path.join(dirs.userData, 'logs');
  // The extension host's own log (not the per-extension output channels beside it).
  const exthostLogs = findFiles(logsDir, (name) => /^(remote)?exthost\.log$/i.test(name));
  const serverLogs = findFiles(logsDir, (name) => /^(remoteagent|ptyhost|sharedprocess)\.log$/.test(name));
  // The extension's own LogOutputChannels land in exthostN/<publisher.name>/<channel>.log.
  const extensionLogs = findFiles(logsDir, (name, p) => name.endsWith('.log') && /[\\/]prunescope\.[^\\/]+[\\/]/i.test(p));
  for (const f of [...extensionLogs, ...exthostLogs, ...serverLogs]) {
    console.log(`--- ${path.relative(dirs.runDir, f)}, last 60 lines ---`);
    console.log(tail(f, 60));
  }
  if (exthostLogs.length === 0) console.log(`(no extension host log under ${logsDir})`);
  if (browserLog.length > 0) {
    console.log('--- browser console (errors and warnings), last 40 ---');
    console.log(browserLog.slice(-40).join('\n'));
  }
  console.log(`(all logs kept in ${dirs.runDir})`);
  console.log('===== end of diagnostics =====\n');
}

async function main() {
  const extensionPath = path.resolve(opts['extension-path']);
  const testsPath = path.resolve(opts['tests-path']);
  ensureHost();
  checkInputs(extensionPath, testsPath);
  mkdirSync(HOST_DIR, { recursive: true });
  pruneOldRuns(HOST_DIR, Math.max(0, Number(opts['keep-runs']) - 1));

  const workspace = path.join(HOST_DIR, 'workspace');
  await makeWorkspace(workspace, { samplesCache: path.join(HOST_DIR, 'fixtures-cache') });
  const dirs = prepareRunDir(HOST_DIR);
  const reportFile = path.join(dirs.results, 'report.txt');
  const summaryFile = path.join(dirs.results, 'summary.json');
  const port = await freePort();
  log(`extension: ${extensionPath}`);
  log(`tests:     ${testsPath}`);
  log(`workspace: ${workspace}`);
  log(`run dir:   ${dirs.runDir}`);

  let server = null;
  let browser = null;
  const browserLog = [];
  let outcome; // { exitCode?: number, error?: HarnessError }
  const overallDeadline = Date.now() + OVERALL_TIMEOUT_MS;

  let interrupted = null;
  const onSignal = (sig) => {
    interrupted = sig;
    // Stop code-server's whole group now; the waits below notice and the run ends as failed.
    if (server?.child.pid !== undefined) {
      try {
        process.kill(-server.child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    server = startCodeServer(dirs, port, workspace);
    let serverExit = null;
    server.child.exited.then((r) => (serverExit = r));
    log(`code-server starting on 127.0.0.1:${port} (pid ${server.child.pid}, own process group)`);
    await waitHealthy(port, server);
    log('code-server healthy');

    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM_BIN,
      headless: true,
      // This script's own handlers stop code-server and still print the summary line.
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
      // Chromium writes crash-report and dconf folders under HOME/XDG even with its temp profile.
      env: { ...process.env, HOME: dirs.home, XDG_CONFIG_HOME: dirs.xdgConfig, XDG_CACHE_HOME: dirs.xdgCache, XDG_DATA_HOME: dirs.xdgData },
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') browserLog.push(`[${m.type()}] ${m.text()}`);
    });
    page.on('pageerror', (e) => browserLog.push(`[pageerror] ${e.message}`));
    let automationExit = null;
    await page.exposeFunction('codeAutomationExit', (code) => {
      automationExit = typeof code === 'number' ? code : Number(code);
    });

    const extEnv = {
      PRUNESCOPE_TEST_REPORT: reportFile,
      PRUNESCOPE_TEST_SUMMARY: summaryFile,
      PRUNESCOPE_TEST_WORKSPACE: workspace,
      PRUNESCOPE_INTEGRATION_TEST: '1',
      ...(opts.grep ? { PRUNESCOPE_TEST_GREP: opts.grep } : {}),
    };
    const url = payloadUrl(port, workspace, extensionPath, testsPath, extEnv);
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: STAGE_TIMEOUTS_MS.pageLoaded });
    await page.waitForSelector('.monaco-workbench', { timeout: STAGE_TIMEOUTS_MS.pageLoaded });
    log('workbench loaded; waiting for the extension host to start the tests');

    const stop = () => {
      if (interrupted) return `interrupted by ${interrupted}`;
      if (serverExit) return `code-server exited (code ${serverExit.code}, signal ${serverExit.signal})`;
      if (!browser.isConnected()) return 'the browser went away';
      if (Date.now() > overallDeadline) return `overall timeout of ${OVERALL_TIMEOUT_MS / 60_000} min reached`;
      return null;
    };
    await waitFor(
      'the extension host to load test/integration/index.js',
      STAGE_TIMEOUTS_MS.testsStarted,
      () => existsSync(reportFile) || automationExit !== null,
      stop,
    );
    log('tests running');
    await waitFor(
      `the test run to finish (codeAutomationExit); overall limit ${OVERALL_TIMEOUT_MS / 60_000} min`,
      Math.max(0, overallDeadline - Date.now()),
      () => automationExit !== null,
      stop,
    );
    // The summary is written before run() settles; allow a moment for the file system anyway.
    await waitFor('the JSON summary', 5000, () => readSummary(summaryFile), () => null).catch(() => null);
    outcome = { exitCode: automationExit };
    log(`test run finished, exit code ${automationExit}`);
  } catch (err) {
    outcome = { error: err instanceof HarnessError ? err : new HarnessError(err?.stack || String(err)) };
  } finally {
    if (browser) await browser.close().catch(() => {});
    if (server) await killGroup(server.child);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }

  if (existsSync(reportFile)) {
    console.log('\n===== integration test report (inside VS Code) =====');
    console.log(readFileSync(reportFile, 'utf8').trimEnd());
    console.log('===== end of report =====\n');
  }
  const summary = readSummary(summaryFile);
  let passed = 0;
  let failed = 1;
  if (outcome.error) {
    console.log(`The integration run did not finish: ${outcome.error.message}`);
    if (summary) {
      // Some tests may have run before the harness failed; report them, plus the harness failure.
      passed = summary.passed;
      failed = summary.failed + 1;
    }
  } else if (!summary) {
    console.log(`The extension host reported exit code ${outcome.exitCode} but wrote no summary (${summaryFile}).`);
  } else {
    passed = summary.passed;
    failed = summary.failed;
    if (outcome.exitCode !== 0 && failed === 0) {
      console.log(`The extension host reported exit code ${outcome.exitCode} although no test failed.`);
      failed = 1;
    }
    for (const f of summary.failures ?? []) console.log(`FAILED: ${f.title}\n  ${String(f.error).split('\n').slice(0, 6).join('\n  ')}`);
  }
  if (failed > 0) printDiagnostics(dirs, server, browserLog);
  log(`done in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed > 0 || passed === 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`[vscode-host] ${err instanceof HarnessError ? err.message : err?.stack || err}`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  },
);
