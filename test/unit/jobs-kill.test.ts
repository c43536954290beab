// A job worker killed in the middle of a compression (as an out-of-memory kill or a native crash
// would) leaves no output and no temp folder, the original is untouched, and the next job works.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runJob } from '../../src/core/jobs/job-runner.js';
import { tempDirFor } from '../../src/core/jobs/output-files.js';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

async function tableModel(dir: string): Promise<string> {
  const rows = 20000;
  const table = Float32Array.from({ length: rows * 16 }, (_, i) => Math.sin(i) * 0.1);
  const b = new OnnxGraphBuilder({ graphName: 'kill_test' })
    .input('item', 'int64', ['batch'])
    .output('e', 'float32', ['batch', 16])
    .initializer('item_embedding.weight', 'float32', [rows, 16], table)
    .node('Gather', ['item_embedding.weight', 'item'], ['e'], {}, { name: '/item_embedding/Gather' });
  const path = join(dir, 'model.onnx');
  await writeOnnxFile(path, b.toModelProto());
  return path;
}

test('killing the worker mid-job leaves no output, no temp folder; the next job works', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-kill-'));
  const model = await tableModel(dir);
  const before = sha(model);
  // the real job body in a worker that dies abruptly once the job has started writing
  const realBody = join(__dirname, '..', '..', 'src', 'core', 'jobs', 'run-job-in-process.js');
  const killer = join(dir, 'killing-worker.js');
  const marker = join(dir, 'killed-with.json');
  writeFileSync(
    killer,
    `const MARKER = ${JSON.stringify(marker)};
const { parentPort } = require('node:worker_threads');
const { runJobInProcess } = require(${JSON.stringify(realBody)});
parentPort.on('message', (m) => {
  if (m.type !== 'start') return;
  const ctl = new AbortController();
  runJobInProcess(m.spec, ctl.signal, (p) => {
    parentPort.postMessage({ type: 'progress', progress: p });
    // die once the job has its temp folder (work in progress on disk), noting what was there
    const fs = require('node:fs');
    if (fs.existsSync(m.spec.tempDir)) {
      fs.writeFileSync(MARKER, JSON.stringify(fs.readdirSync(m.spec.tempDir, { recursive: true })));
      process.exit(137);
    }
  });
});`,
  );
  const out = join(dir, 'model-int8.onnx');
  const spec = {
    kind: 'compress' as const,
    path: model,
    method: 'quantize' as const,
    settings: { dtype: 'int8' },
    outPath: out,
    tempDir: tempDirFor(out),
    evaluate: { latency: false },
  };
  const phases: string[] = [];
  await assert.rejects(
    runJob(spec, { workerPath: killer, onProgress: (p) => phases.push(p.phase) }),
    /the job worker stopped unexpectedly \(exit code 137\)/,
  );
  assert.ok(existsSync(marker), 'the worker was killed while its temp folder existed');
  assert.ok(phases.length > 0, 'the job had started');
  assert.equal(existsSync(out), false, 'no output file');
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.prunescope-')), [], 'no temp folder');
  assert.equal(sha(model), before, 'the original is untouched');

  // the next job, in a normal worker, runs to the end
  const ok = await runJob({ ...spec, tempDir: tempDirFor(out) });
  assert.equal(ok.output, out);
  assert.ok(existsSync(out));
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.prunescope-')), []);
  assert.equal(sha(model), before);
});
