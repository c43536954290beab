// Compress to a target: a search over compositions of PruneScope's methods, per table, that
// returns the Pareto front (bytes on disk x metric on the validation candidates x latency) and
// the answer to a budget. The phases:
//   1. sensitivity: every option of every unit alone (space.ts), on all the choosing users;
//   2. combinations: for a sweep of prices per byte, each unit takes the option that costs least
//      (metric drop + price x bytes: a Lagrangian knapsack over the per-unit curves), plus the
//      uniform choices; these real combinations are evaluated with successive halving (a quarter
//      of the users, then half, then all; half the candidates survive each round, front first);
//   3. refinement: a local search from the chosen point, one unit one option at a time, measured;
//   4. with training data: the best few structural candidates are fine-tuned (structure and masks
//      held) and re-quantized, and a distilled student competes too;
//   5. latency of the front at the latency batch, the original's measured in the same run;
//   6. the held-out users (or a test file) score the front and the choice.
// Sensitivities do not add up; only measured combinations enter the front. Candidates are compared
// by their expected NDCG/HR (expected-gain.ts: every candidate item standing in for the positive),
// whose noise on a few hundred users is a tenth of the measured metric's; the measured figures are
// reported beside it, and `chooseBy: 'measured'` compares by them instead.

import { basename, dirname } from 'node:path';
import { formatBytes } from '../../analysis/opportunities.js';
import { readInteractionTable } from '../train/interaction-table.js';
import { checkCandidatesFile } from '../../eval/candidate-lines.js';
import { pairedVerdict, type PairedLatency } from '../../eval/latency.js';
import { ModelFileError, type ModelIR } from '../../model/ir.js';
import type { CompressionContext } from '../types.js';
import type { PlanPointView, PlanView } from '../../../shared/protocol.js';
import { chooseCandidate, paretoFront, survivors, type Budget, type Evaluated } from './front.js';
import { defaultDiskBudget, Materializer, type Materialized } from './materialize.js';
import { ExpectedGain } from './expected-gain.js';
import { chanceLevel, LatencyMeter, metricsOf, pairedStandardError, pick, rankableUsers, readCandidates, rowScores, scoreRows, splitCandidates, type CandidateSplits, type Metrics, type PlanMetric, type Scored } from './scoring.js';
import type { InteractionTable } from '../../eval/interactions.js';
import { lowBitsOf } from '../quantize-math.js';
import { outputAwareBlocker } from '../output-aware-rounding.js';
import { DISTILL_NEGATIVES, studentOf } from '../distill.js';
import { assignmentKey, optionOf, quantizeSteps, searchSpace, splitAtFieldDrop, splitForm, storedAssignmentKey, structuralSteps, type Assignment, type PlanStep, type SearchUnit, type UnitOption } from './space.js';

/** Largest model whose search rounds low-bit tables output-aware (each structural candidate is measured with the training engine). */
const OUTPUT_AWARE_MAX_BYTES = 256 * 2 ** 20;

export interface PlanSettings {
  /** validation candidates CSV (user,item,label): per user one positive and its negatives */
  candidates: string;
  metric?: PlanMetric;
  k?: number;
  /** relative: 0.01 keeps >= 99% of the original's metric (default when no targetRatio) */
  maxDrop?: number;
  targetRatio?: number;
  maxLatencyRatio?: number;
  /** pairs per call for the latency figures; default 256 */
  latencyBatch?: number;
  /** training interactions: rows pruning by frequency, fine-tuning, distillation */
  data?: string;
  /** wall-clock budget of the whole search; default 10 */
  budgetMinutes?: number;
  /** share of the candidates' users judged apart (never chosen on); default 0 */
  holdout?: number;
  /** a separate candidates CSV to judge on (instead of holdout) */
  test?: string;
  seed?: number;
  /** epochs of each fine-tuning; default 2 */
  finetuneEpochs?: number;
  /** at most this many candidates are fine-tuned (while the time budget lasts); default 6 */
  finetuneCount?: number;
  /** bytes the search's model files may take on disk together; default defaultDiskBudget's */
  diskBudgetBytes?: number;
  /** a distilled student competes when data is given; default true */
  distill?: boolean;
  /**
   * Standard errors of margin when a candidate's metric is compared with the floor (paired per
   * user with the original). Default 0: on a few hundred users the standard error of a share
   * kept is 1-2%, as large as usual budgets, and a margin then picks the luckiest candidates.
   */
  confidence?: number;
  /**
   * What the search compares candidates by. 'expected' (default; NDCG and HR): the
   * estimate of expected-gain.ts, every candidate item standing in for the positive, which is
   * far less noisy than the metric itself and keeps the search from choosing the luckiest of
   * hundreds of candidates; 'measured': the metric on the choosing users as it is. AUC is always
   * measured.
   */
  chooseBy?: 'expected' | 'measured';
  /**
   * How low-bit tables are rounded. 'nearest' (default): each value to its nearest code.
   * 'output-aware' (where the compiled engine runs the model, it takes user and item ids or
   * `data` gives the pairs, and it is at most 256 MiB): each row's codes with error feedback so
   * that the score moves least, the same size (output-aware-rounding.ts). On two MovieLens NeuMFs
   * it swapped 9-25% fewer candidate pairs than rounding to nearest, but NDCG@10 did not move
   * beyond its noise, and the search then chose models 4% smaller that were judged 0.8 points
   * lower on average (seeds 1-5): a closer copy of the original's ranking, not a better ranking,
   * so it is asked for, not assumed.
   */
  rounding?: 'nearest' | 'output-aware';
}

export type PlanOrigin = PlanPointView['origin'];
export type PlanPoint = PlanPointView;
export type PlanResult = PlanView;

interface Candidate {
  id: string;
  label: string;
  origin: PlanOrigin;
  assignment?: Assignment;
  mat: Materialized;
  bytes: number;
  /** figures per choosing level */
  byLevel: Array<Scored | undefined>;
  latency?: PlanPoint['latency'];
  heldOut?: Metrics;
}

/**
 * Id counts per table row from the training data, for tables named after users or items. The file
 * is read as training reads it (its labels, a DeepFM's field columns), so a file that fine-tuning
 * and distillation would refuse stops the search before it starts, not as a note after it.
 */
async function rowCountsFrom(data: string, ir: ModelIR, units: SearchUnit[]): Promise<(table: string) => number[] | undefined> {
  const t = await readInteractionTable(data, { model: ir, training: true });
  const count = (ids: Int32Array, rows: number) => {
    const c = new Array<number>(rows).fill(0);
    for (const id of ids) if (id < rows) c[id]++;
    return c;
  };
  const byTable = new Map<string, number[]>();
  for (const u of units) {
    if (u.kind !== 'table' || u.rows === undefined) continue;
    const n = u.name.toLowerCase();
    if (n.includes('user')) byTable.set(u.name, count(t.user, u.rows));
    else if (n.includes('item')) byTable.set(u.name, count(t.item, u.rows));
  }
  return (table) => byTable.get(table);
}

/**
 * The order the sensitivity phase measures options in: 0 a storage dtype alone (float16 / int8 /
 * int4 / int3 / int2, per row or column), 1 a low rank keeping 80-95% of the energy, 2 the rest
 * (lower ranks, rows, dims, neurons, fields).
 */
