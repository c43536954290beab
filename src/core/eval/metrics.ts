// Accuracy metrics of recommenders, computed exactly.
//
// Ranking (leave-one-out, as in the NCF paper): per user one held-out positive ranked among
// candidates. Ties count AGAINST the positive: rank = 1 + #(other candidates with score >= the
// positive's), so a model that scores everything alike gets HR 0, not 1.
// HR@K = share of users with rank <= K; NDCG@K = mean of 1 / log2(rank + 1) over those users
// (a single relevant item: IDCG = 1).

export interface RankingResult {
  hr: number;
  ndcg: number;
  k: number;
  /** users ranked (each with one positive) */
  users: number;
  /** mean number of candidates per user, the positive included */
  candidatesPerUser: number;
  /** users in the file with no positive row: not ranked */
  usersWithoutPositive: number;
  /** ranked users whose only candidate is the positive: a hit at rank 1 whatever the model */
  usersWithoutNegatives?: number;
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new Error(`k must be a positive integer, got ${k}`);
}

/** A metric's mean and standard deviation under some model of the scores. */
export interface MeanSd {
  mean: number;
  sd: number;
}

/**
 * HR@K and NDCG@K a random order of each user's candidates gets, exactly: the positive's rank is
 * uniform over the user's n candidates, so HR@K averages min(K, n) / n and NDCG@K averages
 * sum_{r <= min(K, n)} 1 / log2(r + 1) / n over the users with a positive; the standard deviation
 * is that of the mean over those users. What a model must beat before its figures mean anything.
 */
export function chanceRanking(user: Int32Array, label: ArrayLike<number>, k: number): { hr: MeanSd; ndcg: MeanSd } {
  checkK(k);
  const rows = new Map<number, number>();
  const positive = new Set<number>();
  for (let i = 0; i < user.length; i++) {
    rows.set(user[i], (rows.get(user[i]) ?? 0) + 1);
    if (label[i] > 0) positive.add(user[i]);
  }
  const sums = { hr: [0, 0], ndcg: [0, 0] };
  for (const u of positive) {
    const n = rows.get(u)!;
    let g = 0;
    let g2 = 0;
    for (let r = 1; r <= Math.min(k, n); r++) {
      const d = 1 / Math.log2(r + 1);
      g += d;
      g2 += d * d;
    }
    const hr = Math.min(k, n) / n;
    sums.hr[0] += hr;
    sums.hr[1] += hr - hr * hr;
    sums.ndcg[0] += g / n;
    sums.ndcg[1] += g2 / n - (g / n) ** 2;
  }
  const U = positive.size;
  const of = ([m, v]: number[]): MeanSd => (U ? { mean: m / U, sd: Math.sqrt(Math.max(0, v)) / U } : { mean: NaN, sd: NaN });
  return { hr: of(sums.hr), ndcg: of(sums.ndcg) };
}

/** AUC of random scores: 0.5, with the Mann-Whitney standard deviation for these labels. */
export function chanceAuc(label: ArrayLike<number>): MeanSd {
  let pos = 0;
  for (let i = 0; i < label.length; i++) if (label[i] > 0) pos++;
  const neg = label.length - pos;
  return pos && neg ? { mean: 0.5, sd: Math.sqrt((pos + neg + 1) / (12 * pos * neg)) } : { mean: NaN, sd: NaN };
}

/**
 * A user with two positive rows in a candidates set. The message numbers the rows as the lines of
 * the candidates file they were read from, in order (the header is line 1): `<file>: ` before it
 * makes the one-line error. A reader that skipped blank lines shifts that numbering; callers that
 * hold the file name the exact lines (candidate-lines.ts).
 */
export class TwoPositivesError extends Error {
  constructor(
    readonly user: number,
    /** 0-based indices of the two positive rows */
    readonly rows: readonly [number, number],
    lines: readonly [number, number] = [rows[0] + 2, rows[1] + 2],
  ) {
    super(`lines ${lines[0]} and ${lines[1]}: user ${user} has more than one positive (a candidates file has one per user)`);
    this.name = 'TwoPositivesError';
  }
}

