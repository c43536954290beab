// One honest evaluation of a model file: accuracy on the user's candidates / interactions,
// size on disk and gzip size, optionally latency; and the before/after comparison of two
// models that says plainly when a compression bought no speed.

import { formatPairedRatio } from '../../shared/format.js';
import { valueCount } from '../model/codes-data.js';
import { graphOutputFinding } from '../compress/train/output-kind.js';
import { ModelFileError, ModelIR, type ModelTensor } from '../model/ir.js';
import { detectModelFormat, readModel } from '../model/read-model.js';
import { initTfjs, TfjsBackendPreference } from '../runtime/tfjs-backend.js';
import { ExecutionProviderReport, OrtEpPreference } from '../runtime/ort-providers.js';
import { columnInputs, extraColumnsFor, InputNameOptions, ScoreBatch } from './input-binding.js';
import { fieldsMatrix, InteractionColumnNames, InteractionTable, readInteractions } from './interactions.js';
import { LatencyOptions, LatencyReport, measureLatency, measurePairedLatency, pairedVerdict, type PairedLatency } from './latency.js';
import { auc, candidateRanking, chanceRanking, isBinary, logloss, mae, positivesRepeatedAsNegatives, rmse } from './metrics.js';
import { openOrtScorer, Scorer } from './ort-runner.js';
import { modelSizeOfIR, ModelSize } from './size.js';
import { openTfjsScorer } from './tfjs-runner.js';
import { fieldColumns, tablesNamedAfter } from '../model/field-columns.js';
import { TFJS_ROW_REMAP_LAYER } from '../model/tfjs.js';

export interface ScorerOptions extends InputNameOptions {
  /** TF.js backend; default 'auto' */
  backend?: TfjsBackendPreference;
  /** ORT intra-op threads */
  threads?: number;
  /** ORT execution provider for ONNX models (cpu / webgpu / cuda / auto); default PRUNESCOPE_EP, else CPU */
  ep?: OrtEpPreference;
}

/** Opens the runner that fits the file: ONNX -> onnxruntime-node, model.json -> TF.js. */
export async function openScorer(path: string, opts: ScorerOptions = {}): Promise<Scorer> {
  const format = await detectModelFormat(path);
  return format === 'onnx' ? openOrtScorer(path, opts) : openTfjsScorer(path, opts);
}

/** Scores of every row of `batch` with the model at `path` (opened, used, closed). */
export async function scoreModel(path: string, batch: ScoreBatch, opts: ScorerOptions & { batchSize?: number } = {}): Promise<Float32Array> {
  const scorer = await openScorer(path, opts);
  try {
    return await scorer.score(batch, opts.batchSize);
  } finally {
    await scorer.close();
  }
}

export interface ModelVocab {
  user?: number;
  item?: number;
  /** rows of the tables named after a field column: `<column>_embedding`, `<column>_linear`, `<column>/...` */
  ofColumn(column: string): number | undefined;
}

/**
 * The id ranges latency batches draw from: the model's user and item tables, and for a fields
 * input user, item, then ids 0 only for the extra fields (their vocabularies are not known from
 * names).
 */
export function latencyIdRanges(scorer: Scorer, vocab: { user?: number; item?: number }): Pick<LatencyOptions, 'userVocab' | 'itemVocab' | 'fieldVocab'> {
  const fieldsInput = scorer.inputs.find((i) => i.role === 'fields');
  const columns = columnInputs(scorer.inputs).length;
  const F = fieldsInput && typeof fieldsInput.shape[1] === 'number' ? fieldsInput.shape[1] : columns > 0 ? 2 + columns : 0;
  return {
    userVocab: vocab.user,
    itemVocab: vocab.item,
    fieldVocab: F > 0 ? [vocab.user ?? 1, vocab.item ?? 1, ...new Array<number>(Math.max(0, F - 2)).fill(1)] : undefined,
  };
}

/**
 * Embedding rows reachable by user / item ids, from the tensors' names: the largest table (or
 * 1-D id-remap table consumed by a Gather) whose name contains "user" / "item". Largest, because
 * a row-pruned model keeps a remap table of the full vocabulary in front of a smaller table.
 */
