#!/usr/bin/env node
// Renders the analysis panel (dist/webview.js in its static mode, the HTML export's) in headless
// Chromium with real data and saves screenshots:
//   media/screenshots/panel-front.png   the Pareto front of a compress-to-target search on the sample
//                                       NeuMF, its table, and the tensor heatmaps (README picture)
//   media/screenshots/panel-graph.png   the graph view coloured by near-zero rows
//   test-output/screenshots/panel-*.png history and the 2,000-node graph
// and measures the graph view on a generated 2,000-node graph: layout time, first frame, slowest
// frame while panning (and long tasks), folded and fully expanded.
//
// Usage: npm run build && npm run build:tests && node scripts/panel-screenshot.mjs [--theme dark|light]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = (p) => require(path.join(ROOT, 'out', p));
const { readModel } = out('src/core/model/read-model.js');
const { analyzeModel } = out('src/core/analysis/analyze-model.js');
const { buildGraphView } = out('src/core/analysis/graph-view.js');
const { CompressPlanner } = out('src/core/compress/plan/planner.js');
const { chromium } = require('playwright-core');

const { values: opts } = parseArgs({ options: { theme: { type: 'string', default: 'dark' }, model: { type: 'string' }, candidates: { type: 'string' } } });
const cache = path.join(ROOT, '.vscode-test', 'fixtures-cache');
const model = opts.model ?? path.join(cache, 'neumf.onnx');
const candidates = opts.candidates ?? path.join(cache, 'neumf-candidates.csv');
if (!existsSync(model) || !existsSync(candidates)) throw new Error(`${model} or ${candidates} missing: run the VS Code test host once (it caches the sample fixtures) or pass --model/--candidates`);

// VS Code's Dark Modern / Light Modern colours the panel reads (a webview gets them from VS Code)
const THEMES = {
  dark: { kind: 'vscode-dark', vars: { foreground: '#cccccc', 'editor-background': '#1f1f1f', descriptionForeground: '#9d9d9d', 'widget-border': '#313131', 'panel-border': '#2b2b2b', 'charts-blue': '#3794ff', 'charts-orange': '#d18616', 'charts-green': '#89d185', 'charts-red': '#f14c4c', 'editorWidget-background': '#202020', 'badge-background': '#616161', 'badge-foreground': '#f8f8f8', 'list-activeSelectionBackground': '#04395e', 'list-activeSelectionForeground': '#ffffff', 'dropdown-background': '#313131', 'dropdown-foreground': '#cccccc', 'dropdown-border': '#3c3c3c', 'button-background': '#0078d4', 'button-foreground': '#ffffff', 'button-secondaryBackground': '#313131', 'button-secondaryForeground': '#cccccc', 'font-family': 'system-ui, sans-serif', 'font-size': '13px', 'editor-font-family': 'monospace', focusBorder: '#0078d4' } },
  light: { kind: 'vscode-light', vars: { foreground: '#3b3b3b', 'editor-background': '#ffffff', descriptionForeground: '#6f6f6f', 'widget-border': '#e5e5e5', 'panel-border': '#e5e5e5', 'charts-blue': '#1a85ff', 'charts-orange': '#d18616', 'charts-green': '#388a34', 'charts-red': '#e51400', 'editorWidget-background': '#f8f8f8', 'badge-background': '#cccccc', 'badge-foreground': '#3b3b3b', 'list-activeSelectionBackground': '#e8e8e8', 'list-activeSelectionForeground': '#000000', 'dropdown-background': '#ffffff', 'dropdown-foreground': '#3b3b3b', 'dropdown-border': '#cecece', 'button-background': '#005fb8', 'button-foreground': '#ffffff', 'button-secondaryBackground': '#e5e5e5', 'button-secondaryForeground': '#3b3b3b', 'font-family': 'system-ui, sans-serif', 'font-size': '13px', 'editor-font-family': 'monospace', focusBorder: '#005fb8' } },
};
const theme = THEMES[opts.theme] ?? THEMES.dark;

