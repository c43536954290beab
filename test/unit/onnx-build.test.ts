import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { OnnxGraphBuilder, makeAttribute, writeOnnxFile } from '../../src/core/model/onnx/build.js';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'ps-onnx-build-'));
}

// x[1,3] -> Gemm(W1 [4,3], transB=1) + b1 -> Relu -> MatMul(W2 [4,2]) -> Add(b2)
function buildMlp(): onnx.ModelProto {
  const w1 = new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1]); // [out=4, in=3]
  const b1 = new Float32Array([0, 0, -10, 0.5]);
  const w2 = new Float32Array([1, 0, 0, 1, 2, 2, -1, 3]); // [in=4, out=2]
  const b2 = new Float32Array([0.25, -0.25]);
  return new OnnxGraphBuilder({ graphName: 'mlp' })
    .input('x', 'float32', ['batch', 3])
    .output('y', 'float32', ['batch', 2])
    .initializer('mlp.0.weight', 'float32', [4, 3], w1)
    .initializer('mlp.0.bias', 'float32', [4], b1)
    .initializer('mlp.2.weight', 'float32', [4, 2], w2)
    .initializer('mlp.2.bias', 'float32', [2], b2)
    .node('Gemm', ['x', 'mlp.0.weight', 'mlp.0.bias'], ['h'], { transB: 1, alpha: 1, beta: { f: 1 } })
    .node('Relu', ['h'], ['r'])
    .node('MatMul', ['r', 'mlp.2.weight'], ['m'])
    .node('Add', ['m', 'mlp.2.bias'], ['y'])
    .toModelProto();
}

// Reference: x = [1,2,3] -> h = [1,2,3-10,6+0.5] = [1,2,-7,6.5] -> relu [1,2,0,6.5]
// y = [1*1 + 2*0 + 0*2 + 6.5*-1, 1*0 + 2*1 + 0*2 + 6.5*3] + b2 = [-5.5+0.25, 21.5-0.25]
const EXPECTED = [-5.25, 21.25];

async function runModel(path: string, x: number[]): Promise<number[]> {
  const session = await ort.InferenceSession.create(path);
  const out = await session.run({ x: new ort.Tensor('float32', new Float32Array(x), [1, 3]) });
  return Array.from(out.y.data as Float32Array);
}