export function modelVocab(ir: ModelIR): ModelVocab {
  const tables = ir.tensors.filter((t) => t.role === 'embedding' && t.shape.length === 2);
  const reach = remappedRows(ir);
  // a table stored [dim, ids] (gathered on axis 1) has its ids along shape[1]
  const rowsOf = (t: ModelTensor) => Math.max(t.shape[t.transposed ? 1 : 0], reach.get(t.name) ?? 0);
  const out: ModelVocab = {
    ofColumn(column: string): number | undefined {
      const named = tablesNamedAfter(tables, column);
      return named.length > 0 ? Math.max(...named.map(rowsOf)) : undefined;
    },
  };
  for (const t of ir.tensors) {
    const name = t.name.toLowerCase();
    const isTable = t.role === 'embedding' && t.shape.length === 2;
    // ONNX: a 1-D integer remap read by a Gather; TF.js: a frozen 1-wide Embedding `<ids>_row_remap`
    const isRemap = (t.shape.length === 1 && /int/.test(t.dtype) && t.consumers.includes('Gather')) || (t.role === 'constant' && t.shape.length === 2 && t.shape[1] === 1 && TFJS_ROW_REMAP_LAYER.test(t.layer));
    if (!isTable && !isRemap) continue;
    const rows = isTable ? rowsOf(t) : t.shape[0];
    for (const key of ['user', 'item'] as const) {
      if (name.includes(key)) out[key] = Math.max(out[key] ?? 0, rows);
    }
  }
  return out;
}

/**
 * Rows of a table's ids when a row-pruned model maps them through a remap first (ONNX: the
 * table's Gather takes ids from a Gather of a 1-D integer remap, maybe through a Cast): table
 * name -> the remap's length. The remap is named after the ids it maps (`<ids>/row_remap`), which
 * for a DeepFM fields input names no table, so the graph is followed rather than the names.
 */
function remappedRows(ir: ModelIR): Map<string, number> {
  const out = new Map<string, number>();
  if (ir.format !== 'onnx') return out;
  const byName = new Map(ir.tensors.map((t) => [t.name, t]));
  const producer = new Map<string, (typeof ir.graph.nodes)[number]>();
  for (const n of ir.graph.nodes) for (const o of n.outputs) producer.set(o, n);
  for (const n of ir.graph.nodes) {
    if (n.op !== 'Gather') continue;
    const table = byName.get(n.inputs[0]);
    if (!table || table.role !== 'embedding' || table.shape.length !== 2) continue;
    let ids = producer.get(n.inputs[1]);
    for (let hops = 0; ids && ids.op !== 'Gather' && hops < 4 && ['Cast', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity'].includes(ids.op); hops++) ids = producer.get(ids.inputs[0]);
    const remap = ids?.op === 'Gather' ? byName.get(ids.inputs[0]) : undefined;
    if (remap && remap.shape.length === 1 && /int/.test(remap.dtype)) out.set(table.name, Math.max(out.get(table.name) ?? 0, remap.shape[0]));
  }
  return out;
}

/** Elements of the learned tensors (trainable weights). */
export function parameterCount(ir: ModelIR): number {
  let n = 0;
  for (const t of ir.tensors) if (t.trainable) n += valueCount(t);
  return n;
}

/**
 * The scores, when every one is a number: a NaN or infinite score (weights that hold NaN or
 * Infinity, an overflow) would make every metric meaningless, so it is an error naming the model,
 * the data file and the first row that scored so.
 */
export function finiteScores(model: string, table: Pick<InteractionTable, 'file' | 'user' | 'item'>, scores: Float32Array): Float32Array {
  let bad = 0;
  let first = -1;
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) {
      bad++;
      if (first < 0) first = i;
    }
  }
  if (bad === 0) return scores;
  throw new ModelFileError(
    model,
    `scores ${scores[first]} for ${bad} of the ${scores.length} rows of ${table.file} (the first: data row ${first + 1}, user ${table.user[first]}, item ${table.item[first]}): ` +
      `its weights hold NaN or infinite values, or its arithmetic overflows (analyze lists non-finite weights)`,
  );
}

