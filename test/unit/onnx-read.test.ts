import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import { ModelFileError, ModelIR, ModelTensor } from '../../src/core/model/ir.js';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { layerFromNodeName, layerFromTensorName, readOnnxModel } from '../../src/core/model/onnx.js';
import { readTensorBytes, readTensorFloat32 } from '../../src/core/model/tensor-data.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ps-onnx-read-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function tensor(ir: ModelIR, name: string): ModelTensor {
  const t = ir.tensors.find((x) => x.name === name);
  assert.ok(t, `tensor ${name} not found; have ${ir.tensors.map((x) => x.name).join(', ')}`);
  return t;
}

async function values(ir: ModelIR, name: string): Promise<number[]> {
  return Array.from(await readTensorFloat32(tensor(ir, name)));
}

async function bytesOf(ir: ModelIR, name: string): Promise<number[]> {
  return Array.from(await readTensorBytes(tensor(ir, name)));
}

function minimal(name = 'g'): OnnxGraphBuilder {
  return new OnnxGraphBuilder({ graphName: name }).input('x', 'float32', [1]).output('y', 'float32', [1]).node('Identity', ['x'], ['y']);
}

async function writeModel(dir: string, model: onnx.IModelProto, name = 'm.onnx'): Promise<string> {
  const p = join(dir, name);
  await writeOnnxFile(p, model);
  return p;
}

