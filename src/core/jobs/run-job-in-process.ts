// The body of every job, independent of where it runs: the worker thread calls it, and so can a
// test. It reports progress with an ETA and honours an AbortSignal between chunks of work.

import { isFloatDtype } from '../model/dtype.js';
import { valueCount } from '../model/codes-data.js';
import { readModel } from '../model/read-model.js';
import { analyzeModel } from '../analysis/analyze-model.js';
import { buildGraphView } from '../analysis/graph-view.js';
import { forEachTensorChunk } from '../model/tensor-data.js';
import { initTfjs } from '../runtime/tfjs-backend.js';
import { checkCandidatesFile, compareModels, parameterCount, type ComparisonReport } from '../eval/evaluate.js';
import { modelSizeOfIR } from '../eval/size.js';
import type { CompressionContext, CompressionOutcome, SensitivityMemo } from '../compress/types.js';
import type { ModelIR } from '../model/ir.js';
import type { ModelReport } from '../../shared/report.js';
import type { ComparisonView, CompressJobResult, ModelScan, SensitivityView, TreeEnsembleView, TreeFeaturesResult, TreeRemovalResult, TreesView } from '../../shared/protocol.js';
import { sensitivityAnalysis } from '../compress/sensitivity.js';
import type { BackendInfo, CompareJobSpec, CompressJobSpec, CompressStep, JobProgress, JobSpec, TreeFeaturesJobSpec, TreeRemovalJobSpec } from './job-types.js';
import { commitOutput, checkOutputFree, makeTempDir, removeTemp, writingTo } from './output-files.js';
import { runMethodStep } from '../compress/registry.js';
import { runCompressPlanJob } from './compress-plan-job.js';
import { checkedSettings } from '../compress/method-settings.js';
import { listTreeEnsembles, readTreeEnsemble, writeReplacedTreeEnsemble } from '../trees/onnx-trees.js';
import { pruneFeatures, pruneTrees, honestSplit, type LabeledRows } from '../trees/tree-prune.js';
import { readTreeCsv } from '../trees/tree-data.js';
import { validationLabels } from '../trees/tree-metric.js';
import { ModelFileError } from '../model/ir.js';
import { stat } from 'node:fs/promises';
import { analyzeTreeEnsemble } from '../trees/tree-analysis.js';
import { maxFeature, nodeDepths, reachableNodes, type TreeEnsemble } from '../trees/tree-model.js';
import { mkdir, rename, rm } from 'node:fs/promises';
import { writeOnnxModel } from '../model/onnx/write.js';
import { basename, dirname, join, resolve } from 'node:path';

/** Per-tree depth, leaves and nodes (reachable from the root), in file order. */
function perTreeShape(e: TreeEnsemble): Array<{ depth: number; leaves: number; nodes: number }> {
  return e.trees.map((t) => {
    const d = nodeDepths(t);
    let depth = 0, leaves = 0;
    const reach = reachableNodes(t);
    for (const i of reach) {
      depth = Math.max(depth, d[i]);
      if (!t.nodes[i].split) leaves++;
    }
    return { depth, leaves, nodes: reach.length };
  });
}

function histogramPairs(h: Record<number, number>): Array<[number, number]> {
  return Object.entries(h)
    .map(([k, v]): [number, number] => [Number(k), v])
    .sort((a, b) => a[0] - b[0]);
}

async function runTreesJob(path: string, signal: AbortSignal, report: Report): Promise<TreesView> {
  report('reading', 0);
  const ir = await readModel(path, { signal });
  signal.throwIfAborted();
  // TF.js models hold no ONNX-ML ops: nothing to list
  if (ir.format !== 'onnx') return { model: path, ensembles: [] };
  const refs = listTreeEnsembles(ir);
  const ensembles: TreeEnsembleView[] = [];
  for (const [k, ref] of refs.entries()) {
    report('analysing trees', 0.1 + (0.9 * k) / refs.length, ref.name);
    // unnamed nodes cannot be picked by name: only the first tree node is read then
    const { ensemble } = readTreeEnsemble(ir, ref.name || undefined);
    const input = ir.graph.inputs.find((i) => i.name === ref.inputs[0]);
    const d = input?.shape?.[1];
    const a = analyzeTreeEnsemble(ensemble, { features: typeof d === 'number' && d > 0 ? d : undefined });
    ensembles.push({
      node: ref.name,
      op: a.op,
      trees: a.trees,
      nodes: a.nodes,
      leaves: a.leaves,
      features: a.features,
      hasCover: a.hasCover,
      depthHistogram: histogramPairs(a.depth.histogram),
      leavesHistogram: histogramPairs(a.leavesPerTree.histogram),
      perTree: perTreeShape(ensemble),
      importance: a.importance.map((f) => ({ feature: f.feature, splits: f.splits, cover: f.cover, gain: f.gain, rank: f.rank })),
      rankedBy: a.rankedBy,
      unusedFeatures: a.unusedFeatures,
      notes: a.notes,
    });
    signal.throwIfAborted();
  }
  report('done', 1);
  return { model: path, ensembles };
}