test('built MLP runs in onnxruntime-node with the expected outputs', async () => {
  const dir = await tempDir();
  try {
    const p = join(dir, 'mlp.onnx');
    await writeOnnxFile(p, buildMlp());
    assert.deepEqual(await runModel(p, [1, 2, 3]), EXPECTED);
    assert.deepEqual(await readdir(dir), ['mlp.onnx'], 'no temp file left behind');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('external data: big tensors go to the data file with offsets; model still runs', async () => {
  const dir = await tempDir();
  try {
    const p = join(dir, 'mlp.onnx');
    const model = buildMlp();
    await writeOnnxFile(p, model, { externalData: { fileName: 'mlp.onnx.data', minBytes: 16 } });
    assert.deepEqual(await runModel(p, [1, 2, 3]), EXPECTED);
    const decoded = onnx.ModelProto.decode(await readFile(p));
    const byName = new Map(decoded.graph!.initializer!.map((t) => [t.name, t]));
    // w1 (48 bytes), b1 (16), w2 (32) are external; b2 (8 bytes) stays inline.
    const ext = (n: string): Record<string, string> =>
      Object.fromEntries(byName.get(n)!.externalData!.map((e) => [e.key, e.value]));
    assert.deepEqual(ext('mlp.0.weight'), { location: 'mlp.onnx.data', offset: '0', length: '48' });
    assert.deepEqual(ext('mlp.0.bias'), { location: 'mlp.onnx.data', offset: '64', length: '16' });
    assert.deepEqual(ext('mlp.2.weight'), { location: 'mlp.onnx.data', offset: '128', length: '32' });
    assert.equal(byName.get('mlp.2.bias')!.dataLocation, 0);
    assert.equal(byName.get('mlp.2.bias')!.rawData!.length, 8);
    assert.equal(byName.get('mlp.0.weight')!.dataLocation, onnx.TensorProto.DataLocation.EXTERNAL);
    assert.equal((await stat(join(dir, 'mlp.onnx.data'))).size, 160);
    const data = await readFile(join(dir, 'mlp.onnx.data'));
    assert.deepEqual(Array.from(new Float32Array(data.buffer.slice(data.byteOffset + 64, data.byteOffset + 80))), [0, 0, -10, 0.5]);
    // The caller's model is not modified.
    assert.equal(model.graph!.initializer![0].rawData!.length, 48);
    assert.deepEqual((await readdir(dir)).sort(), ['mlp.onnx', 'mlp.onnx.data']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('attribute typing: wrappers, known float names, ints, strings; ambiguous numbers refused', () => {
  const T = onnx.AttributeProto.AttributeType;
  assert.equal(makeAttribute('axis', 1, 'n').type, T.INT);
  assert.equal(makeAttribute('alpha', 1, 'n').type, T.FLOAT);
  assert.equal(makeAttribute('epsilon', 1e-5, 'n').f, 1e-5);
  assert.equal(makeAttribute('foo', { f: 2 }, 'n').type, T.FLOAT);
  assert.equal(makeAttribute('foo', { i: 2n }, 'n').i, 2);
  assert.deepEqual(makeAttribute('perm', [0, 2, 1], 'n').ints, [0, 2, 1]);
  assert.equal(makeAttribute('mode', 'constant', 'n').type, T.STRING);
  assert.equal(new TextDecoder().decode(makeAttribute('mode', 'constant', 'n').s), 'constant');
  assert.equal(makeAttribute('v', { tensor: { dtype: 'int64', shape: [2], data: new BigInt64Array([3n, 4n]) } }, 'n').type, T.TENSOR);
  assert.throws(() => makeAttribute('foo', 0.5, 'n'), /not an integer; write \{ f: 0.5 \}/);
  assert.throws(() => makeAttribute('foo', [], 'n'), /empty plain array/);
});

test('initializer data must match dtype and shape', () => {
  const b = new OnnxGraphBuilder({ graphName: 'g' });
  assert.throws(() => b.initializer('a', 'float32', [3], new Float64Array(3)), /needs Float32Array, got Float64Array/);
  assert.throws(() => b.initializer('a', 'float32', [2, 2], new Float32Array(3)), /4 elements but data has 3/);
  assert.throws(() => b.initializer('a', 'float32', [-1], new Float32Array(0)), /invalid dimension -1/);
  b.initializer('a', 'float16', [1], new Uint16Array([0x3c00]));
  assert.throws(() => b.initializer('a', 'float16', [1], new Uint16Array([0x3c00])), /defined twice/);
});

test('float16 and int64 initializers run through ORT (Cast + Gather)', async () => {
  const dir = await tempDir();
  try {
    const p = join(dir, 'g.onnx');
    const model = new OnnxGraphBuilder({ graphName: 'g', opset: 17 })
      .input('ids', 'int64', [2])
      .output('y', 'float32', [2, 2])
      .initializer('table', 'float16', [3, 2], new Uint16Array([0x3c00, 0x4000, 0x4200, 0x4400, 0xbc00, 0x3800])) // 1,2,3,4,-1,0.5
      .node('Cast', ['table'], ['t32'], { to: 1 })
      .node('Gather', ['t32', 'ids'], ['y'], { axis: 0 })
      .toModelProto();
    await writeOnnxFile(p, model);
    const s = await ort.InferenceSession.create(p);
    const out = await s.run({ ids: new ort.Tensor('int64', new BigInt64Array([2n, 0n]), [2]) });
    assert.deepEqual(Array.from(out.y.data as Float32Array), [-1, 0.5, 1, 2]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