function page(dir, name, data) {
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  const vars = Object.entries(theme.vars).map(([k, v]) => `--vscode-${k}: ${v};`).join(' ');
  const file = path.join(dir, `${name}.html`);
  writeFileSync(file, `<!DOCTYPE html><html lang="en" style="${vars}"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data: blob:; style-src file: 'unsafe-inline'; script-src file:">
<link rel="stylesheet" href="${pathToFileURL(path.join(ROOT, 'media', 'panel.css'))}"></head>
<body class="${theme.kind}"><main id="app"></main>
<script id="prunescope-data" type="application/json">${json}</script>
<script src="${pathToFileURL(path.join(ROOT, 'dist', 'webview.js'))}"></script></body></html>`);
  return pathToFileURL(file).href;
}

/** The unit test's 2,000-node graph: 2 towers of 199 residual blocks of 5 nodes, a join, a head. */
function bigGraph() {
  const nodes = [];
  const tensors = [];
  const weight = (name, params, zeros) => {
    tensors.push({ name, params, zeros, nearZeros: zeros, nonFinite: 0, shape: [params], dtype: 'float32', storedDtype: 'float32', role: 'dense-kernel', layer: name, trainable: true, bytes: params * 4, min: -1, max: 1, mean: 0, std: 1, absMean: 0.5, histogram: { edges: [], counts: [], zeroCount: 0 }, quantError: { int8: { maxAbs: 0.01, rmse: 0.001, relRmse: 0.002 + (params % 7) / 1000, granularity: 'per-tensor' }, float16: { maxAbs: 0, rmse: 0, relRmse: 0, overflow: 0 } }, sparsityMeaning: 'a missing connection' });
    return name;
  };
  for (const tower of ['u', 'i']) {
    let h = `${tower}_in`;
    for (let k = 0; k < 199; k++) {
      const p = `${tower}${k}`;
      nodes.push({ name: `${p}/MatMul`, op: 'MatMul', inputs: [h, weight(`${p}.w`, 256 + (k % 9) * 32, k % 256)], outputs: [`${p}.m`], attrs: {} });
      nodes.push({ name: `${p}/Add`, op: 'Add', inputs: [`${p}.m`, weight(`${p}.b`, 16, 0)], outputs: [`${p}.a`], attrs: {} });
      nodes.push({ name: `${p}/Relu`, op: 'Relu', inputs: [`${p}.a`], outputs: [`${p}.r`], attrs: {} });
      nodes.push({ name: `${p}/Mul`, op: 'Mul', inputs: [`${p}.r`, weight(`${p}.s`, 16, 0)], outputs: [`${p}.s2`], attrs: {} });
      nodes.push({ name: `${p}/Res`, op: 'Add', inputs: [`${p}.s2`, h], outputs: [`${p}.out`], attrs: {} });
      h = `${p}.out`;
    }
  }
  nodes.push({ name: 'join', op: 'Mul', inputs: ['u198.out', 'i198.out'], outputs: ['j'], attrs: {} });
  for (let k = 0; k < 9; k++) nodes.push({ name: `head${k}`, op: k % 2 ? 'Sigmoid' : 'ReduceSum', inputs: [k ? `hd${k - 1}` : 'j'], outputs: [k === 8 ? 'score' : `hd${k}`], attrs: {} });
  const ir = { format: 'onnx', path: '/generated/graph-2000.onnx', files: [], tensors: [], layers: [], metadata: {}, native: undefined, graph: { inputs: [{ name: 'u_in' }, { name: 'i_in' }], outputs: [{ name: 'score' }], nodes } };
  const trainableParams = tensors.reduce((s, t) => s + t.params, 0);
  const report = { format: 'onnx', path: ir.path, fileBytes: trainableParams * 4, totalParams: trainableParams, totalZeros: 0, trainableZeros: 0, trainableParams, constantParams: 0, tensors, layers: [], opportunities: [], epsilon: 1e-6, generatedAt: new Date().toISOString(), tool: { name: 'prunescope', version: 'screenshot' } };
  return { ir, report };
}

