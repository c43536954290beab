import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ModelFileError } from '../../src/core/model/ir.js';
import {
  fileSystemLoadHandler,
  fileSystemSaveHandler,
  modelJsonPathFromFileUrl,
  registerFileSystemRouters,
} from '../../src/core/model/tfjs-io.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { buildNeuMF } from '../../src/core/samples/models.js';

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-tfjs-io-'));
}

function pairs(): tf.Tensor[] {
  return [tf.tensor2d([0, 1, 2, 3, 4, 5, 6, 7], [8, 1], 'int32'), tf.tensor2d([9, 3, 0, 7, 7, 1, 2, 8], [8, 1], 'int32')];
}

test('save then load: sharded files, same weights, same predictions', async () => {
  await initTfjs('wasm');
  const dir = tmpDir();
  const model = buildNeuMF({ users: 20, items: 10, gmfDim: 4, mlpDim: 4, hidden: [8, 4], seed: 3 });
  const file = path.join(dir, 'nested', 'model.json');
  // 1 KB shards: the 10-weight model spans several, and tensors straddle shard borders
  const saved = await model.save(fileSystemSaveHandler(file, { shardSizeBytes: 1024 }));
  const totalBytes = model.getWeights().reduce((a, w) => a + w.size * 4, 0);
  assert.equal(saved.modelArtifactsInfo.weightDataBytes, totalBytes);
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  const n = Math.ceil(totalBytes / 1024);
  assert.deepEqual(json.weightsManifest[0].paths, Array.from({ length: n }, (_, i) => `group1-shard${i + 1}of${n}.bin`));
  assert.equal(json.format, 'layers-model');
  const sizes = json.weightsManifest[0].paths.map((p: string) => fs.statSync(path.join(dir, 'nested', p)).size);
  assert.ok(sizes.slice(0, -1).every((s: number) => s === 1024));
  assert.equal(sizes.reduce((a: number, b: number) => a + b, 0), totalBytes);
  // saving again over it with one shard removes the old shards
  await model.save(fileSystemSaveHandler(file));
  assert.deepEqual(fs.readdirSync(path.join(dir, 'nested')).sort(), ['group1-shard1of1.bin', 'model.json']);
  await model.save(fileSystemSaveHandler(file, { shardSizeBytes: 1024 }));
  // no temp files left behind
  assert.deepEqual(fs.readdirSync(path.join(dir, 'nested')).filter((f) => f.includes('.tmp-')), []);

  const loaded = await tf.loadLayersModel(fileSystemLoadHandler(file));
  const before = model.getWeights().map((w) => Array.from(w.dataSync()));
  const after = loaded.getWeights().map((w) => Array.from(w.dataSync()));
  assert.deepEqual(after, before);
  const x = pairs();
  assert.deepEqual((loaded.predict(x) as tf.Tensor).dataSync(), (model.predict(x) as tf.Tensor).dataSync());
  fs.rmSync(dir, { recursive: true, force: true });
});

test('weightData given as ArrayBuffer[] is written in order', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'model.json');
  const a = new Float32Array([1, 2, 3]).buffer;
  const b = new Float32Array([4, 5]).buffer;
  await fileSystemSaveHandler(file).save!({
    modelTopology: { class_name: 'Sequential' },
    format: 'layers-model',
    weightSpecs: [
      { name: 'w', shape: [3], dtype: 'float32' },
      { name: 'v', shape: [2], dtype: 'float32' },
    ],
    weightData: [a, b],
  });
  const bytes = fs.readFileSync(path.join(dir, 'group1-shard1of1.bin'));
  assert.deepEqual(Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, 5)), [1, 2, 3, 4, 5]);
  const art = await fileSystemLoadHandler(file).load!();
  assert.deepEqual(Array.from(new Float32Array(art.weightData as ArrayBuffer)), [1, 2, 3, 4, 5]);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('file:// routers: model.save and tf.loadLayersModel with URLs', async () => {
  await initTfjs('wasm');
  registerFileSystemRouters();
  const dir = tmpDir();
  assert.equal(modelJsonPathFromFileUrl(`file://${dir}`), path.join(dir, 'model.json'));
  assert.equal(modelJsonPathFromFileUrl(`file://${dir}/m.json`), path.join(dir, 'm.json'));
  const model = buildNeuMF({ users: 20, items: 10, gmfDim: 2, mlpDim: 2, hidden: [4], seed: 4 });
  await model.save(`file://${dir}`);
  const loaded = await tf.loadLayersModel(`file://${dir}/model.json`);
  const x = pairs();
  assert.deepEqual((loaded.predict(x) as tf.Tensor).dataSync(), (model.predict(x) as tf.Tensor).dataSync());
  fs.rmSync(dir, { recursive: true, force: true });
});

test('bad model folders give one ModelFileError naming the file and the reason', async () => {
  await initTfjs('wasm');
  const dir = tmpDir();
  const file = path.join(dir, 'model.json');
  const model = buildNeuMF({ users: 5, items: 5, gmfDim: 2, mlpDim: 2, hidden: [2], seed: 1 });
  await model.save(fileSystemSaveHandler(file));
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  const shard = path.join(dir, 'group1-shard1of1.bin');
  const full = fs.readFileSync(shard);

  const expectError = async (reason: RegExp) => {
    await assert.rejects(fileSystemLoadHandler(file).load!(), (e: unknown) => {
      assert.ok(e instanceof ModelFileError);
      assert.equal(e.file, file);
      assert.match(e.reason, reason);
      return true;
    });
  };

  fs.writeFileSync(shard, full.subarray(0, full.length - 4));
  await expectError(/weights need \d+ bytes but the shards hold \d+/);
  fs.rmSync(shard);
  await expectError(/cannot read weight shard 'group1-shard1of1.bin'/);
  fs.writeFileSync(file, JSON.stringify({ ...json, weightsManifest: [{ paths: ['../escape.bin'], weights: [] }] }));
  await expectError(/leaves the model's folder/);
  fs.writeFileSync(file, '{"modelTopology": ');
  await expectError(/not valid JSON/);
  fs.writeFileSync(file, '{"weightsManifest": []}');
  await expectError(/no modelTopology/);
  fs.rmSync(dir, { recursive: true, force: true });
});
