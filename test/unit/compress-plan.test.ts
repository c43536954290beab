// The compress-to-target search: its bookkeeping (front, choice, successive halving, per-user
// gains, user splits, the order rules) with exact expectations, and one whole search on the tiny
// NeuMF whose written model and recipes are checked against what the search reported.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseCandidate, dominates, paretoFront, paretoLayers, survivors, type Evaluated } from '../../src/core/compress/plan/front.js';
import { chanceLevel, pairedStandardError, perUserGains, rankableUsers, splitCandidates, type RowSet } from '../../src/core/compress/plan/scoring.js';
import { assignmentKey, quantizeSteps, searchSpace, splitAtFieldDrop, storedAssignmentKey, structuralSteps, type PlanStep, type SearchUnit } from '../../src/core/compress/plan/space.js';
import { candidateRanking } from '../../src/core/eval/metrics.js';
import type { InteractionTable } from '../../src/core/eval/interactions.js';
import type { ModelIR, ModelTensor } from '../../src/core/model/ir.js';
import { readModel } from '../../src/core/model/read-model.js';
import { evaluateModel } from '../../src/core/eval/evaluate.js';
import { combinationsWithin, expectedTrainingMs, optionTier, sensitivityOrder, studentRatioFor } from '../../src/core/compress/plan/planner.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const P = (id: string, bytes: number, metric: number, latencyRatio?: number, se?: number): Evaluated => ({ id, bytes, metric, users: 100, latencyRatio, se });

test('front: a fixed candidate set gives a known front, layers and order', () => {
  const pts = [P('a', 100, 0.30), P('b', 50, 0.29), P('c', 50, 0.28), P('d', 20, 0.2), P('e', 120, 0.30), P('f', 20, 0.2)];
  assert.equal(dominates(pts[1], pts[2]), true);
  assert.equal(dominates(pts[0], pts[4]), true);
  assert.equal(dominates(pts[3], pts[5]), false, 'equal points do not dominate each other');
  assert.deepEqual(paretoFront(pts).map((p) => p.id), ['d', 'f', 'b', 'a']);
  assert.deepEqual(paretoLayers(pts).map((l) => l.map((p) => p.id)), [['d', 'f', 'b', 'a'], ['c', 'e']]);
  // latency is a third axis only where both have it
  assert.equal(dominates(P('x', 10, 0.3, 2), P('y', 10, 0.3, 1)), false);
  assert.equal(dominates(P('x', 10, 0.3, 1), P('y', 10, 0.3, 2)), true);
});

test('choice: smallest within the drop, most accurate at a ratio, best effort, latency, margin', () => {
  const pts = [P('a', 100, 0.30), P('b', 50, 0.297), P('c', 25, 0.29), P('d', 10, 0.2)];
  const base = { bytes: 1000, metric: 0.3 };
  const c1 = chooseCandidate(pts, base, { maxDrop: 0.01 });
  assert.deepEqual([c1.chosen.id, c1.withinBudget], ['b', true]);
  const c2 = chooseCandidate(pts, base, { targetRatio: 30 });
  assert.deepEqual([c2.chosen.id, c2.withinBudget], ['c', true]);
  const c3 = chooseCandidate(pts, base, { targetRatio: 200 });
  assert.deepEqual([c3.chosen.id, c3.withinBudget], ['d', false]);
  const c4 = chooseCandidate([P('a', 100, 0.25), P('b', 50, 0.2)], base, { maxDrop: 0.01 });
  assert.deepEqual([c4.chosen.id, c4.withinBudget], ['a', false]);
  // --max-drop 0: a metric equal to the original's but for float rounding keeps it
  assert.equal(chooseCandidate([P('a', 100, 0.3), P('b', 50, 0.3 * (1 - 1e-12))], base, { maxDrop: 0 }).chosen.id, 'b');
  // b is 3x slower: excluded under a latency cap
  const slow = [P('a', 100, 0.30, 1), P('b', 50, 0.297, 3)];
  assert.equal(chooseCandidate(slow, base, { maxDrop: 0.01, maxLatencyRatio: 1.2 }).chosen.id, 'a');
  // every candidate slower than the cap: a best effort, said so, never a silent drop of the cap
  const allSlow = [P('a', 100, 0.30, 2.5), P('b', 50, 0.297, 3), P('c', 25, 0.1, 1.5)];
  const c6 = chooseCandidate(allSlow, base, { maxDrop: 0.01, maxLatencyRatio: 1.2 });
  assert.deepEqual([c6.chosen.id, c6.withinBudget, c6.reason], ['a', false, 'no candidate runs within 1.2x the original\'s latency: the fastest of those that meet the rest of the budget (2.50x)']);
  const c7 = chooseCandidate(allSlow, base, { targetRatio: 200, maxLatencyRatio: 1 });
  assert.deepEqual([c7.chosen.id, c7.withinBudget, c7.reason], ['c', false, 'no candidate runs within 1x the original\'s latency and none meets the rest of the budget: the fastest one found (1.50x)']);
  // small enough candidates exist, but only slower ones: the cap holds, and the reason says what was left out
  const c8 = chooseCandidate([P('a', 100, 0.30, 1), P('b', 20, 0.29, 3)], base, { targetRatio: 30, maxLatencyRatio: 1.2 });
  assert.deepEqual([c8.chosen.id, c8.withinBudget, c8.reason], ['a', false, 'no candidate is 30x smaller: the smallest one found; candidates slower than 1.2x the original\'s latency left out']);
  // with a margin of one standard error, b (0.297 - 0.002 < 0.297 floor) no longer qualifies
  const noisy = [P('a', 100, 0.30, undefined, 0.001), P('b', 50, 0.297, undefined, 0.002)];
  assert.equal(chooseCandidate(noisy, base, { maxDrop: 0.01 }).chosen.id, 'b');
  assert.equal(chooseCandidate(noisy, base, { maxDrop: 0.01, confidence: 1 }).chosen.id, 'a');
  // when no candidate clears the margin, the face-value choice, said so
  const c5 = chooseCandidate([P('b', 50, 0.297, undefined, 0.002)], base, { maxDrop: 0.01, confidence: 1 });
  assert.deepEqual([c5.chosen.id, c5.withinBudget], ['b', true]);
  assert.match(c5.reason, /at face value/);
});

