import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { ModelFileError } from '../../src/core/model/ir.js';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { onnxDefaultOpset, writeEditedOnnxModel } from '../../src/core/model/onnx/edit.js';
import { readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { writeOnnxModel } from '../../src/core/model/onnx/write.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ps-onnx-edit-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function bytesOf(a: Float32Array | Int8Array | Uint8Array | BigInt64Array | Uint16Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

// ORT's 'extended' optimizations fuse DequantizeLinear -> MatMul into a dynamically quantized
// int8 MatMul (activations quantized too); 'basic' keeps the float MatMul on dequantized weights.
async function runModel(path: string, feeds: Record<string, ort.Tensor>, out: string, level?: 'basic'): Promise<number[]> {
  const s = await ort.InferenceSession.create(path, level ? { graphOptimizationLevel: level } : {});
  const r = await s.run(feeds);
  return Array.from(r[out].data as Float32Array);
}

function f32t(xs: number[], dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', new Float32Array(xs), dims);
}

function matmul(a: number[], b: number[], n: number, k: number, m: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t] * b[t * m + j];
      out.push(s);
    }
  }
  return out;
}

// W [4,3] of a MatMul; x [2,4]
const W = [0.5, -1.25, 2, 0.1, 0.3, -0.7, -2.5, 1.9, 0.05, 1.1, -0.4, 0.8];
const X = [1, 2, -1, 0.5, -0.5, 1, 2, -3];

function matmulModel(opset: number, irVersion: number): onnx.ModelProto {
  return new OnnxGraphBuilder({ graphName: 'mm', opset, irVersion })
    .input('x', 'float32', ['batch', 4])
    .output('y', 'float32', ['batch', 3])
    .initializer('fc.weight', 'float32', [4, 3], new Float32Array(W))
    .node('MatMul', ['x', 'fc.weight'], ['y'], {}, { name: '/fc/MatMul' })
    .toModelProto();
}

test('(a) int8 weight + per-tensor scale through an inserted DequantizeLinear; opset 9 -> 10, IR 4 -> 5', async () => {
  await withDir(async (dir) => {
    const src = join(dir, 'm.onnx');
    await writeOnnxFile(src, matmulModel(9, 4));
    const before = await readFile(src);
    const ir = await readOnnxModel(src);
    assert.equal(onnxDefaultOpset(ir), 9);
    const absMax = Math.max(...W.map(Math.abs));
    const scale = Math.fround(absMax / 127);
    const q = Int8Array.from(W.map((w) => Math.round(w / scale)));
    const out = join(dir, 'q.onnx');
    await writeEditedOnnxModel(ir, {
      setInitializers: [
        { name: 'fc.weight_q', dtype: 'int8', shape: [4, 3], data: bytesOf(q) },
        { name: 'fc.weight_scale', dtype: 'float32', shape: [], data: bytesOf(new Float32Array([scale])) },
        { name: 'fc.weight_zp', dtype: 'int8', shape: [], data: bytesOf(new Int8Array([0])) },
      ],
      removeInitializers: ['fc.weight'],
      insertNodes: [
        {
          before: '/fc/MatMul',
          node: { name: '/fc/weight/DequantizeLinear', op: 'DequantizeLinear', inputs: ['fc.weight_q', 'fc.weight_scale', 'fc.weight_zp'], outputs: ['fc.weight_dq'] },
        },
      ],
      rewireInputs: [{ from: 'fc.weight', to: 'fc.weight_dq' }],
    }, out);
    const y = await runModel(out, { x: f32t(X, [2, 4]) }, 'y', 'basic');
    const deq = Array.from(q, (v) => Math.fround(v * scale));
    const expected = matmul(X, deq, 2, 4, 3);
    const exact = matmul(X, W, 2, 4, 3);
    const yFused = await runModel(out, { x: f32t(X, [2, 4]) }, 'y');
    // activations quantized per tensor to uint8 over [min(x, 0), max(x, 0)] by the fused kernel
    const xScale = (Math.max(0, ...X) - Math.min(0, ...X)) / 255;
    for (let i = 0; i < 6; i++) {
      assert.ok(Math.abs(y[i] - expected[i]) < 1e-5, `y[${i}] = ${y[i]} vs dequantized product ${expected[i]}`);
      // rounding error at most scale/2 per weight, times sum |x| of the row
      const r = Math.floor(i / 3);
      const rowAbs = X.slice(r * 4, r * 4 + 4).reduce((a, b) => a + Math.abs(b), 0);
      assert.ok(Math.abs(y[i] - exact[i]) <= (rowAbs * scale) / 2 + 1e-6, `y[${i}] within the weight quantization error`);
      const colAbs = [0, 1, 2, 3].reduce((a, k) => a + Math.abs(deq[k * 3 + (i % 3)]), 0);
      assert.ok(Math.abs(yFused[i] - expected[i]) <= (colAbs * xScale) / 2 + 1e-5, `fused y[${i}] = ${yFused[i]} within the activation quantization error`);
    }
    const back = await readOnnxModel(out);
    assert.equal(back.metadata.opset_import, 'ai.onnx=10');
    assert.equal(back.metadata.ir_version, '5');
    assert.deepEqual(back.tensors.map((t) => [t.name, t.dtype, t.shape]), [
      ['fc.weight_q', 'int8', [4, 3]],
      ['fc.weight_scale', 'float32', []],
      ['fc.weight_zp', 'int8', []],
    ]);
    assert.deepEqual(back.graph.nodes.map((n) => [n.name, n.op, n.inputs]), [
      ['/fc/weight/DequantizeLinear', 'DequantizeLinear', ['fc.weight_q', 'fc.weight_scale', 'fc.weight_zp']],
      ['/fc/MatMul', 'MatMul', ['x', 'fc.weight_dq']],
    ]);
    assert.deepEqual(await readFile(src), before, 'original untouched');
    assert.deepEqual((await readdir(dir)).sort(), ['m.onnx', 'q.onnx']);
  });
});

