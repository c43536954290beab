// The validation candidates of a compress-to-target search, read once and scored many times:
// users split (seeded) into the part the search chooses on and the part it is judged on, and
// nested subsets of the choosing users for successive halving (a quarter inside a half inside
// all), so that a candidate's figure on more users refines, not replaces, its figure on fewer.

import { latencyIdRanges, modelVocab, openScorer } from '../../eval/evaluate.js';
import { extraColumnsFor, type ScoreBatch } from '../../eval/input-binding.js';
import { fieldsMatrix, readInteractions, type InteractionTable } from '../../eval/interactions.js';
import { measurePairedLatency, percentile, type LatencyOptions, type PairedLatency } from '../../eval/latency.js';
import type { Scorer } from '../../eval/ort-runner.js';
import { auc, candidateRanking, chanceAuc, chanceRanking, type MeanSd } from '../../eval/metrics.js';
import { ModelFileError, type ModelIR } from '../../model/ir.js';
import { createRng, shuffleInPlace } from '../../samples/prng.js';
import type { ExpectedFigures } from './expected-gain.js';
import { fieldColumns } from '../../model/field-columns.js';

export type PlanMetric = 'ndcg' | 'hr' | 'auc';

export interface Metrics {
  ndcg: number;
  hr: number;
  auc: number | null;
}

/** Rows of some users, ready to score. */
export interface RowSet {
  users: number;
  batch: ScoreBatch;
  user: Int32Array;
  label: Float32Array;
}

export interface CandidateSplits {
  file: string;
  /** nested subsets of the choosing users, smallest first; the last is all of them */
  levels: RowSet[];
  /** the users held out of choosing (absent: none) */
  judge?: RowSet;
  /** where the judged rows come from, in words */
  judgeFrom?: string;
}

function rowsOf(t: InteractionTable, keepUser: (u: number) => boolean, users: number): RowSet {
  const idx: number[] = [];
  for (let i = 0; i < t.rows; i++) if (keepUser(t.user[i])) idx.push(i);
  const pick = (a: Int32Array) => Int32Array.from(idx, (i) => a[i]);
  const fields = t.extra.length > 0 ? fieldsMatrix(t) : undefined;
  const F = fields ? fields.length / t.rows : 0;
  const sub = fields ? new Int32Array(idx.length * F) : undefined;
  if (fields && sub) idx.forEach((i, j) => sub.set(fields.subarray(i * F, (i + 1) * F), j * F));
  const user = pick(t.user);
  return { users, user, label: Float32Array.from(idx, (i) => t.label![i]), batch: { user, item: pick(t.item), ...(sub ? { fields: sub } : {}) } };
}

/** Reads a candidates CSV the way the model's scorer will want it (ids in the model's vocabularies). */
export async function readCandidates(file: string, ir: ModelIR): Promise<InteractionTable> {
  const vocab = modelVocab(ir);
  const scorer = await openScorer(ir.path);
  const extraColumns = extraColumnsFor(scorer.inputs);
  await scorer.close();
  return readInteractions(file, {
    userVocab: vocab.user,
    itemVocab: vocab.item,
    extraColumns,
    extraVocabOf: (c) => vocab.ofColumn(c),
    fieldColumns: fieldColumns(ir),
    requireLabel: true,
  });
}

/** Fewest users a --holdout may leave to choose on. */
export const MIN_CHOOSING_USERS = 10;

/**
 * The choosing levels and the judged part. `holdout` (0..1): that share of the users, seeded, is
 * judged apart; `test`: a separate candidates table is judged instead (all its users).
 */