test('successive halving keeps whole front layers first, then those nearest the floor', () => {
  const pts = [P('a', 100, 0.30), P('b', 50, 0.29), P('c', 60, 0.28), P('d', 70, 0.20), P('e', 80, 0.291)];
  // layers: [b, e, a], [c], [d]
  assert.deepEqual(paretoLayers(pts).map((l) => l.map((p) => p.id)), [['b', 'e', 'a'], ['c'], ['d']]);
  assert.deepEqual(survivors(pts, 2, 0.299).map((p) => p.id), ['a', 'e']);
  assert.deepEqual(survivors(pts, 4, 0.299).map((p) => p.id), ['b', 'e', 'a', 'c']);
  assert.deepEqual(survivors(pts, 9, 0.29).map((p) => p.id), pts.map((p) => p.id));
});

test('per-user gains average to candidateRanking, ties against the positive; paired standard error', () => {
  // users 3 and 7: positive first; user 7's positive ties with a negative
  const user = Int32Array.from([3, 3, 3, 7, 7, 7, 9, 9]);
  const label = Float32Array.from([1, 0, 0, 1, 0, 0, 0, 0]);
  const scores = Float32Array.from([0.9, 0.1, 0.95, 0.5, 0.5, 0.1, 0.3, 0.2]);
  const rows: RowSet = { users: 3, user, label, batch: { user, item: user } };
  const g = perUserGains(rows, scores, 2);
  assert.deepEqual([...g.hr], [1, 1]);
  assert.deepEqual([...g.ndcg], [1 / Math.log2(3), 1 / Math.log2(3)]);
  const r = candidateRanking(user, label, scores, 2);
  assert.equal(r.ndcg, (g.ndcg[0] + g.ndcg[1]) / 2);
  const g1 = perUserGains(rows, scores, 1);
  assert.deepEqual([...g1.hr], [0, 0]);
  assert.equal(pairedStandardError(Float64Array.from([1, 1, 1]), Float64Array.from([1, 1, 1])), 0);
  // differences 1, 0, 0, 0: mean 0.25, sample variance 0.25, se = sqrt(0.25 / 4)
  assert.equal(pairedStandardError(Float64Array.from([1, 0, 1, 0]), Float64Array.from([0, 0, 1, 0])), 0.25);
});

test('user splits: seeded, disjoint, nested levels', () => {
  const n = 40;
  const user = Int32Array.from({ length: n * 3 }, (_, i) => Math.floor(i / 3));
  const label = Float32Array.from({ length: n * 3 }, (_, i) => (i % 3 === 0 ? 1 : 0));
  const t = { file: 'c.csv', rows: n * 3, delimiter: ',', header: [], user, item: user, label, extra: [] } as unknown as InteractionTable;
  const s = splitCandidates(t, { holdout: 0.5, seed: 7 });
  assert.deepEqual(s.levels.map((l) => l.users), [5, 10, 20]);
  assert.equal(s.judge!.users, 20);
  const set = (r: RowSet) => new Set(r.user);
  const [q, h, all] = s.levels.map(set);
  for (const u of q) assert.ok(h.has(u));
  for (const u of h) assert.ok(all.has(u));
  for (const u of set(s.judge!)) assert.ok(!all.has(u), `user ${u} is both judged and chosen on`);
  assert.deepEqual([...s.levels[2].user], [...splitCandidates(t, { holdout: 0.5, seed: 7 }).levels[2].user], 'same seed, same split');
  assert.notDeepEqual([...s.levels[2].user], [...splitCandidates(t, { holdout: 0.5, seed: 8 }).levels[2].user]);
  // a held-out share that leaves fewer than 10 users to choose on is refused, with the numbers
  assert.throws(() => splitCandidates(t, { holdout: 0.9, seed: 7 }), /c\.csv: --holdout 0\.9 leaves 4 of its 40 users to choose on; at least 10 are needed/);
  assert.equal(splitCandidates(t, { holdout: 0.75, seed: 7 }).levels[2].users, 10);
});