async function runTreeFeaturesJob(spec: TreeFeaturesJobSpec, signal: AbortSignal, report: Report): Promise<TreeFeaturesResult> {
  const overwrite = spec.overwrite === true;
  await checkOutputFree(spec.outPath, 'onnx', overwrite, spec.path);
  report('reading', 0);
  const ir = await readModel(spec.path, { signal });
  if (ir.format !== 'onnx') throw new ModelFileError(spec.path, 'tree ensembles are ai.onnx.ml ops: this is not an ONNX model');
  const { ref, ensemble } = readTreeEnsemble(ir, spec.node || undefined);
  const input = ir.graph.inputs.find((i) => i.name === ref.inputs[0]);
  const d = input?.shape?.[1];
  const nFeatures = Math.max(typeof d === 'number' && d > 0 ? d : 0, maxFeature(ensemble) + 1);
  const bad = spec.features.find((f) => !Number.isInteger(f) || f < 0 || f >= nFeatures);
  if (bad !== undefined) throw new ModelFileError(spec.path, `has no input feature ${bad} (the trees read ${nFeatures} features)`);
  signal.throwIfAborted();
  report('collapsing splits', 0.3);
  const r = pruneFeatures(ensemble, { features: spec.features, nFeatures });
  report('writing', 0.9);
  const bytes = await writeTreeJobOutput(ir, ref, r.ensemble, spec, overwrite, signal);
  report('done', 1);
  return {
    model: spec.path,
    outPath: spec.outPath,
    node: ref.name,
    removedFeatures: r.removedFeatures ?? spec.features.slice().sort((a, b) => a - b),
    becameUnused: r.becameUnused ?? [],
    before: { trees: r.before.trees, nodes: r.before.nodes, leaves: r.before.leaves, bytes: bytes.before },
    after: { trees: r.after.trees, nodes: r.after.nodes, leaves: r.after.leaves, bytes: bytes.after },
  };
}

/**
 * Writes a tree job's ensemble into its temp folder and renames it into place (a full disk or a
 * permission error names the output); the sizes on disk before and after.
 */
async function writeTreeJobOutput(
  ir: ModelIR,
  ref: Parameters<typeof writeReplacedTreeEnsemble>[1],
  ensemble: Parameters<typeof writeReplacedTreeEnsemble>[2],
  spec: { path: string; outPath: string; tempDir: string },
  overwrite: boolean,
  signal: AbortSignal,
): Promise<{ before: number; after: number }> {
  await makeTempDir(spec.tempDir, spec.outPath);
  try {
    await writingTo(spec.outPath, () => writeReplacedTreeEnsemble(ir, ref, ensemble, join(spec.tempDir, basename(spec.outPath))));
    signal.throwIfAborted();
    await writingTo(spec.outPath, () => commitOutput(spec.tempDir, spec.outPath, 'onnx', overwrite, spec.path));
  } finally {
    await removeTemp(spec.tempDir);
  }
  return { before: (await stat(spec.path)).size, after: (await stat(spec.outPath)).size };
}

/** Seed of the tuning / held-out split of the validation rows: the CLI's, so both choose the same trees. */
export { TUNING_SPLIT_SEED as TREE_REMOVAL_SPLIT_SEED } from '../trees/tree-prune.js';

/**
 * Removes a share of the trees (as `prunescope trees --prune drop=F`): chooses on a seeded half of
 * the data and reports on the other half, or on all of it and reports on the test file.
 */
