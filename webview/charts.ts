// Small canvas charts for the panel (bar chart, line chart), drawn with the theme's colours so
// that they read in light, dark and high-contrast themes, and exportable as PNG.

export interface ThemeColors {
  fg: string;
  muted: string;
  grid: string;
  bar: string;
  barAlt: string;
  bg: string;
  font: string;
}

export function themeColors(): ThemeColors {
  const s = getComputedStyle(document.body);
  const v = (name: string, fallback: string) => s.getPropertyValue(name).trim() || fallback;
  return {
    fg: v('--vscode-foreground', '#cccccc'),
    muted: v('--vscode-descriptionForeground', '#999999'),
    grid: v('--vscode-widget-border', '#80808040') || '#80808040',
    bar: v('--vscode-charts-blue', '#3794ff'),
    barAlt: v('--vscode-charts-orange', '#d18616'),
    bg: v('--vscode-editor-background', '#1e1e1e'),
    font: v('--vscode-font-family', 'sans-serif'),
  };
}

/** A canvas sized in CSS pixels, drawn at the device's pixel ratio (sharp text on HiDPI). */
export function hidpiCanvas(width: number, height: number, className: string): { canvas: HTMLCanvasElement; g: CanvasRenderingContext2D | null } {
  const canvas = document.createElement('canvas');
  const ratio = Math.max(1, Math.min(3, window.devicePixelRatio || 1));
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.className = className;
  const g = canvas.getContext('2d');
  g?.scale(ratio, ratio);
  return { canvas, g };
}

export interface BarChartOptions {
  width: number;
  height: number;
  values: number[];
  /** tooltip text per bar */
  label: (i: number) => string;
  /** x axis labels: [first, last] or a function per tick index */
  xLabels?: [string, string];
  yLabel?: string;
  logY?: boolean;
  /** a vertical marker after this bar index, with a caption (e.g. "rank @95%") */
  marker?: { at: number; caption: string };
}

export function barChart(o: BarChartOptions): { canvas: HTMLCanvasElement; hover: (x: number) => string | undefined } {
  const { canvas, g } = hidpiCanvas(o.width, o.height, 'chart');
  const c = themeColors();
  const left = 46;
  const bottom = 22;
  const top = 8;
  const w = o.width - left - 8;
  const h = o.height - bottom - top;
  const vals = o.values.map((v) => (o.logY ? Math.log10(1 + Math.max(0, v)) : Math.max(0, v)));
  // counts get whole ticks: the axis runs to 4 steps of a whole step (76.8 is no count)
  const counts = !o.logY && o.values.every((v) => Number.isInteger(v));
  const top4 = Math.max(1e-30, ...vals);
  const max = counts ? 4 * Math.max(1, Math.ceil(top4 / 4)) : top4;
  const bw = o.values.length > 0 ? w / o.values.length : w;
  if (g) {
    g.font = `11px ${c.font}`;
    g.fillStyle = c.muted;
    g.strokeStyle = c.grid;
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = top + h - (h * i) / 4;
      g.beginPath();
      g.moveTo(left, Math.round(y) + 0.5);
      g.lineTo(left + w, Math.round(y) + 0.5);
      g.stroke();
      const raw = (max * i) / 4;
      const value = o.logY ? 10 ** raw - 1 : raw;
      g.textAlign = 'right';
      g.textBaseline = 'middle';
      g.fillText(shortNum(value), left - 4, y);
    }
    g.fillStyle = c.bar;
    vals.forEach((v, i) => {
      const bh = (v / max) * h;
      g.fillRect(left + i * bw + (bw > 3 ? 0.5 : 0), top + h - bh, Math.max(1, bw - (bw > 3 ? 1 : 0)), bh);
    });
    if (o.marker && o.marker.at >= 0 && o.marker.at < o.values.length) {
      const x = left + (o.marker.at + 1) * bw;
      // the foreground colour: chart palette oranges are too faint on light themes
      g.strokeStyle = c.fg;
      g.setLineDash([4, 3]);
      g.beginPath();
      g.moveTo(x, top);
      g.lineTo(x, top + h);
      g.stroke();
      g.setLineDash([]);
      g.fillStyle = c.fg;
      g.textAlign = x > left + w - 90 ? 'right' : 'left';
      g.textBaseline = 'top';
      g.fillText(o.marker.caption, x + (g.textAlign === 'left' ? 4 : -4), top + 2);
    }
    g.fillStyle = c.muted;
    g.textBaseline = 'top';
    if (o.xLabels) {
      g.textAlign = 'left';
      g.fillText(o.xLabels[0], left, top + h + 5);
      g.textAlign = 'right';
      g.fillText(o.xLabels[1], left + w, top + h + 5);
    }
    if (o.yLabel) {
      // along the y axis it names, left of its ticks
      g.save();
      g.translate(2, top + h / 2);
      g.rotate(-Math.PI / 2);
      g.textAlign = 'center';
      g.fillText(o.yLabel, 0, 0);
      g.restore();
    }
  }
  const hover = (x: number) => {
    const i = Math.floor((x - left) / bw);
    return i >= 0 && i < o.values.length ? o.label(i) : undefined;
  };
  return { canvas, hover };
}

