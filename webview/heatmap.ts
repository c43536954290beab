// The per-tensor importance heatmap: the engine's downsampled tiles (at most 256 x 256 cells)
// drawn with viridis, with zoom (wheel, buttons) and pan (drag), and the values of the cell under
// the pointer. Zooming only magnifies the cells the engine sent: no tensor data travels.

import { hiDpiCanvas } from './canvas.js';
import type { HeatmapTiles } from '../src/shared/report.js';
import { viridis } from './colormap.js';
import { cellSpan } from '../src/shared/format.js';

export interface HeatmapView {
  element: HTMLElement;
  /** the visible part at the canvas' resolution, for PNG export */
  canvas: HTMLCanvasElement;
  /** the whole map, one pixel per cell scaled up to at least 512 px, for PNG export */
  fullImage(): HTMLCanvasElement;
}

/** `dims`: the matrix' rows and columns, when known (the last cells are cut to them). */
export function zoomableHeatmap(tiles: HeatmapTiles, scale: 'linear' | 'log', describe: (row: number, col: number, text: string) => void, dims?: readonly [number, number]): HeatmapView {
  const src = document.createElement('canvas');
  src.width = tiles.cols;
  src.height = tiles.rows;
  const sg = src.getContext('2d');
  const values = tiles.meanAbs;
  const max = Math.max(1e-30, ...values);
  const positive = values.filter((v) => v > 0);
  const min = positive.length ? Math.min(...positive) : max;
  const norm = (v: number) => {
    if (scale === 'linear') return v / max;
    if (v <= 0) return 0;
    return max > min ? (Math.log(v) - Math.log(min)) / (Math.log(max) - Math.log(min)) : 1;
  };
  if (sg) {
    const img = sg.createImageData(tiles.cols, tiles.rows);
    values.forEach((v, i) => {
      const [r, g, b] = viridis(norm(v));
      img.data.set([r, g, b, 255], i * 4);
    });
    sg.putImageData(img, 0, 0);
  }
  // display size: keep the matrix' aspect ratio inside 512 x 512 CSS pixels
  const aspect = tiles.cols / tiles.rows;
  // very thin matrices (a [10000 x 16] table) are stretched to stay readable: cells need not be square
  const cssW = Math.round(aspect >= 1 ? 512 : Math.max(256, 512 * aspect));
  const cssH = Math.round(aspect >= 1 ? Math.max(128, 512 / aspect) : 512);
  const { canvas } = hiDpiCanvas('tiles', cssW, cssH, `importance heatmap, ${tiles.rows} by ${tiles.cols} cells; mouse wheel or +/- to zoom, drag to pan`);
  const g = canvas.getContext('2d');

  // view: the source rectangle shown, in cell units
  let zoom = 1;
  let cx = tiles.cols / 2;
  let cy = tiles.rows / 2;
  const viewW = () => tiles.cols / zoom;
  const viewH = () => tiles.rows / zoom;
  const clamp = () => {
    cx = Math.min(tiles.cols - viewW() / 2, Math.max(viewW() / 2, cx));
    cy = Math.min(tiles.rows - viewH() / 2, Math.max(viewH() / 2, cy));
  };
  const zoomLabel = document.createElement('span');
  zoomLabel.className = 'muted zoom-label';
  const draw = () => {
    clamp();
    if (!g) return;
    g.imageSmoothingEnabled = false;
    g.clearRect(0, 0, canvas.width, canvas.height);
    g.drawImage(src, cx - viewW() / 2, cy - viewH() / 2, viewW(), viewH(), 0, 0, canvas.width, canvas.height);
    zoomLabel.textContent = `${zoom.toFixed(zoom < 10 ? 1 : 0)}×`;
  };
  const cellAt = (e: MouseEvent): [number, number] => {
    const rect = canvas.getBoundingClientRect();
    const fx = (e.clientX - rect.left) / rect.width;
    const fy = (e.clientY - rect.top) / rect.height;
    const col = Math.min(tiles.cols - 1, Math.max(0, Math.floor(cx - viewW() / 2 + fx * viewW())));
    const row = Math.min(tiles.rows - 1, Math.max(0, Math.floor(cy - viewH() / 2 + fy * viewH())));
    return [row, col];
  };
  const setZoom = (z: number, anchor?: [number, number]) => {
    const nz = Math.min(64, Math.max(1, z));
    if (anchor) {
      // keep the cell under the pointer where it is
      const [ar, ac] = anchor;
      const fx = (ac + 0.5 - (cx - viewW() / 2)) / viewW();
      const fy = (ar + 0.5 - (cy - viewH() / 2)) / viewH();
      zoom = nz;
      cx = ac + 0.5 - fx * viewW() + viewW() / 2;
      cy = ar + 0.5 - fy * viewH() + viewH() / 2;
    } else zoom = nz;
    draw();
  };
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    setZoom(zoom * (e.deltaY < 0 ? 1.25 : 0.8), cellAt(e));
  }, { passive: false });
  let drag: { x: number; y: number; cx: number; cy: number } | undefined;
  canvas.addEventListener('mousedown', (e) => {
    drag = { x: e.clientX, y: e.clientY, cx, cy };
    canvas.classList.add('dragging');
  });
  window.addEventListener('mouseup', () => {
    drag = undefined;
    canvas.classList.remove('dragging');
  });
  canvas.addEventListener('mousemove', (e) => {
    if (drag) {
      const rect = canvas.getBoundingClientRect();
      cx = drag.cx - ((e.clientX - drag.x) / rect.width) * viewW();
      cy = drag.cy - ((e.clientY - drag.y) / rect.height) * viewH();
      draw();
    }
    const [row, col] = cellAt(e);
    const i = row * tiles.cols + col;
    const r0 = row * tiles.cellRows;
    const c0 = col * tiles.cellCols;
    describe(row, col, `${cellSpan('row', r0, tiles.cellRows, dims?.[0])}, ${cellSpan('col', c0, tiles.cellCols, dims?.[1])}: mean |w| ${fmt(tiles.meanAbs[i])}, exact zeros ${(tiles.zeroFrac[i] * 100).toFixed(1)}%`);
  });
  canvas.addEventListener('keydown', (e) => {
    if (e.key === '+' || e.key === '=') setZoom(zoom * 1.5);
    else if (e.key === '-') setZoom(zoom / 1.5);
    else if (e.key === '0') setZoom(1);
    else if (e.key.startsWith('Arrow')) {
      const step = 0.1;
      if (e.key === 'ArrowLeft') cx -= viewW() * step;
      if (e.key === 'ArrowRight') cx += viewW() * step;
      if (e.key === 'ArrowUp') cy -= viewH() * step;
      if (e.key === 'ArrowDown') cy += viewH() * step;
      draw();
    } else return;
    e.preventDefault();
  });
  draw();

  const button = (label: string, title: string, f: () => void) => {
    const b = document.createElement('vscode-button');
    b.setAttribute('secondary', '');
    b.textContent = label;
    b.title = title;
    b.addEventListener('click', f);
    return b;
  };
  const tools = document.createElement('div');
  tools.className = 'zoom-tools';
  tools.append(
    button('−', 'Zoom out (-)', () => setZoom(zoom / 1.5)),
    button('+', 'Zoom in (+)', () => setZoom(zoom * 1.5)),
    button('Reset', 'Whole matrix (0)', () => {
      zoom = 1;
      cx = tiles.cols / 2;
      cy = tiles.rows / 2;
      draw();
    }),
    zoomLabel,
  );
  const element = document.createElement('div');
  element.className = 'heatmap';
  element.append(tools, canvas);
  return {
    element,
    canvas,
    fullImage: () => {
      const k = Math.max(1, Math.ceil(512 / Math.max(tiles.cols, tiles.rows)));
      const out = document.createElement('canvas');
      out.width = tiles.cols * k;
      out.height = tiles.rows * k;
      const og = out.getContext('2d');
      if (og) {
        og.imageSmoothingEnabled = false;
        og.drawImage(src, 0, 0, out.width, out.height);
      }
      return out;
    },
  };
}

function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(2) : x.toPrecision(4);
}
