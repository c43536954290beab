// The analysis panel (browser code). It imports only the shared protocol and report types; it
// gets its data over messages (or, in an exported HTML report, from an inline JSON block). Every
// model string (tensor and layer names come from files the user did not make) is inserted as
// text (textContent), never as HTML.

import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import { treeRemovalProposal, weakTreeFeatures, type CompressJobResult, type FindingAction, type HostToWebview, type SensitivityView, type TreeEnsembleView, type TreesView, type WebviewToHost } from '../src/shared/protocol.js';
import type { ModelReport, TensorReport, LayerReport, Opportunity, OpportunityKind } from '../src/shared/report.js';
import { viridis, viridisCss } from './colormap.js';
import { barChart, lineChart } from './charts.js';
import { zoomableHeatmap } from './heatmap.js';

interface VsCodeApi {
  postMessage(m: WebviewToHost): void;
  getState(): unknown;
  setState(s: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

/** An exported report carries its data inline and has no host to talk to. */
const staticData = document.getElementById('prunescope-data');
const isStatic = staticData !== null;
const vscode: VsCodeApi = isStatic
  ? { postMessage: () => undefined, getState: () => undefined, setState: () => undefined }
  : acquireVsCodeApi();
const app = document.getElementById('app') as HTMLElement;

let report: ModelReport | undefined;
let comparison: CompressJobResult | undefined;
let sens: SensitivityView | undefined;
/** the tree ensembles of an ONNX file (sent after the report; empty list = none) */
let trees: TreesView | undefined;
let actions: OpportunityKind[] = [];
let selected: string | undefined;
let sortKey: keyof LayerRow = 'params';
let sortDesc = true;
let heatScale: 'linear' | 'log' = 'linear';
let busy: { phase: string; fraction: number; detail?: string } | undefined;
let errorText: string | undefined;
/** with a before/after result: which model the analysis sections below show */
let viewing: 'before' | 'after' = 'before';

// ---------- tiny DOM helpers (text only; no innerHTML anywhere) ----------
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { className?: string; text?: string; title?: string; attrs?: Record<string, string> } = {},
  children: Array<Node | string> = [],
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.className) e.className = props.className;
  if (props.text !== undefined) e.textContent = props.text;
  if (props.title) e.title = props.title;
  for (const [k, v] of Object.entries(props.attrs ?? {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function fmtCount(n: number): string {
  return n.toLocaleString('en-US');
}
function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  if (n < 1024) return `${n} B`;
  const u = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${u[i]}`;
}
function fmtPct(x: number | null | undefined, d = 1): string {
  return x === null || x === undefined ? '–' : `${(x * 100).toFixed(d)}%`;
}
function fmtNum(x: number | null | undefined): string {
  if (x === null || x === undefined) return '–';
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(2) : x.toPrecision(4);
}
function fileName(p: string): string {
  return p.split(/[\\/]/).pop() ?? p;
}

function button(label: string, onClick: () => void, opts: { secondary?: boolean; title?: string; icon?: string } = {}): HTMLElement {
  const b = document.createElement('vscode-button');
  b.textContent = label;
  if (opts.secondary) b.setAttribute('secondary', '');
  if (opts.title) b.title = opts.title;
  if (opts.icon) b.setAttribute('icon', opts.icon);
  b.addEventListener('click', onClick);
  return b;
}

function section(id: string, title: string, children: Array<Node | string>, tools: Node[] = []): HTMLElement {
  return el('section', { attrs: { id } }, [el('div', { className: 'section-head' }, [el('h2', { text: title }), ...tools]), ...children]);
}

/** Sends a canvas to the host to be saved as PNG (exported reports have no host: they download). */
function exportPng(name: string, canvas: HTMLCanvasElement): void {
  const dataUrl = withBackground(canvas).toDataURL('image/png');
  if (isStatic) {
    const a = el('a', { attrs: { href: dataUrl, download: `${name}.png` } });
    a.click();
    return;
  }
  vscode.postMessage({ type: 'exportPng', name, dataUrl });
}

/** The canvas on the theme's background, so that a saved PNG reads like the panel. */
function withBackground(canvas: HTMLCanvasElement): HTMLCanvasElement {
  const out = document.createElement('canvas');
  out.width = canvas.width;
  out.height = canvas.height;
  const g = out.getContext('2d');
  if (g) {
    g.fillStyle = getComputedStyle(document.body).getPropertyValue('--vscode-editor-background').trim() || '#ffffff';
    g.fillRect(0, 0, out.width, out.height);
    g.drawImage(canvas, 0, 0);
  }
  return out;
}

function pngButton(name: string, canvas: () => HTMLCanvasElement): HTMLElement {
  return button('PNG', () => exportPng(name, canvas()), { secondary: true, title: `Save this chart as ${name}.png` });
}

// ---------- rendering ----------
function render(): void {
  if (!report) {
    renderBusy();
    return;
  }
  const r = report;
  const parts: HTMLElement[] = [summary(r)];
  if (errorText) parts.push(el('div', { className: 'error', text: errorText, attrs: { role: 'alert' } }));
  if (busy) parts.push(progressLine());
  if (comparison) parts.push(comparisonSection(comparison));
  parts.push(shareSection(r), findings(r));
  if (trees) trees.ensembles.forEach((e, i) => parts.push(treeSection(e, i)));
  parts.push(sparsityHeatmap(r), layerTable(r), tensorDetail(r));
  if (sens) parts.splice(comparison ? 2 : 1, 0, sensitivity(sens));
  parts.push(el('footer', { className: 'muted', text: `${r.tool.name} ${r.tool.version} · analysed ${new Date(r.generatedAt).toLocaleString()} · ε = ${r.epsilon}` }));
  app.replaceChildren(...parts);
}

function renderBusy(): void {
  const parts: HTMLElement[] = [];
  if (errorText) parts.push(el('div', { className: 'error', text: errorText, attrs: { role: 'alert' } }));
  if (busy) parts.push(progressLine());
  else if (!errorText) parts.push(el('p', { className: 'muted', text: 'Analysing…' }));
  app.replaceChildren(...parts);
}

function progressLine(): HTMLElement {
  const bar = document.createElement('vscode-progress-bar');
  bar.setAttribute('value', String(Math.round((busy?.fraction ?? 0) * 100)));
  bar.setAttribute('max', '100');
  return el('div', { className: 'busy', attrs: { id: 'progress' } }, [
    el('div', { className: 'muted', text: `${Math.round((busy?.fraction ?? 0) * 100)}% ${busy?.phase ?? ''} ${busy?.detail ?? ''}` }),
    bar,
  ]);
}

function summary(r: ModelReport): HTMLElement {
  const trainableZeros = r.tensors.filter((t) => t.trainable).reduce((s, t) => s + t.zeros, 0);
  const embParams = r.tensors.filter((t) => t.role === 'embedding').reduce((s, t) => s + t.params, 0);
  const cards: Array<[string, string, string?]> = [
    ['Format', r.format],
    ['Parameters', fmtCount(r.totalParams), `${fmtCount(r.trainableParams)} trainable, ${fmtCount(r.constantParams)} in constants`],
    ['Size on disk', fmtBytes(r.fileBytes)],
    ['Embeddings', fmtPct(r.trainableParams ? embParams / r.trainableParams : null), 'of the trainable parameters'],
    ['Sparsity', fmtPct(r.trainableParams ? trainableZeros / r.trainableParams : null), `${fmtCount(trainableZeros)} exact zeros in trainable weights`],
    ['Tensors', String(r.tensors.length), `${r.layers.length} layers`],
  ];
  const tools: HTMLElement[] = [];
  if (!isStatic) {
    tools.push(
      button('Re-analyse', () => vscode.postMessage({ type: 'reanalyze' }), { secondary: true }),
      button('Export HTML', exportHtml, { secondary: true, title: 'Save a self-contained HTML report (no remote content)' }),
      button('Export JSON', () => vscode.postMessage({ type: 'exportJson' }), { secondary: true }),
    );
  }
  return el('header', { className: 'summary', attrs: { id: 'summary' } }, [
    el('div', { className: 'title-row' }, [
      el('h1', { text: fileName(r.path), title: r.path }),
      ...(comparison && viewing === 'after' ? [el('span', { className: 'pill', text: 'compressed' })] : []),
      ...tools,
    ]),
    el(
      'div',
      { className: 'cards' },
      cards.map(([k, v, sub]) => el('div', { className: 'card' }, [el('div', { className: 'k', text: k }), el('div', { className: 'v', text: v }), ...(sub ? [el('div', { className: 'sub', text: sub })] : [])])),
    ),
  ]);
}

function exportHtml(): void {
  // VS Code sets the theme as inline custom properties on <html>; the report freezes them
  const style = document.documentElement.style;
  const themeVars: Record<string, string> = {};
  for (let i = 0; i < style.length; i++) {
    const k = style.item(i);
    if (k.startsWith('--vscode-')) themeVars[k] = style.getPropertyValue(k).trim();
  }
  const kind = document.body.classList.contains('vscode-light') ? 'vscode-light' : document.body.classList.contains('vscode-high-contrast') ? 'vscode-high-contrast' : 'vscode-dark';
  vscode.postMessage({ type: 'exportHtml', themeVars, themeKind: kind });
}

// ---------- before / after ----------
function comparisonSection(c: CompressJobResult): HTMLElement {
  const v = c.comparison;
  type Row = { name: string; before: number | null; after: number | null; fmt: (x: number | null) => string; better: 'lower' | 'higher'; noise?: boolean };
  const rows: Row[] = [
    { name: 'Parameters', before: v.params.before, after: v.params.after, fmt: (x) => (x === null ? '–' : fmtCount(x)), better: 'lower' },
    { name: 'Size on disk', before: v.bytes.before, after: v.bytes.after, fmt: fmtBytes, better: 'lower' },
    { name: 'gzip size', before: v.gzipBytes.before, after: v.gzipBytes.after, fmt: fmtBytes, better: 'lower' },
  ];
  for (const l of v.latency) rows.push({ name: `Latency p50, batch ${l.batch}${l.withinNoise ? ' (within noise)' : ''}`, before: l.p50Before, after: l.p50After, fmt: (x) => (x === null ? '–' : `${x.toFixed(3)} ms`), better: 'lower', noise: l.withinNoise });
  if (v.hr) rows.push({ name: `HR@${v.k}`, before: v.hr.before, after: v.hr.after, fmt: (x) => (x === null ? '–' : x.toFixed(4)), better: 'higher' });
  if (v.ndcg) rows.push({ name: `NDCG@${v.k}`, before: v.ndcg.before, after: v.ndcg.after, fmt: (x) => (x === null ? '–' : x.toFixed(4)), better: 'higher' });
  if (v.auc) rows.push({ name: 'AUC', before: v.auc.before, after: v.auc.after, fmt: (x) => (x === null ? '–' : x.toFixed(4)), better: 'higher' });
  const table = el('table', { className: 'compare' });
  table.append(el('tr', {}, ['', 'before', 'after', 'change', ''].map((h) => el('th', { text: h }))));
  for (const row of rows) {
    const rel = row.before !== null && row.after !== null && row.before !== 0 ? (row.after - row.before) / row.before : null;
    const good = rel === null || Math.abs(rel) < 0.005 || row.noise ? 'same' : (rel < 0) === (row.better === 'lower') ? 'good' : 'bad';
    const barWrap = el('div', { className: 'pair-bars' });
    const mx = Math.max(Math.abs(row.before ?? 0), Math.abs(row.after ?? 0), 1e-30);
    for (const [cls, val] of [['b', row.before], ['a', row.after]] as const) {
      const b = el('div', { className: `pair ${cls}` });
      b.style.width = `${Math.max(1, (Math.abs(val ?? 0) / mx) * 100)}%`;
      barWrap.append(b);
    }
    table.append(
      el('tr', {}, [
        el('th', { text: row.name, className: 'row-head' }),
        el('td', { className: 'num', text: row.fmt(row.before) }),
        el('td', { className: 'num', text: row.fmt(row.after) }),
        el('td', { className: `num delta ${good}`, text: rel === null ? '–' : `${rel > 0 ? '+' : ''}${(rel * 100).toFixed(1)}%` }),
        el('td', { className: 'bars-cell' }, [barWrap]),
      ]),
    );
  }
  const method = c.method === 'compare' ? 'Comparison' : `Before / after: ${c.method}`;
  const settings = Object.keys(c.settings).length ? JSON.stringify(c.settings) : '';
  const parts: Node[] = [
    el('p', { className: 'muted' }, [
      `${fileName(c.original)} → `,
      el('span', { className: 'path', text: fileName(c.output), title: c.output }),
      settings ? ` · ${settings}` : '',
      ` · ${c.seconds.toFixed(1)} s`,
      v.runtime ? ` · ran on ${v.runtime}` : '',
      v.dataset ? ` · accuracy on ${fileName(v.dataset)}` : '',
    ]),
    el('div', { className: 'scroll' }, [table]),
    el('div', { className: 'legend' }, [el('span', { className: 'swatch b' }), 'before', el('span', { className: 'swatch a' }), 'after']),
  ];
  // a method's own size line repeats the comparison's measured one
  const said = [...c.comparison.summary, ...c.notes.filter((n) => !(n.startsWith('Size on disk') && c.comparison.summary.some((x) => x.startsWith('Size on disk'))))];
  if (said.length) parts.push(el('ul', { className: 'notes' }, said.map((s) => el('li', { text: s }))));
  if (c.changes.length) {
    const ct = el('table', { className: 'layers changes' });
    ct.append(el('tr', {}, ['tensor', 'change', 'before', 'after'].map((h) => el('th', { text: h }))));
    for (const ch of c.changes.slice(0, 200)) {
      const afterText = ch.after.map((a) => `${a.name === ch.tensor ? '' : `${a.name} `}[${a.shape.join('×')}] ${fmtBytes(a.bytes)}`).join(' + ');
      ct.append(
        el('tr', {}, [
          el('td', { text: ch.tensor }),
          el('td', { text: ch.action }),
          el('td', { className: 'num', text: `[${ch.beforeShape.join('×')}] ${fmtBytes(ch.beforeBytes)}` }),
          el('td', { className: 'num', text: afterText }),
        ]),
      );
    }
    parts.push(el('h3', { text: `What changed (${c.changes.length} tensor${c.changes.length === 1 ? '' : 's'})` }), el('div', { className: 'scroll' }, [ct]));
  }
  const tools: HTMLElement[] = [viewSwitch(c)];
  if (!isStatic && c.method !== 'compare') tools.push(button('Reveal Output', () => vscode.postMessage({ type: 'revealOutput' }), { secondary: true }));
  return section('comparison', method, parts, tools);
}

/** Which model the analysis sections show: the original or the compressed one. */
function viewSwitch(c: CompressJobResult): HTMLElement {
  const wrap = el('div', { className: 'view-switch', attrs: { role: 'group', 'aria-label': 'model shown in the analysis below' } }, [el('span', { className: 'muted', text: 'Analysis below:' })]);
  for (const [key, label] of [['before', c.method === 'compare' ? fileName(c.original) : 'Original'], ['after', c.method === 'compare' ? fileName(c.output) : 'Compressed']] as const) {
    const b = button(label, () => {
      viewing = key;
      report = key === 'after' ? c.after : c.before;
      selected = undefined;
      render();
      document.getElementById('comparison')?.scrollIntoView({ block: 'start' });
    }, { secondary: viewing !== key, title: key === 'after' ? c.output : c.original });
    b.setAttribute('data-view', key);
    wrap.append(b);
  }
  return wrap;
}

function sensitivity(v: SensitivityView): HTMLElement {
  const metric = `${v.metric.toUpperCase()}@${v.k}`;
  const canvas = lineChart(v.curves.map((c) => ({ name: c.layer.replace(/\/(embeddings|kernel)$/, ''), points: c.points.map((p) => ({ x: p.amount, y: p.value })) })), 720, 280, 'share of the tensor pruned', metric);
  const table = el('table', { className: 'layers changes' });
  table.append(el('tr', {}, ['tensor', 'proposed sparsity', `${metric} at each sparsity tried`].map((h) => el('th', { text: h }))));
  for (const c of v.curves) {
    table.append(
      el('tr', {}, [
        el('td', { text: c.layer }),
        el('td', { className: 'num', text: fmtPct(v.proposal[c.layer] ?? 0, 0) }),
        el('td', { className: 'num', text: c.points.slice(1).map((p) => `${fmtPct(p.amount, 0)}: ${p.value.toFixed(3)}`).join(' · ') }),
      ]),
    );
  }
  const base = v.metric === 'ndcg' ? v.baseline.ndcg : v.baseline.hr;
  const tools: HTMLElement[] = [pngButton('sensitivity', () => canvas)];
  if (!isStatic) tools.unshift(button('Prune with this proposal', () => vscode.postMessage({ type: 'applyProposal' }), { title: 'Magnitude pruning with the proposed sparsity per tensor' }));
  return section('sensitivity', `Sensitivity (${metric} per tensor pruned alone)`, [
    el('p', { className: 'muted', text: `Dense ${metric} ${base.toFixed(4)}; budget: at most ${fmtPct(v.budget, 1)} drop per tensor. All proposals together: ${fmtPct(v.combined.sparsity, 0)} of the weights pruned, ${metric} ${(v.metric === 'ndcg' ? v.combined.ndcg : v.combined.hr).toFixed(4)} (${v.combined.drop >= 0 ? '−' : '+'}${fmtPct(Math.abs(v.combined.drop), 2)}). ${v.seconds.toFixed(1)} s.` }),
    canvas,
    el('div', { className: 'scroll' }, [table]),
  ], tools);
}

/** Where the parameters are: one stacked bar, one segment per layer (largest first). */
function shareSection(r: ModelReport): HTMLElement {
  const layers = [...r.layers].filter((l) => l.share > 0).sort((a, b) => b.share - a.share);
  const bar = el('div', { className: 'share-bar', attrs: { role: 'img', 'aria-label': 'share of parameters per layer' } });
  const legend = el('div', { className: 'share-legend' });
  layers.forEach((l, i) => {
    const color = viridisCss(layers.length > 1 ? i / (layers.length - 1) : 0);
    const seg = el('div', { className: 'seg', title: `${l.name}: ${fmtPct(l.share)} of trainable parameters` });
    seg.style.width = `${(l.share * 100).toFixed(3)}%`;
    seg.style.background = color;
    bar.append(seg);
    if (i < 8) {
      const sw = el('span', { className: 'swatch' });
      sw.style.background = color;
      legend.append(el('span', { className: 'item' }, [sw, `${l.name} ${fmtPct(l.share)}`]));
    }
  });
  return section('share', 'Where the parameters are', [bar, legend]);
}

const ACTION_LABEL: Partial<Record<OpportunityKind, (o: Opportunity) => string>> = {
  'prune-rows': (o) => `Prune ${/prune (\d+)% of rows/.exec(o.title)?.[1] ?? 50}% of rows`,
  'prune-weights': () => 'Prune 50% of weights',
  'prune-neurons': () => 'Remove dead neurons',
  'quantize-int8': () => (report?.format === 'onnx' ? 'Quantize to int8' : 'Quantize to uint8'),
  'quantize-float16': () => 'Quantize to float16',
  factorize: (o) => `Factorize to rank ${/rank (\d+) of/.exec(o.title)?.[1] ?? ''}`.trim(),
};

function findings(r: ModelReport): HTMLElement {
  if (!r.opportunities.length) return section('findings', 'Findings', [el('p', { className: 'muted', text: 'Nothing stands out: no near-zero rows, low-rank tables, dead neurons or cheap quantization found.' })]);
  const list = el('ol', { className: 'opps' });
  for (const o of r.opportunities.slice(0, 12)) {
    const label = ACTION_LABEL[o.kind];
    const act: FindingAction = { kind: o.kind, target: o.target };
    const buttons = !isStatic && label && actions.includes(o.kind) ? [button(label(o), () => vscode.postMessage({ type: 'runAction', action: act }), { title: 'Runs the job; the original is never changed' })] : [];
    const badge = document.createElement('vscode-badge');
    badge.textContent = o.kind;
    list.append(
      el('li', {}, [
        el('div', { className: 'opp-row' }, [el('div', { className: 'opp-title', text: o.title }), badge, ...buttons]),
        el('div', { className: 'muted', text: `${o.estimatedSavingBytes > 0 ? `saves ~${fmtBytes(o.estimatedSavingBytes)} · ` : ''}${o.detail}` }),
      ]),
    );
  }
  return section('findings', 'Findings', [list]);
}

/** Layers × kinds of sparsity, one cell each, coloured 0..1. */
function sparsityHeatmap(r: ModelReport): HTMLElement {
  const byName = new Map(r.tensors.map((t) => [t.name, t]));
  const rows = r.layers.filter((l) => l.trainableParams > 0);
  const cols: Array<[string, (l: LayerReport, ts: TensorReport[]) => number | null]> = [
    ['exact zeros', (l) => l.sparsity],
    ['near-zero |w|', (_l, ts) => ratio(ts, (t) => t.nearZeros)],
    ['near-zero rows', (_l, ts) => { const rs = ts.find((t) => t.rows)?.rows; return rs ? rs.nearZeroRows / Math.max(1, rs.rows) : null; }],
    ['dead neurons', (_l, ts) => { const t = ts.find((x) => x.deadNeurons !== undefined); return t && t.shape.length ? t.deadNeurons! / Math.max(1, outputs(t)) : null; }],
    ['int8 rel. error', (_l, ts) => ts.find((t) => t.quantError)?.quantError?.int8.relRmse ?? null],
    ['rank @95% / full', (_l, ts) => { const s = ts.find((t) => t.spectrum)?.spectrum; return s && s.rankFor95 !== null && s.fullRank > 0 ? s.rankFor95 / s.fullRank : null; }],
  ];
  const grid = el('table', { className: 'heat-grid' });
  grid.append(el('tr', {}, [el('th', { text: 'layer' }), ...cols.map(([c]) => el('th', { text: c }))]));
  for (const l of rows) {
    const ts = l.tensors.map((n) => byName.get(n)).filter((t): t is TensorReport => !!t && t.trainable);
    const tr = el('tr', {}, [el('th', { text: l.name, className: 'row-head', title: l.name })]);
    for (const [name, f] of cols) {
      const v = f(l, ts);
      const td = el('td', { text: v === null ? '' : fmtPct(v, 0), title: `${l.name} · ${name}: ${v === null ? 'n/a' : fmtPct(v, 2)}` });
      if (v !== null) {
        const [cr, cg, cb] = viridis(Math.min(1, Math.max(0, v)));
        td.style.background = `rgb(${cr}, ${cg}, ${cb})`;
        td.style.color = cr * 0.299 + cg * 0.587 + cb * 0.114 > 140 ? '#000' : '#fff';
      } else td.className = 'empty';
      td.addEventListener('click', () => selectLayer(r, l.name));
      tr.append(td);
    }
    grid.append(tr);
  }
  return section('sparsity', 'Layer-wise sparsity', [el('div', { className: 'scroll' }, [grid]), legendBar('0%', '100%'), el('p', { className: 'muted', text: 'Click a layer to see its tensors below. Hatched: not applicable.' })]);
}

function ratio(ts: TensorReport[], f: (t: TensorReport) => number): number | null {
  const n = ts.reduce((s, t) => s + t.params, 0);
  return n ? ts.reduce((s, t) => s + f(t), 0) / n : null;
}
function outputs(t: TensorReport): number {
  if (t.shape.length < 2) return t.shape[0] ?? 1;
  return t.transposed ? t.shape[0] : t.shape[t.shape.length - 1];
}

function legendBar(lo: string, hi: string): HTMLElement {
  const c = document.createElement('canvas');
  c.width = 256;
  c.height = 10;
  c.className = 'legend-bar';
  const g = c.getContext('2d');
  if (g) for (let x = 0; x < 256; x++) {
    g.fillStyle = viridisCss(x / 255);
    g.fillRect(x, 0, 1, 10);
  }
  return el('div', { className: 'legend' }, [el('span', { text: lo }), c, el('span', { text: hi })]);
}

interface LayerRow {
  name: string;
  kind: string;
  role: string;
  shape: string;
  params: number;
  share: number;
  sparsity: number;
  nearZero: number;
  int8: number;
  rank: number;
}

function layerRows(r: ModelReport): LayerRow[] {
  const byName = new Map(r.tensors.map((t) => [t.name, t]));
  return r.layers.map((l) => {
    const ts = l.tensors.map((n) => byName.get(n)).filter((t): t is TensorReport => !!t);
    const main = ts.filter((t) => t.trainable).sort((a, b) => b.params - a.params)[0] ?? ts[0];
    return {
      name: l.name,
      kind: l.kind,
      role: [...new Set(ts.map((t) => t.role))].join(', '),
      shape: main ? `[${main.shape.join('×')}]` : '',
      params: l.params,
      share: l.share,
      sparsity: l.sparsity ?? -1,
      nearZero: ratio(ts.filter((t) => t.trainable), (t) => t.nearZeros) ?? -1,
      int8: main?.quantError?.int8.relRmse ?? -1,
      rank: main?.spectrum?.rankFor95 ?? -1,
    };
  });
}

function selectLayer(r: ModelReport, layer: string): void {
  const l = r.layers.find((x) => x.name === layer);
  const t = l?.tensors.map((n) => r.tensors.find((x) => x.name === n)).filter((x): x is TensorReport => !!x).sort((a, b) => b.params - a.params)[0];
  selected = t?.name;
  vscode.setState({ selected, heatScale });
  render();
  document.getElementById('tensor')?.scrollIntoView({ behavior: 'smooth', block: 'start' });
}

function layerTable(r: ModelReport): HTMLElement {
  const rows = layerRows(r).sort((a, b) => {
    const x = a[sortKey];
    const y = b[sortKey];
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return sortDesc ? -c : c;
  });
  const cols: Array<[keyof LayerRow, string, (row: LayerRow) => string]> = [
    ['name', 'layer', (x) => x.name],
    ['kind', 'kind', (x) => x.kind],
    ['role', 'role', (x) => x.role],
    ['shape', 'shape', (x) => x.shape],
    ['params', 'params', (x) => fmtCount(x.params)],
    ['share', 'share', (x) => fmtPct(x.share)],
    ['sparsity', 'sparsity', (x) => (x.sparsity < 0 ? '–' : fmtPct(x.sparsity))],
    ['nearZero', 'near-zeros', (x) => (x.nearZero < 0 ? '–' : fmtPct(x.nearZero))],
    ['int8', 'int8 error', (x) => (x.int8 < 0 ? '–' : fmtPct(x.int8, 2))],
    ['rank', 'rank @95%', (x) => (x.rank < 0 ? '–' : String(x.rank))],
  ];
  const table = el('table', { className: 'layers' });
  const head = el('tr');
  for (const [key, label] of cols) {
    const th = el('th', { text: label + (sortKey === key ? (sortDesc ? ' ▾' : ' ▴') : ''), attrs: { role: 'button', tabindex: '0', 'aria-sort': sortKey === key ? (sortDesc ? 'descending' : 'ascending') : 'none' } });
    const sort = () => {
      if (sortKey === key) sortDesc = !sortDesc;
      else {
        sortKey = key;
        sortDesc = true;
      }
      render();
    };
    th.addEventListener('click', sort);
    th.addEventListener('keydown', (e) => (e.key === 'Enter' ? sort() : undefined));
    head.append(th);
  }
  table.append(head);
  for (const row of rows) {
    const tr = el('tr', { className: row.name === selectedLayer() ? 'selected' : '', attrs: { tabindex: '0' } }, cols.map(([, , f], i) => el('td', { text: f(row), className: i >= 4 ? 'num' : '' })));
    tr.addEventListener('click', () => selectLayer(r, row.name));
    tr.addEventListener('keydown', (e) => (e.key === 'Enter' ? selectLayer(r, row.name) : undefined));
    table.append(tr);
  }
  return section('layers', 'Layers', [el('div', { className: 'scroll' }, [table])]);
}

function selectedLayer(): string | undefined {
  return report?.tensors.find((t) => t.name === selected)?.layer;
}

function tensorDetail(r: ModelReport): HTMLElement {
  const t = r.tensors.find((x) => x.name === selected) ?? [...r.tensors].filter((x) => x.trainable).sort((a, b) => b.params - a.params)[0];
  if (!t) return el('section');
  const safe = t.name.replace(/[^a-zA-Z0-9._-]+/g, '_').slice(0, 60);
  const parts: Node[] = [
    el('p', { className: 'muted', text: `${t.role} · [${t.shape.join('×')}] ${t.dtype}${t.storedDtype !== t.dtype ? ` (stored ${t.storedDtype})` : ''} · ${fmtCount(t.params)} params · ${fmtBytes(t.bytes)} · min ${fmtNum(t.min)} · max ${fmtNum(t.max)} · mean ${fmtNum(t.mean)} · std ${fmtNum(t.std)}` }),
    el('p', { className: 'muted', text: t.sparsityMeaning }),
  ];
  if (t.tiles) {
    const tip = el('div', { className: 'muted tip', text: `${t.tiles.rows}×${t.tiles.cols} cells of ${t.tiles.cellRows}×${t.tiles.cellCols} weights · wheel or +/− to zoom, drag to pan, hover for values` });
    const view = zoomableHeatmap(t.tiles, heatScale, (_r, _c, text) => (tip.textContent = text));
    const scaleBtn = button(heatScale === 'linear' ? 'Log scale' : 'Linear scale', () => {
      heatScale = heatScale === 'linear' ? 'log' : 'linear';
      vscode.setState({ selected, heatScale });
      render();
    }, { secondary: true });
    parts.push(
      el('div', { className: 'sub-head' }, [el('h3', { text: `Importance heatmap (mean |w| per cell, ${heatScale} colour scale)` }), scaleBtn, pngButton(`${safe}.heatmap`, () => view.fullImage())]),
      view.element,
      tip,
      legendBar('low |w|', 'high |w|'),
    );
  }
  if (t.rows) {
    const strip = rowStrip(t);
    parts.push(
      el('div', { className: 'sub-head' }, [el('h3', { text: `Embedding-row heat: ${fmtCount(t.rows.rows)} ids, ${fmtCount(t.rows.nearZeroRows)} near-zero rows` }), pngButton(`${safe}.rows`, () => strip.canvas)]),
      strip.element,
      legendBar('weak rows', 'strong rows'),
    );
  }
  const h = t.histogram;
  const hist = barChart({
    width: 560,
    height: 150,
    values: h.counts,
    label: (i) => `${fmtNum(h.edges[i])} ≤ |w| < ${fmtNum(h.edges[i + 1])}: ${fmtCount(h.counts[i])}`,
    xLabels: h.counts.length ? [fmtNum(h.edges[0]), fmtNum(h.edges[h.edges.length - 1])] : undefined,
  });
  parts.push(
    el('div', { className: 'sub-head' }, [el('h3', { text: 'Magnitude histogram (|w|, log-spaced bins)' }), pngButton(`${safe}.histogram`, () => hist.canvas)]),
    hoverable(hist.canvas, hist.hover, h.zeroCount ? `exact zeros: ${fmtCount(h.zeroCount)} (not in any bin)` : 'hover a bar for its range and count'),
  );
  if (t.spectrum) {
    const s = t.spectrum;
    const r95 = s.rankFor95;
    const spec = barChart({
      width: 560,
      height: 150,
      values: s.singularValues,
      label: (i) => `σ${i + 1} = ${fmtNum(s.singularValues[i])}`,
      xLabels: ['σ1', `σ${s.singularValues.length}`],
      marker: r95 !== null && r95 <= s.singularValues.length ? { at: r95 - 1, caption: `95% energy at rank ${r95}` } : undefined,
    });
    parts.push(
      el('div', { className: 'sub-head' }, [el('h3', { text: 'Singular values' }), pngButton(`${safe}.spectrum`, () => spec.canvas)]),
      el('p', { className: 'muted', text: `rank for 90/95/99% energy: ${s.rankFor90 ?? '–'} / ${s.rankFor95 ?? '–'} / ${s.rankFor99 ?? '–'} of ${s.fullRank} (${s.exact ? 'exact' : 'estimated'}, ${s.method})` }),
      hoverable(spec.canvas, spec.hover, 'hover a bar for its value'),
    );
  }
  return section('tensor', `Tensor ${t.name}`, parts);
}

// ---------- tree ensembles ----------
const TREE_ROWS: Array<{ key: 'depth' | 'leaves' | 'nodes'; label: string }> = [
  { key: 'depth', label: 'depth' },
  { key: 'leaves', label: 'leaves' },
  { key: 'nodes', label: 'nodes' },
];

/** trees × {depth, leaves, nodes}: one pixel column per tree, each row scaled to its own maximum. */
function treeHeatmap(e: TreeEnsembleView): { element: HTMLElement; canvas: HTMLCanvasElement } {
  const n = Math.max(1, e.perTree.length);
  const c = document.createElement('canvas');
  c.width = n;
  c.height = TREE_ROWS.length;
  c.className = 'tree-heat';
  const max = TREE_ROWS.map((row) => Math.max(1, ...e.perTree.map((t) => t[row.key])));
  const g = c.getContext('2d');
  if (g) {
    const img = g.createImageData(n, TREE_ROWS.length);
    TREE_ROWS.forEach((row, r) => {
      e.perTree.forEach((t, i) => {
        const [cr, cg, cb] = viridis(t[row.key] / max[r]);
        img.data.set([cr, cg, cb, 255], (r * n + i) * 4);
      });
    });
    g.putImageData(img, 0, 0);
  }
  const idle = `${e.perTree.length} trees (columns) × depth / leaves / nodes (rows), each row scaled to its maximum (${max.join(' / ')})`;
  const tip = el('div', { className: 'muted tip', text: idle });
  c.addEventListener('mousemove', (ev) => {
    const rect = c.getBoundingClientRect();
    const i = Math.min(e.perTree.length - 1, Math.floor(((ev.clientX - rect.left) / rect.width) * e.perTree.length));
    const t = e.perTree[i];
    if (t) tip.textContent = `tree ${i}: depth ${t.depth}, ${t.leaves} leaves, ${t.nodes} nodes`;
  });
  c.addEventListener('mouseleave', () => (tip.textContent = idle));
  const labels = el('div', { className: 'tree-heat-labels muted' }, TREE_ROWS.map((row) => el('span', { text: row.label })));
  const exportCanvas = (): HTMLCanvasElement => {
    const out = document.createElement('canvas');
    out.width = Math.max(512, n);
    out.height = 96;
    const og = out.getContext('2d');
    if (og) {
      og.imageSmoothingEnabled = false;
      og.drawImage(c, 0, 0, out.width, out.height);
    }
    return out;
  };
  return { element: el('div', {}, [el('div', { className: 'tree-heat-wrap' }, [labels, c]), tip]), get canvas() { return exportCanvas(); } };
}

function histText(h: Array<[number, number]>): string {
  return h.map(([v, n]) => `${v}: ${n}`).join(', ');
}

function treeSection(e: TreeEnsembleView, index: number): HTMLElement {
  const name = e.node || `trees${index}`;
  const safe = name.replace(/[^A-Za-z0-9_.-]/g, '_');
  const heat = treeHeatmap(e);
  const by = e.hasCover ? 'gain' : 'splits';
  const byFeature = e.importance.slice().sort((a, b) => a.feature - b.feature);
  const value = (f: TreeEnsembleView['importance'][number]): number => (by === 'gain' ? f.gain ?? 0 : f.splits);
  const chart = barChart({
    width: 560,
    height: 150,
    values: byFeature.map(value),
    label: (i) => {
      const f = byFeature[i];
      return `f${f.feature}: rank ${f.rank}, ${f.splits} split(s)${f.gain !== undefined ? `, gain ${fmtNum(f.gain)}` : ''}${f.cover !== undefined ? `, cover ${fmtNum(f.cover)}` : ''}`;
    },
    xLabels: byFeature.length ? [`f${byFeature[0].feature}`, `f${byFeature[byFeature.length - 1].feature}`] : undefined,
    yLabel: by,
  });
  const least = e.importance.slice(-Math.min(3, e.importance.length)).map((f) => `f${f.feature}`).join(', ');
  const parts: Node[] = [
    el('p', { text: `${e.op} "${name}": ${fmtCount(e.trees)} trees, ${fmtCount(e.nodes)} nodes, ${fmtCount(e.leaves)} leaves, ${e.features} input features` }),
    el('p', { className: 'muted', text: `trees per depth: ${histText(e.depthHistogram)}; trees per leaf count: ${histText(e.leavesHistogram)}` }),
    el('div', { className: 'sub-head' }, [el('h3', { text: 'Per-tree depth, leaves and nodes' }), pngButton(`${safe}.trees`, () => heat.canvas)]),
    heat.element,
    el('div', { className: 'sub-head' }, [el('h3', { text: `Feature importance (by ${by}; ranked by ${e.rankedBy})` }), pngButton(`${safe}.importance`, () => chart.canvas)]),
    hoverable(chart.canvas, chart.hover, `hover a bar for its feature; least important: ${least || '–'}`),
    el('p', {
      className: 'tree-unused',
      text: e.unusedFeatures.length
        ? `Unused features (no split reads them): ${e.unusedFeatures.map((f) => `f${f}`).join(', ')}`
        : 'Every input feature is used by at least one split.',
    }),
  ];
  const weak = weakTreeFeatures(e);
  if (weak.length) {
    const unused = weak.filter((f) => e.unusedFeatures.includes(f)).length;
    const label = unused === weak.length ? `Drop ${weak.length} unused feature${weak.length > 1 ? 's' : ''}` : `Drop ${weak.length} unused or weak feature${weak.length > 1 ? 's' : ''}`;
    const finding = el('div', { className: 'finding' }, [
      el('p', {
        text: `${weak.map((f) => `f${f}`).join(', ')}: ${unused} unused, ${weak.length - unused} with under 4% of the importance. Dropping them collapses their splits to the majority child and writes a new model with the same inputs.`,
      }),
    ]);
    if (!isStatic) finding.append(button(label, () => vscode.postMessage({ type: 'dropTreeFeatures', node: e.node, features: weak })));
    parts.push(finding);
  }
  const removable = treeRemovalProposal(e);
  if (removable > 0) {
    const finding = el('div', { className: 'finding' }, [
      el('p', {
        text: `${fmtCount(e.trees)} trees. Large ensembles often carry trees that add little; whether this one does is measured, not assumed: up to ${removable} trees are removed greedily (base value re-fitted), chosen on a seeded half of a validation CSV and reported on the other half (held out); fewer go, or none, if the metric would fall. Writes a new model beside this one.`,
      }),
    ]);
    if (!isStatic) finding.append(button(`Remove ${removable} trees…`, () => vscode.postMessage({ type: 'removeTrees', node: e.node, fraction: removable / e.trees })));
    parts.push(finding);
  }
  for (const n of e.notes) parts.push(el('p', { className: 'muted', text: `note: ${n}` }));
  return section(`trees-${index}`, 'Tree ensemble', parts);
}

function hoverable(canvas: HTMLCanvasElement, hover: (x: number) => string | undefined, idle: string): HTMLElement {
  const tip = el('div', { className: 'muted tip', text: idle });
  canvas.addEventListener('mousemove', (e) => {
    const rect = canvas.getBoundingClientRect();
    tip.textContent = hover(e.clientX - rect.left) ?? idle;
  });
  canvas.addEventListener('mouseleave', () => (tip.textContent = idle));
  return el('div', {}, [canvas, tip]);
}

function rowStrip(t: TensorReport): { element: HTMLElement; canvas: HTMLCanvasElement } {
  const rs = t.rows!;
  const c = document.createElement('canvas');
  c.width = rs.rowHeat.length;
  c.height = 1;
  c.className = 'strip';
  const max = Math.max(1e-30, ...rs.rowHeat);
  const g = c.getContext('2d');
  if (g) {
    const img = g.createImageData(rs.rowHeat.length, 1);
    rs.rowHeat.forEach((v, i) => {
      const [r, gg, b] = viridis(v / max);
      img.data.set([r, gg, b, 255], i * 4);
    });
    g.putImageData(img, 0, 0);
  }
  const tip = el('div', { className: 'muted tip', text: `${rs.rowsPerBucket} id(s) per column; row-norm quantiles p5 ${fmtNum(rs.normQuantiles.p5)}, p50 ${fmtNum(rs.normQuantiles.p50)}, p95 ${fmtNum(rs.normQuantiles.p95)}; near zero ≤ ${fmtNum(rs.nearZeroRowNorm)}` });
  c.addEventListener('mousemove', (e) => {
    const rect = c.getBoundingClientRect();
    const i = Math.min(rs.rowHeat.length - 1, Math.floor(((e.clientX - rect.left) / rect.width) * rs.rowHeat.length));
    tip.textContent = `ids ${i * rs.rowsPerBucket}–${Math.min(rs.rows, (i + 1) * rs.rowsPerBucket) - 1}: mean row norm ${fmtNum(rs.rowHeat[i])}`;
  });
  // PNG: the strip stretched to a readable size
  const exportCanvas = () => {
    const out = document.createElement('canvas');
    out.width = Math.max(512, rs.rowHeat.length);
    out.height = 48;
    const og = out.getContext('2d');
    if (og) {
      og.imageSmoothingEnabled = false;
      og.drawImage(c, 0, 0, out.width, out.height);
    }
    return out;
  };
  const element = el('div', {}, [c, tip]);
  return { element, get canvas() { return exportCanvas(); } };
}

// ---------- messages ----------
function onMessage(m: HostToWebview): void {
  switch (m.type) {
    case 'loading':
      errorText = undefined;
      trees = undefined;
      busy = { phase: `reading ${fileName(m.path)}`, fraction: 0 };
      render();
      return;
    case 'progress':
      errorText = undefined;
      busy = { phase: m.phase, fraction: m.fraction, detail: m.detail };
      if (report) {
        // update the progress line in place: re-rendering the report on every tick would be wasteful
        const line = document.getElementById('progress');
        if (line) line.replaceWith(progressLine());
        else render();
      } else renderBusy();
      return;
    case 'report':
      report = m.report;
      actions = m.actions ?? [];
      busy = undefined;
      errorText = undefined;
      viewing = 'before';
      if (comparison && comparison.original !== m.report.path) comparison = undefined;
      render();
      return;
    case 'comparison':
      comparison = m.result;
      viewing = 'before';
      busy = undefined;
      render();
      document.getElementById('comparison')?.scrollIntoView({ block: 'start' });
      return;
    case 'sensitivity':
      sens = m.result;
      busy = undefined;
      render();
      document.getElementById('sensitivity')?.scrollIntoView({ block: 'start' });
      return;
    case 'trees':
      trees = m.result;
      render();
      return;
    case 'error':
      busy = undefined;
      errorText = m.message;
      render();
      return;
  }
}

if (isStatic) {
  const data = JSON.parse(staticData.textContent ?? '{}') as { report?: ModelReport; comparison?: CompressJobResult; sensitivity?: SensitivityView; trees?: TreesView };
  report = data.report;
  trees = data.trees;
  comparison = data.comparison;
  sens = data.sensitivity;
  render();
} else {
  window.addEventListener('message', (ev: MessageEvent<HostToWebview>) => onMessage(ev.data));
  const state = vscode.getState() as { selected?: string; heatScale?: 'linear' | 'log' } | undefined;
  selected = state?.selected;
  heatScale = state?.heatScale ?? 'linear';
  vscode.postMessage({ type: 'ready' });
}
