// Where the parameters are: one stacked bar, one segment per layer (largest first).

import { html, nothing, type TemplateResult } from 'lit';
import { formatPct } from '../../src/shared/format.js';
import type { PanelState } from '../store.js';
import { viridisCss } from '../colormap.js';
import { cssProps, sectionView } from '../ui.js';

export const shareSection = {
  deps: (s: PanelState) => [s.report],
  view(s: PanelState): TemplateResult | typeof nothing {
    // a tree ensemble's weights are not tensors: no bar of nothing (the trees section has its figures)
    if (!s.report || s.report.trainableParams === 0) return nothing;
    const layers = [...s.report.layers].filter((l) => l.share > 0).sort((a, b) => b.share - a.share);
    const color = (i: number) => viridisCss(layers.length > 1 ? i / (layers.length - 1) : 0);
    return sectionView(
      'share',
      'Where the parameters are',
      html`<div class="share-bar" role="img" aria-label="share of parameters per layer">
          ${layers.map((l, i) => html`<div class="seg" title=${`${l.name}: ${formatPct(l.share)} of trainable parameters`} ${cssProps({ width: `${(l.share * 100).toFixed(3)}%`, background: color(i) })}></div>`)}
        </div>
        <div class="share-legend">
          ${layers.slice(0, 8).map((l, i) => html`<span class="item"><span class="swatch" ${cssProps({ background: color(i) })}></span>${l.name} ${formatPct(l.share)}</span>`)}
        </div>`,
    );
  },
};
