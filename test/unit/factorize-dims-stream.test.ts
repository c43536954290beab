// Factorization and dims pruning of big tables stream them: the narrower factor table E V_r and
// the column-pruned tables are produced a chunk of rows at a time while the writer writes them.
// Chunks of any size give the file that one chunk holding the whole table gives (dims: byte for
// byte; factorize: byte for byte when the chunks hold a multiple of 4 rows, as the Gram sums rows
// four at a time, else the same rank and factors within 1e-5), for one-file and external-data
// ONNX models and for TF.js, and the outputs run in ORT.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { factorizeModel, tableStreaming } from '../../src/core/compress/factorize.js';
import { pruneDims } from '../../src/core/compress/prune-dims.js';
import { pruneNeurons, structuredStreaming } from '../../src/core/compress/prune-neurons.js';
import type { CompressionOutcome } from '../../src/core/compress/types.js';
import type { ModelIR } from '../../src/core/model/ir.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { writeOnnxModel } from '../../src/core/model/onnx/write.js';
import { readModel } from '../../src/core/model/read-model.js';
import { readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { fileSystemSaveHandler } from '../../src/core/model/tfjs-io.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { buildNeuMF } from '../../src/core/samples/models.js';
import { generateScaleModel } from '../fixtures/scale-model.js';

const DIM = 16;
const USERS = 300;
const ITEMS = 900;

/** A fresh folder for `fn`, removed after. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ps-factorize-dims-stream-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The scale fixture with its tables in external data, and the same model in one file. */
async function scaleModels(dir: string): Promise<Array<{ label: string; ir: ModelIR }>> {
  const gen = await generateScaleModel(join(dir, 'external'), { items: ITEMS, users: USERS, dim: DIM, hidden: [8], seed: 11, chunkRows: 100 });
  const external = await readOnnxModel(gen.onnxPath);
  const oneFile = join(dir, 'one-file.onnx');
  await writeOnnxModel(external, oneFile, { externalData: false });
  return [
    { label: 'one file', ir: await readOnnxModel(oneFile) },
    { label: 'external data', ir: external },
  ];
}

/** Writes an outcome into folder `name` of `dir`; returns the path written and every file's bytes by name. */
async function writeOut(dir: string, name: string, outcome: CompressionOutcome, file = 'm.onnx'): Promise<{ out: string; files: Map<string, Buffer> }> {
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  const out = join(folder, file);
  await outcome.write(out);
  const files = new Map<string, Buffer>();
  for (const f of (await readdir(folder)).sort()) files.set(f, await readFile(join(folder, f)));
  return { out, files };
}

/** ORT's scores of 50 (user, item) pairs. */
async function ortScores(file: string): Promise<Float32Array> {
  const ids = (count: number, step: number) => new ort.Tensor('int64', BigInt64Array.from({ length: 50 }, (_, i) => BigInt((i * step) % count)), [50]);
  const feeds = { user: ids(USERS, 13), item: ids(ITEMS, 17) };
  const session = await ort.InferenceSession.create(file);
  try {
    return Float32Array.from((await session.run(feeds)).score.data as Float32Array);
  } finally {
    await session.release();
  }
}

/** Runs fn with the streaming knobs set, restoring them after. */
async function withKnobs<T>(knobs: { table?: number; minBytes?: number; structured?: number }, fn: () => Promise<T>): Promise<T> {
  const saved = { table: tableStreaming.chunkElements, minBytes: structuredStreaming.minBytes, structured: structuredStreaming.chunkElements };
  tableStreaming.chunkElements = knobs.table ?? saved.table;
  structuredStreaming.minBytes = knobs.minBytes ?? saved.minBytes;
  structuredStreaming.chunkElements = knobs.structured ?? saved.structured;
  try {
    return await fn();
  } finally {
    tableStreaming.chunkElements = saved.table;
    structuredStreaming.minBytes = saved.minBytes;
    structuredStreaming.chunkElements = saved.structured;
  }
}

/** E' P [N, d] of the factors a factorized model holds for `table`, in float64. */
async function reconstruction(ir: ModelIR, table: string): Promise<Float64Array> {
  const e = ir.tensors.find((t) => t.name === `${table}_lowrank`)!;
  const p = ir.tensors.find((t) => t.name === `${table}_proj`)!;
  const [n, r] = e.shape;
  const d = p.shape[1];
  const ev = await readTensorFloat32(e);
  const pv = await readTensorFloat32(p);
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) for (let k = 0; k < d; k++) out[i * d + k] += ev[i * r + j] * pv[j * d + k];
  return out;
}