test('(a2) per-column scales (axis=1) raise the opset to 13; a raise across a changed op is refused', async () => {
  await withDir(async (dir) => {
    const src = join(dir, 'm.onnx');
    await writeOnnxFile(src, matmulModel(11, 6));
    const ir = await readOnnxModel(src);
    const scales = new Float32Array(3);
    for (let j = 0; j < 3; j++) scales[j] = Math.max(...[0, 1, 2, 3].map((i) => Math.abs(W[i * 3 + j]))) / 127;
    const q = Int8Array.from(W.map((w, k) => Math.round(w / scales[k % 3])));
    const edit = {
      setInitializers: [
        { name: 'fc.weight_q', dtype: 'int8' as const, shape: [4, 3], data: bytesOf(q) },
        { name: 'fc.weight_scale', dtype: 'float32' as const, shape: [3], data: bytesOf(scales) },
      ],
      removeInitializers: ['fc.weight'],
      insertNodes: [
        { before: '/fc/MatMul', node: { name: 'dq', op: 'DequantizeLinear', inputs: ['fc.weight_q', 'fc.weight_scale'], outputs: ['w_dq'], attrs: { axis: 1 } } },
      ],
      rewireInputs: [{ from: 'fc.weight', to: 'w_dq', nodes: ['/fc/MatMul'] }],
    };
    const out = join(dir, 'q.onnx');
    await writeEditedOnnxModel(ir, edit, out);
    const back = await readOnnxModel(out);
    assert.equal(back.metadata.opset_import, 'ai.onnx=13');
    const y = await runModel(out, { x: f32t(X, [2, 4]) }, 'y', 'basic');
    const deq = Array.from(q, (v, k) => Math.fround(v * scales[k % 3]));
    const expected = matmul(X, deq, 2, 4, 3);
    for (let i = 0; i < 6; i++) assert.ok(Math.abs(y[i] - expected[i]) < 1e-5, `y[${i}]`);

    // the same model with an opset-11 Unsqueeze (axes attribute) cannot move to opset 13
    const m2 = new OnnxGraphBuilder({ graphName: 'mm', opset: 11, irVersion: 6 })
      .input('x', 'float32', [4])
      .output('y', 'float32', ['batch', 3])
      .initializer('fc.weight', 'float32', [4, 3], new Float32Array(W))
      .node('Unsqueeze', ['x'], ['x2'], { axes: [0] }, { name: 'unsq' })
      .node('MatMul', ['x2', 'fc.weight'], ['y'], {}, { name: '/fc/MatMul' })
      .toModelProto();
    const src2 = join(dir, 'm2.onnx');
    await writeOnnxFile(src2, m2);
    const ir2 = await readOnnxModel(src2);
    await assert.rejects(
      writeEditedOnnxModel(ir2, edit, join(dir, 'q2.onnx')),
      (e: unknown) => e instanceof ModelFileError && /node "unsq" \(Unsqueeze\) changed meaning at opset 13/.test(e.message),
    );
    // an inserted node using an attribute that became an input at the model's opset is refused
    await assert.rejects(
      writeEditedOnnxModel(ir, { insertNodes: [{ node: { name: 'u', op: 'Unsqueeze', inputs: ['y'], outputs: ['y2'], attrs: { axes: [0] } } }], ensureOpsets: [{ domain: '', version: 13 }] }, join(dir, 'q3.onnx')),
      /"axes" is an input, not an attribute/,
    );
    assert.deepEqual((await readdir(dir)).sort(), ['m.onnx', 'm2.onnx', 'q.onnx']);
  });
});

