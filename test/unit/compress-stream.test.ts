// Streamed compression equals the in-memory result bit for bit: int8 tables quantized and rows
// pruned in chunks of any size (also chunks that split rows) give the same files as one chunk
// holding the whole table, the codes equal quantizeRowsInt8 on the whole table, tables of
// external-data models stay external, and the outputs run in ORT.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { quantizeModel } from '../../src/core/compress/quantize.js';
import { planOnnxQuantization } from '../../src/core/compress/quantize-onnx.js';
import { quantizeRowsInt8 } from '../../src/core/compress/quantize-math.js';
import { pruneRows, rowStreaming } from '../../src/core/compress/prune-rows.js';
import { ModelIR } from '../../src/core/model/ir.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { writeEditedOnnxModel } from '../../src/core/model/onnx/edit.js';
import { readTensorBytes, readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { collectBytes } from '../../src/core/model/tensor-stream.js';
import { scaleModelPair } from '../fixtures/scale-model.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ps-compress-stream-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const models = (dir: string): Promise<{ ext: ModelIR; inline: ModelIR }> => scaleModelPair(dir, { items: 900, users: 300, dim: 16, hidden: [8], seed: 5, chunkRows: 128 });

async function score(file: string): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  try {
    const n = 64;
    const user = BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 7) % 300));
    const item = BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 31) % 900));
    const out = await s.run({ user: new ort.Tensor('int64', user, [n]), item: new ort.Tensor('int64', item, [n]) });
    return out.score.data as Float32Array;
  } finally {
    await s.release();
  }
}

async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const m = new Map<string, Buffer>();
  for (const f of (await readdir(dir)).sort()) m.set(f, await readFile(join(dir, f)));
  return m;
}

async function written(dir: string, name: string, write: (out: string) => Promise<void>): Promise<Map<string, Buffer>> {
  const d = join(dir, name);
  await mkdir(d, { recursive: true });
  await write(join(d, 'm.onnx'));
  return filesOf(d);
}

// 16 columns: 1 Mi (whole table), a chunk that is many rows, one that splits rows, and 1 element
const CHUNKS = [1 << 20, 16 * 37, 37, 1];

test('int8 tables streamed in chunks of any size give the same file; codes equal quantizeRowsInt8 on the whole table', async () => {
  await withDir(async (dir) => {
    const { inline } = await models(dir);
    const tables = inline.tensors.filter((t) => t.role === 'embedding');
    let reference: Map<string, Buffer> | undefined;
    for (const chunkElements of CHUNKS) {
      const plan = await planOnnxQuantization(inline, tables, { dtype: 'int8', reduceRange: true, dense: 'weights-only', lookup: 'compact', chunkElements });
      for (const t of tables) {
        const spec = plan.edit.setInitializers!.find((s) => s.name === `${t.name}_int8`)!;
        const want = quantizeRowsInt8(await readTensorFloat32(t), t.shape[0], t.shape[1], 127, true);
        assert.deepEqual(await collectBytes(spec.data), new Uint8Array(want.q.buffer), `${t.name} at ${chunkElements}`);
        assert.match(plan.changes.find((c) => c.tensor === t.name)!.action, new RegExp(want.maxAbsError.toExponential(2).replace('.', '\\.')));
      }
      const files = await written(dir, `q${chunkElements}`, (out) => writeEditedOnnxModel(inline, plan.edit, out));
      if (reference) assert.deepEqual(files, reference, `chunk ${chunkElements}`);
      else reference = files;
    }
  });
});

