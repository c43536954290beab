// Work units across machines on BullMQ (a well-kept job queue on Redis: retries, stalled-job
// recovery, events; no scheduler of our own). A producer puts one job per shard on the queue and
// waits; `prunescope worker` processes, on any machine that reaches the Redis server and sees the
// model and the output folder at the same paths (a shared file system), run the shard (an
// analysis shard report, or the int8 codes of a share of the tables) and write its file; the
// producer merges the reports or assembles the model. Jobs are idempotent: a shard's file is
// written atomically, so a retried or duplicated job only rewrites the same file.

import { createHash } from 'node:crypto';
import { readFile, mkdir } from 'node:fs/promises';
import { writeFileAtomic } from '../model/atomic-write.js';
import { dirname, join } from 'node:path';
import { Queue, QueueEvents, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { readModel } from '../model/read-model.js';
import { analyzeShard, asShardReport, mergeShards, modelFingerprint, type ShardReport, type ShardSpec } from '../analysis/shards.js';
import type { ModelReport } from '../../shared/report.js';
import { quantizeShard, type QuantizeSettings } from '../compress/quantize.js';

export const QUEUE_NAME = 'prunescope';

export interface AnalyzeShardJob {
  kind: 'analyze-shard';
  model: string;
  shard: ShardSpec;
  epsilon?: number;
  spectrum?: boolean;
  /** where the worker writes the shard report (a path every worker and the producer see) */
  out: string;
}

export interface QuantizeShardJob {
  kind: 'quantize-shard';
  model: string;
  shard: ShardSpec;
  settings: QuantizeSettings;
  /** where the worker writes the shard file */
  out: string;
}

export type ShardJob = AnalyzeShardJob | QuantizeShardJob;

/** `redis://[user:password@]host:port[/db]` -> BullMQ connection options. */
export function redisConnection(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RangeError(`--redis must be a URL like redis://127.0.0.1:6379, got '${url}'`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new RangeError(`--redis must be a redis:// URL, got '${url}'`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(Number.isInteger(db) ? { db } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // the worker's blocking connection must not give up on a slow server (BullMQ's requirement)
    maxRetriesPerRequest: null,
  };
}

async function writeAtomic(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFileAtomic(file, new TextEncoder().encode(text));
}

/** What a worker does with one job. */
export async function runShardJob(data: ShardJob): Promise<{ out: string; tensors: number }> {
  if (data.kind === 'quantize-shard') {
    await mkdir(dirname(data.out), { recursive: true });
    const header = await quantizeShard(await readModel(data.model), data.settings, data.shard, data.out);
    return { out: data.out, tensors: header.tables.length };
  }
  if (data.kind !== 'analyze-shard') throw new Error(`unknown job kind ${String((data as { kind?: unknown }).kind)}`);
  const ir = await readModel(data.model);
  const report = await analyzeShard(ir, data.shard, { epsilon: data.epsilon, spectrum: data.spectrum });
  await writeAtomic(data.out, JSON.stringify(report));
  return { out: data.out, tensors: report.tensors.length };
}

export interface WorkerHandle {
  close(): Promise<void>;
}

/** A worker on this machine; `log` gets one line per job started, finished or failed. */
export function startWorker(connection: ConnectionOptions, opts: { concurrency?: number; log?: (line: string) => void } = {}): WorkerHandle {
  const log = opts.log ?? (() => undefined);
  const worker = new Worker<ShardJob>(
    QUEUE_NAME,
    async (job: Job<ShardJob>) => {
      log(`job ${job.id}: ${job.data.kind} ${job.data.shard.index + 1}/${job.data.shard.count} of ${job.data.model}`);
      return runShardJob(job.data);
    },
    { connection, concurrency: opts.concurrency ?? 1 },
  );
  worker.on('completed', (job) => log(`job ${job.id}: done`));
  worker.on('failed', (job, err) => log(`job ${job?.id}: failed: ${err.message}`));
  return { close: () => worker.close() };
}

export interface DistributeOptions {
  shards: number;
  /** folder for the shard reports (seen by every worker) */
  outDir: string;
  epsilon?: number;
  spectrum?: boolean;
  /** give up waiting after this long; default 1 hour */
  timeoutMs?: number;
  onShardDone?: (done: number, total: number) => void;
}

/** Puts one job per shard on the queue and waits for all; returns the files the workers wrote, in shard order. */
async function runShards(
  connection: ConnectionOptions,
  count: number,
  job: (index: number) => { data: ShardJob; id: string },
  o: { timeoutMs?: number; onShardDone?: (done: number, total: number) => void },
): Promise<string[]> {
  const queue = new Queue<ShardJob>(QUEUE_NAME, { connection });
  const events = new QueueEvents(QUEUE_NAME, { connection });
  try {
    await events.waitUntilReady();
    const jobs = await queue.addBulk(
      Array.from({ length: count }, (_, index) => {
        const { data, id } = job(index);
        // the same work is one job: a second producer waits on the first one's work
        return { name: data.kind, data, opts: { jobId: id, attempts: 2, removeOnComplete: true, removeOnFail: 100 } };
      }),
    );
    let done = 0;
    return await Promise.all(
      jobs.map(async (j) => {
        const r = (await j.waitUntilFinished(events, o.timeoutMs ?? 3_600_000)) as { out: string } | undefined;
        o.onShardDone?.(++done, jobs.length);
        return r?.out ?? j.data.out;
      }),
    );
  } finally {
    await events.close();
    await queue.close();
  }
}

/** Puts one job per shard on the queue, waits for all, merges the reports. */
export async function distributeAnalysis(model: string, connection: ConnectionOptions, o: DistributeOptions): Promise<ModelReport> {
  const ir = await readModel(model);
  const fp = await modelFingerprint(ir);
  const files = await runShards(connection, o.shards, (index) => ({
    data: { kind: 'analyze-shard', model: ir.path, shard: { index, count: o.shards }, epsilon: o.epsilon, spectrum: o.spectrum, out: join(o.outDir, `${fp}-${index + 1}-of-${o.shards}.shard.json`) },
    id: `${fp}-${index}-${o.shards}`,
  }), o);
  const shards: Array<{ file: string; report: ShardReport }> = [];
  for (const file of files) shards.push({ file, report: asShardReport(JSON.parse(await readFile(file, 'utf8')), file) });
  return mergeShards(ir, shards);
}

/**
 * Puts the N table shards of an ONNX int8 quantization on the queue and waits for the workers;
 * returns the shard files (quantize's fromShards assembles the model from them).
 */
export async function distributeQuantization(
  model: string,
  connection: ConnectionOptions,
  o: Omit<DistributeOptions, 'epsilon' | 'spectrum'> & { settings: QuantizeSettings },
): Promise<string[]> {
  const ir = await readModel(model);
  const fp = await modelFingerprint(ir);
  // the settings are part of the work: other settings are another job and another file
  const key = createHash('sha256').update(JSON.stringify(o.settings)).digest('hex').slice(0, 12);
  return runShards(connection, o.shards, (index) => ({
    data: { kind: 'quantize-shard', model: ir.path, shard: { index, count: o.shards }, settings: o.settings, out: join(o.outDir, `${fp}-${key}-${index + 1}-of-${o.shards}.qshard`) },
    id: `q-${fp}-${key}-${index}-${o.shards}`,
  }), o);
}