/**
 * Reads a candidates file the way evaluateModel will (ids checked against the model's tables, a
 * label column, one positive per user, at least one user with one), without running the model:
 * a job that evaluates its output checks its candidates first, so that a bad file stops it
 * before any work instead of becoming a note beside a model whose accuracy was never measured.
 */
export async function checkCandidatesFile(ir: ModelIR, file: string, columns?: EvaluateOptions['columns']): Promise<void> {
  const found = modelVocab(ir);
  const cand = await readInteractions(file, { columns, userVocab: found.user, itemVocab: found.item, requireLabel: true });
  let ranking;
  try {
    ranking = candidateRanking(cand.user, cand.label!, new Float32Array(cand.rows), 1);
  } catch (e) {
    throw new ModelFileError(file, (e as Error).message);
  }
  if (ranking.users === 0) throw new ModelFileError(file, `no user has a positive row (${cand.labelColumn} > 0)`);
}

export interface EvaluateOptions extends ScorerOptions {
  /** candidates CSV (user,item,label): per user one positive and its sampled negatives */
  candidates?: string;
  /** default 10 */
  k?: number;
  /** labelled interactions (label 0/1 -> AUC, logloss; rating -> RMSE, MAE) */
  data?: string;
  columns?: InteractionColumnNames;
  /** measure latency too (true: defaults of measureLatency) */
  latency?: boolean | LatencyOptions;
  /** rows per inference call when scoring the data; default 4096 */
  batchSize?: number;
  /** override the ids' ranges found from the model's tables */
  userVocab?: number;
  itemVocab?: number;
}

export interface EvaluationResult {
  model: string;
  format: ModelIR['format'];
  runtime: string;
  /** ranking on the candidates (absent without candidates) */
  hr?: number;
  ndcg?: number;
  k: number;
  users: number;
  candidatesPerUser?: number;
  usersWithoutPositive?: number;
  /** ranked users with no negative candidate (each a hit whatever the model) */
  usersWithoutNegatives?: number;
  /** users whose positive item is among their negatives too (that copy ties with it and counts against it), and the first one */
  positivesAsNegatives?: { users: number; first?: { user: number; item: number } };
  /** HR@K / NDCG@K of a random order of each user's candidates (chanceRanking), and whether NDCG is within 3 SD of it */
  chance?: { hr: number; ndcg: number; ndcgSd: number; atChance: boolean };
  /** on `data` when given, else on the candidates' labels */
  auc?: number;
  logloss?: number;
  /** set when logloss was computed on sigmoid(score) because the model outputs logits */
  loglossOn?: string;
  /** set when a `label` column (not `rating`) holds values other than 0 and 1: the labels were scored as ratings */
  labelsAsRatings?: string;
  rmse?: number;
  mae?: number;
  /** rows the auc/logloss/rmse figures were computed on, and from which file */
  labelledRows?: number;
  labelledFile?: string;
  params: number;
  bytes: number;
  gzipBytes: number;
  files: ModelSize['files'];
  inputs: Array<{ name: string; role: string; dtype: string }>;
  /** what actually ran the model (ORT provider, or TF.js backend) and why */
  executionProvider?: ExecutionProviderReport;
  latency?: LatencyReport;
  /** the id ranges the latency batches drew from (the model's tables), when latency was measured */
  latencyIds?: Pick<LatencyOptions, 'userVocab' | 'itemVocab' | 'fieldVocab'>;
  seconds: number;
}

/** The TF.js backend a TF.js scorer runs on, as an execution report (the choice is cached by initTfjs). */
async function tfjsExecution(backend: TfjsBackendPreference | undefined): Promise<ExecutionProviderReport> {
  const c = await initTfjs(backend ?? 'auto');
  const requested = c.requested ?? backend ?? 'auto';
  return { name: c.backend, requested, selection: requested === 'auto' ? 'auto' : 'forced', reason: c.reason, ...(c.adapter ? { adapter: c.adapter } : {}) };
}