/** Throws TwoPositivesError for the first user with a second row of label > 0. */
export function checkOnePositivePerUser(user: Int32Array, label: ArrayLike<number>): void {
  const first = new Map<number, number>();
  for (let i = 0; i < user.length; i++) {
    if (!(label[i] > 0)) continue;
    const at = first.get(user[i]);
    if (at !== undefined) throw new TwoPositivesError(user[i], [at, i]);
    first.set(user[i], i);
  }
}

/**
 * HR@K / NDCG@K over a candidates set: rows (user, label, score) in any order; per user exactly
 * one row with label > 0 (the positive), the rest are its negatives. Throws TwoPositivesError
 * when a user has two positives.
 */
export function candidateRanking(user: Int32Array, label: ArrayLike<number>, scores: ArrayLike<number>, k: number): RankingResult {
  checkK(k);
  const n = user.length;
  if (label.length !== n || scores.length !== n) throw new Error(`candidateRanking: ${n} users, ${label.length} labels, ${scores.length} scores`);
  let maxUser = -1;
  for (let i = 0; i < n; i++) {
    if (user[i] < 0) throw new Error(`candidateRanking: negative user id ${user[i]}`);
    if (user[i] > maxUser) maxUser = user[i];
  }
  const U = maxUser + 1;
  const posScore = new Float64Array(U);
  const posRow = new Int32Array(U).fill(-1);
  const present = new Uint8Array(U);
  for (let i = 0; i < n; i++) {
    const u = user[i];
    present[u] = 1;
    if (label[i] > 0) {
      if (posRow[u] >= 0) throw new TwoPositivesError(u, [posRow[u], i]);
      posRow[u] = i;
      posScore[u] = scores[i];
    }
  }
  const ahead = new Int32Array(U);
  const count = new Int32Array(U);
  for (let i = 0; i < n; i++) {
    const u = user[i];
    count[u]++;
    if (posRow[u] < 0 || posRow[u] === i) continue;
    // NaN scores compare false: a NaN positive ranks last (checked below), a NaN negative is ignored
    if (scores[i] >= posScore[u]) ahead[u]++;
  }
  let users = 0;
  let hits = 0;
  let ndcg = 0;
  let candidates = 0;
  let without = 0;
  let alone = 0;
  for (let u = 0; u < U; u++) {
    if (!present[u]) continue;
    if (posRow[u] < 0) {
      without++;
      continue;
    }
    users++;
    if (count[u] === 1) alone++;
    candidates += count[u];
    const rank = Number.isNaN(posScore[u]) ? count[u] : 1 + ahead[u];
    if (rank <= k) {
      hits++;
      ndcg += 1 / Math.log2(rank + 1);
    }
  }
  return {
    hr: users ? hits / users : 0,
    ndcg: users ? ndcg / users : 0,
    k,
    users,
    candidatesPerUser: users ? candidates / users : 0,
    usersWithoutPositive: without,
    usersWithoutNegatives: alone,
  };
}

/**
 * Users whose positive item is among their negatives too (sloppy negative sampling): that copy
 * scores exactly as the positive, and a tie counts against the positive, so the user can never
 * hit at rank 1. Counted, with the first such user and item.
 */
export function positivesRepeatedAsNegatives(user: Int32Array, item: Int32Array, label: Float32Array): { users: number; first?: { user: number; item: number } } {
  const positive = new Map<number, number>();
  for (let i = 0; i < user.length; i++) if (label[i] > 0) positive.set(user[i], item[i]);
  const hit = new Set<number>();
  let first: { user: number; item: number } | undefined;
  for (let i = 0; i < user.length; i++) {
    if (label[i] > 0 || positive.get(user[i]) !== item[i] || hit.has(user[i])) continue;
    hit.add(user[i]);
    first ??= { user: user[i], item: item[i] };
  }
  return { users: hit.size, ...(first ? { first } : {}) };
}

/**
 * Full-ranking HR@K / NDCG@K: `scores` is row-major [users, items] (row r = the user of
 * `heldOut[r]`); each held-out item is ranked against every other item, except the items in
 * `seen[r]` (the user's training items) when given. Ties count against the held-out item.
 */
