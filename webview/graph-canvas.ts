// Draws a laid-out graph on one canvas with pan (drag), zoom (wheel, +/-), hover and click.
// Only what is inside the view is drawn, so a frame costs little however big the graph is.

import { hiDpiCanvas } from './canvas.js';
import { themeColors } from './charts.js';
import { viridis } from './colormap.js';
import type { GraphLayout, PlacedNode } from './graph-layout.js';

export interface GraphCanvas {
  element: HTMLElement;
  canvas: HTMLCanvasElement;
  /** slowest frame so far, ms (also on the canvas as data-max-frame-ms) */
  maxFrameMs(): number;
  /** first frame's time, ms */
  firstFrameMs: number;
}

export interface GraphCanvasOptions {
  layout: GraphLayout;
  /** 0..1 colour value of a node (null: no value) */
  value: (n: PlacedNode) => number | null;
  describe: (n: PlacedNode) => string;
  onClick: (n: PlacedNode) => void;
  selected?: string;
  idle: string;
}

export function graphCanvas(o: GraphCanvasOptions): GraphCanvas {
  const cssW = Math.max(480, Math.min(1160, document.body.clientWidth - 40));
  const cssH = 540;
  const { canvas, ratio } = hiDpiCanvas('graph', cssW, cssH, `model graph, ${o.layout.nodes.length} nodes; drag to pan, wheel or +/- to zoom, click a node for its tensors`);
  const g = canvas.getContext('2d');
  const c = themeColors();
  const L = o.layout;
  // fit the width (a tall graph starts at its top, readable), never magnify beyond 1.2
  let scale = Math.min(1.2, cssW / Math.max(1, L.width), Math.max(cssH / Math.max(1, L.height), 0.35));
  let ox = (cssW - L.width * scale) / 2;
  let oy = 8;
  let maxFrame = 0;
  let pending = false;
  const values = new Map(L.nodes.map((n) => [n.id, o.value(n)]));

  const draw = () => {
    pending = false;
    if (!g) return;
    const t0 = performance.now();
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, cssW, cssH);
    g.translate(ox, oy);
    g.scale(scale, scale);
    // the view in graph coordinates, with a margin
    const [vx0, vy0, vx1, vy1] = [-ox / scale - 50, -oy / scale - 50, (cssW - ox) / scale + 50, (cssH - oy) / scale + 50];
    g.strokeStyle = c.muted;
    g.globalAlpha = 0.7;
    g.lineWidth = 1 / Math.max(scale, 0.5);
    g.beginPath();
    for (const pts of L.edges) {
      if (!pts.length || pts.every((p) => p.x < vx0 || p.x > vx1 || p.y < vy0 || p.y > vy1)) continue;
      g.moveTo(pts[0].x, pts[0].y);
      for (let i = 1; i < pts.length; i++) g.lineTo(pts[i].x, pts[i].y);
    }
    g.stroke();
    g.globalAlpha = 1;
    const text = scale >= 0.45;
    g.font = `11px ${c.font}`;
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    for (const n of L.nodes) {
      const [x, y] = [n.x - n.w / 2, n.y - n.h / 2];
      if (x > vx1 || y > vy1 || x + n.w < vx0 || y + n.h < vy0) continue;
      const v = values.get(n.id) ?? null;
      const rgb = v === null ? undefined : viridis(v);
      g.fillStyle = rgb ? `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})` : c.bg;
      g.strokeStyle = n.id === o.selected ? c.fg : c.grid;
      g.lineWidth = n.id === o.selected ? 3 : n.group ? 2 : 1;
      g.beginPath();
      g.roundRect(x, y, n.w, n.h, n.group ? 8 : 4);
      g.fill();
      g.stroke();
      if (n.group) {
        // a second outline: a stack of blocks
        g.strokeStyle = c.muted;
        g.lineWidth = 1;
        g.strokeRect(x + 3, y + n.h + 1, n.w - 6, 2);
      }
      if (!text) continue;
      g.fillStyle = rgb ? (rgb[0] * 0.299 + rgb[1] * 0.587 + rgb[2] * 0.114 > 140 ? '#000' : '#fff') : c.fg;
      g.fillText(n.label, n.x, n.y - 7, n.w - 8);
      g.globalAlpha = 0.8;
      g.fillText(n.sub, n.x, n.y + 8, n.w - 8);
      g.globalAlpha = 1;
    }
    const ms = performance.now() - t0;
    maxFrame = Math.max(maxFrame, ms);
    canvas.dataset.maxFrameMs = maxFrame.toFixed(1);
  };
  const redraw = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(draw);
  };
  const nodeAt = (e: MouseEvent): PlacedNode | undefined => {
    const r = canvas.getBoundingClientRect();
    const [gx, gy] = [(e.clientX - r.left - ox) / scale, (e.clientY - r.top - oy) / scale];
    return L.nodes.find((n) => Math.abs(gx - n.x) <= n.w / 2 && Math.abs(gy - n.y) <= n.h / 2);
  };
  const zoomAt = (f: number, sx = cssW / 2, sy = cssH / 2) => {
    const ns = Math.min(4, Math.max(0.03, scale * f));
    ox = sx - ((sx - ox) * ns) / scale;
    oy = sy - ((sy - oy) * ns) / scale;
    scale = ns;
    redraw();
  };
  const tip = document.createElement('div');
  tip.className = 'muted tip';
  tip.textContent = o.idle;
  let drag: { x: number; y: number; ox: number; oy: number; moved: boolean } | undefined;
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    zoomAt(e.deltaY < 0 ? 1.2 : 1 / 1.2, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  canvas.addEventListener('mousedown', (e) => {
    drag = { x: e.clientX, y: e.clientY, ox, oy, moved: false };
    canvas.classList.add('dragging');
  });
  canvas.addEventListener('mousemove', (e) => {
    if (drag && (e.buttons & 1) !== 0) {
      const [dx, dy] = [e.clientX - drag.x, e.clientY - drag.y];
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      ox = drag.ox + dx;
      oy = drag.oy + dy;
      redraw();
      return;
    }
    const n = nodeAt(e);
    tip.textContent = n ? o.describe(n) : o.idle;
    canvas.classList.toggle('pointing', n !== undefined);
  });
  canvas.addEventListener('mouseup', (e) => {
    const click = drag && !drag.moved;
    drag = undefined;
    canvas.classList.remove('dragging');
    const n = click ? nodeAt(e) : undefined;
    if (n) o.onClick(n);
  });
  canvas.addEventListener('mouseleave', () => {
    drag = undefined;
    canvas.classList.remove('dragging');
    tip.textContent = o.idle;
  });
  canvas.addEventListener('keydown', (e) => {
    const step = 60;
    if (e.key === '+' || e.key === '=') zoomAt(1.25);
    else if (e.key === '-') zoomAt(0.8);
    else if (e.key === 'ArrowLeft') ox += step;
    else if (e.key === 'ArrowRight') ox -= step;
    else if (e.key === 'ArrowUp') oy += step;
    else if (e.key === 'ArrowDown') oy -= step;
    else return;
    e.preventDefault();
    redraw();
  });
  const t0 = performance.now();
  draw();
  const firstFrameMs = performance.now() - t0;
  const element = document.createElement('div');
  element.className = 'graph-view';
  element.append(canvas, tip);
  return { element, canvas, maxFrameMs: () => maxFrame, firstFrameMs };
}
