// A quantization plus the training chosen, as the steps of one compress job: one composition for
// `prunescope quantize --finetune` and the editor's Quantize dialog. Embedding tables stored in
// int4 / int3 / int2 are first fine-tuned quantization-aware (finetune's quantAware: the forward
// reads every row as quantize will store it, in the same dtype and scales), the unquantized
// original teaching, then stored by quantize. int8 and float16 have no such training here: they
// keep the metric within noise without it (per-row int8 kept 100.2% of NDCG@10 on a PyTorch NeuMF).

import { lowBitsOf } from '../compress/quantize-math.js';
import type { CompressStep } from './job-types.js';
import { finetuneSettings, type FinetuneAfter } from './finetune-step.js';

/** The training before a low-bit quantization; the teacher is the model being quantized. */
export type QuantizeFinetune = FinetuneAfter;

/** The editor's choice before a low-bit quantization. */
export type QuantizeTuning = { kind: 'direct' } | { kind: 'quant-aware'; data: string; epochs: number };

/** A quantization and training that cannot go together (the CLI reports it as a usage error). */
export class QuantizeTuningError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QuantizeTuningError';
  }
}

/** The steps of one quantization job: quantize alone, or quantization-aware fine-tuning then quantize. */
export function composeQuantize(quantize: Record<string, unknown>, ft: QuantizeFinetune | undefined): CompressStep[] {
  const step: CompressStep = { method: 'quantize', settings: quantize };
  if (!ft) return [step];
  const dtype = String(quantize.dtype);
  if (lowBitsOf(dtype) === undefined) {
    throw new QuantizeTuningError(`--finetune trains the tables through the rounding of int4, int3 or int2; --dtype ${dtype} keeps the metric without it (quantize directly)`);
  }
  const tensors = quantize.tensors ?? 'all';
  // every table trains through the rounding, so every table must be stored in that form
  if (tensors !== 'all' && tensors !== 'embeddings') {
    throw new QuantizeTuningError('--finetune trains every embedding table through the rounding: give --tensors embeddings (or all), not a list of tables');
  }
  // byte scales are fitted to the table quantize finds (scale-levels.ts): the levels a training
  // run would round through are not the ones stored, so there is nothing exact to train against
  if (quantize.scales === 'byte') {
    throw new QuantizeTuningError('quantization-aware fine-tuning trains through per-row or per-column scales; byte scales are fitted to the table after training: choose per row or per column, or quantize directly');
  }
  const settings = finetuneSettings(ft, { quantAware: { dtype, scales: quantize.scales === 'column' ? 'column' : 'row' } });
  return [{ method: 'finetune', settings }, step];
}

/** The editor's choice as one composition; `teacher` is the model being quantized. */
export function quantizeSteps(quantize: Record<string, unknown>, tuning: QuantizeTuning, teacher?: string): CompressStep[] {
  if (tuning.kind === 'direct') return composeQuantize(quantize, undefined);
  return composeQuantize(quantize, { data: tuning.data, epochs: tuning.epochs, ...(teacher ? { teacher } : {}) });
}

/** Words for titles and notifications, e.g. "quantization-aware: fine-tuned 2 epochs". */
export function describeQuantizeTuning(tuning: QuantizeTuning): string {
  if (tuning.kind === 'direct') return 'no training';
  return `quantization-aware: fine-tuned ${tuning.epochs} epoch${tuning.epochs === 1 ? '' : 's'}`;
}