export function optionTier(o: UnitOption): number {
  const structural = o.energy !== undefined || o.rowsKeep !== undefined || o.dimsKeep !== undefined || o.neuronsKeep !== undefined || o.fieldsDrop !== undefined;
  if (!structural) return 0;
  if (o.energy !== undefined && o.energy >= 0.8 && o.rowsKeep === undefined && o.dimsKeep === undefined && o.neuronsKeep === undefined) return 1;
  return 2;
}

/** The sensitivity phase's queue: tier by tier (optionTier), each over all units, biggest unit first. */
export function sensitivityOrder(units: readonly SearchUnit[]): Array<{ u: SearchUnit; o: UnitOption; tier: number }> {
  return units
    .slice()
    .sort((a, b) => b.bytes - a.bytes)
    .flatMap((u) => u.options.slice(1).map((o) => ({ u, o, tier: optionTier(o) })))
    .sort((x, y) => x.tier - y.tier);
}

/**
 * What the next training step of a phase is expected to take (ms), to decide whether it fits the
 * time left: the longest one measured in that phase, else `epochsFactor` times the longest
 * fine-tuning plus the evaluation of its stored forms, else a minute (nothing measured yet). A
 * fixed minute kept every student out of a 1-minute search of a model that trains in a quarter
 * of a second, and let one into a short search of a model that trains for ten.
 */
export function expectedTrainingMs(o: { measured?: number; msPerFinetune?: number; epochsFactor: number; msPerCandidate: number }): number {
  if (o.measured !== undefined) return o.measured;
  if (o.msPerFinetune !== undefined) return o.epochsFactor * o.msPerFinetune + 8 * o.msPerCandidate;
  return 60_000;
}

/**
 * The proposed combinations the time allows: as many as 60% of `msLeft` builds and scores at
 * `msPerCandidate` (at least 4), spread evenly over the list (the knapsack's sweep runs from
 * cautious to bold), each once; all of them when the cost is unknown (0).
 */
export function combinationsWithin<T>(all: readonly T[], msPerCandidate: number, msLeft: number): T[] {
  const fits = msPerCandidate > 0 ? Math.max(4, Math.floor((0.6 * msLeft) / msPerCandidate)) : all.length;
  if (fits >= all.length) return all.slice();
  return [...new Set(Array.from({ length: fits }, (_, i) => all[Math.round((i * (all.length - 1)) / Math.max(1, fits - 1))]))];
}

/** Marked slower: the paired calls' verdict (latency.ts pairedVerdict). */
function isSlower(l: PairedLatency): boolean {
  return pairedVerdict(l) === 'slower';
}

/** Combinations carried to all choosing users when time runs out before any reached them. */
const CARRIED_COMBINATIONS = 4;

/**
 * Sampled negatives per positive of the students sized for a target ratio (the candidates that
 * decide the choice there): every sampled item is one more pair the original labels for the
 * student. Students of 3.3x fewer parameters, eight epochs, NDCG@10 kept on all 943 users: our
 * NeuMF 97.9/94.7/96.1/96.9% with 4 (seeds 1-4), 96.7/97.7/98.1/97.3% with 12; PyTorch's (3.5x)
 * 99.1/98.9/98.6/99.1% and 99.3/99.6/97.5/99.6%. With 8 negatives, 16 epochs, or 12 negatives
 * for 4 epochs, no better than 4; each epoch takes 13/5 as long.
 */
const SIZED_STUDENT_NEGATIVES = 12;

/** A student's sampled rows an epoch, per row of distillation's default: 1 positive + `negatives`, over 1 + DISTILL_NEGATIVES. */
function rowsFactor(negatives = DISTILL_NEGATIVES): number {
  return (1 + negatives) / (1 + DISTILL_NEGATIVES);
}

/** Low-bit students fine-tuned again quantization-aware, at most; and how far under the --max-drop floor one may start. */
const QAT_STUDENTS = 3;
const QAT_REACH = 0.03;

/** A distilled student's storage forms, and the table options each takes, first found first. */
const STUDENT_FORMS = ['float32', 'int8', 'int4', 'int4byte', 'int4col', 'int3', 'int3byte', 'int3col'] as const;
const STUDENT_FALLBACK: Record<(typeof STUDENT_FORMS)[number], string[]> = {
  float32: ['float32'],
  int8: ['int8'],
  int4: ['int4', 'int8'],
  int4byte: ['int4byte', 'int4', 'int8'],
  int4col: ['int4col', 'int4', 'int8'],
  int3: ['int3', 'int4', 'int8'],
  int3byte: ['int3byte', 'int3', 'int4', 'int8'],
  int3col: ['int3col', 'int3', 'int4', 'int8'],
};
type LowBitStudentForm = Exclude<(typeof STUDENT_FORMS)[number], 'float32' | 'int8'>;

/** How far a student's stored forms reached (original bytes / stored bytes): its smallest form, and its int4 form with byte scales when it has one. */
interface StudentReach {
  smallest: number;
  int4byte?: number;
}

/**
 * The parameter ratio of a student whose smallest stored form should land just past `target`
 * (original bytes / stored bytes), from the students built so far (parameter ratio -> the ratio
 * their smallest form reached): the smallest student that fell short, scaled by target / reached
 * (stored size roughly follows the parameters; packed rows round up to whole bytes, so it is
 * tried again) with 2% to spare, rounded up to a tenth. Undefined when no student fell short,
 * or the answer is no smaller than a student that already reached the target, or was built.
 */
export function studentRatioFor(target: number, reached: ReadonlyMap<number, number>): number | undefined {
  const built = [...reached];
  const short = built.filter(([, stored]) => stored < target).sort((x, y) => y[0] - x[0])[0];
  if (!short) return undefined;
  const ratio = Math.ceil(((short[0] * target) / short[1]) * 1.02 * 10) / 10;
  const past = Math.min(...built.filter(([, stored]) => stored >= target).map(([r]) => r));
  return reached.has(ratio) || ratio >= past ? undefined : ratio;
}

export class CompressPlanner {
  private readonly t0 = Date.now();
  private readonly deadline: number;
  private stopped = false;
  private readonly all = new Map<string, Candidate>();
  private baseline: Scored[] = [];
  /** per choosing level: the expected-gain estimate against the original's scores there */
  private expected: ExpectedGain[] = [];
  /** how the expected figure weighs items, in words (for the report) */
  private expectedFit = '';
  private readonly useExpected: boolean;
  /** low-bit tables rounded output-aware (PlanSettings.rounding, where it can run), on these pairs */
  private readonly outputAware: { calibration?: string } | undefined;
  private units: SearchUnit[] = [];
  private splits!: CandidateSplits;
  private mat: Materializer;
  private rowCounts?: (table: string) => number[] | undefined;
  private readonly k: number;
  private readonly metric: PlanMetric;
  private readonly budget: Budget;
  private originalBytes = 0;
  private readonly notes: string[] = [];
  private readonly phases: PlanResult['phases'] = [];
  private atChance?: PlanResult['atChance'];
  /** what building and scoring one candidate on all choosing users took in the sensitivity phase */
  private msPerCandidate = 0;
  /** the longest fine-tuning of a candidate so far (ms): what the training phases expect a step to take */
  private msPerFinetune?: number;