test('(b) embedding rows dropped + int64 remap Gather; graph input and value_info of the table follow', async () => {
  await withDir(async (dir) => {
    const table = Float32Array.from({ length: 40 }, (_, i) => i * 0.25 - 3);
    const base = new OnnxGraphBuilder({ graphName: 'emb', opset: 13, irVersion: 7 })
      .input('ids', 'int64', ['batch'])
      .output('e', 'float32', ['batch', 4])
      .initializer('emb.weight', 'float32', [10, 4], table)
      .node('Gather', ['emb.weight', 'ids'], ['g'], { axis: 0 }, { name: '/emb/Gather' })
      .node('Relu', ['g'], ['e'], {}, { name: '/relu' })
      .toModelProto();
    // old exporters also list the initializer as a graph input, and a value_info for it
    const tableInfo = onnx.ValueInfoProto.create({
      name: 'emb.weight',
      type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 10 }, { dimValue: 4 }] } } },
    });
    base.graph!.input!.push(tableInfo);
    base.graph!.valueInfo = [tableInfo, onnx.ValueInfoProto.create({ name: 'g', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 4 }] } } } })];
    const src = join(dir, 'emb.onnx');
    await writeOnnxFile(src, base);
    const ir = await readOnnxModel(src);
    const keep = [0, 2, 3, 5, 7, 9];
    const remap = new BigInt64Array(10); // dropped ids -> row 0 of the new table
    keep.forEach((id, row) => (remap[id] = BigInt(row)));
    const newTable = new Float32Array(keep.length * 4);
    keep.forEach((id, row) => newTable.set(table.subarray(id * 4, id * 4 + 4), row * 4));
    const out = join(dir, 'pruned.onnx');
    await writeEditedOnnxModel(ir, {
      setInitializers: [
        { name: 'emb.weight', dtype: 'float32', shape: [6, 4], data: bytesOf(newTable) },
        { name: 'emb.remap', dtype: 'int64', shape: [10], data: bytesOf(remap) },
      ],
      insertNodes: [{ before: '/emb/Gather', node: { name: '/emb/remap', op: 'Gather', inputs: ['emb.remap', 'ids'], outputs: ['ids_remapped'], attrs: { axis: 0 } } }],
      rewireInputs: [{ from: 'ids', to: 'ids_remapped', nodes: ['/emb/Gather'] }],
    }, out);
    const ids = [0, 2, 3, 5, 7, 9, 1, 4];
    const run = (p: string): Promise<number[]> => runModel(p, { ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [ids.length]) }, 'e');
    const a = await run(src);
    const b = await run(out);
    assert.deepEqual(b.slice(0, 24), a.slice(0, 24), 'kept ids: identical rows');
    const relu = (xs: ArrayLike<number>): number[] => Array.from(xs, (v) => Math.max(0, v));
    assert.deepEqual(b.slice(24, 28), relu(table.subarray(0, 4)), 'dropped id 1 -> row of id 0');
    assert.deepEqual(b.slice(28, 32), relu(table.subarray(0, 4)), 'dropped id 4 -> row of id 0');
    const back = await readOnnxModel(out);
    const nat = back.native as { model: onnx.ModelProto };
    // the graph input listing the table is retyped [6, 4]; value_info of the table dropped, of g kept
    const inp = nat.model.graph!.input!.find((v) => v.name === 'emb.weight');
    assert.deepEqual(inp!.type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue)), [6, 4]);
    assert.deepEqual(nat.model.graph!.valueInfo!.map((v) => v.name), ['g']);
    assert.deepEqual(Array.from(await readTensorFloat32(back.tensors[0])), Array.from(newTable));
    assert.deepEqual(back.tensors.map((t) => t.name), ['emb.weight', 'emb.remap']);
    const out2 = join(dir, 'novi.onnx');
    await writeEditedOnnxModel(ir, { dropAllValueInfo: true }, out2);
    assert.deepEqual((await readOnnxModel(out2)).native && ((await readOnnxModel(out2)).native as { model: onnx.ModelProto }).model.graph!.valueInfo, []);
    assert.deepEqual(await run(out2), a);
  });
});

test('(c) factorization: W[8,6] -> W1[8,2] then W2[2,6] as two MatMuls', async () => {
  await withDir(async (dir) => {
    const Wb = Float32Array.from({ length: 48 }, (_, i) => ((i * 7) % 11) - 5);
    const m = new OnnxGraphBuilder({ graphName: 'fc', opset: 17 })
      .input('x', 'float32', ['batch', 8])
      .output('y', 'float32', ['batch', 6])
      .initializer('fc.weight', 'float32', [8, 6], Wb)
      .initializer('fc.bias', 'float32', [6], new Float32Array([1, 2, 3, 4, 5, 6]))
      .node('MatMul', ['x', 'fc.weight'], ['mm'], {}, { name: '/fc/MatMul' })
      .node('Add', ['mm', 'fc.bias'], ['y'], {}, { name: '/fc/Add' })
      .toModelProto();
    const src = join(dir, 'fc.onnx');
    await writeOnnxFile(src, m);
    const ir = await readOnnxModel(src);
    const W1 = Float32Array.from({ length: 16 }, (_, i) => (i % 5) - 2);
    const W2 = Float32Array.from({ length: 12 }, (_, i) => (i % 3) - 1);
    const out = join(dir, 'f.onnx');
    await writeEditedOnnxModel(ir, {
      removeInitializers: ['fc.weight'],
      setInitializers: [
        { name: 'fc.weight_u', dtype: 'float32', shape: [8, 2], data: bytesOf(W1) },
        { name: 'fc.weight_v', dtype: 'float32', shape: [2, 6], data: bytesOf(W2) },
      ],
      insertNodes: [{ before: '/fc/MatMul', node: { name: '/fc/MatMul_u', op: 'MatMul', inputs: ['x', 'fc.weight_u'], outputs: ['fc_u'] } }],
      rewireInputs: [
        { from: 'x', to: 'fc_u', nodes: ['/fc/MatMul'] },
        { from: 'fc.weight', to: 'fc.weight_v', nodes: ['/fc/MatMul'] },
      ],
    }, out);
    const x = [1, -2, 3, 0, 1, 1, -1, 2];
    const y = await runModel(out, { x: f32t(x, [1, 8]) }, 'y');
    const prod = matmul(matmul(x, Array.from(W1), 1, 8, 2), Array.from(W2), 1, 2, 6).map((v, j) => v + j + 1);
    assert.deepEqual(y, prod);
    const back = await readOnnxModel(out);
    assert.deepEqual(back.graph.nodes.map((n) => [n.name, n.inputs, n.outputs]), [
      ['/fc/MatMul_u', ['x', 'fc.weight_u'], ['fc_u']],
      ['/fc/MatMul', ['fc_u', 'fc.weight_v'], ['mm']],
      ['/fc/Add', ['mm', 'fc.bias'], ['y']],
    ]);
    assert.deepEqual(back.tensors.map((t) => t.name), ['fc.bias', 'fc.weight_u', 'fc.weight_v']);
    assert.equal(back.metadata.opset_import, 'ai.onnx=17');
  });
});

