// Host side of a job: starts a worker thread, relays progress, cancels. Cancellation is
// cooperative first (the job stops between chunks); if the worker has not ended one second
// later it is terminated. A worker that dies (crash, out of memory) fails the job with a clear
// message and leaves the host running.

import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { removeTemp } from './output-files.js';
import type { HostToWorker, JobProgress, JobResultMap, JobSpec, WorkerToHost } from './job-types.js';

export class JobCancelledError extends Error {
  constructor() {
    super('the job was cancelled');
    this.name = 'JobCancelledError';
  }
}

export interface RunJobOptions {
  signal?: AbortSignal;
  onProgress?: (p: JobProgress) => void;
  /** the worker script; defaults to worker.js beside this file (dist/ in bundles, out/ in tests) */
  workerPath?: string;
  /** environment variables set for the worker only (e.g. PRUNESCOPE_BACKEND) */
  env?: Record<string, string>;
  /** V8 heap limit of the worker, in MB (typed-array data is outside this heap) */
  maxOldGenerationSizeMb?: number;
}

export function runJob<S extends JobSpec>(spec: S, opts: RunJobOptions = {}): Promise<JobResultMap[S['kind']]> {
  return new Promise((resolvePromise, rejectPromise) => {
    if (opts.signal?.aborted) {
      rejectPromise(new JobCancelledError());
      return;
    }
    const worker = new Worker(opts.workerPath ?? join(__dirname, 'worker.js'), {
      resourceLimits: { maxOldGenerationSizeMb: opts.maxOldGenerationSizeMb ?? 4096 },
      stderr: false,
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
    });
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    /**
     * Ends the job once: the worker is stopped first; a compress job that did not succeed then
     * loses its temp folder here too, because a worker that died (out of memory, a native crash,
     * killed) never ran its own clean-up: no partial output is ever left behind.
     */
    const finish = (fn: () => void, succeeded = false) => {
      if (settled) return;
      settled = true;
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      void worker
        .terminate()
        .catch(() => undefined)
        .then(() => (!succeeded && spec.kind === 'compress' ? removeTemp(spec.tempDir) : undefined))
        .then(fn, fn);
    };
    const onAbort = () => {
      worker.postMessage({ type: 'cancel' } satisfies HostToWorker);
      killTimer = setTimeout(() => finish(() => rejectPromise(new JobCancelledError())), 1000);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: WorkerToHost) => {
      if (m.type === 'progress') opts.onProgress?.(m.progress);
      else if (m.type === 'result') finish(() => resolvePromise(m.result as JobResultMap[S['kind']]), true);
      else finish(() => rejectPromise(m.cancelled || opts.signal?.aborted ? new JobCancelledError() : new Error(m.message)));
    });
    worker.on('error', (e) => finish(() => rejectPromise(new Error(`the job worker failed: ${e.message}`))));
    worker.on('exit', (code) =>
      finish(() =>
        rejectPromise(
          opts.signal?.aborted ? new JobCancelledError() : new Error(`the job worker stopped unexpectedly (exit code ${code})`),
        ),
      ),
    );
    worker.postMessage({ type: 'start', spec } satisfies HostToWorker);
  });
}