async function runTreeRemovalJob(spec: TreeRemovalJobSpec, signal: AbortSignal, report: Report): Promise<TreeRemovalResult> {
  const overwrite = spec.overwrite === true;
  if (!(spec.fraction > 0 && spec.fraction < 1)) throw new Error(`the share of trees to remove must be in (0, 1), got ${spec.fraction}`);
  await checkOutputFree(spec.outPath, 'onnx', overwrite, spec.path);
  report('reading', 0);
  const ir = await readModel(spec.path, { signal });
  if (ir.format !== 'onnx') throw new ModelFileError(spec.path, 'tree ensembles are ai.onnx.ml ops: this is not an ONNX model');
  const { ref, ensemble } = readTreeEnsemble(ir, spec.node || undefined);
  const input = ir.graph.inputs.find((i) => i.name === ref.inputs[0]);
  const d = input?.shape?.[1];
  const declared = typeof d === 'number' && d > 0 ? d : undefined;
  const checkColumns = (file: string, rows: LabeledRows): void => {
    if (declared !== undefined && rows.X.features !== declared) throw new ModelFileError(file, `has ${rows.X.features} feature columns, the model's input has ${declared}`);
    if (rows.X.features <= maxFeature(ensemble)) throw new ModelFileError(file, `has ${rows.X.features} feature columns, but the trees split on feature ${maxFeature(ensemble)}`);
  };
  report('reading the validation rows', 0.05, basename(spec.data));
  const read = await readTreeCsv(spec.data);
  checkColumns(spec.data, read);
  const data: LabeledRows = { ...read, labels: validationLabels(ensemble, read.labels, spec.data) };
  signal.throwIfAborted();
  let test: { rows: LabeledRows; name: string } | undefined;
  if (spec.test) {
    const rows = await readTreeCsv(spec.test);
    checkColumns(spec.test, rows);
    test = { rows: { ...rows, labels: validationLabels(ensemble, rows.labels, spec.test) }, name: basename(spec.test) };
  }
  const { tuning, heldOut, selection } = honestSplit(data, basename(spec.data), test);
  signal.throwIfAborted();
  report('choosing trees to remove', 0.15, `${Math.round(spec.fraction * ensemble.trees.length)} of ${ensemble.trees.length}`);
  const r = pruneTrees(ensemble, tuning, { dropFraction: spec.fraction, tolerance: spec.tolerance, heldOut });
  signal.throwIfAborted();
  if (!r.tuning || !r.heldOut) throw new Error('tree removal returned no tuning or held-out score');
  report('writing', 0.9);
  const bytes = await writeTreeJobOutput(ir, ref, r.ensemble, spec, overwrite, signal);
  report('done', 1);
  return {
    model: spec.path,
    outPath: spec.outPath,
    node: ref.name,
    data: spec.data,
    selection,
    fraction: spec.fraction,
    droppedTrees: r.droppedTrees ?? [],
    ...(r.baseValues ? { baseValues: r.baseValues } : {}),
    tuning: r.tuning,
    heldOut: r.heldOut,
    before: { trees: r.before.trees, nodes: r.before.nodes, leaves: r.before.leaves, bytes: bytes.before },
    after: { trees: r.after.trees, nodes: r.after.nodes, leaves: r.after.leaves, bytes: bytes.after },
    notes: r.notes,
  };
}

type Report = (phase: string, fraction: number, detail?: string) => void;

