// Limits of the ONNX reader that onnx-read.test.ts does not cover: allocation bounds measured
// with process.memoryUsage().arrayBuffers, 64-bit dims, subgraphs nested far beyond what the
// protobuf decoder can recurse through, symlinked folders, pipes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import { ModelFileError } from '../../src/core/model/ir.js';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { MAX_GRAPH_ENTRIES } from '../../src/core/model/onnx.js';
import { readModel } from '../../src/core/model/read-model.js';
import { readTensorFloat32 } from '../../src/core/model/tensor-data.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ps-limits-onnx-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function rejectsWith(p: Promise<unknown>, file: string, re: RegExp): Promise<ModelFileError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ModelFileError, `expected ModelFileError, got ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.file, file);
    assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected rejection matching ${re}`);
}

/**
 * An int64 for onnx-proto fields beyond 2^53, without importing 'long' (not a dependency of
 * ours): protobufjs encodes any { low, high } object as the 64-bit value (LongBits.from).
 */
function int64(v: bigint): number {
  const u = BigInt.asUintN(64, v);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned: false } as unknown as number;
}

function minimal(): OnnxGraphBuilder {
  return new OnnxGraphBuilder({ graphName: 'g' }).input('x', 'float32', [1]).output('y', 'float32', [1]).node('Identity', ['x'], ['y']);
}

async function write(dir: string, model: onnx.IModelProto, name = 'm.onnx'): Promise<string> {
  const p = join(dir, name);
  await writeOnnxFile(p, model);
  return p;
}

function withInitializer(t: onnx.ITensorProto): onnx.ModelProto {
  const m = minimal().toModelProto();
  m.graph!.initializer!.push(onnx.TensorProto.create({ name: 'bad', ...t }));
  return m;
}

test('3 GB declared in a tiny file: initializer, Constant node and sparse initializer refused without allocating', async () => {
  await withDir(async (dir) => {
    const before = process.memoryUsage().arrayBuffers;
    // 805306368 float32 = 3 GiB, with 4 bytes of raw_data
    const a = await write(dir, withInitializer({ dataType: 1, dims: [805306368], rawData: new Uint8Array(4) }), 'a.onnx');
    await rejectsWith(readModel(a), a, /tensor "bad" \(initializer\): raw_data has 4 bytes but shape \[805306368\] float32 needs 3221225472/);

    const c = minimal().toModelProto();
    c.graph!.node!.push(
      onnx.NodeProto.create({
        name: 'k',
        opType: 'Constant',
        output: ['k_out'],
        attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { dataType: 1, dims: [805306368], floatData: [1] } }],
      }),
    );
    const cp = await write(dir, c, 'c.onnx');
    await rejectsWith(readModel(cp), cp, /tensor "k_out" \(Constant node "k"\): float_data has 1 values, shape needs 805306368/);

    const s = minimal().toModelProto();
    s.graph!.sparseInitializer!.push(
      onnx.SparseTensorProto.create({
        values: { name: 'sp', dims: [1], dataType: 1, floatData: [2] },
        indices: { name: 'sp_i', dims: [1], dataType: 7, int64Data: [5] },
        dims: [805306368],
      }),
    );
    const sp = await write(dir, s, 's.onnx');
    await rejectsWith(readModel(sp), sp, /sparse tensor "sp" \(sparse_initializer\): dense form of 3221225472 bytes is too large/);
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 64 * 1024 * 1024, `arrayBuffers grew by ${grown} bytes`);
  });
});

test('64-bit dims: int64 extremes, products past 2^53 and past 2^40 are refused by name', async () => {
  await withDir(async (dir) => {
    const cases: Array<[number[], RegExp]> = [
      [[int64(9223372036854775807n)], /tensor "bad" \(initializer\) dim 0: 9223372036854775807 is out of range/],
      [[2, int64(-9223372036854775808n)], /tensor "bad" \(initializer\) dim 1: -9223372036854775808 is out of range/],
      [[int64(9007199254740993n)], /dim 0: 9007199254740993 is out of range/],
      // each dim is safe, the product is not: refused before it is ever multiplied out
      [[2 ** 31, 2 ** 31, 2 ** 31], /tensor "bad".*has more than 2\^40 elements/],
      [[0, 2 ** 52, 2 ** 52], /tensor "bad".*has more than 2\^40 elements|raw_data has 4 bytes but shape \[0, /],
    ];
    for (const [i, [dims, re]] of cases.entries()) {
      const p = await write(dir, withInitializer({ dataType: 1, dims, rawData: new Uint8Array(4) }), `d${i}.onnx`);
      await rejectsWith(readModel(p), p, re);
    }
  });
});

/** A ModelProto whose graph nests `depth` If nodes, written byte by byte (protobufjs cannot encode it without recursing). */
function deepIfModel(depth: number): Uint8Array {
  const te = new TextEncoder();
  const varint = (n: number): number[] => {
    const o: number[] = [];
    do {
      let b = n & 0x7f;
      n = Math.floor(n / 128);
      if (n > 0) b |= 0x80;
      o.push(b);
    } while (n > 0);
    return o;
  };
  const field = (tag: number, bytes: number[]): number[] => [...varint(tag), ...varint(bytes.length), ...bytes];
  const opType = field((4 << 3) | 2, [...te.encode('If')]);
  const attrName = field((1 << 3) | 2, [...te.encode('then_branch')]);
  const attrType = [...varint(20 << 3), onnx.AttributeProto.AttributeType.GRAPH];
  const leaf = field((2 << 3) | 2, [...te.encode('leaf')]);
  // each level is a graph { node { op_type: If, attribute { name, type, g: <next level> } } }:
  // the child comes last, so the file is every level's header, outermost first, then the leaf
  const heads: number[][] = [];
  let inner = leaf.length;
  for (let k = 0; k < depth; k++) {
    const attrHead = [...attrName, ...attrType, ...varint((6 << 3) | 2), ...varint(inner)];
    const attrLen = attrHead.length + inner;
    const nodeHead = [...opType, ...varint((5 << 3) | 2), ...varint(attrLen)];
    const nodeLen = nodeHead.length + attrLen;
    const graphHead = [...varint((1 << 3) | 2), ...varint(nodeLen)];
    heads.push([...graphHead, ...nodeHead, ...attrHead]);
    inner = graphHead.length + nodeLen;
  }
  const top = [...varint(1 << 3), 8, ...field((8 << 3) | 2, [...varint(2 << 3), 17]), ...varint((7 << 3) | 2), ...varint(inner)];
  const out: number[] = [...top];
  for (let k = heads.length - 1; k >= 0; k--) for (const b of heads[k]) out.push(b);
  out.push(...leaf);
  return Uint8Array.from(out);
}

test('subgraphs nested 100 and 100,000 deep: one clear error, no stack overflow', async () => {
  await withDir(async (dir) => {
    const ok = join(dir, 'ok.onnx');
    await writeFile(ok, deepIfModel(20));
    assert.equal((await readModel(ok)).graph.nodes.length, 20);
    const mid = join(dir, 'mid.onnx');
    await writeFile(mid, deepIfModel(100));
    await rejectsWith(readModel(mid), mid, /subgraphs nested more than 64 deep \(at If_0\/then_branch\/If_1\/then_branch\/\.\.\.\/If_63\/then_branch\/If_64\/then_branch\)$/);
    const deep = join(dir, 'deep.onnx');
    await writeFile(deep, deepIfModel(100_000));
    await rejectsWith(readModel(deep), deep, /messages nested too deeply to decode/);
  });
});

function externalModel(location: string): onnx.ModelProto {
  const m = minimal().toModelProto();
  m.graph!.initializer!.push(
    onnx.TensorProto.create({
      name: 'w',
      dataType: 1,
      dims: [2],
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [{ key: 'location', value: location }],
    }),
  );
  return m;
}

test('external data through a symlinked subfolder that leaves the model folder is refused; a symlinked model folder reads', async () => {
  await withDir(async (dir) => {
    const outside = join(dir, 'outside');
    const model = join(dir, 'model');
    await mkdir(outside);
    await mkdir(model);
    await writeFile(join(outside, 'w.bin'), new Uint8Array(new Float32Array([7, 8]).buffer));
    await symlink(outside, join(model, 'sub'));
    const p = await write(model, externalModel('sub/w.bin'));
    await rejectsWith(readModel(p), p, /tensor "w".*"sub\/w\.bin" refused: it resolves to .*outside\/w\.bin, outside the model's folder/);

    // the user opens the model through a symlink to its folder: the data file is inside the
    // real folder, so it is read
    await writeFile(join(model, 'w.bin'), new Uint8Array(new Float32Array([1, 2]).buffer));
    await write(model, externalModel('w.bin'), 'ok.onnx');
    await symlink(model, join(dir, 'model-link'));
    const ir = await readModel(join(dir, 'model-link', 'ok.onnx'));
    assert.deepEqual(Array.from(await readTensorFloat32(ir.tensors.find((t) => t.name === 'w')!)), [1, 2]);
  });
});

test('pipes are refused, never opened: the model file and an external data file', async () => {
  await withDir(async (dir) => {
    const fifo = join(dir, 'model.onnx');
    execFileSync('mkfifo', [fifo]);
    await rejectsWith(readModel(fifo), fifo, /not a regular file/);
    const dataFifo = join(dir, 'w.bin');
    execFileSync('mkfifo', [dataFifo]);
    const p = await write(dir, externalModel('w.bin'), 'ext.onnx');
    await rejectsWith(readModel(p), p, /tensor "w".*"w\.bin" refused: not a regular file/);
  });
});

test('external data deleted after reading: analysis gets a ModelFileError naming the data file', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'w.bin'), new Uint8Array(8));
    const p = await write(dir, externalModel('w.bin'));
    const ir = await readModel(p);
    await rm(join(dir, 'w.bin'));
    await rejectsWith(readTensorFloat32(ir.tensors.find((t) => t.name === 'w')!), join(dir, 'w.bin'), /cannot open weights: no such file \(ENOENT\)/);
  });
});

test(`more than ${MAX_GRAPH_ENTRIES} nodes and initializers are refused before decoding (tiny entries, huge object count)`, async () => {
  await withDir(async (dir) => {
    // ModelProto { ir_version: 8, graph: { node: {} x N } }: two bytes per empty node
    const graph = (n: number): Uint8Array => {
      const body = new Uint8Array(n * 2);
      for (let i = 0; i < n; i++) body[i * 2] = (1 << 3) | 2;
      const len: number[] = [];
      for (let v = body.length; ; v = Math.floor(v / 128)) {
        len.push((v & 0x7f) | (v >= 128 ? 0x80 : 0));
        if (v < 128) break;
      }
      return Uint8Array.from([1 << 3, 8, (7 << 3) | 2, ...len, ...body]);
    };
    const bad = join(dir, 'many.onnx');
    await writeFile(bad, graph(MAX_GRAPH_ENTRIES + 1));
    await rejectsWith(readModel(bad), bad, new RegExp(`the graph has more than ${MAX_GRAPH_ENTRIES} nodes and initializers: refusing to decode it`));
    const ok = join(dir, 'some.onnx');
    await writeFile(ok, graph(1000));
    assert.equal((await readModel(ok)).graph.nodes.length, 1000);
  });
});
