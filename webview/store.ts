// The panel's state and how messages change it. Sections render from this state (main.ts
// re-renders a section only when the slices it reads have changed identity).

import type { CompressJobResult, GraphOverlay, GraphView, HostToWebview, PlanView, RunRecord, SensitivityView, TreesView } from '../src/shared/protocol.js';
import type { ModelReport, OpportunityKind } from '../src/shared/report.js';
import { withSensitivity } from '../src/shared/graph-overlay.js';
import { fileName } from '../src/shared/format.js';

export type LayerSortKey = 'name' | 'kind' | 'role' | 'shape' | 'params' | 'share' | 'sparsity' | 'nearZero' | 'int8' | 'rank';

export interface PanelState {
  /** the model the analysis sections show (the original, or a comparison's other side) */
  report?: ModelReport;
  actions: OpportunityKind[];
  comparison?: CompressJobResult;
  viewing: 'before' | 'after';
  sens?: SensitivityView;
  /** the tree ensembles of an ONNX file (empty list = none) */
  trees?: TreesView;
  plan?: PlanView;
  /** the plan point whose model the host is writing */
  writing?: string;
  history?: { model: string; runs: RunRecord[] };
  /** the runs compared side by side (ids); undefined: the latest few */
  picked?: readonly string[];
  /** graph views by model path */
  graphs: Readonly<Record<string, GraphView>>;
  overlay: GraphOverlay;
  /** expanded repeated-block groups of the graph */
  expanded: readonly string[];
  /** the tensor shown in the tensor section */
  selected?: string;
  /** the graph node whose tensors the tensor section offers */
  node?: { label: string; tensors: string[] };
  sortKey: LayerSortKey;
  sortDesc: boolean;
  heatScale: 'linear' | 'log';
  busy?: { phase: string; fraction: number; detail?: string };
  errorText?: string;
}

type Listener = (s: PanelState, prev: PanelState) => void;

let state: PanelState = { actions: [], viewing: 'before', graphs: {}, overlay: 'params', expanded: [], sortKey: 'params', sortDesc: true, heatScale: 'linear' };
const listeners: Listener[] = [];

export function getState(): PanelState {
  return state;
}

export function subscribe(l: Listener): void {
  listeners.push(l);
}

/** Replaces the given fields and tells the listeners. */
export function update(patch: Partial<PanelState>): void {
  const prev = state;
  state = { ...state, ...patch };
  for (const l of listeners) l(state, prev);
}

/** The graph of the model the sections show, with the sensitivity overlay when a study of that model exists. */
export function currentGraph(s: PanelState): GraphView | undefined {
  const g = s.report ? s.graphs[s.report.path] : undefined;
  return g && s.sens && fileName(s.sens.model) === fileName(g.model) ? withSensitivity(g, s.sens) : g;
}

/** A host message as a state change. */
export function apply(m: HostToWebview): void {
  switch (m.type) {
    case 'loading':
      return update({ errorText: undefined, trees: undefined, busy: { phase: `reading ${fileName(m.path)}`, fraction: 0 } });
    case 'progress':
      return update({ errorText: undefined, busy: { phase: m.phase, fraction: m.fraction, detail: m.detail } });
    case 'report': {
      const keep = state.comparison && state.comparison.original === m.report.path;
      return update({ report: m.report, actions: m.actions ?? [], busy: undefined, errorText: undefined, viewing: 'before', comparison: keep ? state.comparison : undefined, expanded: [] });
    }
    case 'comparison':
      return update({ comparison: m.result, viewing: 'before', busy: undefined });
    case 'sensitivity':
      return update({ sens: m.result, busy: undefined });
    case 'trees':
      return update({ trees: m.result });
    case 'plan':
      return update({ plan: m.result, writing: undefined, busy: undefined });
    case 'history':
      return update({ history: { model: m.model, runs: m.runs }, picked: undefined });
    case 'graph':
      return update({ graphs: { ...state.graphs, [m.graph.model]: m.graph } });
    case 'error':
      return update({ busy: undefined, writing: undefined, errorText: m.message });
  }
}
