// The analysis of a whole model: every tensor is streamed once through the fused statistics
// loop (tensor-stats.ts) in row-aligned chunks of a few MB, so memory stays bounded by the chunk
// plus small per-tensor accumulators (row norms of embedding tables: 4 bytes per row). A second
// pass is made only where a figure needs a first one: per-column / per-tensor int8 error (the
// scales are the column maxima) of kernels that were not kept in memory.

import { NARROW_TABLE_COLS } from '../compress/quantize-math.js';
import { subgraphLookups } from '../compress/subgraph-lookups.js';
import { isFloatDtype } from '../model/dtype.js';
import { availableParallelism } from 'node:os';
import { ModelIR, ModelTensor } from '../model/ir.js';
import { forEachTensorChunk, tensorElementCount } from '../model/tensor-data.js';
import { forEachDequantizedChunk } from '../model/codes-data.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';
import type { LayerReport, ModelReport, QuantErrorReport, ReportRole, TensorReport } from '../../shared/report.js';
import { findOpportunities } from './opportunities.js';
import { StatsHelperThread } from './stats-helper-thread.js';
import { exactSpectrum, gramSamplingStep, MAX_EXACT_GRAM_DIM, randomizedSpectrum, spectrumFromGram } from './spectrum.js';
import { compactHistogram, sparsityMeaning, summarizeRows, tilesReport } from './tensor-report.js';
import { errorFigures, finiteOrNull, Int8ColumnErrorAccumulator, MAX_TILE_CELLS, TensorStatsAccumulator, wasmKernelUsable } from './tensor-stats.js';

/**
 * |w| <= 1e-6 is "near zero" by default: float32 weights of trained recommenders are ~1e-3..1,
 * so 1e-6 is below anything that changes an output at float32 precision, yet above the
 * denormal dust that optimizers (weight decay) leave where a weight "died".
 */
export const DEFAULT_EPSILON = 1e-6;
/** elements per chunk: 4 MB of float32, small enough for the cache-friendly fused loop */
export const CHUNK_ELEMENTS = 1 << 20;
/** tensors up to this many elements are kept in memory for second-pass figures and spectra */
export const KEEP_IN_MEMORY_ELEMENTS = 1 << 22;
/** tensors from this size get a second thread for their statistics (below it, start-up and JIT warm-up of the thread cost more) */
export const PARALLEL_MIN_ELEMENTS = 1 << 22;
/**
 * pieces of rows (a heatmap cell-row at most) shorter than this are not split with the helper
 * thread: the hand-off (a futex wake and wait) costs more than half of a small piece's kernel
 */
export const MIN_SPLIT_ELEMENTS = 1 << 16;
/** rows longer than this are not kept whole in a chunk (see analyzeTensor) */
export const MAX_ROW_ELEMENTS = 1 << 24;
/**
 * Tables with per-row int8 beyond this many elements get their round-trip errors (float16,
 * int8) from an evenly spaced sample of at least ERROR_SAMPLE_ROWS rows: measured exactly they
 * cost more than every other figure together, and a sample that size pins an RMS error to well
 * under 1% (its max is the sample's max). Every other figure stays exact.
 */
export const ERROR_SAMPLE_MIN_ELEMENTS = 1 << 24;
export const ERROR_SAMPLE_ROWS = 1 << 18;
/** randomized SVD of matrices up to this many elements (its cost is ~450 flops per element) */
export const MAX_RANDOMIZED_SVD_ELEMENTS = 1 << 21;

