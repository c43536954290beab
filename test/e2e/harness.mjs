// What the Playwright e2e scripts share: a free port, a run folder per phase (fresh user data in a
// theme, so VS Code restores nothing), code-server started on it and stopped as a process group,
// a health wait, and the log / check helpers.

import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CHROMIUM_BIN, CODE_SERVER_ENTRY, HOST_DIR, NODE_BIN, NODE_BIN_DIR, REPO_ROOT, TEST_USER_SETTINGS, readInstalledHost } from '../../scripts/vscode-host/host-paths.mjs';

export const THEMES = { dark: 'Default Dark Modern', light: 'Default Light Modern' };

const started = Date.now();
export const log = (m) => console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${m}`);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function check(cond, message) {
  if (!cond) throw new Error(message);
}

export { freePort } from '../../scripts/vscode-host/run-dirs.mjs';

/** Stops a detached child and everything it started: SIGTERM, up to 5 s, then SIGKILL. */
export async function killGroup(child) {
  if (!child?.pid) return;
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(-child.pid, 0);
    } catch {
      return;
    }
    await sleep(100);
  }
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** A fresh run folder `<HOST_DIR>/<tag>-<theme>-<pid>` with quiet user settings in `theme`, plus `settings`. */
export function phaseDirs(tag, theme, settings = {}) {
  const runDir = path.join(HOST_DIR, `${tag}-${theme}-${process.pid}`);
  rmSync(runDir, { recursive: true, force: true });
  const d = {
    runDir,
    home: path.join(runDir, 'home'),
    xdg: path.join(runDir, 'xdg'),
    userData: path.join(runDir, 'user-data'),
    extensions: path.join(runDir, 'extensions'),
    workspace: path.join(runDir, 'workspace'),
  };
  for (const p of Object.values(d)) mkdirSync(p, { recursive: true });
  mkdirSync(path.join(d.userData, 'User'), { recursive: true });
  const user = {
    ...TEST_USER_SETTINGS,
    'workbench.colorTheme': THEMES[theme],
    'workbench.tips.enabled': false,
    'workbench.editor.enablePreview': false,
    'chat.commandCenter.enabled': false,
    'chat.disableAIFeatures': true,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    ...settings,
  };
  writeFileSync(path.join(d.userData, 'User', 'settings.json'), JSON.stringify(user, null, 2));
  return d;
}

/** code-server on 127.0.0.1:port serving `d.workspace`, its output in `<runDir>/code-server.log`. */
export function startCodeServer(d, port) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('VSCODE_') || k === 'ELECTRON_RUN_AS_NODE') delete env[k];
  Object.assign(env, {
    HOME: d.home,
    XDG_CONFIG_HOME: path.join(d.xdg, 'config'),
    XDG_DATA_HOME: path.join(d.xdg, 'data'),
    XDG_CACHE_HOME: path.join(d.xdg, 'cache'),
    XDG_STATE_HOME: path.join(d.xdg, 'state'),
    PATH: `${NODE_BIN_DIR}${path.delimiter}${process.env.PATH || ''}`,
  });
  const config = path.join(d.runDir, 'config.yaml');
  writeFileSync(config, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const args = [
    CODE_SERVER_ENTRY, '--config', config, '--user-data-dir', d.userData, '--extensions-dir', d.extensions,
    '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check',
    '--disable-workspace-trust', '--vscode-option', 'enable-smoke-test-driver', d.workspace,
  ];
  const out = createWriteStream(path.join(d.runDir, 'code-server.log'));
  const child = spawn(NODE_BIN, args, { cwd: d.home, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  return child;
}

export async function waitHealthy(port) {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      /* not yet */
    }
    await sleep(250);
  }
  throw new Error('code-server did not become healthy');
}

/**
 * The whole run: checks the host and the builds, launches headless Chromium, runs `runPhase`
 * once per theme (a failed phase is reported and the next one still runs), prints
 * `N passed, N failed` last and exits with 0 only when all passed.
 */
export function runThemes({ themes, out, runPhase, summary }) {
  const main = async () => {
    if (!readInstalledHost()) throw new Error('the VS Code host is not installed: run node scripts/vscode-host/setup.mjs');
    check(existsSync(path.join(REPO_ROOT, 'dist', 'extension.js')), 'dist/extension.js is missing: npm run build');
    check(existsSync(path.join(REPO_ROOT, 'out', 'test', 'fixtures', 'write-fixtures.js')), 'out/test/fixtures is missing: npm run build:tests');
    mkdirSync(out, { recursive: true });
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM_BIN,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
    });
    let passed = 0;
    let failed = 0;
    try {
      for (const theme of themes.split(',').map((t) => t.trim()).filter(Boolean)) {
        if (!THEMES[theme]) throw new Error(`unknown theme ${theme} (dark, light)`);
        try {
          const shots = await runPhase(browser, theme);
          log(`${theme}: ok, screenshots: ${shots.join(', ')}`);
          passed++;
        } catch (e) {
          failed++;
          console.log(`FAILED (${theme}): ${e?.stack || e}`);
        }
      }
    } finally {
      await browser.close();
    }
    summary?.();
    log(`screenshots in ${out}`);
    console.log(`${passed} passed, ${failed} failed`);
    return failed === 0 ? 0 : 1;
  };
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(e?.stack || e);
      console.log('0 passed, 1 failed');
      process.exit(1);
    },
  );
}

/**
 * Opens the workbench of the code-server at `port` on `d.workspace` with this repository as the
 * extension under development; page errors are collected in `pageErrors`.
 */
export async function openWorkbench(browser, port, d, theme) {
  await waitHealthy(port);
  const remote = (p) => `vscode-remote://127.0.0.1:${port}${p}`;
  const payload = [
    ['extensionDevelopmentPath', remote(REPO_ROOT)],
    ['skipWelcome', 'true'],
  ];
  const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(d.workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const page = await browser.newPage({ viewport: { width: 1440, height: 960 }, deviceScaleFactor: 1 });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 90_000 });
  await page.waitForSelector('.monaco-workbench', { timeout: 90_000 });
  log(`${theme}: workbench loaded`);
  await sleep(3000);
  return { page, pageErrors };
}

