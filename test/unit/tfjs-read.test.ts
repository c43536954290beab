// TF.js reader on hand-made manifests: byte layout across shards, every stored dtype and
// quantization, roles, and the refusals (paths, sizes, bad JSON).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModelFileError, ModelTensor } from '../../src/core/model/ir.js';
import { readTfjsModel } from '../../src/core/model/tfjs.js';
import { readTensorBytes, readTensorFloat32 } from '../../src/core/model/tensor-data.js';

function f32(...v: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(v).buffer);
}
function i32(...v: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(v).buffer);
}
function u16(...v: number[]): Uint8Array {
  return new Uint8Array(new Uint16Array(v).buffer);
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
  return mkdtemp(path.join(os.tmpdir(), 'prunescope-tfjs-'));
}

/** Writes model.json (object or array) and shard files into a fresh folder; returns model.json's path. */
async function makeModel(doc: unknown, shards: Record<string, Uint8Array>, name = 'model.json'): Promise<string> {
  const dir = await tempDir();
  for (const [p, b] of Object.entries(shards)) {
    await mkdir(path.dirname(path.join(dir, p)), { recursive: true });
    await writeFile(path.join(dir, p), b);
  }
  const file = path.join(dir, name);
  await writeFile(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return file;
}

function byName(ts: ModelTensor[], name: string): ModelTensor {
  const t = ts.find((x) => x.name === name);
  assert.ok(t, `no tensor ${name}`);
  return t;
}

async function values(t: ModelTensor): Promise<number[]> {
  return Array.from(await readTensorFloat32(t));
}

async function rejectsWith(p: Promise<unknown>, file: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ModelFileError, `expected ModelFileError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.match(e.reason, re);
    return true;
  });
}

// a [3] (12 B) | b [2,3] (24 B) | c [1] (4 B) over shards of 16 + 16 + 8 bytes:
// b starts in shard 1 at byte 12, fills shard 2 and ends in shard 3 at byte 4.
const threeShards = {
  format: 'layers-model',
  modelTopology: { class_name: 'Sequential', config: { name: 's', layers: [] } },
  weightsManifest: [
    {
      paths: ['group1-shard1of3.bin', 'group1-shard2of3.bin', 'group1-shard3of3.bin'],
      weights: [
        { name: 'a', shape: [3], dtype: 'float32' },
        { name: 'b', shape: [2, 3], dtype: 'float32' },
        { name: 'c', shape: [1], dtype: 'float32' },
      ],
    },
  ],
};
const threeShardBytes = cat(f32(1, 2, 3), f32(-1.5, 0.25, 4, 5, 6, 7), f32(42));
const threeShardFiles = {
  'group1-shard1of3.bin': threeShardBytes.subarray(0, 16),
  'group1-shard2of3.bin': threeShardBytes.subarray(16, 32),
  'group1-shard3of3.bin': threeShardBytes.subarray(32, 40),
};

test('float32 weights across three shards, one straddling all three, in memory', async () => {
  const file = await makeModel(threeShards, threeShardFiles);
  const ir = await readTfjsModel(file);
  assert.equal(ir.format, 'tfjs-layers');
  assert.deepEqual(ir.tensors.map((t) => t.name), ['a', 'b', 'c']);
  assert.deepEqual(await values(byName(ir.tensors, 'a')), [1, 2, 3]);
  assert.deepEqual(await values(byName(ir.tensors, 'b')), [-1.5, 0.25, 4, 5, 6, 7]);
  assert.deepEqual(await values(byName(ir.tensors, 'c')), [42]);
  const b = byName(ir.tensors, 'b');
  assert.equal(b.storage.byteLength, 24);
  assert.equal(b.storage.location, 'group1-shard1of3.bin @ 12');
  assert.equal(byName(ir.tensors, 'c').storage.location, 'group1-shard3of3.bin @ 4');
  assert.ok(ir.tensors.every((t) => t.storage.source.kind === 'bytes'));
  assert.deepEqual(ir.files.map((f) => [path.basename(f.path), f.bytes, f.kind]), [
    ['model.json', JSON.stringify(threeShards).length, 'model'],
    ['group1-shard1of3.bin', 16, 'weights'],
    ['group1-shard2of3.bin', 16, 'weights'],
    ['group1-shard3of3.bin', 8, 'weights'],
  ]);
});

test('large models stay on disk: file ranges inside one shard, ranges of several shards for a straddling weight', async () => {
  const file = await makeModel(threeShards, threeShardFiles);
  const progress: number[] = [];
  const ir = await readTfjsModel(file, { maxInMemoryBytes: 0, onProgress: (f) => progress.push(f) });
  const dir = path.dirname(file);
  assert.deepEqual(byName(ir.tensors, 'a').storage.source, { kind: 'file', path: path.join(dir, 'group1-shard1of3.bin'), offset: 0, length: 12 });
  assert.deepEqual(byName(ir.tensors, 'c').storage.source, { kind: 'file', path: path.join(dir, 'group1-shard3of3.bin'), offset: 4, length: 4 });
  const b = byName(ir.tensors, 'b').storage.source;
  assert.equal(b.kind, 'file-parts');
  assert.deepEqual(b.kind === 'file-parts' ? b.parts.map((p) => path.basename(p.path)) : [], ['group1-shard1of3.bin', 'group1-shard2of3.bin', 'group1-shard3of3.bin']);
  assert.deepEqual(await values(byName(ir.tensors, 'b')), [-1.5, 0.25, 4, 5, 6, 7]);
  assert.deepEqual(await values(byName(ir.tensors, 'c')), [42]);
  assert.equal(progress[progress.length - 1], 1);
  assert.ok(progress.every((p, i) => i === 0 || p >= progress[i - 1]));
});

test('uint8 and uint16 affine quantization, with and without original_dtype', async () => {
  const doc = [
    {
      paths: ['w.bin'],
      weights: [
        { name: 'q8', shape: [3], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1, original_dtype: 'float32' } },
        { name: 'q8old', shape: [2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.1, min: 0.3 } },
        { name: 'q16', shape: [3], dtype: 'float32', quantization: { dtype: 'uint16', scale: 0.001, min: -2, original_dtype: 'float32' } },
      ],
    },
  ];
  const file = await makeModel(doc, { 'w.bin': cat(new Uint8Array([0, 1, 255]), new Uint8Array([7, 200]), u16(0, 1000, 65535)) });
  const ir = await readTfjsModel(file);
  const q8 = byName(ir.tensors, 'q8');
  assert.equal(q8.dtype, 'float32');
  assert.equal(q8.storage.dtype, 'uint8');
  assert.equal(q8.storage.byteLength, 3);
  assert.deepEqual(q8.storage.quantization, { dtype: 'uint8', scale: 0.5, min: -1, originalDtype: 'float32' });
  assert.deepEqual(await values(q8), [-1, -0.5, 126.5]);
  const old = byName(ir.tensors, 'q8old');
  assert.deepEqual(old.storage.quantization, { dtype: 'uint8', scale: 0.1, min: 0.3, originalDtype: 'float32' });
  assert.deepEqual(await values(old), [Math.fround(7 * 0.1 + 0.3), Math.fround(200 * 0.1 + 0.3)]);
  const q16 = byName(ir.tensors, 'q16');
  assert.equal(q16.storage.dtype, 'uint16');
  assert.equal(q16.storage.byteLength, 6);
  assert.equal(q16.storage.location, 'w.bin @ 5');
  assert.deepEqual(await values(q16), [-2, Math.fround(1000 * 0.001 - 2), Math.fround(65535 * 0.001 - 2)]);
  assert.deepEqual(await readTensorBytes(q16), u16(0, 1000, 65535));
});

test('float16 storage, quantized int32 (rounded after the affine map), bool and complex64', async () => {
  const doc = {
    weightsManifest: [
      {
        paths: ['w.bin'],
        weights: [
          { name: 'h', shape: [4], dtype: 'float32', quantization: { dtype: 'float16', original_dtype: 'float32' } },
          { name: 'qi', shape: [3], dtype: 'int32', quantization: { dtype: 'uint8', scale: 0.5, min: 0.2 } },
          { name: 'mask', shape: [3], dtype: 'bool' },
          { name: 'z', shape: [1], dtype: 'complex64' },
          { name: 'ids', shape: [2], dtype: 'int32' },
        ],
      },
    ],
  };
  const bytes = cat(u16(0x3c00, 0xc000, 0x3555, 0x7c00), new Uint8Array([0, 3, 10]), new Uint8Array([1, 0, 1]), f32(3, 4), i32(-7, 9));
  const ir = await readTfjsModel(await makeModel(doc, { 'w.bin': bytes }));
  assert.equal(ir.format, 'tfjs-weights');
  const h = byName(ir.tensors, 'h');
  assert.equal(h.storage.dtype, 'float16');
  assert.deepEqual(h.storage.quantization, { dtype: 'float16', originalDtype: 'float32' });
  assert.deepEqual(await values(h), [1, -2, 0.333251953125, Infinity]);
  const qi = byName(ir.tensors, 'qi');
  assert.equal(qi.dtype, 'int32');
  assert.deepEqual(qi.storage.quantization, { dtype: 'uint8', scale: 0.5, min: 0.2, originalDtype: 'int32' });
  assert.deepEqual(await values(qi), [0, 2, 5]); // round(0.2), round(1.7), round(5.2)
  const mask = byName(ir.tensors, 'mask');
  assert.equal(mask.storage.dtype, 'bool');
  assert.equal(mask.role, 'constant');
  assert.equal(mask.trainable, false);
  assert.deepEqual(await values(mask), [1, 0, 1]);
  const z = byName(ir.tensors, 'z');
  assert.equal(z.storage.byteLength, 8);
  assert.deepEqual(await values(z), [5]); // |3 + 4i|
  assert.deepEqual(await values(byName(ir.tensors, 'ids')), [-7, 9]);
  assert.equal(byName(ir.tensors, 'ids').role, 'constant');
});

test('string weights: 4-byte length prefix per string, the next weight right after', async () => {
  const doc = [{ paths: ['a.bin', 'b.bin'], weights: [
    { name: 'vocab', shape: [3], dtype: 'string' },
    { name: 'after', shape: [2], dtype: 'float32' },
  ] }];
  const s = strings('ab', '', 'héllo');
  const all = cat(s, f32(0.5, -8));
  // the string tensor straddles the two shards
  const ir = await readTfjsModel(await makeModel(doc, { 'a.bin': all.subarray(0, 7), 'b.bin': all.subarray(7) }));
  const vocab = byName(ir.tensors, 'vocab');
  assert.equal(vocab.dtype, 'string');
  assert.equal(vocab.storage.byteLength, 4 + 2 + 4 + 0 + 4 + 6);
  assert.deepEqual(await readTensorBytes(vocab), s);
  assert.equal(vocab.role, 'constant');
  assert.deepEqual(await values(byName(ir.tensors, 'after')), [0.5, -8]);
});

test('a string length running past the shards is refused', async () => {
  const doc = [{ paths: ['a.bin'], weights: [{ name: 'vocab', shape: [2], dtype: 'string' }] }];
  const file = await makeModel(doc, { 'a.bin': cat(new Uint8Array(new Uint32Array([1]).buffer), new Uint8Array([65]), new Uint8Array(new Uint32Array([99]).buffer)) });
  await rejectsWith(readTfjsModel(file), file, /string 2 of 2 is 99 bytes long, past the end/);
});

test('weights-only manifest: roles from weight names, layers from scopes', async () => {
  const doc = [
    { paths: ['g1.bin'], weights: [
      { name: 'user_embedding/embeddings', shape: [4, 2], dtype: 'float32' },
      { name: 'mlp/dense/kernel', shape: [2, 3], dtype: 'float32' },
      { name: 'mlp/dense/bias', shape: [3], dtype: 'float32' },
    ] },
    { paths: ['g2.bin'], weights: [
      { name: 'conv/filters', shape: [1, 1, 2, 2], dtype: 'float32' },
      { name: 'bn/moving_mean', shape: [2], dtype: 'float32' },
    ] },
  ];
  const ir = await readTfjsModel(await makeModel(doc, { 'g1.bin': new Uint8Array(32 + 24 + 12), 'g2.bin': new Uint8Array(16 + 8) }, 'weights_manifest.json'));
  assert.equal(ir.format, 'tfjs-weights');
  assert.equal(ir.metadata.format, 'weights-manifest');
  assert.deepEqual(ir.tensors.map((t) => [t.name, t.role, t.layer, t.transposed]), [
    ['user_embedding/embeddings', 'embedding', 'user_embedding', undefined],
    ['mlp/dense/kernel', 'dense-kernel', 'mlp/dense', false],
    ['mlp/dense/bias', 'bias', 'mlp/dense', undefined],
    ['conv/filters', 'conv-kernel', 'conv', undefined],
    ['bn/moving_mean', 'norm', 'bn', undefined],
  ]);
  assert.deepEqual(ir.layers.map((l) => [l.name, l.kind, l.tensors.length]), [
    ['user_embedding', 'Embedding', 1], ['mlp/dense', 'Dense', 2], ['conv', 'Conv', 1], ['bn', 'Normalization', 1],
  ]);
  assert.ok(Array.isArray(ir.native));
});

const functionalTopology = {
  keras_version: '2.15.0',
  backend: 'tensorflow',
  model_config: {
    class_name: 'Functional',
    config: {
      name: 'ncf',
      layers: [
        { class_name: 'InputLayer', name: 'user', config: { name: 'user', batch_input_shape: [null, 1], dtype: 'int32' }, inbound_nodes: [] },
        { class_name: 'Embedding', name: 'user_embedding', config: { name: 'user_embedding', input_dim: 4, output_dim: 2 }, inbound_nodes: [[['user', 0, 0, {}]]] },
        { class_name: 'Embedding', name: 'user_mlp', config: { name: 'user_mlp', input_dim: 4, output_dim: 2 }, inbound_nodes: [[['user', 0, 0, {}]]] },
        { class_name: 'Dense', name: 'dense', config: { name: 'dense', units: 3, activation: 'relu' }, inbound_nodes: [[['user_embedding', 0, 0, {}], ['user_mlp', 0, 0, {}]]] },
        { class_name: 'BatchNormalization', name: 'bn', config: { name: 'bn' }, inbound_nodes: [{ args: [{ class_name: '__keras_tensor__', config: { keras_history: ['dense', 0, 0] } }], kwargs: {} }] },
        {
          class_name: 'Sequential', name: 'tower',
          config: { name: 'tower', layers: [{ class_name: 'Dense', config: { name: 'out', units: 1 } }] },
          inbound_nodes: [[['bn', 0, 0, {}]]],
        },
      ],
      input_layers: [['user', 0, 0]],
      output_layers: [['tower', 0, 0]],
    },
  },
};
const functionalWeights = [
  { name: 'user_embedding/embeddings', shape: [4, 2], dtype: 'float32' },
  { name: 'user_mlp/embeddings_1', shape: [4, 2], dtype: 'float32' },
  { name: 'dense/kernel', shape: [4, 3], dtype: 'float32' },
  { name: 'dense/bias', shape: [3], dtype: 'float32' },
  { name: 'bn/gamma', shape: [3], dtype: 'float32' },
  { name: 'bn/beta', shape: [3], dtype: 'float32' },
  { name: 'bn/moving_mean', shape: [3], dtype: 'float32' },
  { name: 'bn/moving_variance', shape: [3], dtype: 'float32' },
  { name: 'tower/out/kernel', shape: [3, 1], dtype: 'float32' },
];
const functionalBytes = 4 * (8 + 8 + 12 + 3 + 12 + 3);

test('layers model without a format field: roles, layers, graph and metadata from the Keras topology', async () => {
  const doc = { modelTopology: functionalTopology, generatedBy: 'keras v2.15.0', convertedBy: 'TensorFlow.js Converter v4.22.0', weightsManifest: [{ paths: ['w.bin'], weights: functionalWeights }] };
  const ir = await readTfjsModel(await makeModel(doc, { 'w.bin': new Uint8Array(functionalBytes) }));
  assert.equal(ir.format, 'tfjs-layers');
  assert.deepEqual(ir.metadata, { format: 'layers-model (inferred)', generatedBy: 'keras v2.15.0', convertedBy: 'TensorFlow.js Converter v4.22.0', keras_version: '2.15.0', backend: 'tensorflow' });
  assert.deepEqual(ir.tensors.map((t) => [t.name, t.role, t.layer, t.transposed, t.consumers.join()]), [
    ['user_embedding/embeddings', 'embedding', 'user_embedding', undefined, 'Embedding'],
    ['user_mlp/embeddings_1', 'embedding', 'user_mlp', undefined, 'Embedding'],
    ['dense/kernel', 'dense-kernel', 'dense', false, 'Dense'],
    ['dense/bias', 'bias', 'dense', undefined, 'Dense'],
    ['bn/gamma', 'norm', 'bn', undefined, 'BatchNormalization'],
    ['bn/beta', 'norm', 'bn', undefined, 'BatchNormalization'],
    ['bn/moving_mean', 'norm', 'bn', undefined, 'BatchNormalization'],
    ['bn/moving_variance', 'norm', 'bn', undefined, 'BatchNormalization'],
    ['tower/out/kernel', 'dense-kernel', 'out', false, 'Dense'],
  ]);
  assert.ok(ir.tensors.every((t) => t.trainable));
  assert.deepEqual(ir.layers.map((l) => [l.name, l.kind, l.tensors, l.inbound]), [
    ['user', 'InputLayer', [], []],
    ['user_embedding', 'Embedding', ['user_embedding/embeddings'], ['user']],
    ['user_mlp', 'Embedding', ['user_mlp/embeddings_1'], ['user']],
    ['dense', 'Dense', ['dense/kernel', 'dense/bias'], ['user_embedding', 'user_mlp']],
    ['bn', 'BatchNormalization', ['bn/gamma', 'bn/beta', 'bn/moving_mean', 'bn/moving_variance'], ['dense']],
    ['tower', 'Sequential', [], ['bn']],
    ['out', 'Dense', ['tower/out/kernel'], []],
  ]);
  assert.deepEqual(ir.graph.inputs, [{ name: 'user', dtype: 'int32', shape: [-1, 1] }]);
  assert.deepEqual(ir.graph.outputs, [{ name: 'tower' }]);
  const dense = ir.graph.nodes.find((n) => n.name === 'dense');
  assert.deepEqual(dense, { name: 'dense', op: 'Dense', inputs: ['user_embedding', 'user_mlp'], outputs: ['dense'], attrs: { units: 3, activation: 'relu' } });
  assert.equal(ir.graph.nodes.find((n) => n.name === 'out')?.scope, 'tower');
});

test('layers-model format with a bare topology (tfjs-layers save) and a Sequential model', async () => {
  const doc = {
    format: 'layers-model', generatedBy: 'TensorFlow.js tfjs-layers v4.22.0', convertedBy: null,
    modelTopology: { class_name: 'Sequential', config: { name: 'seq', layers: [
      { class_name: 'Embedding', config: { name: 'emb', input_dim: 3, output_dim: 2, batch_input_shape: [null, 1] } },
      { class_name: 'Flatten', config: { name: 'flat' } },
      { class_name: 'Dense', config: { name: 'd', units: 1 } },
    ] } },
    weightsManifest: [{ paths: ['w.bin'], weights: [
      { name: 'emb/embeddings', shape: [3, 2], dtype: 'float32' },
      { name: 'd/kernel', shape: [2, 1], dtype: 'float32' },
      { name: 'd/bias', shape: [1], dtype: 'float32' },
    ] }],
  };
  const ir = await readTfjsModel(await makeModel(doc, { 'w.bin': new Uint8Array(36) }));
  assert.equal(ir.metadata.format, 'layers-model');
  assert.equal(ir.metadata.convertedBy, undefined);
  assert.deepEqual(ir.layers.map((l) => [l.name, l.inbound]), [['emb', []], ['flat', ['emb']], ['d', ['flat']]]);
  assert.deepEqual(ir.graph.inputs, [{ name: 'seq_input', shape: [-1, 1] }]);
  assert.deepEqual(ir.graph.outputs, [{ name: 'd' }]);
  assert.deepEqual(ir.tensors.map((t) => t.role), ['embedding', 'dense-kernel', 'bias']);
});

const graphDoc = (format: string | undefined) => ({
  ...(format ? { format } : {}),
  generatedBy: '2.15.0', convertedBy: 'TensorFlow.js Converter v4.22.0',
  signature: {
    inputs: { 'ids:0': { name: 'ids:0', dtype: 'DT_INT32', tensorShape: { dim: [{ size: '-1' }] } } },
    outputs: { 'Identity:0': { name: 'Identity:0', dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '-1' }, { size: '1' }] } } },
  },
  modelTopology: {
    versions: { producer: 1482 },
    node: [
      { name: 'ids', op: 'Placeholder', attr: { dtype: { type: 'DT_INT32' } } },
      { name: 'model/item_embedding/embedding_lookup/ReadVariableOp', op: 'Const', attr: { dtype: { type: 'DT_FLOAT' } } },
      { name: 'model/item_embedding/axis', op: 'Const', attr: { dtype: { type: 'DT_INT32' } } },
      { name: 'model/item_embedding/embedding_lookup', op: 'GatherV2', input: ['model/item_embedding/embedding_lookup/ReadVariableOp', 'ids', 'model/item_embedding/axis'], attr: {} },
      { name: 'model/dense/MatMul/ReadVariableOp', op: 'Const', attr: { dtype: { type: 'DT_FLOAT' } } },
      { name: 'model/dense/BiasAdd/ReadVariableOp', op: 'Const', attr: { dtype: { type: 'DT_FLOAT' } } },
      { name: 'model/dense/Relu', op: '_FusedMatMul', input: ['model/item_embedding/embedding_lookup', 'model/dense/MatMul/ReadVariableOp', 'model/dense/BiasAdd/ReadVariableOp'],
        attr: { transpose_b: { b: true }, transpose_a: { b: false }, fused_ops: { list: { s: ['Qmlhc0FkZA==', 'UmVsdQ=='] } }, num_args: { i: '1' } } },
      { name: 'model/out/kernel', op: 'Const', attr: {} },
      { name: 'model/out/MatMul', op: 'MatMul', input: ['model/dense/Relu', 'model/out/kernel'], attr: { transpose_b: { b: false } } },
      { name: 'model/out/bias', op: 'Const', attr: {} },
      { name: 'model/out/BiasAdd', op: 'BiasAdd', input: ['model/out/MatMul', 'model/out/bias:0'], attr: {} },
      { name: 'model/bn/scale', op: 'Const', attr: {} },
      { name: 'model/bn/FusedBatchNormV3', op: 'FusedBatchNormV3', input: ['model/out/BiasAdd', 'model/bn/scale', 'model/bn/scale', 'model/bn/scale', 'model/bn/scale'], attr: {} },
      { name: 'model/conv/Conv2D_weights', op: 'Const', attr: {} },
      { name: 'model/conv/Conv2D', op: 'Conv2D', input: ['model/bn/FusedBatchNormV3', 'model/conv/Conv2D_weights'], attr: {} },
      { name: 'model/Reshape/shape', op: 'Const', attr: { dtype: { type: 'DT_INT32' } } },
      { name: 'model/Reshape', op: 'Reshape', input: ['model/conv/Conv2D', 'model/Reshape/shape', '^model/out/bias'], attr: {} },
      { name: 'Identity', op: 'Identity', input: ['model/Reshape'], attr: {} },
    ],
  },
  weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: [
    { name: 'model/item_embedding/embedding_lookup/ReadVariableOp', shape: [5, 2], dtype: 'float32' },
    { name: 'model/item_embedding/axis', shape: [], dtype: 'int32' },
    { name: 'model/dense/MatMul/ReadVariableOp', shape: [3, 2], dtype: 'float32' },
    { name: 'model/dense/BiasAdd/ReadVariableOp', shape: [3], dtype: 'float32' },
    { name: 'model/out/kernel', shape: [3, 1], dtype: 'float32' },
    { name: 'model/out/bias', shape: [1], dtype: 'float32' },
    { name: 'model/bn/scale', shape: [1], dtype: 'float32' },
    { name: 'model/conv/Conv2D_weights', shape: [1, 1, 1, 1], dtype: 'float32' },
    { name: 'model/Reshape/shape', shape: [2], dtype: 'int32' },
  ] }],
});
const graphBytes = 4 * (10 + 1 + 6 + 3 + 3 + 1 + 1 + 1 + 2);

test('graph model roles from consuming ops (transpose_b, fused bias, norm, conv, shape constants)', async () => {
  for (const format of ['graph-model', undefined]) {
    const ir = await readTfjsModel(await makeModel(graphDoc(format), { 'group1-shard1of1.bin': new Uint8Array(graphBytes) }));
    assert.equal(ir.format, 'tfjs-graph');
    assert.equal(ir.metadata.format, format ?? 'graph-model (inferred)');
    assert.deepEqual(ir.tensors.map((t) => [t.name, t.role, t.transposed, t.trainable, t.layer, t.consumers.join()]), [
      ['model/item_embedding/embedding_lookup/ReadVariableOp', 'embedding', undefined, true, 'model/item_embedding', 'GatherV2'],
      ['model/item_embedding/axis', 'constant', undefined, false, 'model/item_embedding', 'GatherV2'],
      ['model/dense/MatMul/ReadVariableOp', 'dense-kernel', true, true, 'model/dense', '_FusedMatMul'],
      ['model/dense/BiasAdd/ReadVariableOp', 'bias', undefined, true, 'model/dense', '_FusedMatMul'],
      ['model/out/kernel', 'dense-kernel', false, true, 'model/out', 'MatMul'],
      ['model/out/bias', 'bias', undefined, true, 'model/out', 'BiasAdd'],
      ['model/bn/scale', 'norm', undefined, true, 'model/bn', 'FusedBatchNormV3'],
      ['model/conv/Conv2D_weights', 'conv-kernel', undefined, true, 'model/conv', 'Conv2D'],
      ['model/Reshape/shape', 'constant', undefined, false, 'model/Reshape', 'Reshape'],
    ]);
    assert.deepEqual(ir.graph.inputs, [{ name: 'ids:0', dtype: 'int32', shape: [-1] }]);
    assert.deepEqual(ir.graph.outputs, [{ name: 'Identity:0', dtype: 'float32', shape: [-1, 1] }]);
    const fused = ir.graph.nodes.find((n) => n.name === 'model/dense/Relu');
    assert.deepEqual(fused?.attrs, { transpose_b: true, transpose_a: false, fused_ops: ['BiasAdd', 'Relu'], num_args: 1 });
    assert.equal(ir.graph.nodes.length, 18);
    const dense = ir.layers.find((l) => l.name === 'model/dense');
    assert.deepEqual(dense, { name: 'model/dense', kind: '_FusedMatMul', tensors: ['model/dense/MatMul/ReadVariableOp', 'model/dense/BiasAdd/ReadVariableOp'], inbound: ['model/item_embedding'] });
    assert.equal(ir.metadata.graphProducer, '1482');
  }
});

test('weightsManifest paths that leave the model folder are refused', async () => {
  for (const bad of ['../w.bin', '/etc/passwd', 'sub/../../w.bin', 'http://example.com/w.bin', 'file:///tmp/w.bin', 'C:\\w.bin', 'w.bin?x=1']) {
    const file = await makeModel([{ paths: [bad], weights: [] }], {});
    await rejectsWith(readTfjsModel(file), file, new RegExp(`refusing weightsManifest path "${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`));
  }
  // a symlink that points out of the folder
  const outside = await tempDir();
  await writeFile(path.join(outside, 'secret.bin'), f32(1));
  const file = await makeModel([{ paths: ['link.bin'], weights: [{ name: 'x', shape: [1], dtype: 'float32' }] }], {});
  await symlink(path.join(outside, 'secret.bin'), path.join(path.dirname(file), 'link.bin'));
  await rejectsWith(readTfjsModel(file), file, /refusing weightsManifest path "link\.bin": it resolves to .*secret\.bin, outside the model folder/);
  // a symlink inside the folder is fine
  await writeFile(path.join(path.dirname(file), 'real.bin'), f32(9));
  await rm(path.join(path.dirname(file), 'link.bin'));
  await symlink('real.bin', path.join(path.dirname(file), 'link.bin'));
  const ir = await readTfjsModel(file);
  assert.deepEqual(await values(ir.tensors[0]), [9]);
});

