import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ModelFileError } from '../../src/core/model/ir.js';
import { readTfjsModel } from '../../src/core/model/tfjs.js';
import { fileSystemLoadHandler, fileSystemSaveHandler } from '../../src/core/model/tfjs-io.js';
import { writeEditedTfjsModel } from '../../src/core/model/tfjs-write.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ps-tfjs-edit-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type Json = Record<string, unknown>;
type LayerJson = { class_name: string; config: Json & { name: string }; inbound_nodes?: unknown[]; name?: string };

async function predict(modelJson: string, x: tf.Tensor): Promise<number[]> {
  const m = await tf.loadLayersModel(fileSystemLoadHandler(modelJson));
  const y = m.predict(x) as tf.Tensor;
  const out = Array.from(await y.data());
  y.dispose();
  m.dispose();
  return out;
}

test('(a) Embedding rows dropped: input_dim and table replaced; kept ids predict the same', async () => {
  await initTfjs('cpu');
  await withDir(async (dir) => {
    const m = tf.sequential();
    m.add(tf.layers.embedding({ inputDim: 10, outputDim: 4, inputLength: 1, name: 'emb' }));
    m.add(tf.layers.flatten({ name: 'flat' }));
    m.add(tf.layers.dense({ units: 2, name: 'out' }));
    const table = Float32Array.from({ length: 40 }, (_, i) => (i % 9) * 0.5 - 2);
    m.getLayer('emb').setWeights([tf.tensor2d(table, [10, 4])]);
    const src = path.join(dir, 'src', 'model.json');
    await m.save(fileSystemSaveHandler(src));
    m.dispose();
    const ir = await readTfjsModel(src);
    const srcJson = await readFile(src, 'utf8');

    const keep = [1, 4, 5, 8];
    const newTable = new Float32Array(keep.length * 4);
    keep.forEach((id, row) => newTable.set(table.subarray(id * 4, id * 4 + 4), row * 4));
    const topology = JSON.parse(JSON.stringify((ir.native as Json).modelTopology)) as { config: { layers: LayerJson[] } };
    const embLayer = topology.config.layers.find((l) => l.config.name === 'emb') as LayerJson;
    embLayer.config.input_dim = keep.length;
    const out = path.join(dir, 'out', 'model.json');
    await writeEditedTfjsModel(ir, { topology, setWeights: [{ name: 'emb/embeddings', dtype: 'float32', shape: [4, 4], data: newTable }] }, out);

    const before = await predict(src, tf.tensor2d(keep, [keep.length, 1], 'int32'));
    const after = await predict(out, tf.tensor2d([0, 1, 2, 3], [keep.length, 1], 'int32'));
    assert.deepEqual(after, before);
    const back = await readTfjsModel(out);
    assert.deepEqual(back.tensors.map((t) => [t.name, t.shape]), [['emb/embeddings', [4, 4]], ['out/kernel', [4, 2]], ['out/bias', [2]]]);
    assert.equal(await readFile(src, 'utf8'), srcJson, 'original untouched');
    assert.deepEqual(await readdir(path.dirname(out)), ['group1-shard1of1.bin', 'model.json']);
  });
});

