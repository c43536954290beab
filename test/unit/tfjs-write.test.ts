// TF.js writer: read -> write -> read keeps every stored byte and every model.json field, shards
// are cut like the converter cuts them, replacements are written as given, and a failed or
// forbidden write leaves nothing behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { ModelFileError, ModelIR } from '../../src/core/model/ir.js';
import { readTfjsModel } from '../../src/core/model/tfjs.js';
import { writeTfjsModel } from '../../src/core/model/tfjs-write.js';
import { readTensorBytes, readTensorFloat32 } from '../../src/core/model/tensor-data.js';

function f32(...v: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(v).buffer);
}
function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}
function strings(...v: string[]): Uint8Array {
  return cat(...v.flatMap((s) => {
    const b = Buffer.from(s, 'utf8');
    return [new Uint8Array(new Uint32Array([b.byteLength]).buffer), new Uint8Array(b)];
  }));
}

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'prunescope-tfjs-w-'));
}

async function makeModel(doc: unknown, shards: Record<string, Uint8Array>, name = 'model.json'): Promise<string> {
  const dir = await tempDir();
  for (const [p, b] of Object.entries(shards)) await writeFile(path.join(dir, p), b);
  const file = path.join(dir, name);
  await writeFile(file, JSON.stringify(doc));
  return file;
}

function withoutPaths(doc: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(doc)) as unknown;
  const groups = Array.isArray(copy) ? copy : (copy as { weightsManifest?: unknown[] }).weightsManifest ?? [];
  for (const g of groups as Array<{ paths: unknown }>) g.paths = [];
  return copy;
}

async function assertSameTensors(a: ModelIR, b: ModelIR): Promise<void> {
  assert.deepEqual(b.tensors.map((t) => [t.name, t.shape, t.dtype, t.storage.dtype, t.storage.byteLength, t.storage.quantization, t.role, t.layer]),
    a.tensors.map((t) => [t.name, t.shape, t.dtype, t.storage.dtype, t.storage.byteLength, t.storage.quantization, t.role, t.layer]));
  for (let i = 0; i < a.tensors.length; i++) assert.deepEqual(await readTensorBytes(b.tensors[i]), await readTensorBytes(a.tensors[i]), a.tensors[i].name);
}

const mixedDoc = {
  format: 'graph-model',
  generatedBy: '2.15.0',
  convertedBy: 'TensorFlow.js Converter v4.22.0',
  signature: { inputs: { 'x:0': { name: 'x:0', dtype: 'DT_FLOAT' } }, outputs: {} },
  userDefinedMetadata: { note: 'keep me', nested: { n: 1 } },
  modelTopology: { node: [{ name: 'x', op: 'Placeholder' }, { name: 'w', op: 'Const' }, { name: 'mm', op: 'MatMul', input: ['x', 'w'], attr: { transpose_b: { b: true } } }] },
  weightsManifest: [
    {
      paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'],
      weights: [
        { name: 'w', shape: [2, 3], dtype: 'float32' },
        { name: 'q', shape: [5], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.25, min: -0.5, original_dtype: 'float32' } },
        { name: 'h', shape: [3], dtype: 'float32', quantization: { dtype: 'float16' } },
        { name: 'qi', shape: [2], dtype: 'int32', quantization: { dtype: 'uint16', scale: 2, min: -3 } },
        { name: 'words', shape: [2], dtype: 'string' },
        { name: 'flags', shape: [3], dtype: 'bool', group: 'model' },
      ],
    },
    { paths: ['group2-shard1of1.bin'], weights: [{ name: 'v', shape: [2], dtype: 'float32' }] },
  ],
};
const mixedGroup1 = cat(
  f32(1, -2, 3.5, 0, 1e-8, -7),
  new Uint8Array([0, 1, 2, 100, 255]),
  new Uint8Array(new Uint16Array([0x3c00, 0xbc00, 0x0001]).buffer),
  new Uint8Array(new Uint16Array([1, 40000]).buffer),
  strings('a', 'zz'),
  new Uint8Array([1, 0, 1]),
);

async function mixedModel(): Promise<string> {
  return makeModel(mixedDoc, {
    'group1-shard1of2.bin': mixedGroup1.subarray(0, 30),
    'group1-shard2of2.bin': mixedGroup1.subarray(30),
    'group2-shard1of1.bin': f32(8, 9),
  });
}

