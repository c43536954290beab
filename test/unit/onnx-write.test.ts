import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { ModelFileError, ModelIR } from '../../src/core/model/ir.js';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { writeOnnxModel } from '../../src/core/model/onnx/write.js';
import { readTensorBytes, readTensorFloat32 } from '../../src/core/model/tensor-data.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ps-onnx-write-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const W1 = [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1]; // [4, 3], Gemm transB=1
const B1 = [0, 0, -10, 0.5];
const W2 = [1, 0, 0, 1, 2, 2, -1, 3]; // [4, 2]
const B2 = [0.25, -0.25];

function mlpBuilder(): OnnxGraphBuilder {
  return new OnnxGraphBuilder({ graphName: 'mlp', producer: 'pytorch' })
    .input('x', 'float32', ['batch', 3])
    .output('y', 'float32', ['batch', 2])
    .initializer('mlp.0.weight', 'float32', [4, 3], new Float32Array(W1))
    .initializer('mlp.0.bias', 'float32', [4], new Float32Array(B1))
    .initializer('mlp.2.weight', 'float32', [4, 2], new Float32Array(W2))
    .initializer('mlp.2.bias', 'float32', [2], new Float32Array(B2))
    .node('Gemm', ['x', 'mlp.0.weight', 'mlp.0.bias'], ['h'], { transB: 1 }, { name: '/mlp/mlp.0/Gemm' })
    .node('Relu', ['h'], ['r'], {}, { name: '/mlp/mlp.1/Relu' })
    .node('MatMul', ['r', 'mlp.2.weight'], ['m'], {}, { name: '/mlp/mlp.2/MatMul' });
}

function mlp(): onnx.ModelProto {
  return mlpBuilder().node('Add', ['m', 'mlp.2.bias'], ['y'], {}, { name: '/mlp/mlp.2/Add' }).toModelProto();
}

async function run(path: string, x: number[]): Promise<number[]> {
  const s = await ort.InferenceSession.create(path);
  const out = await s.run({ x: new ort.Tensor('float32', new Float32Array(x), [1, 3]) });
  return Array.from(out.y.data as Float32Array);
}

function f32(xs: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(xs).buffer);
}

async function sameTensors(a: ModelIR, b: ModelIR): Promise<void> {
  assert.deepEqual(b.tensors.map((t) => t.name), a.tensors.map((t) => t.name));
  for (let i = 0; i < a.tensors.length; i++) {
    assert.deepEqual(b.tensors[i].shape, a.tensors[i].shape);
    assert.equal(b.tensors[i].dtype, a.tensors[i].dtype);
    assert.deepEqual(await readTensorBytes(b.tensors[i]), await readTensorBytes(a.tensors[i]), a.tensors[i].name);
  }
}

test('no change: the written file is byte-identical; the original is untouched', async () => {
  await withDir(async (dir) => {
    const src = join(dir, 'm.onnx');
    await writeOnnxFile(src, mlp());
    const before = await readFile(src);
    const ir = await readOnnxModel(src);
    await writeOnnxModel(ir, join(dir, 'out.onnx'));
    assert.deepEqual(await readFile(join(dir, 'out.onnx')), before);
    // forcing the wire-splice path (external data option with a threshold nothing reaches)
    await writeOnnxModel(ir, join(dir, 'out2.onnx'), { externalData: { fileName: 'out2.data', minBytes: 1e9 } });
    assert.deepEqual(await readFile(join(dir, 'out2.onnx')), before);
    assert.deepEqual(await readFile(src), before);
    assert.deepEqual((await readdir(dir)).sort(), ['m.onnx', 'out.onnx', 'out2.onnx']);
  });
});

