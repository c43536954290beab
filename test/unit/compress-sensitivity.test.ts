// Sensitivity analysis on the tiny trained NeuMF: each tensor pruned alone, a proposal that meets
// the budget as a whole, nothing left behind, the original untouched.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { readModel } from '../../src/core/model/read-model.js';
import { evaluateModel } from '../../src/core/eval/evaluate.js';
import { sensitivityAnalysis } from '../../src/core/compress/sensitivity.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const fixtureDir = join(tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);

test('sensitivity: per-tensor curves, a proposal within budget, no trial files left', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const onnx = fx.models.neumf.onnxPath!;
  const before = readFileSync(onnx);
  const ir = await readModel(onnx);
  const fractions: number[] = [];
  const r = await sensitivityAnalysis(
    ir,
    { candidates: fx.models.neumf.candidatesCsv, sparsities: [0.5, 0.9], budget: 0.05 },
    { onProgress: (f) => fractions.push(f) },
  );
  const base = await evaluateModel(onnx, { candidates: fx.models.neumf.candidatesCsv, k: 10 });
  assert.equal(r.baseline.ndcg, base.ndcg);
  // one row per embedding table and dense kernel but the scoring layer's, two points each
  const prunable = ir.tensors.filter((t) => (t.role === 'embedding' || t.role === 'dense-kernel') && t.layer !== 'prediction');
  assert.ok(prunable.some((t) => t.role === 'dense-kernel'));
  assert.deepEqual(r.rows.map((x) => x.tensor).sort(), prunable.map((t) => t.name).sort());
  for (const row of r.rows) {
    assert.deepEqual(row.points.map((p) => p.sparsity), [0.5, 0.9]);
    // the proposal is the largest tried sparsity whose drop (and every smaller one's) fits the budget
    const ok = row.points.filter((p, i) => row.points.slice(0, i + 1).every((q) => q.drop <= 0.05));
    assert.equal(row.proposed, ok.length ? ok[ok.length - 1].sparsity : 0);
  }
  assert.ok(r.combined.drop <= 0.05 || r.backoffs === 4, `combined drop ${r.combined.drop} after ${r.backoffs} backoffs`);
  assert.ok(r.combined.sparsity >= 0 && r.combined.sparsity <= 0.9);
  assert.ok(fractions.length > 0 && fractions[fractions.length - 1] === 1);
  assert.deepEqual(readFileSync(onnx), before, 'the original is never written');
  assert.deepEqual(readdirSync(dirname(onnx)).filter((f) => f.includes('sensitivity')), [], 'trial models are removed');
});
