// MovieLens-100K for the accuracy benchmarks: read `u.data` from the shared data folder (never
// copied into the repository: its licence forbids redistribution; outputs go to bench-data/,
// which git ignores), turn it into the NCF paper's protocol, train a NeuMF on it and evaluate
// it through the project's runners in both formats.
//
// Protocol (He et al. 2017):
//  - implicit feedback: every rating, whatever its value, is a positive; ids become 0-based;
//  - leave-one-out by time: each user's latest interaction is the test positive. Ties on the
//    timestamp are broken by item id (the larger id counts as later), so the split is the same
//    on every machine;
//  - 99 negatives per user, sampled uniformly (seeded) from the items the user never rated
//    (the test item included among those rated), without repetition.
// Outputs: train.csv (user,item,label,timestamp; label 1) and candidates.csv (user,item,label;
// 100 rows per user, the positive first).
//
// Run: node out/scripts/bench/movielens.js [--data DIR] [--out DIR] [--epochs N] [--dim D]
// Importing this file runs nothing.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { evaluateModel, scoreModel } from '../../src/core/eval/evaluate.js';
import { fieldsMatrix, forEachLine, readInteractions } from '../../src/core/eval/interactions.js';
import { ModelFileError } from '../../src/core/model/ir.js';
import { fileSystemSaveHandler } from '../../src/core/model/tfjs-io.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { InteractionData, InteractionRows } from '../../src/core/samples/interactions.js';
import { buildNeuMF, predictScores, rankingMetrics, trainModel } from '../../src/core/samples/models.js';
import { createRng } from '../../src/core/samples/prng.js';
import { exportLayersModelToOnnx } from '../../src/core/samples/to-onnx.js';

/** The repository root: the nearest folder above this file holding package.json. */
export function repoRoot(from = __dirname): string {
  let dir = path.resolve(from);
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(from);
    dir = up;
  }
}

export function defaultMovieLensDir(): string {
  return path.resolve(repoRoot(), '../shared/data/ml-100k');
}

export interface MovieLensRatings {
  /** 0-based */
  user: Int32Array;
  item: Int32Array;
  rating: Float32Array;
  timestamp: Float64Array;
  users: number;
  items: number;
}

/** Reads u.data (TSV: user item rating timestamp, 1-based ids, no header). */
export async function readMovieLensRatings(file: string): Promise<MovieLensRatings> {
  const u: number[] = [];
  const it: number[] = [];
  const r: number[] = [];
  const t: number[] = [];
  let users = 0;
  let items = 0;
  await forEachLine(file, (line, ln) => {
    if (line.trim() === '') return;
    const cells = line.split('\t');
    if (cells.length !== 4) throw new ModelFileError(file, `line ${ln}: ${cells.length} tab-separated columns, expected 4 (user item rating timestamp)`);
    const [uu, ii, rr, tt] = cells.map(Number);
    if (!Number.isInteger(uu) || uu < 1) throw new ModelFileError(file, `line ${ln}: user '${cells[0]}' is not a 1-based id`);
    if (!Number.isInteger(ii) || ii < 1) throw new ModelFileError(file, `line ${ln}: item '${cells[1]}' is not a 1-based id`);
    if (!Number.isFinite(rr) || !Number.isFinite(tt)) throw new ModelFileError(file, `line ${ln}: rating or timestamp is not a number`);
    u.push(uu - 1);
    it.push(ii - 1);
    r.push(rr);
    t.push(tt);
    users = Math.max(users, uu);
    items = Math.max(items, ii);
  });
  if (u.length === 0) throw new ModelFileError(file, 'no ratings');
  return { user: Int32Array.from(u), item: Int32Array.from(it), rating: Float32Array.from(r), timestamp: Float64Array.from(t), users, items };
}

export interface LeaveOneOutSplit {
  users: number;
  items: number;
  /** positives for training (everything but each user's latest) */
  train: { user: Int32Array; item: Int32Array; timestamp: Float64Array };
  /** per user, the held-out item (-1 for a user with a single interaction: not evaluated) */
  testItem: Int32Array;
  /** per user, the sorted ids of every item the user rated (train and test) */
  rated: Int32Array[];
  /** per user: [testItem, ...negatives] */
  candidates: Int32Array[];
}