/**
 * The workbench's command palette, explorer rows and context menu, for the e2e scripts. VS Code
 * lists commands and menu entries as they were when the palette or menu opened (the extension may
 * still be activating), so both are reopened until what is wanted is there.
 */
export function workbenchActions(page) {
  const quick = page.locator('.quick-input-widget');
  const palette = async (command) => {
    for (let attempt = 0; attempt < 5; attempt++) {
      await page.keyboard.press('F1');
      await quick.waitFor({ state: 'visible', timeout: 10_000 });
      await page.keyboard.type(command);
      await sleep(800);
      if ((await quick.locator('.quick-input-list .monaco-list-row', { hasText: command.replace(/^.*?: /, '') }).count()) > 0) {
        await page.keyboard.press('Enter');
        return;
      }
      await page.keyboard.press('Escape');
      await sleep(1500);
    }
    throw new Error(`the command palette never listed "${command}"`);
  };
  const row = (name) => page.getByRole('treeitem', { name, exact: true }).first();
  const menuItem = (text) => page.locator('.monaco-menu .action-item .action-label', { hasText: text }).first();
  /**
   * Opens the explorer's context menu of row `name` (selected first: the menu's context keys
   * follow the focused row) until `ready()` says its entries are there; false if they never were.
   */
  const contextMenu = async (name, ready) => {
    for (let attempt = 0; attempt < 5; attempt++) {
      await row(name).click();
      await sleep(400);
      await row(name).click({ button: 'right' });
      await page.locator('.monaco-menu').first().waitFor({ timeout: 10_000 });
      await sleep(400);
      if (await ready()) return true;
      await page.keyboard.press('Escape');
      await sleep(1500);
    }
    return false;
  };
  return { quick, palette, row, menuItem, contextMenu };
}
