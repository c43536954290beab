// Fine-tuning of a (pruned) recommender on the user's interaction data, for TF.js layers models
// and for ONNX models (through the TF.js translation in onnx-to-tfjs.ts). The training pieces
// (data, trainees, losses by output kind, the loop) are in train/. With masks 'keep-zeros' every
// weight that is exactly zero before training is set back to zero after each optimizer step, so
// pruning survives fine-tuning. Output: the same file structure with new weight values (ONNX:
// writeOnnxModel replaces values at byte level; TF.js: writeTfjsModel keeps model.json as is).

import * as tf from '@tensorflow/tfjs';
import { ModelIR, ModelTensor } from '../model/ir.js';
import { initTfjs } from '../runtime/tfjs-backend.js';
import type { CompressionContext, CompressionOutcome, TensorChange } from './types.js';
import { resolveSamplePruning, samplePruningNotes, SamplePruningReport, SamplePruningSettings, trainWithSamplePruning } from './sample-pruning.js';
import { GradualPruner, GradualPruningSettings, resolveGradual } from './gradual-pruning.js';
import { EpochSampler, readInteractionTable, trainingTable } from './train/interaction-table.js';
import { loadTrainee, traineeOutputKind } from './train/trainee.js';
import { CandidateMetrics, evaluateCandidates } from './train/candidate-metrics.js';
import { checkAbort, trainLoop, TrainLoopOptions, TrainLoopResult } from './train/loop.js';
import { lossName } from './train/loss.js';
import type { OutputKind, OutputSemantics } from './train/output-kind.js';
import { writeTrainedValues } from './train/write-trained.js';

export type { GradualPruningSettings } from './gradual-pruning.js';

export interface FinetuneSettings {
  /** interactions CSV: user,item[,label][,timestamp][,extra fields] */
  data: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  /** 'keep-zeros': exact zeros stay zero (default when the model has pruned zeros); 'none': all weights train */
  masks?: 'keep-zeros' | 'none';
  /** sampled negatives per positive when the data has only positives; default 4 */
  negatives?: number;
  seed?: number;
  /** optional leave-one-out candidates CSV: HR/NDCG@k before and after go into the notes */
  candidates?: string;
  k?: number;
  /** train the epochs after the warm-up on the hardest `keep` fraction of the rows (sample-pruning.ts) */
  samplePruning?: SamplePruningSettings;
  /** magnitude pruning that ramps up during this training (TFMOT's habit), instead of fixed masks */
  gradual?: GradualPruningSettings;
  /** what the model's output is; default 'auto' (output-kind.ts: the graph, else the scores on the data) */
  outputKind?: OutputKind | 'auto';
}

/** Share of exact zeros above which a tensor counts as pruned (trained weights are almost never exactly 0). */
const PRUNED_ZERO_SHARE = 0.01;