// Wire helpers to inject fields newer than onnx-proto's ONNX 1.10 schema (as in onnx-write tests).
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 128) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
function ld(field: number, body: Uint8Array | number[]): Uint8Array {
  const b = Uint8Array.from(body);
  return Uint8Array.from([...varint(field * 8 + 2), ...varint(b.length), ...b]);
}
function entry(k: string, v: string): Uint8Array {
  const te = new TextEncoder();
  return Uint8Array.from([...ld(1, te.encode(k)), ...ld(2, te.encode(v))]);
}
function cat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => Array.from(p)));
}
function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(hay).indexOf(Buffer.from(needle)) >= 0;
}

test('(d) unknown fields (node / tensor / model metadata) survive, also on a rewired node', async () => {
  await withDir(async (dir) => {
    const base = new OnnxGraphBuilder({ graphName: 'mm', opset: 13 })
      .input('x', 'float32', ['batch', 4])
      .output('y', 'float32', ['batch', 3])
      .initializer('fc.weight', 'float32', [4, 3], new Float32Array(W))
      .toModelProto();
    const bias = onnx.TensorProto.create({ name: 'fc.bias', dataType: 1, dims: [3], rawData: bytesOf(new Float32Array([1, 2, 3])) });
    const tensorMeta = ld(16, entry('tensor_note', 'keep me'));
    const mmMeta = ld(9, entry('node_note', 'rewired node keeps me'));
    const addMeta = ld(9, entry('node_note', 'untouched node keeps me'));
    const mm = onnx.NodeProto.encode({ name: '/fc/MatMul', opType: 'MatMul', input: ['x', 'fc.weight'], output: ['mm'] }).finish();
    const add = onnx.NodeProto.encode({ name: '/fc/Add', opType: 'Add', input: ['mm', 'fc.bias'], output: ['y'] }).finish();
    const graph = cat(
      onnx.GraphProto.encode(base.graph!).finish(),
      ld(5, cat(onnx.TensorProto.encode(bias).finish(), tensorMeta)),
      ld(1, cat(mm, mmMeta)),
      ld(1, cat(add, addMeta)),
    );
    const config = ld(26, [0x0a, 2, 0x61, 0x62]);
    const modelMeta = ld(14, entry('author', 'someone'));
    const file = cat(onnx.ModelProto.encode({ ...base, graph: undefined }).finish(), ld(7, graph), modelMeta, config);
    const src = join(dir, 'new.onnx');
    await writeFile(src, file);
    const ir = await readOnnxModel(src);
    const scale = 0.02;
    const q = Int8Array.from(W.map((w) => Math.max(-127, Math.min(127, Math.round(w / scale)))));
    const out = join(dir, 'out.onnx');
    await writeEditedOnnxModel(ir, {
      setInitializers: [
        { name: 'fc.weight_q', dtype: 'int8', shape: [4, 3], data: bytesOf(q) },
        { name: 'fc.weight_scale', dtype: 'float32', shape: [], data: bytesOf(new Float32Array([scale])) },
      ],
      removeInitializers: ['fc.weight'],
      insertNodes: [{ after: '/fc/MatMul', node: { name: 'noop', op: 'Identity', inputs: ['mm'], outputs: ['mm2'] } }, {
        before: '/fc/MatMul',
        node: { name: 'dq', op: 'DequantizeLinear', inputs: ['fc.weight_q', 'fc.weight_scale'], outputs: ['w'] },
      }],
      rewireInputs: [{ from: 'fc.weight', to: 'w' }, { from: 'mm', to: 'mm2', nodes: ['/fc/Add'] }],
    }, out);
    const written = await readFile(out);
    assert.ok(contains(written, tensorMeta), 'TensorProto.metadata_props kept');
    assert.ok(contains(written, mmMeta), 'metadata_props of the rewired node kept');
    assert.ok(contains(written, addMeta), 'metadata_props of the other rewired node kept');
    assert.ok(contains(written, config), 'unknown ModelProto field kept');
    assert.ok(contains(written, modelMeta), 'ModelProto.metadata_props kept');
    const y = await runModel(out, { x: f32t(X.slice(0, 4), [1, 4]) }, 'y', 'basic');
    const expected = matmul(X.slice(0, 4), Array.from(q, (v) => Math.fround(v * scale)), 1, 4, 3).map((v, j) => v + j + 1);
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(y[i] - expected[i]) < 1e-5);
    const back = await readOnnxModel(out);
    assert.deepEqual(back.graph.nodes.map((n) => n.name), ['dq', '/fc/MatMul', 'noop', '/fc/Add']);
  });
});