function batchOf(t: InteractionTable): ScoreBatch {
  return { user: t.user, item: t.item, fields: t.extra.length > 0 ? fieldsMatrix(t) : undefined };
}

export async function evaluateModel(path: string, opts: EvaluateOptions = {}): Promise<EvaluationResult> {
  const t0 = performance.now();
  const k = opts.k ?? 10;
  if (!Number.isInteger(k) || k < 1) throw new Error(`k must be a positive integer, got ${k}`);
  const ir = await readModel(path);
  const size = await modelSizeOfIR(ir);
  const found = modelVocab(ir);
  const vocab = { user: opts.userVocab ?? found.user, item: opts.itemVocab ?? found.item };
  const scorer = await openScorer(ir.path, opts);
  try {
    const read = (file: string, requireLabel: boolean) =>
      readInteractions(file, {
        columns: opts.columns,
        extraColumns: extraColumnsFor(scorer.inputs),
        userVocab: vocab.user,
        itemVocab: vocab.item,
        extraVocabOf: (column) => found.ofColumn(column),
        fieldColumns: fieldColumns(ir),
        requireLabel,
      });
    const result: EvaluationResult = {
      model: ir.path,
      format: ir.format,
      runtime: scorer.runtime,
      k,
      users: 0,
      params: parameterCount(ir),
      bytes: size.bytes,
      gzipBytes: size.gzipBytes,
      files: size.files,
      inputs: scorer.inputs.map((i) => ({ name: i.name, role: i.role, dtype: i.dtype })),
      executionProvider: scorer.executionProvider ?? (ir.format === 'onnx' ? undefined : await tfjsExecution(opts.backend)),
      seconds: 0,
    };
    if (!opts.candidates && !opts.data && !opts.latency) throw new Error('evaluateModel: give candidates, data or latency');
    let labelled: { table: InteractionTable; scores: Float32Array } | undefined;
    if (opts.candidates) {
      const cand = await read(opts.candidates, true);
      const scores = finiteScores(ir.path, cand, await scorer.score(batchOf(cand), opts.batchSize));
      let ranking;
      try {
        ranking = candidateRanking(cand.user, cand.label!, scores, k);
      } catch (e) {
        throw new ModelFileError(opts.candidates, (e as Error).message);
      }
      if (ranking.users === 0) throw new ModelFileError(opts.candidates, `no user has a positive row (${cand.labelColumn} > 0)`);
      Object.assign(result, {
        hr: ranking.hr,
        ndcg: ranking.ndcg,
        users: ranking.users,
        candidatesPerUser: ranking.candidatesPerUser,
        usersWithoutPositive: ranking.usersWithoutPositive,
        usersWithoutNegatives: ranking.usersWithoutNegatives,
      });
      const repeated = positivesRepeatedAsNegatives(cand.user, cand.item, cand.label!);
      if (repeated.users > 0) result.positivesAsNegatives = repeated;
      const chance = chanceRanking(cand.user, cand.label!, k);
      result.chance = { hr: chance.hr.mean, ndcg: chance.ndcg.mean, ndcgSd: chance.ndcg.sd, atChance: ranking.ndcg < chance.ndcg.mean + 3 * chance.ndcg.sd };
      labelled = { table: cand, scores };
    }
    if (opts.data) {
      const data = await read(opts.data, true);
      labelled = { table: data, scores: finiteScores(ir.path, data, await scorer.score(batchOf(data), opts.batchSize)) };
    }
    if (labelled) {
      const labels = labelled.table.label!;
      if (isBinary(labels)) {
        result.auc = auc(labels, labelled.scores);
        // a logit model (no sigmoid at its end: output-kind.ts) is scored on its probabilities
        const logitOutput = graphOutputFinding(ir)?.bounded === false;
        result.logloss = logloss(labels, logitOutput ? labelled.scores.map((z) => 1 / (1 + Math.exp(-z))) : labelled.scores);
        if (logitOutput) result.loglossOn = 'sigmoid of the logit output';
      } else {
        if (labelled.table.labelKind !== 'rating') {
          const at = labels.findIndex((l) => l !== 0 && l !== 1);
          result.labelsAsRatings = `${labelled.table.file}: ${labelled.table.labelColumn} of data row ${at + 1} is ${labels[at]}, not 0 or 1: the labels were scored as ratings (RMSE, MAE), not as clicks (AUC, logloss)`;
        }
        result.rmse = rmse(labels, labelled.scores);
        result.mae = mae(labels, labelled.scores);
        // a click model's probability against 1-5 stars: the figures compare different scales
        const squashed = graphOutputFinding(ir);
        const top = labels.reduce((m, l) => (l > m ? l : m), -Infinity);
        if (squashed?.bounded && top > 1) {
          const note = `RMSE and MAE compare this model's ${squashed.op} output (a probability, 0 to 1) with ${labelled.table.labelColumn} values up to ${top}: the model was not trained on this scale, so they say little; AUC needs a 0/1 label column`;
          result.labelsAsRatings = result.labelsAsRatings ? `${result.labelsAsRatings}; ${note}` : `${labelled.table.file}: ${note}`;
        }
      }
      result.labelledRows = labelled.table.rows;
      result.labelledFile = labelled.table.file;
    }
    if (opts.latency) {
      const lo = typeof opts.latency === 'object' ? opts.latency : {};
      result.latencyIds = latencyIdRanges(scorer, vocab);
      result.latency = await measureLatency(scorer, { ...result.latencyIds, ...lo });
    }
    result.seconds = (performance.now() - t0) / 1000;
    return result;
  } finally {
    await scorer.close();
  }
}