export function fullRanking(scores: ArrayLike<number>, items: number, heldOut: ArrayLike<number>, k: number, seen?: ReadonlyArray<ArrayLike<number> | undefined>): RankingResult {
  checkK(k);
  const users = heldOut.length;
  if (scores.length !== users * items) throw new Error(`fullRanking: ${scores.length} scores are not ${users} users x ${items} items`);
  let hits = 0;
  let ndcg = 0;
  let candidates = 0;
  const skip = new Uint8Array(items);
  for (let r = 0; r < users; r++) {
    const target = heldOut[r];
    if (!(Number.isInteger(target) && target >= 0 && target < items)) throw new Error(`fullRanking: held-out item ${target} of row ${r} is not in [0, ${items})`);
    const s = seen?.[r];
    if (s) for (let j = 0; j < s.length; j++) if (s[j] >= 0 && s[j] < items) skip[s[j]] = 1;
    skip[target] = 0;
    const base = r * items;
    const pos = scores[base + target];
    let ahead = 0;
    let considered = 1;
    for (let j = 0; j < items; j++) {
      if (j === target || skip[j]) continue;
      considered++;
      if (scores[base + j] >= pos) ahead++;
    }
    if (s) for (let j = 0; j < s.length; j++) if (s[j] >= 0 && s[j] < items) skip[s[j]] = 0;
    candidates += considered;
    const rank = Number.isNaN(pos) ? considered : 1 + ahead;
    if (rank <= k) {
      hits++;
      ndcg += 1 / Math.log2(rank + 1);
    }
  }
  return { hr: users ? hits / users : 0, ndcg: users ? ndcg / users : 0, k, users, candidatesPerUser: users ? candidates / users : 0, usersWithoutPositive: 0 };
}

/**
 * Exact ROC AUC (labels > 0.5 are positives): the probability that a random positive scores
 * above a random negative, ties counting 1/2 (mid-ranks, Mann-Whitney U). O(n log n).
 * Undefined when there are no positives or no negatives.
 */
export function auc(labels: ArrayLike<number>, scores: ArrayLike<number>): number | undefined {
  const n = labels.length;
  if (scores.length !== n) throw new Error(`auc: ${n} labels, ${scores.length} scores`);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const s = Float64Array.from(scores as ArrayLike<number>);
  for (let i = 0; i < n; i++) if (Number.isNaN(s[i])) throw new Error(`auc: score ${i} is NaN`);
  order.sort((a, b) => s[a] - s[b]);
  let nPos = 0;
  let rankSumPos = 0;
  let i = 0;
  while (i < n) {
    let j = i + 1;
    while (j < n && s[order[j]] === s[order[i]]) j++;
    // 1-based ranks i+1 .. j share their mean
    const midRank = (i + 1 + j) / 2;
    for (let t = i; t < j; t++) {
      if (labels[order[t]] > 0.5) {
        nPos++;
        rankSumPos += midRank;
      }
    }
    i = j;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return undefined;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** Mean binary cross-entropy, predictions clipped to [eps, 1 - eps]. */
export function logloss(labels: ArrayLike<number>, scores: ArrayLike<number>, eps = 1e-7): number {
  const n = labels.length;
  if (scores.length !== n) throw new Error(`logloss: ${n} labels, ${scores.length} scores`);
  if (n === 0) return NaN;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const p = Math.min(1 - eps, Math.max(eps, scores[i]));
    const y = labels[i];
    sum -= y * Math.log(p) + (1 - y) * Math.log(1 - p);
  }
  return sum / n;
}

export function rmse(targets: ArrayLike<number>, predictions: ArrayLike<number>): number {
  const n = targets.length;
  if (predictions.length !== n) throw new Error(`rmse: ${n} targets, ${predictions.length} predictions`);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const d = predictions[i] - targets[i];
    sum += d * d;
  }
  return n ? Math.sqrt(sum / n) : NaN;
}

export function mae(targets: ArrayLike<number>, predictions: ArrayLike<number>): number {
  const n = targets.length;
  if (predictions.length !== n) throw new Error(`mae: ${n} targets, ${predictions.length} predictions`);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.abs(predictions[i] - targets[i]);
  return n ? sum / n : NaN;
}

/** True when every label is 0 or 1 (a click/implicit dataset rather than ratings). */
export function isBinary(labels: ArrayLike<number>): boolean {
  for (let i = 0; i < labels.length; i++) if (labels[i] !== 0 && labels[i] !== 1) return false;
  return true;
}
