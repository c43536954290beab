// ONNX Runtime's execution providers: WebGPU (inside onnxruntime-node's own library) on Mesa's
// lavapipe equals the CPU provider within 1e-4; 'auto' does not take the software adapter; the
// CLI's --json names the provider that ran and why; a forced provider that cannot run is an
// error naming what was tried.

import { softwareAdapterOrSkip, webGpuAdapterOrSkip } from '../fixtures/webgpu-env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { openScorer } from '../../src/core/eval/evaluate.js';
import { readInteractions, fieldsMatrix } from '../../src/core/eval/interactions.js';
import { evalCommand } from '../../src/cli/eval-command.js';
import { benchCommand } from '../../src/cli/bench-command.js';
import { UsageError } from '../../src/cli/args.js';
import { ExecutionProviderUnavailableError, ortCudaProvider } from '../../src/core/runtime/ort-providers.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const dir = path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const write = process.stdout.write.bind(process.stdout);
  let out = '';
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    return { code: await fn(), out };
  } finally {
    process.stdout.write = write;
  }
}

test("auto does not take the software adapter: ORT runs on the CPU provider and says why", async (t) => {
  const adapter = await softwareAdapterOrSkip(t);
  if (!adapter) return;
  const fx = await writeTinyFixtures(dir);
  const scorer = await openScorer(fx.models.neumf.onnxPath!, { ep: 'auto' });
  try {
    assert.equal(scorer.executionProvider?.name, 'cpu');
    assert.equal(scorer.executionProvider?.selection, 'fallback');
    assert.match(scorer.executionProvider!.reason, /webgpu: the adapter is .*software/);
    assert.match(scorer.executionProvider!.reason, /cuda: /);
  } finally {
    await scorer.close();
  }
});

for (const kind of ['neumf', 'two-tower', 'deepfm'] as const) {
  test(`${kind}: ORT on executionProviders ['webgpu'] equals the CPU provider within 1e-4`, async (t) => {
    const adapter = await webGpuAdapterOrSkip(t);
    if (!adapter) return;
    const fx = await writeTinyFixtures(dir);
    const r = fx.models[kind];
    const table = await readInteractions(r.candidatesCsv, { extraColumns: kind === 'deepfm' ? 'all' : undefined });
    const batch = { user: table.user, item: table.item, fields: table.extra.length > 0 ? fieldsMatrix(table) : undefined };
    const gpu = await openScorer(r.onnxPath!, { ep: 'webgpu' });
    const cpu = await openScorer(r.onnxPath!, { ep: 'cpu' });
    try {
      assert.equal(gpu.executionProvider?.name, 'webgpu');
      assert.equal(gpu.executionProvider?.selection, 'forced');
      assert.equal(gpu.executionProvider?.adapter?.software, adapter.software);
      if (adapter.software) assert.match(gpu.executionProvider!.reason, /SOFTWARE adapter/);
      assert.equal(cpu.executionProvider?.name, 'cpu');
      // odd batch size: the last batch is partial
      const a = await gpu.score(batch, 4099);
      const b = await cpu.score(batch, 4099);
      assert.equal(a.length, table.rows);
      let maxDiff = 0;
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
      assert.ok(maxDiff <= 1e-4, `max |webgpu - cpu| = ${maxDiff}`);
      t.diagnostic(`${kind}: ${table.rows} rows, max |webgpu - cpu| = ${maxDiff.toExponential(2)}`);
    } finally {
      await gpu.close();
      await cpu.close();
    }
  });
}

test('CLI eval/bench --json name the execution provider that ran and why', async (t) => {
  const fx = await writeTinyFixtures(dir);
  const r = fx.models.neumf;
  // no --ep: the CPU provider, by default
  const plain = JSON.parse((await capture(() => evalCommand([r.onnxPath!, '--candidates', r.candidatesCsv, '--json']))).out);
  assert.deepEqual({ name: plain.executionProvider.name, selection: plain.executionProvider.selection }, { name: 'cpu', selection: 'default' });
  const forcedCpu = JSON.parse((await capture(() => benchCommand([r.onnxPath!, '--batch', '1', '--runs', '5', '--ep', 'cpu', '--json']))).out);
  assert.equal(forcedCpu.executionProvider.selection, 'forced');
  assert.equal(forcedCpu.latency.executionProvider, 'cpu');
  // TF.js models: the backend and why
  const tfjs = JSON.parse((await capture(() => benchCommand([r.tfjsModelJson!, '--batch', '1', '--runs', '5', '--backend', 'cpu', '--json']))).out);
  assert.deepEqual({ name: tfjs.executionProvider.name, selection: tfjs.executionProvider.selection }, { name: 'cpu', selection: 'forced' });

  await assert.rejects(evalCommand([r.onnxPath!, '--candidates', r.candidatesCsv, '--ep', 'tpu']), (e: Error) => e instanceof UsageError && /--ep must be one of auto, cpu, webgpu, cuda/.test(e.message));
  await assert.rejects(benchCommand([r.tfjsModelJson!, '--ep', 'webgpu']), (e: Error) => e instanceof UsageError && /TF\.js models take --backend/.test(e.message));
  if (!ortCudaProvider().installed) {
    await assert.rejects(benchCommand([r.onnxPath!, '--ep', 'cuda']), (e: Error) => e instanceof ExecutionProviderUnavailableError && /'cuda' was asked for .*CUDA provider is not installed/.test(e.message));
  }

  const adapter = await softwareAdapterOrSkip(t);
  if (!adapter) return;
  const gpu = JSON.parse((await capture(() => benchCommand([r.onnxPath!, '--batch', '1,256', '--runs', '5', '--ep', 'webgpu', '--json']))).out);
  assert.equal(gpu.executionProvider.name, 'webgpu');
  assert.equal(gpu.executionProvider.selection, 'forced');
  assert.equal(gpu.executionProvider.adapter.software, true);
  assert.equal(gpu.latency.executionProvider, 'webgpu');
  assert.deepEqual(gpu.latency.points.map((p: { batch: number }) => p.batch), [1, 256]);
  const auto = JSON.parse((await capture(() => evalCommand([r.onnxPath!, '--candidates', r.candidatesCsv, '--ep', 'auto', '--json']))).out);
  assert.equal(auto.executionProvider.name, 'cpu');
  assert.equal(auto.executionProvider.selection, 'fallback');
  assert.match(auto.executionProvider.reason, /software/);
  // the text output says it too
  const text = (await capture(() => benchCommand([r.onnxPath!, '--batch', '1', '--runs', '5', '--ep', 'webgpu']))).out;
  assert.match(text, /^ran on {3}webgpu \(forced\): ORT's WebGPU provider on .*SOFTWARE adapter/m);
});

test('a forced --ep webgpu without any Vulkan driver: exit 1 and an error naming what was tried', async () => {
  const fx = await writeTinyFixtures(dir);
  const cli = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
  const r = spawnSync(process.execPath, [cli, 'bench', fx.models.neumf.onnxPath!, '--ep', 'webgpu', '--json'], {
    env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/no_icd.json', VK_DRIVER_FILES: '/nonexistent/no_icd.json' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`);
  assert.equal(r.stdout, '', 'nothing on stdout: no result pretends to be a webgpu one');
  assert.match(r.stderr, /the ONNX Runtime execution provider 'webgpu' was asked for and cannot run here \(tried: webgpu: the provider did not start: /);
});