  constructor(
    private readonly ir: ModelIR,
    private readonly s: PlanSettings,
    private readonly workDir: string,
    fileName: string,
    private readonly ctx: CompressionContext = {},
  ) {
    this.k = s.k ?? 10;
    this.metric = s.metric ?? 'ndcg';
    this.budget = s.targetRatio !== undefined ? { targetRatio: s.targetRatio } : { maxDrop: s.maxDrop ?? 0.01, confidence: s.confidence ?? 0 };
    if (s.maxLatencyRatio !== undefined) this.budget.maxLatencyRatio = s.maxLatencyRatio;
    this.deadline = this.t0 + (s.budgetMinutes ?? 10) * 60_000;
    this.useExpected = this.metric !== 'auc' && (s.chooseBy ?? 'expected') === 'expected';
    if (s.rounding === 'output-aware' && ir.format === 'onnx') {
      const bytes = ir.files.reduce((n, f) => n + f.bytes, 0);
      // random user x item pairs where the inputs are ids; the training interactions where the
      // model takes fields (never the candidates: the judged users' rows are among them)
      const random = outputAwareBlocker(ir);
      const onData = random && s.data && !outputAwareBlocker(ir, s.data) ? s.data : undefined;
      if (bytes > OUTPUT_AWARE_MAX_BYTES) {
        this.notes.push(
          `Low-bit tables are rounded to nearest: output-aware rounding loads the model into the training engine once per structural candidate, ` +
            `and this one is ${(bytes / 2 ** 20).toFixed(0)} MiB (at most ${OUTPUT_AWARE_MAX_BYTES / 2 ** 20} MiB in a search; \`quantize --rounding output-aware\` takes any size).`,
        );
      } else if (!random) this.outputAware = {};
      else if (onData) this.outputAware = { calibration: onData };
      else this.notes.push(`Low-bit tables are rounded to nearest: output-aware rounding cannot run here (${random}${s.data ? '' : '; --data would give the pairs'}).`);
    }
    this.mat = new Materializer(ir, workDir, fileName, { signal: ctx.signal });
  }

  /** failures by reason (the model path left out), with the first candidate that met each */
  private readonly failures = new Map<string, { first: string; count: number }>();

  private failed(label: string, e: unknown): void {
    const reason = ((e as Error).message ?? String(e)).replace(/^\S+\.(onnx|json): /, '');
    const f = this.failures.get(reason);
    if (f) f.count++;
    else this.failures.set(reason, { first: label, count: 1 });
  }

  private timeLeft(): number {
    return this.deadline - Date.now();
  }

  private progress(f: number, detail: string): void {
    this.ctx.onProgress?.(Math.min(0.99, f), detail);
  }

  private top(): number {
    return this.splits.levels.length - 1;
  }

  private async phase<T>(name: string, run: () => Promise<T>): Promise<T> {
    const t = Date.now();
    const before = this.all.size;
    const stoppedBefore = this.stopped;
    const r = await run();
    // the budget ended it: it was already spent, or ran out during the phase
    const budgetEnded = stoppedBefore || this.stopped;
    this.phases.push({ name, candidates: this.all.size - before, seconds: (Date.now() - t) / 1000, ...(budgetEnded ? { budgetEnded: true } : {}) });
    return r;
  }

  /**
   * HR / NDCG rank each user's positive among its candidates: users with no positive or no
   * negative cannot be ranked and are left out, said in a note (AUC pools every row: all kept);
   * a K not below the candidates per user makes every model score alike, and is refused.
   */
  private rankable(t: InteractionTable): InteractionTable {
    if (this.metric === 'auc') return t;
    const r = rankableUsers(t);
    if (r.noPositive + r.noNegative > 0) {
      const why = [r.noPositive && `${r.noPositive} have no positive row`, r.noNegative && `${r.noNegative} no negative`].filter(Boolean).join(' and ');
      if (r.table.rows === 0) throw new ModelFileError(t.file, `no user can be ranked: of ${r.users} users ${why}`);
      this.notes.push(`${basename(t.file)}: ${r.noPositive + r.noNegative} of ${r.users} users cannot be ranked and were left out (${why}); the user counts here are of the others.`);
    }
    const users = r.users - r.noPositive - r.noNegative;
    const perUser = r.table.rows / Math.max(1, users);
    if (this.k >= perUser) {
      throw new ModelFileError(
        t.file,
        `K = ${this.k} is not below its candidates per user (${perUser.toFixed(1)} on average): nearly every positive is in the top ${this.k} whatever the model, so ${this.metric.toUpperCase()}@${this.k} cannot tell a damaged model from the original; give a smaller --k or --metric auc`,
      );
    }
    return r.table;
  }

  async run(): Promise<PlanResult> {
    const s = this.s;
    if (this.budget.maxDrop !== undefined && !(this.budget.maxDrop >= 0 && this.budget.maxDrop < 1)) throw new Error(`max drop must be in [0, 1), got ${this.budget.maxDrop}`);
    if (this.budget.targetRatio !== undefined && !(this.budget.targetRatio > 1)) throw new Error(`target ratio must be > 1, got ${this.budget.targetRatio}`);
    this.units = searchSpace(this.ir, { data: s.data });
    if (this.units.length === 0) {
      const fns = this.ir.metadata.local_functions;
      throw new ModelFileError(
        this.ir.path,
        fns
          ? `its weights are read inside ONNX local functions (${fns}), which no method rewrites: nothing to search over. Inline them first (Python: onnx.inliner.inline_local_functions, onnx 1.15+) or export without export_modules_as_functions`
          : 'has no float32 embedding table or dense kernel of 1 KiB or more: nothing to search over',
      );
    }
    this.progress(0.01, 'reading the candidates');
    const read = await readCandidates(s.candidates, this.ir);
    const readTest = s.test ? await readCandidates(s.test, this.ir) : undefined;
    // one positive per user, or an error naming the file's lines (the scoring sees only rows)
    await checkCandidatesFile(read);
    if (readTest) await checkCandidatesFile(readTest);
    const table = this.rankable(read);
    const test = readTest && this.rankable(readTest);
    this.splits = splitCandidates(table, { holdout: s.holdout, test, seed: s.seed });
    if (s.data) this.rowCounts = await rowCountsFrom(s.data, this.ir, this.units);
    this.originalBytes = this.ir.files.reduce((n, f) => n + f.bytes, 0);
    this.mat.diskBudget = s.diskBudgetBytes ?? (await defaultDiskBudget(dirname(this.workDir), this.originalBytes));
    const baseScores: Float32Array[] = [];
    for (const rows of this.splits.levels) baseScores.push(await rowScores(this.ir.path, rows));
    if (this.useExpected) {
      const fit = ExpectedGain.fit({ rows: this.splits.levels[this.top()], scores: baseScores[this.top()] }, this.k);
      this.expected = this.splits.levels.map((rows, l) => fit.make(rows, baseScores[l]));
      this.expectedFit = fit.describe;
    }
    baseScores.forEach((scores, l) => this.baseline.push(this.scored(l, scores)));
    const original = pick(this.baseline[this.top()].metrics, this.metric);
    if (!Number.isFinite(original)) throw new ModelFileError(s.candidates, `gives no ${this.metric} for the original model (AUC needs both labels)`);
    const chance = chanceLevel(this.splits.levels[this.top()], this.k, this.metric);
    if (original < chance.mean + 3 * chance.sd) {
      this.atChance = { original, mean: chance.mean, sd: chance.sd };
      const M = this.metric === 'auc' ? 'AUC' : `${this.metric.toUpperCase()}@${this.k}`;
      this.notes.push(
        `The original ranks these candidates no better than chance: ${M} ${original.toFixed(4)}, against ${chance.mean.toFixed(4)} ± ${chance.sd.toFixed(4)} for a random order of each user's candidates. ` +
          `Check that the candidates' ids are the model's (0-based rows of its tables, the ids it was trained on) and their labels its positives: until then every figure here is noise.`,
      );
    }

    const sensitivity = await this.phase('sensitivity of each unit alone', () => this.sensitivity());
    this.sens = sensitivity;
    await this.phase('combinations, successive halving', () => this.combinations(sensitivity));
    await this.phase('refinement around the choice', () => this.refine());
    if (s.data) {
      await this.phase('fine-tuning the best structural candidates', () => this.finetune());
      if (s.distill !== false) {
        await this.phase('distillation', () => this.distill());
        await this.phase('quantization-aware students', () => this.quantAwareStudents());
      }
    }
    return this.finish(sensitivity);
  }

