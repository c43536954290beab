// Inference latency per batch size: p50 / p95 of the wall time of one score() call and the
// throughput (pairs/s) at that batch size. Warm-up calls (JIT, allocator, ORT's first-run
// planning) are run and thrown away first. Ids are spread over the vocabularies so that table
// lookups touch memory like real traffic.

import { ScoreBatch } from './input-binding.js';
import { Scorer } from './ort-runner.js';

export interface LatencyOptions {
  /** default [1, 64, 1024] */
  batchSizes?: number[];
  /** discarded calls per batch size; default 3 */
  warmup?: number;
  /** timed calls per batch size (at least 5 are made even past maxSecondsPerBatch); default 30 */
  runs?: number;
  /** stop timing a batch size after this long; default 2 */
  maxSecondsPerBatch?: number;
  /** id ranges (embedding rows); default 1 (all ids 0) */
  userVocab?: number;
  itemVocab?: number;
  /** per field (user, item, extras), for `fields` inputs */
  fieldVocab?: number[];
  seed?: number;
}

export interface LatencyPoint {
  batch: number;
  runs: number;
  p50Ms: number;
  p95Ms: number;
  meanMs: number;
  /** pairs scored per second at the median latency */
  pairsPerSecond: number;
}

export interface LatencyReport {
  runtime: string;
  /** ORT execution provider that was timed ('cpu', 'webgpu', 'cuda'); absent for TF.js */
  executionProvider?: string;
  warmup: number;
  points: LatencyPoint[];
  /** the model takes exactly this many rows per call (fixed first dim): each batch ran as calls of it */
  fixedBatch?: number;
}

/** Nearest-rank percentile (q in [0, 1]) of values sorted ascending. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const rank = Math.min(n, Math.max(1, Math.ceil(q * n)));
  return sorted[rank - 1];
}

/** A batch of `n` pseudo-random pairs (and fields) inside the vocabularies. */
export function syntheticBatch(n: number, opts: Pick<LatencyOptions, 'userVocab' | 'itemVocab' | 'fieldVocab' | 'seed'>): ScoreBatch {
  let s = (opts.seed ?? 12345) >>> 0;
  const next = (m: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % Math.max(1, m);
  };
  const user = new Int32Array(n);
  const item = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    user[i] = next(opts.userVocab ?? 1);
    item[i] = next(opts.itemVocab ?? 1);
  }
  const batch: ScoreBatch = { user, item };
  if (opts.fieldVocab && opts.fieldVocab.length > 0) {
    const F = opts.fieldVocab.length;
    const f = new Int32Array(n * F);
    for (let i = 0; i < n; i++) {
      f[i * F] = user[i] % Math.max(1, opts.fieldVocab[0]);
      if (F > 1) f[i * F + 1] = item[i] % Math.max(1, opts.fieldVocab[1]);
      for (let j = 2; j < F; j++) f[i * F + j] = next(opts.fieldVocab[j]);
    }
    batch.fields = f;
  }
  return batch;
}

export async function measureLatency(scorer: Scorer, opts: LatencyOptions = {}): Promise<LatencyReport> {
  const sizes = opts.batchSizes ?? [1, 64, 1024];
  for (const b of sizes) if (!Number.isInteger(b) || b < 1) throw new Error(`batch sizes must be positive integers, got ${b}`);
  const warmup = opts.warmup ?? 3;
  const runs = opts.runs ?? 30;
  const budgetMs = (opts.maxSecondsPerBatch ?? 2) * 1000;
  const points: LatencyPoint[] = [];
  for (const b of sizes) {
    const batch = syntheticBatch(b, opts);
    for (let i = 0; i < warmup; i++) await scorer.score(batch, b);
    const times: number[] = [];
    const start = performance.now();
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await scorer.score(batch, b);
      times.push(performance.now() - t0);
      if (i >= 4 && performance.now() - start > budgetMs) break;
    }
    const sorted = Float64Array.from(times).sort();
    const p50 = percentile(sorted, 0.5);
    points.push({
      batch: b,
      runs: times.length,
      p50Ms: p50,
      p95Ms: percentile(sorted, 0.95),
      meanMs: times.reduce((a, t) => a + t, 0) / times.length,
      pairsPerSecond: p50 > 0 ? (b * 1000) / p50 : Infinity,
    });
  }
  return {
    runtime: scorer.runtime,
    ...(scorer.executionProvider ? { executionProvider: scorer.executionProvider.name } : {}),
    warmup,
    points,
    ...(scorer.fixedBatch ? { fixedBatch: scorer.fixedBatch } : {}),
  };
}

