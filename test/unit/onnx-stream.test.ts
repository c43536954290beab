// The ONNX writer with streamed tensor bytes: same files as with bytes in memory, external data
// stays external, `externalData: false` writes one file, and a bad stream leaves nothing behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelIR } from '../../src/core/model/ir.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { writeOnnxModel } from '../../src/core/model/onnx/write.js';
import { writeEditedOnnxModel } from '../../src/core/model/onnx/edit.js';
import { readTensorBytes, readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { TensorByteStream } from '../../src/core/model/tensor-stream.js';
import { scaleModelPair } from '../fixtures/scale-model.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ps-onnx-stream-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The bytes given in chunks of `size` (the last shorter). */
function chunked(bytes: Uint8Array, size: number): TensorByteStream {
  return {
    byteLength: bytes.length,
    async stream(sink) {
      for (let i = 0; i < bytes.length; i += size) await sink(bytes.slice(i, i + size));
    },
  };
}

const models = (dir: string): Promise<{ ext: ModelIR; inline: ModelIR }> => scaleModelPair(dir, { items: 700, users: 300, dim: 8, hidden: [8], seed: 3, chunkRows: 100 });

async function score(file: string): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  try {
    const n = 50;
    const user = BigInt64Array.from({ length: n }, (_, i) => BigInt(i * 5));
    const item = BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 13) % 700));
    const out = await s.run({ user: new ort.Tensor('int64', user, [n]), item: new ort.Tensor('int64', item, [n]) });
    return out.score.data as Float32Array;
  } finally {
    await s.release();
  }
}

const TABLE = 'item_embedding/embeddings';

test('externalData: false writes one file with every tensor inline, same values, same scores', async () => {
  await withDir(async (dir) => {
    const { ext, inline } = await models(dir);
    assert.equal(inline.files.length, 1);
    assert.ok(inline.tensors.every((t) => t.storage.source.kind !== 'file'));
    for (const t of ext.tensors) {
      const u = inline.tensors.find((x) => x.name === t.name)!;
      assert.deepEqual(await readTensorBytes(u), await readTensorBytes(t), t.name);
    }
    assert.deepEqual(await score(inline.path), await score(ext.path));
  });
});

test('streamed replacements give the same file as in-memory ones (patch, splice inline, splice external)', async () => {
  await withDir(async (dir) => {
    const { ext, inline } = await models(dir);
    for (const [label, ir] of [['inline', inline], ['external', ext]] as const) {
      const t = ir.tensors.find((x) => x.name === TABLE)!;
      const v = await readTensorFloat32(t);
      for (let i = 0; i < v.length; i++) v[i] *= 0.5;
      const same = new Uint8Array(v.buffer);
      const half = same.slice(0, (same.length / 2) | 0); // a new shape: the wire-level splice
      const cases = [
        { tag: 'same size', dtype: 'float32' as const, shape: t.shape, data: same },
        { tag: 'new shape', dtype: 'float32' as const, shape: [t.shape[0] / 2, t.shape[1]], data: half },
      ];
      for (const c of cases) {
        // same file name in two folders: external data locations name the file
        const a = join(dir, 'a', 'm.onnx');
        const b = join(dir, 'b', 'm.onnx');
        await mkdir(join(dir, 'a'), { recursive: true });
        await mkdir(join(dir, 'b'), { recursive: true });
        await writeOnnxModel(ir, a, { replace: new Map([[TABLE, { dtype: c.dtype, shape: c.shape, data: c.data }]]) });
        await writeOnnxModel(ir, b, { replace: new Map([[TABLE, { dtype: c.dtype, shape: c.shape, data: chunked(c.data, 999) }]]) });
        assert.deepEqual(await readFile(b), await readFile(a), `${label} ${c.tag}`);
        if (label === 'external') assert.deepEqual(await readFile(`${b}.data`), await readFile(`${a}.data`));
        await rm(a);
        await rm(b);
        await rm(`${a}.data`, { force: true });
        await rm(`${b}.data`, { force: true });
      }
    }
  });
});

test('external data stays external through value and structural writes; the outputs run in ORT', async () => {
  await withDir(async (dir) => {
    const { ext } = await models(dir);
    const t = ext.tensors.find((x) => x.name === TABLE)!;
    const bytes = await readTensorBytes(t);
    const out = join(dir, 'out', 'm.onnx');
    await mkdir(join(dir, 'out'));
    await writeEditedOnnxModel(ext, { setInitializers: [{ name: TABLE, dtype: 'float32', shape: t.shape, data: chunked(bytes, 4096) }] }, out);
    assert.deepEqual((await readdir(join(dir, 'out'))).sort(), ['m.onnx', 'm.onnx.data']);
    const back = await readOnnxModel(out);
    const bt = back.tensors.find((x) => x.name === TABLE)!;
    assert.equal(bt.storage.source.kind, 'file');
    assert.deepEqual(await readTensorBytes(bt), bytes);
    assert.deepEqual(await score(out), await score(ext.path));
  });
});

test('a stream that gives fewer bytes than it announced fails and leaves no file', async () => {
  await withDir(async (dir) => {
    const { inline, ext } = await models(dir);
    for (const ir of [inline, ext]) {
      const t = ir.tensors.find((x) => x.name === TABLE)!;
      const bytes = await readTensorBytes(t);
      const short: TensorByteStream = { byteLength: bytes.length, stream: (sink) => sink(bytes.subarray(0, 100)) };
      const out = join(dir, 'bad', 'm.onnx');
      await mkdir(join(dir, 'bad'), { recursive: true });
      await assert.rejects(writeOnnxModel(ir, out, { replace: new Map([[TABLE, { dtype: 'float32', shape: t.shape, data: short }]]) }), /announced/);
      assert.deepEqual(await readdir(join(dir, 'bad')), []);
    }
  });
});