  /** A model's figures on a choosing level from its scores there (the expected ones only when compared by). */
  private scored(level: number, scores: Float32Array): Scored {
    const m = metricsOf(this.splits.levels[level], scores, this.k);
    return this.useExpected ? { ...m, expected: this.expected[level].of(scores) } : m;
  }

  /** The figure the search chooses by: the expected-gain estimate, or the measured metric (AUC). */
  private value(m: Scored): number {
    if (this.useExpected && m.expected && (this.metric === 'ndcg' || this.metric === 'hr')) return m.expected[this.metric];
    return pick(m.metrics, this.metric);
  }

  private levelBaseline(level: number): number {
    return this.value(this.baseline[level]);
  }

  private kept(c: Candidate, level: number): number {
    return this.value(c.byLevel[level]!) / this.levelBaseline(level);
  }

  /** The candidate after these steps + quantization of the assignment (built once per recipe). */
  private async candidate(a: Assignment, origin: PlanOrigin, extra: { trainSteps?: PlanStep[]; label?: string } = {}): Promise<Candidate | undefined> {
    try {
      const split = splitAtFieldDrop(structuralSteps(this.units, a, this.rowCounts, this.s.data));
      const structural = [...split.first, ...split.rest(await this.mat.irAfter(split.first)), ...(extra.trainSteps ?? [])];
      const q = quantizeSteps(this.units, a, await this.mat.irAfter(structural), { outputAware: this.outputAware });
      const mat = await this.mat.build([...structural, ...q]);
      const key = JSON.stringify(mat.steps);
      const known = this.all.get(key);
      if (known) return known;
      if (mat.steps.length === 0) return undefined;
      const c: Candidate = { id: `c${this.all.size + 1}`, label: extra.label ?? storedAssignmentKey(this.units, a, q), origin, assignment: a, mat, bytes: this.mat.bytes(mat), byLevel: [] };
      this.all.set(key, c);
      return c;
    } catch (e) {
      if (this.ctx.signal?.aborted) throw e;
      this.failed(extra.label ?? assignmentKey(this.units, a), e);
      return undefined;
    }
  }

  private async evaluate(c: Candidate, level: number): Promise<number> {
    if (!c.byLevel[level]) {
      c.byLevel[level] = this.scored(level, await this.mat.use(c.mat, (path) => rowScores(path, this.splits.levels[level])));
    }
    return this.kept(c, level);
  }

  private evaluated(level: number, cs: Iterable<Candidate>): Array<Evaluated & { c: Candidate }> {
    const out: Array<Evaluated & { c: Candidate }> = [];
    for (const c of cs) {
      const m = c.byLevel[level];
      if (m) out.push({ id: c.id, bytes: c.bytes, metric: this.value(m), users: this.splits.levels[level].users, se: this.pairedSe(m, level), c });
    }
    return out;
  }

  private outOfTime(reserveMs = 0): boolean {
    if (this.timeLeft() > reserveMs) return false;
    this.stopped = true;
    return true;
  }

  /**
   * Every option of every unit alone, on all the choosing users: the knapsack trusts these
   * curves, and on fewer users their noise decides which options it takes. In tiers (optionTier),
   * each over all units, biggest first, so that where time is short every unit has its storage
   * dtypes before any unit has its rarer options; the phase may take half the time left for the
   * search (a 3-minute search of a 134 MB NeuMF spent all of it on the item table's 75 options
   * and never combined them with the user table).
   */
  private async sensitivity(): Promise<Map<string, Map<string, { bytes: number; kept: number }>>> {
    const level = this.top();
    const out = new Map<string, Map<string, { bytes: number; kept: number }>>();
    for (const u of this.units.slice().sort((a, b) => b.bytes - a.bytes)) out.set(u.name, new Map([[u.options[0].id, { bytes: this.originalBytes, kept: 1 }]]));
    const queue = sensitivityOrder(this.units);
    const share = Date.now() + (this.timeLeft() - this.reserve()) / 2;
    const t0 = Date.now();
    let built = 0;
    for (const [done, { u, o, tier }] of queue.entries()) {
      this.progress(0.02 + 0.33 * (done / queue.length), `${u.name}: ${o.id}`);
      if (this.outOfTime(this.reserve())) break;
      if (tier > 0 && Date.now() > share) {
        this.notes.push(`Options measured alone: ${done} of ${queue.length}, in half the time left (every unit's storage dtypes first); the rest were not measured alone.`);
        break;
      }
      const c = await this.candidate({ [u.name]: o.id }, 'single');
      if (!c) continue;
      out.get(u.name)!.set(o.id, { bytes: c.bytes, kept: await this.evaluate(c, level) });
      built++;
    }
    if (built > 0) this.msPerCandidate = (Date.now() - t0) / built;
    return out;
  }

  /** Time kept back for latency, held-out scoring and writing (a tenth of the budget, at most a minute). */
  private reserve(): number {
    return Math.min(60_000, ((this.s.budgetMinutes ?? 10) * 60_000) / 10);
  }

