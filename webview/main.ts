// The analysis panel (browser code). It imports only src/shared; it gets its data over messages
// (or, in an exported HTML report, from an inline JSON block). State lives in store.ts; each
// section renders from it with lit (text bindings only: model strings are never parsed as HTML)
// and only when the state it reads has changed.

import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import { nothing, render, type TemplateResult } from 'lit';
import type { CompressJobResult, GraphView, HostToWebview, PlanView, RunRecord, SensitivityView, TreesView } from '../src/shared/protocol.js';
import type { ModelReport } from '../src/shared/report.js';
import { apply, getState, subscribe, update, type PanelState } from './store.js';
import { isStatic, post, savedState, staticData } from './host.js';
import { footerSection, statusSection, summarySection } from './sections/summary.js';
import { comparisonSection } from './sections/comparison.js';
import { sensitivitySection } from './sections/sensitivity.js';
import { frontSection } from './sections/front.js';
import { historySection } from './sections/history.js';
import { shareSection } from './sections/share.js';
import { findingsSection } from './sections/findings.js';
import { treesSection } from './sections/trees.js';
import { graphSection, OVERLAYS } from './sections/graph.js';
import { sparsitySection } from './sections/sparsity.js';
import { layersSection } from './sections/layers.js';
import { tensorSection } from './sections/tensor.js';

interface Section {
  deps(s: PanelState): unknown[];
  view(s: PanelState): TemplateResult | typeof nothing;
}

/** In page order. Until a report arrives only the status line shows. */
const SECTIONS: Section[] = [
  summarySection,
  statusSection,
  comparisonSection,
  sensitivitySection,
  frontSection,
  historySection,
  shareSection,
  findingsSection,
  treesSection,
  graphSection,
  sparsitySection,
  layersSection,
  tensorSection,
  footerSection,
];

const app = document.getElementById('app') as HTMLElement;
app.replaceChildren();
const slots = SECTIONS.map(() => app.appendChild(document.createElement('div')));
const last: Array<unknown[] | undefined> = SECTIONS.map(() => undefined);

function renderChanged(s: PanelState): void {
  SECTIONS.forEach((sec, i) => {
    const deps = [s.report === undefined, ...sec.deps(s)];
    const prev = last[i];
    if (prev && prev.length === deps.length && prev.every((d, k) => d === deps[k])) return;
    last[i] = deps;
    render(s.report || sec === statusSection ? sec.view(s) : nothing, slots[i]);
  });
}

subscribe((s) => renderChanged(s));

/** Messages that bring a section the user should look at scroll it into view. */
const SCROLL_TO: Partial<Record<HostToWebview['type'], string>> = { comparison: 'comparison', sensitivity: 'sensitivity', plan: 'front', history: 'history' };

if (isStatic) {
  const data = JSON.parse(staticData?.textContent ?? '{}') as {
    report?: ModelReport;
    comparison?: CompressJobResult;
    sensitivity?: SensitivityView;
    trees?: TreesView;
    plan?: PlanView;
    history?: { model: string; runs: RunRecord[] };
    graph?: GraphView;
    overlay?: string;
  };
  update({
    report: data.report,
    comparison: data.comparison,
    sens: data.sensitivity,
    trees: data.trees,
    plan: data.plan,
    history: data.history,
    graphs: data.graph ? { [data.graph.model]: data.graph } : {},
    overlay: OVERLAYS.find(([k]) => k === data.overlay)?.[0] ?? 'params',
  });
} else {
  window.addEventListener('message', (ev: MessageEvent<HostToWebview>) => {
    apply(ev.data);
    const target = SCROLL_TO[ev.data.type];
    if (target) document.getElementById(target)?.scrollIntoView({ block: 'start' });
  });
  const saved = savedState();
  update({ selected: saved.selected, heatScale: saved.heatScale ?? 'linear', overlay: OVERLAYS.find(([k]) => k === saved.overlay)?.[0] ?? getState().overlay });
  post({ type: 'ready' });
}