/** Leave-one-out by timestamp (ties: larger item id is later) and `negatives` sampled per user. */
export function leaveOneOut(r: MovieLensRatings, negatives = 99, seed = 1): LeaveOneOutSplit {
  const byUser: number[][] = Array.from({ length: r.users }, () => []);
  for (let i = 0; i < r.user.length; i++) byUser[r.user[i]].push(i);
  const trainRows: number[] = [];
  const testItem = new Int32Array(r.users).fill(-1);
  const rated: Int32Array[] = [];
  const candidates: Int32Array[] = [];
  const rng = createRng(seed);
  const mark = new Uint8Array(r.items);
  for (let u = 0; u < r.users; u++) {
    const rows = byUser[u].sort((a, b) => r.timestamp[a] - r.timestamp[b] || r.item[a] - r.item[b]);
    const items = Int32Array.from(new Set(rows.map((i) => r.item[i]))).sort();
    rated.push(items);
    if (rows.length < 2) {
      for (const i of rows) trainRows.push(i);
      candidates.push(new Int32Array(0));
      continue;
    }
    const last = rows[rows.length - 1];
    testItem[u] = r.item[last];
    for (let j = 0; j < rows.length - 1; j++) trainRows.push(rows[j]);
    const unrated = r.items - items.length;
    if (unrated < negatives) throw new Error(`user ${u + 1} rated ${items.length} of ${r.items} items: fewer than ${negatives} left to sample`);
    for (const it of items) mark[it] = 1;
    const c = new Int32Array(1 + negatives);
    c[0] = testItem[u];
    let n = 1;
    while (n <= negatives) {
      const cand = rng.int(r.items);
      if (mark[cand]) continue;
      mark[cand] = 2; // picked: no repeats
      c[n++] = cand;
    }
    for (let j = 1; j <= negatives; j++) mark[c[j]] = 0;
    for (const it of items) mark[it] = 0;
    candidates.push(c);
  }
  return {
    users: r.users,
    items: r.items,
    train: {
      user: Int32Array.from(trainRows, (i) => r.user[i]),
      item: Int32Array.from(trainRows, (i) => r.item[i]),
      timestamp: Float64Array.from(trainRows, (i) => r.timestamp[i]),
    },
    testItem,
    rated,
    candidates,
  };
}

async function writeAtomically(file: string, text: string): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.promises.writeFile(tmp, text);
  await fs.promises.rename(tmp, file);
}

export interface PreparedMovieLens {
  dataDir: string;
  outDir: string;
  trainCsv: string;
  candidatesCsv: string;
  users: number;
  items: number;
  trainRows: number;
  evaluatedUsers: number;
  split: LeaveOneOutSplit;
}

export interface PrepareOptions {
  /** folder with u.data; default ../shared/data/ml-100k next to the repository */
  dataDir?: string;
  /** default <repo>/bench-data/ml-100k */
  outDir?: string;
  negatives?: number;
  seed?: number;
}

/** Writes train.csv and candidates.csv; `{ skipped }` (nothing written) when u.data is absent. */
export async function prepareMovieLens(opts: PrepareOptions = {}): Promise<PreparedMovieLens | { skipped: string }> {
  const dataDir = path.resolve(opts.dataDir ?? defaultMovieLensDir());
  const uData = path.join(dataDir, 'u.data');
  if (!fs.existsSync(uData)) return { skipped: `MovieLens-100K not found at ${uData}: skipping the MovieLens benchmark` };
  const outDir = path.resolve(opts.outDir ?? path.join(repoRoot(), 'bench-data', 'ml-100k'));
  const split = leaveOneOut(await readMovieLensRatings(uData), opts.negatives ?? 99, opts.seed ?? 1);
  const train = ['user,item,label,timestamp'];
  for (let i = 0; i < split.train.user.length; i++) train.push(`${split.train.user[i]},${split.train.item[i]},1,${split.train.timestamp[i]}`);
  const cand = ['user,item,label'];
  let evaluated = 0;
  split.candidates.forEach((c, u) => {
    if (c.length === 0) return;
    evaluated++;
    for (let j = 0; j < c.length; j++) cand.push(`${u},${c[j]},${j === 0 ? 1 : 0}`);
  });
  const trainCsv = path.join(outDir, 'train.csv');
  const candidatesCsv = path.join(outDir, 'candidates.csv');
  await writeAtomically(trainCsv, train.join('\n') + '\n');
  await writeAtomically(candidatesCsv, cand.join('\n') + '\n');
  return { dataDir, outDir, trainCsv, candidatesCsv, users: split.users, items: split.items, trainRows: split.train.user.length, evaluatedUsers: evaluated, split };
}

