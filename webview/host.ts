// The panel's line to the extension host, and what an exported (static) report does instead:
// it has no host, so messages go nowhere and PNGs download.

import type { WebviewToHost } from '../src/shared/protocol.js';

interface VsCodeApi {
  postMessage(m: WebviewToHost): void;
  getState(): unknown;
  setState(s: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

/** An exported report carries its data inline (this element) and has no host to talk to. */
export const staticData = document.getElementById('prunescope-data');
export const isStatic = staticData !== null;

const api: VsCodeApi = isStatic ? { postMessage: () => undefined, getState: () => undefined, setState: () => undefined } : acquireVsCodeApi();

export function post(m: WebviewToHost): void {
  api.postMessage(m);
}

/** What survives the panel being hidden and shown again. */
export interface SavedState {
  selected?: string;
  heatScale?: 'linear' | 'log';
  overlay?: string;
}
export function savedState(): SavedState {
  return (api.getState() as SavedState | undefined) ?? {};
}
export function saveState(s: SavedState): void {
  api.setState(s);
}

/** Sends a canvas to the host to be saved as PNG (an exported report downloads it). */
export function exportPng(name: string, canvas: HTMLCanvasElement): void {
  const dataUrl = withBackground(canvas).toDataURL('image/png');
  if (isStatic) {
    const a = document.createElement('a');
    a.href = dataUrl;
    a.download = `${name}.png`;
    a.click();
    return;
  }
  post({ type: 'exportPng', name, dataUrl });
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

/** Asks the host for a self-contained HTML report with the theme's colours frozen in. */
export function exportHtml(): void {
  // VS Code sets the theme as inline custom properties on <html>; the report freezes them
  const style = document.documentElement.style;
  const themeVars: Record<string, string> = {};
  for (let i = 0; i < style.length; i++) {
    const k = style.item(i);
    if (k.startsWith('--vscode-')) themeVars[k] = style.getPropertyValue(k).trim();
  }
  const cl = document.body.classList;
  const kind = cl.contains('vscode-light') ? 'vscode-light' : cl.contains('vscode-high-contrast') ? 'vscode-high-contrast' : 'vscode-dark';
  post({ type: 'exportHtml', themeVars, themeKind: kind });
}
