// TF.js on WebGPU (Dawn in Node) on Mesa's lavapipe: 'auto' never takes the software adapter,
// a forced 'webgpu' trains and its losses equal CPU and WASM, and a forced backend that is not
// there is an error that says what was tried (checked in a child process without any Vulkan
// driver, so it runs on every machine).

import { softwareAdapterOrSkip, webGpuAdapterOrSkip } from '../fixtures/webgpu-env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initTfjs, TfjsBackendPreference } from '../../src/core/runtime/tfjs-backend.js';
import { describeAdapter, isSoftwareAdapter, missingVulkanLoader, noGpuDeviceNode } from '../../src/core/runtime/webgpu-adapter.js';
import { buildNeuMF } from '../../src/core/samples/models.js';

test('software adapters are recognised by flag, architecture or driver name', () => {
  const base = { architecture: '', device: '', description: '', isFallbackAdapter: false };
  assert.equal(isSoftwareAdapter({ ...base, isFallbackAdapter: true }), true);
  assert.equal(isSoftwareAdapter({ ...base, architecture: 'software' }), true);
  assert.equal(isSoftwareAdapter({ ...base, description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }), true);
  assert.equal(isSoftwareAdapter({ ...base, description: 'SwiftShader Device (Subzero)' }), true);
  assert.equal(isSoftwareAdapter({ ...base, architecture: 'hopper', description: 'NVIDIA H100 80GB HBM3' }), false);
  const text = describeAdapter({ ...base, vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100', software: false });
  assert.equal(text, 'nvidia NVIDIA H100 [hopper, hardware]');
});

// runs first: 'auto' must be decided before anything forces webgpu in this process
test("auto does not take the software adapter: it picks WASM and says why", async (t) => {
  const adapter = await softwareAdapterOrSkip(t);
  if (!adapter) return;
  assert.equal(adapter.software, true, `lavapipe is a software adapter: ${describeAdapter(adapter)}`);
  const chosen = await initTfjs('auto');
  assert.notEqual(chosen.backend, 'webgpu');
  assert.equal(chosen.adapter, undefined);
  assert.match(chosen.reason, /webgpu not supported by hardware here: the adapter is .*software/);
});

/** Loss of each of `steps` Adam steps on one fixed batch, from the same initial weights. */
async function trainingLosses(
  backend: TfjsBackendPreference, weights: Array<{ values: Float32Array; shape: number[] }>, steps: number,
): Promise<{ losses: number[]; backend: string }> {
  const chosen = await initTfjs(backend);
  const model = buildNeuMF({ users: 300, items: 500, gmfDim: 8, mlpDim: 8, hidden: [16, 8], seed: 3 });
  // fresh tensors on this backend: a tensor that lives on WebGPU cannot be read synchronously in
  // Node (TF.js' readSync needs OffscreenCanvas), which moving it to another backend would do
  const initial = weights.map((w) => tf.tensor(w.values, w.shape));
  model.setWeights(initial);
  tf.dispose(initial);
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'binaryCrossentropy' });
  const n = 512;
  const user = tf.tensor2d(Int32Array.from({ length: n }, (_, i) => (i * 37) % 300), [n, 1], 'int32');
  const item = tf.tensor2d(Int32Array.from({ length: n }, (_, i) => (i * 101) % 500), [n, 1], 'int32');
  const label = tf.tensor2d(Float32Array.from({ length: n }, (_, i) => ((i * 7) % 3 === 0 ? 1 : 0)), [n, 1]);
  const losses: number[] = [];
  try {
    for (let s = 0; s < steps; s++) losses.push(Number(await model.trainOnBatch([user, item], label)));
  } finally {
    tf.dispose([user, item, label]);
    model.dispose();
  }
  return { losses, backend: chosen.backend };
}

test('forced webgpu trains (on the software adapter where lavapipe is installed): losses equal CPU and WASM within 1e-4', async (t) => {
  const adapter = await webGpuAdapterOrSkip(t);
  if (!adapter) return;
  await initTfjs('cpu');
  const init = buildNeuMF({ users: 300, items: 500, gmfDim: 8, mlpDim: 8, hidden: [16, 8], seed: 3 });
  const weights = init.getWeights().map((w) => ({ values: w.dataSync() as Float32Array, shape: w.shape }));
  init.dispose();

  const gpu = await initTfjs('webgpu');
  assert.equal(gpu.backend, 'webgpu');
  assert.equal(tf.getBackend(), 'webgpu');
  assert.equal(gpu.requested, 'webgpu');
  assert.equal(gpu.adapter?.software, adapter.software);
  assert.match(gpu.reason, adapter.software ? /^asked for webgpu; WebGPU \(Dawn\) on .*SOFTWARE adapter/ : /^asked for webgpu; WebGPU \(Dawn\) on .*hardware/);

  const steps = 8;
  const onGpu = await trainingLosses('webgpu', weights, steps);
  const onCpu = await trainingLosses('cpu', weights, steps);
  const onWasm = await trainingLosses('wasm', weights, steps);
  assert.deepEqual([onGpu.backend, onCpu.backend, onWasm.backend], ['webgpu', 'cpu', 'wasm']);
  for (let s = 0; s < steps; s++) {
    assert.ok(Number.isFinite(onGpu.losses[s]), `step ${s}: loss ${onGpu.losses[s]}`);
    assert.ok(Math.abs(onGpu.losses[s] - onCpu.losses[s]) < 1e-4, `step ${s}: webgpu ${onGpu.losses[s]} vs cpu ${onCpu.losses[s]}`);
    assert.ok(Math.abs(onGpu.losses[s] - onWasm.losses[s]) < 1e-4, `step ${s}: webgpu ${onGpu.losses[s]} vs wasm ${onWasm.losses[s]}`);
  }
  assert.ok(onGpu.losses[steps - 1] < onGpu.losses[0], `training lowers the loss: ${onGpu.losses.join(', ')}`);
});

