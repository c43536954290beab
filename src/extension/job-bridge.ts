// Runs engine jobs in the worker thread with a VS Code progress notification (percentage, Cancel)
// and logs them to the PruneScope channel. The extension host's thread only relays messages.
// Jobs on the WebGPU backend run in a child process instead (job-runner.ts decides): a GPU driver
// crash, or stopping a job with a GPU readback pending, must not take the extension host down.

import * as vscode from 'vscode';
import { readSettings } from './settings.js';
import { runJob, JobCancelledError } from '../core/jobs/job-runner.js';
import type { JobProgress, JobResultMap, JobSpec } from '../core/jobs/job-types.js';
import { log, showError } from './log.js';
import { recordRun } from './run-history-host.js';

export type JobOutcome<T> = { ok: true; value: T } | { ok: false; cancelled: boolean; message: string };

export interface JobEvent {
  id: number;
  kind: JobSpec['kind'];
  progress?: JobProgress;
  state: 'started' | 'progress' | 'done' | 'cancelled' | 'failed';
}

const running = new Map<number, AbortController>();
let nextId = 1;
const events = new vscode.EventEmitter<JobEvent>();
/** Every job's life, for the tests and for anything that shows running jobs. */
export const onJobEvent = events.event;

/** Cancels every running job (command prunescope.cancelJobs). */
export function cancelAllJobs(): number {
  const n = running.size;
  for (const c of running.values()) c.abort();
  return n;
}

export function runningJobs(): number {
  return running.size;
}

export interface BridgeOptions {
  title: string;
  /** no notification (background jobs: the models tree's scans, the backend probe) */
  silent?: boolean;
  onProgress?: (p: JobProgress) => void;
  /** called when the job did not finish (cancelled, failed): clean up what it may have left */
  onAbandon?: () => Promise<void>;
  /** errors are returned, not shown (the caller shows them its own way) */
  quietErrors?: boolean;
  /** the run history record's title (default: from the result, e.g. the methods applied) */
  runTitle?: string;
}

export async function runJobWithProgress<S extends JobSpec>(
  extensionUri: vscode.Uri,
  spec: S,
  opts: BridgeOptions,
): Promise<JobOutcome<JobResultMap[S['kind']]>> {
  const id = nextId++;
  const abort = new AbortController();
  running.set(id, abort);
  const started = Date.now();
  events.fire({ id, kind: spec.kind, state: 'started' });
  const workerPath = vscode.Uri.joinPath(extensionUri, 'dist', 'worker.js').fsPath;
  const body = async (progress?: vscode.Progress<{ increment?: number; message?: string }>, token?: vscode.CancellationToken) => {
    token?.onCancellationRequested(() => abort.abort());
    let shown = 0;
    return runJob(spec, {
      signal: abort.signal,
      workerPath,
      // the user's backend choice reaches every TF.js call in the worker
      env: { PRUNESCOPE_BACKEND: readSettings().backend },
      onStart: (w) => {
        if (w.isolation === 'process') log().info(`${opts.title}: running in a child process (pid ${w.pid ?? '?'}): ${w.why}`);
      },
      onProgress: (p) => {
        const pct = Math.floor(p.fraction * 100);
        if (progress && pct > shown) {
          const eta = p.etaSeconds !== null && p.etaSeconds > 2 ? `, ~${Math.round(p.etaSeconds)} s left` : '';
          progress.report({ increment: pct - shown, message: `${pct}% ${p.phase}${p.detail ? ` ${p.detail}` : ''}${eta}` });
          shown = pct;
        }
        opts.onProgress?.(p);
        events.fire({ id, kind: spec.kind, state: 'progress', progress: p });
      },
    });
  };
  try {
    const value = opts.silent
      ? await body()
      : await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: `PruneScope: ${opts.title}`, cancellable: true },
          (progress, token) => body(progress, token),
        );
    log().info(`${opts.title}: done in ${Date.now() - started} ms`);
    // written before the job counts as done, so that whoever waits on it finds the record
    await recordRun(spec, value, started, opts.runTitle).catch((e: unknown) => log().warn(`run history: ${String(e)}`));
    events.fire({ id, kind: spec.kind, state: 'done' });
    return { ok: true, value };
  } catch (e) {
    await opts.onAbandon?.().catch((err: unknown) => log().warn(`cleanup after ${opts.title} failed: ${String(err)}`));
    if (e instanceof JobCancelledError || abort.signal.aborted) {
      log().info(`${opts.title}: cancelled after ${Date.now() - started} ms`);
      events.fire({ id, kind: spec.kind, state: 'cancelled' });
      return { ok: false, cancelled: true, message: 'cancelled' };
    }
    const message = e instanceof Error ? e.message : String(e);
    log().error(`${opts.title} failed: ${message}`);
    if (e instanceof Error && e.stack) log().debug(e.stack);
    events.fire({ id, kind: spec.kind, state: 'failed' });
    if (!opts.quietErrors) showError(`${opts.title} failed: ${message}`);
    return { ok: false, cancelled: false, message };
  } finally {
    running.delete(id);
  }
}
