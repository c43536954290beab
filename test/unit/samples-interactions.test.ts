import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateInteractions, writeInteractionsCsv } from '../../src/core/samples/interactions.js';
import { createRng, mulberry32 } from '../../src/core/samples/prng.js';

test('mulberry32 gives the same stream for the same seed', () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  const xs = Array.from({ length: 5 }, () => a());
  assert.deepEqual(xs, Array.from({ length: 5 }, () => b()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.notDeepEqual(xs, Array.from({ length: 5 }, mulberry32(43)));
  const r = createRng(1);
  const ints = Array.from({ length: 1000 }, () => r.int(7));
  assert.deepEqual([...new Set(ints)].sort(), [0, 1, 2, 3, 4, 5, 6]);
});

const config = { users: 60, items: 200, meanPositivesPerUser: 10, candidateNegatives: 49, seed: 5 };

test('the generator is deterministic for a seed and differs across seeds', () => {
  const a = generateInteractions(config);
  const b = generateInteractions(config);
  assert.deepEqual(a.train, b.train);
  assert.deepEqual(a.candidates, b.candidates);
  const c = generateInteractions({ ...config, seed: 6 });
  assert.notDeepEqual(a.train.item, c.train.item);
});

test('planted structure: cold items are in no training row, the popularity has a long tail', () => {
  const d = generateInteractions(config);
  assert.equal(d.coldItems.length, Math.floor(200 * 0.3));
  const inTrain = new Set(d.train.item);
  for (const it of d.coldItems) assert.ok(!inTrain.has(it), `cold item ${it} is in training`);
  // positives concentrate on a few items: the top 10% of shown items take far more than 10%
  const counts = new Map<number, number>();
  let positives = 0;
  d.train.label.forEach((l, i) => {
    if (l === 1) {
      positives++;
      counts.set(d.train.item[i], (counts.get(d.train.item[i]) ?? 0) + 1);
    }
  });
  const sorted = [...counts.values()].sort((x, y) => y - x);
  const top = sorted.slice(0, 14).reduce((x, y) => x + y, 0);
  assert.ok(top / positives > 0.25, `top 10% of shown items hold ${top / positives} of positives`);
  // 4 negatives per training positive
  assert.equal(d.train.label.length, positives * 5);
});

test('leave-one-out candidates: one held-out positive first, then negatives the user never saw', () => {
  const d = generateInteractions(config);
  assert.equal(d.candidatesPerUser, 50);
  assert.equal(d.candidates.user.length, 60 * 50);
  const trainPos = new Map<number, Set<number>>();
  d.train.label.forEach((l, i) => {
    if (l === 1) {
      const s = trainPos.get(d.train.user[i]) ?? new Set<number>();
      s.add(d.train.item[i]);
      trainPos.set(d.train.user[i], s);
    }
  });
  for (let u = 0; u < 60; u++) {
    const base = u * 50;
    assert.equal(d.candidates.user[base], u);
    assert.equal(d.candidates.label[base], 1);
    const held = d.candidates.item[base];
    assert.ok(!trainPos.get(u)!.has(held), 'held-out item is not in training');
    // the held-out positive is the user's latest
    for (let i = 0; i < d.train.user.length; i++) {
      if (d.train.user[i] === u && d.train.label[i] === 1) assert.ok(d.train.timestamp[i] <= d.candidates.timestamp[base]);
    }
    const negs = new Set<number>();
    for (let j = 1; j < 50; j++) {
      assert.equal(d.candidates.label[base + j], 0);
      const it = d.candidates.item[base + j];
      assert.ok(!trainPos.get(u)!.has(it) && it !== held);
      negs.add(it);
    }
    assert.equal(negs.size, 49, 'negatives are distinct');
  }
});

test('DeepFM fields: informative ones follow user/item, useless ones do not', () => {
  const d = generateInteractions({ ...config, extraFields: true });
  assert.deepEqual(d.fields.map((f) => [f.name, f.useless]), [
    ['user', false], ['item', false], ['item_category', false], ['user_segment', false], ['noise_a', true], ['noise_b', true],
  ]);
  const F = 6;
  const fv = d.train.fields!;
  const categoryOf = new Map<number, number>();
  const noiseOf = new Map<number, Set<number>>();
  for (let i = 0; i < d.train.user.length; i++) {
    assert.equal(fv[i * F], d.train.user[i]);
    assert.equal(fv[i * F + 1], d.train.item[i]);
    const it = d.train.item[i];
    if (categoryOf.has(it)) assert.equal(fv[i * F + 2], categoryOf.get(it), 'category is a function of the item');
    categoryOf.set(it, fv[i * F + 2]);
    const s = noiseOf.get(it) ?? new Set<number>();
    s.add(fv[i * F + 4]);
    noiseOf.set(it, s);
    for (let f = 0; f < F; f++) assert.ok(fv[i * F + f] >= 0 && fv[i * F + f] < d.fields[f].vocab);
  }
  // the noise field takes many values for the same item
  const most = Math.max(...[...noiseOf.values()].map((s) => s.size));
  assert.ok(most > 10);
});

test('CSV: header and rows, extra field columns after the timestamp', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-csv-'));
  const file = path.join(dir, 'x.csv');
  await writeInteractionsCsv(file, {
    user: Int32Array.from([0, 1]),
    item: Int32Array.from([5, 6]),
    label: Float32Array.from([1, 0]),
    timestamp: Float64Array.from([1600000000, 1600000100]),
  });
  assert.equal(fs.readFileSync(file, 'utf8'), 'user,item,label,timestamp\n0,5,1,1600000000\n1,6,0,1600000100\n');
  await writeInteractionsCsv(
    file,
    {
      user: Int32Array.from([2]),
      item: Int32Array.from([3]),
      label: Float32Array.from([1]),
      timestamp: Float64Array.from([7]),
      fields: Int32Array.from([2, 3, 9, 8]),
    },
    [
      { name: 'user', vocab: 4, useless: false },
      { name: 'item', vocab: 4, useless: false },
      { name: 'genre', vocab: 10, useless: false },
      { name: 'noise', vocab: 10, useless: true },
    ],
  );
  assert.equal(fs.readFileSync(file, 'utf8'), 'user,item,label,timestamp,genre,noise\n2,3,1,7,9,8\n');
  fs.rmSync(dir, { recursive: true, force: true });
});
