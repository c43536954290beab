// Analysis in per-tensor shards: the assignment is balanced and complete, the merge of all shards
// equals the whole analysis, and incomplete, duplicated or foreign shards are refused by name.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readModel } from '../../src/core/model/read-model.js';
import { analyzeModel } from '../../src/core/analysis/analyze-model.js';
import { analyzeShard, asShardReport, assignShards, mergeShards, parseShard } from '../../src/core/analysis/shards.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const fixtureDir = join(tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);

test('parseShard: i/n, 1-based, checked', () => {
  assert.deepEqual(parseShard('1/4'), { index: 0, count: 4 });
  assert.deepEqual(parseShard(' 4/4 '), { index: 3, count: 4 });
  for (const bad of ['0/4', '5/4', '1/0', 'a/b', '1', '1/2/3']) assert.throws(() => parseShard(bad), /a shard is i\/n/);
});

test('shards: every tensor once, balanced, and the merge equals the whole analysis', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const ir = await readModel(fx.models.deepfm.onnxPath!);
  for (const n of [1, 2, 3, ir.tensors.length + 2]) {
    const a = assignShards(ir, n);
    assert.equal(a.length, n);
    assert.deepEqual(a.flat().sort((x, y) => x - y), ir.tensors.map((_, i) => i));
  }
  const whole = await analyzeModel(ir, { spectrum: true });
  const shards = [];
  for (let i = 0; i < 3; i++) shards.push({ file: `s${i}.json`, report: asShardReport(JSON.parse(JSON.stringify(await analyzeShard(ir, { index: i, count: 3 }))), `s${i}.json`) });
  const merged = await mergeShards(ir, shards);
  assert.deepEqual({ ...merged, generatedAt: '' }, { ...whole, generatedAt: '' });
  // missing, duplicated, mixed counts
  await assert.rejects(mergeShards(ir, shards.slice(0, 2)), /shard 3\/3 missing/);
  await assert.rejects(mergeShards(ir, [shards[0], shards[0], shards[1]]), /s0.json: .*is shard 1\/3 again \(also s0.json\)/);
  const other = { file: 'o.json', report: { ...shards[2].report, shard: { index: 2, count: 4 } } };
  await assert.rejects(mergeShards(ir, [shards[0], shards[1], other]), /o.json: .*the others are of 3/);
  assert.throws(() => asShardReport({ kind: 'x' }, 'x.json'), /x.json: .*not a PruneScope analysis shard/);
});

test('shards of another model are refused', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const a = await readModel(fx.models.neumf.onnxPath!);
  const b = await readModel(fx.models.deepfm.onnxPath!);
  const dir = mkdtempSync(join(tmpdir(), 'ps-shards-'));
  const copy = join(dir, 'copy.onnx');
  copyFileSync(fx.models.neumf.onnxPath!, copy);
  const s = await analyzeShard(a, { index: 0, count: 1 });
  await assert.rejects(mergeShards(b, [{ file: 'a.json', report: s }]), /a.json: .*a shard of another model/);
  // the same bytes under another path merge (workers may mount the model elsewhere)
  const merged = await mergeShards(await readModel(copy), [{ file: 'a.json', report: s }]);
  assert.equal(merged.tensors.length, a.tensors.length);
});