test('read -> write -> read keeps stored bytes, quantization, groups and every model.json field', async () => {
  const ir = await readTfjsModel(await mixedModel());
  const out = path.join(await tempDir(), 'out', 'model.json');
  await writeTfjsModel(ir, out, { shardBytes: 16 });
  // group 1 holds 24 + 5 + 6 + 4 + 11 + 3 = 53 bytes -> 4 shards of 16; group 2 one of 8
  assert.deepEqual((await readdir(path.dirname(out))).sort(), [
    'group1-shard1of4.bin', 'group1-shard2of4.bin', 'group1-shard3of4.bin', 'group1-shard4of4.bin', 'group2-shard1of1.bin', 'model.json',
  ]);
  const written = JSON.parse(await readFile(out, 'utf8')) as typeof mixedDoc;
  assert.deepEqual(written.weightsManifest.map((g) => g.paths), [
    ['group1-shard1of4.bin', 'group1-shard2of4.bin', 'group1-shard3of4.bin', 'group1-shard4of4.bin'], ['group2-shard1of1.bin'],
  ]);
  assert.deepEqual(withoutPaths(written), withoutPaths(mixedDoc));
  const back = await readTfjsModel(out);
  await assertSameTensors(ir, back);
  assert.deepEqual(withoutPaths(back.native), withoutPaths(ir.native));
  assert.deepEqual(Array.from(await readTensorFloat32(back.tensors[3])), [-1, 79997]);

  // what TF.js itself decodes from the written shards equals what it decodes from the originals
  await tf.setBackend('cpu');
  const shards = await Promise.all(written.weightsManifest[0].paths.map((p) => readFile(path.join(path.dirname(out), p))));
  const g1 = shards.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
  const mine = tf.io.decodeWeights(g1, written.weightsManifest[0].weights as tf.io.WeightsManifestEntry[]);
  const orig = tf.io.decodeWeights(mixedGroup1.slice().buffer as ArrayBuffer, mixedDoc.weightsManifest[0].weights as tf.io.WeightsManifestEntry[]);
  for (const k of Object.keys(orig)) assert.deepEqual(mine[k].dataSync(), orig[k].dataSync(), k);
});

test('a model kept on disk (file sources, a straddling copy) writes the same bytes', async () => {
  const src = await mixedModel();
  const onDisk = await readTfjsModel(src, { maxInMemoryBytes: 0 });
  assert.ok(onDisk.tensors.some((t) => t.storage.source.kind === 'file'));
  const out = path.join(await tempDir(), 'model.json');
  await writeTfjsModel(onDisk, out);
  // default 4 MiB shards: one file per group
  assert.deepEqual((await readdir(path.dirname(out))).sort(), ['group1-shard1of1.bin', 'group2-shard1of1.bin', 'model.json']);
  assert.deepEqual(new Uint8Array(await readFile(path.join(path.dirname(out), 'group1-shard1of1.bin'))), mixedGroup1);
  await assertSameTensors(onDisk, await readTfjsModel(out));
});

test('weights-only array manifests are written back as arrays', async () => {
  const doc = [{ paths: ['w.bin'], weights: [{ name: 'e/embeddings', shape: [2, 2], dtype: 'float32' }] }];
  const ir = await readTfjsModel(await makeModel(doc, { 'w.bin': f32(1, 2, 3, 4) }, 'weights_manifest.json'));
  const out = path.join(await tempDir(), 'weights_manifest.json');
  await writeTfjsModel(ir, out);
  assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), [{ paths: ['group1-shard1of1.bin'], weights: doc[0].weights }]);
  await assertSameTensors(ir, await readTfjsModel(out));
});

