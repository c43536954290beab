// The rank-prior estimate the compress-to-target search chooses by (expected-gain.ts), with exact
// expectations: the prior's smoothing, the original's estimate equal to its measured metric, a
// known reordering, the tie rule, and that the estimate does not depend on which item is labelled
// at a given original rank (what makes it far less noisy than the metric).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExpectedGain, positiveRankPrior } from '../../src/core/compress/plan/expected-gain.js';
import { metricsOf, type RowSet } from '../../src/core/compress/plan/scoring.js';

/** Users of 4 candidates each, rows interleaved across users (the estimate must group them). */
function rows(positives: number[]): RowSet {
  const user: number[] = [];
  const label: number[] = [];
  for (let j = 0; j < 4; j++) {
    positives.forEach((p, u) => {
      user.push(u + 10);
      label.push(j === p ? 1 : 0);
    });
  }
  const u = Int32Array.from(user);
  return { users: positives.length, user: u, label: Float32Array.from(label), batch: { user: u, item: new Int32Array(u.length) } };
}

/** Scores in the row order of rows(): per user, item j scores perUser[u][j]. */
function scores(perUser: number[][]): Float32Array {
  const out: number[] = [];
  for (let j = 0; j < 4; j++) perUser.forEach((s) => out.push(s[j]));
  return Float32Array.from(out);
}

const close = (a: number, b: number, msg?: string) => assert.ok(Math.abs(a - b) < 1e-12, `${msg ?? ''} ${a} != ${b}`);

test('positive-rank prior: a histogram made non-increasing (pool adjacent violators), total kept', () => {
  // ranks 1,1,1,2,3,3 on lists of 5: histogram [3,1,2,0,0] -> [3,1.5,1.5,0,0] / 6
  assert.deepEqual(Array.from(positiveRankPrior([1, 1, 1, 2, 3, 3], 5)), [0.5, 0.25, 0.25, 0, 0]);
  // already non-increasing: unchanged
  assert.deepEqual(Array.from(positiveRankPrior([1, 1, 2], 3)), [2 / 3, 1 / 3, 0]);
  // a violation at the end pools into one level: [1,0,2] -> [1,1,1] / 3
  assert.deepEqual(Array.from(positiveRankPrior([1, 3, 3], 3)), [1 / 3, 1 / 3, 1 / 3]);
  // ranks outside the lists are ignored; no positive: all zero
  assert.deepEqual(Array.from(positiveRankPrior([1, 9], 2)), [1, 0]);
  assert.deepEqual(Array.from(positiveRankPrior([], 2)), [0, 0]);
});

test('expected gain: the original scores its measured metric; a known swap gives the known figure', () => {
  // three users: the positive (item 0) ranked first, first, second by the original
  const r = rows([0, 0, 0]);
  const base = scores([
    [0.9, 0.5, 0.3, 0.1],
    [0.8, 0.6, 0.2, 0.1],
    [0.6, 0.7, 0.2, 0.1],
  ]);
  const fit = ExpectedGain.fit({ rows: r, scores: base }, 10);
  // prior: ranks 1,1,2 -> [2/3, 1/3, 0, 0]
  assert.deepEqual(Array.from(fit.prior), [2 / 3, 1 / 3, 0, 0]);
  const eg = fit.make(r, base);
  const g2 = 1 / Math.log2(3);
  const e0 = eg.of(base);
  close(e0.ndcg, 2 / 3 + g2 / 3, 'original ndcg');
  close(e0.ndcg, metricsOf(r, base, 10).metrics.ndcg, 'equals the measured ndcg');
  close(e0.hr, 1);
  // a candidate that swaps each user's first two items: the item at rank 1 (weight 2/3) goes to 2
  // and the one at rank 2 (weight 1/3) to 1
  const swapped = scores([
    [0.5, 0.9, 0.3, 0.1],
    [0.6, 0.8, 0.2, 0.1],
    [0.7, 0.6, 0.2, 0.1],
  ]);
  const e1 = eg.of(swapped);
  close(e1.ndcg, (2 / 3) * g2 + 1 / 3);
  assert.equal(e1.perUser.ndcg.length, 3);
  for (const v of e1.perUser.ndcg) close(v, (2 / 3) * g2 + 1 / 3);
  // at k = 1 the swap costs HR: only the item from rank 2 is now first
  const k1 = ExpectedGain.fit({ rows: r, scores: base }, 1).make(r, base);
  close(k1.of(base).hr, 2 / 3);
  close(k1.of(swapped).hr, 1 / 3);
  // moving items below the prior's support changes nothing
  const tail = scores([
    [0.9, 0.5, 0.1, 0.3],
    [0.8, 0.6, 0.1, 0.2],
    [0.6, 0.7, 0.1, 0.2],
  ]);
  close(eg.of(tail).ndcg, e0.ndcg);
});

test('expected gain: ties count against the item, as the metrics do; a NaN ranks last', () => {
  const r = rows([0]);
  const base = scores([[0.9, 0.5, 0.3, 0.1]]);
  const eg = ExpectedGain.fit({ rows: r, scores: base }, 10).make(r, base);
  // prior [1, 0, 0, 0]: only the original's first item counts; tied with the second, it ranks 2
  close(eg.of(scores([[0.5, 0.5, 0.3, 0.1]])).ndcg, 1 / Math.log2(3));
  assert.equal(metricsOf(r, scores([[0.5, 0.5, 0.3, 0.1]]), 10).metrics.ndcg, 1 / Math.log2(3));
  // a NaN score ranks below every number
  close(eg.of(scores([[NaN, 0.5, 0.3, 0.1]])).ndcg, 1 / Math.log2(5));
});

test('expected gain: which item carries the label at a given original rank does not change the estimate', () => {
  const base = scores([
    [0.9, 0.5, 0.3, 0.1],
    [0.2, 0.8, 0.6, 0.1],
  ]);
  const cand = scores([
    [0.4, 0.5, 0.3, 0.6],
    [0.2, 0.1, 0.6, 0.9],
  ]);
  // a: the positives are the items the original ranks 1st (user 10) and 2nd (user 11); c: other
  // items are labelled, ranked 2nd (user 10) and 1st (user 11). The prior is [1/2, 1/2, 0, 0]
  // either way, so every estimate is the same.
  const a = rows([0, 2]);
  const c = rows([1, 1]);
  const est = (r: RowSet) => {
    const eg = ExpectedGain.fit({ rows: r, scores: base }, 10).make(r, base);
    return [eg.of(base).ndcg, eg.of(cand).ndcg];
  };
  const [x0, x1] = est(a);
  const [y0, y1] = est(c);
  close(x0, y0);
  close(x1, y1);
  // while the measured metric of the candidate differs between the two labellings
  assert.notEqual(metricsOf(a, cand, 10).metrics.ndcg, metricsOf(c, cand, 10).metrics.ndcg);
});
