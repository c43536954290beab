// A low-noise estimate of a compressed model's NDCG@k / HR@k on validation candidates, for
// choosing among hundreds of candidates without choosing the luckiest.
//
// Measured directly, a user's NDCG@k depends on where one item (the positive) lands: on a few
// hundred users its standard error is 1-2% of the metric, as large as the budgets asked for, and
// the best of many candidates on those users is the one whose noise was kindest. Here every
// candidate item of a user stands in for the positive in turn, weighted by how often the positive
// sits at that item's rank under the original model (fitted once on the same users' labels):
//
//   E[gain] = sum over users u, items i of  P(positive at original rank r0(i)) x gain(r(i)) / users
//
// where r0 is the item's rank under the original and r its rank under the candidate. For the
// original itself this equals its measured NDCG@k (with the unsmoothed prior); for a candidate it
// is what the measured figure would be on average over which of the items is the positive. It
// assumes that compression moves the positive like any other item the original ranks alike;
// the search reports the measured figures beside it, and the held-out users judge the choice.

import type { RowSet } from './scoring.js';

/** Per-user grouping of a row set's rows (first-seen order of users, as perUserGains). */
interface Groups {
  /** row indices, user by user */
  rows: Int32Array;
  /** user j's rows are rows[start[j] .. start[j+1]) */
  start: Int32Array;
  /** has a positive (users without one are left out, as the measured metrics do) */
  ranked: Uint8Array;
}

function groupRows(rows: RowSet): Groups {
  const slot = new Map<number, number>();
  const counts: number[] = [];
  const hasPos: number[] = [];
  for (let i = 0; i < rows.user.length; i++) {
    let s = slot.get(rows.user[i]);
    if (s === undefined) {
      s = slot.size;
      slot.set(rows.user[i], s);
      counts.push(0);
      hasPos.push(0);
    }
    counts[s]++;
    if (rows.label[i] > 0) hasPos[s] = 1;
  }
  const start = new Int32Array(counts.length + 1);
  for (let s = 0; s < counts.length; s++) start[s + 1] = start[s] + counts[s];
  const fill = start.slice(0, counts.length);
  const order = new Int32Array(rows.user.length);
  for (let i = 0; i < rows.user.length; i++) order[fill[slot.get(rows.user[i])!]++] = i;
  return { rows: order, start, ranked: Uint8Array.from(hasPos) };
}

/**
 * Each row's rank among its user's candidates, the row taken as if it were the positive: 1 + the
 * number of the user's other rows scored at least as high (ties count against it, as the metrics
 * do; a NaN scores last).
 */
function ranksOf(g: Groups, scores: Float32Array): Int32Array {
  const rank = new Int32Array(scores.length);
  const key = (i: number) => (Number.isNaN(scores[i]) ? -Infinity : scores[i]);
  for (let s = 0; s + 1 < g.start.length; s++) {
    const idx = Array.from(g.rows.subarray(g.start[s], g.start[s + 1]));
    idx.sort((a, b) => key(b) - key(a));
    // walk the ties: every row of a tie group gets the last position of the group
    for (let p = 0; p < idx.length; ) {
      let q = p;
      while (q + 1 < idx.length && key(idx[q + 1]) === key(idx[p])) q++;
      for (let t = p; t <= q; t++) rank[idx[t]] = q + 1;
      p = q + 1;
    }
  }
  return rank;
}

/**
 * P(the positive sits at original rank r), r = 1.., from the positives' ranks: the histogram made
 * non-increasing in r (pool-adjacent-violators), which keeps its total and smooths its tail, where
 * a few hundred users leave most ranks empty.
 */
export function positiveRankPrior(positiveRanks: ArrayLike<number>, maxRank: number): Float64Array {
  const h = new Float64Array(maxRank);
  let n = 0;
  for (let i = 0; i < positiveRanks.length; i++) {
    const r = positiveRanks[i];
    if (r >= 1 && r <= maxRank) {
      h[r - 1]++;
      n++;
    }
  }
  if (n === 0) return h;
  // pool adjacent violators for a non-increasing fit (equal weights)
  const val: number[] = [];
  const len: number[] = [];
  for (let r = 0; r < maxRank; r++) {
    val.push(h[r]);
    len.push(1);
    while (val.length > 1 && val[val.length - 2] < val[val.length - 1]) {
      const v = val.pop()!;
      const l = len.pop()!;
      const j = val.length - 1;
      val[j] = (val[j] * len[j] + v * l) / (len[j] + l);
      len[j] += l;
    }
  }
  const w = new Float64Array(maxRank);
  let r = 0;
  for (let b = 0; b < val.length; b++) for (let t = 0; t < len[b]; t++) w[r++] = val[b] / n;
  return w;
}

export interface ExpectedFigures {
  ndcg: number;
  hr: number;
  /** per ranked user, the expected gain (for paired standard errors) */
  perUser: { ndcg: Float64Array; hr: Float64Array };
}

/** The estimate for one row set, against the original's scores on the same rows. */
export class ExpectedGain {
  private readonly g: Groups;
  /** per row: P(positive at the row's original rank) */
  private readonly weight: Float64Array;

  private constructor(rows: RowSet, baseScores: Float32Array, prior: Float64Array, private readonly k: number) {
    this.g = groupRows(rows);
    const r0 = ranksOf(this.g, baseScores);
    this.weight = Float64Array.from(r0, (r) => (r >= 1 && r <= prior.length ? prior[r - 1] : 0));
  }

  /**
   * The prior fitted on `fitOn` (the choosing users with the original's scores there), applied to
   * each of `sets` (nested subsets of those users).
   */
  static fit(fitOn: { rows: RowSet; scores: Float32Array }, k: number): { prior: Float64Array; make: (rows: RowSet, baseScores: Float32Array) => ExpectedGain } {
    const g = groupRows(fitOn.rows);
    const r0 = ranksOf(g, fitOn.scores);
    const pos: number[] = [];
    let maxRank = 1;
    for (let s = 0; s + 1 < g.start.length; s++) {
      maxRank = Math.max(maxRank, g.start[s + 1] - g.start[s]);
      for (let p = g.start[s]; p < g.start[s + 1]; p++) if (fitOn.rows.label[g.rows[p]] > 0) pos.push(r0[g.rows[p]]);
    }
    const prior = positiveRankPrior(pos, maxRank);
    return { prior, make: (rows, baseScores) => new ExpectedGain(rows, baseScores, prior, k) };
  }

  /** Expected NDCG@k / HR@k of a model scoring these rows `scores`. */
  of(scores: Float32Array): ExpectedFigures {
    const r = ranksOf(this.g, scores);
    const users = this.g.ranked.reduce((n, x) => n + x, 0);
    const ndcg = new Float64Array(users);
    const hr = new Float64Array(users);
    let j = 0;
    for (let s = 0; s + 1 < this.g.start.length; s++) {
      if (!this.g.ranked[s]) continue;
      let n = 0;
      let h = 0;
      for (let p = this.g.start[s]; p < this.g.start[s + 1]; p++) {
        const i = this.g.rows[p];
        if (r[i] > this.k) continue;
        n += this.weight[i] / Math.log2(r[i] + 1);
        h += this.weight[i];
      }
      ndcg[j] = n;
      hr[j++] = h;
    }
    const mean = (a: Float64Array) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : 0);
    return { ndcg: mean(ndcg), hr: mean(hr), perUser: { ndcg, hr } };
  }
}
