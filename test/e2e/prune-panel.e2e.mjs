#!/usr/bin/env node
// End-to-end: drives the real VS Code UI (code-server + headless Chromium through Playwright),
// as a user would: right-click a model in the explorer -> "Prune Model…" -> answer the quick
// picks -> the analysis panel shows the before/after report. Once in a dark and once in a light
// theme, it saves PNG screenshots of the panel (summary, comparison, heatmaps) into
// test-output/screenshots/ and checks what the panel shows.
//
// Usage: npm run build && npm run build:tests && node test/e2e/prune-panel.e2e.mjs [--themes dark,light] [--keep]
// Prints `N passed, N failed` last (one check per theme phase).
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { HOST_DIR, REPO_ROOT } from '../../scripts/vscode-host/host-paths.mjs';
import { makeWorkspace } from '../../scripts/vscode-host/make-workspace.mjs';
import { check, freePort, killGroup, log, openWorkbench, phaseDirs, runThemes, sleep, startCodeServer, workbenchActions } from './harness.mjs';

const { values: opts } = parseArgs({
  options: {
    themes: { type: 'string', default: 'dark,light' },
    keep: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(REPO_ROOT, 'test-output', 'screenshots') },
  },
});


/** One phase: a theme, a fresh workspace, the whole right-click -> prune -> report flow, screenshots. */
async function runPhase(browser, theme) {
  const d = phaseDirs('e2e', theme, { 'prunescope.datasetPath': 'samples/neumf-candidates.csv' });
  await makeWorkspace(d.workspace, { samplesCache: path.join(HOST_DIR, 'fixtures-cache') });
  const port = await freePort();
  const server = startCodeServer(d, port);
  const shots = [];
  let page;
  try {
    const opened = await openWorkbench(browser, port, d, theme);
    page = opened.page;
    const consoleErrors = opened.pageErrors;

    const { quick, palette, row, menuItem, contextMenu: openMenu } = workbenchActions(page);

    // the PruneScope Models view: every fixture model with format, size, parameters, sparsity
    await palette('PruneScope: Focus on Models View');
    const modelsView = page.locator('.pane-body:has(.monaco-list-row:has-text("neumf.onnx"))').first();
    await page.locator('.monaco-list-row', { hasText: 'params' }).first().waitFor({ timeout: 60_000 });
    for (let i = 0; i < 120 && (await page.locator('.monaco-list-row', { hasText: 'scanning…' }).count()) > 0; i++) await sleep(500);
    await sleep(500);
    const viewText = await modelsView.innerText().catch(() => '');
    check(/ONNX · .+ params · .+% sparse/.test(viewText), `the Models view shows no scan details: ${viewText.slice(0, 300)}`);
    await page.screenshot({ path: path.join(opts.out, `${theme}-00-models-view.png`) });
    shots.push(`${theme}-00-models-view.png`);

    // the explorer: expand samples/, right-click neumf.onnx
    await page.keyboard.press('Control+Shift+E');
    await row('samples').waitFor({ timeout: 30_000 });
    await row('samples').click();
    await row('neumf.onnx').waitFor({ timeout: 15_000 });
    // the menu must offer PruneScope's commands on a model file, and not on other files
    const contextMenu = (name) => openMenu(name, async () => (await menuItem('Copy Path').count()) > 0 && (name.endsWith('.csv') || (await menuItem('Prune Model').count()) > 0));
    await contextMenu('neumf-candidates.csv');
    check((await menuItem('Prune Model').count()) === 0, 'Prune Model… is offered on a CSV file');
    await page.keyboard.press('Escape');
    await sleep(300);
    await contextMenu('neumf.onnx');
    await menuItem('Prune Model').waitFor({ timeout: 10_000 });
    check((await menuItem('Analyze Model').count()) === 1, 'Analyze Model is missing from the context menu');
    await page.screenshot({ path: path.join(opts.out, `${theme}-0-context-menu.png`) });
    shots.push(`${theme}-0-context-menu.png`);
    await menuItem('Prune Model').click();

    // the quick picks: method, share, scope, output
    const answer = async (filter, what) => {
      await quick.waitFor({ state: 'visible', timeout: 15_000 });
      const title = (await quick.locator('.quick-input-title').textContent().catch(() => '')) || '';
      log(`${theme}: "${title.trim()}" <- ${what}`);
      if (filter !== null) await page.keyboard.type(filter);
      await sleep(300);
      await page.keyboard.press('Enter');
      await sleep(500);
    };
    await answer('Magnitude', 'Magnitude (unstructured weights)');
    await answer('50%', '50%');
    await answer('global', 'global');
    await page.screenshot({ path: path.join(opts.out, `${theme}-1-output-box.png`) });
    shots.push(`${theme}-1-output-box.png`);
    await answer(null, 'the default output path');

    // the job runs with a progress notification; the panel then shows the comparison
    const frame = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
    await frame.locator('#comparison').waitFor({ timeout: 120_000 });
    log(`${theme}: the panel shows the before/after report`);
    const out = path.join(d.workspace, 'samples', 'neumf-prune-magnitude.onnx');
    check(existsSync(out), `${out} was not written`);
    const compareText = await frame.locator('#comparison').innerText();
    for (const want of ['Parameters', 'Size on disk', 'gzip size', 'Latency p50', 'HR@10', 'NDCG@10']) {
      check(compareText.includes(want), `the comparison does not show ${want}`);
    }
    await sleep(1500);
    // screenshots without toasts and with the side bar closed: the panel is the subject
    await page.addStyleTag({ content: '.notifications-toasts, .notification-toast-container { display: none !important; }' });
    await page.keyboard.press('Control+B');
    await sleep(800);
    const webview = page.locator('iframe.webview.ready').first();
    const shootPanel = async (name) => {
      await webview.screenshot({ path: path.join(opts.out, name) });
      shots.push(name);
    };
    await frame.locator('#comparison').evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await sleep(300);
    await shootPanel(`${theme}-2-comparison.png`);
    await frame.locator('#summary').evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await sleep(300);
    await shootPanel(`${theme}-3-summary.png`);
    // the analysis sections switch to the compressed model: its layer-wise sparsity is the point
    await frame.locator('#comparison vscode-button[data-view="after"]').click();
    await frame.locator('#summary .pill', { hasText: 'compressed' }).waitFor({ timeout: 5_000 });
    const grid = await frame.locator('#sparsity table.heat-grid').innerText();
    check(/[1-9]\d%/.test(grid), `the compressed model's sparsity grid shows no pruned layer: ${grid.slice(0, 200)}`);
    await frame.locator('#sparsity').evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await sleep(300);
    await shootPanel(`${theme}-4-sparsity-layers.png`);
    // the per-tensor heatmap: zoom in with the button, hover a cell
    const tensor = frame.locator('#tensor');
    await tensor.evaluate((e) => e.scrollIntoView({ block: 'start' }));
    const heat = tensor.locator('canvas.tiles');
    await heat.waitFor({ timeout: 10_000 });
    await tensor.locator('vscode-button', { hasText: '+' }).first().click();
    await sleep(200);
    const box = await heat.boundingBox();
    if (box) await page.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.3);
    await sleep(300);
    const tip = await tensor.locator('.tip').first().innerText();
    check(/mean \|w\|/.test(tip), `hovering the heatmap shows no values: "${tip}"`);
    await shootPanel(`${theme}-5-heatmaps.png`);
    await frame.locator('#tensor canvas.chart').first().evaluate((e) => e.scrollIntoView({ block: 'center' }));
    await sleep(300);
    await shootPanel(`${theme}-6-histogram-spectrum.png`);
    await page.screenshot({ path: path.join(opts.out, `${theme}-7-window.png`) });
    shots.push(`${theme}-7-window.png`);

    // the palette: Sensitivity Analysis on the same model (dataset from the settings)
    await palette('PruneScope: Sensitivity Analysis');
    await answer('neumf.onnx', 'samples/neumf.onnx');
    await frame.locator('#sensitivity canvas.chart').waitFor({ timeout: 180_000 });
    log(`${theme}: the panel shows the sensitivity curves`);
    await sleep(800);
    await frame.locator('#sensitivity').evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await sleep(300);
    await shootPanel(`${theme}-8-sensitivity.png`);

    // a finding's button in the panel starts its job; the panel then shows that job's report
    const findingButton = frame.locator('#findings vscode-button', { hasText: 'Quantize to int8' }).first();
    await findingButton.scrollIntoViewIfNeeded();
    await findingButton.click();
    await frame.locator('#comparison h2', { hasText: 'quantize' }).waitFor({ timeout: 120_000 });
    const quantText = await frame.locator('#comparison').innerText();
    check(/int8/.test(quantText), 'the quantize report does not mention int8');
    await sleep(800);
    await frame.locator('#comparison').evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await sleep(300);
    await shootPanel(`${theme}-9-finding-quantized.png`);
    check(consoleErrors.filter((e) => /prunescope|webview\.js/i.test(e)).length === 0, `page errors: ${consoleErrors.join(' | ')}`);
    await page.close();
    return shots;
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(opts.out, `${theme}-failure.png`) }).catch(() => undefined);
    throw e;
  } finally {
    await killGroup(server);
    if (!opts.keep) rmSync(d.runDir, { recursive: true, force: true });
  }
}

runThemes({ themes: opts.themes, out: opts.out, runPhase });
