import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auc, candidateRanking, checkOnePositivePerUser, fullRanking, isBinary, logloss, mae, positivesRepeatedAsNegatives, rmse, TwoPositivesError } from '../../src/core/eval/metrics.js';
import { checkCandidatesFile, fileLinesOfRows } from '../../src/core/eval/candidate-lines.js';
import { readInteractions } from '../../src/core/eval/interactions.js';
import { latencyWithinNoise } from '../../src/core/eval/evaluate.js';

const close = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

test('candidateRanking: exact HR/NDCG, ties count against the positive, rows in any order', () => {
  // user 0: positive 0.9, negatives 0.1 0.95 0.5 -> rank 2
  // user 1: positive 0.5, negatives 0.5 (tie) 0.2 0.1 -> rank 2 (tie against the positive)
  // user 2: positive 0.1, negatives 0.2 0.3 0.4 -> rank 4
  // user 5: positive 1.0, negatives 0.0 0.0 0.0 -> rank 1
  const rows: Array<[number, number, number]> = [
    [1, 0, 0.5], [0, 1, 0.9], [0, 0, 0.1], [2, 0, 0.2], [0, 0, 0.95], [1, 1, 0.5], [0, 0, 0.5],
    [1, 0, 0.2], [1, 0, 0.1], [2, 1, 0.1], [2, 0, 0.3], [2, 0, 0.4], [5, 1, 1], [5, 0, 0], [5, 0, 0], [5, 0, 0],
  ];
  const user = Int32Array.from(rows, (r) => r[0]);
  const label = Float32Array.from(rows, (r) => r[1]);
  const scores = Float32Array.from(rows, (r) => r[2]);
  const k2 = candidateRanking(user, label, scores, 2);
  assert.equal(k2.users, 4);
  assert.equal(k2.candidatesPerUser, 4);
  close(k2.hr, 3 / 4);
  close(k2.ndcg, (1 / Math.log2(3) + 1 / Math.log2(3) + 1) / 4);
  const k1 = candidateRanking(user, label, scores, 1);
  close(k1.hr, 1 / 4);
  close(k1.ndcg, 1 / 4);
  const k4 = candidateRanking(user, label, scores, 4);
  close(k4.hr, 1);
  close(k4.ndcg, (2 / Math.log2(3) + 1 / Math.log2(5) + 1) / 4);
});

test('candidateRanking: a constant model gets HR 0 (not 1); users without a positive are counted, two positives throw', () => {
  const user = Int32Array.from([0, 0, 0, 1, 1]);
  const label = Float32Array.from([1, 0, 0, 0, 0]);
  const r = candidateRanking(user, label, new Float32Array(5).fill(0.5), 2);
  assert.equal(r.hr, 0);
  assert.equal(r.ndcg, 0);
  assert.equal(r.users, 1);
  assert.equal(r.usersWithoutPositive, 1);
  assert.equal(r.usersWithoutNegatives, 0);
  // a user whose only candidate is the positive: a hit whatever the scores, and counted as such
  const lone = candidateRanking(Int32Array.from([0, 0, 1]), Float32Array.from([1, 0, 1]), Float32Array.from([0, 1, 0]), 1);
  assert.deepEqual([lone.users, lone.hr, lone.usersWithoutNegatives], [2, 0.5, 1]);
  // numbered as the lines of the candidates file read in order (header = line 1)
  assert.throws(
    () => candidateRanking(Int32Array.from([3, 3]), Float32Array.from([1, 1]), Float32Array.from([0, 1]), 1),
    (e: unknown) =>
      e instanceof TwoPositivesError && e.user === 3 && e.rows[0] === 0 && e.rows[1] === 1 && e.message === 'lines 2 and 3: user 3 has more than one positive (a candidates file has one per user)',
  );
  assert.throws(() => candidateRanking(user, label, new Float32Array(5), 0), /k must be a positive integer/);
});

test('fullRanking: excludes seen items, ties against the held-out item', () => {
  // 2 users x 5 items
  const scores = Float32Array.from([
    0.1, 0.9, 0.5, 0.5, 0.2, // user 0, held out item 2: item 1 (0.9) and item 3 (0.5 tie) ahead -> rank 3
    0.8, 0.7, 0.6, 0.9, 0.1, // user 1, held out item 0: item 3 ahead -> rank 2
  ]);
  const r = fullRanking(scores, 5, [2, 0], 2);
  close(r.hr, 1 / 2);
  close(r.ndcg, 1 / Math.log2(3) / 2);
  // user 0 saw item 1, user 1 saw item 3: both move up one place
  const seen = fullRanking(scores, 5, [2, 0], 2, [Int32Array.from([1]), Int32Array.from([3])]);
  close(seen.hr, 1);
  close(seen.ndcg, (1 / Math.log2(3) + 1) / 2);
  close(seen.candidatesPerUser, 4);
});

