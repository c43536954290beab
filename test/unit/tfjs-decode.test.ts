// The reader against TF.js itself: random manifests (every dtype and quantization TF.js knows),
// random bytes, random shard cuts; every value must equal what tf.io.decodeWeights gives, both
// when shards are read into memory and when tensors stay on disk, and after a write round trip.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { readTfjsModel } from '../../src/core/model/tfjs.js';
import { writeTfjsModel } from '../../src/core/model/tfjs-write.js';
import { readTensorBytes, readTensorFloat32 } from '../../src/core/model/tensor-data.js';

type Kind = 'float32' | 'int32' | 'bool' | 'uint8' | 'uint16' | 'float16' | 'int32-uint8' | 'string';

interface Spec {
  kind: Kind;
  shape: number[];
  scale: number;
  min: number;
  originalDtype: boolean;
}

const specArb: fc.Arbitrary<Spec> = fc.record({
  kind: fc.constantFrom<Kind>('float32', 'int32', 'bool', 'uint8', 'uint16', 'float16', 'int32-uint8', 'string'),
  shape: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 3 }),
  scale: fc.double({ min: 1e-4, max: 10, noNaN: true }),
  min: fc.double({ min: -100, max: 100, noNaN: true }),
  originalDtype: fc.boolean(),
});

function entryOf(s: Spec, i: number): Record<string, unknown> {
  const name = `layer${i}/w`;
  const q = (dtype: string, logical: string): Record<string, unknown> => ({
    dtype,
    ...(dtype === 'float16' ? {} : { scale: s.scale, min: s.min }),
    ...(s.originalDtype ? { original_dtype: logical } : {}),
  });
  switch (s.kind) {
    case 'uint8':
    case 'uint16':
    case 'float16':
      return { name, shape: s.shape, dtype: 'float32', quantization: q(s.kind, 'float32') };
    case 'int32-uint8':
      return { name, shape: s.shape, dtype: 'int32', quantization: q('uint8', 'int32') };
    default:
      return { name, shape: s.shape, dtype: s.kind };
  }
}

function bytesOf(s: Spec, rnd: () => number): Uint8Array {
  const n = s.shape.reduce((a, b) => a * b, 1);
  if (s.kind === 'string') {
    const parts: number[] = [];
    for (let i = 0; i < n; i++) {
      const len = Math.floor(rnd() * 5);
      parts.push(len, 0, 0, 0);
      for (let j = 0; j < len; j++) parts.push(97 + Math.floor(rnd() * 26));
    }
    return new Uint8Array(parts);
  }
  const size = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, 'int32-uint8': 1 }[s.kind];
  const out = new Uint8Array(n * size);
  if (s.kind === 'float32') {
    // finite floats only: NaN payloads make equality checks meaningless
    new Float32Array(out.buffer).set(Array.from({ length: n }, () => (rnd() - 0.5) * 1e3));
  } else if (s.kind === 'float16') {
    // any half except NaNs (exponent all ones with a fraction)
    new Uint16Array(out.buffer).set(Array.from({ length: n }, () => {
      const h = Math.floor(rnd() * 65536);
      return (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0 ? h & 0xfc00 : h;
    }));
  } else if (s.kind === 'bool') {
    for (let i = 0; i < n; i++) out[i] = rnd() < 0.5 ? 0 : 1;
  } else {
    for (let i = 0; i < out.length; i++) out[i] = Math.floor(rnd() * 256);
  }
  return out;
}

function cat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

test('random manifests and shard cuts decode exactly like tf.io.decodeWeights', async () => {
  await tf.setBackend('cpu');
  await fc.assert(
    fc.asyncProperty(
      fc.array(specArb, { minLength: 1, maxLength: 6 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 0, maxLength: 3 }),
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      async (specs, cutFractions, seed) => {
        let state = seed;
        const rnd = (): number => {
          state = (state * 48271) % 2147483647;
          return state / 2147483647;
        };
        const weights = specs.map(entryOf);
        const data = cat(specs.map((s) => bytesOf(s, rnd)));
        const cuts = [...new Set(cutFractions.map((f) => Math.floor(f * data.byteLength)))].sort((a, b) => a - b);
        const bounds = [0, ...cuts, data.byteLength];
        const dir = await mkdtemp(path.join(os.tmpdir(), 'prunescope-tfjs-fc-'));
        try {
          const paths: string[] = [];
          for (let i = 0; i + 1 < bounds.length; i++) {
            const p = `group1-shard${i + 1}of${bounds.length - 1}`;
            await writeFile(path.join(dir, p), data.subarray(bounds[i], bounds[i + 1]));
            paths.push(p);
          }
          const file = path.join(dir, 'model.json');
          await writeFile(file, JSON.stringify({ format: 'graph-model', modelTopology: { node: [] }, weightsManifest: [{ paths, weights }] }));
          const ref = tf.io.decodeWeights(data.slice().buffer as ArrayBuffer, weights as unknown as tf.io.WeightsManifestEntry[]);
          const inMemory = await readTfjsModel(file);
          const onDisk = await readTfjsModel(file, { maxInMemoryBytes: 0 });
          await writeTfjsModel(inMemory, path.join(dir, 'out', 'model.json'), { shardBytes: 1 + (seed % 13) });
          const rewritten = await readTfjsModel(path.join(dir, 'out', 'model.json'));
          for (const ir of [inMemory, onDisk, rewritten]) {
            assert.equal(ir.tensors.length, specs.length);
            for (const [i, t] of ir.tensors.entries()) {
              const r = ref[t.name];
              if (specs[i].kind === 'string') {
                const strs = (r.dataSync() as unknown as Uint8Array[]).map((b) => Buffer.from(b).toString('latin1'));
                const bytes = await readTensorBytes(t);
                const mine: string[] = [];
                for (let o = 0; o < bytes.length; ) {
                  const n = bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24);
                  mine.push(Buffer.from(bytes.subarray(o + 4, o + 4 + n)).toString('latin1'));
                  o += 4 + n;
                }
                assert.deepEqual(mine, strs);
              } else {
                // readTensorFloat32 gives float32: large int32 values round the same way Float32Array.from does
                // (-0 and 0 count as equal: a rounded int32 of -0.00001 is -0 in a Float32Array, 0 in TF.js's Int32Array)
                const plain = (a: ArrayLike<number>): number[] => Array.from(a, (x) => (x === 0 ? 0 : x));
                assert.deepEqual(plain(await readTensorFloat32(t)), plain(Float32Array.from(r.dataSync() as ArrayLike<number>)), `${t.name} ${specs[i].kind}`);
              }
            }
          }
          tf.dispose(Object.values(ref));
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    ),
    { numRuns: 150 },
  );
});
