// The analysis report: the JSON contract of `prunescope analyze --json` and what the webview
// receives. TYPES ONLY (no runtime code), so that the webview can import it without pulling in
// the engine. Every number is JSON-safe: a value that would be NaN or ±Infinity is `null`.

/** Where a tensor's format came from, as in the model IR (kept as a string to stay dependency-free). */
export type ReportFormat = 'onnx' | 'tfjs-layers' | 'tfjs-graph' | 'tfjs-weights';

export type ReportRole =
  | 'embedding'
  | 'dense-kernel'
  | 'conv-kernel'
  | 'bias'
  | 'norm'
  | 'weight'
  | 'constant'
  | 'quant-param';

/**
 * Magnitude histogram of |w| over finite non-zero values. Bin i holds edges[i] <= |w| < edges[i+1].
 * Edges are float32 values whose mantissa keeps its top 2 bits: 4 bins per power of two
 * (1, 1.25, 1.5, 1.75, 2, ...), i.e. log-spaced octaves each split in 4 (within 6% of exact
 * log spacing), because the bin is read from the float's bits instead of computing a log.
 * Adjacent bins may be merged so that there are at most 64 bins; the edges stay exact.
 */
export interface MagnitudeHistogram {
  edges: number[];
  counts: number[];
  /** exact zeros (+0 and -0), not in any bin */
  zeroCount: number;
}

/** Row L2 norms of an embedding table (one row = one id). */
export interface RowSummary {
  rows: number;
  /** elements per row */
  dim: number;
  /** quantiles of the row L2 norms (p0 = smallest, p100 = largest) */
  normQuantiles: { p0: number; p1: number; p5: number; p25: number; p50: number; p75: number; p95: number; p99: number; p100: number };
  /** rows whose elements are all zero */
  zeroRows: number;
  /** rows whose L2 norm <= nearZeroRowNorm (includes zeroRows) */
  nearZeroRows: number;
  /** max(epsilon * sqrt(dim), 0.01 * p95 row norm): a row 100x weaker than the strong rows is "near zero" */
  nearZeroRowNorm: number;
  /** mean row norm per bucket of consecutive rows, at most 4096 buckets */
  rowHeat: number[];
  /** rows per rowHeat bucket (the last bucket may hold fewer) */
  rowsPerBucket: number;
}

/** A matrix (N-D flattened to [shape[0], rest]) downsampled to at most 256 x 256 cells. */
export interface HeatmapTiles {
  /** cells down */
  rows: number;
  /** cells across */
  cols: number;
  /** matrix rows per cell (the last cell row may hold fewer) */
  cellRows: number;
  /** matrix columns per cell (the last cell column may hold fewer) */
  cellCols: number;
  /** mean |w| per cell, row-major (rows * cols) */
  meanAbs: number[];
  /** fraction of exact zeros per cell, row-major */
  zeroFrac: number[];
}

export interface SpectrumReport {
  /** largest singular values first, at most 64 */
  singularValues: number[];
  /** smallest rank keeping 90/95/99% of the energy (sum of sigma^2); null when beyond the computed values */
  rankFor90: number | null;
  rankFor95: number | null;
  rankFor99: number | null;
  /** full rank considered: min(rows, cols) */
  fullRank: number;
  /** true when every singular value was computed from every row */
  exact: boolean;
  /** 'gram-jacobi' (exact), 'row-sampled-gram' (sketch of a tall table), 'randomized-svd' */
  method: string;
}

export interface QuantErrorFigures {
  maxAbs: number | null;
  rmse: number | null;
  /** rmse / RMS of the values; null when the values are all zero */
  relRmse: number | null;
}

export interface QuantErrorReport {
  /** symmetric int8: per row for embedding tables, per output channel for kernels, per tensor otherwise */
  int8: QuantErrorFigures & { granularity: 'per-row' | 'per-output-channel' | 'per-tensor' };
  /** round-to-nearest float16; overflow counts values beyond ±65504 (they become ±Infinity: figures are null) */
  float16: QuantErrorFigures & { overflow: number };
  /**
   * present when the int8 and float16 figures were measured on this many evenly spaced rows
   * (huge embedding tables; ≥ 256K rows), not on every row: estimates, and maxAbs is the
   * sample's max. The overflow count is always exact.
   */
  sampledRows?: number;
}

