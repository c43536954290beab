// Forced WebGPU through the command line a user runs: `PRUNESCOPE_BACKEND=webgpu prunescope
// finetune ... --json` says it trained on webgpu, and its NDCG@10 is within 2% of the same run on
// WASM. On CI this runs on Mesa's lavapipe (a software Vulkan driver; .ci/run installs it), so
// the GPU path cannot rot unseen; elsewhere without a Vulkan adapter it skips with the reason.

import './../fixtures/webgpu-env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { webGpuAdapterOrSkip } from '../fixtures/webgpu-env.js';
import { createSampleModel } from '../../src/core/samples/sample-models.js';
import type { CompressJobResult } from '../../src/shared/protocol.js';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

test('PRUNESCOPE_BACKEND=webgpu finetune --json: trained on webgpu (tape), NDCG@10 within 2% of the WASM run', async (t) => {
  const adapter = await webGpuAdapterOrSkip(t);
  if (!adapter) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-webgpu-finetune-'));
  try {
    const r = await createSampleModel('neumf', dir, { size: 'tiny', formats: ['onnx'], seed: 9, output: 'logit' });
    const run = (backend: string): CompressJobResult => {
      const out = path.join(dir, `ft-${backend}.onnx`);
      const p = spawnSync(process.execPath, [CLI, 'finetune', r.onnxPath!, '--data', r.interactionsCsv, '--candidates', r.candidatesCsv, '--epochs', '1', '--batch-size', '256', '--out', out, '--json'], {
        encoding: 'utf8',
        env: { ...process.env, PRUNESCOPE_BACKEND: backend },
        maxBuffer: 1 << 26,
        timeout: 480_000,
      });
      assert.equal(p.status, 0, `${backend}: ${p.stderr}`);
      assert.ok(fs.existsSync(out));
      return JSON.parse(p.stdout) as CompressJobResult;
    };
    const gpu = run('webgpu');
    const wasm = run('wasm');
    assert.equal(gpu.training?.length, 1);
    assert.equal(gpu.training![0].backend, 'webgpu');
    assert.equal(gpu.training![0].engine, 'tape');
    assert.equal(gpu.training![0].outputKind, 'logit');
    assert.match(gpu.notes.join('\n'), /on the TF\.js 'webgpu' backend/);
    assert.equal(wasm.training![0].backend, 'wasm');
    const g = gpu.comparison.ndcg!.after!;
    const w = wasm.comparison.ndcg!.after!;
    console.log(`NDCG@10 after one epoch: webgpu (${adapter.description}, ${adapter.software ? 'software' : 'hardware'}) ${g.toFixed(4)}, wasm ${w.toFixed(4)}`);
    assert.ok(Math.abs(g - w) <= 0.02 * w, `webgpu ${g} vs wasm ${w}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