export function splitCandidates(t: InteractionTable, opts: { holdout?: number; test?: InteractionTable; seed?: number; levels?: number }): CandidateSplits {
  const seen = new Set<number>();
  for (let i = 0; i < t.rows; i++) seen.add(t.user[i]);
  const users = Int32Array.from([...seen].sort((a, b) => a - b));
  shuffleInPlace(users, createRng(opts.seed ?? 20261206));
  const holdout = opts.test ? 0 : opts.holdout ?? 0;
  if (!(holdout >= 0 && holdout < 1)) throw new Error(`holdout must be in [0, 1), got ${holdout}`);
  const nJudge = Math.round(users.length * holdout);
  const choose = users.subarray(nJudge);
  if (choose.length < 2) throw new ModelFileError(t.file, `has ${users.length} user${users.length === 1 ? '' : 's'}: too few to choose on`);
  // a held-out share that leaves a handful of users to choose on makes every choosing figure noise
  if (nJudge > 0 && choose.length < MIN_CHOOSING_USERS) {
    throw new ModelFileError(t.file, `--holdout ${holdout} leaves ${choose.length} of its ${users.length} users to choose on; at least ${MIN_CHOOSING_USERS} are needed (a smaller --holdout, or --test FILE)`);
  }
  const order = new Map<number, number>();
  choose.forEach((u, i) => order.set(u, i));
  const nLevels = Math.max(1, opts.levels ?? 3);
  const levels: RowSet[] = [];
  for (let l = nLevels - 1; l >= 0; l--) {
    const n = Math.max(2, Math.ceil(choose.length / 2 ** l));
    levels.push(rowsOf(t, (u) => (order.get(u) ?? Infinity) < n, n));
  }
  const out: CandidateSplits = { file: t.file, levels };
  if (opts.test) {
    const testUsers = new Set<number>();
    for (let i = 0; i < opts.test.rows; i++) testUsers.add(opts.test.user[i]);
    out.judge = rowsOf(opts.test, () => true, testUsers.size);
    out.judgeFrom = `${opts.test.file} (all ${testUsers.size} users)`;
  } else if (nJudge > 0) {
    const judged = new Set(users.subarray(0, nJudge));
    out.judge = rowsOf(t, (u) => judged.has(u), nJudge);
    out.judgeFrom = `${nJudge} of the ${users.length} users of ${t.file}, held out of choosing (seeded)`;
  }
  return out;
}

/** A model's figures on some rows, and its per-user gains (for paired comparisons). */
export interface Scored {
  metrics: Metrics;
  /** per ranked user (in first-seen order of the rows): NDCG@k and HR@k of that user */
  perUser: { ndcg: Float64Array; hr: Float64Array };
  /** the expected NDCG@k / HR@k (expected-gain.ts), where the search computed it */
  expected?: ExpectedFigures;
}

export function metricsOf(rows: RowSet, scores: Float32Array, k: number): Scored {
  const r = candidateRanking(rows.user, rows.label, scores, k);
  const a = auc(rows.label, scores);
  return { metrics: { ndcg: r.ndcg, hr: r.hr, auc: a === undefined || !Number.isFinite(a) ? null : a }, perUser: perUserGains(rows, scores, k) };
}

/** Per-user NDCG@k / HR@k with the tie rule of candidateRanking (ties count against the positive). */
export function perUserGains(rows: RowSet, scores: Float32Array, k: number): { ndcg: Float64Array; hr: Float64Array } {
  const slot = new Map<number, number>();
  const pos: number[] = [];
  for (let i = 0; i < rows.user.length; i++) {
    if (!slot.has(rows.user[i])) slot.set(rows.user[i], slot.size);
    if (rows.label[i] > 0) pos[slot.get(rows.user[i])!] = scores[i];
  }
  const ahead = new Int32Array(slot.size);
  for (let i = 0; i < rows.user.length; i++) {
    const s = slot.get(rows.user[i])!;
    if (rows.label[i] > 0 || pos[s] === undefined) continue;
    // a NaN negative is ignored, as in candidateRanking
    if (scores[i] >= pos[s]) ahead[s]++;
  }
  const ranked = [...slot.values()].filter((s) => pos[s] !== undefined);
  const ndcg = new Float64Array(ranked.length);
  const hr = new Float64Array(ranked.length);
  ranked.forEach((s, j) => {
    const rank = Number.isNaN(pos[s]) ? Infinity : ahead[s] + 1;
    if (rank <= k) {
      hr[j] = 1;
      ndcg[j] = 1 / Math.log2(rank + 1);
    }
  });
  return { ndcg, hr };
}

/**
 * Standard error of the mean per-user difference between two models on the same users (a
 * paired comparison: most users rank the positive alike under both, so this is far below the
 * standard error of either mean).
 */
export function pairedStandardError(a: Float64Array, b: Float64Array): number {
  const n = Math.min(a.length, b.length);
  if (n < 2) return 0;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += a[i] - b[i];
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (a[i] - b[i] - mean) ** 2;
  return Math.sqrt(ss / (n - 1) / n);
}

