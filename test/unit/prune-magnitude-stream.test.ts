// Magnitude pruning streams its ONNX output (each pruned tensor re-read chunk by chunk, never
// whole) and writes the same files as pruning in memory: the zeroed weights are exactly the
// floor(s * n) of smallest |w| with ties broken by position (tensor order, then element order),
// computed here independently by a sort; the files equal those the in-memory write path
// (writeFloatReplacements) makes from these expected values, for inline and external-data
// models, both scopes, chunks of any size (also chunks that split rows and tie runs), a table of
// repeated values (many ties at the threshold, NaNs), float16 storage and TF.js; the reported
// counts match; the outputs run in ORT.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  chooseTensors,
  FloatReplacement,
  magnitudeStreaming,
  pruneMagnitude,
  pruneMasks,
  PruneMagnitudeSettings,
  writeFloatReplacements,
} from '../../src/core/compress/prune-magnitude.js';
import { ModelIR } from '../../src/core/model/ir.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { writeOnnxModel } from '../../src/core/model/onnx/write.js';
import { readModel } from '../../src/core/model/read-model.js';
import { float32ToFloat16Bits, readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { fileSystemSaveHandler } from '../../src/core/model/tfjs-io.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { buildNeuMF } from '../../src/core/samples/models.js';
import { generateScaleModel } from '../fixtures/scale-model.js';

// one folder for the file's outputs, and the scale model (exactly-zero rows: ties at 0 for small
// sparsities) generated once, with external data and inline
let root = '';
let ext: ModelIR;
let inline: ModelIR;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ps-prune-mag-stream-'));
  ext = await readOnnxModel((await generateScaleModel(join(root, 'ext'), { items: 900, users: 300, dim: 16, hidden: [8], seed: 5, chunkRows: 128 })).onnxPath);
  await writeOnnxModel(ext, join(root, 'inline.onnx'), { externalData: false });
  inline = await readOnnxModel(join(root, 'inline.onnx'));
});
after(() => rm(root, { recursive: true, force: true }));

const LEVELS = [0, 0.25, -0.25, 0.5, -0.5, 1, -1];
/** Values from 7 levels (|w| in {0, 0.25, 0.5, 1}): every threshold is a long run of ties. */
function repeated(n: number, salt: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => LEVELS[(i * 7 + (i >> 3) + salt) % 7]);
}

/** Table [64, 6] of repeated values with a NaN, a kernel [6, 4] of repeated values, a bias. */
async function tiesModel(): Promise<ModelIR> {
  const b = new OnnxGraphBuilder({ graphName: 'ties' });
  const table = repeated(64 * 6, 0);
  table[17] = NaN;
  b.input('ids', 'int64', ['batch']);
  b.initializer('t/embeddings', 'float32', [64, 6], table);
  b.initializer('d/kernel', 'float32', [6, 4], repeated(24, 3));
  b.initializer('d/bias', 'float32', [4], Float32Array.from([0, 0.25, 0, 0]));
  b.node('Gather', ['t/embeddings', 'ids'], ['e'], { axis: 0 }, { name: 't/Gather' });
  b.node('MatMul', ['e', 'd/kernel'], ['m'], {}, { name: 'd/MatMul' });
  b.node('Add', ['m', 'd/bias'], ['y'], {}, { name: 'd/Add' });
  b.output('y', 'float32', ['batch', 4]);
  const file = join(root, 'ties.onnx');
  await writeOnnxFile(file, b.toModelProto());
  return readOnnxModel(file);
}

async function halfModel(): Promise<ModelIR> {
  const b = new OnnxGraphBuilder({ graphName: 'half' });
  b.input('ids', 'int64', ['batch']);
  b.initializer('h/embeddings', 'float16', [40, 4], Uint16Array.from(repeated(160, 1), float32ToFloat16Bits));
  b.node('Gather', ['h/embeddings', 'ids'], ['y'], { axis: 0 }, { name: 'h/Gather' });
  b.output('y', 'float16', ['batch', 4]);
  const file = join(root, 'half.onnx');
  await writeOnnxFile(file, b.toModelProto());
  return readOnnxModel(file);
}

/**
 * The chosen tensors' values once pruned, by a sort: per group (all chosen tensors for global
 * scope, each alone for layer scope), the floor(s * n) non-NaN values of smallest |w|, ties in
 * tensor order then element order, become 0.
 */