export interface TensorReport {
  name: string;
  shape: number[];
  /** dtype the model computes with */
  dtype: string;
  /** dtype of the stored elements (e.g. uint8 for a quantized float32 weight) */
  storedDtype: string;
  /**
   * Set when the graph stores the tensor as integer codes and dequantizes them (ONNX): the code
   * width and what one scale covers. Shape, params and statistics are those of the float values.
   */
  storedAs?: { bits: number; granularity: 'row' | 'column' | 'tensor' };
  params: number;
  /** exact zeros (+0 and -0) */
  zeros: number;
  /** |w| <= epsilon (includes zeros) */
  nearZeros: number;
  /** NaN and ±Infinity values, excluded from every other statistic */
  nonFinite: number;
  role: ReportRole;
  layer: string;
  trainable: boolean;
  /** dense kernels: true when stored [out, in] (output neurons are rows), false for [in, out] */
  transposed?: boolean;
  /** bytes the tensor takes in its file(s) */
  bytes: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  absMean: number | null;
  histogram: MagnitudeHistogram;
  rows?: RowSummary;
  /** dense kernels: output neurons whose weights are all zero */
  deadNeurons?: number;
  tiles?: HeatmapTiles;
  spectrum?: SpectrumReport;
  quantError?: QuantErrorReport;
  /** what a zero means for this tensor, in words */
  sparsityMeaning: string;
}

export interface LayerReport {
  name: string;
  kind: string;
  /** all params of the layer's tensors (trainable + constants) */
  params: number;
  trainableParams: number;
  /** share of the model's trainable params (0..1); constants never count */
  share: number;
  /** exact zeros among trainable params */
  zeros: number;
  /** zeros / trainableParams (null without trainable params) */
  sparsity: number | null;
  tensors: string[];
}

export type OpportunityKind =
  | 'prune-rows'
  | 'prune-weights'
  | 'prune-neurons'
  | 'quantize-int8'
  | 'quantize-float16'
  | 'factorize'
  | 'note';

export interface Opportunity {
  kind: OpportunityKind;
  /** tensor name (or layer name) */
  target: string;
  /** one line, e.g. "item_embedding: 61% of rows have near-zero norm — prune 50% of rows" */
  title: string;
  /** bytes on disk saved if applied (0 for notes) */
  estimatedSavingBytes: number;
  /** why, with the numbers behind it */
  detail: string;
}

export interface ModelReport {
  format: ReportFormat;
  path: string;
  /** size on disk of every file of the model */
  fileBytes: number;
  /** sum of shape products of ALL tensors (trainable + constants) */
  totalParams: number;
  /** exact zeros (+0 and -0) in ALL tensors: the zero count that matches totalParams */
  totalZeros: number;
  /** exact zeros among trainable params (what "sparsity" means: constants never count) */
  trainableZeros: number;
  trainableParams: number;
  constantParams: number;
  tensors: TensorReport[];
  layers: LayerReport[];
  /** biggest saving first */
  opportunities: Opportunity[];
  /** |w| <= epsilon counts as near zero */
  epsilon: number;
  /** ISO 8601 */
  generatedAt: string;
  tool: { name: string; version: string };
}

/**
 * Layers that hold only constants (an exporter's axes and indices, the shifts of packed tables):
 * the CLI's layer table and the panel's show them as one line, not a row each.
 */
export function constantOnlyLayers(r: Pick<ModelReport, 'layers' | 'tensors'>): LayerReport[] {
  const role = new Map(r.tensors.map((t) => [t.name, t.role]));
  return r.layers.filter((l) => l.params > 0 && l.tensors.length > 0 && l.tensors.every((n) => role.get(n) === 'constant'));
}
