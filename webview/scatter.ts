// A scatter chart on canvas for the front and the run history: log or linear x, points coloured
// by a value (viridis) or a series, shapes for kinds, a ring for the chosen point, a hover tip
// and clicks. Hit-testing is by distance in screen space.

import { hidpiCanvas, shortNum, themeColors } from './charts.js';
import { viridisCss } from './colormap.js';

export interface ScatterPoint {
  x: number;
  y: number;
  /** 0..1 on viridis, or a CSS colour; undefined: the muted colour */
  color?: number | string;
  shape?: 'circle' | 'diamond' | 'cross';
  /** a ring around it (the chosen point) */
  ring?: boolean;
  /** hover text (several lines) */
  tip: string;
  /** points of the same series are joined by a line, in x order */
  series?: number;
}

export interface ScatterOptions {
  width: number;
  height: number;
  points: ScatterPoint[];
  logX?: boolean;
  xCaption: string;
  yCaption: string;
  xFormat?: (v: number) => string;
  yFormat?: (v: number) => string;
  /** a horizontal reference line (e.g. 100% kept) */
  refY?: number;
  /** series colours and names, drawn as a legend at the right */
  series?: Array<{ name: string; color: string }>;
  /** a viridis legend for the colour values */
  colorLegend?: { caption: string; lo: string; hi: string };
}

export interface ScatterView {
  canvas: HTMLCanvasElement;
  /** index of the point under (x, y) in CSS pixels of the canvas, if any */
  hit(x: number, y: number): number | undefined;
}

const PAD = { left: 58, right: 16, top: 12, bottom: 38 };

export function scatterChart(o: ScatterOptions): ScatterView {
  const legendW = o.series?.length ? 170 : o.colorLegend ? 90 : 0;
  const { canvas, g } = hidpiCanvas(o.width, o.height, 'chart scatter');
  const c = themeColors();
  const w = o.width - PAD.left - PAD.right - legendW;
  const h = o.height - PAD.top - PAD.bottom;
  const tx = (v: number) => (o.logX ? Math.log10(Math.max(v, 1e-30)) : v);
  const xs = o.points.map((p) => tx(p.x));
  const ys = o.points.map((p) => p.y).concat(o.refY !== undefined ? [o.refY] : []);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const padX = (x1 - x0 || 1) * 0.06;
  const padY = (y1 - y0 || Math.abs(y1) || 1) * 0.08;
  [x0, x1, y0, y1] = [x0 - padX, x1 + padX, y0 - padY, y1 + padY];
  const px = (v: number) => PAD.left + ((tx(v) - x0) / (x1 - x0)) * w;
  const py = (v: number) => PAD.top + h - ((v - y0) / (y1 - y0)) * h;
  const screen = o.points.map((p) => [px(p.x), py(p.y)] as const);
  if (g) {
    g.font = `11px ${c.font}`;
    g.lineWidth = 1;
    g.strokeStyle = c.grid;
    g.fillStyle = c.muted;
    // y grid
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const v = y0 + ((y1 - y0) * i) / 4;
      const y = Math.round(py(v)) + 0.5;
      g.beginPath();
      g.moveTo(PAD.left, y);
      g.lineTo(PAD.left + w, y);
      g.stroke();
      g.fillText((o.yFormat ?? shortNum)(v), PAD.left - 4, y);
    }
    // x ticks: 1-2-5 steps on a log axis, 5 even steps otherwise
    g.textAlign = 'center';
    g.textBaseline = 'top';
    const ticks: number[] = [];
    if (o.logX) {
      for (let e = Math.floor(x0); e <= Math.ceil(x1); e++) for (const m of [1, 2, 5]) if (Math.log10(m * 10 ** e) >= x0 && Math.log10(m * 10 ** e) <= x1) ticks.push(m * 10 ** e);
      // a narrow range (runs of one model, all near one size) has at most one 1-2-5 tick: label
      // the smallest and largest point instead, so that a size can be read
      if (ticks.length < 2) {
        const data = o.points.map((p) => p.x).filter((x) => x > 0);
        ticks.splice(0, ticks.length, ...new Set([Math.min(...data), Math.max(...data)]));
      }
    } else for (let i = 0; i <= 4; i++) ticks.push(x0 + ((x1 - x0) * i) / 4);
    for (const v of ticks) {
      const x = Math.round(px(v)) + 0.5;
      g.beginPath();
      g.moveTo(x, PAD.top);
      g.lineTo(x, PAD.top + h);
      g.stroke();
      g.fillText((o.xFormat ?? shortNum)(v), x, PAD.top + h + 4);
    }
    g.fillText(o.xCaption, PAD.left + w / 2, PAD.top + h + 20);
    g.save();
    g.translate(11, PAD.top + h / 2);
    g.rotate(-Math.PI / 2);
    g.fillText(o.yCaption, 0, -4);
    g.restore();
    if (o.refY !== undefined) {
      g.strokeStyle = c.muted;
      g.setLineDash([4, 3]);
      g.beginPath();
      g.moveTo(PAD.left, py(o.refY));
      g.lineTo(PAD.left + w, py(o.refY));
      g.stroke();
      g.setLineDash([]);
    }
    const colorOf = (p: ScatterPoint) => (typeof p.color === 'number' ? viridisCss(p.color) : p.color ?? c.muted);
    // series lines
    for (const s of new Set(o.points.map((p) => p.series).filter((x): x is number => x !== undefined))) {
      const idx = o.points.map((p, i) => [p, i] as const).filter(([p]) => p.series === s).sort((a, b) => a[0].x - b[0].x);
      g.strokeStyle = colorOf(idx[0][0]);
      g.globalAlpha = 0.6;
      g.beginPath();
      idx.forEach(([, i], k) => (k ? g.lineTo(screen[i][0], screen[i][1]) : g.moveTo(screen[i][0], screen[i][1])));
      g.stroke();
      g.globalAlpha = 1;
    }
    o.points.forEach((p, i) => drawPoint(g, screen[i][0], screen[i][1], p, colorOf(p), c.fg, c.bg));
    if (o.series?.length) {
      g.textAlign = 'left';
      g.textBaseline = 'middle';
      o.series.forEach((s, i) => {
        const y = PAD.top + 6 + i * 16;
        g.fillStyle = s.color;
        g.fillRect(PAD.left + w + 12, y - 4, 10, 8);
        g.fillStyle = c.fg;
        g.fillText(s.name.length > 22 ? `${s.name.slice(0, 21)}…` : s.name, PAD.left + w + 26, y);
      });
    } else if (o.colorLegend) {
      const lx = PAD.left + w + 24;
      for (let k = 0; k < h; k++) {
        g.fillStyle = viridisCss(1 - k / h);
        g.fillRect(lx, PAD.top + k, 12, 1.5);
      }
      g.fillStyle = c.muted;
      g.textAlign = 'left';
      g.textBaseline = 'top';
      g.fillText(o.colorLegend.hi, lx + 16, PAD.top);
      g.textBaseline = 'bottom';
      g.fillText(o.colorLegend.lo, lx + 16, PAD.top + h);
      g.save();
      g.translate(lx - 6, PAD.top + h / 2);
      g.rotate(-Math.PI / 2);
      g.textAlign = 'center';
      g.fillText(o.colorLegend.caption, 0, 0);
      g.restore();
    }
  }
  const hit = (x: number, y: number) => {
    let best: number | undefined;
    let bestD = 64; // 8 px
    screen.forEach(([sx, sy], i) => {
      const d = (sx - x) ** 2 + (sy - y) ** 2;
      if (d < bestD) [best, bestD] = [i, d];
    });
    return best;
  };
  return { canvas, hit };
}

