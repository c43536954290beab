// Fine-tuning of a (pruned) recommender on the user's interaction data, for TF.js layers models
// and for ONNX models (through the TF.js translation in onnx-to-tfjs.ts). The training pieces
// (data, trainees, losses by output kind, the loop) are in train/. With masks 'keep-zeros' every
// weight that is exactly zero before training is set back to zero after each optimizer step, so
// pruning survives fine-tuning. Output: the same file structure with new weight values (ONNX:
// writeOnnxModel replaces values at byte level; TF.js: writeTfjsModel keeps model.json as is).

import * as tf from '@tensorflow/tfjs';
import { ModelIR, ModelTensor } from '../model/ir.js';
import { readModel } from '../model/read-model.js';
import { initTfjs } from '../runtime/tfjs-backend.js';
import type { CompressionContext, CompressionOutcome, TensorChange } from './types.js';
import { ResolvedSamplePruning, resolveSamplePruning, samplePrunedTraining, samplePruningNotes, SamplePruningReport, SamplePruningSettings, ScoredModel, trainWithSamplePruning, TrainRun } from './sample-pruning.js';
import { EngineGradualPruner, GradualPruner, GradualPruningSettings, resolveGradual } from './gradual-pruning.js';
import { DynamicPruner, DynamicPruningSettings, resolveDynamic } from './dynamic-pruning.js';
import { EpochSampler, readInteractionTable, trainingTable, unusedNegativesNote, ratingsAsPositivesNote } from './train/interaction-table.js';
import { loadTrainee, traineeOutputKind } from './train/trainee.js';
import { CandidateMetrics, evaluateCandidates } from './train/candidate-metrics.js';
import { checkAbort, trainLoop, TrainLoopOptions, TrainLoopResult } from './train/loop.js';
import { lossName } from './train/loss.js';
import type { OutputKind, OutputSemantics } from './train/output-kind.js';
import { writeTrainedValues } from './train/write-trained.js';
import { chooseTrainingEngine, EnginePreference, optimizerSummary } from './train/engine-choice.js';
import type { FastEngine } from './train/compiled-step.js';
import { fastTrainLoop, FastLoopResult } from './train/fast-loop.js';
import { distillationSeed } from './train/distill-gradient.js';
import { teacherLoss, teacherScorer, type TeacherScorer } from './train/teacher.js';
import { startQuantAware, type QuantAwareRun, type QuantAwareSettings } from './train/fake-quant.js';
import { outputKindByScores } from './train/trainee.js';
import { evaluateCandidatesWith } from './train/candidate-metrics.js';

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
  /**
   * magnitude pruning held at its target through this training while the masks may change
   * (pruned weights learn in a shadow copy; dynamic-pruning.ts), instead of fixed masks
   */
  dynamic?: DynamicPruningSettings;
  /** training engine: 'auto' (compiled when the graph allows, train/engine-choice.ts), 'compiled', or 'tape' */
  engine?: EnginePreference;
  /**
   * a model (usually the original of a compressed one) whose scores are soft targets: the loss
   * becomes alpha x its soft targets + (1 - alpha) x the labels, as in distillation. Its output
   * must be of the same kind as this model's.
   */
  teacher?: string;
  /** weight of the teacher's soft targets; default 0.7 (distill's) */
  alpha?: number;
  /** temperature of the teacher's soft targets; default 1 */
  temperature?: number;
  /** ONNX: train the tables through the rounding of a low-bit dtype (train/fake-quant.ts) */
  quantAware?: QuantAwareSettings;
}

/** The teacher of a fine-tuning, if one is named: its model, trainee and per-batch scores. */
interface FinetuneTeacher {
  path: string;
  alpha: number;
  T: number;
  scorer: TeacherScorer;
  dispose(): void;
}

async function openFinetuneTeacher(settings: FinetuneSettings): Promise<FinetuneTeacher | undefined> {
  if (!settings.teacher) return undefined;
  const alpha = settings.alpha ?? 0.7;
  const T = settings.temperature ?? 1;
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`finetune: alpha must be in [0, 1], got ${alpha}`);
  if (!(T > 0)) throw new Error(`finetune: temperature must be positive, got ${T}`);
  // the backend first: loading the teacher would otherwise start TF.js on its default one (and its banner)
  await initTfjs();
  const scorer = await teacherScorer(await readModel(settings.teacher));
  return { path: settings.teacher, alpha, T, scorer, dispose: () => scorer.dispose() };
}