/** Training rows for one epoch: every positive plus `ratio` negatives each, drawn from unrated items. */
export function sampleTrainingRows(split: LeaveOneOutSplit, ratio: number, seed: number): InteractionRows {
  const rng = createRng(seed);
  const P = split.train.user.length;
  const n = P * (1 + ratio);
  const rows: InteractionRows = { user: new Int32Array(n), item: new Int32Array(n), label: new Float32Array(n), timestamp: new Float64Array(0) };
  const ratedSet = split.rated.map((r) => new Set(r));
  let o = 0;
  for (let i = 0; i < P; i++) {
    const u = split.train.user[i];
    rows.user[o] = u;
    rows.item[o] = split.train.item[i];
    rows.label[o++] = 1;
    for (let j = 0; j < ratio; j++) {
      let neg: number;
      do neg = rng.int(split.items);
      while (ratedSet[u].has(neg));
      rows.user[o] = u;
      rows.item[o] = neg;
      rows.label[o++] = 0;
    }
  }
  return rows;
}

export interface NeuMFBenchOptions extends PrepareOptions {
  epochs?: number;
  /** GMF and MLP embedding width; default 32 */
  dim?: number;
  hidden?: number[];
  batchSize?: number;
  lr?: number;
  /** negatives per positive in training, fresh each epoch; default 4 */
  negativeRatio?: number;
  onEpoch?: (epoch: number, loss: number, hr: number, ndcg: number) => void;
}

export interface NeuMFBenchResult {
  epochs: number;
  dim: number;
  hidden: number[];
  backend: string;
  trainSeconds: number;
  losses: number[];
  params: number;
  /** in-process predictScores + rankingMetrics (the training code's own view) */
  inProcess: { hr: number; ndcg: number };
  tfjs: { hr: number; ndcg: number; runtime: string; bytes: number; gzipBytes: number };
  onnx: { hr: number; ndcg: number; runtime: string; bytes: number; gzipBytes: number };
  /** max |TF.js score - ORT score| over every candidate */
  maxScoreDiff: number;
  tfjsModelJson: string;
  onnxPath: string;
  candidatesCsv: string;
  trainCsv: string;
}