export async function runJobInProcess(
  spec: JobSpec,
  signal: AbortSignal,
  onProgress: (p: JobProgress) => void,
): Promise<unknown> {
  const start = Date.now();
  const report: Report = (phase, fraction, detail) => {
    const elapsed = (Date.now() - start) / 1000;
    const etaSeconds = fraction > 0.02 && fraction < 1 ? (elapsed / fraction) * (1 - fraction) : null;
    onProgress({ phase, fraction, detail, etaSeconds });
  };
  switch (spec.kind) {
    case 'analyze': {
      report('reading', 0);
      const ir = await readModel(spec.path, { signal, onProgress: (f) => report('reading', 0.1 * f) });
      signal.throwIfAborted();
      return analyzeModel(ir, {
        epsilon: spec.epsilon,
        spectrum: spec.spectrum,
        signal,
        onProgress: (p) => report('analysing', 0.1 + 0.9 * p.fraction, p.tensor),
      });
    }
    case 'scan':
      return scanModel(spec.path, signal, report);
    case 'graph': {
      report('reading', 0);
      const ir = await readModel(spec.path, { signal });
      return buildGraphView(ir, spec.report);
    }
    case 'backend': {
      const choice = await initTfjs(spec.prefer ?? 'auto');
      return { backend: choice.backend, reason: choice.reason } satisfies BackendInfo;
    }
    case 'compress':
      return runCompressJob(spec, signal, report);
    case 'compress-plan':
      return runCompressPlanJob(spec, signal, report);
    case 'trees':
      return runTreesJob(spec.path, signal, report);
    case 'tree-features':
      return runTreeFeaturesJob(spec, signal, report);
    case 'tree-remove':
      return runTreeRemovalJob(spec, signal, report);
    case 'compare':
      return runCompareJob(spec, signal, report);
    case 'sensitivity': {
      report('reading', 0);
      const ir = await readModel(spec.path, { signal });
      const r = await sensitivityAnalysis(
        ir,
        { candidates: spec.candidates, k: spec.k, sparsities: spec.sparsities, budget: spec.budget, metric: spec.metric },
        { signal, onProgress: (f, detail) => report('pruning one tensor at a time', 0.02 + 0.97 * f, detail) },
      );
      return {
        model: spec.path,
        metric: r.metric,
        k: r.k,
        budget: r.budget,
        baseline: r.baseline,
        curves: r.rows.map((row) => ({
          layer: row.tensor,
          metric: `${r.metric.toUpperCase()}@${r.k}`,
          points: [{ amount: 0, value: r.metric === 'ndcg' ? r.baseline.ndcg : r.baseline.hr }, ...row.points.map((p) => ({ amount: p.sparsity, value: r.metric === 'ndcg' ? p.ndcg : p.hr }))],
        })),
        proposal: r.proposal,
        alone: Object.fromEntries(r.rows.map((row) => [row.tensor, row.proposed])),
        backoffs: r.backoffs,
        combined: r.combined,
        seconds: r.seconds,
      } satisfies SensitivityView;
    }
    default:
      throw new Error(`unknown job kind ${(spec as { kind: string }).kind}`);
  }
}

/** Parameter counts and exact zeros, streamed tensor by tensor (no statistics, no tiles). */
async function scanModel(path: string, signal: AbortSignal, report: Report): Promise<ModelScan> {
  report('reading', 0);
  const ir = await readModel(path, { signal });
  let totalParams = 0;
  let trainableParams = 0;
  let zeros = 0;
  const trainable = ir.tensors.filter((t) => t.trainable);
  for (const t of ir.tensors) totalParams += valueCount(t);
  for (const [i, t] of trainable.entries()) {
    signal.throwIfAborted();
    report('counting', i / Math.max(1, trainable.length), t.name);
    trainableParams += valueCount(t);
    if (!isFloatDtype(t.dtype)) continue;
    await forEachTensorChunk(t, 1 << 20, (chunk) => {
      for (let j = 0; j < chunk.length; j++) if (chunk[j] === 0) zeros++;
    });
  }
  const largest = trainable
    .map((t) => ({ name: t.name, params: valueCount(t) }))
    .sort((a, b) => b.params - a.params)
    .slice(0, 8);
  // tree ensembles keep their trees in attributes, not tensors: counted apart
  let trees: number | undefined;
  if (ir.format === 'onnx') {
    const refs = listTreeEnsembles(ir);
    if (refs.length) trees = refs.reduce((n, ref) => n + readTreeEnsemble(ir, ref.name || undefined).ensemble.trees.length, 0);
  }
  return {
    ...(trees !== undefined ? { trees } : {}),
    format: ir.format,
    path: ir.path,
    fileBytes: ir.files.reduce((s, f) => s + f.bytes, 0),
    totalParams,
    trainableParams,
    zeros,
    tensors: ir.tensors.length,
    largest,
  };
}

/** Runs one method through the registry: settings checked (a SettingsError names the setting) and job defaults filled in. */
async function runMethod(ir: ModelIR, spec: CompressStep, ctx: CompressionContext): Promise<CompressionOutcome> {
  return runMethodStep(ir, spec, ctx);
}