test('replacements: a quantized kernel and a table with pruned rows, other entries untouched', async () => {
  const doc = {
    format: 'layers-model',
    modelTopology: { class_name: 'Sequential', config: { name: 's', layers: [] } },
    weightsManifest: [{ paths: ['w.bin'], weights: [
      { name: 'emb/embeddings', shape: [3, 2], dtype: 'float32', group: 'model' },
      { name: 'd/kernel', shape: [2, 2], dtype: 'float32' },
      { name: 'd/bias', shape: [2], dtype: 'float32' },
    ] }],
  };
  const ir = await readTfjsModel(await makeModel(doc, { 'w.bin': f32(1, 2, 3, 4, 5, 6, 0.5, -0.5, 1, -1, 7, 8) }));
  const out = path.join(await tempDir(), 'model.json');
  await writeTfjsModel(ir, out, {
    replace: new Map([
      ['emb/embeddings', { dtype: 'float32', shape: [2, 2], data: new Float32Array([1, 2, 5, 6]) }],
      ['d/kernel', { dtype: 'float32', shape: [2, 2], data: new Uint8Array([0, 255, 128, 64]), quantization: { dtype: 'uint8', scale: 0.5, min: -1, originalDtype: 'float32' } }],
    ]),
  });
  const written = JSON.parse(await readFile(out, 'utf8')) as typeof doc;
  assert.deepEqual(written.weightsManifest[0].weights, [
    { name: 'emb/embeddings', shape: [2, 2], dtype: 'float32', group: 'model' },
    { name: 'd/kernel', shape: [2, 2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1, original_dtype: 'float32' } },
    { name: 'd/bias', shape: [2], dtype: 'float32' },
  ]);
  const back = await readTfjsModel(out);
  assert.deepEqual(Array.from(await readTensorFloat32(back.tensors[0])), [1, 2, 5, 6]);
  assert.deepEqual(Array.from(await readTensorFloat32(back.tensors[1])), [-1, 126.5, 63, 31]);
  assert.deepEqual(Array.from(await readTensorFloat32(back.tensors[2])), [7, 8]);
  assert.equal(back.tensors[1].storage.dtype, 'uint8');

  await assert.rejects(
    writeTfjsModel(ir, path.join(await tempDir(), 'model.json'), { replace: new Map([['d/bias', { dtype: 'float32', shape: [3], data: new Float32Array(2) }]]) }),
    (e: unknown) => e instanceof ModelFileError && /replacement for d\/bias \[3\] float32 needs 12 bytes, got 8/.test(e.reason),
  );
  await assert.rejects(
    writeTfjsModel(ir, path.join(await tempDir(), 'model.json'), { replace: new Map([['nope', { dtype: 'float32', shape: [1], data: new Float32Array(1) }]]) }),
    /replacement for unknown tensor nope/,
  );
});

test('never writes over the model it reads from; a failed write leaves no files', async () => {
  const src = await mixedModel();
  const ir = await readTfjsModel(src);
  const dir = path.dirname(src);
  const before = (await readdir(dir)).sort();
  await assert.rejects(writeTfjsModel(ir, src), (e: unknown) => e instanceof ModelFileError && /refusing to write .*model\.json: it is part of the model/.test(e.reason));
  // another name in the same folder would still overwrite the original shards
  await assert.rejects(writeTfjsModel(ir, path.join(dir, 'model.pruned.json')), (e: unknown) => e instanceof ModelFileError && /refusing to write .*group2-shard1of1\.bin/.test(e.reason));
  assert.deepEqual((await readdir(dir)).sort(), before);
  assert.deepEqual(new Uint8Array(await readFile(path.join(dir, 'group1-shard1of2.bin'))), mixedGroup1.subarray(0, 30));

  // a tensor whose bytes vanish mid-write: the job fails and its temp files are gone
  const broken: ModelIR = { ...ir, tensors: ir.tensors.map((t, i) => (i === 4 ? { ...t, storage: { ...t.storage, source: { kind: 'file' as const, path: path.join(dir, 'gone.bin'), offset: 0, length: t.storage.byteLength } } } : t)) };
  const outDir = await tempDir();
  await assert.rejects(writeTfjsModel(broken, path.join(outDir, 'model.json'), { shardBytes: 8 }), (e: unknown) => e instanceof ModelFileError && /gone\.bin/.test(e.message));
  assert.deepEqual(await readdir(outDir), []);
  // folders the failed write created are gone too
  await assert.rejects(writeTfjsModel(broken, path.join(outDir, 'new', 'deeper', 'model.json')), /gone\.bin/);
  assert.deepEqual(await readdir(outDir), []);
});
