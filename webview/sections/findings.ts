// The findings, biggest saving first, each with its one-click job.

import { html, nothing, type TemplateResult } from 'lit';
import type { Opportunity, OpportunityKind } from '../../src/shared/report.js';
import { formatBytes } from '../../src/shared/format.js';
import type { PanelState } from '../store.js';
import { isStatic, post } from '../host.js';
import { button, sectionView } from '../ui.js';

const ACTION_LABEL: Partial<Record<OpportunityKind, (o: Opportunity, format: string) => string>> = {
  'prune-rows': (o) => `Prune ${/prune (\d+)% of rows/.exec(o.title)?.[1] ?? 50}% of rows`,
  'prune-weights': () => 'Prune 50% of weights',
  'prune-neurons': () => 'Remove dead neurons',
  'quantize-int8': (_o, format) => (format === 'onnx' ? 'Quantize to int8' : 'Quantize to uint8'),
  'quantize-float16': () => 'Quantize to float16',
  factorize: (o) => `Factorize to rank ${/rank (\d+) of/.exec(o.title)?.[1] ?? ''}`.trim(),
};

export const findingsSection = {
  deps: (s: PanelState) => [s.report, s.actions, s.viewing, s.comparison, s.trees],
  view(s: PanelState): TemplateResult | typeof nothing {
    const r = s.report;
    if (!r) return nothing;
    if (!r.opportunities.length) {
      // a tree ensemble's findings are in its own section below
      if (s.trees?.ensembles.length) return sectionView('findings', 'Findings', html`<p class="muted">No tensor to compress: the model is a tree ensemble; its findings are in the Tree ensemble section below.</p>`);
      return sectionView('findings', 'Findings', html`<p class="muted">Nothing stands out: no near-zero rows, low-rank tables, dead neurons or cheap quantization found.</p>`);
    }
    // the compressed model shown below a comparison: its findings' jobs start from that file
    const after = s.viewing === 'after' && s.comparison !== undefined;
    const item = (o: Opportunity) => {
      const label = ACTION_LABEL[o.kind];
      const act = !isStatic && label && s.actions.includes(o.kind)
        ? button(label(o, r.format), () => post({ type: 'runAction', action: { kind: o.kind, target: o.target }, ...(after ? { on: 'after' as const } : {}) }), {
            title: after ? `Runs the job on the compressed model (${s.comparison!.output}); it is never changed` : 'Runs the job; the original is never changed',
          })
        : nothing;
      return html`<li>
        <div class="opp-row"><div class="opp-title">${o.title}</div><vscode-badge>${o.kind}</vscode-badge>${act}</div>
        <div class="muted">${o.estimatedSavingBytes > 0 ? `saves ~${formatBytes(o.estimatedSavingBytes)} · ` : ''}${o.detail}</div>
      </li>`;
    };
    const whose = after ? html`<p class="muted">Findings of the compressed model: their jobs start from it, not from the original.</p>` : nothing;
    return sectionView('findings', 'Findings', html`${whose}<ol class="opps">${r.opportunities.slice(0, 12).map(item)}</ol>`);
  },
};
