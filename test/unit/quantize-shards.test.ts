// int8 quantization in table shards: the model assembled from all N shard files is the one-process
// model byte for byte (inline and external data, any N), and the assembly refuses shards that are
// missing, repeated, of another model, made with other settings, or not shard files, naming them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quantizeModel, quantizeShard, type QuantizeSettings } from '../../src/core/compress/quantize.js';
import { readShardHeader, tablesOfShard } from '../../src/core/compress/quantize-shards.js';
import type { ModelIR } from '../../src/core/model/ir.js';
import { scaleModelPair } from '../fixtures/scale-model.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ps-quantize-shards-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const scaleModels = (dir: string): Promise<{ ext: ModelIR; inline: ModelIR }> => scaleModelPair(dir, { items: 900, users: 300, dim: 16, hidden: [8], seed: 7, chunkRows: 128 });

/** The files of a model written by `quantizeModel` at dir/name (the .onnx and any external data). */
async function written(ir: ModelIR, settings: QuantizeSettings, dir: string): Promise<Buffer[]> {
  await mkdir(dir, { recursive: true });
  const out = join(dir, 'q.onnx');
  const outcome = await quantizeModel(ir, { ...settings, verify: false });
  await outcome.write(out);
  const files = [await readFile(out)];
  const data = await readFile(`${out}.data`).catch(() => undefined);
  if (data) files.push(data);
  return files;
}

async function shards(ir: ModelIR, settings: QuantizeSettings, dir: string, n: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const f = join(dir, `s-${i + 1}-of-${n}.qshard`);
    await quantizeShard(ir, settings, { index: i, count: n }, f);
    files.push(f);
  }
  return files;
}

test('assembled from 1, 2 or 3 shards, the int8 model equals the one-process model byte for byte (inline and external data, compact and fast lookups)', async () => {
  await withDir(async (dir) => {
    const { ext, inline } = await scaleModels(dir);
    for (const [name, ir] of [['inline', inline], ['external', ext]] as const) {
      for (const lookup of ['compact', 'fast'] as const) {
        const settings: QuantizeSettings = { dtype: 'int8', lookup };
        const one = await written(ir, settings, join(dir, `${name}-${lookup}-one`));
        for (const n of [1, 2, 3]) {
          const sdir = join(dir, `${name}-${lookup}-${n}`);
          const files = await shards(ir, settings, sdir, n);
          const assembled = await written(ir, { ...settings, fromShards: files }, sdir);
          assert.equal(assembled.length, name === 'external' ? 2 : 1);
          assert.equal(assembled.length, one.length);
          assembled.forEach((b, i) => assert.ok(b.equals(one[i]), `${name} ${lookup}, ${n} shards: file ${i} differs`));
        }
      }
    }
  });
});

test('shards split the embedding tables by size and hold only their codes and scales', async () => {
  await withDir(async (dir) => {
    const { inline } = await scaleModels(dir);
    const files = await shards(inline, { dtype: 'int8' }, dir, 2);
    const headers = await Promise.all(files.map((f) => readShardHeader(f)));
    // items 900x16 and users 300x16: the larger table alone in shard 1, the smaller in shard 2
    assert.deepEqual(headers.map((h) => h.tables.map((t) => t.name)), [['item_embedding/embeddings'], ['user_embedding/embeddings']]);
    assert.deepEqual(headers[0].tables[0].codes, { offset: 0, length: 900 * 16 });
    const scaleBytes = headers[0].tables[0].scaleDtype === 'float16' ? 2 : 4;
    assert.deepEqual(headers[0].tables[0].scales, { offset: 900 * 16, length: 900 * scaleBytes });
    const sel = inline.tensors.filter((t) => t.role === 'embedding' || t.role === 'dense-kernel');
    const owners = [0, 1].map((index) => tablesOfShard(sel, { index, count: 2 }));
    // every 2-D tensor has exactly one owner
    for (const t of sel.filter((x) => x.shape.length === 2)) assert.equal(owners.filter((o) => o.has(t.name)).length, 1, t.name);
  });
});

test('the assembly refuses missing, repeated, foreign, mismatched and damaged shards, naming the file', async () => {
  await withDir(async (dir) => {
    const { inline, ext } = await scaleModels(dir);
    const files = await shards(inline, { dtype: 'int8' }, join(dir, 'a'), 3);
    const assemble = (ir: ModelIR, fromShards: string[], extra: Partial<QuantizeSettings> = {}) => quantizeModel(ir, { dtype: 'int8', verify: false, fromShards, ...extra });
    await assert.rejects(assemble(inline, files.slice(0, 2)), /shards 3\/3 are missing/);
    await assert.rejects(assemble(inline, [files[0], files[0], files[1]]), (e: Error) => e.message.includes(files[0]) && /is shard 1\/3 again/.test(e.message));
    const two = await shards(inline, { dtype: 'int8' }, join(dir, 'b'), 2);
    await assert.rejects(assemble(inline, [files[0], two[1]]), /is shard 2\/2, the others are of 3/);
    // the external-data copy is another file: its fingerprint differs
    await assert.rejects(assemble(ext, files), /a quantize shard of another model/);
    // made with float32 scales (fast lookups), assembled for float16 scales
    const fast = await shards(inline, { dtype: 'int8', lookup: 'fast' }, join(dir, 'c'), 1);
    await assert.rejects(assemble(inline, fast), /quantized with other settings/);
    const bogus = join(dir, 'bogus.qshard');
    await writeFile(bogus, 'not a shard at all');
    await assert.rejects(assemble(inline, [bogus]), (e: Error) => e.message.includes(bogus) && /is not a PruneScope quantize shard .*: no shard trailer at its end/.test(e.message));
    await assert.rejects(quantizeModel(inline, { dtype: 'float16', verify: false, fromShards: files }), /fromShards assembles ONNX int8 only/);
    await assert.rejects(quantizeShard(inline, { dtype: 'float16' }, { index: 0, count: 1 }, join(dir, 'x.qshard')), /shards are made for ONNX int8 only/);
  });
});