test('same-size replacement patches bytes in place; ORT sees the new weights', async () => {
  await withDir(async (dir) => {
    const src = join(dir, 'm.onnx');
    await writeOnnxFile(src, mlp());
    const ir = await readOnnxModel(src);
    const out = join(dir, 'out.onnx');
    // zero the last hidden unit's input weights: h3 = 0.5 -> relu 0.5 -> y = [0.5*-1, 0.5*3] + b2 + rest
    const newW1 = [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0];
    await writeOnnxModel(ir, out, { replace: new Map([['mlp.0.weight', { dtype: 'float32', shape: [4, 3], data: f32(newW1) }]]) });
    const a = await readFile(src);
    const b = await readFile(out);
    assert.equal(b.length, a.length);
    let diffs = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) diffs++;
    assert.ok(diffs > 0 && diffs <= 12, `only the weight bytes differ (${diffs})`);
    // x=[1,2,3]: h = [1,2,-7,0.5] -> r = [1,2,0,0.5]; y = [1 - 0.5, 2 + 1.5] + b2
    assert.deepEqual(await run(out, [1, 2, 3]), [0.75, 3.25]);
    const back = await readOnnxModel(out);
    assert.deepEqual(Array.from(await readTensorFloat32(back.tensors[0])), newW1);
    assert.deepEqual(await readFile(src), a);
  });
});

test('shape-changing replacements (structured pruning 4 -> 3 hidden units) re-splice; ORT runs', async () => {
  await withDir(async (dir) => {
    const src = join(dir, 'm.onnx');
    await writeOnnxFile(src, mlp());
    const ir = await readOnnxModel(src);
    const out = join(dir, 'pruned.onnx');
    // drop hidden unit 2 (always negative for x=[1,2,3])
    await writeOnnxModel(ir, out, {
      replace: new Map([
        ['mlp.0.weight', { dtype: 'float32', shape: [3, 3], data: f32([1, 0, 0, 0, 1, 0, 1, 1, 1]) }],
        ['mlp.0.bias', { dtype: 'float32', shape: [3], data: f32([0, 0, 0.5]) }],
        ['mlp.2.weight', { dtype: 'float32', shape: [3, 2], data: f32([1, 0, 0, 1, -1, 3]) }],
      ]),
    });
    assert.deepEqual(await run(out, [1, 2, 3]), await run(src, [1, 2, 3]));
    assert.deepEqual(await run(out, [1, 2, 3]), [-5.25, 21.25]);
    const back = await readOnnxModel(out);
    assert.deepEqual(back.tensors.map((t) => t.shape), [[3, 3], [3], [3, 2], [2]]);
    assert.deepEqual(back.graph, ir.graph);
    assert.deepEqual(back.metadata, ir.metadata);
    assert.deepEqual(back.layers.map((l) => [l.name, l.kind, l.tensors]), ir.layers.map((l) => [l.name, l.kind, l.tensors]));
  });
});

// Wire helpers to inject fields newer than onnx-proto's ONNX 1.10 schema.
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