async function runCompressJob(spec: CompressJobSpec, signal: AbortSignal, report: Report): Promise<CompressJobResult> {
  const t0 = Date.now();
  const format = /\.onnx$/i.test(spec.outPath) ? 'onnx' : 'tfjs';
  if (spec.externalData && format !== 'onnx') throw new Error(`${spec.outPath}: external data is an ONNX layout; a TF.js model keeps its weights in shard files`);
  // Fail before the work, not after it, when the output is taken.
  await checkOutputFree(spec.outPath, format, spec.overwrite === true, spec.path);
  let beforeReport: ModelReport | undefined;
  const steps: CompressStep[] = spec.steps && spec.steps.length > 0 ? spec.steps : [{ method: spec.method, settings: spec.settings }];
  // every step's settings are checked before any work: a bad step 2 must not fail after step 1 ran
  for (const step of steps) checkedSettings(step.method, step.settings);
  report('reading', 0);
  // let go of (set to undefined) once the original is analysed: a one-file ONNX model holds its
  // whole file in memory, and the output is read next
  let ir: ModelIR | undefined = await readModel(spec.path, { signal, onProgress: (f) => report('reading', 0.05 * f) });
  signal.throwIfAborted();
  // a bad candidates file stops the job now, not as a note beside a model never evaluated;
  // one that came from a workspace setting (for some model) and does not fit this one is left out
  const dataNotes: string[] = [];
  if (spec.evaluate?.candidates) {
    try {
      await checkCandidatesFile(ir, spec.evaluate.candidates);
    } catch (e) {
      if (!spec.evaluate.candidatesFromSetting || !(e instanceof ModelFileError)) throw e;
      dataNotes.push(`No HR/NDCG before and after: the candidates file of the prunescope.datasetPath setting does not fit this model (${e.message}); size and latency are compared.`);
      spec = { ...spec, evaluate: { ...spec.evaluate, candidates: undefined } };
    }
  }
  await makeTempDir(spec.tempDir, spec.outPath);
  // The model is written, analysed and evaluated in the temp folder and renamed into place only
  // at the very end: a job cancelled or failed at any point leaves no output behind.
  const tempOut = join(spec.tempDir, basename(spec.outPath));
  let outputFiles: string[];
  let after: ModelReport;
  let comparison: ComparisonView;
  const changes: CompressJobResult['changes'] = [];
  const notes: string[] = [];
  const training: NonNullable<CompressJobResult['training']> = [];
  const applied: Array<{ method: string; settings: Record<string, unknown> }> = [];
  try {
    let current: ModelIR | undefined = ir;
    // what an output-aware quantize step measured, for the quantize steps right after it (types.ts)
    let sensitivity: SensitivityMemo = {};
    for (const [i, step] of steps.entries()) {
      const span = 0.5 / steps.length;
      const label = steps.length > 1 ? `${step.method} (step ${i + 1} of ${steps.length})` : step.method;
      if (step.method !== 'quantize') sensitivity = {};
      const outcome = await runMethod(current, step, {
        signal,
        onProgress: (f, detail) => report(label, 0.05 + span * i + span * 0.8 * f, detail),
        sensitivity,
      }).catch((e: unknown) => {
        // a later step reads the model the earlier steps left in the temp folder: the error names
        // the user's model and the step, not a file the user never sees
        if (i > 0 && e instanceof ModelFileError && e.file === current?.path) {
          throw new ModelFileError(spec.path, `step ${i + 1} of ${steps.length} (${step.method}), on the model as ${i === 1 ? 'step 1' : `steps 1-${i}`} left it: ${e.reason}`, { cause: e });
        }
        throw e;
      });
      signal.throwIfAborted();
      report('writing', 0.05 + span * (i + 0.8), label);
      // intermediate steps go to their own sub-folder of the temp folder (TF.js owns its folder)
      const stepOut = i === steps.length - 1 ? tempOut : join(spec.tempDir, `step-${i + 1}`, basename(spec.outPath));
      await mkdir(dirname(stepOut), { recursive: true });
      // a full disk or a permission error names the output, not a temp file
      await writingTo(spec.outPath, () => outcome.write(stepOut));
      applied.push({ method: outcome.method, settings: outcome.settings });
      for (const c of outcome.changes) {
        changes.push({
          tensor: c.tensor,
          action: steps.length > 1 ? `${outcome.method}: ${c.action}` : c.action,
          beforeShape: c.before.shape,
          beforeBytes: c.before.bytes,
          after: c.after.map((a) => ({ name: a.name, shape: a.shape, bytes: a.bytes })),
        });
      }
      // steps of one method say the same general sentence each: once is enough
      for (const n of outcome.notes) if (!notes.includes(n)) notes.push(n);
      if (outcome.trainingView) training.push(outcome.trainingView);
      signal.throwIfAborted();
      if (i < steps.length - 1) current = await readModel(stepOut, { signal });
    }
    current = undefined;
    for (let i = 1; i < steps.length; i++) await rm(join(spec.tempDir, `step-${i}`), { recursive: true, force: true });
    report('analysing', 0.6, 'original');
    const before = await analyzeModel(ir, { epsilon: spec.epsilon, spectrum: true, signal });
    const beforeFacts = sizeFacts(ir);
    ir = undefined;
    if (spec.externalData) {
      // after the original is let go: the output is read whole to be written again
      report('writing', 0.66, 'external data');
      await writingTo(spec.outPath, () => relayoutExternal(tempOut, spec.tempDir, signal));
    }
    report('analysing', 0.68, 'compressed');
    const afterIr = await readModel(tempOut, { signal });
    after = await analyzeModel(afterIr, { epsilon: spec.epsilon, spectrum: true, signal });
    after.path = spec.outPath;
    signal.throwIfAborted();
    report('evaluating', 0.75);
    comparison = await compare(spec, tempOut, beforeFacts, sizeFacts(afterIr));
    signal.throwIfAborted();
  report('renaming', 0.99);
    outputFiles = await writingTo(spec.outPath, () => commitOutput(spec.tempDir, spec.outPath, format, spec.overwrite === true, spec.path));
    beforeReport = before;
  } finally {
    await removeTemp(spec.tempDir);
  }
  report('done', 1);
  return {
    method: applied.map((a) => a.method).join(' + '),
    settings: applied.length === 1 ? applied[0].settings : { steps: applied },
    original: spec.path,
    output: spec.outPath,
    outputFiles,
    changes,
    notes: [...notes, ...dataNotes],
    ...(training.length ? { training } : {}),
    comparison,
    before: beforeReport as ModelReport,
    after,
    seconds: (Date.now() - t0) / 1000,
  };
}

