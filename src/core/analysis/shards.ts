// Analysis split into per-tensor work units, so that an existing distributed engine (or a shell
// loop) only has to fan them out: `analyze --shard i/n` analyses the tensors of shard i and writes
// a shard report; `merge` checks that the shards are complete and of the same model and assembles
// the report `analyze` would have printed. Shards are balanced by element count, largest first.

import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { ModelIR } from '../model/ir.js';
import { ModelFileError } from '../model/ir.js';
import { tensorElementCount } from '../model/tensor-data.js';
import type { ModelReport, TensorReport } from '../../shared/report.js';
import { analyzeTensors, assembleReport, DEFAULT_EPSILON, type AnalyzeOptions } from './analyze-model.js';

export const SHARD_REPORT_KIND = 'prunescope-analysis-shard';

export interface ShardSpec {
  /** 0-based */
  index: number;
  count: number;
}

export interface ShardReport {
  kind: typeof SHARD_REPORT_KIND;
  version: 1;
  model: string;
  /** the model's files (sizes and hashes of their ends): shards of another file do not merge */
  fingerprint: string;
  shard: ShardSpec;
  epsilon: number;
  tensors: Array<{ index: number; report: TensorReport }>;
}

/** "i/n" with 1 <= i <= n (as users write it) -> 0-based spec. */
export function parseShard(text: string): ShardSpec {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const i = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!m || !(n >= 1 && n <= 100_000) || !(i >= 1 && i <= n)) throw new RangeError(`a shard is i/n with 1 <= i <= n, got '${text}'`);
  return { index: i - 1, count: n };
}

/** Tensor indices of each of `count` shards: largest tensors first, each to the least loaded shard. */
export function assignShards(ir: ModelIR, count: number): number[][] {
  return balanceShards(ir.tensors.map((t) => tensorElementCount(t.shape)), count);
}

/** Indices of `sizes` for each of `count` shards: largest first, each to the least loaded shard; each list in index order. */
export function balanceShards(sizes: number[], count: number): number[][] {
  const order = sizes.map((n, i) => ({ i, n })).sort((a, b) => b.n - a.n || a.i - b.i);
  const load = new Array<number>(count).fill(0);
  const out: number[][] = Array.from({ length: count }, () => []);
  for (const { i, n } of order) {
    let best = 0;
    for (let s = 1; s < count; s++) if (load[s] < load[best]) best = s;
    out[best].push(i);
    load[best] += Math.max(1, n);
  }
  return out.map((list) => list.sort((a, b) => a - b));
}

const END_BYTES = 64 * 1024;

/** Sizes and SHA-256 of the first and last 64 KiB of every file of the model. */
export async function modelFingerprint(ir: ModelIR): Promise<string> {
  const h = createHash('sha256');
  for (const f of ir.files) {
    h.update(`${f.bytes}\n`);
    const fh = await open(f.path, 'r');
    try {
      const head = Buffer.alloc(Math.min(END_BYTES, f.bytes));
      await fh.read(head, 0, head.length, 0);
      const tail = Buffer.alloc(Math.min(END_BYTES, f.bytes));
      await fh.read(tail, 0, tail.length, Math.max(0, f.bytes - tail.length));
      h.update(head).update(tail);
    } finally {
      await fh.close();
    }
  }
  return h.digest('hex').slice(0, 32);
}

/** Analyses the tensors of one shard. */
export async function analyzeShard(ir: ModelIR, shard: ShardSpec, opts: AnalyzeOptions = {}): Promise<ShardReport> {
  const indices = assignShards(ir, shard.count)[shard.index];
  const reports = await analyzeTensors(ir, indices, opts);
  return {
    kind: SHARD_REPORT_KIND,
    version: 1,
    model: ir.path,
    fingerprint: await modelFingerprint(ir),
    shard,
    epsilon: opts.epsilon ?? DEFAULT_EPSILON,
    tensors: indices.map((index, k) => ({ index, report: reports[k] })),
  };
}

/** Checks a parsed JSON document is a shard report (the shape only; merge checks the rest). */
export function asShardReport(doc: unknown, file: string): ShardReport {
  const d = doc as Partial<ShardReport> | null;
  if (!d || d.kind !== SHARD_REPORT_KIND) throw new ModelFileError(file, 'is not a PruneScope analysis shard (analyze --shard i/n writes one)');
  if (d.version !== 1) throw new ModelFileError(file, `is a shard of version ${String(d.version)}; this PruneScope reads version 1`);
  if (!d.shard || !Array.isArray(d.tensors) || typeof d.fingerprint !== 'string') throw new ModelFileError(file, 'is a damaged shard report');
  return d as ShardReport;
}

/**
 * The model report from all shards of one analysis: every shard once, of this model (same
 * fingerprint), with the same epsilon; each tensor exactly once.
 */
export async function mergeShards(ir: ModelIR, shards: Array<{ file: string; report: ShardReport }>): Promise<ModelReport> {
  if (shards.length === 0) throw new Error('merge: no shard reports given');
  const count = shards[0].report.shard.count;
  const fp = await modelFingerprint(ir);
  const seen = new Map<number, string>();
  const byTensor = new Map<number, TensorReport>();
  for (const { file, report } of shards) {
    if (report.shard.count !== count) throw new ModelFileError(file, `is shard ${report.shard.index + 1}/${report.shard.count}, the others are of ${count}`);
    if (report.fingerprint !== fp) throw new ModelFileError(file, `is a shard of another model (or another version of ${ir.path})`);
    if (report.epsilon !== shards[0].report.epsilon) throw new ModelFileError(file, `was analysed with epsilon ${report.epsilon}, the others with ${shards[0].report.epsilon}`);
    const twin = seen.get(report.shard.index);
    if (twin) throw new ModelFileError(file, `is shard ${report.shard.index + 1}/${count} again (also ${twin})`);
    seen.set(report.shard.index, file);
    for (const t of report.tensors) byTensor.set(t.index, t.report);
  }
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !seen.has(i));
  if (missing.length > 0) throw new Error(`merge: shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i + 1}/${count}`).join(', ')} missing`);
  const tensors: TensorReport[] = [];
  for (let i = 0; i < ir.tensors.length; i++) {
    const r = byTensor.get(i);
    if (!r) throw new Error(`merge: no shard holds tensor ${i} (${ir.tensors[i].name})`);
    tensors.push(r);
  }
  return assembleReport(ir, tensors, shards[0].report.epsilon);
}
