// Benchmark of the analysis engine. Prints ratios against baselines measured in the same run:
//  1. per-tensor statistics of a 256 MB float32 embedding table [1M, 64]: our fused pass
//     (analyzeTensor + a 50% magnitude threshold) vs a naive version computing the same figures
//     (a pass per figure, Math.log histogram, copy + sort for quantiles and threshold);
//  2. 50% magnitude threshold of 64M values: radix selection vs Float32Array sort (and equality);
//  3. with a scale model: read-only time vs read + analyze time (WebAssembly kernel and JS loop,
//     each with 2 and 1 threads), CPU ns per element, and peak RSS vs file size. The load average
//     is printed with it: on a shared machine the wall-clock ratio moves with the load, the CPU
//     time much less.
// The scale model runs first, so that peak RSS is not the earlier sections' arrays.

import { open, stat } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { analyzeModel, analyzeTensor } from '../../src/core/analysis/analyze-model.js';
import { magnitudeThreshold } from '../../src/core/analysis/magnitude-select.js';
import { StatsHelperThread } from '../../src/core/analysis/stats-helper-thread.js';
import { ModelTensor } from '../../src/core/model/ir.js';
import { readModel } from '../../src/core/model/read-model.js';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../src/core/model/tensor-data.js';

const MB = 1024 * 1024;

function now(): number {
  return performance.now();
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r, i) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ') + (i === 0 ? '\n' + widths.map((w) => '-'.repeat(w)).join('  ') : '')).join('\n');
}

function syntheticTable(rows: number, dim: number): Float32Array {
  const v = new Float32Array(rows * dim);
  let s = 12345;
  for (let r = 0; r < rows; r++) {
    s = (s * 1103515245 + 12345) >>> 0;
    if (s % 10 < 3) continue; // 30% zero rows
    const scale = s % 10 < 6 ? 1e-3 : 0.05; // a long tail of weak rows
    for (let c = 0; c < dim; c++) {
      s = (s * 1103515245 + 12345) >>> 0;
      v[r * dim + c] = (s / 2 ** 32 - 0.5) * scale;
    }
  }
  return v;
}

function tensorOver(values: Float32Array, rows: number, dim: number): ModelTensor {
  return {
    name: 'bench/table',
    shape: [rows, dim],
    dtype: 'float32',
    storage: { dtype: 'float32', byteLength: values.byteLength, source: { kind: 'bytes', bytes: new Uint8Array(values.buffer) }, location: 'bench' },
    role: 'embedding',
    layer: 'bench',
    trainable: true,
    consumers: ['Gather'],
    origin: 'bench',
  };
}

/** The same figures as the fused pass, computed the obvious way: one pass per figure. */
function naiveStatistics(v: Float32Array, rows: number, dim: number, eps: number): { threshold: number; sortMs: number } {
  let zeros = 0;
  let near = 0;
  for (let i = 0; i < v.length; i++) if (v[i] === 0) zeros++;
  for (let i = 0; i < v.length; i++) if (Math.abs(v[i]) <= eps) near++;
  let mn = Infinity;
  let mx = -Infinity;
  for (let i = 0; i < v.length; i++) {
    if (v[i] < mn) mn = v[i];
    if (v[i] > mx) mx = v[i];
  }
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i];
  const mean = sum / v.length;
  let m2 = 0;
  for (let i = 0; i < v.length; i++) m2 += (v[i] - mean) ** 2;
  let sAbs = 0;
  for (let i = 0; i < v.length; i++) sAbs += Math.abs(v[i]);
  const hist = new Float64Array(1024);
  for (let i = 0; i < v.length; i++) {
    const a = Math.abs(v[i]);
    if (a > 0) hist[Math.max(0, Math.min(1023, Math.floor(Math.log2(a) * 4) + 600))]++;
  }
  const norms = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < dim; c++) s += v[r * dim + c] ** 2;
    norms[r] = Math.sqrt(s);
  }
  const sortedNorms = norms.slice().sort();
  const quantiles = [0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1].map((q) => sortedNorms[Math.max(0, Math.ceil(q * rows) - 1)]);
  const cellRows = Math.ceil(rows / 256);
  const tiles = new Float64Array(Math.ceil(rows / cellRows) * dim);
  const tileZeros = new Float64Array(tiles.length);
  for (let i = 0; i < v.length; i++) {
    const cell = Math.floor(Math.floor(i / dim) / cellRows) * dim + (i % dim);
    tiles[cell] += Math.abs(v[i]);
    if (v[i] === 0) tileZeros[cell]++;
  }
  let i8 = 0;
  for (let r = 0; r < rows; r++) {
    let am = 0;
    for (let c = 0; c < dim; c++) am = Math.max(am, Math.abs(v[r * dim + c]));
    if (am === 0) continue;
    for (let c = 0; c < dim; c++) {
      const x = v[r * dim + c];
      i8 += (x - Math.round((x / am) * 127) * (am / 127)) ** 2;
    }
  }
  let f16 = 0;
  for (let i = 0; i < v.length; i++) f16 += (v[i] - float16BitsToFloat32(float32ToFloat16Bits(v[i]))) ** 2;
  const t0 = now();
  const mags = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) mags[i] = Math.abs(v[i]);
  mags.sort();
  const k = Math.floor(0.5 * v.length);
  const threshold = k === 0 ? -Infinity : mags[k - 1];
  const sortMs = now() - t0;
  // keep every result alive so that nothing is optimized away
  if (!Number.isFinite(zeros + near + mn + mx + m2 + sAbs + hist[600] + quantiles[4] + tiles[0] + tileZeros[0] + i8 + f16)) process.stdout.write('');
  return { threshold, sortMs };
}

