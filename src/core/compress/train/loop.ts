// The training loop shared by fine-tuning, distillation, gradual pruning and sample pruning:
// Adam over sampled epochs, masks re-applied after every step, cancellable between batches.

import * as tf from '@tensorflow/tfjs';
import { createRng } from '../../samples/prng.js';
import type { CompressionContext } from '../types.js';
import { Batch, EpochSampler, sliceBatch } from './interaction-table.js';
import { lossFor } from './loss.js';
import type { OutputKind } from './output-kind.js';

export interface TrainLoopOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** per variable: 1 where the weight may change, 0 where it must stay 0 (undefined: free) */
  masks?: Array<tf.Tensor | undefined>;
  /** what the trained model's scores are: picks the loss against the labels (loss.ts) */
  outputKind: OutputKind;
  /** a loss in place of the labels' one: distillation mixes in the teacher's soft targets here */
  loss?: (pred: tf.Tensor, batch: Batch) => tf.Scalar;
  ctx?: CompressionContext;
  /** the fraction of the caller's progress this loop covers */
  progressSpan?: [number, number];
  what?: string;
  /** an optimizer to continue with (its state carries over; the caller disposes it); default a new Adam(lr) */
  optimizer?: tf.Optimizer;
  /** progress labels: epochs before this loop and epochs of the whole run (training-sample pruning runs two loops) */
  epochBase?: number;
  epochTotal?: number;
  /**
   * called before optimizer step `step` (0-based, counted over the whole loop); it may replace
   * entries of `masks` (disposing the old ones) and zero weights: gradual pruning does
   */
  beforeStep?: (step: number) => Promise<void> | void;
}

export interface TrainLoopResult {
  losses: number[];
  samples: number;
  /** the whole loop, negative sampling included */
  seconds: number;
  samplesPerSecond: number;
  /** seconds spent drawing epochs (negative sampling, shuffling): what PyTorch's bench leaves out */
  samplingSeconds?: number;
}

export function checkAbort(ctx: CompressionContext | undefined, what: string): void {
  if (ctx?.signal?.aborted) throw new Error(`${what} was cancelled`);
}

/** A progress ETA: seconds below 90 s, minutes above. */
export function formatSeconds(s: number): string {
  return s >= 90 ? `${Math.round(s / 60)} min` : `${Math.max(0, Math.round(s))} s`;
}

/** Adam on `vars` over sampled epochs; masks re-applied after every step. Cancellable between batches. */
export async function trainLoop(vars: tf.Variable[], forward: (b: Batch) => tf.Tensor, sampler: EpochSampler, o: TrainLoopOptions): Promise<TrainLoopResult> {
  const what = o.what ?? 'fine-tuning';
  const optimizer = o.optimizer ?? tf.train.adam(o.lr);
  const epochBase = o.epochBase ?? 0;
  const epochTotal = o.epochTotal ?? o.epochs;
  const rng = createRng(o.seed);
  const losses: number[] = [];
  const [p0, p1] = o.progressSpan ?? [0, 1];
  const perEpoch = sampler.size;
  const batches = Math.ceil(perEpoch / o.batchSize);
  const total = batches * o.epochs;
  const t0 = Date.now();
  let lastYield = Date.now();
  let done = 0;
  let samplingMs = 0;
  const labelLoss = lossFor(o.outputKind);
  const lossFn = o.loss ?? ((p: tf.Tensor, b: Batch) => labelLoss(p, tf.tensor1d(b.label)));
  try {
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const ts = Date.now();
      const rows = sampler.epoch(rng);
      samplingMs += Date.now() - ts;
      let sum = 0;
      for (let bi = 0; bi < batches; bi++) {
        checkAbort(o.ctx, what);
        const b = sliceBatch(rows, bi * o.batchSize, Math.min(perEpoch, (bi + 1) * o.batchSize));
        if (o.beforeStep) await o.beforeStep(done);
        const lossT = optimizer.minimize(() => lossFn(forward(b), b), true, vars)!;
        if (o.masks) {
          tf.tidy(() => {
            o.masks!.forEach((m, i) => {
              if (m) vars[i].assign(tf.mul(vars[i], m));
            });
          });
        }
        sum += (await lossT.data())[0] * b.user.length;
        lossT.dispose();
        done++;
        if (Date.now() - lastYield > 200) {
          // lets an abort signal (and progress listeners) run between batches
          await new Promise((r) => setImmediate(r));
          lastYield = Date.now();
          const elapsed = (Date.now() - t0) / 1000;
          const eta = (elapsed / done) * (total - done);
          o.ctx?.onProgress?.(p0 + ((p1 - p0) * done) / total, `${what}: epoch ${epochBase + epoch + 1}/${epochTotal}, ETA ${formatSeconds(eta)}`);
        }
      }
      losses.push(sum / perEpoch);
      const elapsed = (Date.now() - t0) / 1000;
      const eta = (elapsed / done) * (total - done);
      o.ctx?.onProgress?.(p0 + ((p1 - p0) * done) / total, `${what}: epoch ${epochBase + epoch + 1}/${epochTotal} loss ${losses[epoch].toFixed(4)}, ETA ${formatSeconds(eta)}`);
    }
  } finally {
    if (!o.optimizer) optimizer.dispose();
  }
  const seconds = (Date.now() - t0) / 1000;
  const samples = perEpoch * o.epochs;
  return { losses, samples, seconds, samplesPerSecond: samples / Math.max(seconds, 1e-9), samplingSeconds: samplingMs / 1000 };
}