  /** Lagrangian choices over the per-unit curves, and uniform choices; halved over the user levels. */
  private async combinations(sens: Map<string, Map<string, { bytes: number; kept: number }>>): Promise<void> {
    const assignments = new Map<string, Assignment>();
    const add = (a: Assignment) => assignments.set(assignmentKey(this.units, a), a);
    for (let i = 0; i <= 48; i++) {
      const price = 1e-4 * 10 ** (i / 8);
      const a: Assignment = {};
      for (const u of this.units) {
        const curve = sens.get(u.name);
        if (!curve) continue;
        let best = u.options[0].id;
        let cost = Infinity;
        for (const [id, p] of curve) {
          // a unit alone scoring above the original is noise, not a gain worth paying bytes for
          const c = Math.max(0, 1 - p.kept) + price * ((p.bytes - this.originalBytes) / this.originalBytes);
          if (c < cost) [cost, best] = [c, id];
        }
        a[u.name] = best;
      }
      add(a);
    }
    const tableOptionIds = new Set(this.units.find((u) => u.kind === 'table')?.options.map((o) => o.id) ?? []);
    for (const id of tableOptionIds) {
      const a: Assignment = {};
      for (const u of this.units) {
        if (u.kind === 'table' && u.options.some((o) => o.id === id)) a[u.name] = id;
        if (u.kind === 'dense') a[u.name] = /int/.test(id) ? (u.options.find((o) => o.id === 'int8' || o.id === 'uint8')?.id ?? 'float32') : /float16/.test(id) ? 'float16' : 'float32';
      }
      add(a);
    }
    const all = [...assignments.values()];
    const tried = combinationsWithin(all, this.msPerCandidate, this.timeLeft() - this.reserve());
    if (tried.length < all.length) {
      this.notes.push(`Combinations: ${tried.length} of ${all.length} proposed were built and halved (spread over the knapsack's sweep), as many as the time left allowed at ${(this.msPerCandidate / 1000).toFixed(1)} s a candidate.`);
    }
    let pool: Candidate[] = [];
    for (const a of tried) {
      if (this.outOfTime(this.reserve())) break;
      const c = await this.candidate(a, 'combined');
      if (c && !pool.includes(c)) pool.push(c);
    }
    const floorAt = (level: number) => (this.budget.maxDrop !== undefined ? this.levelBaseline(level) * (1 - this.budget.maxDrop) : this.levelBaseline(level));
    let reached: { level: number; measured: Array<Evaluated & { c: Candidate }> } | undefined;
    for (let level = 0; level <= this.top(); level++) {
      for (const [i, c] of pool.entries()) {
        this.progress(0.35 + 0.25 * ((level + i / pool.length) / (this.top() + 1)), `${pool.length} combinations on ${this.splits.levels[level].users} users`);
        if (this.outOfTime(this.reserve())) break;
        await this.evaluate(c, level);
      }
      const measured = this.evaluated(level, pool);
      if (measured.length > 0) reached = { level, measured };
      if (level === this.top()) break;
      pool = survivors(measured, Math.max(4, Math.ceil(measured.length / 2)), floorAt(level)).map((e) => e.c);
    }
    // Out of time before any combination reached all the choosing users: only units compressed
    // alone would compete (a loaded machine once wrote a 1.4x model where all-int8 kept 100% at
    // 3.7x). The few best of the last level reached are carried to the top, out of the reserve.
    if (reached && reached.level < this.top()) {
      const carried = survivors(reached.measured, CARRIED_COMBINATIONS, floorAt(reached.level)).map((e) => e.c);
      for (const c of carried) {
        this.ctx.signal?.throwIfAborted();
        await this.evaluate(c, this.top());
      }
      this.notes.push(
        `Time ran out while combinations were measured on ${this.splits.levels[reached.level].users} users: the ${carried.length} best of them were measured on all ${this.splits.levels[this.top()].users} choosing users out of the time kept in reserve; a larger --budget-minutes measures more.`,
      );
    }
  }

  private currentChoice(): { c: Candidate; within: boolean } | undefined {
    const pts = this.evaluated(this.top(), this.all.values());
    if (pts.length === 0) return undefined;
    const base = { bytes: this.originalBytes, metric: this.levelBaseline(this.top()) };
    const ch = chooseCandidate(pts, base, this.budget);
    return { c: ch.chosen.c, within: ch.withinBudget };
  }

  /**
   * Is a better than b under the budget (both measured on all choosing users)? The same order as
   * chooseCandidate: within the budget with the margin, then at face value, then most accurate.
   */
  private better(a: Candidate, b: Candidate): boolean {
    const top = this.top();
    const raw = (c: Candidate) => this.value(c.byLevel[top]!);
    if (this.budget.targetRatio !== undefined) {
      const okA = this.originalBytes / a.bytes >= this.budget.targetRatio;
      const okB = this.originalBytes / b.bytes >= this.budget.targetRatio;
      return okA !== okB ? okA : okA ? raw(a) > raw(b) : a.bytes < b.bytes;
    }
    const floor = this.levelBaseline(top) * (1 - (this.budget.maxDrop ?? 0.01));
    const sure = (c: Candidate) => raw(c) - (this.budget.confidence ?? 0) * this.pairedSe(c.byLevel[top]!, top) >= floor;
    const face = (c: Candidate) => raw(c) >= floor;
    for (const ok of [sure, face]) {
      const okA = ok(a);
      const okB = ok(b);
      if (okA !== okB) return okA;
      if (okA) return a.bytes < b.bytes;
    }
    return raw(a) > raw(b);
  }

  /**
   * Local search from the choice, then from the front members nearest it in size (up to four,
   * within 1.5x either way), then from the new choice if that moved: the search stops at a local
   * optimum, and which one depends on where it starts. On the PyTorch NeuMF (seed 1) the choice's
   * own search stopped at 9.9x while one from a smaller front member found 10.5x within the same
   * budget.
   */
  private async refine(): Promise<void> {
    const first = this.currentChoice()?.c;
    if (!first?.assignment) return;
    const searched = new Set<Candidate>([first]);
    await this.localSearch(first);
    const chosen = this.currentChoice()?.c ?? first;
    const near = (c: Candidate) => Math.abs(Math.log(c.bytes / chosen.bytes));
    const starts = paretoFront(this.evaluated(this.top(), [...this.all.values()].filter((c) => c.assignment && !searched.has(c))))
      .map((p) => p.c)
      .filter((c) => near(c) <= Math.log(1.5))
      .sort((a, b) => near(a) - near(b))
      .slice(0, 4);
    for (const c of starts) {
      if (this.outOfTime(this.reserve() * 2)) return;
      searched.add(c);
      await this.localSearch(c);
    }
    const last = this.currentChoice()?.c;
    if (last?.assignment && !searched.has(last) && !this.outOfTime(this.reserve() * 2)) await this.localSearch(last);
  }

  /** Move one unit two options up or down its size order, keep the best, repeat (12 rounds at most). */
  private async localSearch(start: Candidate): Promise<void> {
    let cur: Candidate | undefined = start;
    for (let round = 0; cur?.assignment && round < 12; round++) {
      let best: Candidate = cur;
      for (const u of this.units) {
        const order = u.options.slice().sort((x, y) => this.singleBytes(u, x.id) - this.singleBytes(u, y.id));
        const at = order.findIndex((o) => o.id === optionOf(u, cur!.assignment!).id);
        for (const d of [-2, -1, 1, 2]) {
          const o = order[at + d];
          if (!o) continue;
          if (this.outOfTime(this.reserve() * 2)) return;
          this.progress(0.6 + 0.15 * (round / 12), `round ${round + 1}: ${u.name} -> ${o.id}`);
          const c = await this.candidate({ ...cur.assignment, [u.name]: o.id }, 'refined');
          if (!c) continue;
          await this.evaluate(c, this.top());
          if (this.better(c, best)) best = c;
        }
      }
      if (best === cur) return;
      cur = best;
    }
  }

  private sens = new Map<string, Map<string, { bytes: number; kept: number }>>();

  /** Bytes of the model with only this unit's option (measured; options never built sort last). */
  private singleBytes(u: SearchUnit, id: string): number {
    return this.sens.get(u.name)?.get(id)?.bytes ?? Infinity;
  }

