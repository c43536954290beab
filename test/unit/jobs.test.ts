// Jobs run in a worker thread: the host gets progress and the report, can cancel, and survives
// a worker that fails.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobCancelledError, runJob } from '../../src/core/jobs/job-runner.js';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';

async function tableModel(dir: string, rows: number): Promise<string> {
  const table = new Float32Array(rows * 16).map((_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
  const b = new OnnxGraphBuilder({ graphName: 'jobs_test' })
    .input('item', 'int64', ['batch'])
    .output('e', 'float32', ['batch', 16])
    .initializer('item_embedding.weight', 'float32', [rows, 16], table)
    .node('Gather', ['item_embedding.weight', 'item'], ['e'], {}, { name: '/item_embedding/Gather' });
  const path = join(dir, `table${rows}.onnx`);
  await writeOnnxFile(path, b.toModelProto());
  return path;
}

test('an analyze job runs in a worker with progress and returns the report', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-jobs-'));
  const path = await tableModel(dir, 1000);
  const fractions: number[] = [];
  const report = await runJob({ kind: 'analyze', path }, { onProgress: (p) => fractions.push(p.fraction) });
  assert.equal(report.totalParams, 16000);
  assert.equal(report.tensors[0].role, 'embedding');
  assert.ok(fractions.length >= 2);
  assert.ok(fractions.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= fractions[i - 1])));
});

test('a cancelled job rejects with JobCancelledError', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-jobs-'));
  const path = await tableModel(dir, 400000);
  const abort = new AbortController();
  const started = Date.now();
  const job = runJob({ kind: 'analyze', path }, { signal: abort.signal, onProgress: () => abort.abort() });
  await assert.rejects(job, JobCancelledError);
  assert.ok(Date.now() - started < 30000);
});

test('a failing job reports the file and the reason, and the next job still works', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-jobs-'));
  const bad = join(dir, 'bad.onnx');
  writeFileSync(bad, Buffer.from('not a model at all'));
  await assert.rejects(runJob({ kind: 'analyze', path: bad }), (e: Error) => e.message.includes('bad.onnx'));
  const good = await tableModel(dir, 10);
  assert.equal((await runJob({ kind: 'analyze', path: good })).totalParams, 160);
});

test('a worker that dies is a failed job, not a crash of the host', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-jobs-'));
  const script = join(dir, 'dying-worker.js');
  writeFileSync(script, "require('node:worker_threads').parentPort.on('message', () => process.exit(3));");
  await assert.rejects(runJob({ kind: 'analyze', path: 'x' }, { workerPath: script }), /stopped unexpectedly \(exit code 3\)/);
});
