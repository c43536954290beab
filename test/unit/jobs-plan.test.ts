// The 'compress-plan' job on the tiny NeuMF: the chosen model is written at outPath and only
// there, it scores what the search reported, its recipe replayed by a 'compress' job gives the same
// bytes (what "write this front point" runs), the run record matches the result, and a cancel or
// a taken output leaves nothing behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { runJobInProcess } from '../../src/core/jobs/run-job-in-process.js';
import { OutputExistsError, tempDirFor } from '../../src/core/jobs/output-files.js';
import { planSettingsOf } from '../../src/core/jobs/compress-plan-job.js';
import { runRecordOf } from '../../src/core/jobs/run-records.js';
import type { CompressPlanJobSpec, CompressStep, JobProgress } from '../../src/core/jobs/job-types.js';
import type { CompressJobResult, PlanView } from '../../src/shared/protocol.js';
import { evaluateModel } from '../../src/core/eval/evaluate.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const fixtureDir = join(tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);

/** A workspace with the tiny NeuMF and its candidates copied in (the fixture folder is shared). */
async function workspace(): Promise<{ ws: string; model: string; candidates: string }> {
  const fx = await writeTinyFixtures(fixtureDir);
  const ws = mkdtempSync(join(tmpdir(), 'ps-plan-job-'));
  const model = join(ws, 'models', 'neumf.onnx');
  mkdirSync(join(ws, 'models'));
  copyFileSync(fx.models.neumf.onnxPath!, model);
  const candidates = join(ws, 'candidates.csv');
  copyFileSync(fx.models.neumf.candidatesCsv, candidates);
  return { ws, model, candidates };
}

function spec(model: string, candidates: string, outPath: string, extra: Partial<CompressPlanJobSpec> = {}): CompressPlanJobSpec {
  return { kind: 'compress-plan', path: model, candidates, maxDrop: 0.05, budgetMinutes: 1, outPath, tempDir: tempDirFor(outPath), ...extra };
}

test('planSettingsOf passes only what the spec names; maxDrop defaults to 0.01 without a target ratio', () => {
  const base = { kind: 'compress-plan', path: 'm.onnx', candidates: 'c.csv', outPath: 'o.onnx', tempDir: '/t/.prunescope-00.tmp' } as const;
  assert.deepEqual(planSettingsOf(base), { candidates: 'c.csv', maxDrop: 0.01 });
  assert.deepEqual(planSettingsOf({ ...base, targetRatio: 8, maxDrop: 0.02, maxLatencyRatio: 1, data: 'd.csv', k: 5, budgetMinutes: 2, holdout: 0.5, metric: 'hr', seed: 3 }), {
    candidates: 'c.csv',
    data: 'd.csv',
    targetRatio: 8,
    maxLatencyRatio: 1,
    metric: 'hr',
    k: 5,
    budgetMinutes: 2,
    holdout: 0.5,
    seed: 3,
  });
});

