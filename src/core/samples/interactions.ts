// Synthetic implicit-feedback data with structure planted on purpose, so that analysis and
// compression of the sample models find something real:
//  - users and items have latent factors; a user's positives are drawn with probability
//    ∝ popularity(item) · exp(affinity · <u, v>), so a trained model can learn the match;
//  - popularity follows a power law over a random order of items (a long tail), and a share of
//    items is "cold": never shown to anyone, in no training row at all. Their embedding rows get
//    exactly zero gradient, so after training they are still their small random init (what
//    embedding-row pruning should find);
//  - for DeepFM, extra categorical fields: two informative ones (derived from the latent
//    factors) and two USELESS ones (uniform noise, independent of the label).
// Evaluation set: leave-one-out. Each user's latest positive is held out, and ranked against N
// sampled items the user never interacted with (HR@K / NDCG@K as in the NCF paper).

import { writeFileAtomic } from '../model/atomic-write.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRng, Rng } from './prng.js';

export interface FieldSpec {
  name: string;
  vocab: number;
  /** planted: independent of the label */
  useless: boolean;
}

export interface InteractionConfig {
  users: number;
  items: number;
  seed: number;
  /** latent dimensions of the planted preference; default 8 */
  factors?: number;
  /** mean positives per user (log-normal spread); default 20 */
  meanPositivesPerUser?: number;
  /** power-law exponent of item popularity; default 1.0 */
  popularityExponent?: number;
  /** share of items never shown to anyone; default 0.3 */
  coldItemShare?: number;
  /** weight of the latent match against popularity; default 2.5 */
  affinity?: number;
  /** training negatives per positive, drawn from shown items the user did not pick; default 4 */
  negativesPerPositive?: number;
  /** negatives per user in the leave-one-out candidate set; default 99 */
  candidateNegatives?: number;
  /** add the DeepFM fields (item_category, user_segment, noise_a, noise_b); default false */
  extraFields?: boolean;
}

/** Rows in columns. label is 1 (interaction) or 0 (shown / sampled, no interaction). */
export interface InteractionRows {
  user: Int32Array;
  item: Int32Array;
  label: Float32Array;
  /** seconds since the epoch */
  timestamp: Float64Array;
  /** row-major [rows, fields.length] values of every field (user and item included), when the data has fields */
  fields?: Int32Array;
}

export interface InteractionData {
  config: Required<InteractionConfig>;
  /** user, item, then (extraFields) the extra fields */
  fields: FieldSpec[];
  /** training rows: positives (minus held-out ones) and sampled negatives, shuffled */
  train: InteractionRows;
  /**
   * leave-one-out candidates: for each user, a block of 1 + candidateNegatives rows, the
   * held-out positive first (label 1), then the negatives (label 0)
   */
  candidates: InteractionRows;
  candidatesPerUser: number;
  /** planted item popularity (0 for cold items) */
  itemPopularity: Float64Array;
  /** ids of items in no training row */
  coldItems: Int32Array;
}

const T0 = 1_600_000_000;
const DAY = 86_400;

function resolveConfig(c: InteractionConfig): Required<InteractionConfig> {
  const r: Required<InteractionConfig> = {
    factors: 8,
    meanPositivesPerUser: 20,
    popularityExponent: 1.0,
    coldItemShare: 0.3,
    affinity: 2.5,
    negativesPerPositive: 4,
    candidateNegatives: 99,
    extraFields: false,
    ...c,
  };
  for (const k of ['users', 'items', 'factors', 'meanPositivesPerUser', 'negativesPerPositive'] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 1) throw new Error(`interactions: ${k} must be a positive integer, got ${r[k]}`);
  }
  if (!(r.coldItemShare >= 0 && r.coldItemShare < 1)) throw new Error(`interactions: coldItemShare must be in [0, 1)`);
  const warm = r.items - Math.floor(r.items * r.coldItemShare);
  if (warm < 2 * (r.meanPositivesPerUser + 1) * 2) {
    throw new Error(`interactions: ${warm} shown items are too few for ${r.meanPositivesPerUser} positives per user`);
  }
  if (!Number.isInteger(r.candidateNegatives) || r.candidateNegatives < 1 || r.candidateNegatives > r.items / 2) {
    throw new Error(`interactions: candidateNegatives must be in [1, items/2], got ${r.candidateNegatives}`);
  }
  return r;
}

