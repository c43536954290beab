// The expected-gain estimate the compress-to-target search chooses by (expected-gain.ts), with
// exact expectations: the sharpness fitted by maximum likelihood (a case with a closed form), the
// estimate of a known reordering, logits for probability outputs, a chance-level original, and
// the tie and NaN rules.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExpectedGain } from '../../src/core/compress/plan/expected-gain.js';
import { metricsOf, type RowSet } from '../../src/core/compress/plan/scoring.js';

/** Users of n candidates each (default 4), rows interleaved across users (the estimate must group them). */
function rows(positives: number[], n = 4): RowSet {
  const user: number[] = [];
  const label: number[] = [];
  for (let j = 0; j < n; j++) {
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
  for (let j = 0; j < perUser[0].length; j++) perUser.forEach((s) => out.push(s[j]));
  return Float32Array.from(out);
}

const close = (a: number, b: number, msg?: string, tol = 1e-12) => assert.ok(Math.abs(a - b) < tol, `${msg ?? ''} ${a} != ${b}`);

test('ties count against the item, as the metrics do; a NaN ranks last', () => {
  const r = rows([0]);
  const base = scores([[0.9, 0.5, 0.3, 0.1]]);
  const eg = ExpectedGain.fit({ rows: r, scores: base }, 10).make(r, base);
  // the positive is first: the sharpness is at its cap and only the original's first item counts;
  // tied with the second, it ranks 2
  close(eg.of(scores([[0.5, 0.5, 0.3, 0.1]])).ndcg, 1 / Math.log2(3));
  assert.equal(metricsOf(r, scores([[0.5, 0.5, 0.3, 0.1]]), 10).metrics.ndcg, 1 / Math.log2(3));
  // a NaN score ranks below every number
  close(eg.of(scores([[NaN, 0.5, 0.3, 0.1]])).ndcg, 1 / Math.log2(5));
});

test('score prior: the sharpness is the maximum-likelihood one (closed form), and a known swap gives the known figure', () => {
  // three users of two items with the same gap: the higher item is the positive for two of them,
  // the lower for one. The likelihood's slope d(1 - sigma(beta d)) x 2 - d sigma(beta d) is 0 at
  // sigma(beta d) = 2/3, so every user's higher item gets weight 2/3 and the lower 1/3.
  const r = rows([0, 0, 1], 2);
  const base = scores([
    [2, 1],
    [5, 4],
    [-1, -2],
  ]);
  const fit = ExpectedGain.fit({ rows: r, scores: base }, 10);
  assert.match(fit.describe, /^softmax of the original's standardized scores with sharpness /);
  const eg = fit.make(r, base);
  const g2 = 1 / Math.log2(3);
  close(eg.of(base).ndcg, 2 / 3 + g2 / 3, 'original', 1e-9);
  close(eg.of(base).hr, 1, 'hr', 1e-9);
  // swapping each user's two items: the 2/3 item goes to rank 2
  const swapped = scores([
    [1, 2],
    [4, 5],
    [-2, -1],
  ]);
  close(eg.of(swapped).ndcg, (2 / 3) * g2 + 1 / 3, 'swapped', 1e-9);
  for (const v of eg.of(swapped).perUser.ndcg) close(v, (2 / 3) * g2 + 1 / 3, 'per user', 1e-9);
  // at k = 1 only the first item counts
  const k1 = ExpectedGain.fit({ rows: r, scores: base }, 1).make(r, base);
  close(k1.of(base).hr, 2 / 3, 'hr@1', 1e-9);
  close(k1.of(swapped).hr, 1 / 3, 'hr@1 swapped', 1e-9);
});

test('score prior: probabilities are compared as logits; no better than chance gives equal weights; a NaN row weighs nothing', () => {
  const r = rows([0, 1, 0]);
  const p = [
    [0.9, 0.5, 0.3, 0.1],
    [0.8, 0.6, 0.2, 0.1],
    [0.6, 0.7, 0.2, 0.15],
  ];
  const logit = (x: number) => Math.log(x / (1 - x));
  const asProb = scores(p);
  const asLogit = scores(p.map((u) => u.map(logit)));
  const cand = scores([
    [0.5, 0.9, 0.3, 0.1],
    [0.1, 0.6, 0.2, 0.8],
    [0.6, 0.2, 0.7, 0.15],
  ]);
  const a = ExpectedGain.fit({ rows: r, scores: asProb }, 2);
  const b = ExpectedGain.fit({ rows: r, scores: asLogit }, 2);
  assert.match(a.describe, /original's standardized logits/);
  assert.match(b.describe, /original's standardized scores/);
  // the same ranking of every candidate, so the same estimate whichever form the original gave
  close(a.make(r, asProb).of(cand).ndcg, b.make(r, asLogit).of(cand).ndcg, 'prob vs logit', 1e-9);
  // the positive always last: sharpness 0, every item weighs 1/4, and reordering changes nothing
  const worst = rows([3, 3, 3]);
  const c = ExpectedGain.fit({ rows: worst, scores: asProb }, 2);
  assert.match(c.describe, /with sharpness 0\.00/);
  const flat = (1 + 1 / Math.log2(3)) / 4;
  close(c.make(worst, asProb).of(cand).ndcg, flat, 'flat');
  close(c.make(worst, asProb).of(asProb).ndcg, flat, 'flat original');
  // a NaN score in the original's rows: that row weighs 0, the others share the user's weight
  const one = rows([0]);
  const base = scores([[3, NaN, 1, 0]]);
  const eg = ExpectedGain.fit({ rows: one, scores: base }, 10).make(one, base);
  // always first: the sharpness is at its cap and the first item carries all the weight
  close(eg.of(scores([[0, 5, 1, 2]])).ndcg, 1 / Math.log2(5), 'first item moved last');
});