/** Trains NeuMF on MovieLens-100K and evaluates it as TF.js and as ONNX through src/core/eval. */
export async function trainAndEvaluateNeuMF(opts: NeuMFBenchOptions = {}): Promise<NeuMFBenchResult | { skipped: string }> {
  const prepared = await prepareMovieLens(opts);
  if ('skipped' in prepared) return prepared;
  const backend = await initTfjs('auto');
  const dim = opts.dim ?? 32;
  const hidden = opts.hidden ?? [64, 32, 16];
  const epochs = opts.epochs ?? 10;
  const ratio = opts.negativeRatio ?? 4;
  const { split } = prepared;
  const model = buildNeuMF({ users: split.users, items: split.items, gmfDim: dim, mlpDim: dim, hidden, seed: 1 });
  // candidate rows in the order of candidates.csv, for the in-process view
  const evalUsers = split.candidates.map((c, u) => (c.length > 0 ? u : -1)).filter((u) => u >= 0);
  const per = split.candidates[evalUsers[0]].length;
  const cand: InteractionRows = {
    user: new Int32Array(evalUsers.length * per),
    item: new Int32Array(evalUsers.length * per),
    label: new Float32Array(evalUsers.length * per),
    timestamp: new Float64Array(0),
  };
  evalUsers.forEach((u, b) => {
    cand.user.fill(u, b * per, (b + 1) * per);
    cand.item.set(split.candidates[u], b * per);
    cand.label[b * per] = 1;
  });
  try {
    const losses: number[] = [];
    let trainSeconds = 0;
    for (let e = 0; e < epochs; e++) {
      const train = sampleTrainingRows(split, ratio, 1000 + e);
      const data = { fields: [], train } as unknown as InteractionData;
      const r = await trainModel(model, data, { epochs: 1, batchSize: opts.batchSize ?? 512, lr: opts.lr ?? 0.002, seed: 7 + e });
      trainSeconds += r.seconds;
      losses.push(r.losses[0]);
      const m = rankingMetrics(predictScores(model, cand), per, 10);
      opts.onEpoch?.(e, r.losses[0], m.hitRate, m.ndcg);
    }
    const inProcess = rankingMetrics(predictScores(model, cand), per, 10);
    const tfjsModelJson = path.join(prepared.outDir, 'neumf-tfjs', 'model.json');
    const onnxPath = path.join(prepared.outDir, 'neumf.onnx');
    await model.save(fileSystemSaveHandler(tfjsModelJson));
    await exportLayersModelToOnnx(model, onnxPath, { graphName: 'neumf', metadata: { dataset: 'movielens-100k', epochs: String(epochs) } });
    const t = await evaluateModel(tfjsModelJson, { candidates: prepared.candidatesCsv, k: 10 });
    const o = await evaluateModel(onnxPath, { candidates: prepared.candidatesCsv, k: 10 });
    const table = await readInteractions(prepared.candidatesCsv);
    const batch = { user: table.user, item: table.item, fields: table.extra.length ? fieldsMatrix(table) : undefined };
    const st = await scoreModel(tfjsModelJson, batch);
    const so = await scoreModel(onnxPath, batch);
    let maxScoreDiff = 0;
    for (let i = 0; i < st.length; i++) maxScoreDiff = Math.max(maxScoreDiff, Math.abs(st[i] - so[i]));
    return {
      epochs,
      dim,
      hidden,
      backend: backend.backend,
      trainSeconds,
      losses,
      params: model.countParams(),
      inProcess: { hr: inProcess.hitRate, ndcg: inProcess.ndcg },
      tfjs: { hr: t.hr!, ndcg: t.ndcg!, runtime: t.runtime, bytes: t.bytes, gzipBytes: t.gzipBytes },
      onnx: { hr: o.hr!, ndcg: o.ndcg!, runtime: o.runtime, bytes: o.bytes, gzipBytes: o.gzipBytes },
      maxScoreDiff,
      tfjsModelJson,
      onnxPath,
      candidatesCsv: prepared.candidatesCsv,
      trainCsv: prepared.trainCsv,
    };
  } finally {
    model.dispose();
  }
}

// the file-name check keeps this CLI from running when the module is bundled into dist/bench.js
if (require.main === module && /movielens\.js$/.test(process.argv[1] ?? '')) {
  const argv = process.argv.slice(2);
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string) => (arg(name) !== undefined ? Number(arg(name)) : undefined);
  const t0 = Date.now();
  trainAndEvaluateNeuMF({
    dataDir: arg('data'),
    outDir: arg('out'),
    epochs: num('epochs'),
    dim: num('dim'),
    batchSize: num('batch'),
    lr: num('lr'),
    onEpoch: (e, loss, hr, ndcg) => process.stdout.write(`epoch ${e + 1}: loss ${loss.toFixed(4)}  HR@10 ${hr.toFixed(4)}  NDCG@10 ${ndcg.toFixed(4)}  (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`),
  }).then(
    (r) => {
      if ('skipped' in r) {
        process.stdout.write(r.skipped + '\n');
        return;
      }
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    },
    (e: unknown) => {
      process.stderr.write(`movielens: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