test('(e) invalid edits throw a clear error and write nothing', async () => {
  await withDir(async (dir) => {
    const src = join(dir, 'm.onnx');
    await writeOnnxFile(src, matmulModel(13, 7));
    const ir = await readOnnxModel(src);
    const out = join(dir, 'bad.onnx');
    const cases: Array<[Parameters<typeof writeEditedOnnxModel>[1], RegExp]> = [
      [{ rewireInputs: [{ from: 'fc.weight', to: 'nowhere' }] }, /node "\/fc\/MatMul" \(MatMul\) reads "nowhere", which no graph input, initializer or earlier node provides/],
      [{ removeInitializers: ['fc.weight'] }, /node "\/fc\/MatMul" \(MatMul\) reads "fc.weight"/],
      [
        { insertNodes: [{ after: '/fc/MatMul', node: { name: 'n', op: 'Relu', inputs: ['x'], outputs: ['x2'] } }], rewireInputs: [{ from: 'x', to: 'x2' }] },
        /node "\/fc\/MatMul" \(MatMul\) reads "x2" before node "n" produces it/,
      ],
      [{ removeNodes: ['/fc/MatMul'] }, /graph output "y" is not produced/],
      [{ insertNodes: [{ node: { name: 'n', op: 'Relu', inputs: ['x'], outputs: ['y'] } }] }, /inserted node "n" \(Relu\) produces "y", which is already defined/],
      [{ insertNodes: [{ node: { name: '/fc/MatMul', op: 'Relu', inputs: ['x'], outputs: ['r'] } }] }, /a node of that name already exists/],
      [{ insertNodes: [{ before: 'nope', node: { name: 'n', op: 'Relu', inputs: ['x'], outputs: ['r'] } }] }, /no node named "nope"/],
      [{ removeNodes: ['nope'] }, /no such node/],
      [{ removeInitializers: ['nope'] }, /no such initializer/],
      [{ setInitializers: [{ name: 'fc.weight', dtype: 'float32', shape: [4, 4], data: new Uint8Array(48) }] }, /needs 64 bytes, got 48/],
      [{ rewireInputs: [{ from: 'zzz', to: 'x' }] }, /no original node reads "zzz"/],
    ];
    for (const [edit, re] of cases) {
      await assert.rejects(writeEditedOnnxModel(ir, edit, out), (e: unknown) => e instanceof ModelFileError && re.test(e.message), String(re));
    }
    await assert.rejects(writeEditedOnnxModel(ir, {}, src), /refusing to overwrite/);
    assert.deepEqual(await readdir(dir), ['m.onnx']);
  });
});

test('external data: unchanged external tensors are copied to the output data file; new ones inline or external', async () => {
  await withDir(async (dir) => {
    const Wb = Float32Array.from({ length: 48 }, (_, i) => (i % 7) - 3);
    const m = new OnnxGraphBuilder({ graphName: 'fc', opset: 17 })
      .input('x', 'float32', ['batch', 8])
      .output('y', 'float32', ['batch', 6])
      .initializer('fc.weight', 'float32', [8, 6], Wb)
      .initializer('fc.bias', 'float32', [6], new Float32Array([1, 2, 3, 4, 5, 6]))
      .node('MatMul', ['x', 'fc.weight'], ['mm'], {}, { name: '/fc/MatMul' })
      .node('Add', ['mm', 'fc.bias'], ['y'], {}, { name: '/fc/Add' })
      .toModelProto();
    const src = join(dir, 'm.onnx');
    await writeOnnxFile(src, m, { externalData: { fileName: 'm.data', minBytes: 16 } });
    const dataBefore = await readFile(join(dir, 'm.data'));
    const ir = await readOnnxModel(src);
    const other = join(dir, 'o');
    await mkdir(other);
    const x = [1, 2, 3, 4, 5, 6, 7, 8];
    const edit = {
      setInitializers: [{ name: 'two', dtype: 'float32' as const, shape: [], data: bytesOf(new Float32Array([2])) }],
      insertNodes: [{ after: '/fc/Add', node: { name: 'dbl', op: 'Mul', inputs: ['y0', 'two'], outputs: ['y'] } }],
      rewireInputs: [],
    };
    // renaming the Add output needs the Add re-produced: remove it and insert a new one
    const edit2 = {
      ...edit,
      removeNodes: ['/fc/Add'],
      insertNodes: [
        { before: '/fc/Add', node: { name: 'add2', op: 'Add', inputs: ['mm', 'fc.bias'], outputs: ['y0'] } },
        ...edit.insertNodes,
      ],
    };
    const out = join(other, 'out.onnx');
    await writeEditedOnnxModel(ir, edit2, out);
    assert.deepEqual((await readdir(other)).sort(), ['out.onnx', 'out.onnx.data']);
    const expected = matmul(x, Array.from(Wb), 1, 8, 6).map((v, j) => 2 * (v + j + 1));
    assert.deepEqual(await runModel(out, { x: f32t(x, [1, 8]) }, 'y'), expected);
    const back = await readOnnxModel(out);
    assert.deepEqual(back.tensors.map((t) => [t.name, t.storage.source.kind]), [['fc.weight', 'file'], ['fc.bias', 'file'], ['two', 'bytes']]);
    for (const t of back.tensors.slice(0, 2)) if (t.storage.source.kind === 'file') assert.equal(t.storage.source.path, join(other, 'out.onnx.data'));
    assert.deepEqual(await readFile(join(dir, 'm.data')), dataBefore);

    const out2 = join(other, 'ext.onnx');
    await writeEditedOnnxModel(ir, edit2, out2, { externalData: { fileName: 'ext.bin', minBytes: 4 } });
    const back2 = await readOnnxModel(out2);
    assert.deepEqual(back2.tensors.map((t) => t.storage.source.kind), ['file', 'file', 'file']);
    assert.deepEqual(await runModel(out2, { x: f32t(x, [1, 8]) }, 'y'), expected);
  });
});

