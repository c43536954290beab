import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { readModel } from '../../src/core/model/read-model.js';
import { readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { fileSystemLoadHandler, fileSystemSaveHandler } from '../../src/core/model/tfjs-io.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { factorizeModel } from '../../src/core/compress/factorize.js';
import { orthonormalizeColumns } from '../../src/core/analysis/linalg.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const fixtureDir = path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-factorize-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

type Kind = 'neumf' | 'two-tower' | 'deepfm';

function readCandidates(file: string): { header: string[]; rows: number[][] } {
  // the first 4000 candidate rows: enough users to compare scores, cheap on the CPU backend
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').slice(0, 4001);
  return { header: lines[0].split(','), rows: lines.slice(1).map((l) => l.split(',').map(Number)) };
}

/** Model inputs for the candidate rows: deepfm takes `fields` [n, F], the others `user`, `item`. */
function inputsOf(kind: Kind, file: string): { n: number; fields?: { F: number; v: Int32Array }; users?: Int32Array; items?: Int32Array } {
  const { header, rows } = readCandidates(file);
  const n = rows.length;
  if (kind === 'deepfm') {
    const F = 2 + header.length - 4;
    const v = new Int32Array(n * F);
    rows.forEach((row, i) => {
      v[i * F] = row[0];
      v[i * F + 1] = row[1];
      for (let f = 2; f < F; f++) v[i * F + f] = row[f + 2];
    });
    return { n, fields: { F, v } };
  }
  return { n, users: Int32Array.from(rows, (r) => r[0]), items: Int32Array.from(rows, (r) => r[1]) };
}

async function ortScores(file: string, inp: ReturnType<typeof inputsOf>): Promise<Float32Array> {
  const feeds: Record<string, ort.Tensor> = inp.fields
    ? { fields: new ort.Tensor('int64', BigInt64Array.from(inp.fields.v, BigInt), [inp.n, inp.fields.F]) }
    : {
        user: new ort.Tensor('int64', BigInt64Array.from(inp.users!, BigInt), [inp.n]),
        item: new ort.Tensor('int64', BigInt64Array.from(inp.items!, BigInt), [inp.n]),
      };
  const s = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
  try {
    const out = await s.run(feeds);
    return Float32Array.from(out[s.outputNames[0]].data as Float32Array);
  } finally {
    await s.release();
  }
}

async function tfjsScores(file: string, inp: ReturnType<typeof inputsOf>): Promise<{ scores: Float32Array; shape: number[] }> {
  const model = await tf.loadLayersModel(fileSystemLoadHandler(file));
  try {
    return tf.tidy(() => {
      const x = inp.fields
        ? [tf.tensor2d(inp.fields.v, [inp.n, inp.fields.F], 'int32')]
        : [tf.tensor2d(inp.users!, [inp.n, 1], 'int32'), tf.tensor2d(inp.items!, [inp.n, 1], 'int32')];
      const y = model.predict(x) as tf.Tensor;
      return { scores: Float32Array.from(y.dataSync() as Float32Array), shape: y.shape };
    });
  } finally {
    model.dispose();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function sha(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function filesOfDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir)) out[f] = sha(path.join(dir, f));
  return out;
}

for (const kind of ['neumf', 'two-tower', 'deepfm'] as const) {
  test(`${kind} ONNX: full rank gives ORT's original scores; rank 2 shrinks and reports its error`, async () => {
    const fx = await writeTinyFixtures(fixtureDir);
    const src = fx.models[kind].onnxPath!;
    const before = sha(src);
    const ir = await readModel(src);
    const inp = inputsOf(kind, fx.models[kind].candidatesCsv);
    const base = await ortScores(src, inp);

    // every 2-D table and kernel at its full rank, even where the factors are larger
    const full = await factorizeModel(ir, { rank: 10_000, minSaving: -10 });
    const wanted = ir.tensors.filter((t) => (t.role === 'embedding' || t.role === 'dense-kernel') && t.shape.length === 2 && Math.min(...t.shape) >= 1);
    assert.deepEqual(full.factorized.map((f) => f.tensor).sort(), wanted.map((t) => t.name).sort());
    for (const f of full.factorized) {
      assert.equal(f.rank, f.fullRank);
      assert.ok(f.relativeError < 1e-6, `${f.tensor} ${f.relativeError}`);
    }
    const fullOut = path.join(work, `${kind}-full.onnx`);
    await full.write(fullOut);
    const d = maxAbsDiff(base, await ortScores(fullOut, inp));
    assert.ok(d <= 1e-4, `full rank: max abs diff ${d}`);
    const after = await readModel(fullOut);
    for (const f of full.factorized) {
      assert.equal(after.tensors.some((t) => t.name === f.tensor), false, `${f.tensor} removed`);
      const [a, b] = f.factors.map((n) => after.tensors.find((t) => t.name === n)!);
      assert.ok(a && b, `factors of ${f.tensor}`);
    }

    const low = await factorizeModel(ir, { rank: 2 });
    assert.ok(low.factorized.length > 0);
    for (const f of low.factorized) {
      assert.equal(f.rank, 2);
      assert.ok(2 * (f.shape[0] + f.shape[1]) < 0.9 * f.shape[0] * f.shape[1]);
      assert.equal(f.paramsAfter, 2 * (f.shape[0] + f.shape[1]));
      const t = ir.tensors.find((x) => x.name === f.tensor)!;
      const stored = f.kind === 'table' ? [[t.shape[0], 2], [2, t.shape[1]]] : [[t.shape[0], 2], [2, t.shape[1]]];
      const ch = low.changes.find((c) => c.tensor === f.tensor)!;
      assert.deepEqual(ch.after.map((a) => a.shape), stored);
    }
    const lowOut = path.join(work, `${kind}-r2.onnx`);
    await low.write(lowOut);
    const lowScores = await ortScores(lowOut, inp);
    assert.equal(lowScores.length, base.length);
    assert.ok(fs.statSync(lowOut).size < fs.statSync(src).size);
    console.log(
      `# ${kind} ONNX full rank: max |score diff| ${d.toExponential(2)}; rank 2: ${low.factorized.map((f) => `${f.tensor} err ${f.relativeError.toFixed(3)}`).join(', ')}; ` +
        `size ${fs.statSync(src).size} -> ${fs.statSync(lowOut).size} B; max |score diff| ${maxAbsDiff(base, lowScores).toFixed(4)}`,
    );
    assert.equal(sha(src), before, 'the original file is unchanged');
  });

  test(`${kind} TF.js: full rank gives the original scores and shapes; rank 2 loads and runs`, async () => {
    await initTfjs('cpu');
    const fx = await writeTinyFixtures(fixtureDir);
    const src = fx.models[kind].tfjsModelJson!;
    const srcDir = path.dirname(src);
    const before = filesOfDir(srcDir);
    const ir = await readModel(src);
    const inp = inputsOf(kind, fx.models[kind].candidatesCsv);
    const base = await tfjsScores(src, inp);

    const full = await factorizeModel(ir, { rank: 10_000, minSaving: -10 });
    const wanted = ir.tensors.filter((t) => (t.role === 'embedding' || t.role === 'dense-kernel') && t.shape.length === 2);
    assert.deepEqual(full.factorized.map((f) => f.tensor).sort(), wanted.map((t) => t.name).sort());
    const fullOut = path.join(work, `${kind}-full-tfjs`, 'model.json');
    await full.write(fullOut);
    const got = await tfjsScores(fullOut, inp);
    assert.deepEqual(got.shape, base.shape);
    const d = maxAbsDiff(base.scores, got.scores);
    assert.ok(d <= 1e-4, `full rank: max abs diff ${d}`);

    const low = await factorizeModel(ir, { rank: 2 });
    const lowOut = path.join(work, `${kind}-r2-tfjs`, 'model.json');
    await low.write(lowOut);
    const lowGot = await tfjsScores(lowOut, inp);
    assert.deepEqual(lowGot.shape, base.shape);
    const re = await readModel(lowOut);
    for (const f of low.factorized) {
      for (const [i, name] of f.factors.entries()) {
        const t = re.tensors.find((x) => x.name === name);
        assert.ok(t, name);
        assert.deepEqual(t!.shape, low.changes.find((c) => c.tensor === f.tensor)!.after[i].shape);
      }
    }
    console.log(`# ${kind} TF.js full rank: max |score diff| ${d.toExponential(2)}; rank 2: ${low.factorized.length} tensors; max |score diff| ${maxAbsDiff(base.scores, lowGot.scores).toFixed(4)}`);
    assert.deepEqual(filesOfDir(srcDir), before, 'the original files are unchanged');
  });
}

/** [N, d] table = U0 diag(sigma) V0^T, float32 */
function lowRankTable(N: number, d: number, sigma: number[], seed: number): Float32Array {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
  const k = sigma.length;
  const u = Float64Array.from({ length: N * k }, rnd);
  const v = Float64Array.from({ length: d * k }, rnd);
  orthonormalizeColumns(u, N, k);
  orthonormalizeColumns(v, d, k);
  const e = new Float32Array(N * d);
  for (let i = 0; i < N; i++) for (let c = 0; c < d; c++) {
    let x = 0;
    for (let j = 0; j < k; j++) x += u[i * k + j] * sigma[j] * v[c * k + j];
    e[i * d + c] = x;
  }
  return e;
}

test('energy picks the exact rank on a table with known singular values; the file shrinks; Gemm transB=1 is rewritten', async () => {
  const N = 2000;
  const d = 32;
  // sigma^2 = 16, 9, 4, 1 (+ 30 in total): 95% needs rank 3 (29/30), 99% rank 4
  const table = lowRankTable(N, d, [4, 3, 2, 1], 5);
  const W = lowRankTable(12, 32, [3, 2.5, 2, 1.5, 1.2, 1, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2], 9); // Gemm B stored [out 12, in 32]
  const b = new OnnxGraphBuilder({ graphName: 'lowrank', opset: 17 });
  b.input('ids', 'int64', ['batch']);
  b.initializer('table', 'float32', [N, d], table);
  b.initializer('w', 'float32', [12, 32], W);
  b.initializer('c', 'float32', [12], Float32Array.from({ length: 12 }, (_, i) => i * 0.1));
  b.node('Gather', ['table', 'ids'], ['emb'], { axis: { i: 0 } }, { name: 'lookup' });
  b.node('Gemm', ['emb', 'w', 'c'], ['y'], { transB: { i: 1 }, alpha: { f: 0.5 } }, { name: 'dense' });
  b.output('y', 'float32', ['batch', 12]);
  const file = path.join(work, 'lowrank.onnx');
  await writeOnnxFile(file, b.toModelProto());
  const ir = await readModel(file);

  const r95 = await factorizeModel(ir, { energy: 0.95, tensors: ['table'] });
  assert.equal(r95.factorized.length, 1);
  assert.equal(r95.factorized[0].rank, 3);
  assert.ok(Math.abs(r95.factorized[0].energyKept - 29 / 30) < 1e-6);
  assert.ok(Math.abs(r95.factorized[0].relativeError - Math.sqrt(1 / 30)) < 1e-6);
  const r99 = await factorizeModel(ir, { energy: 0.99, tensors: 'embeddings', fold: false });
  assert.equal(r99.factorized[0].rank, 4);
  assert.ok(r99.factorized[0].relativeError < 1e-5);
  assert.equal(r99.factorized[0].paramsAfter, 4 * (N + d));
  assert.equal(r99.factorized[0].foldedInto, undefined);
  // folded (the default): the Gemm's kernel [12, 32] (transB) takes the projection: [12, 4], no [4, 32]
  const folded = await factorizeModel(ir, { energy: 0.99, tensors: 'embeddings' });
  assert.deepEqual(folded.factorized.map((f) => [f.rank, f.paramsAfter, f.foldedParams, f.foldedInto]), [[4, 4 * N, (4 - 32) * 12, ['w']]]);
  assert.deepEqual(folded.changes.map((c) => [c.tensor, c.after.map((a) => a.shape)]), [['table', [[N, 4]]], ['w', [[12, 4]]]]);

  const ids = BigInt64Array.from([0n, 17n, 1999n, 256n]);
  const run = async (f: string) => {
    const s = await ort.InferenceSession.create(f, { logSeverityLevel: 3 });
    try {
      return (await s.run({ ids: new ort.Tensor('int64', ids, [4]) })).y.data as Float32Array;
    } finally {
      await s.release();
    }
  };
  const want = await run(file);
  // rank 4 is exact: the lookups equal the table's rows
  const out4 = path.join(work, 'lowrank-r4.onnx');
  await r99.write(out4);
  assert.ok(maxAbsDiff(want, await run(out4)) < 1e-4);
  const outFolded = path.join(work, 'lowrank-r4-folded.onnx');
  await folded.write(outFolded);
  assert.ok(maxAbsDiff(want, await run(outFolded)) < 1e-4);
  const foldedIr = await readModel(outFolded);
  assert.deepEqual(foldedIr.tensors.map((t) => [t.name, t.shape]).sort(), [['c', [12]], ['table_lowrank', [N, 4]], ['w', [12, 4]]]);
  assert.deepEqual(foldedIr.graph.nodes.map((n) => n.op), ['Gather', 'Gemm']);
  // the Gemm (alpha 0.5, bias, transB=1) at full rank keeps its outputs, with factors stored transposed
  const gemm = await factorizeModel(ir, { rank: 12, tensors: ['w'], minSaving: -10 });
  assert.deepEqual(gemm.factorized.map((f) => [f.tensor, f.rank]), [['w', 12]]);
  const out = path.join(work, 'lowrank-gemm.onnx');
  await gemm.write(out);
  const got = await run(out);
  assert.ok(maxAbsDiff(want, got) < 1e-4, `max abs diff ${maxAbsDiff(want, got)}`);
  const after = await readModel(out);
  const a = after.tensors.find((t) => t.name === 'w_lowrank_a')!;
  const bb = after.tensors.find((t) => t.name === 'w_lowrank_b')!;
  assert.deepEqual([a.shape, bb.shape], [[12, 32], [12, 12]]); // stored [r, in] and [out, r], read with transB=1
  const after4 = await readModel(out4);
  const factor = await readTensorFloat32(after4.tensors.find((t) => t.name === 'table_lowrank')!);
  assert.equal(factor.length, N * 4);

  // size: [2000, 32] float32 (256000 B) -> [2000, 4] + [4, 32] (32512 B)
  const small = await factorizeModel(ir, { energy: 0.99, tensors: ['table'] });
  const smallOut = path.join(work, 'lowrank-small.onnx');
  await small.write(smallOut);
  const sizeBefore = fs.statSync(file).size;
  const sizeAfter = fs.statSync(smallOut).size;
  console.log(`# low-rank table [2000, 32] at 99% energy: rank 4, file ${sizeBefore} -> ${sizeAfter} B`);
  assert.ok(sizeBefore - sizeAfter >= 256000 - 32512 - 200, `${sizeBefore} -> ${sizeAfter}`);
});

test('ONNX MatMul(W, x) with the kernel on the left: factors applied right to left, same outputs at full rank', async () => {
  const b = new OnnxGraphBuilder({ graphName: 'left', opset: 13 });
  b.input('x', 'float32', [8, 'batch']);
  b.initializer('w', 'float32', [6, 8], lowRankTable(6, 8, [2, 1.5, 1, 0.7, 0.5, 0.2], 13));
  b.node('MatMul', ['w', 'x'], ['y'], {}, { name: 'left_mm' });
  b.output('y', 'float32', [6, 'batch']);
  const file = path.join(work, 'left.onnx');
  await writeOnnxFile(file, b.toModelProto());
  const ir = await readModel(file);
  const o = await factorizeModel(ir, { tensors: ['w'], rank: 6, minSaving: -10 });
  assert.deepEqual(o.factorized.map((f) => [f.rank, o.changes[0].after.map((a) => a.shape)]), [[6, [[6, 8], [6, 6]]]]);
  const out = path.join(work, 'left-f.onnx');
  await o.write(out);
  const x = new ort.Tensor('float32', Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)), [8, 3]);
  const run = async (f: string) => {
    const s = await ort.InferenceSession.create(f, { logSeverityLevel: 3 });
    try {
      return (await s.run({ x })).y.data as Float32Array;
    } finally {
      await s.release();
    }
  };
  const d = maxAbsDiff(await run(file), await run(out));
  assert.ok(d < 1e-5, `max abs diff ${d}`);
});