test('chance level: what a random order of each user\'s candidates scores, exactly', () => {
  // 400 users, 5 candidates each, the first one positive; and 100 users with 10, 20 without a positive
  const block = (rows: number, each: number, first: number) => Array.from({ length: rows }, (_, i) => first + Math.floor(i / each));
  const user = Int32Array.from([...block(2000, 5, 0), ...block(1000, 10, 400), ...block(60, 3, 500)]);
  const label = Float32Array.from(user, (u, i) => (i < 2000 ? (i % 5 === 0 ? 1 : 0) : i < 3000 ? ((i - 2000) % 10 === 0 ? 1 : 0) : 0));
  const rows: RowSet = { users: 500, batch: { user, item: user }, user, label };
  // HR@5: 400 users always hit, 100 users hit with probability 1/2
  const hr = chanceLevel(rows, 5, 'hr');
  assert.ok(Math.abs(hr.mean - (400 + 50) / 500) < 1e-12, String(hr.mean));
  assert.ok(Math.abs(hr.sd - Math.sqrt(100 * 0.25) / 500) < 1e-12, String(hr.sd));
  // NDCG@5: sum of 1/log2(r + 1) over r <= 5, over 5 or over 10
  const g = [1, 2, 3, 4, 5].reduce((a, r) => a + 1 / Math.log2(r + 1), 0);
  const ndcg = chanceLevel(rows, 5, 'ndcg');
  assert.ok(Math.abs(ndcg.mean - (400 * (g / 5) + 100 * (g / 10)) / 500) < 1e-12, String(ndcg.mean));
  // against 200 seeded random orders: within 3 standard errors of the simulated mean
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  let sum = 0;
  for (let d = 0; d < 200; d++) sum += candidateRanking(user, label, Float32Array.from(user, () => rand()), 5).ndcg;
  assert.ok(Math.abs(sum / 200 - ndcg.mean) < (3 * ndcg.sd) / Math.sqrt(200), `${sum / 200} vs ${ndcg.mean}`);
  // AUC: 0.5, Mann-Whitney spread
  const a = chanceLevel(rows, 5, 'auc');
  const pos = 500;
  const neg = user.length - pos;
  assert.deepEqual(a, { mean: 0.5, sd: Math.sqrt((pos + neg + 1) / (12 * pos * neg)) });
});

/** the graph of a model made of tensors alone (searchSpace reads which tables a subgraph gathers) */
const NO_NODES = { inputs: [], outputs: [], nodes: [] };

function tensor(name: string, role: ModelTensor['role'], shape: number[]): ModelTensor {
  return { name, role, shape, dtype: 'float32', consumers: [] } as unknown as ModelTensor;
}