const work = mkdtempSync(path.join(tmpdir(), 'ps-shot-'));
const shots = path.join(ROOT, 'test-output', 'screenshots');
const media = path.join(ROOT, 'media', 'screenshots');
mkdirSync(shots, { recursive: true });
const t = Date.now();
const log = (m) => console.log(`[${((Date.now() - t) / 1000).toFixed(1).padStart(5)} s] ${m}`);
const ir = await readModel(model);
const report = await analyzeModel(ir);
const graph = buildGraphView(ir, report);
log(`analysed ${path.basename(model)}: ${report.tensors.length} tensors, graph ${graph.nodes.length} nodes`);
const plan = await new CompressPlanner(ir, { candidates, holdout: 0.5, maxDrop: 0.01, budgetMinutes: 1.5 }, work, path.basename(model)).run();
log(`planned: ${plan.evaluated} candidates, front ${plan.front.length}, chosen ${plan.chosen.ratio.toFixed(1)}x`);
// two run records made from the plan, for the history section's look (not a real history)
const rec = (id, title, p, front) => ({ version: 1, id, kind: front ? 'compress-plan' : 'compress', title, model: path.basename(model), outputs: [`neumf-${id}.onnx`], startedAt: `2026-12-06T1${id.length}:00:00Z`, seconds: plan.seconds, backend: 'onnxruntime-node cpu', dataset: path.basename(candidates), bytes: { before: plan.baseline.bytes, after: p.bytes }, k: plan.k, ndcg: { before: plan.baseline.metrics.ndcg, after: p.metrics.ndcg }, hr: { before: plan.baseline.metrics.hr, after: p.metrics.hr }, ...(front ? { front: plan.front.map((q) => ({ bytes: q.bytes, kept: q.kept, label: q.label })) } : {}) });
const history = { model: path.basename(model), runs: [rec('a1', 'quantize int8', plan.front[plan.front.length - 1], false), rec('b22', 'compress to target', plan.chosen, true)] };

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--allow-file-access-from-files'] });
const results = {};
try {
  const p = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  const errors = [];
  p.on('pageerror', (e) => errors.push(e.message));
  p.on('console', (m) => (m.type() === 'error' ? errors.push(m.text()) : undefined));
  await p.goto(page(work, 'panel', { report, plan, graph, history, overlay: 'nearZeroRows' }));
  await p.locator('#front canvas.chart').waitFor({ timeout: 20000 });
  // the README picture: summary, the front with a point's tip, the heatmaps
  await p.addStyleTag({ content: '#history, #share, #findings, #graph, #sparsity, #layers, footer { display: none !important; }' });
  const canvas = p.locator('#front canvas.chart');
  const box = await canvas.boundingBox();
  let tipShown = false;
  for (let y = box.y + 10; y < box.y + box.height - 40 && !tipShown; y += 4) {
    for (let x = box.x + 60; x < box.x + box.width - 100 && !tipShown; x += 4) {
      await p.mouse.move(x, y);
      tipShown = await p.evaluate(() => { const t = document.querySelector('#front .chart-tip'); return !!t && !t.hidden && /chosen/.test(t.textContent); });
    }
  }
  results.frontTip = tipShown;
  await p.screenshot({ path: path.join(media, `panel-front${opts.theme === 'dark' ? '' : `-${opts.theme}`}.png`), fullPage: true });
  await p.addStyleTag({ content: '#history, #share, #findings, #graph, #sparsity, #layers, footer { display: revert !important; } #front, #tensor, #summary { display: none !important; }' });
  await p.locator('#graph').evaluate((e) => e.scrollIntoView({ block: 'start' }));
  await p.locator('#graph').screenshot({ path: path.join(media, `panel-graph${opts.theme === 'dark' ? '' : `-${opts.theme}`}.png`) });
  await p.locator('#history').screenshot({ path: path.join(shots, `panel-history-${opts.theme}.png`) });
  // a graph node click shows that node's tensors
  const g = p.locator('#graph canvas.graph');
  await g.evaluate((e) => e.scrollIntoView({ block: 'start' }));
  const gb = await g.boundingBox();
  let clicked = '';
  for (let y = Math.max(0, gb.y) + 5; y < Math.min(gb.y + gb.height, 900) && !clicked; y += 6) {
    for (let x = gb.x + 5; x < gb.x + gb.width && !clicked; x += 20) {
      await p.mouse.move(x, y);
      const tip = await p.locator('#graph .tip').innerText();
      if (/user_gmf.*\(Gather\)/.test(tip)) {
        await p.mouse.down();
        await p.mouse.up();
        clicked = tip;
      }
    }
  }
  await p.waitForTimeout(300);
  results.graphClick = { node: clicked.slice(0, 80), tensorSection: (await p.locator('#tensor h2').innerText()).slice(0, 80) };
  results.errors = errors;
  await p.close();

  // the 2,000-node graph
  const big = bigGraph();
  const bigView = buildGraphView(big.ir, big.report);
  const q = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  await q.addInitScript(() => {
    window.__long = [];
    new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__long.push(e.duration))).observe({ type: 'longtask', buffered: true });
  });
  const measure = async (label) => {
    const gc = q.locator('#graph canvas.graph');
    await gc.waitFor({ timeout: 120000 });
    await q.locator('#graph').evaluate((e) => e.scrollIntoView({ block: 'start' }));
    const stats = await q.locator('#graph .graph-stats').innerText();
    await q.evaluate(() => (window.__long = []));
    const b = await gc.boundingBox();
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) {
      await q.mouse.move(b.x + b.width / 2, b.y + b.height / 2);
      await q.mouse.down();
      await q.mouse.move(b.x + b.width / 2 - 150, b.y + b.height / 2 - 200, { steps: 8 });
      await q.mouse.up();
      await q.mouse.wheel(0, i % 2 ? 200 : -200);
    }
    const panMs = Date.now() - t0;
    const maxFrame = await gc.getAttribute('data-max-frame-ms');
    const longTasks = await q.evaluate(() => window.__long.slice());
    results[label] = { stats, maxFrameMs: Number(maxFrame), longTasksWhilePanning: longTasks.map((x) => Math.round(x)), panMs };
    log(`${label}: ${stats} · slowest frame while panning ${maxFrame} ms · long tasks ${JSON.stringify(longTasks.map((x) => Math.round(x)))}`);
  };
  await q.goto(page(work, 'big', { report: big.report, graph: bigView }));
  await measure('graph2000Folded');
  await q.locator('#graph').screenshot({ path: path.join(shots, `panel-graph-2000-${opts.theme}.png`) });
  const t1 = Date.now();
  await q.locator('#graph vscode-button', { hasText: 'Expand all' }).click();
  await q.locator('#graph .graph-stats', { hasText: `${bigView.nodes.length} nodes shown` }).waitFor({ timeout: 120000 });
  results.expandAllWallMs = Date.now() - t1;
  await measure('graph2000Expanded');
  await q.locator('#graph').screenshot({ path: path.join(shots, `panel-graph-2000-expanded-${opts.theme}.png`) });
  await q.close();
} finally {
  await browser.close();
  rmSync(work, { recursive: true, force: true });
}
console.log(JSON.stringify(results, null, 2));
console.log(`screenshots: ${media}/panel-front.png, ${media}/panel-graph.png, ${shots}/panel-*.png`);
process.exitCode = results.errors?.length ? 1 : 0;