export async function finetuneModel(ir: ModelIR, settings: FinetuneSettings, ctx?: CompressionContext): Promise<CompressionOutcome> {
  const epochs = settings.epochs ?? 2;
  const batchSize = settings.batchSize ?? 512;
  const lr = settings.lr ?? 0.001;
  const negatives = settings.negatives ?? 4;
  const seed = settings.seed ?? 7;
  for (const [k, v] of [['epochs', epochs], ['batchSize', batchSize], ['negatives', negatives]] as const) {
    if (!Number.isInteger(v) || v < (k === 'negatives' ? 0 : 1)) throw new Error(`finetune: ${k} must be a positive integer, got ${v}`);
  }
  if (!(lr > 0)) throw new Error(`finetune: lr must be positive, got ${lr}`);
  const sp = settings.samplePruning ? resolveSamplePruning(settings.samplePruning, epochs, 'finetune') : undefined;
  const gradual = settings.gradual ? resolveGradual(settings.gradual, epochs, ir.path) : undefined;
  if (gradual && sp) throw new Error('finetune: gradual pruning and training-sample pruning cannot be combined in one run');
  const backend = await initTfjs();
  ctx?.onProgress?.(0, 'reading data');
  const read = await readInteractionTable(settings.data);
  checkAbort(ctx, 'fine-tuning');
  const trainee = await loadTrainee(ir, { lastLayerInput: sp?.by === 'gradnorm' });
  let masksAll: Array<tf.Tensor | undefined> = [];
  let live: Array<tf.Tensor | undefined> = [];
  try {
    const output: OutputSemantics = traineeOutputKind(ir, trainee, read, settings.outputKind);
    const table = trainingTable(read, output.kind);
    // masks from the values before training
    const zeros: number[] = [];
    masksAll = trainee.variables.map((v, i) => {
      const data = v.dataSync() as Float32Array;
      let z = 0;
      for (let j = 0; j < data.length; j++) if (data[j] === 0) z++;
      zeros[i] = z;
      return z > 0 ? tf.tidy(() => tf.cast(tf.notEqual(v, 0), 'float32')) : undefined;
    });
    const pruned = trainee.variables.some((v, i) => zeros[i] / v.size >= PRUNED_ZERO_SHARE);
    const masks = settings.masks ?? (pruned ? 'keep-zeros' : 'none');
    const resolved = {
      data: settings.data,
      epochs,
      batchSize,
      lr,
      masks,
      negatives,
      seed,
      outputKind: output.kind,
      ...(settings.candidates ? { candidates: settings.candidates, k: settings.k ?? 10 } : {}),
      ...(sp ? { samplePruning: sp } : {}),
      ...(gradual ? { gradual } : {}),
    };
    const k = settings.k ?? 10;
    const before = settings.candidates ? await evaluateCandidates(trainee, settings.candidates, k) : undefined;
    const sampler = new EpochSampler(table, negatives);
    // gradual pruning replaces entries of `live` as it goes; the zeros kept from before training stay in them
    live = masks === 'keep-zeros' || gradual ? masksAll.slice() : [];
    const batchesPerEpoch = Math.ceil(sampler.size / batchSize);
    const pruner = gradual ? new GradualPruner(ir, trainee, gradual, batchesPerEpoch, batchesPerEpoch * epochs, live, masks === 'keep-zeros' ? masksAll : []) : undefined;
    const loopOptions: TrainLoopOptions = {
      epochs,
      batchSize,
      lr,
      seed,
      outputKind: output.kind,
      masks: masks === 'keep-zeros' || gradual ? live : undefined,
      ctx,
      progressSpan: [0.02, 0.95],
      ...(pruner ? { beforeStep: (step: number) => pruner.beforeStep(step), what: 'fine-tuning with gradual pruning' } : {}),
    };
    let result: TrainLoopResult;
    let pruning: SamplePruningReport | undefined;
    if (sp) {
      const r = await trainWithSamplePruning(trainee.variables, trainee, table, negatives, sp, loopOptions);
      result = r.training;
      pruning = r.report;
    } else {
      result = await trainLoop(trainee.variables, trainee.forward, sampler, loopOptions);
    }
    const after = settings.candidates ? await evaluateCandidates(trainee, settings.candidates, k) : undefined;
    if (pruning && after) pruning.metric = after;

    const values = new Map<string, Float32Array>();
    trainee.variables.forEach((v, i) => values.set(trainee.names[i], Float32Array.from(v.dataSync() as Float32Array)));
    const byName = new Map<string, ModelTensor>(ir.tensors.map((t) => [t.name, t]));
    const changes: TensorChange[] = trainee.names.map((name, i) => {
      const t = byName.get(name)!;
      const entry = { shape: t.shape, dtype: t.dtype, bytes: t.storage.byteLength };
      const zerosNow = pruner?.last?.masks.has(name) ? values.get(name)!.reduce((n, x) => (x === 0 ? n + 1 : n), 0) : undefined;
      const kept =
        zerosNow !== undefined
          ? `, gradually pruned: ${zerosNow} of ${t.shape.reduce((a, b) => a * b, 1)} zero`
          : masks === 'keep-zeros' && zeros[i] > 0
            ? `, ${zeros[i]} zeros kept`
            : '';
      return { tensor: name, action: `fine-tuned${kept}`, before: entry, after: [{ name, ...entry, dtype: ir.format === 'onnx' ? t.dtype : 'float32', bytes: ir.format === 'onnx' ? t.storage.byteLength : t.shape.reduce((a, b) => a * b, 1) * 4 }] };
    });
    const notes = [
      `Output: ${output.kind} (${output.reason}); loss: ${lossName(output.kind)}.`,
      `Fine-tuned ${trainee.names.length} tensors (${trainee.params} parameters) for ${epochs} epochs of ${sampler.size} rows${pruning ? ` (${pruning.prunedEpochs} of them on the ${pruning.samplesPerEpochPruned} rows kept by sample pruning)` : ''}` +
        (table.implicit ? ` (${table.user.length} positives + ${negatives} sampled negatives each, redrawn per epoch)` : '') +
        `: loss ${result.losses.map((l) => l.toFixed(4)).join(' -> ')}.`,
      `Training throughput ${Math.round(result.samplesPerSecond)} samples/s on the TF.js '${backend.backend}' backend (${result.seconds.toFixed(1)} s).`,
      pruner
        ? pruner.summary(values)
        : masks === 'keep-zeros'
          ? `Masks kept: the ${zeros.reduce((a, b) => a + b, 0)} weights that were exactly zero are zero after every optimizer step, so the sparsity is unchanged.`
          : 'No masks: every weight was free to change (zeros may have become non-zero).',
      ir.format === 'onnx'
        ? 'The ONNX graph was trained through its TF.js translation; only initializer values changed, the file structure is untouched.'
        : 'Only weight values changed; model.json keeps its topology.',
    ];
    if (before && after) {
      notes.push(`On ${settings.candidates}: NDCG@${k} ${before.ndcg.toFixed(4)} -> ${after.ndcg.toFixed(4)}, HR@${k} ${before.hr.toFixed(4)} -> ${after.hr.toFixed(4)}.`);
    }
    if (pruning) notes.push(...samplePruningNotes(pruning, k));
    ctx?.onProgress?.(1, 'fine-tuned');
    const outcome: CompressionOutcome & { training: TrainLoopResult & { backend: string; outputKind: OutputSemantics; before?: CandidateMetrics; after?: CandidateMetrics }; samplePruning?: SamplePruningReport } = {
      method: 'finetune',
      settings: resolved,
      changes,
      notes,
      write: (outPath) => writeTrainedValues(ir, values, outPath),
      training: { ...result, backend: backend.backend, outputKind: output, before, after },
      ...(pruning ? { samplePruning: pruning } : {}),
    };
    return outcome;
  } finally {
    const owned = new Set(masksAll);
    for (const m of live) if (m && !owned.has(m)) m.dispose();
    masksAll.forEach((m) => m?.dispose());
    trainee.dispose();
  }
}
