import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import { analyzeModel } from '../../src/core/analysis/analyze-model.js';
import { readModel } from '../../src/core/model/read-model.js';
import { quantizeModel } from '../../src/core/compress/quantize.js';
import { ModelIR, ModelTensor, TensorRole, TensorSource } from '../../src/core/model/ir.js';

function bytesOf(v: Float32Array): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function tensor(name: string, shape: number[], role: TensorRole, values: Float32Array, extra: Partial<ModelTensor> = {}, source?: TensorSource): ModelTensor {
  return {
    name,
    shape,
    dtype: 'float32',
    storage: { dtype: 'float32', byteLength: values.byteLength, source: source ?? { kind: 'bytes', bytes: bytesOf(values) }, location: `test ${name}` },
    role,
    layer: name.split('/')[0],
    trainable: role !== 'constant',
    consumers: [],
    origin: 'test',
    ...extra,
  };
}

function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

/** an item table [1000, 16] whose rows i % 4 !== 0 are zero, a dense [16, 8] kernel, a bias, a shape constant */
function syntheticIR(tableSource?: (v: Float32Array) => TensorSource): ModelIR {
  const rnd = seeded(7);
  const table = new Float32Array(1000 * 16);
  for (let r = 0; r < 1000; r += 4) for (let c = 0; c < 16; c++) table[r * 16 + c] = rnd();
  const kernel = new Float32Array(16 * 8);
  for (let i = 0; i < kernel.length; i++) kernel[i] = i % 8 === 3 ? 0 : rnd(); // output column 3 is dead
  const bias = new Float32Array(8);
  const shapeConst = new Float32Array([0, 0, 0, 16]);
  const tensors = [
    tensor('item_embedding/table', [1000, 16], 'embedding', table, {}, tableSource?.(table)),
    tensor('dense/kernel', [16, 8], 'dense-kernel', kernel, { transposed: false }),
    tensor('dense/bias', [8], 'bias', bias),
    tensor('reshape/shape', [4], 'constant', shapeConst),
  ];
  return {
    format: 'onnx',
    path: '/tmp/model.onnx',
    files: [{ path: '/tmp/model.onnx', bytes: 12345, kind: 'model' }],
    tensors,
    layers: [
      { name: 'item_embedding', kind: 'Gather', tensors: ['item_embedding/table'], inbound: [] },
      { name: 'dense', kind: 'Gemm', tensors: ['dense/kernel', 'dense/bias'], inbound: ['item_embedding'] },
      { name: 'reshape', kind: 'Reshape', tensors: ['reshape/shape'], inbound: [] },
    ],
    graph: { inputs: [], outputs: [], nodes: [] },
    metadata: {},
    native: undefined,
  };
}

test('a model report: totals, constants apart, layers, per-tensor figures', async () => {
  const progress: number[] = [];
  const r = await analyzeModel(syntheticIR(), { onProgress: (p) => progress.push(p.fraction) });
  assert.equal(r.totalParams, 16000 + 128 + 8 + 4);
  assert.equal(r.trainableParams, 16000 + 128 + 8);
  assert.equal(r.constantParams, 4);
  assert.equal(r.fileBytes, 12345);
  assert.equal(r.epsilon, 1e-6);
  assert.equal(r.tool.name, 'prunescope');
  // zeros: 750 table rows x 16, 16 kernel zeros, 8 bias zeros; the constant's 3 zeros count in
  // the total (it matches totalParams) but never as sparsity of the trainable weights
  assert.equal(r.trainableZeros, 750 * 16 + 16 + 8);
  assert.equal(r.totalZeros, 750 * 16 + 16 + 8 + 3);
  const table = r.tensors[0];
  assert.equal(table.rows!.zeroRows, 750);
  assert.equal(table.rows!.nearZeroRows, 750);
  assert.equal(table.rows!.rows, 1000);
  assert.equal(table.quantError!.int8.granularity, 'per-row');
  assert.equal(table.spectrum!.exact, true);
  assert.equal(table.tiles!.rows, 250);
  assert.equal(table.tiles!.cols, 16);
  const kernel = r.tensors[1];
  assert.equal(kernel.deadNeurons, 1);
  assert.equal(kernel.quantError!.int8.granularity, 'per-output-channel');
  assert.equal(r.tensors[3].zeros, 3);
  assert.equal(r.tensors[3].quantError, undefined);
  const dense = r.layers.find((l) => l.name === 'dense')!;
  assert.equal(dense.params, 136);
  assert.equal(dense.sparsity, 24 / 136);
  assert.equal(r.layers.find((l) => l.name === 'reshape')!.sparsity, null);
  assert.equal(r.layers.find((l) => l.name === 'item_embedding')!.share, 16000 / 16136);
  assert.equal(progress[progress.length - 1], 1);
  // JSON-safe: a round trip changes nothing (NaN / Infinity would become null)
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
});

