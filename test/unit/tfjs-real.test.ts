// Real TF.js converter outputs (face-api weights manifests, Human graph models, nsfwjs layers
// models). They are not in the repository: fetch them with the commands in
// notes/ (or: npm pack @vladmandic/face-api @vladmandic/human nsfwjs, extract, and convert nsfwjs's
// UMD-wrapped shards back to .bin), then point PRUNESCOPE_REAL_TFJS_DIR at the folder.
// Every model found must load, count its parameters right, dequantize exactly as
// tf.io.decodeWeights does, and survive a write -> read round trip byte for byte.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { readTfjsModel } from '../../src/core/model/tfjs.js';
import { writeTfjsModel } from '../../src/core/model/tfjs-write.js';
import { readTensorBytes, readTensorFloat32, tensorElementCount } from '../../src/core/model/tensor-data.js';

const root = process.env.PRUNESCOPE_REAL_TFJS_DIR;

async function findManifests(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await findManifests(p)));
    else if (e.name.endsWith('.json') && e.name !== 'package.json') {
      const text = await readFile(p, 'utf8');
      if (text.includes('"weightsManifest"') || /^\s*\[\s*\{\s*"(weights|paths)"/.test(text)) out.push(p);
    }
  }
  return out.sort();
}

test('real TF.js converter outputs load, dequantize like tf.io.decodeWeights and round-trip', { skip: root ? false : 'set PRUNESCOPE_REAL_TFJS_DIR to the folder of extracted real TF.js models to run this' }, async (t) => {
  await tf.setBackend('cpu');
  const manifests = await findManifests(root as string);
  assert.ok(manifests.length > 0, `no TF.js model.json or weights manifest under ${root}`);
  for (const file of manifests) {
    await t.test(path.relative(root as string, file), async () => {
      const ir = await readTfjsModel(file);
      const doc = JSON.parse(await readFile(file, 'utf8')) as unknown;
      const groups = (Array.isArray(doc) ? doc : (doc as { weightsManifest: unknown[] }).weightsManifest) as Array<{
        paths: string[];
        weights: Array<{ name: string; shape: number[]; dtype: string; quantization?: { dtype: string } }>;
      }>;
      const specs = groups.flatMap((g) => g.weights);
      assert.equal(ir.tensors.length, specs.length);
      const params = specs.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1), 0);
      assert.equal(ir.tensors.reduce((s, x) => s + tensorElementCount(x.shape), 0), params);

      // tf.io.decodeWeights over the same manifest and shard bytes, group by group
      const reference = new Map<string, tf.Tensor>();
      for (const g of groups) {
        const buffers = await Promise.all(g.paths.map(async (p) => {
          const b = await readFile(path.join(path.dirname(file), p));
          return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
        }));
        const decoded = tf.io.decodeWeights(buffers, g.weights as tf.io.WeightsManifestEntry[]);
        for (const [k, v] of Object.entries(decoded)) reference.set(k, v);
      }
      let maxDiff = 0;
      for (const x of ir.tensors) {
        const ref = reference.get(x.name);
        assert.ok(ref, `tf.io.decodeWeights gave no ${x.name}`);
        if (x.dtype === 'string') continue;
        const want = Float32Array.from(ref.dataSync() as ArrayLike<number>); // int32 compared as the float32 readTensorFloat32 gives
        const got = await readTensorFloat32(x);
        assert.equal(got.length, want.length, x.name);
        for (let i = 0; i < got.length; i++) {
          const d = Math.abs(got[i] - want[i]);
          if (d > maxDiff || Number.isNaN(d)) maxDiff = Number.isNaN(d) && !(Number.isNaN(got[i]) && Number.isNaN(want[i])) ? Infinity : Math.max(maxDiff, d || 0);
        }
      }
      for (const r of reference.values()) r.dispose();
      assert.equal(maxDiff, 0, `max abs diff against tf.io.decodeWeights in ${file}`);

      // kept on disk ('file' ranges, copies for weights across shards): the same stored bytes
      const onDisk = await readTfjsModel(file, { maxInMemoryBytes: 0 });
      for (let i = 0; i < ir.tensors.length; i++) {
        assert.deepEqual(await readTensorBytes(onDisk.tensors[i]), await readTensorBytes(ir.tensors[i]), ir.tensors[i].name);
      }

      // write -> read: same stored bytes, same quantization, same model.json apart from paths
      const dir = await mkdtemp(path.join(os.tmpdir(), 'prunescope-tfjs-real-'));
      try {
        const outFile = path.join(dir, 'model.json');
        await writeTfjsModel(ir, outFile);
        const back = await readTfjsModel(outFile);
        assert.equal(back.tensors.length, ir.tensors.length);
        for (let i = 0; i < ir.tensors.length; i++) {
          const a = ir.tensors[i];
          const b = back.tensors[i];
          assert.equal(b.name, a.name);
          assert.deepEqual(b.shape, a.shape);
          assert.equal(b.dtype, a.dtype);
          assert.deepEqual(b.storage.quantization, a.storage.quantization);
          assert.deepEqual(await readTensorBytes(b), await readTensorBytes(a), a.name);
        }
        assert.deepEqual(withoutPaths(back.native), withoutPaths(ir.native));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      const kinds = [...new Set(specs.map((w) => (w.quantization ? `${w.dtype}<-${w.quantization.dtype}` : w.dtype)))].join(', ');
      t.diagnostic(`${path.relative(root as string, file)}: ${ir.format}, ${ir.tensors.length} tensors, ${params} params, ${kinds}`);
    });
  }
});

function withoutPaths(doc: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(doc)) as unknown;
  const groups = Array.isArray(copy) ? copy : (copy as { weightsManifest?: unknown[] }).weightsManifest ?? [];
  for (const g of groups as Array<{ paths: unknown }>) g.paths = [];
  return copy;
}
