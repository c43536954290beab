// GPU jobs run in a child process, never in a worker thread of the host: worker.terminate() with
// a GPU readback pending aborts the whole process (ENGINE_FACTS.md), and a driver crash must not
// take the VS Code extension host down. Cancelling one mid-training stops it cooperatively and
// leaves no partial output; wasm/cpu jobs keep running in worker threads.

import { webGpuAdapterOrSkip } from '../fixtures/webgpu-env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobCancelledError, jobIsolationFor, runJob, type JobIsolation } from '../../src/core/jobs/job-runner.js';
import { tempDirFor } from '../../src/core/jobs/output-files.js';
import type { CompressJobSpec } from '../../src/core/jobs/job-types.js';
import { createSampleModel } from '../../src/core/samples/sample-models.js';

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('where a job runs: webgpu in a child process, everything else in a worker thread', () => {
  const spec = { kind: 'analyze' as const, path: 'm.onnx' };
  assert.equal(jobIsolationFor(spec, { PRUNESCOPE_BACKEND: 'webgpu' }).isolation, 'process');
  assert.equal(jobIsolationFor(spec, { PRUNESCOPE_BACKEND: 'wasm' }).isolation, 'thread');
  assert.equal(jobIsolationFor(spec, { PRUNESCOPE_BACKEND: 'cpu' }).isolation, 'thread');
  assert.equal(jobIsolationFor(spec, { PRUNESCOPE_BACKEND: 'auto' }).isolation, 'thread');
  // a backend probe goes by its own preference
  assert.equal(jobIsolationFor({ kind: 'backend', prefer: 'webgpu' }, { PRUNESCOPE_BACKEND: 'wasm' }).isolation, 'process');
  assert.equal(jobIsolationFor({ kind: 'backend', prefer: 'cpu' }, { PRUNESCOPE_BACKEND: 'webgpu' }).isolation, 'thread');
});

test('a webgpu backend job runs in a child process and names the adapter; a wasm one in a thread', async (t) => {
  const adapter = await webGpuAdapterOrSkip(t);
  if (!adapter) return;
  let where: { isolation: JobIsolation; pid?: number } | undefined;
  const gpu = await runJob({ kind: 'backend', prefer: 'webgpu' }, { onStart: (w) => (where = w) });
  assert.equal(where?.isolation, 'process');
  assert.ok(where?.pid && where.pid !== process.pid);
  assert.equal(gpu.backend, 'webgpu');
  assert.match(gpu.reason, adapter.software ? /SOFTWARE adapter/ : /hardware/);
  assert.equal(alive(where.pid), false, 'the child process ended with its job');

  const wasm = await runJob({ kind: 'backend', prefer: 'wasm' }, { onStart: (w) => (where = w) });
  assert.equal(where?.isolation, 'thread');
  assert.equal(where?.pid, undefined);
  assert.equal(wasm.backend, 'wasm');

  // 'auto' in a worker thread never starts WebGPU there, and says how to get it
  const auto = await runJob({ kind: 'backend', prefer: 'auto' }, { onStart: (w) => (where = w) });
  assert.equal(where?.isolation, 'thread');
  assert.notEqual(auto.backend, 'webgpu');
  assert.match(auto.reason, /webgpu not supported in a worker thread under 'auto'.*ask for backend webgpu/);
});

/** A fine-tuning job of the tiny NeuMF on webgpu (20 epochs: minutes on lavapipe), in a fresh folder. */
async function gpuFinetuneJob(dir: string): Promise<{ spec: CompressJobSpec; model: string; out: string }> {
  const sample = await createSampleModel('neumf', dir, { size: 'tiny', formats: ['onnx'], seed: 5, backend: 'wasm' });
  const model = sample.onnxPath!;
  const out = join(dir, 'neumf-finetuned.onnx');
  const spec: CompressJobSpec = {
    kind: 'compress',
    path: model,
    method: 'finetune',
    // the TF.js tape engine: the compiled engine keeps its tables on the CPU (sync reads), which
    // WebGPU in Node cannot serve
    settings: { data: sample.interactionsCsv, epochs: 20, batchSize: 256, engine: 'tape' },
    outPath: out,
    tempDir: tempDirFor(out),
    evaluate: { latency: false },
  };
  return { spec, model, out };
}

/** Runs `spec` on webgpu and aborts it a few batches into training; returns where it ran and what it saw. */
async function cancelMidTraining(spec: CompressJobSpec, cancelGraceMs: number) {
  const abort = new AbortController();
  let where: { isolation: JobIsolation; pid?: number } | undefined;
  const training: string[] = [];
  const started = Date.now();
  await assert.rejects(
    runJob(spec, {
      signal: abort.signal,
      env: { PRUNESCOPE_BACKEND: 'webgpu' },
      cancelGraceMs,
      onStart: (w) => (where = w),
      onProgress: (p) => {
        // a few batches into training: GPU work and readbacks are in flight
        if (p.detail?.includes('epoch') && training.push(p.detail) === 3) abort.abort();
      },
    }),
    JobCancelledError,
  );
  return { where, training, seconds: (Date.now() - started) / 1000 };
}

test('cancelling a fine-tuning job on webgpu mid-training: the child stops on its own, no output, no temp folder, original untouched', async (t) => {
  const adapter = await webGpuAdapterOrSkip(t);
  if (!adapter) return;
  const dir = mkdtempSync(join(tmpdir(), 'ps-jobs-gpu-'));
  try {
    const { spec, model, out } = await gpuFinetuneJob(dir);
    const before = sha(model);
    // no forced stop within the test's time: the job must stop on its own (cooperatively)
    const { where, training, seconds } = await cancelMidTraining(spec, 120_000);
    assert.equal(where?.isolation, 'process');
    assert.ok(training.length >= 3, 'the job was training when it was cancelled');
    assert.ok(where?.pid !== undefined && !alive(where.pid), 'the child process is gone');
    assert.equal(existsSync(out), false, 'no output file');
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.prunescope-')), [], 'no temp folder');
    assert.equal(sha(model), before, 'the original is untouched');
    // 20 epochs take minutes on lavapipe, and the forced stop would come after 120 s: the job
    // itself stopped, between batches, once asked
    assert.ok(seconds < 60, `cancelled in ${seconds.toFixed(1)} s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a GPU job killed at once mid-training (no grace) takes only its child process down', async (t) => {
  const adapter = await webGpuAdapterOrSkip(t);
  if (!adapter) return;
  const dir = mkdtempSync(join(tmpdir(), 'ps-jobs-gpu-kill-'));
  try {
    const { spec, out } = await gpuFinetuneJob(dir);
    // what worker.terminate() cannot survive with a readback pending: here a SIGKILL of the child
    const { where } = await cancelMidTraining(spec, 0);
    assert.equal(where?.isolation, 'process');
    assert.ok(where?.pid !== undefined && !alive(where.pid), 'the child process is gone');
    assert.equal(existsSync(out), false, 'no output file');
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.prunescope-')), [], 'no temp folder');
    // and this process is fine: the next GPU job runs
    const probe = await runJob({ kind: 'backend', prefer: 'webgpu' });
    assert.equal(probe.backend, 'webgpu');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