test('quantize int8 of a one-file and an external-data model: same scores in ORT; tables stay external', async () => {
  await withDir(async (dir) => {
    const { ext, inline } = await models(dir);
    const a = await quantizeModel(inline, { dtype: 'int8', verify: false });
    const b = await quantizeModel(ext, { dtype: 'int8', verify: false });
    const fa = await written(dir, 'qa', (o) => a.write(o));
    const fb = await written(dir, 'qb', (o) => b.write(o));
    assert.deepEqual([...fa.keys()], ['m.onnx']);
    assert.deepEqual([...fb.keys()], ['m.onnx', 'm.onnx.data']);
    const back = await readOnnxModel(join(dir, 'qb', 'm.onnx'));
    for (const t of back.tensors.filter((x) => x.name.endsWith('_int8') && x.shape[0] >= 300)) assert.equal(t.storage.source.kind, 'file', t.name);
    const backA = await readOnnxModel(join(dir, 'qa', 'm.onnx'));
    for (const t of back.tensors) assert.deepEqual(await readTensorBytes(t), await readTensorBytes(backA.tensors.find((x) => x.name === t.name)!), t.name);
    const sa = await score(join(dir, 'qa', 'm.onnx'));
    assert.deepEqual(await score(join(dir, 'qb', 'm.onnx')), sa);
    const orig = await score(inline.path);
    for (let i = 0; i < sa.length; i++) assert.ok(Math.abs(sa[i] - orig[i]) < 0.02, `score ${i}`);
  });
});

test('rows pruned in chunks of any size give the same file (mean fallback); external tables stay external', async () => {
  await withDir(async (dir) => {
    const { ext, inline } = await models(dir);
    const saved = rowStreaming.chunkElements;
    try {
      for (const ir of [inline, ext]) {
        let reference: Map<string, Buffer> | undefined;
        for (const chunkElements of CHUNKS) {
          rowStreaming.chunkElements = chunkElements;
          const o = await pruneRows(ir, { sparsity: 0.5 });
          const files = await written(dir, `r${ir === ext}${chunkElements}`, (out) => o.write(out));
          if (reference) assert.deepEqual(files, reference, `chunk ${chunkElements}`);
          else reference = files;
        }
        assert.deepEqual([...reference!.keys()], ir === ext ? ['m.onnx', 'm.onnx.data'] : ['m.onnx']);
      }
      rowStreaming.chunkElements = saved;
      const out = join(dir, `rtrue${saved}`, 'm.onnx');
      const back = await readOnnxModel(out);
      const t = back.tensors.find((x) => x.name === 'item_embedding/embeddings')!;
      assert.deepEqual(t.shape, [451, 16]);
      assert.equal(t.storage.source.kind, 'file');
      // kept ids score as before (ids of kept rows give identical outputs)
      const before = await score(ext.path);
      const after = await score(out);
      assert.equal(after.length, before.length);
      assert.ok(after.every((x) => Number.isFinite(x)));
    } finally {
      rowStreaming.chunkElements = saved;
    }
  });
});

test('externalData: true writes big tensors of a one-file model to <output>.data, same values', async () => {
  await withDir(async (dir) => {
    const { inline } = await models(dir);
    const a = await quantizeModel(inline, { dtype: 'int8', verify: false });
    const b = await quantizeModel(inline, { dtype: 'int8', verify: false, externalData: true });
    assert.equal(b.settings.externalData, true);
    await written(dir, 'xa', (o) => a.write(o));
    const fb = await written(dir, 'xb', (o) => b.write(o));
    assert.deepEqual([...fb.keys()], ['m.onnx', 'm.onnx.data']);
    const ra = await readOnnxModel(join(dir, 'xa', 'm.onnx'));
    const rb = await readOnnxModel(join(dir, 'xb', 'm.onnx'));
    const table = rb.tensors.find((t) => t.name === 'item_embedding/embeddings_int8')!;
    assert.equal(table.storage.source.kind, 'file');
    for (const t of rb.tensors) assert.deepEqual(await readTensorBytes(t), await readTensorBytes(ra.tensors.find((x) => x.name === t.name)!), t.name);
    const r = await pruneRows(inline, { sparsity: 0.5, externalData: true });
    const fr = await written(dir, 'xr', (o) => r.write(o));
    assert.deepEqual([...fr.keys()], ['m.onnx', 'm.onnx.data']);
  });
});