test('a missing shard is named', async () => {
  const file = await makeModel([{ paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: [{ name: 'x', shape: [2], dtype: 'float32' }] }], { 'group1-shard1of2.bin': f32(1) });
  await rejectsWith(readTfjsModel(file), file, /weight shard "group1-shard2of2\.bin" is missing/);
});

test('a shard of the wrong size is named with the bytes the manifest needs', async () => {
  const doc = [{ paths: ['group1-shard1of3', 'group1-shard2of3', 'group1-shard3of3'], weights: [
    { name: 'big', shape: [2048], dtype: 'float32' },
    { name: 'small', shape: [100], dtype: 'float32' },
  ] }];
  const file = await makeModel(doc, { 'group1-shard1of3': new Uint8Array(4096), 'group1-shard2of3': new Uint8Array(1000), 'group1-shard3of3': new Uint8Array(400) });
  await rejectsWith(readTfjsModel(file), file, /^group1-shard2of3 is 1000 bytes, the manifest needs 4096$/);
  const file2 = await makeModel(doc, { 'group1-shard1of3': new Uint8Array(4096), 'group1-shard2of3': new Uint8Array(4096), 'group1-shard3of3': new Uint8Array(404) });
  await rejectsWith(readTfjsModel(file2), file2, /^group1-shard3of3 is 404 bytes, the manifest needs 400$/);
});