async function readOnly(paths: string[]): Promise<number> {
  const buf = new Uint8Array(4 * MB);
  let total = 0;
  for (const p of paths) {
    const fh = await open(p, 'r');
    try {
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.byteLength, null);
        if (bytesRead === 0) break;
        total += bytesRead;
      }
    } finally {
      await fh.close();
    }
  }
  return total;
}

async function scaleModelSection(path: string): Promise<string[][]> {
  gc();
  const rssBefore = process.memoryUsage().rss;
  const ir0 = await readModel(path);
  const files = ir0.files.map((f) => f.path);
  const elements = ir0.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const fileBytes = (await Promise.all(files.map((f) => stat(f)))).reduce((a, s) => a + s.size, 0);
  await readOnly(files); // warm the page cache: both timings then read from memory
  const rows: string[][] = [];
  const runs = [
    ['cold JIT', 2, 'auto'],
    ['warm JIT', 2, 'auto'],
    ['warm JIT, 1 thread', 1, 'auto'],
    ['warm JIT, JS loop, 2 threads', 2, 'js'],
    ['warm JIT, JS loop, 1 thread', 1, 'js'],
  ] as const;
  for (const [run, threads, kernel] of runs) {
    gc();
    // read-only measured next to each run: on a shared machine the load changes between runs
    let t0 = now();
    const c0 = process.cpuUsage();
    await readOnly(files);
    const readMs = now() - t0;
    const rc = process.cpuUsage(c0);
    t0 = now();
    const c1 = process.cpuUsage();
    const ir = await readModel(path);
    const report = await analyzeModel(ir, { threads, kernel });
    const ms = now() - t0;
    const ac = process.cpuUsage(c1);
    const peak = process.resourceUsage().maxRSS * 1024;
    const cpuNs = ((ac.user + ac.system) * 1000) / elements;
    rows.push([
      `scale model read + analyze (${run}; load ${loadavg()[0].toFixed(1)})`,
      `${(ms / 1000).toFixed(2)} s, ${(fileBytes / 1e9 / (ms / 1000)).toFixed(2)} GB/s, CPU ${((ac.user + ac.system) / 1e6).toFixed(2)} s = ${cpuNs.toFixed(1)} ns/element`,
      `${(readMs / 1000).toFixed(2)} s read only (page cache, 4 MB reads; CPU ${((rc.user + rc.system) / 1e6).toFixed(2)} s)`,
      `${(ms / readMs).toFixed(2)}x (target <= 2x)`,
    ]);
    if (run === 'cold JIT') {
      rows.push([
        'scale model peak RSS',
        `${(peak / MB).toFixed(0)} MB`,
        `${(fileBytes / MB).toFixed(0)} MB files`,
        `${(peak / fileBytes).toFixed(2)}x (target < 1.5x; ${(rssBefore / MB).toFixed(0)} MB before)`,
      ]);
      rows.push(['scale model top opportunity', report.opportunities[0]?.title ?? '-', '', '']);
    }
  }
  return rows;
}

export async function runAnalysisBench(opts: { scaleModelPath?: string; quick?: boolean }): Promise<void> {
  const out: string[][] = [['analysis', 'ours', 'baseline', 'ratio']];
  if (opts.scaleModelPath) out.push(...(await scaleModelSection(opts.scaleModelPath)));

  const dim = 64;
  const rows = opts.quick ? 1 << 18 : 1 << 20; // 64 MB / 256 MB
  const values = syntheticTable(rows, dim);
  const gb = values.byteLength / 1e9;
  const t = tensorOver(values, rows, dim);
  // two threads, as analyzeModel runs big tensors (PARALLEL_MIN_ELEMENTS)
  const helper = new StatsHelperThread();
  const ctx = { format: 'onnx', epsilon: 1e-6, spectrum: true, maxTiles: 256, helper: () => helper };
  let coldMs: number;
  let oursMs: number;
  let ourThreshold: number;
  try {
    // first call separately: the CLI is a one-shot process, its loops run cold
    let t1 = now();
    await analyzeTensor(t, ctx);
    magnitudeThreshold(values, 0.5);
    coldMs = now() - t1;
    t1 = now();
    await analyzeTensor(t, ctx);
    ourThreshold = magnitudeThreshold(values, 0.5);
    oursMs = now() - t1;
  } finally {
    await helper.close();
  }
  let t0 = now();
  const naive = naiveStatistics(values, rows, dim, 1e-6);
  const naiveMs = now() - t0;
  out.push([
    `statistics of a ${(values.byteLength / MB).toFixed(0)} MB table [${rows}, ${dim}] (2 threads)`,
    `${(gb / (oursMs / 1000)).toFixed(2)} GB/s (cold ${(gb / (coldMs / 1000)).toFixed(2)})`,
    `${(gb / (naiveMs / 1000)).toFixed(2)} GB/s naive`,
    `${(naiveMs / oursMs).toFixed(1)}x faster`,
  ]);

  // threshold: the naive run sorted a copy of |w| of the same size
  const n = values.length;
  const sel = [];
  for (let k = 0; k < 3; k++) {
    t0 = now();
    magnitudeThreshold(values, 0.5);
    sel.push(now() - t0);
  }
  const radixMs = Math.min(...sel);
  out.push([
    `50% threshold of ${(n / 1e6).toFixed(0)}M values`,
    `${radixMs.toFixed(0)} ms radix select`,
    `${naive.sortMs.toFixed(0)} ms sort`,
    `${(naive.sortMs / radixMs).toFixed(1)}x faster (target >= 5x), equal: ${Object.is(ourThreshold, naive.threshold)}`,
  ]);
  process.stdout.write('\n' + table(out) + '\n\n');
}
