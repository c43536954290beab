// gzip size of big files is estimated from 64 sampled blocks: close to the real gzip size on
// weight-like data, and said to be an estimate.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipFileSize, sampledGzipFileSize } from '../../src/core/eval/size.js';
import { createRng } from '../../src/core/samples/prng.js';

test('sampled gzip size is within 3% of the real one on float weights with a zero tail', async () => {
  const rng = createRng(5);
  const n = 6 * 1024 * 1024;
  const v = new Float32Array(n);
  // normal weights; a third of the rows zero, as pruned tables have
  for (let i = 0; i < n; i++) v[i] = Math.floor(i / 64) % 3 === 0 ? 0 : rng.normal() * 0.05;
  const file = join(mkdtempSync(join(tmpdir(), 'ps-size-')), 'w.bin');
  writeFileSync(file, new Uint8Array(v.buffer));
  const real = await gzipFileSize(file);
  const est = await sampledGzipFileSize(file, v.byteLength);
  assert.ok(Math.abs(est - real) / real < 0.03, `estimate ${est}, real ${real}`);
});