export interface Change {
  before: number;
  after: number;
  /** (after - before) / before; undefined when before is 0 */
  relative?: number;
}

export interface ComparisonReport {
  before: EvaluationResult;
  after: EvaluationResult;
  params: Change;
  bytes: Change & { ratio: number };
  gzipBytes: Change & { ratio: number };
  hr?: Change;
  ndcg?: Change;
  auc?: Change;
  /**
   * per batch size: each model's p50 / p95 measured alone, and the ratio of the two in paired
   * calls (alternating, as compress measures): the verdict `withinNoise` comes from the pairs
   */
  latency: Array<{ batch: number; p50Ms: Change; p95Ms: Change; withinNoise: boolean; pairedRatio?: number }>;
  /** plain sentences for the report */
  summary: string[];
}

function change(before: number, after: number): Change {
  return { before, after, relative: before !== 0 ? (after - before) / before : undefined };
}

function pct(x: number | undefined): string {
  if (x === undefined) return 'n/a';
  return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
}

/**
 * Latency changes smaller than the noise are not speed-ups: noise is the larger of 10% and each
 * run's own spread (p95 - p50) / p50.
 */
export function latencyWithinNoise(b: { p50Ms: number; p95Ms: number }, a: { p50Ms: number; p95Ms: number }): boolean {
  const spread = (p: { p50Ms: number; p95Ms: number }) => (p.p50Ms > 0 ? (p.p95Ms - p.p50Ms) / p.p50Ms : 0);
  const noise = Math.max(0.1, spread(b), spread(a));
  return Math.abs(a.p50Ms - b.p50Ms) <= noise * b.p50Ms;
}

/**
 * The two models' latency ratio in paired calls at each batch size (measurePairedLatency), or
 * undefined where they cannot both be opened at once: the verdict "within noise" or not is
 * taken from the pairs, since each model's own spread is no guide on a busy machine.
 */
async function pairedLatencies(
  before: string,
  after: string,
  batches: number[],
  ranges: EvaluationResult['latencyIds'],
  opts: EvaluateOptions,
): Promise<Map<number, PairedLatency> | undefined> {
  let b: Scorer | undefined;
  let a: Scorer | undefined;
  try {
    b = await openScorer(before, opts);
    a = await openScorer(after, opts);
    const out = new Map<number, PairedLatency>();
    for (const batch of batches) out.set(batch, await measurePairedLatency(b, a, batch, { ...ranges, runs: 20, maxSecondsPerBatch: 1 }));
    return out;
  } catch {
    return undefined;
  } finally {
    await b?.close();
    await a?.close();
  }
}

