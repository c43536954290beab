import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { buildTfjsFunctionFromOnnx } from '../../src/core/model/onnx-to-tfjs.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const fixtureDir = path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-onnx2tfjs-'));

function readCsv(file: string): { header: string[]; rows: number[][] } {
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  return { header: lines[0].split(','), rows: lines.slice(1).map((l) => l.split(',').map(Number)) };
}

async function ortRun(file: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const kind of ['neumf', 'two-tower', 'deepfm'] as const) {
  test(`${kind}: the TF.js translation of the ONNX fixture gives ORT's scores (max abs diff <= 1e-5)`, async () => {
    await initTfjs('auto');
    const fx = await writeTinyFixtures(fixtureDir);
    const r = fx.models[kind];
    const ir = await readOnnxModel(r.onnxPath!);
    const fn = await buildTfjsFunctionFromOnnx(ir);
    try {
      const { header, rows } = readCsv(r.candidatesCsv);
      const n = rows.length;
      let feeds: Record<string, ort.Tensor>;
      let scores: Float32Array;
      if (kind === 'deepfm') {
        const F = 2 + header.length - 4;
        const fv = new Int32Array(n * F);
        rows.forEach((row, i) => {
          fv[i * F] = row[0];
          fv[i * F + 1] = row[1];
          for (let f = 2; f < F; f++) fv[i * F + f] = row[f + 2];
        });
        feeds = { fields: new ort.Tensor('int64', BigInt64Array.from(fv, BigInt), [n, F]) };
        scores = tf.tidy(() => fn.predict({ fields: tf.tensor2d(fv, [n, F], 'int32') }).dataSync() as Float32Array);
      } else {
        const users = Int32Array.from(rows, (row) => row[0]);
        const items = Int32Array.from(rows, (row) => row[1]);
        feeds = {
          user: new ort.Tensor('int64', BigInt64Array.from(users, BigInt), [n]),
          item: new ort.Tensor('int64', BigInt64Array.from(items, BigInt), [n]),
        };
        scores = tf.tidy(() => fn.predict({ user: tf.tensor1d(users, 'int32'), item: tf.tensor1d(items, 'int32') }).dataSync() as Float32Array);
      }
      const expected = (await ortRun(r.onnxPath!, feeds)).score;
      assert.deepEqual(expected.dims, [n, 1]);
      const d = maxAbsDiff(scores, expected.data as Float32Array);
      assert.ok(d <= 1e-5, `max abs diff ${d}`);
      // every float table and kernel is a variable; the int64 field index constants are not
      const tables = ir.tensors.filter((t) => t.role === 'embedding').map((t) => t.name);
      assert.ok(tables.length >= 2);
      for (const t of tables) assert.ok(fn.variables.has(t), t);
      for (const v of fn.variables.values()) assert.equal(v.dtype, 'float32');
    } finally {
      fn.dispose();
    }
  });
}

/** A graph with every op of the subset that the fixtures do not use, with exact float values. */
async function writeOpsModel(file: string): Promise<void> {
  const b = new OnnxGraphBuilder({ graphName: 'ops', opset: 17 });
  b.input('ids', 'int64', ['batch']);
  b.input('x', 'float32', ['batch', 4]);
  const table = Float32Array.from({ length: 6 * 4 }, (_, i) => (i % 7) * 0.25 - 0.5);
  b.initializer('table', 'float32', [6, 4], table);
  b.initializer('w', 'float32', [3, 8], Float32Array.from({ length: 24 }, (_, i) => ((i * 5) % 11) * 0.125 - 0.6));
  b.initializer('c', 'float32', [3], Float32Array.of(0.5, -0.25, 1));
  b.initializer('shape_m1_2', 'int64', [2], BigInt64Array.of(-1n, 2n));
  b.initializer('shape_0_m1', 'int64', [2], BigInt64Array.of(0n, -1n));
  b.initializer('axes1', 'int64', [1], BigInt64Array.of(1n));
  b.initializer('starts', 'int64', [1], BigInt64Array.of(1n));
  b.initializer('ends_max', 'int64', [1], BigInt64Array.of(9223372036854775807n));
  b.initializer('steps2', 'int64', [1], BigInt64Array.of(2n));
  b.initializer('rstart', 'int64', [1], BigInt64Array.of(-1n));
  b.initializer('rend', 'int64', [1], BigInt64Array.of(-9223372036854775807n));
  b.initializer('rstep', 'int64', [1], BigInt64Array.of(-1n));
  b.initializer('two', 'float32', [], Float32Array.of(2));
  b.node('Gather', ['table', 'ids'], ['e'], { axis: 0 });                // [b,4]
  b.node('Concat', ['e', 'x'], ['ex'], { axis: -1 });                     // [b,8]
  b.node('Gemm', ['ex', 'w', 'c'], ['g'], { alpha: 0.5, beta: 2, transB: 1 }); // [b,3]
  b.node('Tanh', ['g'], ['g1']);
  b.node('Div', ['g1', 'two'], ['g2']);
  b.node('Sub', ['g2', 'c'], ['g3']);
  b.node('Slice', ['ex', 'starts', 'ends_max', 'axes1', 'steps2'], ['s1']); // cols 1,3,5,7 -> [b,4]
  b.node('Slice', ['s1', 'rstart', 'rend', 'axes1', 'rstep'], ['s2']);      // reversed -> [b,4]
  b.node('Reshape', ['s2', 'shape_m1_2'], ['r1']);                           // [2b,2]
  b.node('Reshape', ['r1', 'shape_0_m1'], ['r2']);                           // [2b,2]
  b.node('Transpose', ['r2'], ['t1'], { perm: [1, 0] });                     // [2,2b]
  b.node('ReduceMean', ['t1'], ['m1'], { axes: [0], keepdims: 0 });          // [2b] (opset 17: attr)
  b.node('Unsqueeze', ['g3', 'axes1'], ['u1']);                              // [b,1,3]
  b.node('Squeeze', ['u1', 'axes1'], ['sq']);                                // [b,3]
  b.node('Flatten', ['u1'], ['fl'], { axis: 1 });                            // [b,3]
  b.node('Mul', ['sq', 'fl'], ['p']);
  b.node('ReduceSum', ['p', 'axes1'], ['ps'], { keepdims: 1 });             // [b,1]
  b.node('Shape', ['x'], ['xs']);
  b.node('Cast', ['xs'], ['xsf'], { to: 1 });
  b.node('ReduceSum', ['xsf'], ['xsum'], { keepdims: 0 });                   // scalar b+4
  b.node('Relu', ['ps'], ['pr']);
  b.node('Add', ['pr', 'xsum'], ['pa']);
  b.node('Sigmoid', ['m1'], ['m1s']);
  b.initializer('k43', 'float32', [4, 3], Float32Array.from({ length: 12 }, (_, i) => i * 0.1 - 0.5));
  b.node('MatMul', ['x', 'k43'], ['xm']);
  b.node('Identity', ['xm'], ['xm_out']);
  b.output('pa', 'float32', ['batch', 1]);
  b.output('m1s', 'float32', [-1]);
  b.output('xm_out', 'float32', ['batch', 3]);
  const proto = b.toModelProto();
  await writeOnnxFile(file, proto);
}