async function expectedPruned(ir: ModelIR, settings: PruneMagnitudeSettings): Promise<{ values: Map<string, Float32Array>; pruned: Map<string, number> }> {
  const chosen = chooseTensors(ir, settings.tensors);
  const groups = settings.scope === 'layer' ? chosen.map((t) => [t]) : [chosen];
  const values = new Map<string, Float32Array>();
  const pruned = new Map<string, number>();
  for (const group of groups) {
    const vs = await Promise.all(group.map((t) => readTensorFloat32(t)));
    const order: Array<{ a: number; t: number; i: number }> = [];
    vs.forEach((v, t) => v.forEach((x, i) => {
      if (!Number.isNaN(x)) order.push({ a: Math.abs(x), t, i });
    }));
    order.sort((p, q) => p.a - q.a || p.t - q.t || p.i - q.i);
    const k = Math.floor(settings.sparsity * order.length);
    group.forEach((t) => pruned.set(t.name, 0));
    for (const { t, i } of order.slice(0, k)) {
      vs[t][i] = 0;
      pruned.set(group[t].name, pruned.get(group[t].name)! + 1);
    }
    group.forEach((t, j) => values.set(t.name, vs[j]));
  }
  return { values, pruned };
}

/** Runs `write` on `<root>/<name>/<file>` and returns every file of that folder, by name. */
async function written(name: string, file: string, write: (out: string) => Promise<void>): Promise<Map<string, Buffer>> {
  const d = join(root, name);
  await mkdir(d, { recursive: true });
  await write(join(d, file));
  const names = (await readdir(d)).sort();
  return new Map(await Promise.all(names.map(async (f) => [f, await readFile(join(d, f))] as const)));
}

function zerosIn(v: Float32Array): number {
  return v.reduce((n, x) => n + (x === 0 ? 1 : 0), 0);
}

let runs = 0;

/**
 * Prunes `ir` with `settings` at each chunk size and checks: the files equal those the in-memory
 * path writes from the sorted expectation, the values read back are the expectation, and the
 * reported counts are those of the expectation. Returns the path of the last output.
 */
async function checkAgainstSort(ir: ModelIR, settings: PruneMagnitudeSettings, chunks: number[]): Promise<string> {
  const what = `${ir.path} ${JSON.stringify(settings)}`;
  const exp = await expectedPruned(ir, settings);
  const file = ir.format === 'onnx' ? 'm.onnx' : 'model.json';
  const repl = new Map<string, FloatReplacement>();
  for (const t of chooseTensors(ir, settings.tensors)) repl.set(t.name, { shape: t.shape.slice(), values: exp.values.get(t.name)! });
  const run = runs++;
  const want = await written(`want${run}`, file, (out) => writeFloatReplacements(ir, repl, out));
  let out = '';
  const saved = magnitudeStreaming.chunkElements;
  try {
    for (const chunk of chunks) {
      magnitudeStreaming.chunkElements = chunk;
      const o = await pruneMagnitude(ir, settings);
      const got = await written(`got${run}-${chunk}`, file, async (p) => {
        out = p;
        await o.write(p);
      });
      assert.deepEqual(got, want, `${what}, chunks of ${chunk}`);
      let total = 0;
      let zeros = 0;
      for (const [name, v] of exp.values) {
        const z = zerosIn(v);
        total += v.length;
        zeros += z;
        const action = o.changes.find((c) => c.tensor === name)!.action;
        assert.ok(action.startsWith(`pruned ${exp.pruned.get(name)} of ${v.length} weights (`) && action.endsWith(`; ${z} zeros now`), `${what}: ${action}`);
      }
      assert.match(o.notes[0], new RegExp(`: ${zeros} of ${total} chosen weights are zero`), what);
    }
  } finally {
    magnitudeStreaming.chunkElements = saved;
  }
  const back = await readModel(out);
  for (const [name, v] of exp.values) {
    assert.deepEqual(await readTensorFloat32(back.tensors.find((t) => t.name === name)!), v, `${what}: ${name}`);
  }
  return out;
}

/** Scores of the scale model for a few (user, item) pairs in ORT. */
async function scoreScale(file: string): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  const ids = (n: number): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from({ length: 16 }, (_, i) => BigInt((i * 37) % n)), [16]);
  const out = await s.run({ user: ids(300), item: ids(900) });
  await s.release();
  return out.score.data as Float32Array;
}