/** |a - b|_F / |b|_F */
function relativeDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

const TABLES = ['user_embedding/embeddings', 'item_embedding/embeddings'];

test('factorize: the E V_r table streamed in chunks of any size gives the whole-table file; errors as reported; runs in ORT', async () => {
  await inTempDir(async (dir) => {
    for (const { label, ir } of await scaleModels(dir)) {
      const run = (chunkElements: number) => withKnobs({ table: chunkElements }, () => factorizeModel(ir, { energy: 0.9, tensors: 'embeddings' }));
      const whole = await run(1 << 20);
      assert.deepEqual(whole.factorized.map((f) => f.method), ['streaming-gram-eigen', 'streaming-gram-eigen'], label);
      const ref = await writeOut(dir, `${label}-whole`, whole);
      assert.deepEqual([...ref.files.keys()], label === 'external data' ? ['m.onnx', 'm.onnx.data'] : ['m.onnx'], label);
      const back = await readOnnxModel(ref.out);
      for (const name of TABLES) {
        const f = whole.factorized.find((x) => x.tensor === name)!;
        assert.ok(f.rank < DIM, `${label} ${name} rank ${f.rank}`);
        const e = back.tensors.find((t) => t.name === `${name}_lowrank`)!;
        assert.deepEqual(e.shape, [name.startsWith('user') ? USERS : ITEMS, f.rank]);
        if (label === 'external data') assert.equal(e.storage.source.kind, 'file', `${name}_lowrank stays external`);
        // the error reported from the Gram is the error of the stored (float32) factors
        const orig = await readTensorFloat32(ir.tensors.find((t) => t.name === name)!);
        const err = relativeDistance(await reconstruction(back, name), orig);
        assert.ok(Math.abs(err - f.relativeError) < 1e-4, `${label} ${name}: measured ${err}, reported ${f.relativeError}`);
      }

      // chunks of 64 and 4 rows: the Gram sums the same rows in the same fours: same bytes
      for (const rows of [64, 4]) {
        const o = await run(rows * DIM);
        const got = await writeOut(dir, `${label}-${rows}`, o);
        assert.deepEqual(got.files, ref.files, `${label}: chunks of ${rows} rows`);
        assert.deepEqual(o.factorized.map((f) => f.rank), whole.factorized.map((f) => f.rank));
        for (let i = 0; i < o.factorized.length; i++) assert.ok(Math.abs(o.factorized[i].energyKept - whole.factorized[i].energyKept) < 1e-12);
      }
      // chunks of 2 rows and of 1 row (37 values and 1 value): Gram rounding differs, factors agree
      for (const chunkElements of [37, 1]) {
        const o = await run(chunkElements);
        const got = await writeOut(dir, `${label}-c${chunkElements}`, o);
        assert.deepEqual(o.factorized.map((f) => f.rank), whole.factorized.map((f) => f.rank), `${label}: chunks of ${chunkElements}`);
        const gotIr = await readOnnxModel(got.out);
        for (const name of TABLES) {
          const d = relativeDistance(await reconstruction(gotIr, name), await reconstruction(back, name));
          assert.ok(d < 1e-5, `${label} ${name} chunks of ${chunkElements}: reconstructions differ by ${d}`);
        }
      }

      const before = await ortScores(ir.path);
      const after = await ortScores(ref.out);
      assert.equal(after.length, before.length);
      let worst = 0;
      for (let i = 0; i < after.length; i++) {
        assert.ok(Number.isFinite(after[i]), `${label} score ${i}`);
        worst = Math.max(worst, Math.abs(after[i] - before[i]));
      }
      assert.ok(worst < 0.1, `${label}: scores moved by up to ${worst}`);
    }
  });
});