test('order rules: rows, dims, low rank, then one quantize step per dtype naming the factors', () => {
  const ir = { format: 'onnx', graph: NO_NODES, tensors: [tensor('user_emb', 'embedding', [100, 16]), tensor('item_emb', 'embedding', [200, 16]), tensor('fc1', 'dense-kernel', [32, 16]), tensor('fc2', 'dense-kernel', [16, 16])] } as unknown as ModelIR;
  const units: SearchUnit[] = searchSpace(ir);
  assert.deepEqual(units.map((u) => u.name), ['user_emb', 'item_emb', 'dense']);
  assert.deepEqual(units[0].options.slice(0, 6).map((o) => o.id), ['float32', 'float16', 'int8', 'int4', 'int3', 'int2']);
  assert.ok(units[0].options.some((o) => o.id === 'r0.9+int4') && units[0].options.some((o) => o.id === 'rows0.5+int8'));
  const a = { user_emb: 'rows0.5+int4', item_emb: 'r0.9+int8', dense: 'float16' };
  assert.equal(assignmentKey(units, a), 'user_emb=rows0.5+int4 item_emb=r0.9+int8 dense=float16');
  assert.equal(assignmentKey(units, {}), 'original');
  assert.deepEqual(structuralSteps(units, a, (t) => (t === 'user_emb' ? [1, 2] : undefined)), [
    { method: 'prune-rows', settings: { table: 'user_emb', keep: 0.5, importance: { counts: [1, 2] } } },
    { method: 'factorize', settings: { tensors: ['item_emb'], energy: 0.9 } },
  ]);
  const after = { format: 'onnx', graph: NO_NODES, tensors: [tensor('user_emb', 'embedding', [50, 16]), tensor('item_emb_lowrank', 'embedding', [200, 5]), tensor('item_emb_proj', 'dense-kernel', [5, 16]), tensor('fc1', 'dense-kernel', [32, 16]), tensor('fc2', 'dense-kernel', [16, 16])] } as unknown as ModelIR;
  assert.deepEqual(quantizeSteps(units, a, after), [
    { method: 'quantize', settings: { dtype: 'int4', tensors: ['user_emb'] } },
    { method: 'quantize', settings: { dtype: 'int8', tensors: ['item_emb_lowrank', 'item_emb_proj'] } },
    { method: 'quantize', settings: { dtype: 'float16', tensors: ['fc1', 'fc2'] } },
  ]);
  // per-column scales ("col"): their own quantize step; a factor under 8 wide is per column
  // anyway, so it joins the plain step of its dtype (the same model, built once)
  assert.deepEqual(units[0].options.slice(6, 9).map((o) => o.id), ['int4col', 'int3col', 'int2col']);
  assert.ok(units[0].options.some((o) => o.id === 'r0.9+int4col') && !units[0].options.some((o) => o.id === 'r0.9+int2col'));
  const wideFactor = { format: 'onnx', graph: NO_NODES, tensors: [tensor('user_emb', 'embedding', [100, 16]), tensor('item_emb_lowrank', 'embedding', [200, 9]), tensor('item_emb_proj', 'dense-kernel', [9, 16])] } as unknown as ModelIR;
  const cols = { user_emb: 'int4col', item_emb: 'r0.9+int4col' };
  assert.deepEqual(quantizeSteps(units, cols, wideFactor), [
    { method: 'quantize', settings: { dtype: 'int4', tensors: ['user_emb', 'item_emb_lowrank'], scales: 'column' } },
    { method: 'quantize', settings: { dtype: 'int8', tensors: ['item_emb_proj'] } },
  ]);
  assert.deepEqual(quantizeSteps(units, { user_emb: 'int4', item_emb: 'r0.9+int4col' }, after).slice(0, 1), [
    { method: 'quantize', settings: { dtype: 'int4', tensors: ['user_emb', 'item_emb_lowrank'] } },
  ]);
  // a label names what is stored: a 2-wide factor cannot pack int3 smaller than int8 rows, so it is int8
  const twoWide = { format: 'onnx', graph: NO_NODES, tensors: [tensor('user_emb', 'embedding', [100, 16]), tensor('item_emb_lowrank', 'embedding', [200, 2]), tensor('item_emb_proj', 'dense-kernel', [2, 16])] } as unknown as ModelIR;
  const int3 = { user_emb: 'int4col', item_emb: 'r0.9+int3col' };
  const q3 = quantizeSteps(units, int3, twoWide);
  assert.deepEqual(q3[1], { method: 'quantize', settings: { dtype: 'int8', tensors: ['item_emb_lowrank', 'item_emb_proj'] } });
  assert.equal(assignmentKey(units, int3), 'user_emb=int4col item_emb=r0.9+int3col');
  assert.equal(storedAssignmentKey(units, int3, q3), 'user_emb=int4col item_emb=r0.9+int8');
  // a factor under 8 wide is per column in the plain step: "col" stays, the dtype is the same
  assert.equal(storedAssignmentKey(units, cols, quantizeSteps(units, cols, after)), 'user_emb=int4col item_emb=r0.9+int4col');
  // output-aware rounding: every low-bit step (int8 and float16 have no such form)
  assert.deepEqual(quantizeSteps(units, { ...cols, dense: 'float16' }, wideFactor, { outputAware: {} }), [
    { method: 'quantize', settings: { dtype: 'int4', tensors: ['user_emb', 'item_emb_lowrank'], scales: 'column', rounding: 'output-aware' } },
    { method: 'quantize', settings: { dtype: 'int8', tensors: ['item_emb_proj'] } },
  ]);
  assert.deepEqual(quantizeSteps(units, a, after, { outputAware: { calibration: 'train.csv' } }), [
    { method: 'quantize', settings: { dtype: 'int4', tensors: ['user_emb'], rounding: 'output-aware', calibration: 'train.csv' } },
    { method: 'quantize', settings: { dtype: 'int8', tensors: ['item_emb_lowrank', 'item_emb_proj'] } },
    { method: 'quantize', settings: { dtype: 'float16', tensors: ['fc1', 'fc2'] } },
  ]);
  // the dense kernels together: fewer neurons first, a low rank with the tables'
  assert.deepEqual(structuralSteps(units, { dense: 'neurons0.5+int8' }), [{ method: 'prune-neurons', settings: { keep: 0.5 } }]);
  assert.deepEqual(structuralSteps(units, { item_emb: 'r0.8', dense: 'r0.9+int8' }), [
    { method: 'factorize', settings: { tensors: ['item_emb'], energy: 0.8 } },
    { method: 'factorize', settings: { tensors: 'dense', energy: 0.9 } },
  ]);
  // a field drop goes first, and steps on the tables it removed are left out
  const split = splitAtFieldDrop([
    { method: 'prune-dims', settings: { table: 'user_emb', keep: 0.5 } },
    { method: 'prune-fields', settings: { fields: { drop: 0.2, data: 'd.csv' } } },
    { method: 'factorize', settings: { tensors: ['item_emb'], energy: 0.9 } },
    { method: 'factorize', settings: { tensors: 'dense', energy: 0.9 } },
  ]);
  assert.deepEqual(split.first.map((x) => x.method), ['prune-fields']);
  const withoutUser = { format: 'onnx', graph: NO_NODES, tensors: [tensor('item_emb', 'embedding', [200, 16])] } as unknown as ModelIR;
  assert.deepEqual(split.rest(withoutUser).map((x) => `${x.method}:${JSON.stringify(x.settings.tensors ?? x.settings.table)}`), ['factorize:["item_emb"]', 'factorize:"dense"']);
  // TF.js: no integer rows, no 4 bits
  const tf = searchSpace({ ...ir, format: 'tfjs' } as unknown as ModelIR);
  assert.deepEqual(tf[0].options.slice(0, 3).map((o) => o.id), ['float32', 'float16', 'uint8']);
  assert.ok(!tf[0].options.some((o) => /int4|int2|col/.test(o.id)));
  // a 2-wide table (a student's MLP table): int3 rows would take 2 bytes, as int8's do, so the
  // quantizer leaves it and the search does not offer it; int4 and int2 pack into 1 byte
  const narrow = searchSpace({ format: 'onnx', graph: NO_NODES, tensors: [tensor('user_mlp', 'embedding', [943, 2])] } as unknown as ModelIR);
  assert.deepEqual(narrow[0].options.map((o) => o.id), ['float32', 'float16', 'int8', 'int4', 'int2', 'rows0.75+int8', 'rows0.75+int4', 'rows0.5+int8', 'rows0.5+int4']);
  // a 1-wide table (a small student's branch, a per-item bias): int8 (one scale per table) and row
  // cuts; no low bits (a code per byte either way). It was left out, so such a student had no int8 form
  const single = searchSpace({ format: 'onnx', graph: NO_NODES, tensors: [tensor('item_bias', 'embedding', [1682, 1])] } as unknown as ModelIR);
  assert.deepEqual(single[0].options.map((o) => o.id), ['float32', 'float16', 'int8', 'rows0.75+int8', 'rows0.5+int8']);
});