test('factorize: skips what it cannot rewrite or gain from, and rejects bad settings', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const ir = await readModel(fx.models.neumf.onnxPath!);
  // [300, 8] at rank 7: 7 * 308 = 2156 parameters instead of 2400, a 10.2% saving
  const o = await factorizeModel(ir, { rank: 7, tensors: 'embeddings', fold: false });
  assert.deepEqual(o.factorized.map((f) => [f.rank, f.paramsBefore, f.paramsAfter]).slice(0, 1), [[7, 2400, 2156]]);
  // folded into mlp_dense_0/kernel [16, 16]: the table keeps 7 x 300, the kernel loses (8 - 7) x 16
  const of = await factorizeModel(ir, { rank: 7, tensors: 'embeddings' });
  assert.deepEqual(of.factorized.map((f) => [f.rank, f.paramsBefore, f.paramsAfter, f.foldedParams, f.foldedInto]).slice(0, 1), [[7, 2400, 2100, -16, ['mlp_dense_0/kernel']]]);
  await assert.rejects(factorizeModel(ir, { rank: 7, fold: 'yes' as unknown as boolean }), /fold must be true or false, got yes/);
  const o2 = await factorizeModel(ir, { rank: 7, tensors: 'embeddings', minSaving: 0.2 });
  assert.equal(o2.factorized.length, 0);
  assert.ok(o2.skipped.some((s) => s.tensor === 'user_mlp_embedding/embeddings' && /save only 10\.2%/.test(s.reason)), JSON.stringify(o2.skipped));
  await assert.rejects(factorizeModel(ir, { rank: 0 }), /rank must be a positive integer/);
  await assert.rejects(factorizeModel(ir, { energy: 1.2 }), /energy must be in/);
  await assert.rejects(factorizeModel(ir, { tensors: ['nope'] }), /no tensor named "nope"/);
  // a recipe's ["embeddings"] is a list of names; the message says how to write the keyword
  await assert.rejects(factorizeModel(ir, { tensors: ['embeddings'] }), /factorize: no tensor named "embeddings"; a list holds tensor names: for the keyword write "tensors": "embeddings", not \["embeddings"\]/);
  const none = await factorizeModel(ir, { rank: 8 });
  assert.equal(none.factorized.length, 0);
  assert.match(none.notes.join('\n'), /No tensor was factorized/);
});