export interface AnalyzeOptions {
  epsilon?: number;
  signal?: AbortSignal;
  onProgress?: (p: { fraction: number; tensor: string }) => void;
  /** compute singular-value spectra (default true) */
  spectrum?: boolean;
  /** heatmap cells per side (default 256; 0 = no tiles) */
  maxTiles?: number;
  /**
   * threads for the statistics of big tensors: 1 or 2; the helper thread runs the same kernel
   * (WebAssembly or JS) on half of each piece. Default: 2 where the machine has 2+ cores, but
   * tensors that run the WebAssembly kernel use the helper only with 3+ cores: on 2 the other
   * core is busy reading the file, and the hand-off (a copy of half of each piece, a wait)
   * cost more CPU than it saved (measured on the [2M, 64] table: 1.02 s of CPU and 0.99 s of
   * wall time for one thread, 1.18 s and 1.07 s for two, best of 5)
   */
  threads?: number;
  /** 'auto' (default): the WebAssembly kernel where it can run; 'js': the JS loop only */
  kernel?: 'auto' | 'js';
}


/** The [rows, cols] matrix a tensor is seen as: [shape[0], rest]; TF.js conv kernels [.., out] by output channel. */
export function matrixView(t: Pick<ModelTensor, 'shape' | 'role'>, format: string, count: number): { rows: number; cols: number } {
  if (t.shape.length === 0 || count === 0) return { rows: count === 0 ? 0 : 1, cols: 1 };
  if (t.shape.length === 1) return { rows: t.shape[0], cols: 1 };
  if (t.role === 'conv-kernel' && format.startsWith('tfjs')) {
    const out = t.shape[t.shape.length - 1];
    return { rows: out > 0 ? count / out : 0, cols: out };
  }
  return { rows: t.shape[0], cols: count / t.shape[0] };
}

type Int8Granularity = QuantErrorReport['int8']['granularity'];

function int8Plan(t: ModelTensor, format: string): { granularity: Int8Granularity; mode: 'row' | 'column' | 'tensor' } {
  // a TF.js manifest holds 8-bit weights as uint8 with one scale and min per tensor: that is what quantize writes there
  if (format.startsWith('tfjs')) return { granularity: 'per-tensor', mode: 'tensor' };
  // as quantize stores them: a table narrower than NARROW_TABLE_COLS (an FM's 1-wide linear term)
  // gets one scale for the whole table, a scale per row would cost more than it saves
  if (t.role === 'embedding') return (t.shape[1] ?? 0) < NARROW_TABLE_COLS ? { granularity: 'per-tensor', mode: 'tensor' } : { granularity: 'per-row', mode: 'row' };
  if (t.role === 'dense-kernel') return t.transposed ? { granularity: 'per-output-channel', mode: 'row' } : { granularity: 'per-output-channel', mode: 'column' };
  if (t.role === 'conv-kernel') return format.startsWith('tfjs') ? { granularity: 'per-output-channel', mode: 'column' } : { granularity: 'per-output-channel', mode: 'row' };
  return { granularity: 'per-tensor', mode: 'tensor' };
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw signal.reason instanceof Error ? signal.reason : Object.assign(new Error('analysis cancelled'), { name: 'AbortError' });
  }
}

interface TensorContext {
  format: string;
  epsilon: number;
  spectrum: boolean;
  maxTiles: number;
  signal?: AbortSignal;
  /** called after each chunk with the elements just done */
  onElements?: (n: number) => void;
  /** gives the helper thread for a big tensor (created on first use by analyzeModel) */
  helper?: () => StatsHelperThread;
  /** whether tensors that run the WebAssembly kernel use the helper too */
  helperWithWasm?: boolean;
  kernel?: 'auto' | 'js';
  /** the model's tensors by name: the scales and zero points of a tensor stored as codes */
  tensorNamed?: (name: string) => ModelTensor | undefined;
}

/** reads in flight while the statistics run on a chunk (see ChunkOptions.inFlight) */
export const READS_IN_FLIGHT = 2;

/**
 * forEachTensorChunk, with the next chunks read while `fn` runs on this one when `overlap`: the
 * file reads (thread-pool jobs) then run beside the statistics instead of before them. Costs
 * READS_IN_FLIGHT more chunk-sized buffers; worth it for tensors read from disk in several chunks.
 */