  /** The structural candidates just past the budget, fine-tuned (structure held) and re-quantized. */
  private async finetune(): Promise<void> {
    const top = this.top();
    const choice = this.currentChoice();
    if (!choice) return;
    const structural = [...this.all.values()].filter((c) => c.assignment && c.byLevel[top] && structuralSteps(this.units, c.assignment, this.rowCounts, this.s.data).length > 0);
    const pts = paretoFront(this.evaluated(top, structural));
    const pool = this.budget.targetRatio !== undefined ? pts.filter((p) => this.originalBytes / p.bytes >= this.budget.targetRatio!) : pts.filter((p) => p.bytes <= choice.c.bytes);
    const n = Math.min(this.s.finetuneCount ?? 6, pool.length);
    const picks = new Set<Evaluated & { c: Candidate }>();
    for (let i = 0; i < n; i++) picks.add(pool[Math.round((i * (pool.length - 1)) / Math.max(1, n - 1))]);
    let one = 0;
    for (const [i, p] of [...picks].entries()) {
      if (this.outOfTime(this.reserve() + one)) return;
      const t = Date.now();
      this.progress(0.75 + 0.1 * (i / picks.size), `fine-tuning ${p.c.label}`);
      // the original is the teacher: its scores carry what the training rows' labels alone do not
      const ft: PlanStep = { method: 'finetune', settings: { data: this.s.data!, epochs: this.s.finetuneEpochs ?? 2, seed: this.s.seed ?? 1, teacher: this.ir.path } };
      const c = await this.candidate(p.c.assignment!, 'finetuned', { trainSteps: [ft], label: `${p.c.label} (fine-tuned)` });
      if (c) await this.evaluate(c, top);
      one = Math.max(one, Date.now() - t);
      this.msPerFinetune = one;
    }
  }

  private expectedStepMs(measured: number | undefined, epochsFactor: number): number {
    return expectedTrainingMs({ measured, msPerFinetune: this.msPerFinetune, epochsFactor, msPerCandidate: this.msPerCandidate });
  }

  /**
   * Distilled students (the method's defaults at 8x fewer parameters, and at 6x, 4x and 3x), each
   * stored in float32, int8, and int4 and int3 with row, byte or column scales: a new, smaller
   * architecture competes with the compressed ones. Under --target-ratio, up to three more
   * students sized so that their smallest form lands just past the target (studentRatioFor), since
   * the most accurate model at the target is often the largest student that reaches it, and up to
   * three sized so that their int4 form with byte scales does: at 20x, the PyTorch NeuMF's student
   * of 3.5x fewer parameters reached the target in int4 per column (22.9x) and kept 96.0% of the
   * held-out NDCG@10, while its int4 with byte scales, 20.3x, kept 96.7% (seed 1); byte scales
   * keep a row's range as per-row scales do, for one byte more a row than per-column ones. A ratio
   * whose student (whole widths) is one already built is not built again: on our NeuMF, 3.9x made
   * the 4x student.
   */
  private async distill(): Promise<void> {
    const ratios = [8, 6, 4, 3];
    // parameter ratio -> the ratio its smallest stored form reached, and its int4 form with byte scales
    const reached = new Map<number, number>();
    const reachedByte = new Map<number, number>();
    // the students built, by architecture: widths are whole numbers, so two ratios can make one student
    const shapes = new Set<string>();
    const shapeOf = async (ratio: number): Promise<string | undefined> => {
      try {
        return JSON.stringify((await studentOf(this.ir, { ratio })).student);
      } catch {
        return undefined; // distillation says why, when it runs
      }
    };
    // a student trains 8 epochs (distill's default) against fine-tuning's 2, in several forms
    let longest: number | undefined;
    const timed = async (ratio: number, negatives?: number): Promise<StudentReach | undefined> => {
      const t = Date.now();
      const stored = await this.student(ratio, negatives);
      // per sampled row: a student with more negatives per positive trains on that many more rows an epoch
      longest = Math.max(longest ?? 0, (Date.now() - t) / rowsFactor(negatives));
      if (stored) {
        reached.set(ratio, stored.smallest);
        if (stored.int4byte !== undefined) reachedByte.set(ratio, stored.int4byte);
      }
      const shape = await shapeOf(ratio);
      if (shape) shapes.add(shape);
      return stored;
    };
    for (const ratio of ratios) {
      if (this.outOfTime(this.reserve() + this.expectedStepMs(longest, 4))) return;
      this.progress(0.86 + (8 - ratio) * 0.008, `distilling a student ${ratio}x smaller`);
      await timed(ratio);
    }
    const target = this.budget.targetRatio;
    if (target === undefined) return;
    const sized = async (form: keyof StudentReach, byForm: Map<number, number>): Promise<void> => {
      for (let tries = 0; tries < 3; tries++) {
        const ratio = studentRatioFor(target, byForm);
        if (ratio === undefined || reached.has(ratio) || this.outOfTime(this.reserve() + rowsFactor(SIZED_STUDENT_NEGATIVES) * this.expectedStepMs(longest, 4))) return;
        // the student of this ratio was built under another: no student lies between the two
        const shape = await shapeOf(ratio);
        if (shape && shapes.has(shape)) return;
        this.progress(0.9, `distilling a student ${ratio}x smaller (sized for ${target}x${form === 'int4byte' ? ' in int4 with byte scales' : ''})`);
        const stored = await timed(ratio, SIZED_STUDENT_NEGATIVES);
        const got = stored?.[form];
        if (got === undefined || got >= target) return;
      }
    };
    await sized('smallest', reached);
    await sized('int4byte', reachedByte);
  }

  /**
   * One distilled student in each storage form, evaluated; returns the largest ratio of original
   * to stored bytes among its forms, and that of its int4 form when a table of it got byte scales
   * (undefined when it could not be built). The low-bit forms are
   * the search's per-table ones: int4 and int3 with row, byte or column scales (int2 costs students too
   * much: under int2 rows the PyTorch NeuMF's tables keep 94.9% of NDCG@10 before any student loss).
   */
  private async student(ratio: number, negatives?: number): Promise<StudentReach | undefined> {
    const step: PlanStep = { method: 'distill', settings: { data: this.s.data!, ratio, seed: this.s.seed ?? 1, ...(negatives !== undefined ? { negatives } : {}) } };
    let student: ModelIR;
    try {
      student = await this.mat.irAfter([step]);
    } catch (e) {
      if (this.ctx.signal?.aborted) throw e;
      this.notes.push(`Distillation (${ratio}x fewer parameters) did not run: ${(e as Error).message}`);
      return undefined;
    }
    let best: StudentReach | undefined;
    const units = searchSpace(student);
    for (const dtype of STUDENT_FORMS) {
      const a: Assignment = {};
      for (const u of units) {
        // int4col, int4byte: tables under 8 wide have no such option (they are per column as int4); int3:
        // a table too narrow to pack 3 bits smaller than int8 takes the next wider form it has
        const id = STUDENT_FALLBACK[dtype].find((x) => u.options.some((o) => o.id === x));
        if (id) a[u.name] = id;
        else if (u.kind === 'dense' && dtype !== 'float32') a[u.name] = u.options.find((o) => o.id === 'int8' || o.id === 'uint8')?.id ?? 'float32';
      }
      const label = `student ${ratio}x fewer parameters${dtype === 'float32' ? '' : `, ${dtype}`}`;
      try {
        const quantize = quantizeSteps(units, a, student, { outputAware: this.outputAware });
        const c = await this.studentCandidate([step, ...quantize], label);
        // only forms with low-bit tables (TF.js has none); one that fell back to another form's
        // tables is that form, kept under its first name
        const lowBit = quantize.some((q) => q.method === 'quantize' && lowBitsOf(String(q.settings.dtype)) !== undefined);
        if (lowBit && dtype !== 'float32' && dtype !== 'int8' && !this.lowBitStudents.has(c)) {
          this.lowBitStudents.set(c, { distill: step, quantize, form: dtype });
        }
        const r = this.originalBytes / c.bytes;
        best = { ...best, smallest: Math.max(best?.smallest ?? 0, r) };
        if (dtype === 'int4byte' && quantize.some((q) => q.method === 'quantize' && q.settings.scales === 'byte')) best.int4byte = r;
      } catch (e) {
        if (this.ctx.signal?.aborted) throw e;
        this.failed(label, e);
      }
    }
    return best;
  }