test('fields unknown to onnx-proto (newer ONNX) survive a shape-changing write', async () => {
  await withDir(async (dir) => {
    // Graph = MLP without its last node and last initializer, then hand-appended:
    //  - initializer mlp.2.bias with TensorProto.metadata_props (field 16)
    //  - the Add node with NodeProto.metadata_props (field 9)
    //  - ModelProto.configuration-like unknown field 26 at the top level
    const base = mlpBuilder().toModelProto();
    const bias = onnx.TensorProto.create({ name: 'mlp.2.bias', dataType: 1, dims: [2], rawData: f32(B2) });
    base.graph!.output = [];
    base.graph!.initializer = base.graph!.initializer!.filter((t) => t.name !== 'mlp.2.bias');
    const graphBytes = onnx.GraphProto.encode(base.graph!).finish();
    const tensorMeta = ld(16, entry('tensor_note', 'keep me'));
    const nodeMeta = ld(9, entry('node_note', 'me too'));
    const addNode = onnx.NodeProto.encode({ name: '/mlp/mlp.2/Add', opType: 'Add', input: ['m', 'mlp.2.bias'], output: ['y'] }).finish();
    const yInfo = onnx.ValueInfoProto.encode(mlp().graph!.output![0]).finish();
    const graph = cat(graphBytes, ld(5, cat(onnx.TensorProto.encode(bias).finish(), tensorMeta)), ld(1, cat(addNode, nodeMeta)), ld(12, yInfo));
    const modelNoGraph = onnx.ModelProto.encode({ ...base, graph: undefined }).finish();
    const config = ld(26, [0x0a, 2, 0x61, 0x62]);
    const file = cat(modelNoGraph, ld(7, graph), config);
    const src = join(dir, 'new.onnx');
    await writeFile(src, file);
    assert.deepEqual(await run(src, [1, 2, 3]), [-5.25, 21.25], 'ORT reads the hand-made file');

    // onnx-proto alone would lose them: this is why the writer splices bytes
    const reencoded = onnx.ModelProto.encode(onnx.ModelProto.decode(file)).finish();
    assert.equal(contains(reencoded, tensorMeta) || contains(reencoded, nodeMeta) || contains(reencoded, config), false);

    const ir = await readOnnxModel(src);
    const out = join(dir, 'out.onnx');
    await writeOnnxModel(ir, out, {
      replace: new Map([
        ['mlp.2.bias', { dtype: 'float32', shape: [1, 2], data: f32([1, 2]) }], // shape changes: no in-place patch possible
      ]),
    });
    const written = await readFile(out);
    assert.ok(contains(written, tensorMeta), 'TensorProto.metadata_props kept');
    assert.ok(contains(written, nodeMeta), 'NodeProto.metadata_props kept');
    assert.ok(contains(written, config), 'unknown ModelProto field kept');
    assert.deepEqual(await run(out, [1, 2, 3]), [-5.5 + 1, 21.5 + 2]);
  });
});

test('refuses to write over the original or its data file; bad replacements are refused', async () => {
  await withDir(async (dir) => {
    const src = join(dir, 'm.onnx');
    await writeOnnxFile(src, mlp(), { externalData: { fileName: 'm.data', minBytes: 16 } });
    const ir = await readOnnxModel(src);
    await assert.rejects(writeOnnxModel(ir, src), (e: unknown) => e instanceof ModelFileError && /refusing to overwrite/.test(e.message));
    await assert.rejects(writeOnnxModel(ir, join(dir, 'm.data')), /refusing to overwrite/);
    await assert.rejects(writeOnnxModel(ir, join(dir, 'o.onnx'), { externalData: { fileName: 'm.data' } }), /refusing to write external data/);
    await assert.rejects(
      writeOnnxModel(ir, join(dir, 'o.onnx'), { replace: new Map([['nope', { dtype: 'float32', shape: [1], data: f32([1]) }]]) }),
      /no such tensor/,
    );
    await assert.rejects(
      writeOnnxModel(ir, join(dir, 'o.onnx'), { replace: new Map([['mlp.2.bias', { dtype: 'float32', shape: [3], data: f32([1]) }]]) }),
      /needs 12 bytes, got 4/,
    );
    await assert.rejects(writeOnnxModel(ir, join(dir, 'o.onnx'), { externalData: { fileName: '../evil.data' } }), /plain file name/);
    assert.deepEqual((await readdir(dir)).sort(), ['m.data', 'm.onnx']);
  });
});

