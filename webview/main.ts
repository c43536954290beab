// The analysis panel (browser code). It imports only the shared protocol and report types; it
// gets its data over messages. Every model string (tensor and layer names come from files the
// user did not make) is inserted as text (textContent), never as HTML.

import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { HostToWebview, WebviewToHost } from '../src/shared/protocol.js';
import type { ModelReport, TensorReport, LayerReport } from '../src/shared/report.js';
import { viridis, viridisCss } from './colormap.js';

interface VsCodeApi {
  postMessage(m: WebviewToHost): void;
  getState(): unknown;
  setState(s: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const app = document.getElementById('app') as HTMLElement;

let report: ModelReport | undefined;
let selected: string | undefined;
let sortKey: keyof LayerRow = 'params';
let sortDesc = true;

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
function fmtBytes(n: number): string {
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

// ---------- rendering ----------
function render(): void {
  if (!report) return;
  const r = report;
  app.replaceChildren(
    summary(r),
    opportunities(r),
    sparsityHeatmap(r),
    layerTable(r),
    tensorDetail(r),
  );
}

function summary(r: ModelReport): HTMLElement {
  const trainableZeros = r.trainableZeros;
  const cards: Array<[string, string, string?]> = [
    ['Format', r.format],
    ['Parameters', fmtCount(r.totalParams), `${fmtCount(r.trainableParams)} trainable, ${fmtCount(r.constantParams)} in constants`],
    ['Size on disk', fmtBytes(r.fileBytes)],
    ['Sparsity', fmtPct(r.trainableParams ? trainableZeros / r.trainableParams : null), `${fmtCount(trainableZeros)} exact zeros in trainable weights`],
    ['Tensors', String(r.tensors.length), `${r.layers.length} layers`],
  ];
  const head = el('header', { className: 'summary' }, [
    el('div', { className: 'title-row' }, [
      el('h1', { text: r.path.split(/[\\/]/).pop() ?? r.path, title: r.path }),
      button('Re-analyse', () => vscode.postMessage({ type: 'reanalyze' })),
      button('Export JSON', () => vscode.postMessage({ type: 'exportJson' })),
    ]),
    el(
      'div',
      { className: 'cards' },
      cards.map(([k, v, sub]) => el('div', { className: 'card' }, [el('div', { className: 'k', text: k }), el('div', { className: 'v', text: v }), ...(sub ? [el('div', { className: 'sub', text: sub })] : [])])),
    ),
    shareBar(r),
  ]);
  return head;
}

function button(label: string, onClick: () => void): HTMLElement {
  const b = document.createElement('vscode-button');
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

/** Where the parameters are: one stacked bar, one segment per layer (largest first). */
function shareBar(r: ModelReport): HTMLElement {
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
  return el('section', {}, [el('h2', { text: 'Where the parameters are' }), bar, legend]);
}

function opportunities(r: ModelReport): HTMLElement {
  const list = el('ol', { className: 'opps' });
  for (const o of r.opportunities.slice(0, 6)) {
    list.append(
      el('li', {}, [
        el('div', { className: 'opp-title', text: o.title }),
        el('div', { className: 'muted', text: `${o.estimatedSavingBytes > 0 ? `saves ~${fmtBytes(o.estimatedSavingBytes)} · ` : ''}${o.detail}` }),
      ]),
    );
  }
  return el('section', {}, [el('h2', { text: 'Opportunities' }), r.opportunities.length ? list : el('p', { className: 'muted', text: 'None found.' })]);
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
  ];
  const grid = el('table', { className: 'heat-grid' });
  grid.append(el('tr', {}, [el('th', { text: 'layer' }), ...cols.map(([c]) => el('th', { text: c }))]));
  for (const l of rows) {
    const ts = l.tensors.map((n) => byName.get(n)).filter((t): t is TensorReport => !!t && t.trainable);
    const tr = el('tr', {}, [el('th', { text: l.name, className: 'row-head' })]);
    for (const [, f] of cols) {
      const v = f(l, ts);
      const td = el('td', { text: v === null ? '' : fmtPct(v, 0), title: `${l.name}` });
      if (v !== null) {
        const [cr, cg, cb] = viridis(v);
        td.style.background = `rgb(${cr}, ${cg}, ${cb})`;
        td.style.color = cr * 0.299 + cg * 0.587 + cb * 0.114 > 140 ? '#000' : '#fff';
      } else td.className = 'empty';
      tr.append(td);
    }
    grid.append(tr);
  }
  return el('section', {}, [el('h2', { text: 'Layer-wise sparsity' }), el('div', { className: 'scroll' }, [grid]), legendBar('0%', '100%')]);
}

function ratio(ts: TensorReport[], f: (t: TensorReport) => number): number | null {
  const n = ts.reduce((s, t) => s + t.params, 0);
  return n ? ts.reduce((s, t) => s + f(t), 0) / n : null;
}
function outputs(t: TensorReport): number {
  return t.shape.length >= 2 ? t.shape[t.shape.length - 1] : t.shape[0] ?? 1;
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
    const th = el('th', { text: label + (sortKey === key ? (sortDesc ? ' ▾' : ' ▴') : ''), attrs: { role: 'button', tabindex: '0' } });
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
    const tr = el('tr', { className: row.name === selectedLayer() ? 'selected' : '' }, cols.map(([, , f], i) => el('td', { text: f(row), className: i >= 4 ? 'num' : '' })));
    tr.addEventListener('click', () => {
      const l = r.layers.find((x) => x.name === row.name);
      const t = l?.tensors.map((n) => r.tensors.find((x) => x.name === n)).filter((x): x is TensorReport => !!x).sort((a, b) => b.params - a.params)[0];
      selected = t?.name;
      vscode.setState({ selected });
      render();
    });
    table.append(tr);
  }
  return el('section', {}, [el('h2', { text: 'Layers' }), el('div', { className: 'scroll' }, [table])]);
}

function selectedLayer(): string | undefined {
  return report?.tensors.find((t) => t.name === selected)?.layer;
}

function tensorDetail(r: ModelReport): HTMLElement {
  const t = r.tensors.find((x) => x.name === selected) ?? [...r.tensors].filter((x) => x.trainable).sort((a, b) => b.params - a.params)[0];
  if (!t) return el('section');
  const parts: Node[] = [
    el('h2', { text: `Tensor ${t.name}` }),
    el('p', { className: 'muted', text: `${t.role} · [${t.shape.join('×')}] ${t.dtype}${t.storedDtype !== t.dtype ? ` (stored ${t.storedDtype})` : ''} · ${fmtCount(t.params)} params · min ${fmtNum(t.min)} · max ${fmtNum(t.max)} · mean ${fmtNum(t.mean)} · std ${fmtNum(t.std)}` }),
    el('p', { className: 'muted', text: t.sparsityMeaning }),
  ];
  if (t.tiles) parts.push(el('h3', { text: 'Importance heatmap (mean |w| per cell)' }), tilesCanvas(t), legendBar('low |w|', 'high |w|'));
  if (t.rows) {
    parts.push(
      el('h3', { text: `Embedding-row heat: ${fmtCount(t.rows.rows)} ids, ${fmtCount(t.rows.nearZeroRows)} near-zero rows` }),
      rowStrip(t),
      legendBar('weak rows', 'strong rows'),
    );
  }
  parts.push(el('h3', { text: 'Magnitude histogram (|w|, log-spaced bins)' }), histogram(t));
  if (t.spectrum) {
    parts.push(
      el('h3', { text: 'Singular values' }),
      el('p', { className: 'muted', text: `rank for 90/95/99% energy: ${t.spectrum.rankFor90 ?? '–'} / ${t.spectrum.rankFor95 ?? '–'} / ${t.spectrum.rankFor99 ?? '–'} of ${t.spectrum.fullRank} (${t.spectrum.exact ? 'exact' : 'estimated'}, ${t.spectrum.method})` }),
      bars(t.spectrum.singularValues, (i, v) => `σ${i + 1} = ${fmtNum(v)}`),
    );
  }
  return el('section', { className: 'detail' }, parts);
}

function tilesCanvas(t: TensorReport): HTMLElement {
  const tiles = t.tiles!;
  const c = document.createElement('canvas');
  c.width = tiles.cols;
  c.height = tiles.rows;
  c.className = 'tiles';
  const max = Math.max(1e-30, ...tiles.meanAbs);
  const g = c.getContext('2d');
  if (g) {
    const img = g.createImageData(tiles.cols, tiles.rows);
    tiles.meanAbs.forEach((v, i) => {
      const [r, gg, b] = viridis(v / max);
      img.data.set([r, gg, b, 255], i * 4);
    });
    g.putImageData(img, 0, 0);
  }
  const tip = el('div', { className: 'muted tip', text: `${tiles.rows}×${tiles.cols} cells of ${tiles.cellRows}×${tiles.cellCols} weights; hover for values` });
  c.addEventListener('mousemove', (e) => {
    const rect = c.getBoundingClientRect();
    const col = Math.min(tiles.cols - 1, Math.floor(((e.clientX - rect.left) / rect.width) * tiles.cols));
    const row = Math.min(tiles.rows - 1, Math.floor(((e.clientY - rect.top) / rect.height) * tiles.rows));
    const i = row * tiles.cols + col;
    tip.textContent = `rows ${row * tiles.cellRows}–${(row + 1) * tiles.cellRows - 1}, cols ${col * tiles.cellCols}–${(col + 1) * tiles.cellCols - 1}: mean |w| ${fmtNum(tiles.meanAbs[i])}, zeros ${fmtPct(tiles.zeroFrac[i])}`;
  });
  return el('div', { className: 'tiles-wrap' }, [c, tip]);
}

function rowStrip(t: TensorReport): HTMLElement {
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
  const tip = el('div', { className: 'muted tip', text: `${rs.rowsPerBucket} ids per pixel column; row-norm quantiles p5 ${fmtNum(rs.normQuantiles.p5)}, p50 ${fmtNum(rs.normQuantiles.p50)}, p95 ${fmtNum(rs.normQuantiles.p95)}` });
  c.addEventListener('mousemove', (e) => {
    const rect = c.getBoundingClientRect();
    const i = Math.min(rs.rowHeat.length - 1, Math.floor(((e.clientX - rect.left) / rect.width) * rs.rowHeat.length));
    tip.textContent = `ids ${i * rs.rowsPerBucket}–${Math.min(rs.rows, (i + 1) * rs.rowsPerBucket) - 1}: mean row norm ${fmtNum(rs.rowHeat[i])}`;
  });
  return el('div', {}, [c, tip]);
}

function histogram(t: TensorReport): HTMLElement {
  const h = t.histogram;
  return bars(h.counts, (i, v) => `${fmtNum(h.edges[i])} ≤ |w| < ${fmtNum(h.edges[i + 1])}: ${fmtCount(v)}`, h.zeroCount ? `exact zeros: ${fmtCount(h.zeroCount)}` : undefined);
}

function bars(values: number[], label: (i: number, v: number) => string, note?: string): HTMLElement {
  const max = Math.max(1e-30, ...values);
  const wrap = el('div', { className: 'bars', attrs: { role: 'img' } });
  values.forEach((v, i) => {
    const b = el('div', { className: 'bar', title: label(i, v) });
    b.style.height = `${Math.max(1, (v / max) * 100)}%`;
    wrap.append(b);
  });
  return el('div', {}, [wrap, ...(note ? [el('div', { className: 'muted', text: note })] : [])]);
}

// ---------- messages ----------
window.addEventListener('message', (ev: MessageEvent<HostToWebview>) => {
  const m = ev.data;
  switch (m.type) {
    case 'loading':
      if (!report) app.replaceChildren(el('p', { className: 'muted', text: `Analysing ${m.path}…` }));
      return;
    case 'progress': {
      if (report) return;
      const p = el('progress', { attrs: { max: '1', value: String(m.fraction) } });
      app.replaceChildren(el('p', { className: 'muted', text: `${m.phase} ${m.detail ?? ''}` }), p);
      return;
    }
    case 'report':
      report = m.report;
      render();
      return;
    case 'error':
      app.prepend(el('div', { className: 'error', text: m.message, attrs: { role: 'alert' } }));
      return;
  }
});

const state = vscode.getState() as { selected?: string } | undefined;
selected = state?.selected;
vscode.postMessage({ type: 'ready' });