async function forEachChunkOverlapped(
  t: ModelTensor,
  chunkElements: number,
  overlap: boolean,
  signal: AbortSignal | undefined,
  fn: (chunk: Float32Array, first: number) => void,
  buffers?: Float32Array[],
): Promise<void> {
  await forEachTensorChunk(
    t,
    chunkElements,
    overlap
      ? async (chunk, first) => {
          throwIfAborted(signal);
          fn(chunk, first);
          // a turn of the event loop per chunk (a cancel message, progress, I/O get in), even
          // when the next read is already done and awaiting it would not yield
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      : (chunk, first) => {
          throwIfAborted(signal);
          fn(chunk, first);
        },
    { readAhead: overlap, inFlight: READS_IN_FLIGHT, buffers },
  );
}

/** Full report of one tensor (one fused streaming pass; a second one only where needed). */
export async function analyzeTensor(stored: ModelTensor, ctx: TensorContext): Promise<TensorReport> {
  // a tensor stored as codes is reported as the float tensor the graph computes with
  const codes = stored.codes;
  const t: ModelTensor = codes ? { ...stored, shape: codes.shape.slice(), dtype: 'float32' } : stored;
  const count = tensorElementCount(t.shape);
  const role = t.role as ReportRole;
  const storedDtype = codes && codes.bits !== 8 ? `int${codes.bits}` : t.storage.quantization?.dtype ?? t.storage.dtype;
  const base = {
    name: t.name,
    shape: t.shape.slice(),
    dtype: t.dtype,
    storedDtype,
    ...(codes ? { storedAs: { bits: codes.bits, granularity: codes.granularity } } : {}),
    params: count,
    role,
    layer: t.layer,
    trainable: t.trainable,
    bytes: t.storage.byteLength,
    sparsityMeaning: sparsityMeaning(role, t.transposed),
    ...(t.transposed !== undefined ? { transposed: t.transposed } : {}),
  };
  if (t.dtype === 'string' || storedDtype === 'string' || count === 0) {
    ctx.onElements?.(count);
    return {
      ...base,
      zeros: 0,
      nearZeros: 0,
      nonFinite: 0,
      min: null,
      max: null,
      mean: null,
      std: null,
      absMean: null,
      histogram: { edges: [], counts: [], zeroCount: 0 },
    };
  }

  const view = matrixView(t, ctx.format, count);
  // a chunk holds whole rows: a row beyond MAX_ROW_ELEMENTS (e.g. a [1, 300M] tensor) would make
  // the chunk the whole tensor, so such a tensor is scanned as a flat vector instead
  const flatten = view.cols > MAX_ROW_ELEMENTS;
  const rows = flatten ? count : view.rows;
  const cols = flatten ? 1 : view.cols;
  const isFloat = isFloatDtype(t.dtype);
  const isMatrix = !flatten && t.shape.length >= 2 && rows >= 2 && cols >= 2;
  const plan: ReturnType<typeof int8Plan> = flatten ? { granularity: 'per-tensor', mode: 'tensor' } : int8Plan(t, ctx.format);
  // already quantized: another int8 rounding of its values is no opportunity
  const wantQuant = isFloat && !codes && t.role !== 'constant' && t.role !== 'quant-param';
  const wantSpectrum = ctx.spectrum && isFloat && isMatrix && (t.role === 'embedding' || t.role === 'dense-kernel' || t.role === 'weight');
  const streamingGram = wantSpectrum && cols <= MAX_EXACT_GRAM_DIM && rows >= cols;
  const keep = count <= KEEP_IN_MEMORY_ELEMENTS && (wantSpectrum || (wantQuant && plan.mode !== 'row'));
  const gramEvery = streamingGram ? gramSamplingStep(rows, cols) : 0;

  const chunkElements = Math.max(cols, Math.floor(CHUNK_ELEMENTS / cols) * cols);
  const kernel = ctx.kernel ?? 'auto';
  const wasm = kernel !== 'js' && wasmKernelUsable(cols);
  const parallel = ctx.helper !== undefined && count >= PARALLEL_MIN_ELEMENTS && chunkElements <= CHUNK_ELEMENTS && (!wasm || ctx.helperWithWasm === true);
  const errorRowEvery = wantQuant && plan.mode === 'row' && count > ERROR_SAMPLE_MIN_ELEMENTS ? Math.max(1, Math.floor(rows / ERROR_SAMPLE_ROWS)) : 1;
  const acc = new TensorStatsAccumulator({
    rowLength: cols,
    rows,
    epsilon: ctx.epsilon,
    // a table stored [dim, ids] (ONNX Gather on axis 1): its rows are coordinates, not ids
    keepRowNorms: t.role === 'embedding' && isMatrix && !t.transposed,
    int8PerRow: wantQuant && plan.mode === 'row',
    maxTileCells: t.shape.length >= 2 && !flatten ? ctx.maxTiles : 0,
    gramEvery,
    columnAbsMax: (wantQuant && plan.mode === 'column') || (t.role === 'dense-kernel' && !t.transposed),
    helper: parallel ? ctx.helper!() : undefined,
    minSplitRows: Math.max(256, Math.ceil(MIN_SPLIT_ELEMENTS / cols)),
    maxChunkElements: chunkElements,
    errorRowEvery,
    kernel,
  });
  const kept = keep ? new Float32Array(count) : undefined;
  const onDisk = t.storage.source.kind === 'file' || t.storage.source.kind === 'file-parts';
  const overlap = onDisk && count > chunkElements;
  const take = (chunk: Float32Array, first: number) => {
    acc.add(chunk, first);
    if (kept) kept.set(chunk, first);
    ctx.onElements?.(chunk.length);
  };
  if (codes) {
    await forEachDequantizedChunk(stored, ctx.tensorNamed ?? (() => undefined), chunkElements, (chunk, first) => {
      throwIfAborted(ctx.signal);
      take(chunk, first);
    });
  } else {
    // read straight into the WebAssembly kernel's memory (no copy of each chunk into it)
    const buffers = onDisk && chunkElements <= CHUNK_ELEMENTS ? acc.chunkBuffers(overlap ? READS_IN_FLIGHT + 1 : 1, chunkElements) : undefined;
    await forEachChunkOverlapped(t, chunkElements, overlap, ctx.signal, take, buffers);
  }
  const s = acc.finish();

  const report: TensorReport = {
    ...base,
    zeros: s.zeros,
    nearZeros: s.nearZeros,
    nonFinite: s.nonFinite,
    min: finiteOrNull(s.min),
    max: finiteOrNull(s.max),
    mean: finiteOrNull(s.mean),
    std: finiteOrNull(s.std),
    absMean: finiteOrNull(s.absMean),
    histogram: compactHistogram(s),
  };
  if (s.rowNorms) report.rows = summarizeRows(s.rowNorms, cols, ctx.epsilon, s.zeroRows);
  if (t.role === 'dense-kernel' && isMatrix) {
    if (t.transposed) report.deadNeurons = s.zeroRows;
    else if (s.columnAbsMax) report.deadNeurons = s.columnAbsMax.reduce((n, m) => (m === 0 ? n + 1 : n), 0);
  }
  if (s.tiles) report.tiles = tilesReport(s.tiles);

  if (wantQuant) {
    let int8: { maxAbs: number; sumSq: number };
    if (plan.mode === 'row') int8 = s.int8PerRow ?? { maxAbs: 0, sumSq: 0 };
    else {
      const colMax = plan.mode === 'column' && s.columnAbsMax ? s.columnAbsMax : [Number.isFinite(s.absMax) ? s.absMax : 0];
      const q = new Int8ColumnErrorAccumulator(colMax);
      if (kept) q.add(kept, 0);
      else {
        await forEachTensorChunk(t, chunkElements, (chunk, first) => {
          throwIfAborted(ctx.signal);
          q.add(chunk, first);
        });
      }
      int8 = q.result();
    }
    // on a row sample (huge tables), the error sums cover the sample's values only
    const sample = s.errorSample;
    const n = sample ? sample.finite : s.finite;
    const sq = sample ? sample.sumSquares : s.sumSquares;
    const f16 = errorFigures(s.float16.maxAbs, s.float16.sumSq, n, sq);
    const over = s.float16.overflow;
    report.quantError = {
      int8: { ...errorFigures(int8.maxAbs, int8.sumSq, n, sq), granularity: plan.granularity },
      float16: over > 0 ? { maxAbs: null, rmse: null, relRmse: null, overflow: over } : { ...f16, overflow: 0 },
      ...(sample ? { sampledRows: sample.rows } : {}),
    };
  }

  if (wantSpectrum) {
    if (s.gram) {
      const exact = gramEvery === 1;
      report.spectrum = spectrumFromGram(s.gram.matrix, cols, s.gram.rowsUsed > 0 ? rows / s.gram.rowsUsed : 1, Math.min(rows, cols), exact, exact ? 'gram-jacobi' : 'row-sampled-gram');
    } else if (kept) {
      report.spectrum =
        Math.min(rows, cols) <= MAX_EXACT_GRAM_DIM
          ? exactSpectrum(kept, rows, cols)
          : count <= MAX_RANDOMIZED_SVD_ELEMENTS
            ? randomizedSpectrum(kept, rows, cols, s.sumSquares)
            : undefined;
      if (!report.spectrum) delete report.spectrum;
    }
  }
  return report;
}

export async function analyzeModel(ir: ModelIR, opts: AnalyzeOptions = {}): Promise<ModelReport> {
  const epsilon = checkEpsilon(opts.epsilon);
  const tensors = await analyzeTensors(ir, ir.tensors.map((_, i) => i), opts);
  return assembleReport(ir, tensors, epsilon);
}

function checkEpsilon(e: number | undefined): number {
  const epsilon = e ?? DEFAULT_EPSILON;
  if (!(epsilon >= 0) || !Number.isFinite(epsilon)) throw new RangeError(`epsilon ${epsilon} must be a finite number >= 0`);
  return epsilon;
}

/**
 * The reports of the tensors at `indices` (IR order), one after the other: a whole model's, or
 * one shard's (analysis/shards.ts). Progress counts the elements of these tensors only.
 */
export async function analyzeTensors(ir: ModelIR, indices: readonly number[], opts: AnalyzeOptions = {}): Promise<TensorReport[]> {
  const epsilon = checkEpsilon(opts.epsilon);
  const total = indices.reduce((a, i) => a + tensorElementCount(ir.tensors[i].codes?.shape ?? ir.tensors[i].shape), 0);
  const byName = new Map(ir.tensors.map((t) => [t.name, t]));
  let done = 0;
  const tensors: TensorReport[] = [];
  let lastReport = 0;
  const cores = availableParallelism();
  const threads = opts.threads ?? (cores >= 2 ? 2 : 1);
  const helperWithWasm = opts.threads !== undefined ? opts.threads >= 2 : cores >= 3;
  let helper: StatsHelperThread | undefined;
  try {
    for (const i of indices) {
      const t = ir.tensors[i];
      throwIfAborted(opts.signal);
      const r = await analyzeTensor(t, {
        format: ir.format,
        epsilon,
        spectrum: opts.spectrum ?? true,
        maxTiles: opts.maxTiles ?? MAX_TILE_CELLS,
        signal: opts.signal,
        helper: threads >= 2 ? () => (helper ??= new StatsHelperThread()) : undefined,
        helperWithWasm,
        kernel: opts.kernel,
        tensorNamed: (name) => byName.get(name),
        onElements: (n) => {
          done += n;
          // at most ~200 progress events: a callback per 4 MB chunk would flood a UI channel
          if (opts.onProgress && (done - lastReport >= total / 200 || done === total)) {
            lastReport = done;
            opts.onProgress({ fraction: total > 0 ? done / total : 1, tensor: t.name });
          }
        },
      });
      tensors.push(r);
    }
  } finally {
    await helper?.close();
  }
  opts.onProgress?.({ fraction: 1, tensor: '' });
  return tensors;
}

/** The model report from every tensor's report (IR order): totals, layers, opportunities. */
export function assembleReport(ir: ModelIR, tensors: TensorReport[], epsilon: number): ModelReport {
  let trainableParams = 0;
  let constantParams = 0;
  let totalZeros = 0;
  let trainableZeros = 0;
  for (const r of tensors) {
    totalZeros += r.zeros;
    if (r.trainable) {
      trainableParams += r.params;
      trainableZeros += r.zeros;
    } else constantParams += r.params;
  }
  const layers = buildLayers(ir, tensors, trainableParams);
  const partial = { tensors, trainableParams, format: ir.format };
  return {
    format: ir.format,
    path: ir.path,
    fileBytes: ir.files.reduce((a, f) => a + f.bytes, 0),
    totalParams: trainableParams + constantParams,
    totalZeros,
    trainableZeros,
    trainableParams,
    constantParams,
    tensors,
    layers,
    opportunities: findOpportunities(partial, { names: ir.metadata.local_functions, readInside: readInsideFunctions(ir) }, tablesInSubgraphs(ir)),
    epsilon,
    generatedAt: new Date().toISOString(),
    tool: { name: TOOL_NAME, version: TOOL_VERSION },
  };
}

/** Layers in IR order (then any layer only named by a tensor), totals of their tensors. */
function buildLayers(ir: ModelIR, tensors: TensorReport[], trainableTotal: number): LayerReport[] {
  const byLayer = new Map<string, TensorReport[]>();
  for (const r of tensors) {
    const list = byLayer.get(r.layer);
    if (list) list.push(r);
    else byLayer.set(r.layer, [r]);
  }
  const kinds = new Map(ir.layers.map((l) => [l.name, l.kind]));
  const order = [...ir.layers.map((l) => l.name), ...byLayer.keys()];
  const seen = new Set<string>();
  const out: LayerReport[] = [];
  for (const name of order) {
    if (seen.has(name)) continue;
    seen.add(name);
    const ts = byLayer.get(name) ?? [];
    let params = 0;
    let trainable = 0;
    let zeros = 0;
    for (const r of ts) {
      params += r.params;
      if (r.trainable) {
        trainable += r.params;
        zeros += r.zeros;
      }
    }
    out.push({
      name,
      kind: kinds.get(name) ?? 'unknown',
      params,
      trainableParams: trainable,
      share: trainableTotal > 0 ? trainable / trainableTotal : 0,
      zeros,
      sparsity: trainable > 0 ? zeros / trainable : null,
      tensors: ts.map((r) => r.name),
    });
  }
  return out;
}

/** Tensors a call of one of the model's local functions reads (ONNX export_modules_as_functions). */
/** Tables read inside subgraphs: those only quantization rewrites, and those nothing does. */
function tablesInSubgraphs(ir: ModelIR): { quantizeOnly: Set<string>; untouched: Set<string> } {
  const lookups = subgraphLookups(ir);
  const quantizeOnly = new Set<string>();
  const untouched = new Set<string>();
  for (const name of lookups.reads.keys()) (lookups.refusal(name) === undefined ? quantizeOnly : untouched).add(name);
  return { quantizeOnly, untouched };
}

function readInsideFunctions(ir: ModelIR): Set<string> {
  const fns = new Set((ir.metadata.local_functions ?? '').split(', ').filter(Boolean));
  return new Set(fns.size ? ir.tensors.filter((t) => t.consumers.some((c) => fns.has(c))).map((t) => t.name) : []);
}