test('(b) a Dense split into two Dense layers (functional topology edited, weights added/removed)', async () => {
  await initTfjs('cpu');
  await withDir(async (dir) => {
    const x = tf.input({ shape: [3], name: 'x' });
    const h = tf.layers.dense({ units: 4, activation: 'relu', name: 'd1' }).apply(x) as tf.SymbolicTensor;
    const y = tf.layers.dense({ units: 2, name: 'd2' }).apply(h) as tf.SymbolicTensor;
    const m = tf.model({ inputs: x, outputs: y, name: 'mlp' });
    // kernel of d1 = A [3,2] . B [2,4] exactly (small integers)
    const A = [1, 0, 0, 1, 1, -1];
    const B = [1, 2, 0, -1, 0, 1, 1, 2];
    const K: number[] = [];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) K.push(A[i * 2] * B[j] + A[i * 2 + 1] * B[4 + j]);
    const bias = [0.5, -0.5, 0.25, 0];
    m.getLayer('d1').setWeights([tf.tensor2d(K, [3, 4]), tf.tensor1d(bias)]);
    m.getLayer('d2').setWeights([tf.tensor2d([1, 0, 0, 1, 2, 2, -1, 3], [4, 2]), tf.tensor1d([0.25, -0.25])]);
    const src = path.join(dir, 'src', 'model.json');
    await m.save(fileSystemSaveHandler(src));
    m.dispose();
    const ir = await readTfjsModel(src);
    assert.deepEqual(ir.tensors.map((t) => t.name), ['d1/kernel', 'd1/bias', 'd2/kernel', 'd2/bias']);

    const topology = JSON.parse(JSON.stringify((ir.native as Json).modelTopology)) as { model_config?: unknown; config: { layers: LayerJson[] } };
    const layers = topology.config.layers;
    const i1 = layers.findIndex((l) => l.config.name === 'd1');
    const d1 = layers[i1];
    const d1a: LayerJson = JSON.parse(JSON.stringify(d1)) as LayerJson;
    d1a.name = 'd1_u';
    d1a.config = { ...d1a.config, name: 'd1_u', units: 2, activation: 'linear', use_bias: false };
    // d1 now reads d1_u
    d1.inbound_nodes = [[['d1_u', 0, 0, {}]]];
    layers.splice(i1, 0, d1a);
    const out = path.join(dir, 'out', 'model.json');
    await writeEditedTfjsModel(ir, {
      topology,
      setWeights: [
        { name: 'd1_u/kernel', dtype: 'float32', shape: [3, 2], data: new Float32Array(A) },
        { name: 'd1/kernel', dtype: 'float32', shape: [2, 4], data: new Float32Array(B) },
      ],
    }, out);
    const inputs = tf.tensor2d([1, 2, 3, -1, 0.5, 2], [2, 3]);
    assert.deepEqual(await predict(out, inputs), await predict(src, inputs));
    // x=[1,2,3]: x.A = [4,-1]; . B = [4,7,-1,-6]; + b -> relu [4.5,6.5,0,0]; . d2 + b2 = [4.75, 6.25]
    const expected = [4.75, 6.25];
    const got = await predict(out, tf.tensor2d([1, 2, 3], [1, 3]));
    assert.ok(Math.abs(got[0] - expected[0]) < 1e-6 && Math.abs(got[1] - expected[1]) < 1e-6, `got ${got}`);
    const back = await readTfjsModel(out);
    // replaced weights keep their place, new ones are appended
    assert.deepEqual(back.tensors.map((t) => [t.name, t.shape]), [['d1/kernel', [2, 4]], ['d1/bias', [4]], ['d2/kernel', [4, 2]], ['d2/bias', [2]], ['d1_u/kernel', [3, 2]]]);
  });
});

test('shards of the rebuilt manifest are cut at shardBytes; bad edits are refused and write nothing', async () => {
  await initTfjs('cpu');
  await withDir(async (dir) => {
    const m = tf.sequential();
    m.add(tf.layers.dense({ units: 4, inputShape: [3], name: 'd' }));
    const src = path.join(dir, 'src', 'model.json');
    await m.save(fileSystemSaveHandler(src));
    m.dispose();
    const ir = await readTfjsModel(src);
    const outDir = path.join(dir, 'out');
    const out = path.join(outDir, 'model.json');
    await assert.rejects(writeEditedTfjsModel(ir, { removeWeights: ['nope'] }, out), (e: unknown) => e instanceof ModelFileError && /no such weight/.test(e.message));
    await assert.rejects(writeEditedTfjsModel(ir, { setWeights: [{ name: 'x', dtype: 'float32', shape: [3], data: new Float32Array(2) }] }, out), /needs 12 bytes, got 8/);
    await assert.rejects(
      writeEditedTfjsModel(ir, { removeWeights: ['d/bias'], setWeights: [{ name: 'd/bias', dtype: 'float32', shape: [4], data: new Float32Array(4) }] }, out),
      /both set and removed/,
    );
    await assert.rejects(writeEditedTfjsModel(ir, {}, src), /refusing to write/);
    await assert.rejects(readdir(outDir), /ENOENT/);
    // 48 + 16 + 40 bytes in shards of 32
    await writeEditedTfjsModel(ir, { setWeights: [{ name: 'extra', dtype: 'float32', shape: [10], data: new Float32Array(10) }] }, out, { shardBytes: 32 });
    assert.deepEqual((await readdir(outDir)).sort(), ['group1-shard1of4.bin', 'group1-shard2of4.bin', 'group1-shard3of4.bin', 'group1-shard4of4.bin', 'model.json']);
    const doc = JSON.parse(await readFile(out, 'utf8')) as { weightsManifest: Array<{ weights: Array<{ name: string }> }> };
    assert.deepEqual(doc.weightsManifest[0].weights.map((w) => w.name), ['d/kernel', 'd/bias', 'extra']);
  });
});
