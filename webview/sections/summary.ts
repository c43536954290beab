// The header: model name, totals as cards, and the report tools.

import { html, nothing, type TemplateResult } from 'lit';
import { fileName, formatBytes, formatCount, formatPct } from '../../src/shared/format.js';
import type { PanelState } from '../store.js';
import { exportHtml, isStatic, post } from '../host.js';
import { button } from '../ui.js';

/** The formats as the Models view names them. */
const FORMAT_NAMES: Record<string, string> = { onnx: 'ONNX', 'tfjs-layers': 'TF.js layers', 'tfjs-graph': 'TF.js graph', 'tfjs-weights': 'TF.js weights' };

export const summarySection = {
  deps: (s: PanelState) => [s.report, s.comparison, s.viewing, s.trees],
  view(s: PanelState): TemplateResult | typeof nothing {
    const r = s.report;
    if (!r) return nothing;
    const trainableZeros = r.tensors.filter((t) => t.trainable).reduce((n, t) => n + t.zeros, 0);
    const embParams = r.tensors.filter((t) => t.role === 'embedding').reduce((n, t) => n + t.params, 0);
    const format = FORMAT_NAMES[r.format] ?? r.format;
    // a tree ensemble keeps its model in node attributes, not tensors: its cards are trees, nodes, leaves
    const ens = r.trainableParams === 0 ? s.trees?.ensembles ?? [] : [];
    const sum = (f: (e: (typeof ens)[number]) => number) => ens.reduce((n, e) => n + f(e), 0);
    const cards: Array<[string, string, string?]> = ens.length
      ? [
          ['Format', format, 'tree ensemble'],
          ['Size on disk', formatBytes(r.fileBytes)],
          ['Trees', formatCount(sum((e) => e.trees)), `${ens.length} ensemble${ens.length === 1 ? '' : 's'}`],
          ['Nodes', formatCount(sum((e) => e.nodes)), `${formatCount(sum((e) => e.leaves))} leaves`],
          ['Features', String(Math.max(...ens.map((e) => e.features))), `${formatCount(sum((e) => e.unusedFeatures.length))} unused`],
        ]
      : [
          ['Format', format],
          ['Parameters', formatCount(r.totalParams), `${formatCount(r.trainableParams)} trainable, ${formatCount(r.constantParams)} in constants`],
          ['Size on disk', formatBytes(r.fileBytes)],
          ['Embeddings', formatPct(r.trainableParams ? embParams / r.trainableParams : null), 'of the trainable parameters'],
          ['Sparsity', formatPct(r.trainableParams ? trainableZeros / r.trainableParams : null), `${formatCount(trainableZeros)} exact zeros in trainable weights`],
          ['Tensors', String(r.tensors.length), `${r.layers.length} layers`],
        ];
    const tools = isStatic
      ? nothing
      : [
          button('Re-analyse', () => post({ type: 'reanalyze' }), { secondary: true }),
          button('Export HTML', exportHtml, { secondary: true, title: 'Save a self-contained HTML report (no remote content)' }),
          button('Export JSON', () => post({ type: 'exportJson' }), { secondary: true }),
        ];
    return html`<header class="summary" id="summary">
      <div class="title-row">
        <h1 title=${r.path}>${fileName(r.path)}</h1>
        ${s.comparison && s.viewing === 'after' ? html`<span class="pill">compressed</span>` : nothing}
        ${tools}
      </div>
      <div class="cards">
        ${cards.map(([k, v, sub]) => html`<div class="card"><div class="k">${k}</div><div class="v">${v}</div>${sub ? html`<div class="sub">${sub}</div>` : nothing}</div>`)}
      </div>
    </header>`;
  },
};

/** An error line and the job's progress (updates alone on every tick). */
export const statusSection = {
  deps: (s: PanelState) => [s.errorText, s.busy, s.report === undefined],
  view(s: PanelState): TemplateResult | typeof nothing {
    const err = s.errorText ? html`<div class="error" role="alert">${s.errorText}</div>` : nothing;
    if (s.busy) {
      const pct = Math.round(s.busy.fraction * 100);
      return html`${err}<div class="busy" id="progress">
        <div class="muted">${pct}% ${s.busy.phase} ${s.busy.detail ?? ''}</div>
        <vscode-progress-bar value=${pct} max="100"></vscode-progress-bar>
      </div>`;
    }
    if (!s.report && !s.errorText) return html`<p class="muted">Analysing…</p>`;
    return err;
  },
};

export const footerSection = {
  deps: (s: PanelState) => [s.report],
  view(s: PanelState): TemplateResult | typeof nothing {
    const r = s.report;
    if (!r) return nothing;
    return html`<footer class="muted">${r.tool.name} ${r.tool.version} · analysed ${new Date(r.generatedAt).toLocaleString()} · ε = ${r.epsilon}</footer>`;
  },
};