const fixtureDir = join(tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);

test('time running out while combinations are measured on a share of the users: the best of them are carried to all users and compete', async () => {
  const { CompressPlanner } = await import('../../src/core/compress/plan/planner.js');
  const fx = await writeTinyFixtures(fixtureDir);
  const work = mkdtempSync(join(tmpdir(), 'ps-plan-carry-'));
  try {
    const ir = await readModel(fx.models.neumf.onnxPath!);
    let expired = false;
    let calls = 0;
    const planner: InstanceType<typeof CompressPlanner> = new CompressPlanner(ir, { candidates: fx.models.neumf.candidatesCsv, maxDrop: 0.05, budgetMinutes: 2 }, join(work, 'w'), 'out.onnx', {
      onProgress: (_, detail) => {
        // a loaded machine: the budget is gone after 6 combinations were measured on the first share of the users
        if (!expired && / combinations on /.test(detail ?? '') && ++calls > 6) {
          expired = true;
          (planner as unknown as { deadline: number }).deadline = Date.now() - 1;
        }
      },
    });
    const r = await planner.run();
    assert.ok(expired, 'the search reached the combinations');
    const note = r.notes.find((n) => n.startsWith('Time ran out while combinations were measured on '));
    assert.ok(note, r.notes.join('\n'));
    assert.match(note, /: the [1-4] best of them were measured on all \d+ choosing users out of the time kept in reserve/);
    assert.ok(r.front.some((p) => p.origin === 'combined'), `front: ${r.front.map((p) => `${p.origin} ${p.label}`).join('; ')}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a whole search on the tiny NeuMF: the written model is the chosen one, the front is non-dominated, recipes replay', async () => {
  const { CompressPlanner } = await import('../../src/core/compress/plan/planner.js');
  const { Materializer } = await import('../../src/core/compress/plan/materialize.js');
  const fx = await writeTinyFixtures(fixtureDir);
  const onnx = fx.models.neumf.onnxPath!;
  const before = readFileSync(onnx);
  const work = mkdtempSync(join(tmpdir(), 'ps-plan-'));
  try {
    const ir = await readModel(onnx);
    const fractions: number[] = [];
    const planner = new CompressPlanner(ir, { candidates: fx.models.neumf.candidatesCsv, maxDrop: 0.05, budgetMinutes: 2, rounding: 'output-aware' }, join(work, 'w'), 'out.onnx', {
      onProgress: (f) => fractions.push(f),
    });
    const r = await planner.run();
    assert.ok(r.evaluated >= 10, `evaluated ${r.evaluated}`);
    assert.ok(r.front.length >= 1);
    // the front is on the figure the search chose by (the expected NDCG by default)
    assert.equal(r.chooseBy, 'expected');
    for (const p of r.front) for (const q of r.front) if (p !== q) assert.ok(!dominates({ ...q, users: 1, metric: q.kept }, { ...p, users: 1, metric: p.kept }), `${q.id} dominates ${p.id}`);
    for (let i = 1; i < r.front.length; i++) assert.ok(r.front[i].bytes >= r.front[i - 1].bytes, 'smallest first');
    assert.ok(r.chosen.ratio > 1);
    assert.equal(r.chosen.ratio, r.baseline.bytes / r.chosen.bytes);
    if (r.withinBudget) assert.ok(r.chosen.kept >= 0.95 - 1e-12, `kept ${r.chosen.kept}`);
    assert.ok(r.notes.some((n) => n.includes('optimistic')), 'no held-out users: the figures are called optimistic');
    // asked for: low-bit tables are rounded output-aware on random pairs (user and item id inputs), int8 to nearest
    const quantizeSteps = r.front.flatMap((p) => p.recipe as PlanStep[]).filter((st) => st.method === 'quantize');
    const lowBit = quantizeSteps.filter((st) => /^int[432]$/.test(String(st.settings.dtype)));
    assert.ok(lowBit.length > 0);
    for (const st of lowBit) assert.deepEqual([st.settings.rounding, st.settings.calibration], ['output-aware', undefined], JSON.stringify(st));
    for (const st of quantizeSteps.filter((x) => !lowBit.includes(x))) assert.equal(st.settings.rounding, undefined, JSON.stringify(st));
    assert.ok(!r.notes.some((n) => n.startsWith('Low-bit tables are rounded to nearest')), r.notes.join('\n'));
    assert.ok(fractions.length > 0 && fractions.every((f) => f >= 0 && f < 1));
    // the chosen model as written scores what the search said, on the same users (all of them here)
    const dir = CompressPlanner.dirOf(r, planner);
    const ev = await evaluateModel(join(dir, 'out.onnx'), { candidates: fx.models.neumf.candidatesCsv, k: 10 });
    assert.equal(ev.ndcg, r.chosen.metrics.ndcg);
    assert.equal(ev.bytes, r.chosen.bytes);
    // its recipe, replayed from the original, gives the same model bytes
    const replay = new Materializer(ir, join(work, 'replay'), 'out.onnx');
    const m = await replay.build(r.chosen.recipe as PlanStep[]);
    assert.deepEqual(readFileSync(m.path), readFileSync(join(dir, 'out.onnx')));
    assert.deepEqual(readFileSync(onnx), before, 'the original is never written');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a student sized for --target-ratio: from the smallest that fell short, scaled, 2% to spare', () => {
  // measured on the PyTorch NeuMF: 3x fewer parameters stored in int4col was 19.2x smaller, and
  // 3.2x only 19.0x (its 15-wide table packs into as many bytes as 16)
  const reached = new Map([[8, 42.5], [6, 36.2], [4, 25.1], [3, 19.2]]);
  assert.equal(studentRatioFor(20, reached), 3.2); // 3 x 20 / 19.2 x 1.02 = 3.19, up to a tenth
  reached.set(3.2, 19.0);
  assert.equal(studentRatioFor(20, reached), 3.5); // 3.2 x 20 / 19.0 x 1.02 = 3.44
  assert.equal(studentRatioFor(30, reached), 4.9); // from 4x at 25.1: 4 x 30 / 25.1 x 1.02 = 4.88
  // every student already past the target, none built, the answer built already, or no smaller
  // than one that reached the target: no student
  assert.equal(studentRatioFor(15, new Map([[4, 25.1], [3, 19.2]])), undefined);
  assert.equal(studentRatioFor(20, new Map()), undefined);
  assert.equal(studentRatioFor(20, new Map([[3, 19.2], [3.2, 21]])), undefined);
  assert.equal(studentRatioFor(25, new Map([[4, 25.1], [3, 19.2]])), undefined); // 3 x 25 / 19.2 x 1.02 = 3.98 -> 4.0, not below 4
  assert.equal(studentRatioFor(24, new Map([[4, 25.1], [3, 19.2]])), 3.9); // 3.83 -> 3.9, below 4
});

test('materializer: recipes that write the same bytes are one model with the first recipe, and later steps continue from it', async () => {
  const { Materializer } = await import('../../src/core/compress/plan/materialize.js');
  const fx = await writeTinyFixtures(fixtureDir);
  const ir = await readModel(fx.models.neumf.onnxPath!);
  const work = mkdtempSync(join(tmpdir(), 'ps-plan-same-'));
  try {
    const m = new Materializer(ir, work, 'out.onnx');
    const table = 'user_mlp_embedding/embeddings';
    const factorize = (energy: number): PlanStep => ({ method: 'factorize', settings: { tensors: [table], energy } });
    const int8: PlanStep = { method: 'quantize', settings: { dtype: 'int8' } };
    // an 8-wide table: energies 0.55 to 0.7 keep the same rank (measured: 0.5 and 0.8 do not)
    const [a, b, c, d] = [await m.build([factorize(0.5)]), await m.build([factorize(0.55)]), await m.build([factorize(0.6)]), await m.build([factorize(0.7)])];
    assert.notEqual(a.path, b.path);
    assert.deepEqual([c.path, d.path], [b.path, b.path]);
    assert.deepEqual(c.steps, [factorize(0.55)]);
    assert.notDeepEqual(readFileSync(a.path), readFileSync(b.path));
    const later = await m.build([factorize(0.7), int8]);
    assert.deepEqual(later.steps, [factorize(0.55), int8]);
    assert.equal((await m.build([factorize(0.55), int8])).path, later.path);
    // the folders of the duplicates are gone: one model folder per distinct model
    assert.equal(readdirSync(work).length, 3);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('materializer under a disk budget: the models used longest ago are deleted and written again, byte for byte, when used; trained and kept models stay', async () => {
  const { Materializer } = await import('../../src/core/compress/plan/materialize.js');
  const fx = await writeTinyFixtures(fixtureDir);
  const ir = await readModel(fx.models.neumf.onnxPath!);
  const work = mkdtempSync(join(tmpdir(), 'ps-plan-disk-'));
  try {
    // a budget of one byte: every model but the one just written (or in use) goes
    const m = new Materializer(ir, work, 'out.onnx', {}, 1);
    const q = (dtype: string): PlanStep => ({ method: 'quantize', settings: { dtype } });
    const a = await m.build([q('int8')]);
    const bytesA = readFileSync(a.path);
    const b = await m.build([q('int4')]);
    assert.ok(!existsSync(a.path) && existsSync(b.path));
    assert.deepEqual(m.evictions, { deleted: 1, rewritten: 0 });
    // used again: written again from its recipe, the same bytes; the other one goes
    assert.deepEqual(await m.use(a, async (path) => readFileSync(path)), bytesA);
    assert.deepEqual(m.evictions, { deleted: 2, rewritten: 1 });
    assert.ok(existsSync(a.path) && !existsSync(b.path));
    // a fine-tuned model is never deleted (training is not replayed); nor one kept
    const ft: PlanStep = { method: 'finetune', settings: { data: fx.models.neumf.interactionsCsv, epochs: 1, seed: 1 } };
    const trained = await m.build([ft]);
    await m.keep(b);
    const after = await m.build([ft, q('int8')]);
    for (const x of [trained, b, after]) assert.ok(existsSync(x.path), x.path);
    assert.ok(!existsSync(a.path));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('option tiers: storage dtypes first, then low ranks keeping 80-95% of the energy, then the rest', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const units = searchSpace(await readModel(fx.models.neumf.onnxPath!));
  const tiers = new Map<string, number>();
  for (const u of units) for (const o of u.options.slice(1)) tiers.set(`${u.kind}:${o.id}`, optionTier(o));
  const expect: Array<[string, number]> = [
    ['table:float16', 0], ['table:int8', 0], ['table:int4', 0], ['table:int3', 0], ['table:int2', 0],
    ['table:r0.95+int4', 1], ['table:r0.8+int8', 1], ['table:r0.7+int4', 2], ['table:r0.5+int2', 2],
    ['table:rows0.5+int8', 2], ['table:dims0.75+int4', 2],
    ['dense:int8', 0], ['dense:float16', 0], ['dense:r0.9+int8', 1], ['dense:r0.7', 2], ['dense:neurons0.75', 2],
  ];
  for (const [id, tier] of expect) assert.equal(tiers.get(id), tier, id);
  // every option has a tier, and tier 0 holds no structural option
  const structural = (o: (typeof units)[number]['options'][number]) => [o.energy, o.rowsKeep, o.dimsKeep, o.neuronsKeep].some((x) => x !== undefined);
  for (const u of units) for (const o of u.options.slice(1)) if (optionTier(o) === 0) assert.ok(!structural(o), o.id);
});

test('time sharing: options alone tier by tier over all units (biggest first); combinations spread over the sweep as time allows', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const units = searchSpace(await readModel(fx.models.neumf.onnxPath!));
  const q = sensitivityOrder(units);
  assert.equal(q.length, units.reduce((n, u) => n + u.options.length - 1, 0));
  for (let i = 1; i < q.length; i++) {
    assert.ok(q[i - 1].tier <= q[i].tier, `tier ${q[i - 1].tier} after ${q[i].tier}`);
    if (q[i - 1].tier === q[i].tier && q[i - 1].u !== q[i].u) assert.ok(q[i - 1].u.bytes >= q[i].u.bytes, 'biggest unit first within a tier');
  }
  // every unit's storage dtypes come before any unit's first low rank
  const firstLowRank = q.findIndex((x) => x.tier > 0);
  for (const u of units) assert.ok(q.findIndex((x) => x.u === u && x.o.id === 'int8') < firstLowRank, u.name);
  // combinations: 10 proposed, 1 s each
  const all = Array.from({ length: 10 }, (_, i) => `a${i}`);
  assert.deepEqual(combinationsWithin(all, 1000, 20_000), all, '12 fit: all');
  assert.deepEqual(combinationsWithin(all, 1000, 10_000), ['a0', 'a2', 'a4', 'a5', 'a7', 'a9'], '6 fit: spread, both ends kept');
  assert.deepEqual(combinationsWithin(all, 1000, 1000), ['a0', 'a3', 'a6', 'a9'], 'at least 4');
  assert.deepEqual(combinationsWithin(all, 0, 0), all, 'cost unknown: all');
  // training steps: the phase's own longest, else a multiple of the longest fine-tuning plus 8 evaluations, else a minute
  assert.equal(expectedTrainingMs({ measured: 1200, msPerFinetune: 300, epochsFactor: 4, msPerCandidate: 20 }), 1200);
  assert.equal(expectedTrainingMs({ msPerFinetune: 300, epochsFactor: 4, msPerCandidate: 20 }), 4 * 300 + 8 * 20);
  assert.equal(expectedTrainingMs({ epochsFactor: 4, msPerCandidate: 20 }), 60_000);
});

test('rankable users: users with no positive or no negative row leave the table (every column), counted', () => {
  const t = {
    file: 'c.csv', rows: 7, delimiter: ',' as const, header: ['user', 'item', 'label', 'genre'], userColumn: 'user', itemColumn: 'item',
    user: Int32Array.from([0, 0, 1, 1, 2, 2, 3]),
    item: Int32Array.from([10, 11, 12, 13, 14, 15, 16]),
    label: Float32Array.from([1, 0, 0, 0, 1, 1, 1]),
    extra: [{ name: 'genre', values: Int32Array.from([5, 6, 7, 8, 9, 10, 11]) }],
  };
  const r = rankableUsers(t);
  assert.deepEqual([r.users, r.noPositive, r.noNegative], [4, 1, 2]);
  assert.deepEqual([r.table.rows, [...r.table.user], [...r.table.item], [...r.table.label!], [...r.table.extra[0].values]], [2, [0, 0], [10, 11], [1, 0], [5, 6]]);
  // nothing to drop: the same table
  const whole = rankableUsers({ ...t, rows: 2, user: t.user.subarray(0, 2), item: t.item.subarray(0, 2), label: t.label.subarray(0, 2), extra: [] });
  assert.deepEqual([whole.noPositive, whole.noNegative, whole.table.rows], [0, 0, 2]);
});

test('search space: field drops are only the shares that remove a field (prune-fields rounds down: 0.2 of 4 fields removes none)', () => {
  const withFields = (F: number) =>
    ({ format: 'onnx', tensors: [tensor('user_embedding', 'embedding', [100, 16])], graph: { inputs: [{ name: 'fields', shape: ['batch', F] }], outputs: [], nodes: [] } }) as unknown as ModelIR;
  const fieldsUnit = (F: number) => searchSpace(withFields(F), { data: 'train.csv' }).find((u) => u.kind === 'fields');
  assert.deepEqual(fieldsUnit(4)?.options.map((o) => o.id), ['float32', 'drop0.4']);
  assert.deepEqual(fieldsUnit(6)?.options.map((o) => o.id), ['float32', 'drop0.2', 'drop0.4']);
  assert.equal(fieldsUnit(2), undefined, 'no share removes one of 2 fields');
  assert.equal(searchSpace(withFields(6)).find((u) => u.kind === 'fields'), undefined, 'without --data: no field drops');
});