async function rejectsWith(p: Promise<unknown>, re: RegExp): Promise<ModelFileError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ModelFileError, `expected ModelFileError, got ${String(e)}`);
    assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected rejection matching ${re}`);
}

test('every dtype in raw_data reads back exactly', async () => {
  await withDir(async (dir) => {
    const b = minimal()
      .initializer('f32', 'float32', [3], new Float32Array([1.5, -2, 3.25]))
      .initializer('f16', 'float16', [3], new Uint16Array([0x3c00, 0xc000, 0x3800])) // 1, -2, 0.5
      .initializer('bf16', 'bfloat16', [2], new Uint16Array([0x3fc0, 0xc040])) // 1.5, -3
      .initializer('f64', 'float64', [2], new Float64Array([0.1, -1e300]))
      .initializer('i8', 'int8', [3], new Int8Array([-128, 0, 127]))
      .initializer('u8', 'uint8', [2], new Uint8Array([0, 255]))
      .initializer('i16', 'int16', [2], new Int16Array([-32768, 7]))
      .initializer('u16', 'uint16', [2], new Uint16Array([65535, 1]))
      .initializer('i32', 'int32', [2], new Int32Array([-2147483648, 42]))
      .initializer('u32', 'uint32', [1], new Uint32Array([4294967295]))
      .initializer('i64', 'int64', [2], new BigInt64Array([-5n, 1234567890123n]))
      .initializer('u64', 'uint64', [1], new BigUint64Array([9n]))
      .initializer('b', 'bool', [3], new Uint8Array([1, 0, 1]));
    const p = await writeModel(dir, b.toModelProto());
    const ir = await readOnnxModel(p);
    assert.deepEqual(await values(ir, 'f32'), [1.5, -2, 3.25]);
    assert.deepEqual(await values(ir, 'f16'), [1, -2, 0.5]);
    assert.deepEqual(await values(ir, 'bf16'), [1.5, -3]);
    assert.deepEqual(await values(ir, 'f64'), [Math.fround(0.1), -Infinity]);
    assert.deepEqual(await values(ir, 'i8'), [-128, 0, 127]);
    assert.deepEqual(await values(ir, 'u8'), [0, 255]);
    assert.deepEqual(await values(ir, 'i16'), [-32768, 7]);
    assert.deepEqual(await values(ir, 'u16'), [65535, 1]);
    assert.deepEqual(await values(ir, 'i32'), [-2147483648, 42]);
    assert.deepEqual(await values(ir, 'u32'), [Math.fround(4294967295)]); // float32 view of the value
    assert.deepEqual(await bytesOf(ir, 'u32'), [255, 255, 255, 255]);
    assert.deepEqual(await values(ir, 'i64'), [-5, Math.fround(1234567890123)]);
    assert.deepEqual(await bytesOf(ir, 'i64'), Array.from(new Uint8Array(new BigInt64Array([-5n, 1234567890123n]).buffer)));
    assert.deepEqual(await values(ir, 'u64'), [9]);
    assert.deepEqual(await values(ir, 'b'), [1, 0, 1]);
    assert.deepEqual(await bytesOf(ir, 'f64'), Array.from(new Uint8Array(new Float64Array([0.1, -1e300]).buffer)));
    for (const t of ir.tensors) {
      assert.equal(t.storage.source.kind, 'bytes');
      assert.equal(t.origin, 'initializer');
    }
    assert.equal(tensor(ir, 'f16').dtype, 'float16');
    assert.equal(tensor(ir, 'i64').storage.byteLength, 16);
  });
});

test('typed fields (float_data, int32_data for small types, int64/double/uint64/string_data) read exactly', async () => {
  await withDir(async (dir) => {
    const m = minimal().toModelProto();
    const T = (name: string, dataType: number, dims: number[], fields: Partial<onnx.ITensorProto>): onnx.TensorProto =>
      onnx.TensorProto.create({ name, dataType, dims, ...fields });
    m.graph!.initializer!.push(
      T('f', 1, [2], { floatData: [0.5, -1] }),
      T('i32', 6, [2], { int32Data: [-7, 2147483647] }),
      T('i8', 3, [2], { int32Data: [-3, 100] }),
      T('u8', 2, [2], { int32Data: [200, 1] }),
      T('b', 9, [2], { int32Data: [1, 0] }),
      T('i16', 5, [1], { int32Data: [-300] }),
      T('u16', 4, [1], { int32Data: [60000] }),
      T('h', 10, [2], { int32Data: [0x3c00, 0xc400] }), // float16 bits: 1, -4
      T('bf', 16, [1], { int32Data: [0x4049] }), // bfloat16 bits: 3.140625
      T('i64', 7, [2], { int64Data: [-9, 2 ** 40] }),
      T('d', 11, [2], { doubleData: [2.5, -0.25] }),
      T('u64', 13, [1], { uint64Data: [77] }),
      T('u32', 12, [1], { uint64Data: [4000000000] }),
      T('s', 8, [2], { stringData: [new TextEncoder().encode('ab'), new TextEncoder().encode('é')] }),
      T('empty', 1, [0, 3], {}),
    );
    const ir = await readOnnxModel(await writeModel(dir, m));
    assert.deepEqual(await values(ir, 'f'), [0.5, -1]);
    assert.deepEqual(await values(ir, 'i32'), [-7, Math.fround(2147483647)]);
    assert.deepEqual(await bytesOf(ir, 'i32'), [249, 255, 255, 255, 255, 255, 255, 127]);
    assert.deepEqual(await values(ir, 'i8'), [-3, 100]);
    assert.deepEqual(await values(ir, 'u8'), [200, 1]);
    assert.deepEqual(await values(ir, 'b'), [1, 0]);
    assert.deepEqual(await values(ir, 'i16'), [-300]);
    assert.deepEqual(await values(ir, 'u16'), [60000]);
    assert.deepEqual(await values(ir, 'h'), [1, -4]);
    assert.deepEqual(await values(ir, 'bf'), [3.140625]);
    assert.deepEqual(await values(ir, 'i64'), [-9, 2 ** 40]);
    assert.deepEqual(await values(ir, 'd'), [2.5, -0.25]);
    assert.deepEqual(await values(ir, 'u64'), [77]);
    assert.deepEqual(await values(ir, 'u32'), [Math.fround(4000000000)]);
    assert.deepEqual(await bytesOf(ir, 'u32'), Array.from(new Uint8Array(new Uint32Array([4000000000]).buffer)));
    assert.deepEqual(await bytesOf(ir, 'u64'), [77, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(await bytesOf(ir, 'h'), [0x00, 0x3c, 0x00, 0xc4]);
    const s = tensor(ir, 's');
    assert.equal(s.storage.source.kind, 'values');
    assert.deepEqual(s.storage.source.kind === 'values' ? Array.from(s.storage.source.values as string[]) : [], ['ab', 'é']);
    assert.deepEqual(tensor(ir, 'empty').shape, [0, 3]);
    assert.deepEqual(await values(ir, 'empty'), []);
  });
});

test('unaligned raw_data: a float32 tensor after an odd-length name reads exact values', async () => {
  await withDir(async (dir) => {
    const m = minimal()
      .initializer('odd', 'uint8', [3], new Uint8Array([9, 8, 7]))
      .initializer('w', 'float32', [2, 2], new Float32Array([1.25, -3.5, 1e-30, 65504]))
      .toModelProto();
    const ir = await readOnnxModel(await writeModel(dir, m));
    const src = tensor(ir, 'w').storage.source;
    assert.equal(src.kind, 'bytes');
    const offsets = ir.tensors.map((t) => (t.storage.source.kind === 'bytes' ? t.storage.source.bytes.byteOffset % 4 : -1));
    assert.ok(offsets.some((o) => o !== 0), 'at least one raw_data view is unaligned');
    assert.deepEqual(await values(ir, 'w'), [1.25, -3.5, Math.fround(1e-30), 65504]);
    assert.deepEqual(await values(ir, 'odd'), [9, 8, 7]);
  });
});

test('Constant nodes: value tensor, value_float(s), value_int(s)', async () => {
  await withDir(async (dir) => {
    const m = new OnnxGraphBuilder({ graphName: 'g' })
      .input('x', 'float32', [2])
      .output('y', 'float32', [2])
      .node('Constant', [], ['c_t'], { value: { tensor: { dtype: 'float32', shape: [2], data: new Float32Array([4, 5]) } } }, { name: 'ct' })
      .node('Constant', [], ['c_f'], { value_float: 2.5 })
      .node('Constant', [], ['c_fs'], { value_floats: [1.5, 2.5] })
      .node('Constant', [], ['c_i'], { value_int: 7 })
      .node('Constant', [], ['c_is'], { value_ints: [3, -4] })
      .node('Add', ['x', 'c_t'], ['y'])
      .toModelProto();
    const ir = await readOnnxModel(await writeModel(dir, m));
    assert.deepEqual(await values(ir, 'c_t'), [4, 5]);
    assert.deepEqual(tensor(ir, 'c_f').shape, []);
    assert.deepEqual(await values(ir, 'c_f'), [2.5]);
    assert.deepEqual(await values(ir, 'c_fs'), [1.5, 2.5]);
    assert.equal(tensor(ir, 'c_i').dtype, 'int64');
    assert.deepEqual(await values(ir, 'c_i'), [7]);
    assert.deepEqual(await values(ir, 'c_is'), [3, -4]);
    assert.equal(tensor(ir, 'c_t').origin, 'Constant node "ct"');
    // The graph node list keeps the Constant nodes, attrs summarised
    const ct = ir.graph.nodes.find((n) => n.name === 'ct');
    assert.deepEqual(ct?.attrs, { value: { tensor: { dtype: 'float32', shape: [2] } } });
  });
});

function ifModel(depth: number): onnx.ModelProto {
  // If nodes nested `depth` deep; the innermost then_branch holds an initializer
  let inner: onnx.GraphProto = new OnnxGraphBuilder({ graphName: 'leaf' })
    .output('o0', 'float32', [2])
    .initializer('leaf_w', 'float32', [2], new Float32Array([6, 7]))
    .node('Identity', ['leaf_w'], ['o0'])
    .toGraphProto();
  for (let d = 1; d < depth; d++) {
    const wrap = new OnnxGraphBuilder({ graphName: `g${d}` })
      .output(`o${d}`, 'float32', [2])
      .node('If', ['cond'], [`o${d}`], { then_branch: { graph: inner }, else_branch: { graph: ifElse(`e${d}`) } }, { name: `If_${d}` })
      .toGraphProto();
    inner = wrap;
  }
  return new OnnxGraphBuilder({ graphName: 'main' })
    .input('cond', 'bool', [])
    .output('y', 'float32', [2])
    .node('If', ['cond'], ['y'], { then_branch: { graph: inner }, else_branch: { graph: ifElse() } }, { name: 'If_top' })
    .toModelProto();
}

function ifElse(out = 'e'): onnx.GraphProto {
  return new OnnxGraphBuilder({ graphName: 'else' })
    .output(out, 'float32', [2])
    .node('Constant', [], [out], { value: { tensor: { dtype: 'float32', shape: [2], data: new Float32Array([-1, -2]) } } }, { name: `${out}_const` })
    .toGraphProto();
}

test('If / Loop subgraph weights are found, with scopes; runs in ORT', async () => {
  await withDir(async (dir) => {
    const p = await writeModel(dir, ifModel(1));
    const ir = await readOnnxModel(p);
    assert.deepEqual(await values(ir, 'leaf_w'), [6, 7]);
    assert.equal(tensor(ir, 'leaf_w').origin, 'initializer of subgraph If_top/then_branch');
    assert.deepEqual(await values(ir, 'e'), [-1, -2]);
    assert.match(tensor(ir, 'e').origin, /Constant node "e_const" in subgraph If_top\/else_branch/);
    assert.equal(ir.graph.nodes.find((n) => n.name === 'e_const')?.scope, 'If_top/else_branch');
    assert.deepEqual(ir.graph.nodes.find((n) => n.name === 'If_top')?.attrs.then_branch, { graph: 'leaf', nodes: 1 });

    // Loop body with an initializer
    const body = new OnnxGraphBuilder({ graphName: 'body' })
      .input('i', 'int64', [])
      .input('cond_in', 'bool', [])
      .input('acc', 'float32', [2])
      .output('cond_out', 'bool', [])
      .output('acc_out', 'float32', [2])
      .initializer('step', 'float32', [2], new Float32Array([0.5, 1]))
      .node('Identity', ['cond_in'], ['cond_out'])
      .node('Add', ['acc', 'step'], ['acc_out'])
      .toGraphProto();
    const loop = new OnnxGraphBuilder({ graphName: 'main' })
      .input('n', 'int64', [])
      .input('init', 'float32', [2])
      .output('res', 'float32', [2])
      .initializer('always', 'bool', [], new Uint8Array([1]))
      .node('Loop', ['n', 'always', 'init'], ['res'], { body: { graph: body } }, { name: 'L' })
      .toModelProto();
    const lp = await writeModel(dir, loop, 'loop.onnx');
    const lir = await readOnnxModel(lp);
    assert.deepEqual(await values(lir, 'step'), [0.5, 1]);
    assert.equal(tensor(lir, 'step').origin, 'initializer of subgraph L/body');
    assert.equal(tensor(lir, 'always').role, 'constant');
    const ort = await import('onnxruntime-node');
    const s = await ort.InferenceSession.create(lp);
    const out = await s.run({ n: new ort.Tensor('int64', new BigInt64Array([3n]), []), init: new ort.Tensor('float32', new Float32Array([0, 0]), [2]) });
    assert.deepEqual(Array.from(out.res.data as Float32Array), [1.5, 3]);
  });
});

test('subgraphs nested beyond the depth limit give a clear error', async () => {
  await withDir(async (dir) => {
    const ok = await readOnnxModel(await writeModel(dir, ifModel(10), 'ok.onnx'));
    assert.ok(ok.tensors.some((t) => t.name === 'leaf_w'));
    await rejectsWith(readOnnxModel(await writeModel(dir, ifModel(70), 'deep.onnx')), /deep\.onnx: subgraphs nested more than 64 deep/);
  });
});

function extModel(entries: Array<{ name: string; shape: number[]; location: string; offset?: number; length?: number }>): onnx.ModelProto {
  const m = minimal().toModelProto();
  for (const e of entries) {
    const kv = [onnx.StringStringEntryProto.create({ key: 'location', value: e.location })];
    if (e.offset !== undefined) kv.push(onnx.StringStringEntryProto.create({ key: 'offset', value: String(e.offset) }));
    if (e.length !== undefined) kv.push(onnx.StringStringEntryProto.create({ key: 'length', value: String(e.length) }));
    m.graph!.initializer!.push(
      onnx.TensorProto.create({ name: e.name, dataType: 1, dims: e.shape, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: kv }),
    );
  }
  return m;
}

test('external data: several tensors per file at offsets; nothing read until asked', async () => {
  await withDir(async (dir) => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]);
    await writeFile(join(dir, 'w.bin'), new Uint8Array(data.buffer));
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'v.bin'), new Uint8Array(new Float32Array([9, 10]).buffer));
    const p = await writeModel(
      dir,
      extModel([
        { name: 'a', shape: [2], location: 'w.bin', offset: 0, length: 8 },
        { name: 'b', shape: [2, 2], location: 'w.bin', offset: 12, length: 16 },
        { name: 'c', shape: [2], location: 'sub/v.bin' }, // no offset/length: whole range from 0
      ]),
    );
    const ir = await readOnnxModel(p);
    assert.deepEqual(await values(ir, 'a'), [1, 2]);
    assert.deepEqual(await values(ir, 'b'), [4, 5, 6, 7]);
    assert.deepEqual(await values(ir, 'c'), [9, 10]);
    const src = tensor(ir, 'b').storage.source;
    assert.deepEqual(src.kind === 'file' ? [src.offset, src.length] : [], [12, 16]);
    assert.deepEqual(
      ir.files.map((f) => [f.kind, f.bytes]),
      [['model', (await readFile(p)).length], ['external-data', 32], ['external-data', 8]],
    );
  });
});

test('external data: traversal, absolute paths and symlinks out of the folder are refused', async () => {
  await withDir(async (dir) => {
    const inner = join(dir, 'model');
    await mkdir(inner);
    await writeFile(join(dir, 'x.bin'), new Uint8Array(8));
    await symlink(join(dir, 'x.bin'), join(inner, 'link.bin'));
    await writeFile(join(inner, 'ok.bin'), new Uint8Array(8));
    await symlink(join(inner, 'ok.bin'), join(inner, 'inside-link.bin'));
    const cases: Array<[string, RegExp]> = [
      ['../x.bin', /"\.\.\/x\.bin" refused: "\.\." is not allowed/],
      ['sub/../../x.bin', /refused: "\.\." is not allowed/],
      [join(dir, 'x.bin'), /refused: absolute paths are not allowed/],
      ['link.bin', /"link\.bin" refused: it resolves to .*x\.bin, outside the model's folder/],
      ['missing.bin', /external data file "missing\.bin" not found/],
    ];
    for (const [location, re] of cases) {
      const p = await writeModel(inner, extModel([{ name: 'w', shape: [2], location }]), 'm.onnx');
      const e = await rejectsWith(readOnnxModel(p), re);
      assert.equal(e.file, p);
      assert.match(e.message, /tensor "w"/);
    }
    // a symlink that stays inside the folder is fine
    const p = await writeModel(inner, extModel([{ name: 'w', shape: [2], location: 'inside-link.bin' }]), 'ok.onnx');
    assert.deepEqual(await values(await readOnnxModel(p), 'w'), [0, 0]);
  });
});

test('external data: range past the end and length mismatch are refused', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'w.bin'), new Uint8Array(16));
    const past = await writeModel(dir, extModel([{ name: 'w', shape: [2], location: 'w.bin', offset: 12, length: 8 }]), 'a.onnx');
    await rejectsWith(readOnnxModel(past), /tensor "w".*range 12\+8 runs past the end of "w\.bin" \(16 bytes\)/);
    const len = await writeModel(dir, extModel([{ name: 'w', shape: [3], location: 'w.bin', offset: 0, length: 8 }]), 'b.onnx');
    await rejectsWith(readOnnxModel(len), /external data length 8 but shape \[3\] float32 needs 12 bytes/);
    // a declared 3 GB external tensor in a 16-byte file
    const huge = await writeModel(dir, extModel([{ name: 'big', shape: [805306368], location: 'w.bin' }]), 'c.onnx');
    await rejectsWith(readOnnxModel(huge), /tensor "big".*range 0\+3221225472 runs past the end/);
  });
});

test('corrupt sizes: raw_data mismatch, 3 GB declared in a tiny file, negative dims, overflow', async () => {
  await withDir(async (dir) => {
    const mk = (t: Partial<onnx.ITensorProto>): onnx.ModelProto => {
      const m = minimal().toModelProto();
      m.graph!.initializer!.push(onnx.TensorProto.create({ name: 'bad', dataType: 1, ...t }));
      return m;
    };
    await rejectsWith(readOnnxModel(await writeModel(dir, mk({ dims: [3], rawData: new Uint8Array(8) }), 'a.onnx')), /a\.onnx: tensor "bad" \(initializer\): raw_data has 8 bytes but shape \[3\] float32 needs 12/);
    await rejectsWith(readOnnxModel(await writeModel(dir, mk({ dims: [805306368], rawData: new Uint8Array(4) }), 'b.onnx')), /raw_data has 4 bytes but shape \[805306368\] float32 needs 3221225472/);
    await rejectsWith(readOnnxModel(await writeModel(dir, mk({ dims: [2, -3], rawData: new Uint8Array(4) }), 'c.onnx')), /tensor "bad".*negative dimension -3/);
    await rejectsWith(readOnnxModel(await writeModel(dir, mk({ dims: [2 ** 30, 2 ** 30], rawData: new Uint8Array(4) }), 'd.onnx')), /more than 2\^40 elements/);
    await rejectsWith(readOnnxModel(await writeModel(dir, mk({ dims: [3], floatData: [1, 2] }), 'e.onnx')), /float_data has 2 values, shape needs 3/);
    await rejectsWith(readOnnxModel(await writeModel(dir, mk({ dims: [3] }), 'f.onnx')), /tensor "bad".*no data/);
    await rejectsWith(readOnnxModel(await writeModel(dir, mk({ dims: [1], dataType: 17, rawData: new Uint8Array(1) }), 'g.onnx')), /element type FLOAT8E4M3FN is not supported/);
  });
});

test('not ONNX: JSON, random bytes, empty file; truncated files say "truncated"', async () => {
  await withDir(async (dir) => {
    const json = join(dir, 'model.onnx');
    await writeFile(json, JSON.stringify({ format: 'layers-model', modelTopology: {} }));
    await rejectsWith(readOnnxModel(json), /model\.onnx: not an ONNX model: it looks like JSON/);
    const rnd = join(dir, 'rnd.onnx');
    // fixed "random" bytes (a deterministic generator, so the test is reproducible)
    const bytes = new Uint8Array(4096);
    let s = 12345;
    for (let i = 0; i < bytes.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      bytes[i] = s >>> 24;
    }
    await writeFile(rnd, bytes);
    await rejectsWith(readOnnxModel(rnd), /rnd\.onnx: not an ONNX model/);
    const empty = join(dir, 'empty.onnx');
    await writeFile(empty, new Uint8Array(0));
    await rejectsWith(readOnnxModel(empty), /not an ONNX model: the file is empty/);
    const ok = await writeModel(dir, minimal().initializer('w', 'float32', [64], new Float32Array(64)).toModelProto(), 'cut.onnx');
    const size = (await readFile(ok)).length;
    for (const cut of [Math.floor(size / 2), size - 1, 5]) {
      await truncate(ok, cut);
      await rejectsWith(readOnnxModel(ok), /cut\.onnx: truncated/);
      await writeOnnxFile(ok, minimal().initializer('w', 'float32', [64], new Float32Array(64)).toModelProto());
    }
    await rejectsWith(readOnnxModel(join(dir, 'nope.onnx')), /nope\.onnx: cannot open: no such file \(ENOENT\)/);
  });
});

test('roles: Gather, Gemm transB, MatMul (B and A), Add bias, Conv, BatchNorm, LayerNorm, shapes, quantized', async () => {
  await withDir(async (dir) => {
    const f = (n: number): Float32Array => new Float32Array(n).fill(0.5);
    const m = new OnnxGraphBuilder({ graphName: 'roles' })
      .input('ids', 'int64', [4])
      .input('x', 'float32', [1, 3])
      .input('img', 'float32', [1, 2, 4, 4])
      .output('y1', 'float32', [4, 8])
      .output('y2', 'float32', [1, 4])
      .output('y3', 'float32', [1, 4])
      .output('y4', 'float32', [4, 1])
      .output('y5', 'float32', [1, 3])
      .output('y6', 'float32', [1, 3, 4, 4])
      .output('y7', 'float32', [1, 3])
      .output('y8', 'float32', [1, 5])
      .output('y9', 'float32', [1, 2])
      .initializer('emb.weight', 'float32', [10, 8], f(80))
      .initializer('fc.weight', 'float32', [4, 3], f(12))
      .initializer('fc.bias', 'float32', [4], f(4))
      .initializer('fc2.weight', 'float32', [3, 4], f(12))
      .initializer('onnx::MatMul_7', 'float32', [3, 4], f(12))
      .initializer('lin.bias', 'float32', [4], f(4))
      .initializer('left', 'float32', [4, 3], f(12))
      .initializer('shape', 'int64', [2], new BigInt64Array([1n, 3n]))
      .initializer('conv.weight', 'float32', [3, 2, 1, 1], f(6))
      .initializer('conv.bias', 'float32', [3], f(3))
      .initializer('bn.weight', 'float32', [3], f(3))
      .initializer('bn.bias', 'float32', [3], f(3))
      .initializer('bn.running_mean', 'float32', [3], f(3))
      .initializer('bn.running_var', 'float32', [3], f(3))
      .initializer('ln.weight', 'float32', [3], f(3))
      .initializer('ln.bias', 'float32', [3], f(3))
      .initializer('q.weight', 'int8', [3, 5], new Int8Array(15).fill(3))
      .initializer('q.scale', 'float32', [], new Float32Array([0.1]))
      .initializer('q.zp', 'int8', [], new Int8Array([0]))
      .initializer('lookup', 'float32', [3], new Float32Array([1, 2, 3]))
      .initializer('proj', 'float32', [2, 3], f(6))
      .node('Gather', ['emb.weight', 'ids'], ['y1'], { axis: 0 }, { name: '/emb/Gather' })
      .node('Gemm', ['x', 'fc.weight', 'fc.bias'], ['y2'], { transB: 1 }, { name: '/fc/Gemm' })
      .node('Gemm', ['x', 'fc2.weight'], ['g2'], {}, { name: '/fc2/Gemm' })
      .node('MatMul', ['x', 'onnx::MatMul_7'], ['mm'], {}, { name: '/lin/MatMul' })
      .node('Add', ['lin.bias', 'mm'], ['y3'], {}, { name: '/lin/Add' })
      .node('MatMul', ['left', 'xt'], ['y4'], {}, { name: '/left/MatMul' })
      .node('Transpose', ['x'], ['xt'])
      .node('Reshape', ['x', 'shape'], ['y5'])
      .node('Conv', ['img', 'conv.weight', 'conv.bias'], ['c'], {}, { name: '/conv/Conv' })
      .node('BatchNormalization', ['c', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'], ['y6'], {}, { name: '/bn/BatchNormalization' })
      .node('LayerNormalization', ['x', 'ln.weight', 'ln.bias'], ['y7'], { axis: -1 })
      .node('DequantizeLinear', ['q.weight', 'q.scale', 'q.zp'], ['qd'])
      .node('MatMul', ['x', 'qd'], ['y8'], {}, { name: '/q/MatMul' })
      .node('Mul', ['x', 'lookup'], ['lm'])
      .node('Transpose', ['proj'], ['projT'], { perm: [1, 0] })
      .node('MatMul', ['lm', 'projT'], ['y9'], {}, { name: '/proj/MatMul' })
      .toModelProto();
    const p = await writeModel(dir, m);
    const ir = await readOnnxModel(p);
    const r = (n: string): [string, boolean, boolean | undefined] => {
      const t = tensor(ir, n);
      return [t.role, t.trainable, t.transposed];
    };
    assert.deepEqual(r('emb.weight'), ['embedding', true, undefined]);
    assert.deepEqual(r('fc.weight'), ['dense-kernel', true, true]);
    assert.deepEqual(r('fc.bias'), ['bias', true, undefined]);
    assert.deepEqual(r('fc2.weight'), ['dense-kernel', true, false]);
    assert.deepEqual(r('onnx::MatMul_7'), ['dense-kernel', true, false]);
    assert.deepEqual(r('lin.bias'), ['bias', true, undefined]);
    assert.deepEqual(r('left'), ['dense-kernel', true, true]);
    assert.deepEqual(r('shape'), ['constant', false, undefined]);
    assert.deepEqual(r('conv.weight'), ['conv-kernel', true, undefined]);
    assert.deepEqual(r('conv.bias'), ['bias', true, undefined]);
    for (const n of ['bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var', 'ln.weight', 'ln.bias']) assert.deepEqual(r(n), ['norm', true, undefined], n);
    assert.deepEqual(r('q.weight'), ['dense-kernel', true, false]);
    assert.deepEqual(r('q.scale'), ['quant-param', false, undefined]);
    assert.deepEqual(r('q.zp'), ['quant-param', false, undefined]);
    assert.deepEqual(r('lookup'), ['constant', false, undefined]);
    assert.deepEqual(r('proj'), ['dense-kernel', true, true]); // [out, in] used through a Transpose
    assert.deepEqual(tensor(ir, 'emb.weight').consumers, ['Gather']);
    assert.deepEqual(tensor(ir, 'q.weight').consumers, ['DequantizeLinear']);

    // layers: names from parameters, from PyTorch scopes for onnx:: names; kinds from ops
    assert.equal(tensor(ir, 'onnx::MatMul_7').layer, 'lin');
    assert.equal(tensor(ir, 'lin.bias').layer, 'lin');
    const layer = (n: string): { kind: string; tensors: string[]; inbound: string[] } | undefined => ir.layers.find((l) => l.name === n);
    assert.deepEqual(layer('lin')?.tensors.sort(), ['lin.bias', 'onnx::MatMul_7']);
    assert.equal(layer('lin')?.kind, 'MatMul');
    assert.equal(layer('bn')?.kind, 'BatchNormalization');
    assert.equal(layer('emb')?.kind, 'Gather');
    assert.equal(layer('q')?.kind, 'MatMul');
    assert.deepEqual(layer('bn')?.inbound, ['conv']);
  });
});

test('graph inputs exclude initializers; attrs in plain form; metadata', async () => {
  await withDir(async (dir) => {
    const m = new OnnxGraphBuilder({ graphName: 'old', producer: 'pytorch', producerVersion: '1.9', opset: 11, metadata: { author: 'me' } })
      .input('x', 'float32', ['batch', 2])
      .input('w', 'float32', [2, 2]) // old exporters list initializers as inputs too
      .output('y', 'float32', ['batch', -1])
      .initializer('w', 'float32', [2, 2], new Float32Array(4))
      .node('MatMul', ['x', 'w'], ['m'])
      .node('LeakyRelu', ['m'], ['y'], { alpha: 0.25 }, { name: 'act' })
      .toModelProto();
    const ir = await readOnnxModel(await writeModel(dir, m));
    assert.deepEqual(ir.graph.inputs, [{ name: 'x', dtype: 'float32', shape: ['batch', 2] }]);
    assert.deepEqual(ir.graph.outputs, [{ name: 'y', dtype: 'float32', shape: ['batch', -1] }]);
    assert.deepEqual(ir.graph.nodes.find((n) => n.name === 'act'), { name: 'act', op: 'LeakyRelu', inputs: ['m'], outputs: ['y'], attrs: { alpha: 0.25 } });
    assert.equal(ir.metadata.producer_name, 'pytorch');
    assert.equal(ir.metadata.producer_version, '1.9');
    assert.equal(ir.metadata.opset_import, 'ai.onnx=11');
    assert.equal(ir.metadata.ir_version, '8');
    assert.equal(ir.metadata['metadata_props.author'], 'me');
    assert.equal(ir.format, 'onnx');
  });
});

test('layer names from PyTorch node and parameter names', () => {
  assert.equal(layerFromNodeName('/mlp/mlp.0/Gemm'), 'mlp.0');
  assert.equal(layerFromNodeName('/encoder/layer.0/attention/self/query/MatMul'), 'encoder.layer.0.attention.self.query');
  assert.equal(layerFromNodeName('/Gather'), undefined);
  assert.equal(layerFromNodeName('Gemm_3'), undefined);
  assert.equal(layerFromNodeName('If_0__Inline_0__/stft/Conv'), 'If_0__Inline_0__stft');
  assert.equal(layerFromTensorName('mlp.0.weight'), 'mlp.0');
  assert.equal(layerFromTensorName('bn.running_var'), 'bn');
  assert.equal(layerFromTensorName('rnn.weight_ih_l0'), 'rnn');
  assert.equal(layerFromTensorName('onnx::MatMul_123'), undefined);
  assert.equal(layerFromTensorName('plain'), undefined);
});

test('sparse_initializer is reported with its dense shape and values', async () => {
  await withDir(async (dir) => {
    const m = minimal().toModelProto();
    m.graph!.sparseInitializer!.push(
      onnx.SparseTensorProto.create({
        dims: [2, 3],
        values: onnx.TensorProto.create({ name: 'sp', dataType: 1, dims: [2], floatData: [5, 6] }),
        indices: onnx.TensorProto.create({ name: 'sp_idx', dataType: 7, dims: [2], int64Data: [1, 5] }),
      }),
    );
    const ir = await readOnnxModel(await writeModel(dir, m));
    assert.deepEqual(tensor(ir, 'sp').shape, [2, 3]);
    assert.deepEqual(await values(ir, 'sp'), [0, 5, 0, 0, 0, 6]);
    assert.equal(tensor(ir, 'sp').origin, 'sparse_initializer');
  });
});

test('cancellation via AbortSignal and progress reporting', async () => {
  await withDir(async (dir) => {
    const p = await writeModel(dir, minimal().initializer('w', 'float32', [2], new Float32Array(2)).toModelProto());
    const seen: number[] = [];
    await readOnnxModel(p, { onProgress: (x) => seen.push(x) });
    assert.equal(seen[seen.length - 1], 1);
    assert.ok(seen.every((x, i) => i === 0 || x >= seen[i - 1]));
    const ac = new AbortController();
    ac.abort();
    await rejectsWith(readOnnxModel(p, { signal: ac.signal }), /cancelled/);
  });
});

test('typed fields: a huge declared shape with few values is refused before allocating', async () => {
  await withDir(async (dir) => {
    const m = minimal().toModelProto();
    m.graph!.initializer!.push(onnx.TensorProto.create({ name: 'huge', dataType: 1, dims: [2 ** 39], floatData: [1, 2] }));
    await rejectsWith(readOnnxModel(await writeModel(dir, m)), /tensor "huge".*float_data has 2 values, shape needs 549755813888/);
  });
});

test('external data beyond 2 GB: offsets past 2^31 work and nothing is read up front', async () => {
  await withDir(async (dir) => {
    const dataPath = join(dir, 'big.bin');
    // a sparse 3 GiB file: only the tensor's bytes are real
    await writeFile(dataPath, new Uint8Array(0));
    await truncate(dataPath, 3 * 2 ** 30);
    const offset = 2.5 * 2 ** 30;
    const { open } = await import('node:fs/promises');
    const fh = await open(dataPath, 'r+');
    await fh.write(new Uint8Array(new Float32Array([3.5, -1]).buffer), 0, 8, offset);
    await fh.close();
    const p = await writeModel(dir, extModel([{ name: 'far', shape: [2], location: 'big.bin', offset, length: 8 }]));
    const ir = await readOnnxModel(p);
    assert.deepEqual(ir.files[1], { path: dataPath, bytes: 3 * 2 ** 30, kind: 'external-data' });
    assert.deepEqual(await values(ir, 'far'), [3.5, -1]);
  });
});