const finite = (x: number | undefined | null): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);

/**
 * Rewrites the ONNX model at `file` (in the job's temp folder) with its tensors of 1 KiB or more
 * in `<file>.data`: written beside it in a sub-folder, then moved over it, the old data file (if
 * any) removed first. Tensor bytes are copied as stored (the model read, then streamed out).
 */
async function relayoutExternal(file: string, tempDir: string, signal: AbortSignal): Promise<void> {
  const staged = join(tempDir, 'external-data', basename(file));
  await mkdir(dirname(staged), { recursive: true });
  await writeOnnxModel(await readModel(file, { signal }), staged, { externalData: { fileName: `${basename(file)}.data`, minBytes: 1024 } });
  signal.throwIfAborted();
  await rm(file, { force: true });
  await rm(`${file}.data`, { force: true });
  await rename(staged, file);
  await rename(`${staged}.data`, `${file}.data`).catch((e: NodeJS.ErrnoException) => {
    // a model without a tensor of 1 KiB has no data file to move
    if (e.code !== 'ENOENT') throw e;
  });
  await rm(dirname(staged), { recursive: true, force: true });
}

/** What the size comparison needs of a model: its files and parameter count, not its weights. */
interface SizeFacts {
  files: ModelIR['files'];
  params: number;
}

function sizeFacts(ir: ModelIR): SizeFacts {
  return { files: ir.files, params: parameterCount(ir) };
}

/** The before/after figures: accuracy and latency when the models can be run, sizes always. */
async function compare(spec: CompressJobSpec, afterPath: string, before: SizeFacts, after: SizeFacts): Promise<ComparisonView> {
  if (spec.evaluate === undefined) return sizeComparison(before, after, 10);
  return compareRun(spec.path, afterPath, before, after, spec.evaluate);
}

