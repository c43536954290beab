// `prunescope compress` on models PyTorch trained and exported (test/fixtures/pytorch/exports.ts),
// as our users' models are: a NeuMF that outputs logits, a two-tower and a DeepFM with one
// `fields` input. The search runs end to end; the written model keeps the exported inputs and
// outputs, runs in ONNX Runtime and still outputs logits (nothing squashed into [0, 1]); the
// front is non-dominated; the budget holds on the choosing users; the chosen recipe replays.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ManifestModel, pytorchExports, sampleFeeds } from '../fixtures/pytorch/exports.js';

const CLI = join(__dirname, '..', '..', 'src', 'cli', 'main.js');

interface Point {
  label: string;
  origin: string;
  bytes: number;
  ratio: number;
  kept: number;
  keptMeasured?: number;
  latency?: { ratio: number };
  recipe: Array<{ method: string; settings: Record<string, unknown> }>;
}

interface Search {
  chosen: Point;
  front: Point[];
  trained?: Point[];
  withinBudget: boolean;
  recipes: string;
  phases: Array<{ name: string; candidates: number }>;
}

function compress(args: string[]): Search {
  const r = spawnSync(process.execPath, [CLI, 'compress', ...args, '--json'], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ps-compress-pytorch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** No front member is dominated by another in size, the budget's metric and latency. */
function assertNonDominated(front: Point[]): void {
  for (const a of front) {
    for (const b of front) {
      if (a === b || !a.latency || !b.latency) continue;
      const noWorse = a.bytes <= b.bytes && a.kept >= b.kept && a.latency.ratio <= b.latency.ratio;
      const better = a.bytes < b.bytes || a.kept > b.kept || a.latency.ratio < b.latency.ratio;
      assert.ok(!(noWorse && better), `${a.label} dominates ${b.label} on the front`);
    }
  }
}

/**
 * The written model and the original on the first 2000 rows of the export's candidates (user and
 * item ids, the export's input names): the same inputs and outputs; returns both models' scores.
 */
async function scoresOf(file: string, original: string, m: ManifestModel, candidates: string): Promise<{ after: Float32Array; before: Float32Array }> {
  const [s, o] = await Promise.all([ort.InferenceSession.create(file), ort.InferenceSession.create(original)]);
  assert.deepEqual([...s.inputNames].sort(), [...o.inputNames].sort(), `${m.file}: inputs changed`);
  assert.deepEqual(s.outputNames, o.outputNames, `${m.file}: outputs changed`);
  const rows = readFileSync(candidates, 'utf8').trim().split('\n').slice(1, 2001).map((l) => l.split(',').map(Number));
  const feeds = { user: ids(rows.map((r) => r[0])), item: ids(rows.map((r) => r[1])) };
  const [after, before] = await Promise.all([s, o].map(async (x) => (await x.run(feeds))[x.outputNames[0]].data as Float32Array));
  assert.ok(after.every((x) => Number.isFinite(x)), `${m.file}: non-finite scores`);
  return { after, before };
}

function ids(v: number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(v.map(BigInt)), [v.length]);
}

function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) (ma += a[i] / n), (mb += b[i] / n);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < n; i++) {
    ab += (a[i] - ma) * (b[i] - mb);
    aa += (a[i] - ma) ** 2;
    bb += (b[i] - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

function replays(recipes: string, out: string, dir: string): void {
  const chosen = readdirSync(recipes).find((n) => n.endsWith('.recipe.json') && n.includes('-chosen'));
  assert.ok(chosen, readdirSync(recipes).join(', '));
  const replayed = join(dir, `replayed-${basename(out)}`);
  const r = spawnSync(process.execPath, [CLI, 'run', join(recipes, chosen), '--out', replayed, '--no-latency'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(readFileSync(replayed).equals(readFileSync(out)), 'the chosen recipe replayed gives other bytes');
}

test('compress, training-free, on the PyTorch NeuMF and two-tower that output logits: within budget on the choosing users, logits kept, the chosen recipe replays byte for byte', async (t) => {
  const e = pytorchExports();
  if (!e) return t.skip('PyTorch not installed');
  const dir = tempDir(t);
  for (const file of ['neumf_logit.onnx', 'twotower_logit.onnx']) {
    const m: ManifestModel = e.models.find((x) => x.file === file)!;
    assert.equal(m.output, 'logit');
    const model = join(e.dir, file);
    const out = join(dir, `small-${file}`);
    const j = compress([model, '--candidates', join(e.dir, m.candidates), '--holdout', '0.5', '--max-drop', '0.02', '--budget-minutes', '1', '--out', out]);
    assert.ok(j.withinBudget, `${file}: ${JSON.stringify(j.chosen)}`);
    assert.ok(j.chosen.kept >= 0.98 && j.chosen.ratio > 2, `${file}: ${j.chosen.label} ${j.chosen.ratio}x, kept ${j.chosen.kept}`);
    assert.equal(readFileSync(out).length, j.chosen.bytes);
    assertNonDominated(j.front);
    assert.ok(j.front.some((p) => p.label === j.chosen.label), `${file}: the chosen model is not on the front`);
    const { after, before } = await scoresOf(out, model, m, join(e.dir, m.candidates));
    // still logits: about as far below 0 as the original's, and scoring as the original does
    const [lo, hi] = [Math.min(...before), Math.max(...before)];
    assert.ok(lo < 0 && Math.min(...after) < lo / 2, `${file}: scores ${Math.min(...after)}..${Math.max(...after)}, the original's ${lo}..${hi}`);
    assert.ok(pearson(after, before) > 0.95, `${file}: correlation with the original's scores ${pearson(after, before)}`);
    replays(j.recipes, out, dir);
  }
});

test('compress --data on the PyTorch DeepFM (one fields input): fine-tuned and distilled candidates compete, the model keeps its fields input and outputs logits', async (t) => {
  const e = pytorchExports();
  if (!e) return t.skip('PyTorch not installed');
  const dir = tempDir(t);
  const m = e.models.find((x) => x.file === 'deepfm_logit.onnx')!;
  assert.deepEqual(m.inputs, ['fields']);
  const model = join(e.dir, m.file);
  const out = join(dir, 'small-deepfm.onnx');
  const j = compress([model, '--candidates', join(e.dir, m.candidates), '--data', join(e.dir, 'deepfm_train.csv'), '--target-ratio', '2', '--finetune-count', '2', '--budget-minutes', '2', '--out', out]);
  const trained = j.trained ?? [];
  assert.ok(trained.some((p) => p.origin === 'finetuned'), JSON.stringify(j.phases));
  assert.ok(trained.some((p) => p.origin === 'distilled'), JSON.stringify(j.phases));
  for (const p of trained.filter((x) => x.origin === 'finetuned')) {
    const ft = p.recipe.find((s) => s.method === 'finetune')!;
    assert.equal(ft.settings.data, join(e.dir, 'deepfm_train.csv'));
    assert.equal(ft.settings.teacher, model);
  }
  assert.ok(j.chosen.ratio >= 2 || !j.withinBudget, `${j.chosen.label}: ${j.chosen.ratio}x`);
  // students are compared by the expected figure like the rest (not by their measured share, whose
  // noise picks the luckiest): their kept share is the expected one, and none past the target beats the choice
  const students = trained.filter((p) => p.origin === 'distilled' && p.keptMeasured !== undefined);
  assert.ok(students.some((p) => Math.abs(p.kept - p.keptMeasured!) > 1e-6), JSON.stringify(students.map((p) => [p.kept, p.keptMeasured])));
  if (j.withinBudget) {
    for (const p of [...j.front, ...trained].filter((x) => x.ratio >= 2)) assert.ok(p.kept <= j.chosen.kept, `${p.label} (${p.kept}) past 2x beats the chosen ${j.chosen.label} (${j.chosen.kept})`);
  }
  assert.equal(readFileSync(out).length, j.chosen.bytes);
  assertNonDominated(j.front);
  const s = await ort.InferenceSession.create(out);
  assert.deepEqual(s.inputNames, ['fields']);
  const scores = (await s.run(sampleFeeds(m)))[s.outputNames[0]].data as Float32Array;
  assert.equal(scores.length, m.sample.scores.length);
  assert.ok(scores.every((x) => Number.isFinite(x)), `DeepFM scores ${scores.join(', ')}`);
  assert.ok(Math.min(...scores) < 0, `DeepFM scores ${Math.min(...scores)}..${Math.max(...scores)}: not logits`);
});