function latent(n: number, k: number, rng: Rng): Float64Array {
  // entries N(0, 1/sqrt(k)) so that <u, v> has variance about 1
  const out = new Float64Array(n * k);
  const s = 1 / Math.pow(k, 0.25);
  for (let i = 0; i < out.length; i++) out[i] = rng.normal() * s;
  return out;
}

/** Sign pattern of the first `bits` factors: a category correlated with the preference. */
function signCode(f: Float64Array, row: number, k: number, bits: number): number {
  let code = 0;
  for (let b = 0; b < bits; b++) if (f[row * k + b] > 0) code |= 1 << b;
  return code;
}

export function extraFieldSpecs(): FieldSpec[] {
  return [
    { name: 'item_category', vocab: 16, useless: false },
    { name: 'user_segment', vocab: 8, useless: false },
    { name: 'noise_a', vocab: 40, useless: true },
    { name: 'noise_b', vocab: 25, useless: true },
  ];
}

export function generateInteractions(config: InteractionConfig): InteractionData {
  const c = resolveConfig(config);
  const root = createRng(c.seed);
  const k = c.factors;
  const U = latent(c.users, k, root.fork(1));
  const V = latent(c.items, k, root.fork(2));

  // popularity: power law over a random order of items; the last coldItemShare of the order is cold
  const order = new Int32Array(c.items).map((_, i) => i);
  const orng = root.fork(3);
  for (let i = order.length - 1; i > 0; i--) {
    const j = orng.int(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const warmCount = c.items - Math.floor(c.items * c.coldItemShare);
  const popularity = new Float64Array(c.items);
  for (let r = 0; r < warmCount; r++) popularity[order[r]] = 1 / Math.pow(r + 1, c.popularityExponent);
  const warmItems = order.slice(0, warmCount);
  const coldItems = Int32Array.from(order.slice(warmCount)).sort();
  const logPop = new Float64Array(c.items);
  for (let i = 0; i < c.items; i++) logPop[i] = popularity[i] > 0 ? Math.log(popularity[i]) : -Infinity;

  const fields: FieldSpec[] = [
    { name: 'user', vocab: c.users, useless: false },
    { name: 'item', vocab: c.items, useless: false },
    ...(c.extraFields ? extraFieldSpecs() : []),
  ];
  const itemCategory = new Int32Array(c.items);
  for (let i = 0; i < c.items; i++) itemCategory[i] = signCode(V, i, k, 4);
  const userSegment = new Int32Array(c.users);
  for (let u = 0; u < c.users; u++) userSegment[u] = signCode(U, u, k, 3);

  const prng = root.fork(4);
  const nrng = root.fork(5);
  const crng = root.fork(6);
  const trainRows: Array<[number, number, number, number]> = [];
  const candRows: Array<[number, number, number, number]> = [];
  const keys = new Float64Array(warmCount);
  const sorted = new Float64Array(warmCount);
  const picked = new Uint8Array(c.items);
  const maxPositives = Math.floor(warmCount / 4);

  for (let u = 0; u < c.users; u++) {
    const m = Math.max(3, Math.min(maxPositives, Math.round(c.meanPositivesPerUser * Math.exp(0.5 * prng.normal() - 0.125))));
    // weighted sampling without replacement (Gumbel top-m): key = log w + Gumbel noise
    for (let r = 0; r < warmCount; r++) {
      const it = warmItems[r];
      let dot = 0;
      for (let f = 0; f < k; f++) dot += U[u * k + f] * V[it * k + f];
      keys[r] = logPop[it] + c.affinity * dot - Math.log(-Math.log(1 - prng.next() * (1 - 1e-12)));
    }
    // the m largest keys: a native typed-array sort of a copy gives the threshold
    sorted.set(keys);
    sorted.sort();
    const threshold = sorted[warmCount - m];
    const positives: number[] = [];
    for (let r = 0; r < warmCount && positives.length < m; r++) if (keys[r] >= threshold) positives.push(warmItems[r]);
    // positives come out in popularity order: shuffle, so that which one is latest (held out) is random
    for (let i = positives.length - 1; i > 0; i--) {
      const j = prng.int(i + 1);
      const t = positives[i];
      positives[i] = positives[j];
      positives[j] = t;
    }
    // timestamps: increasing over about a year; the latest positive is held out
    const times = positives.map(() => T0 + Math.floor(prng.next() * 365 * DAY)).sort((a, b) => a - b);
    for (const it of positives) picked[it] = 1;
    const heldOut = positives[m - 1];
    for (let j = 0; j < m - 1; j++) {
      trainRows.push([u, positives[j], 1, times[j]]);
      for (let n = 0; n < c.negativesPerPositive; n++) {
        let neg: number;
        do neg = warmItems[nrng.int(warmCount)];
        while (picked[neg]);
        trainRows.push([u, neg, 0, times[j]]);
      }
    }
    candRows.push([u, heldOut, 1, times[m - 1]]);
    const seen = new Set<number>();
    while (seen.size < c.candidateNegatives) {
      const neg = crng.int(c.items);
      if (picked[neg] || seen.has(neg)) continue;
      seen.add(neg);
      candRows.push([u, neg, 0, times[m - 1]]);
    }
    for (const it of positives) picked[it] = 0;
  }

  const srng = root.fork(7);
  for (let i = trainRows.length - 1; i > 0; i--) {
    const j = srng.int(i + 1);
    const t = trainRows[i];
    trainRows[i] = trainRows[j];
    trainRows[j] = t;
  }

  const frng = root.fork(8);
  const toColumns = (rows: Array<[number, number, number, number]>): InteractionRows => {
    const out: InteractionRows = {
      user: new Int32Array(rows.length),
      item: new Int32Array(rows.length),
      label: new Float32Array(rows.length),
      timestamp: new Float64Array(rows.length),
    };
    rows.forEach(([u, it, l, t], i) => {
      out.user[i] = u;
      out.item[i] = it;
      out.label[i] = l;
      out.timestamp[i] = t;
    });
    if (c.extraFields) {
      const F = fields.length;
      const fv = new Int32Array(rows.length * F);
      rows.forEach(([u, it], i) => {
        fv[i * F] = u;
        fv[i * F + 1] = it;
        fv[i * F + 2] = itemCategory[it];
        fv[i * F + 3] = userSegment[u];
        fv[i * F + 4] = frng.int(fields[4].vocab);
        fv[i * F + 5] = frng.int(fields[5].vocab);
      });
      out.fields = fv;
    }
    return out;
  };

  return {
    config: c,
    fields,
    train: toColumns(trainRows),
    candidates: toColumns(candRows),
    candidatesPerUser: 1 + c.candidateNegatives,
    itemPopularity: popularity,
    coldItems,
  };
}

/**
 * Writes rows as CSV: `user,item,label,timestamp`, then one column per extra field (named as
 * the field) when the rows carry fields. Written to a temp file and renamed.
 */
export async function writeInteractionsCsv(file: string, rows: InteractionRows, fields?: FieldSpec[]): Promise<void> {
  const extra = rows.fields && fields ? fields.slice(2) : [];
  const F = fields?.length ?? 0;
  const header = ['user', 'item', 'label', 'timestamp', ...extra.map((f) => f.name)].join(',');
  const lines: string[] = [header];
  for (let i = 0; i < rows.user.length; i++) {
    let line = `${rows.user[i]},${rows.item[i]},${rows.label[i]},${rows.timestamp[i]}`;
    for (let e = 0; e < extra.length; e++) line += `,${rows.fields![i * F + 2 + e]}`;
    lines.push(line);
  }
  await fs.promises.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await writeFileAtomic(file, new TextEncoder().encode(lines.join('\n') + '\n'));
}