test('a Constant node output can be replaced; removing the Constant turns the name into an initializer', async () => {
  await withDir(async (dir) => {
    const m = new OnnxGraphBuilder({ graphName: 'g', opset: 13 })
      .input('x', 'float32', [2])
      .output('y', 'float32', [2])
      .node('Constant', [], ['c'], { value: { tensor: { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) } } }, { name: 'k' })
      .node('Add', ['x', 'c'], ['y'], {}, { name: 'add' })
      .toModelProto();
    const src = join(dir, 'c.onnx');
    await writeOnnxFile(src, m);
    const ir = await readOnnxModel(src);
    const run = (p: string): Promise<number[]> => runModel(p, { x: f32t([1, 1], [2]) }, 'y');
    const o1 = join(dir, 'o1.onnx');
    await writeEditedOnnxModel(ir, { setInitializers: [{ name: 'c', dtype: 'float32', shape: [2], data: bytesOf(new Float32Array([10, 20])) }] }, o1);
    assert.deepEqual(await run(o1), [11, 21]);
    assert.deepEqual((await readOnnxModel(o1)).graph.nodes.map((n) => n.op), ['Constant', 'Add']);
    const o2 = join(dir, 'o2.onnx');
    await writeEditedOnnxModel(ir, { removeNodes: ['k'], setInitializers: [{ name: 'c', dtype: 'float32', shape: [2], data: bytesOf(new Float32Array([5, 6])) }] }, o2);
    assert.deepEqual(await run(o2), [6, 7]);
    const back = await readOnnxModel(o2);
    assert.deepEqual(back.graph.nodes.map((n) => n.op), ['Add']);
    assert.equal(back.tensors[0].origin.includes('initializer'), true);
  });
});

const fixtureDir = join(tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);

for (const kind of ['neumf', 'two-tower', 'deepfm'] as const) {
  test(`${kind} fixture: every embedding and kernel as int8 + DequantizeLinear equals the model with dequantized float weights`, async () => {
    const fx = await writeTinyFixtures(fixtureDir);
    const ir = await readOnnxModel(fx.models[kind].onnxPath!);
    await withDir(async (dir) => {
      const edit: Parameters<typeof writeEditedOnnxModel>[1] = { setInitializers: [], removeInitializers: [], insertNodes: [], rewireInputs: [] };
      const replace = new Map<string, { dtype: 'float32'; shape: number[]; data: Uint8Array }>();
      for (const t of ir.tensors) {
        if ((t.role !== 'embedding' && t.role !== 'dense-kernel') || t.dtype !== 'float32') continue;
        const v = await readTensorFloat32(t);
        const scale = Math.fround(Math.max(1e-12, ...Array.from(v, Math.abs)) / 127);
        const q = Int8Array.from(v, (x) => Math.round(x / scale));
        replace.set(t.name, { dtype: 'float32', shape: t.shape, data: bytesOf(Float32Array.from(q, (x) => x * scale)) });
        edit.setInitializers!.push(
          { name: `${t.name}_q`, dtype: 'int8', shape: t.shape, data: bytesOf(q) },
          { name: `${t.name}_scale`, dtype: 'float32', shape: [], data: bytesOf(new Float32Array([scale])) },
        );
        edit.removeInitializers!.push(t.name);
        const first = ir.graph.nodes.find((n) => !n.scope && n.inputs.includes(t.name))!;
        edit.insertNodes!.push({ before: first.name, node: { name: `${t.name}/dq`, op: 'DequantizeLinear', inputs: [`${t.name}_q`, `${t.name}_scale`], outputs: [`${t.name}_dq`] } });
        edit.rewireInputs!.push({ from: t.name, to: `${t.name}_dq` });
      }
      assert.ok(replace.size >= 5);
      const edited = join(dir, 'q.onnx');
      await writeEditedOnnxModel(ir, edit, edited);
      const reference = join(dir, 'ref.onnx');
      await writeOnnxModel(ir, reference, { replace });
      const n = 16;
      const rows = (name: string): number => ir.tensors.find((t) => t.name === name)!.shape[0];
      let feeds: Record<string, ort.Tensor>;
      if (kind === 'deepfm') {
        const fields = ['user', 'item', 'item_category', 'user_segment', 'noise_a', 'noise_b'].map((f) => rows(`${f}_embedding/embeddings`));
        const ids = BigInt64Array.from({ length: n * 6 }, (_, k) => BigInt((k * 7 + 3) % fields[k % 6]));
        feeds = { fields: new ort.Tensor('int64', ids, [n, 6]) };
      } else {
        const users = rows(kind === 'neumf' ? 'user_mlp_embedding/embeddings' : 'user_embedding/embeddings');
        const items = rows(kind === 'neumf' ? 'item_mlp_embedding/embeddings' : 'item_embedding/embeddings');
        feeds = {
          user: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, k) => BigInt((k * 37) % users)), [n]),
          item: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, k) => BigInt((k * 53 + 1) % items)), [n]),
        };
      }
      const got = await runModel(edited, feeds, 'score', 'basic');
      const want = await runModel(reference, feeds, 'score', 'basic');
      assert.equal(got.length, n);
      for (let i = 0; i < n; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-6, `score ${i}: ${got[i]} vs ${want[i]}`);
      const back = await readOnnxModel(edited);
      assert.equal(back.graph.nodes.filter((x) => x.op === 'DequantizeLinear').length, replace.size);
      assert.equal(back.metadata.opset_import, 'ai.onnx=17');
    });
  });
}