export interface PairedLatency {
  /** p50 / p95 of each model's calls, ms */
  base: { p50Ms: number; p95Ms: number };
  other: { p50Ms: number; p95Ms: number };
  /** median over the pairs of (other's call time / base's call time in the same pair) */
  ratio: number;
  /** share of the pairs in which `other` took longer */
  slowerShare: number;
  pairs: number;
}

/**
 * Latency of `other` against `base` at one batch size, their calls interleaved (base then other,
 * other then base, alternately) so that both see the same machine state: the ratio is the median
 * of the per-pair ratios. On the dev machine this steadied the ratio of two small ONNX models
 * (0.1-0.3 ms a call): measured one after the other, 8 repeats gave 1.27-2.27x; paired, 2.04-2.20x
 * in 7 of 8 (2.87x in one).
 */
export async function measurePairedLatency(
  base: Scorer,
  other: Scorer,
  batchSize: number,
  opts: Omit<LatencyOptions, 'batchSizes'> = {},
  now: () => number = () => performance.now(),
): Promise<PairedLatency> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch sizes must be positive integers, got ${batchSize}`);
  const batch = syntheticBatch(batchSize, opts);
  for (let i = 0; i < (opts.warmup ?? 3); i++) {
    await base.score(batch, batchSize);
    await other.score(batch, batchSize);
  }
  const runs = opts.runs ?? 30;
  const budgetMs = (opts.maxSecondsPerBatch ?? 2) * 1000;
  const tb: number[] = [];
  const to: number[] = [];
  const ratios: number[] = [];
  const time = async (s: Scorer) => {
    const t0 = now();
    await s.score(batch, batchSize);
    return now() - t0;
  };
  const start = now();
  for (let i = 0; i < runs; i++) {
    let b: number;
    let o: number;
    if (i % 2 === 0) {
      b = await time(base);
      o = await time(other);
    } else {
      o = await time(other);
      b = await time(base);
    }
    tb.push(b);
    to.push(o);
    ratios.push(o / Math.max(b, 1e-9));
    if (i >= 4 && now() - start > budgetMs) break;
  }
  const sorted = (x: number[]) => Float64Array.from(x).sort();
  const stats = (x: number[]) => ({ p50Ms: percentile(sorted(x), 0.5), p95Ms: percentile(sorted(x), 0.95) });
  return { base: stats(tb), other: stats(to), ratio: percentile(sorted(ratios), 0.5), slowerShare: ratios.filter((r) => r > 1).length / ratios.length, pairs: ratios.length };
}

/**
 * A paired measurement's verdict: slower when at least 5% slower at the median of the pairs and
 * slower in 3 pairs of 4, faster the other way round, else the same within noise. (The spread
 * of each model's own calls is no guide: a 0.05 ms call's p95 can be twice its p50, which called
 * a steady 1.9x "within noise" on one run of two.)
 */
export function pairedVerdict(l: Pick<PairedLatency, 'ratio' | 'slowerShare'>): 'slower' | 'faster' | 'same' {
  if (l.ratio > 1.05 && l.slowerShare >= 0.75) return 'slower';
  if (l.ratio < 1 / 1.05 && l.slowerShare <= 0.25) return 'faster';
  return 'same';
}