function teacherNote(t: FinetuneTeacher | undefined, kind: OutputKind): string[] {
  if (!t) return [];
  return [`Teacher: ${t.path} (scored on the ${t.scorer.engine} engine); loss = ${t.alpha} x its soft targets${t.T !== 1 ? ` at temperature ${t.T}` : ''} + ${(1 - t.alpha).toFixed(2)} x the labels (${lossName(kind)}).`];
}

/** Share of exact zeros above which a tensor counts as pruned (trained weights are almost never exactly 0). */
const PRUNED_ZERO_SHARE = 0.01;

export async function finetuneModel(ir: ModelIR, settings: FinetuneSettings, ctx?: CompressionContext): Promise<CompressionOutcome> {
  const teacher = await openFinetuneTeacher(settings);
  try {
    return await finetuneWith(ir, settings, teacher, ctx);
  } finally {
    teacher?.dispose();
  }
}

async function finetuneWith(ir: ModelIR, settings: FinetuneSettings, teacher: FinetuneTeacher | undefined, ctx?: CompressionContext): Promise<CompressionOutcome> {
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
  const dynamic = settings.dynamic ? resolveDynamic(settings.dynamic, epochs, ir.path) : undefined;
  if ([gradual, dynamic, sp].filter(Boolean).length > 1) throw new Error('finetune: gradual pruning, dynamic pruning and training-sample pruning cannot be combined in one run');
  if (settings.quantAware) {
    if (ir.format !== 'onnx') throw new Error(`finetune: quantization-aware training is for ONNX models, whose tables can be stored in ${settings.quantAware.dtype}; ${ir.path} is TF.js, whose manifests have no such type`);
    if (gradual || dynamic) throw new Error('finetune: quantization-aware training and gradual or dynamic pruning cannot be combined in one run');
  }
  const backend = await initTfjs();
  ctx?.onProgress?.(0, 'reading data');
  const read = await readInteractionTable(settings.data, { model: ir, training: true });
  checkAbort(ctx, 'fine-tuning');
  const blocker =
    sp?.by === 'gradnorm'
      ? "training-sample pruning by gradient norm needs the last layer's input, which the TF.js tape gives"
      : dynamic
        ? 'dynamic pruning keeps a dense shadow copy of the weights, which runs on the TF.js tape'
        : backend.backend !== 'wasm' && backend.backend !== 'cpu'
          ? `the compiled engine reads results straight from the WASM/CPU backends; on '${backend.backend}' the TF.js tape trains`
          : undefined;
  const choice = await chooseTrainingEngine(ir, settings.engine ?? 'auto', blocker);
  if (settings.quantAware && choice.kind !== 'compiled') {
    throw new Error(`finetune: quantization-aware training runs on the compiled engine only, and it cannot train ${ir.path}: ${choice.reason}`);
  }
  if (choice.kind === 'compiled') {
    return finetuneCompiled(ir, settings, choice.engine, read, backend.backend, { epochs, batchSize, lr, negatives, seed }, gradual, sp, teacher, ctx);
  }
  const tapeReason = choice.reason;
  const trainee = await loadTrainee(ir, { lastLayerInput: sp?.by === 'gradnorm' });
  let masksAll: Array<tf.Tensor | undefined> = [];
  let live: Array<tf.Tensor | undefined> = [];
  try {
    const output: OutputSemantics = await traineeOutputKind(ir, trainee, read, settings.outputKind);
    const table = trainingTable(read, output.kind);
    // masks from the values before training
    const zeros: number[] = [];
    masksAll = [];
    for (const [i, v] of trainee.variables.entries()) {
      // read asynchronously: the WebGPU backend cannot read synchronously in Node
      const data = (await v.data()) as Float32Array;
      let z = 0;
      for (let j = 0; j < data.length; j++) if (data[j] === 0) z++;
      zeros[i] = z;
      masksAll.push(z > 0 ? tf.tidy(() => tf.cast(tf.notEqual(v, 0), 'float32')) : undefined);
    }
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
      ...(dynamic ? { dynamic } : {}),
      ...(teacher ? { teacher: teacher.path, alpha: teacher.alpha, temperature: teacher.T } : {}),
    };
    const k = settings.k ?? 10;
    const before = settings.candidates ? await evaluateCandidates(trainee, settings.candidates, k) : undefined;
    const sampler = new EpochSampler(table, negatives);
    // gradual pruning replaces entries of `live` as it goes; the zeros kept from before training stay in them
    live = masks === 'keep-zeros' || gradual || dynamic ? masksAll.slice() : [];
    const batchesPerEpoch = Math.ceil(sampler.size / batchSize);
    const pruner = gradual ? new GradualPruner(ir, trainee, gradual, batchesPerEpoch, batchesPerEpoch * epochs, live, masks === 'keep-zeros' ? masksAll : []) : undefined;
    const regrower = dynamic ? new DynamicPruner(ir, trainee, dynamic, batchesPerEpoch, batchesPerEpoch * epochs, live) : undefined;
    const loopOptions: TrainLoopOptions = {
      epochs,
      batchSize,
      lr,
      seed,
      outputKind: output.kind,
      masks: masks === 'keep-zeros' || gradual || dynamic ? live : undefined,
      ctx,
      progressSpan: [0.02, 0.95],
      ...(pruner ? { beforeStep: (step: number) => pruner.beforeStep(step), what: 'fine-tuning with gradual pruning' } : {}),
      ...(regrower ? { beforeStep: (step: number) => regrower.beforeStep(step), what: 'fine-tuning with dynamic pruning' } : {}),
      ...(teacher ? { loss: teacherLoss(output.kind, teacher.alpha, teacher.T, teacher.scorer) } : {}),
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
    if (regrower) await regrower.finish();
    const after = settings.candidates ? await evaluateCandidates(trainee, settings.candidates, k) : undefined;
    if (pruning && after) pruning.metric = after;

    const values = new Map<string, Float32Array>();
    for (const [i, v] of trainee.variables.entries()) values.set(trainee.names[i], Float32Array.from((await v.data()) as Float32Array));
    const byName = new Map<string, ModelTensor>(ir.tensors.map((t) => [t.name, t]));
    const changes: TensorChange[] = trainee.names.map((name, i) => {
      const t = byName.get(name)!;
      const entry = { shape: t.shape, dtype: t.dtype, bytes: t.storage.byteLength };
      const scheduled = pruner ?? regrower;
      const zerosNow = scheduled?.last?.masks.has(name) ? values.get(name)!.reduce((n, x) => (x === 0 ? n + 1 : n), 0) : undefined;
      const kept =
        zerosNow !== undefined
          ? `, ${regrower ? 'dynamically' : 'gradually'} pruned: ${zerosNow} of ${t.shape.reduce((a, b) => a * b, 1)} zero`
          : masks === 'keep-zeros' && zeros[i] > 0
            ? `, ${zeros[i]} zeros kept`
            : '';
      return { tensor: name, action: `fine-tuned${kept}`, before: entry, after: [{ name, ...entry, dtype: ir.format === 'onnx' ? t.dtype : 'float32', bytes: ir.format === 'onnx' ? t.storage.byteLength : t.shape.reduce((a, b) => a * b, 1) * 4 }] };
    });
    const notes = [
      `Output: ${output.kind} (${output.reason}); loss: ${lossName(output.kind)}.`,
      `Fine-tuned ${trainee.names.length} tensors (${trainee.params} parameters) for ${epochs} epoch${epochs === 1 ? '' : 's'} of ${sampler.size} rows${pruning ? ` (${pruning.prunedEpochs} of them on the ${pruning.samplesPerEpochPruned} rows kept by sample pruning)` : ''}` +
        (table.implicit ? ` (${table.user.length} positives + ${negatives} sampled negatives each, redrawn per epoch)` : '') +
        `: loss ${result.losses.map((l) => l.toFixed(4)).join(' -> ')}.`,
      ...unusedNegativesNote(table, settings.negatives),
      ...ratingsAsPositivesNote(table, output.kind),
      ...teacherNote(teacher, output.kind),
      `Engine: TF.js tape (${tapeReason}); optimizer: Adam on every variable (dense gradients).`,
      `Training throughput ${Math.round(result.samplesPerSecond)} samples/s on the TF.js '${backend.backend}' backend (${result.seconds.toFixed(1)} s).`,
      pruner
        ? pruner.summary(values)
        : regrower
          ? regrower.summary(values)
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
    const outcome: CompressionOutcome & {
      training: TrainLoopResult & { backend: string; outputKind: OutputSemantics; before?: CandidateMetrics; after?: CandidateMetrics };
      samplePruning?: SamplePruningReport;
    } = {
      method: 'finetune',
      settings: resolved,
      changes,
      notes,
      write: (outPath) => writeTrainedValues(ir, values, outPath),
      training: { ...result, backend: backend.backend, outputKind: output, before, after },
      trainingView: { method: 'finetune', backend: backend.backend, engine: 'tape', outputKind: output.kind, outputKindReason: output.reason, samplesPerSecond: result.samplesPerSecond, seconds: result.seconds, losses: result.losses },
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

/** Fine-tuning on the compiled engine: tables outside the wasm heap, row-wise lazy Adam. */
async function finetuneCompiled(
  ir: ModelIR,
  settings: FinetuneSettings,
  engine: FastEngine,
  read: Awaited<ReturnType<typeof readInteractionTable>>,
  backend: string,
  o: { epochs: number; batchSize: number; lr: number; negatives: number; seed: number },
  gradual: Required<GradualPruningSettings> | undefined,
  sp: ResolvedSamplePruning | undefined,
  teacher: FinetuneTeacher | undefined,
  ctx?: CompressionContext,
): Promise<CompressionOutcome> {
  try {
    const output: OutputSemantics = outputKindByScores(ir, (b) => engine.score(b), read, settings.outputKind);
    const table = trainingTable(read, output.kind);
    const values = engine.values();
    const zeros = new Map<string, number>();
    let pruned = false;
    for (const [name, v] of values) {
      let z = 0;
      for (let j = 0; j < v.length; j++) if (v[j] === 0) z++;
      zeros.set(name, z);
      if (z / Math.max(1, v.length) >= PRUNED_ZERO_SHARE) pruned = true;
    }
    const masks = settings.masks ?? (pruned ? 'keep-zeros' : 'none');
    engine.setKeepZeros(masks === 'keep-zeros');
    // quantization-aware: from here on the forward reads the tables as they will be stored
    const qat = settings.quantAware ? startQuantAware(engine.tables, settings.quantAware) : undefined;
    const k = settings.k ?? 10;
    const resolved = {
      data: settings.data,
      ...o,
      masks,
      outputKind: output.kind,
      engine: 'compiled' as const,
      ...(settings.candidates ? { candidates: settings.candidates, k } : {}),
      ...(gradual ? { gradual } : {}),
      ...(sp ? { samplePruning: sp } : {}),
      ...(teacher ? { teacher: teacher.path, alpha: teacher.alpha, temperature: teacher.T } : {}),
      ...(settings.quantAware ? { quantAware: { dtype: settings.quantAware.dtype, scales: settings.quantAware.scales ?? 'row' } } : {}),
    };
    const score = (b: Parameters<FastEngine['score']>[0]) => engine.score(b);
    const before = settings.candidates ? await evaluateCandidatesWith(score, settings.candidates, k) : undefined;
    const sampler = new EpochSampler(table, o.negatives);
    const batchesPerEpoch = Math.ceil(sampler.size / o.batchSize);
    const pruner = gradual ? new EngineGradualPruner(ir, engine, gradual, batchesPerEpoch, batchesPerEpoch * o.epochs) : undefined;
    const loopOptions = {
      epochs: o.epochs,
      batchSize: o.batchSize,
      lr: o.lr,
      seed: o.seed,
      outputKind: output.kind,
      ctx,
      progressSpan: [0.02, 0.95] as [number, number],
      ...(pruner ? { beforeStep: (step: number) => pruner.beforeStep(step), what: 'fine-tuning with gradual pruning' } : {}),
      // per-column ranges follow the float rows once per epoch
      ...(qat ? { beforeStep: (step: number) => (step > 0 && step % batchesPerEpoch === 0 ? qat.refit() : undefined), what: 'quantization-aware fine-tuning' } : {}),
      ...(teacher ? { lossSeed: distillationSeed(output.kind, teacher.alpha, teacher.T, teacher.scorer.score) } : {}),
    };
    let result: FastLoopResult;
    let pruning: SamplePruningReport | undefined;
    if (sp) {
      // two loops (warm-up on all rows, then the kept ones) with one optimizer state: steps carry on
      const parts: FastLoopResult[] = [];
      const train: TrainRun = async (smp, lo) => {
        const r = await fastTrainLoop(engine, smp, {
          ...loopOptions, epochs: lo.epochs, seed: lo.seed, progressSpan: lo.progressSpan, what: lo.what,
          epochBase: lo.epochBase, epochTotal: lo.epochTotal, stepBase: parts.reduce((a, p) => a + p.steps, 0),
        });
        parts.push(r);
        return r;
      };
      const scored: ScoredModel = { forward: (b) => tf.tensor1d(engine.score(b)) };
      const r = await samplePrunedTraining(train, scored, table, o.negatives, sp, { ...loopOptions, outputKind: output.kind });
      pruning = r.report;
      const sum = (f: (x: FastLoopResult) => number) => parts.reduce((a, p) => a + f(p), 0);
      const trainSeconds = sum((p) => p.trainSeconds);
      result = {
        ...r.training,
        engine: 'compiled',
        trainSeconds,
        samplingSeconds: sum((p) => p.samplingSeconds),
        stepSamplesPerSecond: r.training.samples / Math.max(trainSeconds, 1e-9),
        steps: sum((p) => p.steps),
      };
    } else {
      result = await fastTrainLoop(engine, sampler, loopOptions);
    }
    const after = settings.candidates ? await evaluateCandidatesWith(score, settings.candidates, k) : undefined;
    const byName = new Map<string, ModelTensor>(ir.tensors.map((t) => [t.name, t]));
    const changes: TensorChange[] = [...values.keys()].map((name) => {
      const t = byName.get(name)!;
      const entry = { shape: t.shape, dtype: t.dtype, bytes: t.storage.byteLength };
      const z = zeros.get(name) ?? 0;
      const zerosNow = pruner?.last?.masks.has(name) ? values.get(name)!.reduce((n, x) => (x === 0 ? n + 1 : n), 0) : undefined;
      const kept = zerosNow !== undefined ? `, gradually pruned: ${zerosNow} of ${values.get(name)!.length} zero` : masks === 'keep-zeros' && z > 0 ? `, ${z} zeros kept` : '';
      const layout = qat?.trained.find((x) => x.table === name)?.layout;
      return { tensor: name, action: `fine-tuned${kept}${layout ? `, quantization-aware (${layout}: the values written are the ones it stores)` : ''}`, before: entry, after: [{ name, ...entry, dtype: ir.format === 'onnx' ? t.dtype : 'float32', bytes: ir.format === 'onnx' ? t.storage.byteLength : t.shape.reduce((a, b) => a * b, 1) * 4 }] };
    });
    const touched = engine.tables.map((t) => `${t.name} ${t.touchedRows.toLocaleString('en-US')} of ${t.rows.toLocaleString('en-US')}`).join(', ');
    const notes = [
      `Output: ${output.kind} (${output.reason}); loss: ${lossName(output.kind)}.`,
      `Fine-tuned ${values.size} tensors (${engine.params} parameters) for ${o.epochs} epoch${o.epochs === 1 ? '' : 's'} of ${sampler.size} rows${pruning ? ` (${pruning.prunedEpochs} of them on the ${pruning.samplesPerEpochPruned} rows kept by sample pruning)` : ''}` +
        (table.implicit ? ` (${table.user.length} positives + ${o.negatives} sampled negatives each, redrawn per epoch)` : '') +
        `: loss ${result.losses.map((l) => l.toFixed(4)).join(' -> ')}.`,
      ...unusedNegativesNote(table, settings.negatives),
      ...ratingsAsPositivesNote(table, output.kind),
      ...teacherNote(teacher, output.kind),
      ...quantAwareNotes(qat, settings.quantAware),
      `Engine: compiled (${engine.describe()}): forward and hand-written backward as direct TF.js '${backend}' kernels, embedding rows gathered and scatter-added outside the wasm heap.`,
      `Optimizer: ${optimizerSummary(engine)}.` +
        (pruner
          ? ` Touched rows: ${touched}; gradual pruning masks whole tables, so untouched rows may be zeroed.`
          : qat?.trained.length
            ? ` Touched rows: ${touched}; every row of a quantization-aware table, touched or not, holds its stored form.`
            : ` Touched rows: ${touched}; the rows no batch touched are unchanged, bit for bit.`),
      `Training throughput ${Math.round(result.samplesPerSecond)} samples/s overall, ${Math.round(result.stepSamplesPerSecond)} samples/s in the optimizer steps (${result.seconds.toFixed(1)} s, of which ${result.samplingSeconds.toFixed(1)} s negative sampling).`,
      pruner
        ? pruner.summary(values)
        : masks === 'keep-zeros'
          ? `Masks kept: the ${[...zeros.values()].reduce((a, b) => a + b, 0)} weights that were exactly zero are zero after every optimizer step, so the sparsity is unchanged.`
          : 'No masks: every weight was free to change (zeros may have become non-zero).',
      ir.format === 'onnx' ? 'Only initializer values changed; the file structure is untouched.' : 'Only weight values changed; model.json keeps its topology.',
    ];
    if (before && after) notes.push(`On ${settings.candidates}: NDCG@${k} ${before.ndcg.toFixed(4)} -> ${after.ndcg.toFixed(4)}, HR@${k} ${before.hr.toFixed(4)} -> ${after.hr.toFixed(4)}.`);
    if (pruning && after) pruning.metric = after;
    if (pruning) notes.push(...samplePruningNotes(pruning, k));
    ctx?.onProgress?.(1, 'fine-tuned');
    const outcome: CompressionOutcome & {
      samplePruning?: SamplePruningReport;
      training: FastLoopResult & { backend: string; outputKind: OutputSemantics; optimizer: string; before?: CandidateMetrics; after?: CandidateMetrics };
    } = {
      method: 'finetune',
      settings: resolved,
      changes,
      notes,
      write: writeOnceThenCopy(ir, values),
      training: { ...result, backend, outputKind: output, optimizer: optimizerSummary(engine), before, after },
      trainingView: { method: 'finetune', backend, engine: 'compiled', outputKind: output.kind, outputKindReason: output.reason, samplesPerSecond: result.samplesPerSecond, seconds: result.seconds, losses: result.losses },
      ...(pruning ? { samplePruning: pruning } : {}),
    };
    return outcome;
  } finally {
    engine.dispose();
  }
}

function quantAwareNotes(qat: QuantAwareRun | undefined, s: QuantAwareSettings | undefined): string[] {
  if (!qat || !s) return [];
  const scales = s.scales ?? 'row';
  const perColumn = qat.trained.some((t) => t.layout.endsWith('per column'));
  const out = [
    `Quantization-aware (${s.dtype}, scales ${scales}): ${qat.trained.map((t) => `${t.table} (${t.layout})`).join(', ') || 'no table'} trained through the rounding: ` +
      'the optimizer updated float rows, the forward read each row as it will be stored, and the gradient passed straight through. ' +
      `The tables written hold the stored values, for \`quantize --dtype ${s.dtype}${scales === 'column' ? ' --scales column' : ''}\`` +
      (perColumn ? ' (which fits per-column ranges again, so they may round once more).' : ', which stores them with no further rounding.'),
  ];
  for (const l of qat.left) out.push(`Left in float (not quantization-aware): ${l.table} (${l.reason}).`);
  return out;
}

/**
 * A write that releases the trained values after the first call: the tables can be most of
 * memory, and what runs next (analysis, ONNX Runtime sessions of both models) needs it. A second
 * write copies the first output. A function of its own so that the closure holds nothing else
 * of the training (V8 closures keep their whole enclosing scope alive).
 */
function writeOnceThenCopy(ir: ModelIR, initial: Map<string, Float32Array>): (outPath: string) => Promise<void> {
  const state: { held?: Map<string, Float32Array>; firstOut?: string } = { held: initial };
  return async (outPath) => {
    if (state.held) {
      await writeTrainedValues(ir, state.held, outPath);
      state.held = undefined;
      state.firstOut = outPath;
      return;
    }
    const again = await readModel(state.firstOut!).catch((e: unknown) => {
      throw new Error(`finetune: the trained values were written to ${state.firstOut} and released; that file cannot be read back (${(e as Error).message})`);
    });
    await writeTrainedValues(again, new Map(), outPath);
  };
}
