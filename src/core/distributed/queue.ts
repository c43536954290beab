// Work units across machines on BullMQ (a well-kept job queue on Redis: retries, stalled-job
// recovery, events; no scheduler of our own). A producer puts one job per shard on the queue and
// waits; `prunescope worker` processes, on any machine that reaches the Redis server and sees the
// model and the output folder at the same paths (a shared file system), analyse the shard and
// write its report; the producer merges the reports. Jobs are idempotent: a shard's report is
// written atomically, so a retried or duplicated job only rewrites the same file.

import { readFile, mkdir } from 'node:fs/promises';
import { writeFileAtomic } from '../model/atomic-write.js';
import { dirname, join } from 'node:path';
import { Queue, QueueEvents, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { readModel } from '../model/read-model.js';
import { analyzeShard, asShardReport, mergeShards, modelFingerprint, type ShardReport, type ShardSpec } from '../analysis/shards.js';
import type { ModelReport } from '../../shared/report.js';

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
export async function runShardJob(data: AnalyzeShardJob): Promise<{ out: string; tensors: number }> {
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
  const worker = new Worker<AnalyzeShardJob>(
    QUEUE_NAME,
    async (job: Job<AnalyzeShardJob>) => {
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

/** Puts one job per shard on the queue, waits for all, merges the reports. */
export async function distributeAnalysis(model: string, connection: ConnectionOptions, o: DistributeOptions): Promise<ModelReport> {
  const ir = await readModel(model);
  const fp = await modelFingerprint(ir);
  const queue = new Queue<AnalyzeShardJob>(QUEUE_NAME, { connection });
  const events = new QueueEvents(QUEUE_NAME, { connection });
  try {
    await events.waitUntilReady();
    const jobs = await queue.addBulk(
      Array.from({ length: o.shards }, (_, index) => {
        const out = join(o.outDir, `${fp}-${index + 1}-of-${o.shards}.shard.json`);
        const data: AnalyzeShardJob = { kind: 'analyze-shard', model: ir.path, shard: { index, count: o.shards }, epsilon: o.epsilon, spectrum: o.spectrum, out };
        // the same model and shard is one job: a second producer waits on the first one's work
        return { name: 'analyze-shard', data, opts: { jobId: `${fp}-${index}-${o.shards}`, attempts: 2, removeOnComplete: true, removeOnFail: 100 } };
      }),
    );
    let done = 0;
    const results = await Promise.all(
      jobs.map(async (job) => {
        const r = (await job.waitUntilFinished(events, o.timeoutMs ?? 3_600_000)) as { out: string } | undefined;
        o.onShardDone?.(++done, jobs.length);
        return r?.out ?? job.data.out;
      }),
    );
    const shards: Array<{ file: string; report: ShardReport }> = [];
    for (const file of results) shards.push({ file, report: asShardReport(JSON.parse(await readFile(file, 'utf8')), file) });
    return mergeShards(ir, shards);
  } finally {
    await events.close();
    await queue.close();
  }
}
