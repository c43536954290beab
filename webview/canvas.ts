// A canvas sized in CSS pixels and drawn at the device's pixel ratio (at most 3x), focusable, with
// an accessible label: the heatmap and the graph view both start from one.

export function hiDpiCanvas(className: string, cssW: number, cssH: number, label: string): { canvas: HTMLCanvasElement; ratio: number } {
  const ratio = Math.max(1, Math.min(3, window.devicePixelRatio || 1));
  const canvas = document.createElement('canvas');
  canvas.className = className;
  canvas.width = Math.round(cssW * ratio);
  canvas.height = Math.round(cssH * ratio);
  canvas.style.width = `${cssW}px`;
  canvas.style.height = `${cssH}px`;
  canvas.tabIndex = 0;
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', label);
  return { canvas, ratio };
}

/** A strip canvas scaled up (pixels kept sharp) to at least `minWidth` x `height` for PNG export. */
export function stretchedCopy(c: HTMLCanvasElement, minWidth: number, height: number): HTMLCanvasElement {
  const out = document.createElement('canvas');
  out.width = Math.max(512, minWidth);
  out.height = height;
  const og = out.getContext('2d');
  if (og) {
    og.imageSmoothingEnabled = false;
    og.drawImage(c, 0, 0, out.width, out.height);
  }
  return out;
}
