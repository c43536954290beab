// A model made and saved by real tfjs-layers (the way the project's fixtures make theirs):
// the reader finds its roles and values, and what the writer writes loads back into tfjs-layers
// and predicts exactly what the original model predicts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readTfjsModel } from '../../src/core/model/tfjs.js';
import { writeTfjsModel } from '../../src/core/model/tfjs-write.js';
import { readTensorFloat32 } from '../../src/core/model/tensor-data.js';

function buildModel(): tf.LayersModel {
  const user = tf.input({ shape: [1], dtype: 'int32', name: 'user' });
  const item = tf.input({ shape: [1], dtype: 'int32', name: 'item' });
  const u = tf.layers.flatten({ name: 'uf' }).apply(tf.layers.embedding({ inputDim: 7, outputDim: 4, name: 'user_embedding' }).apply(user)) as tf.SymbolicTensor;
  const i = tf.layers.flatten({ name: 'if' }).apply(tf.layers.embedding({ inputDim: 5, outputDim: 4, name: 'item_embedding' }).apply(item)) as tf.SymbolicTensor;
  const x = tf.layers.concatenate({ name: 'cat' }).apply([u, i]) as tf.SymbolicTensor;
  const h = tf.layers.dense({ units: 3, activation: 'relu', name: 'mlp' }).apply(x) as tf.SymbolicTensor;
  const n = tf.layers.batchNormalization({ name: 'bn' }).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'score' }).apply(n) as tf.SymbolicTensor;
  return tf.model({ inputs: [user, item], outputs: out, name: 'ncf' });
}

/** Saves like tfjs-node's file:// handler: model.json + one weights.bin. */
async function save(model: tf.LayersModel, dir: string): Promise<string> {
  const file = path.join(dir, 'model.json');
  await model.save(tf.io.withSaveHandler(async (a) => {
    const data = Array.isArray(a.weightData) ? tf.io.concatenateArrayBuffers(a.weightData) : (a.weightData as ArrayBuffer);
    await writeFile(path.join(dir, 'weights.bin'), new Uint8Array(data));
    await writeFile(file, JSON.stringify({
      modelTopology: a.modelTopology, format: a.format, generatedBy: a.generatedBy, convertedBy: a.convertedBy,
      weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
    }));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return file;
}

test('a tfjs-layers model: roles and values read right, the written copy loads and predicts the same', async () => {
  await tf.setBackend('cpu');
  const model = buildModel();
  const file = await save(model, await mkdtemp(path.join(os.tmpdir(), 'prunescope-tfjs-l-')));
  const ir = await readTfjsModel(file);
  assert.equal(ir.format, 'tfjs-layers');
  assert.equal(ir.metadata.format, 'layers-model');
  // tfjs-layers saves trainable weights first, then the non-trainable ones (moving statistics)
  assert.deepEqual(ir.tensors.map((t) => [t.name, t.layer, t.role]), [
    ['user_embedding/embeddings', 'user_embedding', 'embedding'], ['item_embedding/embeddings', 'item_embedding', 'embedding'],
    ['mlp/kernel', 'mlp', 'dense-kernel'], ['mlp/bias', 'mlp', 'bias'],
    ['bn/gamma', 'bn', 'norm'], ['bn/beta', 'bn', 'norm'],
    ['score/kernel', 'score', 'dense-kernel'], ['score/bias', 'score', 'bias'],
    ['bn/moving_mean', 'bn', 'norm'], ['bn/moving_variance', 'bn', 'norm'],
  ]);
  const byName = new Map(model.weights.map((w) => [w.originalName, w.read()]));
  for (const t of ir.tensors) {
    const w = byName.get(t.name);
    assert.ok(w, t.name);
    assert.deepEqual(t.shape, w.shape);
    assert.deepEqual(await readTensorFloat32(t), w.dataSync());
  }
  assert.deepEqual(ir.layers.find((l) => l.name === 'cat')?.inbound, ['uf', 'if']);
  assert.deepEqual(ir.graph.inputs.map((v) => v.name), ['user', 'item']);
  assert.deepEqual(ir.graph.outputs, [{ name: 'score' }]);

  // zero one embedding row through `replace`, write with small shards, load the copy in TF.js
  const table = await readTensorFloat32(ir.tensors[0]);
  table.fill(0, 2 * 4, 3 * 4);
  const out = path.join(await mkdtemp(path.join(os.tmpdir(), 'prunescope-tfjs-l-out-')), 'model.json');
  await writeTfjsModel(ir, out, { shardBytes: 64, replace: new Map([[ir.tensors[0].name, { dtype: 'float32', shape: [7, 4], data: table }]]) });
  const json = JSON.parse(await readFile(out, 'utf8')) as { modelTopology: object; weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }> };
  const buffers = await Promise.all(json.weightsManifest[0].paths.map(async (p) => {
    const b = await readFile(path.join(path.dirname(out), p));
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }));
  assert.ok(buffers.length > 1);
  const copy = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData: buffers }));
  const users = tf.tensor2d([[0], [1], [2], [3], [6]], [5, 1], 'int32');
  const items = tf.tensor2d([[4], [3], [2], [1], [0]], [5, 1], 'int32');
  const before = (model.predict([users, items]) as tf.Tensor).dataSync();
  const after = (copy.predict([users, items]) as tf.Tensor).dataSync();
  for (const r of [0, 1, 3, 4]) assert.equal(after[r], before[r]);
  // user 2's row is zero now: its score is what a zero embedding gives
  const zeroUser = copy.getWeights()[0].dataSync().slice(8, 12);
  assert.deepEqual(Array.from(zeroUser), [0, 0, 0, 0]);
  assert.deepEqual(Array.from(copy.getWeights()[0].dataSync()), Array.from(table));
});
