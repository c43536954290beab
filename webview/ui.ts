// Small template pieces every section uses: a section with its heading and tools, buttons, the
// PNG button, the viridis legend and a canvas with a hover line. Text goes through lit bindings,
// which never parse it as HTML.

import { html, noChange, nothing, type TemplateResult } from 'lit';
import { Directive, directive, type ElementPart } from 'lit/directive.js';
import { exportPng, isStatic } from './host.js';
import { viridisCss } from './colormap.js';

export function sectionView(id: string, title: string, body: unknown, tools: unknown[] = []): TemplateResult {
  return html`<section id=${id}><div class="section-head"><h2>${title}</h2>${tools}</div>${body}</section>`;
}

export function button(label: string, onClick: () => void, opts: { secondary?: boolean; title?: string; data?: string } = {}): TemplateResult {
  return html`<vscode-button ?secondary=${opts.secondary === true} title=${opts.title ?? nothing} data-view=${opts.data ?? nothing} @click=${onClick}>${label}</vscode-button>`;
}

/** "Save as PNG" for a chart; the canvas is made when clicked (some are built for export only). */
export function pngButton(name: string, canvas: () => HTMLCanvasElement): TemplateResult {
  return button('PNG', () => exportPng(name, canvas()), { secondary: true, title: `Save this chart as ${name}.png` });
}

/** Host-only tools (an exported report has no host to run them). */
export function hostOnly(t: unknown): unknown {
  return isStatic ? nothing : t;
}

export function legendBar(lo: string, hi: string): TemplateResult {
  const c = document.createElement('canvas');
  c.width = 256;
  c.height = 10;
  c.className = 'legend-bar';
  const g = c.getContext('2d');
  if (g) for (let x = 0; x < 256; x++) {
    g.fillStyle = viridisCss(x / 255);
    g.fillRect(x, 0, 1, 10);
  }
  return html`<div class="legend"><span>${lo}</span>${c}<span>${hi}</span></div>`;
}

/** A canvas whose hover text shows below it. */
export function hoverable(canvas: HTMLCanvasElement, hover: (x: number, y: number) => string | undefined, idle: string): HTMLElement {
  const tip = document.createElement('div');
  tip.className = 'muted tip';
  tip.textContent = idle;
  canvas.addEventListener('mousemove', (e) => {
    const rect = canvas.getBoundingClientRect();
    tip.textContent = hover(e.clientX - rect.left, e.clientY - rect.top) ?? idle;
  });
  canvas.addEventListener('mouseleave', () => (tip.textContent = idle));
  const wrap = document.createElement('div');
  wrap.append(canvas, tip);
  return wrap;
}

/** A name safe for a file name. */
export function safeName(s: string): string {
  return s.replace(/[^a-zA-Z0-9._-]+/g, '_').slice(0, 60);
}

/**
 * Inline styles through the CSSOM (`<div ${cssProps({ width: '40%' })}>`): the panel's CSP
 * refuses style attributes, and lit's styleMap writes one on its first render.
 */
class CssProps extends Directive {
  render(_props: Record<string, string>): unknown {
    return noChange;
  }
  override update(part: ElementPart, [props]: [Record<string, string>]): unknown {
    const style = (part.element as HTMLElement).style;
    for (const [k, v] of Object.entries(props)) style.setProperty(k, v);
    return noChange;
  }
}
export const cssProps = directive(CssProps);
