// The contract every compression method follows (one file per method in this folder):
// a method takes a model IR and its settings, and returns a CompressionOutcome that knows how to
// write the compressed model (same format as the input) and what it changed. Methods never
// write over the original; `write` goes through the format writers (temp file + rename).

import type { TrainingView } from '../../shared/protocol.js';
import type { DType, ModelIR } from '../model/ir.js';

export interface CompressionContext {
  signal?: AbortSignal;
  /** fraction 0..1 of this method's work, with what it is doing */
  onProgress?: (fraction: number, detail?: string) => void;
  /**
   * The score's sensitivity measured by an earlier quantize step of the same recipe, with no other
   * method since (output-aware-rounding.ts): a later step quantizes its tables with it, since the
   * engine cannot run a graph whose tables are already packed. Whoever runs a recipe's steps passes
   * one holder along the quantize steps and a fresh one after any other method.
   */
  sensitivity?: SensitivityMemo;
}

/** What an output-aware quantize step measured (per table, H row-major cols x cols), and on what. */
export interface SensitivityMemo {
  measured?: { calibration: string; hessians: Map<string, Float64Array>; pairs: number; draws: number };
}

/** One tensor's change, for the before/after report. */
export interface TensorChange {
  tensor: string;
  /** e.g. 'pruned 90% of weights', 'dropped 1000 of 2000 rows', 'int8 per-row', 'factorized to rank 8' */
  action: string;
  before: { shape: number[]; dtype: DType; bytes: number };
  /** after: the tensor(s) that replace it (a factorization gives two) */
  after: Array<{ name: string; shape: number[]; dtype: DType; bytes: number }>;
}

export interface CompressionOutcome {
  /** 'prune-magnitude' | 'prune-rows' | 'prune-dims' | 'prune-neurons' | 'quantize' | 'factorize' | 'finetune' | 'distill' */
  method: string;
  /** the settings as resolved (defaults filled in): recorded in recipes and reports */
  settings: Record<string, unknown>;
  changes: TensorChange[];
  /**
   * Plain statements for the report, e.g. "Unstructured zeros are stored densely: ONNX Runtime
   * runs the same dense kernels, so latency does not change; the gzip size shrinks."
   */
  notes: string[];
  /** Writes the compressed model to outPath (model.json / .onnx, plus shards / external data). */
  write(outPath: string): Promise<void>;
  /** The compressed model as an IR, for chaining methods without a round trip through disk when possible. */
  ir?: ModelIR;
  /** methods that train: what ran (backend, engine), the output kind, speed and losses */
  trainingView?: TrainingView;
}