test('opportunities: the table with 75% zero rows ranks prune-rows first', async () => {
  const r = await analyzeModel(syntheticIR());
  const first = r.opportunities[0];
  assert.equal(first.kind, 'prune-rows');
  assert.equal(first.target, 'item_embedding/table');
  assert.equal(first.estimatedSavingBytes, 750 * 16 * 4);
  assert.match(first.title, /^item_embedding\/table: 75% of rows have near-zero norm — prune 75% of rows$/);
  for (let i = 1; i < r.opportunities.length; i++) assert.ok(r.opportunities[i - 1].estimatedSavingBytes >= r.opportunities[i].estimatedSavingBytes);
  const int8 = r.opportunities.find((o) => o.kind === 'quantize-int8' && o.target === 'item_embedding/table');
  assert.ok(int8);
  // the bytes quantize writes: 1000 x 16 int8 codes and a float16 scale per row (it stores them so where they fit)
  assert.equal(int8.estimatedSavingBytes, 1000 * 16 * 4 - (1000 * 16 + 1000 * 2));
  assert.match(int8.detail, /^Symmetric int8 with 1000 float16 scale\(s\)/);
});

test('opportunities: a 1-wide table (an FM linear term) is advised int8 as quantize stores it: one scale for the table, its error with that scale', async () => {
  const ir = syntheticIR();
  const rnd = seeded(3);
  const bias = Float32Array.from({ length: 2000 }, () => rnd());
  ir.tensors.push(tensor('item_bias/table', [2000, 1], 'embedding', bias));
  ir.layers.push({ name: 'item_bias', kind: 'Gather', tensors: ['item_bias/table'], inbound: [] });
  const r = await analyzeModel(ir);
  const t = r.tensors.find((x) => x.name === 'item_bias/table')!;
  assert.equal(t.quantError!.int8.granularity, 'per-tensor');
  // one symmetric scale for the table: its largest |w| / 127
  const absMax = Math.max(...bias.map(Math.abs));
  assert.ok(t.quantError!.int8.maxAbs! > 0 && t.quantError!.int8.maxAbs! <= absMax / 127 / 2 + 1e-7, String(t.quantError!.int8.maxAbs));
  const int8 = r.opportunities.find((o) => o.kind === 'quantize-int8' && o.target === 'item_bias/table')!;
  assert.equal(int8.estimatedSavingBytes, 2000 * 4 - (2000 + 4));
  assert.match(int8.detail, /^Symmetric int8 with 1 float32 scale\(s\)/);
});

test('opportunities of a TF.js model: 8 bits as its manifest stores them, uint8 with one scale and min per tensor (what its quantize button does)', async () => {
  const ir = { ...syntheticIR(), format: 'tfjs-layers' as const };
  const r = await analyzeModel(ir);
  const t = r.tensors.find((x) => x.name === 'item_embedding/table')!;
  assert.equal(t.quantError!.int8.granularity, 'per-tensor');
  const q = r.opportunities.find((o) => o.kind === 'quantize-int8' && o.target === 'item_embedding/table')!;
  assert.match(q.title, /^item_embedding\/table: uint8 per tensor \(manifest quantization\) — /);
  assert.equal(q.estimatedSavingBytes, 1000 * 16 * 3);
});

test('a table read by range from a file gives the same report as in memory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'prunescope-analysis-'));
  const inMemory = await analyzeModel(syntheticIR());
  const fromFile = await analyzeModel(
    syntheticIR((v) => {
      const path = join(dir, 'table.bin');
      const pad = new Uint8Array(13 + v.byteLength);
      pad.set(bytesOf(v), 13);
      writeFileSync(path, pad);
      return { kind: 'file', path, offset: 13, length: v.byteLength };
    }),
  );
  assert.deepEqual({ ...fromFile, generatedAt: '' }, { ...inMemory, generatedAt: '' });
});