test('unnamed nodes are addressed by their IR names ("<op>_<k>")', async () => {
  await withDir(async (dir) => {
    const m = new OnnxGraphBuilder({ graphName: 'g', opset: 13 })
      .input('x', 'float32', [3])
      .output('y', 'float32', [3])
      .node('Neg', ['x'], ['n'])
      .node('Relu', ['n'], ['y'])
      .toModelProto();
    for (const n of m.graph!.node!) n.name = '';
    const src = join(dir, 'u.onnx');
    await writeOnnxFile(src, m);
    const ir = await readOnnxModel(src);
    const [negName, reluName] = ir.graph.nodes.map((n) => n.name);
    assert.ok(negName && reluName && negName !== reluName);
    const out = join(dir, 'o.onnx');
    await writeEditedOnnxModel(ir, {
      setInitializers: [{ name: 'two', dtype: 'float32', shape: [], data: bytesOf(new Float32Array([2])) }],
      insertNodes: [{ before: reluName, node: { name: 'dbl', op: 'Mul', inputs: ['n', 'two'], outputs: ['n2'] } }],
      rewireInputs: [{ from: 'n', to: 'n2', nodes: [reluName] }],
    }, out);
    assert.deepEqual(await runModel(out, { x: f32t([1, -2, 3], [3]) }, 'y'), [0, 4, 0]);
    const back = await readOnnxModel(out);
    assert.deepEqual(back.graph.nodes.map((n) => n.op), ['Neg', 'Mul', 'Relu']);
  });
});

// A Loop that gathers one row of table T per iteration and sums them, as torch.onnx exports
// nn.EmbeddingBag (its body reads T from the main graph, the outer scope). `castRow`: the body
// casts the gathered row to float itself (row -> row_f) before summing.
function bagModel(castRow = false): onnx.ModelProto {
  const b = new OnnxGraphBuilder({ graphName: 'body' })
    .input('i', 'int64', [])
    .input('cond_in', 'bool', [])
    .input('acc', 'float32', [3])
    .output('cond_out', 'bool', [])
    .output('acc_out', 'float32', [3])
    .node('Identity', ['cond_in'], ['cond_out'], {}, { name: 'keep_going' })
    .node('Gather', ['ids', 'i'], ['id'], { axis: { i: 0 } }, { name: 'pick_id' })
    .node('Gather', ['T', 'id'], ['row'], { axis: { i: 0 } }, { name: 'row_lookup' });
  if (castRow) b.node('Cast', ['row'], ['row_f'], { to: { i: 1 } }, { name: 'to_float' });
  const body = b.node('Add', ['acc', castRow ? 'row_f' : 'row'], ['acc_out'], {}, { name: 'sum' }).toGraphProto();
  return new OnnxGraphBuilder({ graphName: 'bag', opset: 13 })
    .input('ids', 'int64', [3])
    .output('y', 'float32', [3])
    .initializer('T', 'float32', [4, 3], new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]))
    .initializer('trip', 'int64', [], new BigInt64Array([3n]))
    .initializer('yes', 'bool', [], new Uint8Array([1]))
    .initializer('zero', 'float32', [3], new Float32Array(3))
    .node('Loop', ['trip', 'yes', 'zero'], ['y'], { body: { graph: body } }, { name: 'bag_loop' })
    .toModelProto();
}

test('subgraph edits: a Loop body gathers int8 rows of the main graph and scales them; the float table goes', async () => {
  await withDir(async (dir) => {
    const src = join(dir, 'bag.onnx');
    await writeOnnxFile(src, bagModel());
    const ir = await readOnnxModel(src);
    assert.equal(ir.graph.nodes.find((n) => n.name === 'row_lookup')?.scope, 'bag_loop/body');
    const out = join(dir, 'q.onnx');
    // T = codes * 0.5 exactly: rows [2,4,6] [8,10,12] [14,16,18] [20,22,24] times 0.5
    const codes = Int8Array.from([2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]);
    await writeEditedOnnxModel(
      ir,
      {
        setInitializers: [
          { name: 'T_q', dtype: 'int8', shape: [4, 3], data: bytesOf(codes) },
          { name: 'T_s', dtype: 'float32', shape: [], data: bytesOf(Float32Array.of(0.5)) },
        ],
        removeInitializers: ['T'],
        subgraphEdits: [
          {
            scope: 'bag_loop/body',
            insertNodes: [
              { before: 'row_lookup', node: { name: 'q_gather', op: 'Gather', inputs: ['T_q', 'id'], outputs: ['row_q'], attrs: { axis: { i: 0 } } } },
              { before: 'row_lookup', node: { name: 'q_cast', op: 'Cast', inputs: ['row_q'], outputs: ['row_f'], attrs: { to: { i: 1 } } } },
              { before: 'row_lookup', node: { name: 'q_scale', op: 'Mul', inputs: ['row_f', 'T_s'], outputs: ['row'] } },
            ],
            removeNodes: ['row_lookup'],
          },
        ],
      },
      out,
    );
    const after = await readOnnxModel(out);
    assert.equal(after.tensors.some((t) => t.name === 'T'), false);
    assert.deepEqual(
      after.graph.nodes.filter((n) => n.scope === 'bag_loop/body').map((n) => n.name),
      ['keep_going', 'pick_id', 'q_gather', 'q_cast', 'q_scale', 'sum'],
    );
    const feeds = { ids: new ort.Tensor('int64', BigInt64Array.from([3n, 0n, 3n]), [3]) };
    // rows 3 + 0 + 3 of T: [10+1+10, 11+2+11, 12+3+12]
    assert.deepEqual(await runModel(src, feeds, 'y'), [21, 24, 27]);
    assert.deepEqual(await runModel(out, feeds, 'y'), [21, 24, 27]);
  });
});