test('a forced backend that is not there is an error naming what was tried (no Vulkan driver at all)', () => {
  const runtime = path.join(__dirname, '..', '..', 'src', 'core', 'runtime', 'tfjs-backend.js');
  const script = `
    require(${JSON.stringify(runtime)}).initTfjs('webgpu').then(
      (c) => { console.log('CHOSE ' + c.backend); process.exit(3); },
      (e) => { console.log(e.name + ': ' + e.message); process.exit(0); });`;
  const r = spawnSync(process.execPath, ['-e', script], {
    env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/no_icd.json', VK_DRIVER_FILES: '/nonexistent/no_icd.json' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^BackendUnavailableError: the TF\.js backend 'webgpu' was asked for and is not available here \(tried: webgpu not supported here: /);
  assert.match(r.stdout, /Dawn found no WebGPU adapter|cannot be loaded|no Vulkan loader \(libvulkan\.so\.1\)/);
  // and a forced backend never falls back silently: nothing else was tried
  assert.doesNotMatch(r.stdout, /wasm|CHOSE/);
});

test('a synchronous read of a GPU tensor says what to do instead (Node has no OffscreenCanvas)', async (t) => {
  const adapter = await webGpuAdapterOrSkip(t);
  if (!adapter) return;
  await initTfjs('webgpu');
  const a = tf.tensor2d([1, 2, 3, 4], [2, 2]);
  const y = tf.matMul(a, a);
  assert.throws(() => y.dataSync(), { name: 'WebGpuSyncReadError', message: /await tensor\.data\(\)/ });
  assert.deepEqual(Array.from(await y.data()), [7, 10, 15, 22]);
  // read once asynchronously, the values are cached on the CPU: dataSync works
  assert.deepEqual(Array.from(y.dataSync()), [7, 10, 15, 22]);
  tf.dispose([a, y]);
});

test("no GPU device node on Linux: an 'auto' choice does not ask Dawn (only lavapipe could answer, with two warnings on stderr)", () => {
  const dev = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-dev-'));
  try {
    fs.writeFileSync(path.join(dev, 'null'), '');
    assert.equal(noGpuDeviceNode({ platform: 'linux', dev }), `no GPU device node (${dev}/dri/renderD*, ${dev}/nvidia*, ${dev}/dxg): only a software driver could answer`);
    // a DRM card without a render node is no GPU to compute on
    fs.mkdirSync(path.join(dev, 'dri'));
    fs.writeFileSync(path.join(dev, 'dri', 'card0'), '');
    assert.notEqual(noGpuDeviceNode({ platform: 'linux', dev }), undefined);
    fs.writeFileSync(path.join(dev, 'dri', 'renderD128'), '');
    assert.equal(noGpuDeviceNode({ platform: 'linux', dev }), undefined);
    fs.rmSync(path.join(dev, 'dri'), { recursive: true });
    // NVIDIA's nodes (nvidiactl alone is not a GPU), WSL's
    fs.writeFileSync(path.join(dev, 'nvidiactl'), '');
    assert.notEqual(noGpuDeviceNode({ platform: 'linux', dev }), undefined);
    fs.writeFileSync(path.join(dev, 'nvidia0'), '');
    assert.equal(noGpuDeviceNode({ platform: 'linux', dev }), undefined);
    fs.rmSync(path.join(dev, 'nvidia0'));
    fs.writeFileSync(path.join(dev, 'dxg'), '');
    assert.equal(noGpuDeviceNode({ platform: 'linux', dev }), undefined);
    // other systems: Dawn is asked
    assert.equal(noGpuDeviceNode({ platform: 'darwin', dev: path.join(dev, 'none') }), undefined);
  } finally {
    fs.rmSync(dev, { recursive: true, force: true });
  }
});

test('no Vulkan loader on Linux: Dawn is not asked (it would print its own warning), and the reason says what to install', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-vk-'));
  try {
    const cache = path.join(dir, 'ld.so.cache');
    fs.writeFileSync(cache, 'glibc-ld.so.cache1.1\0libc.so.6\0/usr/lib/x86_64-linux-gnu/libc.so.6\0');
    const lib = path.join(dir, 'lib');
    fs.mkdirSync(lib);
    assert.equal(
      missingVulkanLoader({ platform: 'linux', ldCache: cache, searchDirs: [lib] }),
      'no Vulkan loader (libvulkan.so.1) on this system, so Dawn has no GPU to reach (Debian: apt-get install libvulkan1 and a Vulkan driver)',
    );
    // found in a searched folder, or named in the cache: Dawn is asked
    fs.writeFileSync(path.join(lib, 'libvulkan.so.1'), '');
    assert.equal(missingVulkanLoader({ platform: 'linux', ldCache: cache, searchDirs: [lib] }), undefined);
    fs.writeFileSync(cache, 'glibc-ld.so.cache1.1\0libvulkan.so.1\0/usr/lib/x86_64-linux-gnu/libvulkan.so.1\0');
    assert.equal(missingVulkanLoader({ platform: 'linux', ldCache: cache, searchDirs: [] }), undefined);
    // no cache to read, or not Linux: Dawn is asked
    assert.equal(missingVulkanLoader({ platform: 'linux', ldCache: path.join(dir, 'none'), searchDirs: [] }), undefined);
    assert.equal(missingVulkanLoader({ platform: 'darwin', ldCache: path.join(dir, 'none'), searchDirs: [] }), undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