  /** A distilled candidate built from its steps (once) and evaluated on all choosing users. */
  private async studentCandidate(steps: PlanStep[], label: string): Promise<Candidate> {
    const mat = await this.mat.build(steps);
    const key = JSON.stringify(mat.steps);
    const known = this.all.get(key);
    if (known) return known;
    const c: Candidate = { id: `c${this.all.size + 1}`, label, origin: 'distilled', mat, bytes: this.mat.bytes(mat), byLevel: [] };
    this.all.set(key, c);
    await this.evaluate(c, this.top());
    return c;
  }

  /** the low-bit forms of the students: how each was built, to build it again quantization-aware */
  private readonly lowBitStudents = new Map<Candidate, { distill: PlanStep; quantize: PlanStep[]; form: LowBitStudentForm }>();

  /**
   * The low-bit students that decide the choice, fine-tuned again quantization-aware (the tables
   * trained through the rounding of their form, the original as teacher) and stored in the same
   * form: under --target-ratio the QAT_STUDENTS most accurate ones that reach it; under
   * --max-drop the QAT_STUDENTS smallest ones within QAT_REACH of the floor. Stored int4 per
   * column, three seeds, all 943 users, 2 epochs of quantization-aware training won back 0.9
   * points of NDCG@10 on average on 3.5x students of the PyTorch NeuMF (-0.1, +0.7, +2.2) and
   * 0.7 on 3.3x students of ours (+1.4, +0.2, +0.4), while 1 or 4 epochs did no better than
   * quantizing directly: within the noise, so both forms compete.
   */
  private async quantAwareStudents(): Promise<void> {
    const top = this.top();
    // byte scales are fitted after training (scale-levels.ts): nothing to train through
    const pool = this.evaluated(top, [...this.lowBitStudents].filter(([, how]) => splitForm(how.form).scales !== 'byte').map(([c]) => c));
    const target = this.budget.targetRatio;
    const base = this.levelBaseline(top);
    const picks =
      target !== undefined
        ? pool.filter((p) => this.originalBytes / p.bytes >= target).sort((x, y) => y.metric - x.metric)
        : pool.filter((p) => p.metric >= base * (1 - (this.budget.maxDrop ?? 0.01) - QAT_REACH)).sort((x, y) => x.bytes - y.bytes);
    let longest: number | undefined;
    for (const [i, p] of picks.slice(0, QAT_STUDENTS).entries()) {
      if (this.outOfTime(this.reserve() + this.expectedStepMs(longest, 2))) return;
      const t = Date.now();
      const how = this.lowBitStudents.get(p.c)!;
      const { dtype, scales } = splitForm(how.form);
      const label = `${p.c.label}, quantization-aware`;
      this.progress(0.93 + 0.005 * i, `quantization-aware fine-tuning: ${label}`);
      const qat: PlanStep = {
        method: 'finetune',
        settings: { data: this.s.data!, epochs: this.s.finetuneEpochs ?? 2, seed: this.s.seed ?? 1, teacher: this.ir.path, quantAware: { dtype, scales: scales ?? 'row' } },
      };
      try {
        await this.studentCandidate([how.distill, qat, ...how.quantize], label);
      } catch (e) {
        if (this.ctx.signal?.aborted) throw e;
        this.failed(label, e);
      }
      longest = Math.max(longest ?? 0, Date.now() - t);
    }
  }

  private point(c: Candidate): PlanPoint {
    const top = this.top();
    const m = c.byLevel[top]!.metrics;
    const judgeBase = this.judgeBaseline;
    return {
      id: c.id,
      label: c.label,
      origin: c.origin,
      bytes: c.bytes,
      ratio: this.originalBytes / c.bytes,
      metrics: m,
      kept: this.kept(c, top),
      // no share of nothing: an original that scores 0 on these users has no "measured" column
      ...(this.metric !== 'auc' && pick(this.baseline[top].metrics, this.metric) > 0 ? { keptMeasured: pick(m, this.metric) / pick(this.baseline[top].metrics, this.metric) } : {}),
      users: this.splits.levels[top].users,
      ...(c.latency ? { latency: c.latency } : {}),
      ...(c.heldOut && judgeBase ? { heldOut: { ...c.heldOut, kept: pick(c.heldOut, this.metric) / pick(judgeBase, this.metric) } } : {}),
      ...(c.byLevel[top] ? { keptSe: this.pairedSe(c.byLevel[top]!, top) / this.levelBaseline(top) } : {}),
      recipe: c.mat.steps,
    };
  }

  private judgeBaseline?: Metrics;

  /** Paired standard error of (candidate - original) in metric units; 0 for AUC (no per-user gain). */
  private pairedSe(m: Scored, level: number): number {
    if (this.metric === 'auc') return 0;
    const mine = this.useExpected && m.expected ? m.expected.perUser : m.perUser;
    const base = this.useExpected && this.baseline[level].expected ? this.baseline[level].expected!.perUser : this.baseline[level].perUser;
    return pairedStandardError(mine[this.metric], base[this.metric]);
  }