test('an aborted signal stops the analysis', async () => {
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  await assert.rejects(analyzeModel(syntheticIR(), { signal: ac.signal }), /stop/);
});

test('a tensor whose bytes do not match its shape is a ModelFileError naming the place', async () => {
  const ir = syntheticIR();
  ir.tensors[1] = { ...ir.tensors[1], shape: [16, 9] };
  await assert.rejects(analyzeModel(ir), (e: Error) => e.name === 'ModelFileError' && /dense\/kernel/.test(e.message));
});

test('strings, int64 constants, scalars and empty tensors give JSON-safe reports without figures that make no sense', async () => {
  const base = syntheticIR();
  const mk = (name: string, shape: number[], dtype: ModelTensor['dtype'], values: TensorSource, role: TensorRole): ModelTensor => ({
    name,
    shape,
    dtype,
    storage: { dtype, byteLength: 0, source: values, location: `test ${name}` },
    role,
    layer: 'misc',
    trainable: false,
    consumers: [],
    origin: 'test',
  });
  base.tensors = [
    mk('vocab', [2], 'string', { kind: 'values', values: ['a', 'b'] }, 'constant'),
    mk('shape', [3], 'int64', { kind: 'values', values: [1n, 0n, -1n] }, 'constant'),
    mk('scale', [], 'float32', { kind: 'values', values: [0.5] }, 'quant-param'),
    mk('empty', [0, 4], 'float32', { kind: 'values', values: [] }, 'constant'),
  ];
  const r = await analyzeModel(base);
  assert.equal(r.totalParams, 2 + 3 + 1 + 0);
  assert.equal(r.trainableParams, 0);
  assert.equal(r.tensors[0].min, null);
  assert.deepEqual([r.tensors[1].zeros, r.tensors[1].min, r.tensors[1].max], [1, -1, 1]);
  assert.equal(r.tensors[1].quantError, undefined);
  assert.equal(r.tensors[2].mean, 0.5);
  assert.equal(r.tensors[3].params, 0);
  assert.deepEqual(r.opportunities, []);
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
});

test('a model whose graph calls ONNX local functions (export_modules_as_functions): one note first, no opportunity for the weights read inside, quantize says why nothing changed', async () => {
  const W = Float32Array.from({ length: 100 * 16 }, (_, i) => Math.sin(i));
  const fn = onnx.FunctionProto.create({
    name: 'MF',
    domain: 'local',
    input: ['ids', 'table'],
    output: ['rows'],
    node: [onnx.NodeProto.create({ opType: 'Gather', input: ['table', 'ids'], output: ['rows'], name: 'g' })],
    opsetImport: [{ domain: '', version: 15 }],
  });
  const tensorType = (elemType: number, dims: Array<number | string>) => ({ tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 15 }, { domain: 'local', version: 1 }],
    functions: [fn],
    graph: {
      name: 'g',
      input: [{ name: 'user', type: tensorType(7, ['batch']) }],
      output: [{ name: 'emb', type: tensorType(1, ['batch', 16]) }],
      initializer: [{ name: 'user_embedding.weight', dims: [100, 16], dataType: 1, rawData: new Uint8Array(W.buffer) }],
      node: [{ opType: 'MF', domain: 'local', input: ['user', 'user_embedding.weight'], output: ['emb'], name: 'call' }],
    },
  });
  const file = join(mkdtempSync(join(tmpdir(), 'ps-local-fn-')), 'mf.onnx');
  writeFileSync(file, onnx.ModelProto.encode(model).finish());
  const ir = await readModel(file);
  assert.equal(ir.metadata.local_functions, 'MF');
  const r = await analyzeModel(ir);
  assert.equal(r.opportunities[0].kind, 'note');
  assert.match(r.opportunities[0].title, /^The graph calls ONNX local functions \(MF\): the weights read inside them show as plain weights and are not compressed$/);
  assert.ok(!r.opportunities.some((o) => o.target === 'user_embedding.weight'), JSON.stringify(r.opportunities.map((o) => o.title)));
  const q = await quantizeModel(ir, { dtype: 'int8', verify: false });
  assert.equal(q.changes.length, 0);
  assert.ok(q.notes.some((n) => /No tensor was quantized: the output is the same model\. Its graph calls ONNX local functions \(MF\)/.test(n)), q.notes.join('\n'));
});