// whole tensors at once, chunks splitting rows of 16 and 6 values, and (small models) single elements
const CHUNKS = [1 << 20, 37, 1];
const SCALE_CHUNKS = [1 << 20, 37];

test('inline and external-data models, layer and global scope: the zeros of a sort by |w| (ties by position), same files as in memory, runs in ORT', async () => {
  for (const ir of [inline, ext]) {
    for (const scope of ['layer', 'global'] as const) {
      // 0.03: the threshold is 0, in the exactly-zero rows (ties)
      for (const sparsity of [0, 0.03, 0.5, 0.9]) {
        const out = await checkAgainstSort(ir, { sparsity, scope }, sparsity === 0.5 ? SCALE_CHUNKS : [CHUNKS[0]]);
        if (ir === ext) {
          assert.deepEqual((await readdir(join(out, '..'))).sort(), ['m.onnx', 'm.onnx.data']);
          const back = await readOnnxModel(out);
          assert.equal(back.tensors.find((t) => t.name === 'item_embedding/embeddings')!.storage.source.kind, 'file', 'the table stays external');
        }
        if (sparsity === 0.5) assert.ok((await scoreScale(out)).every((x) => Number.isFinite(x)), out);
      }
    }
  }
});

test('a table of repeated values: the threshold is a long run of ties, broken by position across tensors and chunks', async () => {
  const ir = await tiesModel();
  for (const scope of ['layer', 'global'] as const) {
    for (const sparsity of [0.1, 0.3, 0.5, 0.75, 1]) {
      const out = await checkAgainstSort(ir, { sparsity, scope }, CHUNKS);
      if (sparsity === 0.5) {
        const s = await ort.InferenceSession.create(out);
        const r = await s.run({ ids: new ort.Tensor('int64', BigInt64Array.from([3n, 40n]), [2]) });
        assert.deepEqual(r.y.dims, [2, 4]);
        await s.release();
      }
    }
  }
  // the threshold falls inside the run of |w| = 0.25 (and 0.5): the ties pruned are the first ones
  const m = await pruneMasks(ir, { sparsity: 0.3 });
  assert.equal(m.threshold, 0.25);
});

test('float16 storage and TF.js: the same files as the in-memory path', async () => {
  const half = await halfModel();
  for (const scope of ['layer', 'global'] as const) await checkAgainstSort(half, { sparsity: 0.3, scope }, CHUNKS);
  await initTfjs('cpu');
  const src = join(root, 'tfjs', 'model.json');
  await buildNeuMF({ users: 30, items: 40, gmfDim: 4, mlpDim: 4, hidden: [8], seed: 6 }).save(fileSystemSaveHandler(src));
  const tfjs = await readModel(src);
  for (const scope of ['layer', 'global'] as const) await checkAgainstSort(tfjs, { sparsity: 0.5, scope }, [CHUNKS[0], 7]);
});

test('column granularity streams too: the same files at any chunk size, whole columns zeroed', async () => {
  const saved = magnitudeStreaming.chunkElements;
  try {
    let reference: Map<string, Buffer> | undefined;
    let referenceNotes: string[] = [];
    for (const chunk of SCALE_CHUNKS) {
      magnitudeStreaming.chunkElements = chunk;
      const o = await pruneMagnitude(ext, { sparsity: 0.5, granularity: 'column' });
      const files = await written(`c${chunk}`, 'm.onnx', (out) => o.write(out));
      if (reference) {
        assert.deepEqual(files, reference, `chunk ${chunk}`);
        assert.deepEqual(o.notes, referenceNotes);
      } else {
        reference = files;
        referenceNotes = o.notes;
      }
    }
    magnitudeStreaming.chunkElements = saved;
    const back = await readOnnxModel(join(root, `c${SCALE_CHUNKS[0]}`, 'm.onnx'));
    const item = await readTensorFloat32(back.tensors.find((t) => t.name === 'item_embedding/embeddings')!);
    const deadColumns = Array.from({ length: 16 }, (_, j) => item.every((x, i) => i % 16 !== j || x === 0)).filter(Boolean).length;
    assert.equal(deadColumns, 8);
  } finally {
    magnitudeStreaming.chunkElements = saved;
  }
});
