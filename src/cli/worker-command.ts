// `prunescope worker --redis URL`: processes analysis and int8 quantization shards from the job queue (BullMQ) until
// SIGINT / SIGTERM, which let the job in progress finish first. Run as many as you like, on any
// machine that reaches the Redis server and sees the models and shard folder at the same paths.

import { redisConnection, startWorker } from '../core/distributed/queue.js';
import { UsageError } from './args.js';
import { WORKER } from './command-specs.js';

export async function workerCommand(argv: string[]): Promise<number> {
  const { values: o } = WORKER.parse(argv);
  let connection;
  try {
    connection = redisConnection(o.redis);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const log = (line: string) => process.stderr.write(`[worker ${process.pid}] ${line}\n`);
  const worker = startWorker(connection, { concurrency: o.concurrency, log });
  log(`waiting for shards on ${o.redis}`);
  await new Promise<void>((done) => {
    const stop = () => {
      log('stopping after the job in progress');
      worker.close().then(done, done);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
