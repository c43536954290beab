// The typed message protocol between the extension host and the analysis panel (webview).
// The webview imports only this file and report.ts. Every message from the webview is checked
// by `parseWebviewMessage` before the host acts on it: a webview is untrusted input.

import type { ModelReport } from './report.js';

export type HostToWebview =
  | { type: 'loading'; path: string }
  | { type: 'progress'; fraction: number; phase: string; detail?: string }
  | { type: 'report'; report: ModelReport; backend?: string }
  | { type: 'error'; message: string };

export type WebviewToHost =
  | { type: 'ready' }
  | { type: 'reanalyze' }
  | { type: 'exportJson' }
  | { type: 'revealTensor'; tensor: string };

/** Returns the message if it is well-formed, else undefined (and the host ignores it). */
export function parseWebviewMessage(m: unknown): WebviewToHost | undefined {
  if (typeof m !== 'object' || m === null) return undefined;
  const type = (m as { type?: unknown }).type;
  switch (type) {
    case 'ready':
    case 'reanalyze':
    case 'exportJson':
      return { type };
    case 'revealTensor': {
      const tensor = (m as { tensor?: unknown }).tensor;
      return typeof tensor === 'string' && tensor.length <= 4096 ? { type, tensor } : undefined;
    }
    default:
      return undefined;
  }
}