test('auc: exact with ties as 1/2', () => {
  close(auc([1, 0, 1, 0], [0.9, 0.1, 0.8, 0.2])!, 1);
  close(auc([1, 0, 1, 0], [0.1, 0.9, 0.2, 0.8])!, 0);
  // positives 0.5, 0.7; negatives 0.5, 0.3: pairs (0.5 vs 0.5) = 1/2, (0.5 vs 0.3) = 1, (0.7 vs *) = 2 -> 3.5 / 4
  close(auc([1, 0, 1, 0], [0.5, 0.5, 0.7, 0.3])!, 3.5 / 4);
  close(auc([1, 1, 0, 0, 0], new Array(5).fill(0.4))!, 0.5);
  assert.equal(auc([1, 1], [0.2, 0.3]), undefined);
  assert.equal(auc([0, 0], [0.2, 0.3]), undefined);
});

test('auc equals the O(n^2) pair count on random data with many ties', () => {
  let s = 7;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) / 16777216;
  const n = 300;
  const labels = Array.from({ length: n }, () => (rnd() < 0.3 ? 1 : 0));
  const scores = Array.from({ length: n }, () => Math.floor(rnd() * 10) / 10);
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    if (labels[i] !== 1 || labels[j] !== 0) continue;
    den++;
    num += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
  }
  close(auc(labels, scores)!, num / den, 1e-12);
});

test('logloss (clipped), rmse, mae, isBinary', () => {
  close(logloss([1, 0], [0.8, 0.4]), -(Math.log(0.8) + Math.log(0.6)) / 2);
  // clipping: p = 0 for a positive costs -log(1e-7), not Infinity
  close(logloss([1], [0]), -Math.log(1e-7), 1e-9);
  close(rmse([1, 2, 3], [2, 2, 5]), Math.sqrt(5 / 3));
  close(mae([1, 2, 3], [2, 2, 5]), 1);
  assert.equal(isBinary([0, 1, 1]), true);
  assert.equal(isBinary([0, 1, 4]), false);
});

test('latencyWithinNoise: 10% or the runs\' own spread', () => {
  assert.equal(latencyWithinNoise({ p50Ms: 1, p95Ms: 1.05 }, { p50Ms: 1.08, p95Ms: 1.1 }), true);
  assert.equal(latencyWithinNoise({ p50Ms: 1, p95Ms: 1.05 }, { p50Ms: 0.5, p95Ms: 0.52 }), false);
  assert.equal(latencyWithinNoise({ p50Ms: 1, p95Ms: 1.6 }, { p50Ms: 0.5, p95Ms: 0.52 }), true);
});

test('checkOnePositivePerUser: the first user with a second positive, by rows; one positive each passes', () => {
  checkOnePositivePerUser(Int32Array.from([0, 0, 1, 1, 2]), Float32Array.from([1, 0, 0, 1, 0]));
  assert.throws(
    () => checkOnePositivePerUser(Int32Array.from([0, 1, 0, 1, 1]), Float32Array.from([1, 0, 0, 1, 1])),
    (e: unknown) => e instanceof TwoPositivesError && e.user === 1 && e.rows.join() === '3,4' && e.message === 'lines 5 and 6: user 1 has more than one positive (a candidates file has one per user)',
  );
});

test('checkCandidatesFile: names the file and its exact lines, blank lines counted; a good file passes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-candidates-'));
  const bad = join(dir, 'twopos.csv');
  // line 1 header, 2 blank, 3 a positive of user 0, 4 spaces only, 5 a negative, 6 user 0 again positive
  writeFileSync(bad, 'user,item,label\n\n0,1,1\n   \n0,2,0\r\n0,3,1\n1,1,1\n');
  const t = await readInteractions(bad, { requireLabel: true });
  assert.equal(t.rows, 4);
  assert.deepEqual(await fileLinesOfRows(bad, [0, 2, 3]), [3, 6, 7]);
  await assert.rejects(checkCandidatesFile(t), (e: Error) => e.message === `${bad}: lines 3 and 6: user 0 has more than one positive (a candidates file has one per user)`);
  const good = join(dir, 'good.csv');
  writeFileSync(good, 'user,item,label\n0,1,1\n0,2,0\n1,1,0\n');
  await checkCandidatesFile(await readInteractions(good, { requireLabel: true }));
});

test('positives repeated among the same user\'s negatives are counted, with the first one', () => {
  // user 0: positive 5, a negative 5 too; user 1: clean; user 2: positive 9 repeated twice as a negative
  const user = Int32Array.of(0, 0, 0, 1, 1, 2, 2, 2);
  const item = Int32Array.of(5, 5, 6, 1, 2, 9, 9, 9);
  const label = Float32Array.of(1, 0, 0, 1, 0, 0, 1, 0);
  assert.deepEqual(positivesRepeatedAsNegatives(user, item, label), { users: 2, first: { user: 0, item: 5 } });
  assert.deepEqual(positivesRepeatedAsNegatives(Int32Array.of(0, 0), Int32Array.of(1, 2), Float32Array.of(1, 0)), { users: 0 });
});