export interface LineSeries {
  name: string;
  points: Array<{ x: number; y: number }>;
}

export function lineChart(series: LineSeries[], width: number, height: number, xCaption: string, yCaption: string): HTMLCanvasElement {
  const { canvas, g } = hidpiCanvas(width, height, 'chart');
  const c = themeColors();
  if (!g) return canvas;
  const left = 60;
  const bottom = 34;
  const top = 8;
  const right = 180;
  const w = width - left - right;
  const h = height - top - bottom;
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.map((p) => p.y));
  const x0 = Math.min(...xs, 0);
  const x1 = Math.max(...xs, 1e-9);
  const y0 = Math.min(...ys);
  const y1 = Math.max(...ys, y0 + 1e-9);
  const px = (x: number) => left + ((x - x0) / (x1 - x0)) * w;
  const py = (y: number) => top + h - ((y - y0) / (y1 - y0)) * h;
  g.font = `11px ${c.font}`;
  g.strokeStyle = c.grid;
  g.fillStyle = c.muted;
  for (let i = 0; i <= 4; i++) {
    const y = top + (h * i) / 4;
    g.beginPath();
    g.moveTo(left, y + 0.5);
    g.lineTo(left + w, y + 0.5);
    g.stroke();
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    g.fillText(shortNum(y1 - ((y1 - y0) * i) / 4), left - 4, y);
  }
  g.textAlign = 'center';
  g.textBaseline = 'top';
  g.fillText(xCaption, left + w / 2, top + h + 18);
  g.fillText(shortNum(x0), left, top + h + 4);
  g.fillText(shortNum(x1), left + w, top + h + 4);
  g.save();
  g.translate(10, top + h / 2);
  g.rotate(-Math.PI / 2);
  g.fillText(yCaption, 0, 0);
  g.restore();
  // a fixed categorical palette (Tableau 10): theme chart colours are too few and some too faint
  const palette = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#b07aa1', '#edc948', '#76b7b2', '#ff9da7', '#9c755f', '#bab0ac'];
  series.forEach((ser, i) => {
    const color = palette[i % palette.length];
    g.strokeStyle = color;
    g.fillStyle = color;
    g.lineWidth = 2;
    g.beginPath();
    ser.points.forEach((p, j) => (j === 0 ? g.moveTo(px(p.x), py(p.y)) : g.lineTo(px(p.x), py(p.y))));
    g.stroke();
    for (const p of ser.points) g.fillRect(px(p.x) - 2, py(p.y) - 2, 4, 4);
    g.textAlign = 'left';
    g.textBaseline = 'middle';
    g.fillRect(left + w + 10, top + 4 + i * 16, 10, 3);
    g.fillStyle = c.fg;
    g.fillText(ser.name.length > 24 ? `${ser.name.slice(0, 23)}…` : ser.name, left + w + 24, top + 6 + i * 16);
  });
  return canvas;
}

export function shortNum(x: number): string {
  const a = Math.abs(x);
  if (a === 0) return '0';
  if (a >= 1e6) return `${(x / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  if (a >= 1) return x.toFixed(a >= 100 ? 0 : 1);
  if (a >= 1e-3) return x.toPrecision(2);
  return x.toExponential(0);
}