test('external data: copied next to a new output; original data untouched; moving tensors out', async () => {
  await withDir(async (dir) => {
    const src = join(dir, 'm.onnx');
    await writeOnnxFile(src, mlp(), { externalData: { fileName: 'm.data', minBytes: 16 } });
    const dataBefore = await readFile(join(dir, 'm.data'));
    const ir = await readOnnxModel(src);
    assert.equal(ir.tensors.filter((t) => t.storage.source.kind === 'file').length, 3);
    const other = join(dir, 'other');
    await mkdir(other);
    const out = join(other, 'out.onnx');
    await writeOnnxModel(ir, out, { replace: new Map([['mlp.2.bias', { dtype: 'float32', shape: [2], data: f32([0, 0]) }]]) });
    assert.deepEqual((await readdir(other)).sort(), ['out.onnx', 'out.onnx.data']);
    assert.deepEqual(await run(out, [1, 2, 3]), [-5.5, 21.5]);
    const back = await readOnnxModel(out);
    for (const t of back.tensors.slice(0, 3)) {
      assert.equal(t.storage.source.kind, 'file');
      if (t.storage.source.kind === 'file') assert.equal(t.storage.source.path, join(other, 'out.onnx.data'));
    }
    assert.deepEqual(await readFile(join(dir, 'm.data')), dataBefore);

    // inline model -> tensors of >= 40 bytes moved out
    const inl = join(dir, 'inline.onnx');
    await writeOnnxFile(inl, mlp());
    const ir2 = await readOnnxModel(inl);
    const out2 = join(other, 'split.onnx');
    await writeOnnxModel(ir2, out2, { externalData: { fileName: 'split.bin', minBytes: 40 } });
    const back2 = await readOnnxModel(out2);
    assert.deepEqual(back2.tensors.map((t) => t.storage.source.kind), ['file', 'bytes', 'bytes', 'bytes']);
    await sameTensors(ir2, back2);
    assert.deepEqual(await run(out2, [1, 2, 3]), [-5.25, 21.25]);
  });
});

test('replacing a Constant value_floats turns it into a value tensor', async () => {
  await withDir(async (dir) => {
    const m = new OnnxGraphBuilder({ graphName: 'g' })
      .input('x', 'float32', [2])
      .output('y', 'float32', [2])
      .node('Constant', [], ['c'], { value_floats: [1, 2] }, { name: 'k' })
      .node('Add', ['x', 'c'], ['y'])
      .toModelProto();
    const src = join(dir, 'c.onnx');
    await writeOnnxFile(src, m);
    const ir = await readOnnxModel(src);
    const out = join(dir, 'o.onnx');
    await writeOnnxModel(ir, out, { replace: new Map([['c', { dtype: 'float32', shape: [2], data: f32([10, 20]) }]]) });
    const back = await readOnnxModel(out);
    assert.deepEqual(Array.from(await readTensorFloat32(back.tensors[0])), [10, 20]);
    assert.deepEqual(back.graph.nodes[0].attrs, { value: { tensor: { dtype: 'float32', shape: [2] } } });
    const s = await ort.InferenceSession.create(out);
    const r = await s.run({ x: new ort.Tensor('float32', new Float32Array([1, 1]), [2]) });
    assert.deepEqual(Array.from(r.y.data as Float32Array), [11, 21]);
  });
});

test('subgraph initializers can be replaced (If branch)', async () => {
  await withDir(async (dir) => {
    const branch = (name: string, vals: number[]): onnx.GraphProto =>
      new OnnxGraphBuilder({ graphName: name })
        .output(`${name}_o`, 'float32', [2])
        .initializer(`${name}_w`, 'float32', [2], new Float32Array(vals))
        .node('Identity', [`${name}_w`], [`${name}_o`])
        .toGraphProto();
    const m = new OnnxGraphBuilder({ graphName: 'main' })
      .input('c', 'bool', [])
      .output('y', 'float32', [2])
      .node('If', ['c'], ['y'], { then_branch: { graph: branch('t', [1, 2]) }, else_branch: { graph: branch('e', [3, 4]) } })
      .toModelProto();
    const src = join(dir, 'if.onnx');
    await writeOnnxFile(src, m);
    const ir = await readOnnxModel(src);
    const out = join(dir, 'o.onnx');
    await writeOnnxModel(ir, out, { replace: new Map([['e_w', { dtype: 'float32', shape: [3], data: f32([7, 8, 9]) }]]) });
    const s = await ort.InferenceSession.create(out);
    const r = await s.run({ c: new ort.Tensor('bool', new Uint8Array([0]), []) });
    assert.deepEqual(Array.from(r.y.data as Float32Array), [7, 8, 9]);
    const r2 = await s.run({ c: new ort.Tensor('bool', new Uint8Array([1]), []) });
    assert.deepEqual(Array.from(r2.y.data as Float32Array), [1, 2]);
  });
});