async function compareRun(
  beforePath: string,
  afterPath: string,
  beforeFacts: SizeFacts,
  afterFacts: SizeFacts,
  ev: { candidates?: string; k?: number; latency?: boolean; candidatesFromSetting?: boolean },
): Promise<ComparisonView> {
  const k = ev.k ?? 10;
  if (!ev.candidates && ev.latency === false) return sizeComparison(beforeFacts, afterFacts, k);
  try {
    const r = await compareModels(beforePath, afterPath, {
      candidates: ev.candidates,
      k,
      // two batch sizes, half a second each: enough for a p50 in a job the user waits for
      latency: ev.latency === false ? false : { batchSizes: [1, 256], maxSecondsPerBatch: 0.5, runs: 20 },
    });
    return comparisonView(r, ev.candidates);
  } catch (e) {
    // the candidates themselves are wrong: the job fails (nothing is written), as eval does
    if (e instanceof ModelFileError && ev.candidates && resolve(e.file) === resolve(ev.candidates)) throw e;
    // candidates given for this job: a check asked for that cannot run fails the job (a script
    // gating on it must not pass); the editor's default file (a setting) only loses its figures
    if (ev.candidates && !ev.candidatesFromSetting) {
      throw new Error(`the accuracy check on ${ev.candidates} could not run, so nothing was written (without --candidates the model is written unchecked): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const sizes = await sizeComparison(beforeFacts, afterFacts, k, `The models could not be run for accuracy and latency: ${e instanceof Error ? e.message : String(e)}`);
    return sizes;
  }
}

/** Sizes only; `why` says why accuracy and latency were not measured (default: no candidates were given). */
async function sizeComparison(before: SizeFacts, after: SizeFacts, k: number, why?: string): Promise<ComparisonView> {
  // the IRs the job read list the files: no second read of either model
  const [b, a] = await Promise.all([modelSizeOfIR(before), modelSizeOfIR(after)]);
  return {
    k,
    params: { before: before.params, after: after.params },
    bytes: { before: b.bytes, after: a.bytes },
    gzipBytes: { before: b.gzipBytes, after: a.gzipBytes },
    latency: [],
    summary: [
      `Size on disk: ${b.bytes} -> ${a.bytes} bytes; gzip: ${b.gzipBytes} -> ${a.gzipBytes} bytes${b.gzipEstimated || a.gzipEstimated ? ` (estimated from 64 MiB sampled per file above 64 MiB)` : ''}.`,
      why ??
        'Accuracy and latency were not measured: no candidates CSV (user,item,label) was given. Give one to measure HR@K, NDCG@K and AUC: --candidates on the command line, the prunescope.datasetPath setting in the editor.',
    ],
  };
}

function comparisonView(r: ComparisonReport, dataset: string | undefined): ComparisonView {
  const pair = (c: { before: number; after: number } | undefined) => (c ? { before: finite(c.before), after: finite(c.after) } : undefined);
  return {
    k: r.before.k,
    params: { before: r.params.before, after: r.params.after },
    bytes: { before: r.bytes.before, after: r.bytes.after },
    gzipBytes: { before: r.gzipBytes.before, after: r.gzipBytes.after },
    hr: pair(r.hr),
    ndcg: pair(r.ndcg),
    auc: pair(r.auc),
    latency: r.latency
      .filter((l) => Number.isFinite(l.p50Ms.before) && Number.isFinite(l.p50Ms.after))
      .map((l) => ({
        batch: l.batch,
        p50Before: l.p50Ms.before,
        p50After: l.p50Ms.after,
        withinNoise: l.withinNoise,
        ...(l.pairedRatio !== undefined ? { pairedRatio: l.pairedRatio } : {}),
      })),
    runtime: r.before.runtime,
    dataset,
    summary: r.summary,
  };
}

async function runCompareJob(spec: CompareJobSpec, signal: AbortSignal, report: Report): Promise<CompressJobResult> {
  const t0 = Date.now();
  report('reading', 0);
  const beforeIr = await readModel(spec.before, { signal });
  const afterIr = await readModel(spec.after, { signal });
  report('analysing', 0.1, 'first model');
  const before = await analyzeModel(beforeIr, { epsilon: spec.epsilon, spectrum: true, signal });
  report('analysing', 0.3, 'second model');
  const after = await analyzeModel(afterIr, { epsilon: spec.epsilon, spectrum: true, signal });
  signal.throwIfAborted();
  report('evaluating', 0.5);
  const comparison = await compareRun(spec.before, spec.after, sizeFacts(beforeIr), sizeFacts(afterIr), { candidates: spec.candidates, k: spec.k, latency: spec.latency });
  report('done', 1);
  return {
    method: 'compare',
    settings: {},
    original: spec.before,
    output: spec.after,
    outputFiles: afterIr.files.map((f) => f.path),
    changes: [],
    notes: [],
    comparison,
    before,
    after,
    seconds: (Date.now() - t0) / 1000,
  };
}
