#!/usr/bin/env node
// End-to-end: a model whose tensor, layer and node names are HTML/JS payloads is analysed by the
// engine and rendered by the panel app (dist/webview.js, the exact bundle the VS Code panel
// loads; here in its static mode, the one the HTML export uses, under a CSP that allows only the
// bundle). The names must show as text; none of them may run or create elements. Saves a
// screenshot to test-output/screenshots/hostile-names.png.
//
// Usage: npm run build && npm run build:tests && node test/e2e/hostile-names.e2e.mjs
// Prints `N passed, N failed` last.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { chromium } = require('playwright-core');
const { OnnxGraphBuilder, writeOnnxFile } = require(path.join(ROOT, 'out/src/core/model/onnx/build.js'));
const { readModel } = require(path.join(ROOT, 'out/src/core/model/read-model.js'));
const { analyzeModel } = require(path.join(ROOT, 'out/src/core/analysis/analyze-model.js'));

const PAYLOADS = [
  '<script>window.__pwned = "script"</script>',
  '<img src=x onerror="window.__pwned = \'img\'">',
  '"><svg onload="window.__pwned = \'svg\'">',
];

let passed = 0;
let failed = 0;
const check = (name, ok, detail = '') => {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok    ' : 'FAILED'} ${name}${detail ? `: ${detail}` : ''}`);
};

const dir = mkdtempSync(path.join(tmpdir(), 'ps-hostile-'));
try {
  // an embedding table and a kernel named by payloads, consumed by nodes named by payloads
  const table = Float32Array.from({ length: 64 * 8 }, (_, i) => (i % 5 === 0 ? 0 : Math.sin(i)));
  const kernel = Float32Array.from({ length: 8 * 2 }, (_, i) => Math.cos(i));
  const b = new OnnxGraphBuilder({ graphName: PAYLOADS[2] })
    .input('item', 'int64', ['batch'])
    .output('score', 'float32', ['batch', 2])
    .initializer(PAYLOADS[0], 'float32', [64, 8], table)
    .initializer(PAYLOADS[1], 'float32', [8, 2], kernel)
    .node('Gather', [PAYLOADS[0], 'item'], ['e'], {}, { name: `${PAYLOADS[2]}/Gather` })
    .node('MatMul', ['e', PAYLOADS[1]], ['score'], {}, { name: `${PAYLOADS[1]}/MatMul` });
  const model = path.join(dir, 'hostile.onnx');
  await writeOnnxFile(model, b.toModelProto());
  const report = await analyzeModel(await readModel(model));
  check('the engine keeps the names verbatim', report.tensors.some((t) => t.name === PAYLOADS[0]) && report.tensors.some((t) => t.name === PAYLOADS[1]));

  // the page as the HTML export builds it: data inline as JSON with `<` escaped, the bundle and
  // the stylesheet from files, nothing else allowed to run
  const json = JSON.stringify({ report }).replace(/</g, '\\u003c');
  const page = path.join(dir, 'panel.html');
  writeFileSync(
    page,
    `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data: blob:; style-src file:; script-src file:">
<link rel="stylesheet" href="${pathToFileURL(path.join(ROOT, 'media', 'panel.css'))}"></head>
<body class="vscode-dark"><main id="app"></main>
<script id="prunescope-data" type="application/json">${json}</script>
<script src="${pathToFileURL(path.join(ROOT, 'dist', 'webview.js'))}"></script></body></html>`,
  );

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--allow-file-access-from-files'],
  });
  try {
    const p = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = [];
    p.on('pageerror', (e) => errors.push(e.message));
    await p.goto(pathToFileURL(page).href);
    await p.waitForFunction(() => document.querySelectorAll('#app *').length > 20, null, { timeout: 20000 });
    const text = await p.evaluate(() => document.body.innerText);
    for (const payload of PAYLOADS.slice(0, 2)) check(`shown as text: ${payload}`, text.includes(payload));
    check('no payload ran', (await p.evaluate(() => window.__pwned)) === undefined, String(await p.evaluate(() => window.__pwned)));
    const injected = await p.evaluate(() => ({
      scripts: [...document.querySelectorAll('script')].filter((s) => s.id !== 'prunescope-data' && !s.src).length,
      imgs: [...document.querySelectorAll('img')].filter((i) => i.getAttribute('src') === 'x').length,
      svgs: [...document.querySelectorAll('svg[onload]')].length,
      handlers: [...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
    }));
    check('no element made from a name', injected.scripts === 0 && injected.imgs === 0 && injected.svgs === 0 && injected.handlers === 0, JSON.stringify(injected));
    check('the panel rendered without errors', errors.length === 0, errors.join('; '));
    const shots = path.join(ROOT, 'test-output', 'screenshots');
    mkdirSync(shots, { recursive: true });
    await p.screenshot({ path: path.join(shots, 'hostile-names.png'), fullPage: false });
    console.log(`screenshot: ${path.join(shots, 'hostile-names.png')}`);
  } finally {
    await browser.close();
  }
} catch (e) {
  failed++;
  console.log(`FAILED hostile-names e2e: ${e instanceof Error ? e.stack : e}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