/** "3.20x smaller", "1.10x larger", or "the same size" within half a percent. */
function sizeChange(ratio: number): string {
  if (Math.abs(ratio - 1) < 0.005) return 'the same size';
  return ratio > 1 ? `${ratio.toFixed(2)}x smaller` : `${(1 / ratio).toFixed(2)}x larger`;
}

export async function compareModels(before: string, after: string, opts: EvaluateOptions = {}): Promise<ComparisonReport> {
  const withLatency: EvaluateOptions = { ...opts, latency: opts.latency ?? true };
  const b = await evaluateModel(before, withLatency);
  const a = await evaluateModel(after, withLatency);
  const report: ComparisonReport = {
    before: b,
    after: a,
    params: change(b.params, a.params),
    bytes: { ...change(b.bytes, a.bytes), ratio: b.bytes / a.bytes },
    gzipBytes: { ...change(b.gzipBytes, a.gzipBytes), ratio: b.gzipBytes / a.gzipBytes },
    latency: [],
    summary: [],
  };
  if (b.hr !== undefined && a.hr !== undefined) report.hr = change(b.hr, a.hr);
  if (b.ndcg !== undefined && a.ndcg !== undefined) report.ndcg = change(b.ndcg, a.ndcg);
  if (b.auc !== undefined && a.auc !== undefined) report.auc = change(b.auc, a.auc);
  const pairs = b.latency?.points.filter((pb) => a.latency?.points.some((p) => p.batch === pb.batch)) ?? [];
  const paired = pairs.length ? await pairedLatencies(before, after, pairs.map((p) => p.batch), b.latencyIds, opts) : undefined;
  for (const pb of pairs) {
    const pa = a.latency!.points.find((p) => p.batch === pb.batch)!;
    const pl = paired?.get(pb.batch);
    const withinNoise = pl ? pairedVerdict(pl) === 'same' : latencyWithinNoise(pb, pa);
    report.latency.push({ batch: pb.batch, p50Ms: change(pb.p50Ms, pa.p50Ms), p95Ms: change(pb.p95Ms, pa.p95Ms), withinNoise, ...(pl ? { pairedRatio: pl.ratio } : {}) });
  }
  const s = report.summary;
  s.push(
    `Size on disk: ${b.bytes} -> ${a.bytes} bytes (${sizeChange(report.bytes.ratio)}); gzip: ${b.gzipBytes} -> ${a.gzipBytes} bytes (${sizeChange(report.gzipBytes.ratio)}).`,
  );
  if (report.bytes.ratio < 1.05 && report.gzipBytes.ratio >= 1.2) {
    s.push('The raw file is no smaller: its values repeat (pruned zeros, or values on a quantization grid), which only compression (gzip) exploits.');
  }
  if (report.ndcg) s.push(`NDCG@${b.k}: ${b.ndcg!.toFixed(4)} -> ${a.ndcg!.toFixed(4)} (${pct(report.ndcg.relative)}); HR@${b.k}: ${b.hr!.toFixed(4)} -> ${a.hr!.toFixed(4)} (${pct(report.hr?.relative)}).`);
  if (report.latency.length > 0) {
    if (report.latency.every((l) => l.withinNoise)) {
      s.push(`No speed-up: latency is within noise at every batch size measured (${report.latency.map((l) => `batch ${l.batch}: ${l.p50Ms.before.toFixed(3)} -> ${l.p50Ms.after.toFixed(3)} ms p50`).join('; ')}).`);
    } else {
      for (const l of report.latency) {
        s.push(
          l.withinNoise
            ? `Batch ${l.batch}: latency within noise (${l.p50Ms.before.toFixed(3)} -> ${l.p50Ms.after.toFixed(3)} ms p50).`
            : `Batch ${l.batch}: p50 latency ${l.p50Ms.before.toFixed(3)} -> ${l.p50Ms.after.toFixed(3)} ms (${pct(l.p50Ms.relative)}${l.pairedRatio !== undefined ? `; ${formatPairedRatio(l.pairedRatio)} in paired calls` : ''}).`,
        );
      }
    }
  }
  return report;
}