test('TF.js Sequential: Embedding and a first Dense (which declares the input shape) factorized at full rank keep outputs', async () => {
  await initTfjs('cpu');
  const seqEmb = tf.sequential({
    layers: [
      tf.layers.embedding({ inputDim: 50, outputDim: 12, inputLength: 3, name: 'emb', embeddingsInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: 3 }) }),
      tf.layers.flatten({ name: 'flat' }),
      tf.layers.dense({ units: 8, activation: 'relu', name: 'hidden', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
      tf.layers.dense({ units: 1, name: 'out', kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }),
    ],
  });
  const seqDense = tf.sequential({
    layers: [
      tf.layers.dense({ units: 16, inputShape: [20], activation: 'tanh', name: 'first', kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }),
      tf.layers.dense({ units: 4, name: 'second', kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) }),
    ],
  });
  const cases: Array<{ model: tf.Sequential; x: () => tf.Tensor; tensors: string[] }> = [
    { model: seqEmb, x: () => tf.tensor2d([0, 1, 2, 49, 7, 30, 11, 11, 11], [3, 3], 'int32'), tensors: ['emb/embeddings', 'hidden/kernel'] },
    { model: seqDense, x: () => tf.tensor2d(Float32Array.from({ length: 60 }, (_, i) => Math.cos(i)), [3, 20]), tensors: ['first/kernel', 'second/kernel'] },
  ];
  for (const [i, c] of cases.entries()) {
    const file = path.join(work, `seq${i}`, 'model.json');
    await c.model.save(fileSystemSaveHandler(file));
    const want = tf.tidy(() => Float32Array.from((c.model.predict(c.x()) as tf.Tensor).dataSync()));
    const ir = await readModel(file);
    const o = await factorizeModel(ir, { rank: 1000, tensors: c.tensors, minSaving: -10 });
    assert.deepEqual(o.factorized.map((f) => f.tensor), c.tensors);
    const out = path.join(work, `seq${i}-f`, 'model.json');
    await o.write(out);
    const loaded = await tf.loadLayersModel(fileSystemLoadHandler(out));
    const got = tf.tidy(() => Float32Array.from((loaded.predict(c.x()) as tf.Tensor).dataSync()));
    assert.ok(maxAbsDiff(want, got) < 1e-4, `case ${i}: max abs diff ${maxAbsDiff(want, got)}`);
    assert.equal(loaded.layers.length, c.model.layers.length + 2);
    loaded.dispose();
  }
});
