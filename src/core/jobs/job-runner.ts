// Host side of a job: starts the job's worker, relays progress, cancels. Cancellation is
// cooperative first (the job stops between chunks); if the worker has not ended after a grace
// period it is stopped. A worker that dies (crash, out of memory) fails the job with a clear
// message and leaves the host running.
//
// Where a job runs: a worker thread, except when its TF.js backend is WebGPU: then a child
// process (the same worker script, forked). A GPU driver can crash, and worker.terminate() while
// a GPU readback is pending aborts the WHOLE process (ENGINE_FACTS.md): in the extension host
// that would be VS Code's extension host. A child process can die or be killed alone.

import { fork, type ChildProcess } from 'node:child_process';
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

export type JobIsolation = 'thread' | 'process';

export interface RunJobOptions {
  signal?: AbortSignal;
  onProgress?: (p: JobProgress) => void;
  /** the worker script; defaults to worker.js beside this file (dist/ in bundles, out/ in tests) */
  workerPath?: string;
  /** environment variables set for the worker only (e.g. PRUNESCOPE_BACKEND) */
  env?: Record<string, string>;
  /** V8 heap limit of the worker, in MB (typed-array data is outside this heap) */
  maxOldGenerationSizeMb?: number;
  /** where the job runs; default jobIsolationFor(spec, env) */
  isolation?: JobIsolation;
  /** told once the worker has started: where, and the child's pid */
  onStart?: (where: { isolation: JobIsolation; pid?: number; why: string }) => void;
  /**
   * After a cancel, how long the job may take to stop on its own before it is stopped: default
   * 1 s in a thread, 20 s in a process (a GPU op in flight finishes first; a cold shader
   * compile on a software driver takes ~8 s).
   */
  cancelGraceMs?: number;
}

/** The TF.js backend preference the job will run under: a backend job's own, else PRUNESCOPE_BACKEND of its environment. */
export function jobBackendPreference(spec: JobSpec, env?: Record<string, string | undefined>): string {
  if (spec.kind === 'backend' && spec.prefer) return spec.prefer;
  return env?.PRUNESCOPE_BACKEND ?? process.env.PRUNESCOPE_BACKEND ?? 'auto';
}

/** 'process' when the job's TF.js backend is WebGPU, else 'thread' (see the file comment). */
export function jobIsolationFor(spec: JobSpec, env?: Record<string, string | undefined>): { isolation: JobIsolation; why: string } {
  const prefer = jobBackendPreference(spec, env);
  return prefer === 'webgpu'
    ? { isolation: 'process', why: 'backend webgpu: a GPU job runs in a child process so that a driver crash cannot take this process down' }
    : { isolation: 'thread', why: `backend ${prefer}` };
}

/** The two ways a job's worker can run, behind one shape. */
interface JobChannel {
  post(m: HostToWorker): void;
  /** stops the worker (if still running) and resolves once it is gone */
  stop(): Promise<void>;
  pid?: number;
}

interface ChannelEvents {
  message(m: WorkerToHost): void;
  /** the worker failed or ended without a result */
  died(message: string): void;
}

function startThread(workerPath: string, opts: RunJobOptions, on: ChannelEvents): JobChannel {
  const worker = new Worker(workerPath, {
    resourceLimits: { maxOldGenerationSizeMb: opts.maxOldGenerationSizeMb ?? 4096 },
    stderr: false,
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
  });
  worker.on('message', (m: WorkerToHost) => on.message(m));
  worker.on('error', (e) => on.died(`the job worker failed: ${e.message}`));
  worker.on('exit', (code) => on.died(`the job worker stopped unexpectedly (exit code ${code})`));
  return {
    post: (m) => worker.postMessage(m),
    stop: () => worker.terminate().then(
      () => undefined,
      () => undefined,
    ),
  };
}

function startProcess(workerPath: string, opts: RunJobOptions, on: ChannelEvents): JobChannel {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  // inside VS Code (Electron) the forked binary must behave as Node
  if (process.versions.electron) env.ELECTRON_RUN_AS_NODE = '1';
  const child: ChildProcess = fork(workerPath, [], {
    env,
    // our own flags only: not the host's (--inspect, test runner flags, Electron's)
    execArgv: [`--max-old-space-size=${opts.maxOldGenerationSizeMb ?? 4096}`],
    serialization: 'advanced',
    // the child's stdout must not mix into ours (the CLI's --json): both of its streams go to our stderr
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let tail = '';
  const relay = (d: Buffer) => {
    process.stderr.write(d);
    tail = (tail + d.toString()).slice(-2000);
  };
  child.stdout?.on('data', relay);
  child.stderr?.on('data', relay);
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  child.on('message', (m: WorkerToHost) => on.message(m));
  child.on('error', (e) => on.died(`the job process failed: ${e.message}`));
  // 'close' comes after 'exit' and after the last message and output of the child
  child.on('close', (code, signal) => {
    const last = tail.trim().split('\n').filter((l) => l.trim()).pop();
    on.died(`the job process stopped unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})${last ? `: ${last.slice(0, 300)}` : ''}`);
  });
  return {
    pid: child.pid,
    post: (m) => {
      if (child.connected) child.send(m);
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

export function runJob<S extends JobSpec>(spec: S, opts: RunJobOptions = {}): Promise<JobResultMap[S['kind']]> {
  return new Promise((resolvePromise, rejectPromise) => {
    if (opts.signal?.aborted) {
      rejectPromise(new JobCancelledError());
      return;
    }
    const auto = jobIsolationFor(spec, opts.env);
    const isolation = opts.isolation ?? auto.isolation;
    const why = opts.isolation ? `isolation '${opts.isolation}' was asked for` : auto.why;
    const workerPath = opts.workerPath ?? join(__dirname, 'worker.js');
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
      void channel
        .stop()
        .then(() => (!succeeded && (spec.kind === 'compress' || spec.kind === 'compress-plan') ? removeTemp(spec.tempDir) : undefined))
        .then(fn, fn);
    };
    const events: ChannelEvents = {
      message: (m) => {
        if (m.type === 'progress') opts.onProgress?.(m.progress);
        else if (m.type === 'result') finish(() => resolvePromise(m.result as JobResultMap[S['kind']]), true);
        else finish(() => rejectPromise(m.cancelled || opts.signal?.aborted ? new JobCancelledError() : new Error(m.message)));
      },
      died: (message) => finish(() => rejectPromise(opts.signal?.aborted ? new JobCancelledError() : new Error(message))),
    };
    const channel = isolation === 'process' ? startProcess(workerPath, opts, events) : startThread(workerPath, opts, events);
    const onAbort = () => {
      channel.post({ type: 'cancel' });
      const grace = opts.cancelGraceMs ?? (isolation === 'process' ? 20_000 : 1000);
      killTimer = setTimeout(() => finish(() => rejectPromise(new JobCancelledError())), grace);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    opts.onStart?.({ isolation, pid: channel.pid, why });
    channel.post({ type: 'start', spec });
  });
}
