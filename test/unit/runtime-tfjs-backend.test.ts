import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initTfjs, resolveWasmDir } from '../../src/core/runtime/tfjs-backend.js';

function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

test("auto picks native TensorFlow when installed, else WASM, and says why", async () => {
  const chosen = await initTfjs('auto');
  const native = installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node');
  assert.equal(chosen.backend, native ? 'tensorflow' : 'wasm');
  assert.equal(tf.getBackend(), chosen.backend);
  if (!native) {
    assert.match(chosen.reason, /@tensorflow\/tfjs-node not available/);
    assert.match(chosen.reason, /webgpu not supported/);
  }
  // the same preference again gives the same answer without re-initialising
  assert.strictEqual(await initTfjs('auto'), await initTfjs('auto'));
});

test('an explicit preference is honoured', async () => {
  const cpu = await initTfjs('cpu');
  assert.equal(cpu.backend, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  assert.match(cpu.reason, /^asked for cpu; /);
  const wasm = await initTfjs('wasm');
  assert.equal(wasm.backend, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  // and the backend computes
  assert.deepEqual(Array.from(tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).dataSync()), [4, 6]);
});

test('the wasm folder: explicit option, then PRUNESCOPE_WASM_DIR, then the installed package', () => {
  const pkgDir = resolveWasmDir();
  assert.ok(pkgDir);
  assert.equal(pkgDir.from, 'node_modules/@tensorflow/tfjs-backend-wasm');
  assert.ok(fs.existsSync(path.join(pkgDir.dir, 'tfjs-backend-wasm-simd.wasm')));

  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-wasm-'));
  fs.copyFileSync(path.join(pkgDir.dir, 'tfjs-backend-wasm-simd.wasm'), path.join(copy, 'tfjs-backend-wasm-simd.wasm'));
  const before = process.env.PRUNESCOPE_WASM_DIR;
  try {
    process.env.PRUNESCOPE_WASM_DIR = copy;
    assert.deepEqual(resolveWasmDir(), { dir: copy, from: 'PRUNESCOPE_WASM_DIR' });
    assert.deepEqual(resolveWasmDir(pkgDir.dir), { dir: pkgDir.dir, from: 'option wasmDir' });
    // a folder without the binary is skipped
    process.env.PRUNESCOPE_WASM_DIR = os.tmpdir();
    assert.equal(resolveWasmDir()?.from, 'node_modules/@tensorflow/tfjs-backend-wasm');
  } finally {
    if (before === undefined) delete process.env.PRUNESCOPE_WASM_DIR;
    else process.env.PRUNESCOPE_WASM_DIR = before;
    fs.rmSync(copy, { recursive: true, force: true });
  }
});