  private async finish(sensitivity: Map<string, Map<string, { bytes: number; kept: number }>>): Promise<PlanResult> {
    const top = this.top();
    let measured = this.evaluated(top, this.all.values());
    if (measured.length === 0) throw new Error(`no candidate could be evaluated within ${this.s.budgetMinutes ?? 10} minutes: give a larger --budget-minutes`);
    const frontC = paretoFront(measured).map((e) => e.c);
    // latency: the original and every front member, at the latency batch, in this run
    this.progress(0.9, 'latency of the front');
    const batch = this.s.latencyBatch ?? 256;
    let originalLatency: { p50Ms: number } | undefined;
    let meter: LatencyMeter | undefined;
    try {
      meter = await LatencyMeter.open(this.ir, batch);
      for (const c of frontC) {
        const l = await this.mat.use(c.mat, (path) => meter!.measure(path));
        c.latency = { p50Ms: l.other.p50Ms, ratio: l.ratio, slower: isSlower(l) };
      }
      const p50Ms = meter.originalP50Ms();
      if (p50Ms !== undefined) originalLatency = { p50Ms };
    } catch (e) {
      if (this.ctx.signal?.aborted) throw e;
      this.notes.push(`Latency was not measured: ${(e as Error).message}`);
    } finally {
      await meter?.close();
    }
    measured = this.evaluated(top, frontC).map((e) => ({ ...e, latencyRatio: e.c.latency?.ratio }));
    const base = { bytes: this.originalBytes, metric: this.levelBaseline(top) };
    const choice = chooseCandidate(measured, base, this.budget);
    const front = paretoFront(measured.map((e) => ({ ...e, latencyRatio: undefined })));
    if (this.splits.judge) {
      this.progress(0.96, 'scoring the held-out users');
      this.judgeBaseline = (await scoreRows(this.ir.path, this.splits.judge, this.k)).metrics;
      for (const e of new Set([...front, choice.chosen])) e.c.heldOut = (await this.mat.use(e.c.mat, (path) => scoreRows(path, this.splits.judge!, this.k))).metrics;
    }
    // the chosen model's files are moved into place by the caller
    await this.mat.keep(choice.chosen.c.mat);
    const notes = [...this.notes];
    const ev = this.mat.evictions;
    if (ev.deleted > 0) {
      notes.push(
        `The search's model files were held to ${formatBytes(this.mat.diskBudget)} on disk: ${ev.deleted} were deleted when others were written, and ${ev.rewritten} written again from their recipes when needed.`,
      );
    }
    for (const [reason, f] of this.failures) notes.push(`${f.count} candidate${f.count === 1 ? '' : 's'} could not be built (first: ${f.first}): ${reason}`);
    notes.push(
      this.splits.judge
        ? `Chosen on ${this.splits.levels[top].users} users; the held-out figures are on ${this.splits.judgeFrom}, which the search never saw.`
        : `Chosen and measured on the same ${this.splits.levels[top].users} users: the figures are optimistic (the best of ${this.all.size} candidates on these rows). Hold out a share of the users (--holdout 0.5; in VS Code the prunescope.compressHoldout setting) or give other users' candidates (--test FILE) for a figure the search never saw.`,
    );
    const chosenSe = choice.chosen.se;
    const M = this.metric.toUpperCase();
    if (this.useExpected) {
      const c = choice.chosen.c.byLevel[top]!;
      const measuredSe = (100 * pairedStandardError(c.perUser[this.metric as 'ndcg' | 'hr'], this.baseline[top].perUser[this.metric as 'ndcg' | 'hr'])) / pick(this.baseline[top].metrics, this.metric);
      const expectedSe = (100 * (chosenSe ?? 0)) / this.levelBaseline(top);
      // the claim holds only for a figure much steadier than the measured one
      const steadier = !this.atChance && expectedSe < measuredSe / 2;
      notes.push(
        `Candidates were compared by their expected ${M}@${this.k}: each candidate item of a user stands in for the positive in turn, weighted by how likely the original makes it the positive (${this.expectedFit}, fitted on these users' labels). ` +
          (steadier
            ? `For the chosen model its standard error is ${expectedSe.toFixed(2)}%, against ${measuredSe.toFixed(1)}% for the measured ${M} on the same users, so the choice is not the luckiest of ${this.all.size} noisy figures. `
            : `For the chosen model its standard error is ${expectedSe.toFixed(2)}%, against ${measuredSe.toFixed(1)}% for the measured ${M}: no steadier, so the choice may be the luckiest of ${this.all.size} noisy figures; the held-out figure is the one to go by. `) +
          `It counts a reordering of items the original scores apart as a possible loss, so it tends to overstate what compression costs, most for fine-tuned and distilled models; the "measured" column is the metric itself.`,
      );
    } else if (chosenSe !== undefined && chosenSe > 0) {
      const rel = (100 * chosenSe) / this.levelBaseline(top);
      notes.push(`The chosen model's share of the original's ${this.metric} has a standard error of ${rel.toFixed(1)}% on these users (paired per user): differences below about ${(2 * rel).toFixed(1)}% cannot be told from noise here.`);
    }
    if (this.stopped) {
      // the phases it cut, named: with --data, a user should know the training did not run
      const cut = this.phases.filter((p) => p.budgetEnded);
      const none = cut.filter((p) => p.candidates === 0).map((p) => p.name);
      const some = cut.filter((p) => p.candidates > 0).map((p) => `${p.name} (${p.candidates} candidate${p.candidates === 1 ? '' : 's'})`);
      const which = [none.length ? `did not run: ${none.join(', ')}` : '', some.length ? `cut short: ${some.join(', ')}` : ''].filter(Boolean).join('; ');
      notes.push(`The time budget (${this.s.budgetMinutes ?? 10} min) ended the search early${which ? ` (${which})` : ''}: a larger --budget-minutes may find more.`);
    }
    if (!choice.withinBudget) notes.push(`Nothing met the budget: the model written is the best effort (${choice.reason}).`);
    if (this.budget.maxLatencyRatio !== undefined && choice.withinBudget) notes.push(`Candidates slower than ${this.budget.maxLatencyRatio}x the original's p50 at batch ${batch} were excluded from the choice.`);
    if (originalLatency) notes.push(`Latency: p50 of one call of ${batch} pair${batch === 1 ? '' : 's'} in ONNX Runtime / TF.js on this machine, each model's calls alternating with the original's; its ratio is the median over those pairs of calls. The original ran at ${originalLatency.p50Ms.toFixed(3)} ms.`);
    return {
      model: this.ir.path,
      candidates: this.s.candidates,
      metric: this.metric,
      k: this.k,
      budget: this.budget,
      chooseBy: this.useExpected ? 'expected' : 'measured',
      baseline: {
        bytes: this.originalBytes,
        metrics: this.baseline[top].metrics,
        users: this.splits.levels[top].users,
        ...(originalLatency ? { latencyP50Ms: originalLatency.p50Ms } : {}),
        ...(this.judgeBaseline ? { heldOut: this.judgeBaseline } : {}),
      },
      chosen: this.point(choice.chosen.c),
      withinBudget: choice.withinBudget,
      reason: choice.reason,
      front: front.map((e) => this.point(e.c)),
      trained: [...this.all.values()].filter((c) => (c.origin === 'finetuned' || c.origin === 'distilled') && c.byLevel[top]).map((c) => this.point(c)),
      evaluated: this.all.size,
      seconds: (Date.now() - this.t0) / 1000,
      budgetMinutes: this.s.budgetMinutes ?? 10,
      stoppedAtBudget: this.stopped,
      phases: this.phases,
      sensitivity: [...sensitivity].flatMap(([unit, curve]) => [...curve].filter(([id]) => id !== 'float32').map(([option, p]) => ({ unit, option, bytes: p.bytes, kept: p.kept }))),
      ...(this.splits.judgeFrom ? { judgedOn: this.splits.judgeFrom } : {}),
      ...(this.atChance ? { atChance: this.atChance } : {}),
      notes,
    };
  }

  /** The folder holding the chosen model's files (to rename into place). */
  static dirOf(result: PlanResult, planner: CompressPlanner): string {
    for (const c of planner.all.values()) if (c.id === result.chosen.id) return c.mat.dir;
    throw new Error(`no candidate ${result.chosen.id}`);
  }
}
