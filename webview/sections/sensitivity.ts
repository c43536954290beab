// A sensitivity study: one curve per tensor pruned alone, and the proposal.

import { html, nothing, type TemplateResult } from 'lit';
import { formatPct } from '../../src/shared/format.js';
import type { PanelState } from '../store.js';
import { isStatic, post } from '../host.js';
import { lineChart } from '../charts.js';
import { button, pngButton, sectionView } from '../ui.js';

export const sensitivitySection = {
  deps: (s: PanelState) => [s.sens],
  view(s: PanelState): TemplateResult | typeof nothing {
    const v = s.sens;
    if (!v) return nothing;
    const metric = `${v.metric.toUpperCase()}@${v.k}`;
    const canvas = lineChart(v.curves.map((c) => ({ name: c.layer.replace(/\/(embeddings|kernel)$/, ''), points: c.points.map((p) => ({ x: p.amount, y: p.value })) })), 720, 280, 'share of the tensor pruned', metric);
    const base = v.metric === 'ndcg' ? v.baseline.ndcg : v.baseline.hr;
    const combined = v.metric === 'ndcg' ? v.combined.ndcg : v.combined.hr;
    const tools = [
      isStatic ? nothing : button('Prune with this proposal', () => post({ type: 'applyProposal' }), { title: 'Magnitude pruning with the proposed sparsity per tensor' }),
      pngButton('sensitivity', () => canvas),
    ];
    return sectionView(
      'sensitivity',
      `Sensitivity (${metric} per tensor pruned alone)`,
      html`<p class="muted">Dense ${metric} ${base.toFixed(4)}; budget: at most ${formatPct(v.budget, 1)} drop per tensor. All proposals together: ${formatPct(v.combined.sparsity, 0)} of the weights pruned, ${metric} ${combined.toFixed(4)} (${v.combined.drop >= 0 ? '−' : '+'}${formatPct(Math.abs(v.combined.drop), 2)})${v.backoffs ? `, after scaling the targets found alone back ${v.backoffs} time${v.backoffs === 1 ? '' : 's'} (x0.75 each) to meet the budget together` : ''}. ${v.seconds.toFixed(1)} s.</p>
        ${canvas}
        <div class="scroll"><table class="layers changes">
          <tr>${['tensor', ...(v.alone ? ['alone'] : []), v.alone ? 'together (proposed)' : 'proposed sparsity', `${metric} at each sparsity tried`].map((h) => html`<th>${h}</th>`)}</tr>
          ${v.curves.map((c) => html`<tr>
            <td>${c.layer}</td>
            ${v.alone ? html`<td class="num">${formatPct(v.alone[c.layer] ?? 0, 0)}</td>` : nothing}
            <td class="num">${formatPct(v.proposal[c.layer] ?? 0, 0)}</td>
            <td class="num">${c.points.slice(1).map((p) => `${formatPct(p.amount, 0)}: ${p.value.toFixed(3)}`).join(' · ')}</td>
          </tr>`)}
        </table></div>`,
      tools,
    );
  },
};
