// Limits of the TF.js reader that tfjs-read.test.ts does not cover: shards reached through a
// symlinked subfolder, a symlinked model folder, pipes, JSON nested beyond any real model, string
// lengths past the shard, and a 3 GB weight that stays on disk (memory measured).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, open, rm, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModelFileError } from '../../src/core/model/ir.js';
import { readModel } from '../../src/core/model/read-model.js';
import { readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { MAX_JSON_DEPTH } from '../../src/core/model/tfjs.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ps-limits-tfjs-'));
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

function manifest(paths: string[], weights: Array<{ name: string; shape: number[]; dtype: string }>): string {
  return JSON.stringify({ format: 'graph-model', weightsManifest: [{ paths, weights }] });
}

test('a shard reached through a symlinked subfolder that leaves the model folder is refused; a symlinked model folder reads', async () => {
  await withDir(async (dir) => {
    const outside = path.join(dir, 'outside');
    const model = path.join(dir, 'model');
    await mkdir(outside);
    await mkdir(model);
    await writeFile(path.join(outside, 'w.bin'), new Uint8Array(new Float32Array([5]).buffer));
    await symlink(outside, path.join(model, 'sub'));
    const bad = path.join(model, 'bad.json');
    await writeFile(bad, manifest(['sub/w.bin'], [{ name: 'x', shape: [1], dtype: 'float32' }]));
    await rejectsWith(readModel(bad), bad, /refusing weightsManifest path "sub\/w\.bin": it resolves to .*outside\/w\.bin, outside the model folder/);

    await writeFile(path.join(model, 'w.bin'), new Uint8Array(new Float32Array([3]).buffer));
    await writeFile(path.join(model, 'model.json'), manifest(['w.bin'], [{ name: 'x', shape: [1], dtype: 'float32' }]));
    await symlink(model, path.join(dir, 'model-link'));
    const ir = await readModel(path.join(dir, 'model-link', 'model.json'));
    assert.deepEqual(Array.from(await readTensorFloat32(ir.tensors[0])), [3]);
  });
});

test('pipes are refused, never opened: model.json and a shard', async () => {
  await withDir(async (dir) => {
    const fifo = path.join(dir, 'model.json');
    execFileSync('mkfifo', [fifo]);
    await rejectsWith(readModel(fifo), fifo, /not a regular file/);
    execFileSync('mkfifo', [path.join(dir, 'w.bin')]);
    const m = path.join(dir, 'm.json');
    await writeFile(m, manifest(['w.bin'], [{ name: 'x', shape: [1], dtype: 'float32' }]));
    await rejectsWith(readModel(m), m, /weight shard "w\.bin" is not a regular file/);
  });
});

test(`JSON nested deeper than ${MAX_JSON_DEPTH} levels is refused with one message, no stack overflow`, async () => {
  await withDir(async (dir) => {
    const ok = path.join(dir, 'ok.json');
    await writeFile(ok, JSON.stringify({ format: 'graph-model', modelTopology: { node: [], x: JSON.parse('['.repeat(500) + ']'.repeat(500)) }, weightsManifest: [] }));
    assert.equal((await readModel(ok)).tensors.length, 0);
    for (const depth of [MAX_JSON_DEPTH + 1, 100_000]) {
      const f = path.join(dir, `deep-${depth}.json`);
      const nested = '['.repeat(depth) + ']'.repeat(depth);
      await writeFile(f, `{"format":"layers-model","modelTopology":{"class_name":"Model","config":{"layers":[{"name":"a","class_name":"Dense","inbound_nodes":${nested}}]}},"weightsManifest":[]}`);
      await rejectsWith(readModel(f), f, new RegExp(`nested more than ${MAX_JSON_DEPTH} deep`));
    }
  });
});

test('a string weight whose length prefix runs past the shard is refused by name', async () => {
  await withDir(async (dir) => {
    const shard = new Uint8Array(16);
    new DataView(shard.buffer).setUint32(0, 0xffffffff, true);
    await writeFile(path.join(dir, 'w.bin'), shard);
    const m = path.join(dir, 'model.json');
    await writeFile(m, manifest(['w.bin'], [{ name: 'vocab', shape: [2], dtype: 'string' }]));
    const before = process.memoryUsage().arrayBuffers;
    await rejectsWith(readModel(m), m, /string weight "vocab": string 1 of 2 is 4294967295 bytes long, past the end of its shards/);
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
    // 0xfffffffc read as a signed int32 would be -4: four "strings" of -4 bytes taking no room
    await writeFile(path.join(dir, 'w.bin'), Uint8Array.from({ length: 16 }, (_, i) => (i % 4 === 0 ? 0xfc : 0xff)));
    await writeFile(m, manifest(['w.bin'], [{ name: 'vocab', shape: [4], dtype: 'string' }]));
    await rejectsWith(readModel(m), m, /string weight "vocab": string 1 of 4 is 4294967292 bytes long/);
  });
});

test('a 3 GB weight in a (sparse) 3 GB shard stays on disk: reading allocates nothing like its size', async () => {
  await withDir(async (dir) => {
    const n = 805306368; // float32: 3 GiB
    const fh = await open(path.join(dir, 'group1-shard1of1.bin'), 'w');
    await fh.truncate(n * 4);
    await fh.close();
    const m = path.join(dir, 'model.json');
    await writeFile(m, manifest(['group1-shard1of1.bin'], [{ name: 'table', shape: [n / 64, 64], dtype: 'float32' }]));
    const before = process.memoryUsage().arrayBuffers;
    const ir = await readModel(m);
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 64 * 1024 * 1024, `arrayBuffers grew by ${grown} bytes`);
    const src = ir.tensors[0].storage.source;
    assert.deepEqual(src.kind === 'file' ? [src.offset, src.length] : src.kind, [0, n * 4]);
    // one byte short of the manifest: refused before anything is read
    const fh2 = await open(path.join(dir, 'group1-shard1of1.bin'), 'r+');
    await fh2.truncate(n * 4 - 1);
    await fh2.close();
    await rejectsWith(readModel(m), m, /group1-shard1of1\.bin is 3221225471 bytes, the manifest needs 3221225472/);
  });
});