function drawPoint(g: CanvasRenderingContext2D, x: number, y: number, p: ScatterPoint, fill: string, fg: string, bg: string): void {
  const r = 5;
  g.fillStyle = fill;
  g.strokeStyle = bg;
  g.lineWidth = 1;
  g.beginPath();
  if (p.shape === 'diamond') {
    g.moveTo(x, y - r - 1);
    g.lineTo(x + r + 1, y);
    g.lineTo(x, y + r + 1);
    g.lineTo(x - r - 1, y);
    g.closePath();
  } else if (p.shape === 'cross') {
    g.strokeStyle = fg;
    g.lineWidth = 2;
    g.moveTo(x - r, y - r);
    g.lineTo(x + r, y + r);
    g.moveTo(x + r, y - r);
    g.lineTo(x - r, y + r);
    g.stroke();
    return;
  } else g.arc(x, y, r, 0, Math.PI * 2);
  g.fill();
  g.stroke();
  if (p.ring) {
    g.strokeStyle = fg;
    g.lineWidth = 2;
    g.beginPath();
    g.arc(x, y, r + 4, 0, Math.PI * 2);
    g.stroke();
  }
}

/** Hover tip (a floating box near the pointer) and click for a scatter; returns the wrapper. */
export function interactiveScatter(view: ScatterView, tips: (i: number) => string, onClick?: (i: number) => void): HTMLElement {
  const wrap = document.createElement('div');
  wrap.className = 'scatter-wrap';
  const tip = document.createElement('div');
  tip.className = 'chart-tip';
  tip.hidden = true;
  const { canvas } = view;
  const at = (e: MouseEvent) => {
    const r = canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top] as const;
  };
  canvas.addEventListener('mousemove', (e) => {
    const [x, y] = at(e);
    const i = view.hit(x, y);
    canvas.classList.toggle('pointing', i !== undefined && onClick !== undefined);
    if (i === undefined) {
      tip.hidden = true;
      return;
    }
    tip.textContent = tips(i);
    tip.hidden = false;
    // beside the pointer, inside the chart: left of it in the right half, above it in the lower half
    tip.style.left = `${x > canvas.clientWidth / 2 ? Math.max(0, x - 14 - tip.offsetWidth) : x + 14}px`;
    tip.style.top = `${y > canvas.clientHeight / 2 ? Math.max(0, y - 10 - tip.offsetHeight) : y + 14}px`;
  });
  canvas.addEventListener('mouseleave', () => (tip.hidden = true));
  if (onClick) canvas.addEventListener('click', (e) => {
    const i = view.hit(...at(e));
    if (i !== undefined) onClick(i);
  });
  wrap.append(canvas, tip);
  return wrap;
}