test('a huge declared shape with a 1 KB shard is refused before anything is allocated', async () => {
  const doc = [{ paths: ['w.bin'], weights: [{ name: 'huge', shape: [100000, 100000, 100], dtype: 'float32' }] }];
  const file = await makeModel(doc, { 'w.bin': new Uint8Array(1024) });
  const before = process.memoryUsage().arrayBuffers;
  await rejectsWith(readTfjsModel(file), file, /^w\.bin is 1024 bytes, the manifest needs 4000000000000$/);
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
  for (const [shape, re] of [
    [[-1, 4], /weight "x": invalid dimension -1/],
    [[1.5], /weight "x": invalid dimension 1\.5/],
    [[2 ** 21, 2 ** 21], /more than 2\^40 elements/],
    [['3'], /non-number dim/],
  ] as Array<[unknown[], RegExp]>) {
    const f = await makeModel([{ paths: ['w.bin'], weights: [{ name: 'x', shape, dtype: 'float32' }] }], { 'w.bin': new Uint8Array(4) });
    await rejectsWith(readTfjsModel(f), f, re);
  }
});

test('a layers or graph model whose manifest is missing or lists no weights is refused by name; a topology without weights reads as 0 parameters', async () => {
  const layers = '5 of its layers have weights (user_embedding, user_mlp, dense, ...): the model\'s weights are missing';
  const noManifest = await makeModel({ format: 'layers-model', modelTopology: functionalTopology }, {});
  await assert.rejects(readTfjsModel(noManifest), (e: unknown) => e instanceof ModelFileError && e.file === noManifest && e.reason === `no weightsManifest, but ${layers}`);
  const empty = await makeModel({ format: 'layers-model', modelTopology: functionalTopology, weightsManifest: [] }, {});
  await assert.rejects(readTfjsModel(empty), (e: unknown) => e instanceof ModelFileError && e.reason === `the weightsManifest lists no weights, but ${layers}`);
  const groupsWithoutWeights = await makeModel({ format: 'layers-model', modelTopology: functionalTopology, weightsManifest: [{ paths: [], weights: [] }] }, {});
  await assert.rejects(readTfjsModel(groupsWithoutWeights), (e: unknown) => e instanceof ModelFileError && e.reason === `the weightsManifest lists no weights, but ${layers}`);
  const graphWithout: Record<string, unknown> = { ...graphDoc('graph-model') };
  delete graphWithout.weightsManifest;
  const graph = await makeModel(graphWithout, {});
  await assert.rejects(
    readTfjsModel(graph),
    (e: unknown) =>
      e instanceof ModelFileError &&
      e.reason === "no weightsManifest, but its graph has 9 Const nodes whose values a manifest holds (model/item_embedding/embedding_lookup/ReadVariableOp, model/item_embedding/axis, model/dense/MatMul/ReadVariableOp, ...): the model's weights are missing",
  );
  // a Keras wrapper's layer owns the weights (Bidirectional LSTM); an initializer in a config tells too
  const wrapped = await makeModel({ format: 'layers-model', modelTopology: { class_name: 'Sequential', config: { name: 's', layers: [
    { class_name: 'Bidirectional', config: { name: 'bi', layer: { class_name: 'LSTM', config: { name: 'lstm', units: 2 } } } },
    { class_name: 'MyCustomLayer', config: { name: 'custom', kernel_initializer: { class_name: 'Zeros', config: {} } } },
  ] } } }, {});
  await assert.rejects(readTfjsModel(wrapped), (e: unknown) => e instanceof ModelFileError && e.reason === "no weightsManifest, but 2 of its layers have weights (bi, custom): the model's weights are missing");
  // nothing to hold: no weights is right
  const none = await makeModel({ format: 'layers-model', modelTopology: { class_name: 'Sequential', config: { name: 's', layers: [
    { class_name: 'Flatten', config: { name: 'flat', batch_input_shape: [null, 2, 2] } },
    { class_name: 'Activation', config: { name: 'act', activation: 'relu', bias_initializer: null } },
  ] } } }, {});
  const ir = await readTfjsModel(none);
  assert.equal(ir.format, 'tfjs-layers');
  assert.equal(ir.tensors.length, 0);
  const constInline = await makeModel({ format: 'graph-model', modelTopology: { node: [
    { name: 'x', op: 'Placeholder', attr: {} },
    { name: 'two', op: 'Const', attr: { value: { tensor: { dtype: 'DT_FLOAT', tensorShape: {}, floatVal: [2] } } } },
    { name: 'y', op: 'Mul', input: ['x', 'two'], attr: {} },
  ] }, weightsManifest: [] }, {});
  assert.equal((await readTfjsModel(constInline)).tensors.length, 0);
});