export function pick(m: Metrics, metric: PlanMetric): number {
  const v = m[metric];
  return v === null ? NaN : v;
}

/** What a random order of each user's candidates scores on these rows (eval/metrics.ts chanceRanking / chanceAuc). */
export function chanceLevel(rows: RowSet, k: number, metric: PlanMetric): MeanSd {
  return metric === 'auc' ? chanceAuc(rows.label) : chanceRanking(rows.user, rows.label, k)[metric];
}

/** A model file's scores of some rows (the session opened, used, closed). */
export async function rowScores(path: string, rows: RowSet, threads?: number): Promise<Float32Array> {
  const scorer = await openScorer(path, threads ? { threads } : {});
  try {
    return await scorer.score(rows.batch, 4096);
  } finally {
    await scorer.close();
  }
}

/** Scores a model file on some rows: its figures there. */
export async function scoreRows(path: string, rows: RowSet, k: number, threads?: number): Promise<Scored> {
  return metricsOf(rows, await rowScores(path, rows, threads), k);
}

/**
 * Latency of models against the original at one batch size of pairs, ids spread over the model's
 * tables: the original's session stays open and each model's calls are interleaved with its calls
 * (measurePairedLatency), so each ratio compares like with like.
 */
export class LatencyMeter {
  private constructor(
    private readonly original: Scorer,
    private readonly opts: Omit<LatencyOptions, 'batchSizes'>,
    private readonly batch: number,
  ) {}

  static async open(ir: ModelIR, batch: number): Promise<LatencyMeter> {
    const original = await openScorer(ir.path);
    return new LatencyMeter(original, { runs: 100, warmup: 5, maxSecondsPerBatch: 1, ...latencyIdRanges(original, modelVocab(ir)) }, batch);
  }

  /** the original's p50 in each measurement */
  private readonly originalTimes: number[] = [];

  /** One model against the original, their calls interleaved. */
  async measure(path: string): Promise<PairedLatency> {
    const other = await openScorer(path);
    try {
      const r = await measurePairedLatency(this.original, other, this.batch, this.opts);
      this.originalTimes.push(r.base.p50Ms);
      return r;
    } finally {
      await other.close();
    }
  }

  /** the original's p50 over the measurements so far (the median of their p50s) */
  originalP50Ms(): number | undefined {
    if (this.originalTimes.length === 0) return undefined;
    return percentile(Float64Array.from(this.originalTimes).sort(), 0.5);
  }

  close(): Promise<void> {
    return this.original.close();
  }
}

/**
 * The table without the users the ranking metrics cannot rank (no positive row, or no negative),
 * and how many users went; every user is kept when the metric is AUC, which pools all rows.
 */
export function rankableUsers(t: InteractionTable): { table: InteractionTable; noPositive: number; noNegative: number; users: number } {
  const pos = new Map<number, number>();
  const neg = new Map<number, number>();
  for (let r = 0; r < t.rows; r++) {
    const m = t.label![r] > 0 ? pos : neg;
    m.set(t.user[r], (m.get(t.user[r]) ?? 0) + 1);
  }
  const users = new Set(t.user);
  let noPositive = 0, noNegative = 0;
  for (const u of users) {
    if (!pos.has(u)) noPositive++;
    else if (!neg.has(u)) noNegative++;
  }
  if (noPositive + noNegative === 0) return { table: t, noPositive, noNegative, users: users.size };
  const keep: number[] = [];
  for (let r = 0; r < t.rows; r++) if (pos.has(t.user[r]) && neg.has(t.user[r])) keep.push(r);
  const pick = <A extends Int32Array | Float32Array | Float64Array>(a: A): A => {
    const out = new (a.constructor as new (n: number) => A)(keep.length);
    keep.forEach((r, i) => (out[i] = a[r]));
    return out;
  };
  const table: InteractionTable = {
    ...t,
    rows: keep.length,
    user: pick(t.user),
    item: pick(t.item),
    label: pick(t.label!),
    ...(t.timestamp ? { timestamp: pick(t.timestamp) } : {}),
    extra: t.extra.map((c) => ({ name: c.name, values: pick(c.values) })),
  };
  return { table, noPositive, noNegative, users: users.size };
}