test('compress-plan job: the chosen model at outPath, nothing else; its recipe replays to the same bytes; its run record', async () => {
  const { ws, model, candidates } = await workspace();
  try {
    const before = readFileSync(model);
    const out = join(ws, 'models', 'neumf-target.onnx');
    const s = spec(model, candidates, out);
    const progress: JobProgress[] = [];
    const started = new Date();
    const r = (await runJobInProcess(s, new AbortController().signal, (p) => progress.push(p))) as PlanView;
    assert.equal(r.output, out);
    assert.deepEqual(readdirSync(join(ws, 'models')).sort(), ['neumf-target.onnx', 'neumf.onnx'], 'only the chosen model is written (no temp folder, no front)');
    assert.equal(existsSync(s.tempDir), false);
    assert.deepEqual(readFileSync(model), before, 'the original is never written');
    assert.ok(r.chosen.recipe.length > 0);
    assert.equal(statSync(out).size, r.chosen.bytes);
    assert.equal(r.chosen.ratio, r.baseline.bytes / r.chosen.bytes);
    assert.equal(r.baseline.bytes, before.length);
    // the model as written scores what the search said, on the same users (no holdout: all of them)
    const ev = await evaluateModel(out, { candidates, k: 10 });
    assert.equal(ev.ndcg, r.chosen.metrics.ndcg);
    assert.equal(ev.hr, r.chosen.metrics.hr);
    // progress: phases named, fractions in [0, 1], the last one 1
    assert.equal(progress[0].phase, 'reading');
    assert.ok(progress.some((p) => p.phase === 'searching'));
    assert.ok(progress.every((p) => p.fraction >= 0 && p.fraction <= 1));
    assert.deepEqual([progress[progress.length - 1].phase, progress[progress.length - 1].fraction], ['done', 1]);
    // "write this front point": a compress job with the point's recipe gives the same model
    const steps = r.chosen.recipe as CompressStep[];
    const replayOut = join(ws, 'models', 'neumf-replay.onnx');
    const replay = (await runJobInProcess(
      { kind: 'compress', path: model, method: steps[0].method, settings: steps[0].settings, steps, outPath: replayOut, tempDir: tempDirFor(replayOut) },
      new AbortController().signal,
      () => undefined,
    )) as CompressJobResult;
    assert.deepEqual(readFileSync(replayOut), readFileSync(out));
    assert.equal(replay.comparison.bytes.after, r.chosen.bytes);
    // the run record: paths relative to the workspace, figures from the result
    const rec = runRecordOf(s, r, { workspace: ws, startedAt: started, seconds: 12.5 });
    assert.match(rec.id, /^\d{8}T\d{6}Z-[0-9a-f]{4}$/);
    assert.deepEqual({ ...rec, id: '' }, {
      version: 1,
      id: '',
      kind: 'compress-plan',
      title: `compress to target${r.withinBudget ? '' : ' (best effort)'}: ${r.chosen.ratio.toFixed(1)}x smaller, ${(r.chosen.kept * 100).toFixed(1)}% of NDCG@10`,
      model: 'models/neumf.onnx',
      outputs: ['models/neumf-target.onnx'],
      recipe: r.chosen.recipe,
      dataset: 'candidates.csv',
      startedAt: started.toISOString(),
      seconds: 12.5,
      bytes: { before: r.baseline.bytes, after: r.chosen.bytes },
      k: 10,
      ndcg: { before: r.baseline.metrics.ndcg, after: r.chosen.metrics.ndcg },
      hr: { before: r.baseline.metrics.hr, after: r.chosen.metrics.hr },
      auc: { before: r.baseline.metrics.auc, after: r.chosen.metrics.auc },
      // the measured share, as for every other run (the search compared by the expected one)
      front: r.front.map((p) => ({ bytes: p.bytes, kept: p.keptMeasured!, label: p.label })),
      // the planner's paired figure: its ratio, and within noise when neither slower nor 5% faster
      ...(r.chosen.latency && r.baseline.latencyP50Ms !== undefined
        ? {
            latency: [
              {
                batch: 256,
                p50Before: r.baseline.latencyP50Ms,
                p50After: r.chosen.latency.p50Ms,
                pairedRatio: r.chosen.latency.ratio,
                withinNoise: !r.chosen.latency.slower && r.chosen.latency.ratio >= 1 / 1.05,
              },
            ],
          }
        : {}),
    });
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test('compress-plan job: a cancel during the search leaves no output and no temp folder', async () => {
  const { ws, model, candidates } = await workspace();
  try {
    const out = join(ws, 'models', 'neumf-target.onnx');
    const s = spec(model, candidates, out);
    const ac = new AbortController();
    let cancelledAt: JobProgress | undefined;
    const run = runJobInProcess(s, ac.signal, (p) => {
      if (!cancelledAt && p.phase === 'searching' && p.fraction > 0.05) {
        cancelledAt = p;
        ac.abort(new Error('cancelled'));
      }
    });
    await assert.rejects(run);
    assert.ok(cancelledAt, 'the search ended before it could be cancelled');
    assert.equal(existsSync(out), false);
    assert.equal(existsSync(s.tempDir), false);
    assert.deepEqual(readdirSync(join(ws, 'models')), ['neumf.onnx']);
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test('compress-plan job: a taken output or the wrong format fails before any work and writes nothing', async () => {
  const { ws, model, candidates } = await workspace();
  try {
    const out = join(ws, 'models', 'taken.onnx');
    writeFileSync(out, 'mine');
    const s = spec(model, candidates, out);
    const progress: JobProgress[] = [];
    await assert.rejects(runJobInProcess(s, new AbortController().signal, (p) => progress.push(p)), OutputExistsError);
    assert.deepEqual(progress, [], 'no work started');
    assert.equal(readFileSync(out, 'utf8'), 'mine');
    assert.equal(existsSync(s.tempDir), false);
    const tfjsOut = join(ws, 'models', 'neumf-tfjs', 'model.json');
    await assert.rejects(runJobInProcess(spec(model, candidates, tfjsOut), new AbortController().signal, () => undefined), /must be a \.onnx file/);
    assert.deepEqual(readdirSync(join(ws, 'models')).sort(), ['neumf.onnx', 'taken.onnx']);
    assert.equal(basename(s.tempDir).startsWith('.prunescope-'), true);
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});