test('bad JSON, non-model JSON and unsupported manifest entries give one clear reason', async () => {
  const truncated = await makeModel('{\n  "format": "graph-model",\n  "weightsManifest": [\n    {"paths": ["a.bin"', {});
  await rejectsWith(readTfjsModel(truncated), truncated, /^not valid JSON: .* at line 4/);
  const badToken = await makeModel('{\n  "format": "graph-model",\n  oops\n}', {});
  await rejectsWith(readTfjsModel(badToken), badToken, /^not valid JSON: .* at line 3, column 3$/);
  const pkg = await makeModel({ name: 'some-package', version: '1.0.0', dependencies: {} }, {}, 'package.json');
  await rejectsWith(readTfjsModel(pkg), pkg, /^not a TF\.js model: no weightsManifest\/modelTopology$/);
  const array = await makeModel([1, 2, 3], {});
  await rejectsWith(readTfjsModel(array), array, /^not a TF\.js model/);
  const f64 = await makeModel([{ paths: ['w.bin'], weights: [{ name: 'x', shape: [1], dtype: 'float64' }] }], { 'w.bin': new Uint8Array(8) });
  await rejectsWith(readTfjsModel(f64), f64, /weight "x" has unsupported dtype "float64"/);
  const noScale = await makeModel([{ paths: ['w.bin'], weights: [{ name: 'x', shape: [1], dtype: 'float32', quantization: { dtype: 'uint8' } }] }], { 'w.bin': new Uint8Array(1) });
  await rejectsWith(readTfjsModel(noScale), noScale, /uint8 quantization without a finite scale and min/);
  const int4 = await makeModel([{ paths: ['w.bin'], weights: [{ name: 'x', shape: [1], dtype: 'float32', quantization: { dtype: 'int4', scale: 1, min: 0 } }] }], { 'w.bin': new Uint8Array(1) });
  await rejectsWith(readTfjsModel(int4), int4, /unknown quantization dtype "int4"/);
  const noPaths = await makeModel([{ paths: [], weights: [{ name: 'x', shape: [2], dtype: 'float32' }] }], {});
  await rejectsWith(readTfjsModel(noPaths), noPaths, /^weightsManifest group 1 lists no shard files, its weights need 8 bytes$/);
  const missing = path.join(os.tmpdir(), 'prunescope-no-such-dir', 'model.json');
  await rejectsWith(readTfjsModel(missing), missing, /^file not found$/);
});

test('an aborted read rejects with the abort reason', async () => {
  const file = await makeModel(threeShards, threeShardFiles);
  const ac = new AbortController();
  ac.abort(new Error('user cancelled'));
  await assert.rejects(readTfjsModel(file, { signal: ac.signal }), /user cancelled/);
});