test('dims (and neurons by l2xnext): tensors pruned in row chunks of any size give the in-memory file byte for byte; runs in ORT', async () => {
  await inTempDir(async (dir) => {
    for (const { label, ir } of await scaleModels(dir)) {
      const inMemory = await withKnobs({ minBytes: Infinity }, () => pruneDims(ir, { sparsity: 0.5 }));
      const ref = await writeOut(dir, `${label}-dims-memory`, inMemory);
      assert.deepEqual([...ref.files.keys()], label === 'external data' ? ['m.onnx', 'm.onnx.data'] : ['m.onnx'], label);
      // 1 Mi values (whole tensors), 37 rows, 2 rows (a chunk that is not whole rows is rounded to them), 1 row
      for (const chunkElements of [1 << 20, DIM * 37, 37, 1]) {
        // pruned and written at this chunk size
        const { o, got } = await withKnobs({ minBytes: 0, structured: chunkElements }, async () => {
          const pruned = await pruneDims(ir, { sparsity: 0.5 });
          return { o: pruned, got: await writeOut(dir, `${label}-dims-${chunkElements}`, pruned) };
        });
        assert.deepEqual(o.changes, inMemory.changes, `${label}: chunks of ${chunkElements}`);
        assert.deepEqual(got.files, ref.files, `${label}: chunks of ${chunkElements}`);
        assert.deepEqual(o.notes, inMemory.notes);
      }
      // neurons by incoming x outgoing norm: row slices (axis 0) of the next kernel, streamed too
      const neuronsRef = await writeOut(dir, `${label}-neurons-memory`, await withKnobs({ minBytes: Infinity }, () => pruneNeurons(ir, { keep: 0.5, importance: 'l2xnext' })));
      for (const chunkElements of [5, 1]) {
        const got = await withKnobs({ minBytes: 0, structured: chunkElements }, async () =>
          writeOut(dir, `${label}-neurons-${chunkElements}`, await pruneNeurons(ir, { keep: 0.5, importance: 'l2xnext' })));
        assert.deepEqual(got.files, neuronsRef.files, `${label} neurons: chunks of ${chunkElements}`);
      }
      const back = await readOnnxModel(ref.out);
      for (const name of TABLES) {
        const t = back.tensors.find((x) => x.name === name)!;
        assert.deepEqual(t.shape, [name.startsWith('user') ? USERS : ITEMS, DIM / 2]);
        if (label === 'external data') assert.equal(t.storage.source.kind, 'file', `${name} stays external`);
      }
      const scores = await ortScores(ref.out);
      assert.equal(scores.length, 50);
      assert.ok(scores.every((x) => Number.isFinite(x) && x > 0 && x < 1), label);
    }
  });
});

test('TF.js: streamed importance (dims) and a collected streamed factor table (factorize) give the whole-table files', async () => {
  await initTfjs('cpu');
  await inTempDir(async (dir) => {
    const model = buildNeuMF({ users: 40, items: 60, gmfDim: 8, mlpDim: 8, hidden: [16, 8], seed: 4 });
    const src = join(dir, 'src', 'model.json');
    await model.save(fileSystemSaveHandler(src));
    model.dispose();
    const ir = await readModel(src);
    const dimsRef = await writeOut(dir, 'dims-memory', await withKnobs({ minBytes: Infinity }, () => pruneDims(ir, { keep: 0.5 })), 'model.json');
    const dims = await withKnobs({ minBytes: 0, structured: 3 }, async () => writeOut(dir, 'dims-stream', await pruneDims(ir, { keep: 0.5 }), 'model.json'));
    assert.deepEqual(dims.files, dimsRef.files);
    const fac = (chunkElements: number) => withKnobs({ table: chunkElements }, () => factorizeModel(ir, { rank: 3, tensors: 'embeddings' }));
    const facRef = await writeOut(dir, 'fac-whole', await fac(1 << 20), 'model.json');
    const facOut = await fac(8 * 4);
    assert.ok(facOut.factorized.length >= 2 && facOut.factorized.every((f) => f.method === 'streaming-gram-eigen'));
    assert.deepEqual((await writeOut(dir, 'fac-stream', facOut, 'model.json')).files, facRef.files);
  });
});