test('every op of the subset (Gemm alpha/beta/transB, Slice steps/INT64_MAX, Reshape 0/-1, ...) matches ORT', async () => {
  await initTfjs('auto');
  const file = path.join(work, 'ops.onnx');
  await writeOpsModel(file);
  const ids = [0, 5, 3, 2, 1];
  const x = Float32Array.from({ length: 20 }, (_, i) => Math.sin(i) * 1.5);
  const expected = await ortRun(file, {
    ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [5]),
    x: new ort.Tensor('float32', x, [5, 4]),
  });
  const ir = await readOnnxModel(file);
  const fn = await buildTfjsFunctionFromOnnx(ir);
  try {
    const got = tf.tidy(() => {
      const out = fn.run({ ids: tf.tensor1d(ids, 'int32'), x: tf.tensor2d(x, [5, 4]) });
      return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { shape: v.shape, data: v.dataSync() as Float32Array }]));
    });
    assert.deepEqual(Object.keys(got).sort(), ['m1s', 'pa', 'xm_out']);
    for (const name of ['pa', 'm1s', 'xm_out']) {
      assert.deepEqual(got[name].shape, expected[name].dims, name);
      const d = maxAbsDiff(got[name].data, expected[name].data as Float32Array);
      assert.ok(d <= 1e-6, `${name}: max abs diff ${d}`);
    }
    // the table, the Gemm weight and bias and the MatMul kernel train; the shape constants do not
    assert.deepEqual([...fn.variables.keys()].sort(), ['c', 'k43', 'table', 'w']);
  } finally {
    fn.dispose();
  }
});

test('an unsupported op gives an error naming the op, the node and the supported ops', async () => {
  await initTfjs('auto');
  const b = new OnnxGraphBuilder({ graphName: 'lstm', opset: 17 });
  b.input('x', 'float32', ['batch', 4]);
  b.node('Relu', ['x'], ['h'], {}, { name: 'relu_0' });
  b.node('Softplus', ['h'], ['y'], {}, { name: 'softplus_1' });
  b.output('y', 'float32', ['batch', 4]);
  const file = path.join(work, 'unsupported.onnx');
  await writeOnnxFile(file, b.toModelProto());
  const ir = await readOnnxModel(file);
  const before = tf.memory().numTensors;
  await assert.rejects(buildTfjsFunctionFromOnnx(ir), (e: Error) => {
    assert.match(e.message, /unsupported ONNX op 'Softplus' in node 'softplus_1': PruneScope can train graphs made of Gather, Gemm, MatMul/);
    assert.ok(e.message.startsWith(file), e.message);
    return true;
  });
  assert.equal(tf.memory().numTensors, before);
});

test('an int64 constant beyond int32 is refused outside Slice starts/ends', async () => {
  await initTfjs('auto');
  const b = new OnnxGraphBuilder({ graphName: 'big', opset: 17 });
  b.input('x', 'int64', ['batch']);
  b.initializer('big', 'int64', [1], BigInt64Array.of(5000000000n));
  b.node('Add', ['x', 'big'], ['y'], {}, { name: 'add_big' });
  b.output('y', 'int64', ['batch']);
  const file = path.join(work, 'big.onnx');
  await writeOnnxFile(file, b.toModelProto());
  const ir = await readOnnxModel(file);
  await assert.rejects(buildTfjsFunctionFromOnnx(ir), /node 'add_big' reads int64 constant 'big', whose values do not fit in int32/);
});