test('subgraph edits: invalid ones throw a clear error naming the subgraph and write nothing', async () => {
  await withDir(async (dir) => {
    const src = join(dir, 'bag.onnx');
    await writeOnnxFile(src, bagModel());
    const ir = await readOnnxModel(src);
    const out = join(dir, 'bad.onnx');
    const relu = (name: string, input: string, output: string): { name: string; op: string; inputs: string[]; outputs: string[] } => ({ name, op: 'Relu', inputs: [input], outputs: [output] });
    const cases: Array<[Parameters<typeof writeEditedOnnxModel>[1], RegExp]> = [
      [{ subgraphEdits: [{ scope: 'nope/body', removeNodes: ['sum'] }] }, /editing subgraph "nope\/body": no main-graph node has that subgraph/],
      [{ subgraphEdits: [{ scope: 'bag_loop/body', removeNodes: ['nope'] }] }, /cannot remove "nope": no node of that name in it/],
      [{ subgraphEdits: [{ scope: 'bag_loop/body', insertNodes: [{ before: 'sum', node: relu('r', 'ghost', 'r_out') }] }] }, /subgraph "bag_loop\/body": node "r" \(Relu\) reads "ghost", which nothing in it or in the main graph provides/],
      [{ subgraphEdits: [{ scope: 'bag_loop/body', removeNodes: ['sum'] }] }, /its output "acc_out" is no longer produced/],
      [{ subgraphEdits: [{ scope: 'bag_loop/body', removeNodes: ['row_lookup'] }] }, /node "sum" \(Add\) reads "row", which nothing in it or in the main graph provides/],
      // a name the main graph defines may not be defined again inside
      [{ subgraphEdits: [{ scope: 'bag_loop/body', insertNodes: [{ before: 'sum', node: relu('r', 'row', 'T') }] }] }, /inserted node "r" \(Relu\) produces "T", which is already defined/],
      [{ subgraphEdits: [{ scope: 'bag_loop/body', insertNodes: [{ before: 'sum', node: relu('pick_id', 'row', 'r_out') }] }] }, /a node of that name already exists/],
      // the float table is still read in the body: it cannot go
      [{ removeInitializers: ['T'] }, /node "bag_loop" \(Loop\) reads "T"/],
    ];
    for (const [edit, re] of cases) {
      await assert.rejects(writeEditedOnnxModel(ir, edit, out), (e: unknown) => e instanceof ModelFileError && re.test(e.message), String(re));
    }
    assert.deepEqual(await readdir(dir), ['bag.onnx']);
  });
});

test('subgraph edits: value_info of a removed body node output goes, so a node put in its place may change its type', async () => {
  await withDir(async (dir) => {
    // the body casts the gathered row to float itself; its value_info says the row is float32
    const model = bagModel(true);
    model.graph!.node![0].attribute![0].g!.valueInfo = ['row', 'row_f'].map((name) =>
      onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 3 }] } } } }),
    );
    const src = join(dir, 'bag.onnx');
    await writeOnnxFile(src, model);
    const out = join(dir, 'f16.onnx');
    // 1..12 as float16 (normal numbers: sign, exponent rebased from 127 to 15, top 10 mantissa bits)
    const bits = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((v) => new DataView(Float32Array.of(v).buffer).getUint32(0, true));
    const half = Uint16Array.from(bits.map((b) => ((b >>> 16) & 0x8000) | ((((b >>> 23) & 0xff) - 112) << 10) | ((b >>> 13) & 0x3ff)));
    await writeEditedOnnxModel(
      await readOnnxModel(src),
      {
        setInitializers: [{ name: 'T_h', dtype: 'float16', shape: [4, 3], data: bytesOf(half) }],
        removeInitializers: ['T'],
        subgraphEdits: [
          {
            scope: 'bag_loop/body',
            insertNodes: [{ before: 'row_lookup', node: { name: 'half_lookup', op: 'Gather', inputs: ['T_h', 'id'], outputs: ['row'], attrs: { axis: { i: 0 } } } }],
            removeNodes: ['row_lookup'],
          },
        ],
      },
      out,
    );
    const written = onnx.ModelProto.decode(await readFile(out));
    assert.deepEqual(written.graph!.node![0].attribute![0].g!.valueInfo!.map((v) => v.name), ['row_f']);
    const feeds = { ids: new ort.Tensor('int64', BigInt64Array.from([3n, 0n, 3n]), [3]) };
    assert.deepEqual(await runModel(out, feeds, 'y'), [21, 24, 27]);
  });
});
