// The training loop of the fast engine (compiled-step.ts): the same epochs, sampler, seed,
// batches, progress and cancellation as trainLoop (loop.ts), but each step is one compiled
// forward/backward with row-wise lazy Adam on the tables and Adam on the dense tensors.
// Timing: `seconds` is the whole loop; `trainSeconds` the optimizer steps only (what PyTorch's
// bench times: negative sampling and shuffling are in `samplingSeconds`).

import { createRng } from '../../samples/prng.js';
import type { CompressionContext } from '../types.js';
import type { FastEngine, OutputSeed } from './compiled-step.js';
import { EpochSampler, sliceBatch } from './interaction-table.js';
import { checkAbort, formatSeconds, TrainLoopResult } from './loop.js';
import type { OutputKind } from './output-kind.js';
import { DEFAULT_ADAM } from './sparse-tables.js';

export interface FastLoopOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  outputKind: OutputKind;
  ctx?: CompressionContext;
  progressSpan?: [number, number];
  what?: string;
  /** progress labels: epochs before this loop and epochs of the whole run (training-sample pruning runs two loops) */
  epochBase?: number;
  epochTotal?: number;
  /** the optimizer step to continue from (0 for a fresh run) */
  stepBase?: number;
  /** a loss other than the labels' (distillation: distill-gradient.ts), as its gradient at the output */
  lossSeed?: OutputSeed;
  /** called before optimizer step `step` (0-based over the loop): gradual pruning updates masks here */
  beforeStep?: (step: number) => Promise<void> | void;
}

export interface FastLoopResult extends TrainLoopResult {
  engine: 'compiled';
  /** seconds in optimizer steps only (no sampling) */
  trainSeconds: number;
  samplingSeconds: number;
  /** samples per second of the steps alone */
  stepSamplesPerSecond: number;
  steps: number;
}

export async function fastTrainLoop(engine: FastEngine, sampler: EpochSampler, o: FastLoopOptions): Promise<FastLoopResult> {
  const what = o.what ?? 'fine-tuning';
  const epochBase = o.epochBase ?? 0;
  const epochTotal = o.epochTotal ?? o.epochs;
  const rng = createRng(o.seed);
  const adam = { lr: o.lr, ...DEFAULT_ADAM };
  const losses: number[] = [];
  const [p0, p1] = o.progressSpan ?? [0, 1];
  const perEpoch = sampler.size;
  const batches = Math.ceil(perEpoch / o.batchSize);
  const total = batches * o.epochs;
  const t0 = performance.now();
  let trainMs = 0;
  let sampleMs = 0;
  let lastYield = Date.now();
  let done = 0;
  let step = o.stepBase ?? 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const ts = performance.now();
    const rows = sampler.epoch(rng);
    sampleMs += performance.now() - ts;
    let sum = 0;
    let tStart = performance.now();
    for (let bi = 0; bi < batches; bi++) {
      checkAbort(o.ctx, what);
      const b = sliceBatch(rows, bi * o.batchSize, Math.min(perEpoch, (bi + 1) * o.batchSize));
      if (o.beforeStep) await o.beforeStep(done);
      sum += engine.trainStep(b, o.outputKind, adam, ++step, o.lossSeed);
      done++;
      if (Date.now() - lastYield > 200) {
        trainMs += performance.now() - tStart;
        await new Promise((r) => setImmediate(r));
        lastYield = Date.now();
        const elapsed = (performance.now() - t0) / 1000;
        const eta = (elapsed / done) * (total - done);
        o.ctx?.onProgress?.(p0 + ((p1 - p0) * done) / total, `${what}: epoch ${epochBase + epoch + 1}/${epochTotal}, ETA ${formatSeconds(eta)}`);
        tStart = performance.now();
      }
    }
    trainMs += performance.now() - tStart;
    losses.push(sum / perEpoch);
    const elapsed = (performance.now() - t0) / 1000;
    o.ctx?.onProgress?.(p0 + ((p1 - p0) * done) / total, `${what}: epoch ${epochBase + epoch + 1}/${epochTotal} loss ${losses[epoch].toFixed(4)}, ETA ${formatSeconds((elapsed / done) * (total - done))}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  const samples = perEpoch * o.epochs;
  const trainSeconds = trainMs / 1000;
  return {
    engine: 'compiled',
    losses,
    samples,
    seconds,
    samplesPerSecond: samples / Math.max(seconds, 1e-9),
    trainSeconds,
    samplingSeconds: sampleMs / 1000,
    stepSamplesPerSecond: samples / Math.max(trainSeconds, 1e-9),
    steps: step - (o.stepBase ?? 0),
  };
}
