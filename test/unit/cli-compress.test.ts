// `prunescope compress` as scripts see it: usage errors before any work (exit 2), the JSON
// contract ({chosen, front: [{bytes, metrics, latency, recipe}], evaluated, seconds}), the chosen
// model written at --out and equal to its recipe replayed by `prunescope run`, and the recipes
// folder refused without --force; with --data, the quantization-aware students and their recipes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';
import type { PlanPointView, PlanView } from '../../src/shared/protocol.js';

const CLI = join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const fixtureDir = join(tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('compress: usage errors exit 2 before any model is read', () => {
  const missing = join(tmpdir(), 'no-such-model.onnx');
  const cases: Array<[string[], RegExp]> = [
    [[missing, '--out', 'x.onnx'], /--candidates VAL.csv is required/],
    [[missing, '--candidates', 'c.csv'], /--out PATH is required/],
    [[missing, '--candidates', 'c.csv', '--out', 'x.onnx', '--max-drop', '0.01', '--target-ratio', '10'], /not both/],
    [[missing, '--candidates', 'c.csv', '--out', 'x.onnx', '--metric', 'mrr'], /--metric must be ndcg, hr or auc/],
    [[missing, '--candidates', 'c.csv', '--out', 'x.onnx', '--max-drop', '2'], /--max-drop must be a number in \[0, 0.99\]/],
    [[missing, '--candidates', 'c.csv', '--out', 'x.onnx', '--holdout', '0.5', '--test', 't.csv'], /--holdout or --test/],
    [[missing, '--candidates', 'c.csv', '--out', 'x.onnx', '--test', './c.csv'], /--test is the --candidates file: the search chooses on those users/],
    [[missing, '--candidates', 'c.csv', '--out', 'x/model.json'], /--out x\/model\.json: an ONNX model's output is a \.onnx file/],
    [[missing, '--candidates', 'c.csv', '--out', 'x.onnx', '--speed'], /Unknown option '--speed'/],
  ];
  for (const [args, re] of cases) {
    const r = run('compress', ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

test('compress --out in a folder that does not exist: exit 2 naming the folder, before any work, nothing made (ONNX and TF.js)', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-compress-nodir-'));
  for (const [model, out] of [
    [fx.models.neumf.onnxPath!, join(dir, 'nodir', 'x.onnx')],
    // a TF.js output is <folder>/model.json: the folder is made, its parent must exist
    [fx.models.neumf.tfjsModelJson!, join(dir, 'nodir', 'x')],
  ]) {
    const r = run('compress', model, '--candidates', fx.models.neumf.candidatesCsv, '--out', out);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.split('\n')[0], `prunescope compress: the output folder ${join(dir, 'nodir')} does not exist`);
    assert.equal(r.stdout, '');
    assert.deepEqual(readdirSync(dir), [], 'nothing made: no folder, no temp folder, no recipes');
  }
});

test('compress: a user with two positives names the candidates file and its lines; progress only on a terminal or with --progress, and the error on a line of its own', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-compress-twopos-'));
  const [header, ...rows] = readFileSync(fx.models.neumf.candidatesCsv, 'utf8').trimEnd().split('\n');
  const user0 = rows.map((r, i) => ({ r, i })).filter(({ r }) => r.startsWith('0,'));
  const negative = user0.find(({ r }) => r.split(',')[2] === '0')!;
  const positive = user0.find(({ r }) => r.split(',')[2] === '1')!;
  rows[negative.i] = rows[negative.i].split(',').map((c, j) => (j === 2 ? '1' : c)).join(',');
  // a blank line after the header shifts every row by one line
  const twopos = join(dir, 'twopos.csv');
  writeFileSync(twopos, [header, '', ...rows].join('\n') + '\n');
  const [a, b] = [positive.i, negative.i].sort((x, y) => x - y).map((i) => i + 3);
  const message = `prunescope compress: ${twopos}: lines ${a} and ${b}: user 0 has more than one positive (a candidates file has one per user)\n`;
  const out = join(dir, 'small.onnx');
  const plain = run('compress', fx.models.neumf.onnxPath!, '--candidates', twopos, '--out', out);
  assert.equal(plain.code, 1);
  assert.equal(plain.stderr, message, 'stderr is no terminal: no progress bar, only the error');
  const drawn = run('compress', fx.models.neumf.onnxPath!, '--candidates', twopos, '--out', out, '--progress');
  assert.equal(drawn.code, 1);
  assert.match(drawn.stderr, /^\rcompress \[[.#]+\] +\d+%/);
  assert.ok(drawn.stderr.endsWith(`\n${message}`), JSON.stringify(drawn.stderr));
  assert.deepEqual(readdirSync(dir), ['twopos.csv'], 'nothing written');
});

test('compress --data that training would refuse stops the search before it starts, naming the file and line', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-compress-data-'));
  const [header, ...rows] = readFileSync(fx.models.neumf.interactionsCsv, 'utf8').trimEnd().split('\n');
  const bad = join(dir, 'bad-label.csv');
  writeFileSync(bad, [header, ...rows.slice(0, 5), rows[5].split(',').map((c, j) => (j === 2 ? '2' : c)).join(','), ...rows.slice(6, 50)].join('\n') + '\n');
  const out = join(dir, 'small.onnx');
  const r = run('compress', fx.models.neumf.onnxPath!, '--candidates', fx.models.neumf.candidatesCsv, '--data', bad, '--budget-minutes', '1', '--out', out);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `prunescope compress: ${bad}: line 7: label '2' is not in [0, 1]\n`);
  assert.deepEqual(readdirSync(dir), ['bad-label.csv'], 'nothing written');
});

test('compress --metric hr with K not below the candidates per user is refused: every model would score 1 and a damaged one be chosen as keeping 100%', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-compress-k-'));
  const out = join(dir, 'small.onnx');
  const r = run('compress', fx.models.neumf.onnxPath!, '--candidates', fx.models.neumf.candidatesCsv, '--metric', 'hr', '--k', '100', '--out', out);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(
    r.stderr,
    `prunescope compress: ${fx.models.neumf.candidatesCsv}: K = 100 is not below its candidates per user (100.0 on average): nearly every positive is in the top 100 whatever the model, ` +
      'so HR@100 cannot tell a damaged model from the original; give a smaller --k or --metric auc\n',
  );
  assert.deepEqual(readdirSync(dir), [], 'nothing written');
});

test('compress --json on the tiny NeuMF: the contract, the written model, its recipe replayed, --force for the recipes', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const model = fx.models.neumf.onnxPath!;
  const candidates = fx.models.neumf.candidatesCsv;
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-compress-'));
  const out = join(dir, 'small.onnx');
  // output-aware rounding: its later quantize steps reuse the first one's measurement, and the replay below must give the same bytes
  const r = run('compress', model, '--candidates', candidates, '--holdout', '0.5', '--max-drop', '0.05', '--budget-minutes', '2', '--rounding', 'output-aware', '--k', '5', '--out', out, '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  for (const key of ['chosen', 'front', 'evaluated', 'seconds', 'baseline', 'budget', 'notes', 'output', 'recipes']) assert.ok(key in j, `no ${key}`);
  assert.ok(j.front.length >= 1 && j.evaluated >= j.front.length);
  for (const p of j.front) {
    for (const key of ['bytes', 'metrics', 'recipe', 'ratio', 'kept', 'heldOut']) assert.ok(key in p, `front member without ${key}`);
    assert.ok(p.latency && p.latency.p50Ms > 0, 'front members have a latency');
  }
  assert.equal(j.output, out);
  assert.equal(readFileSync(out).length, j.chosen.bytes);
  assert.ok(j.notes.some((n: string) => /held out of choosing/.test(n)));
  assert.ok(!j.notes.some((n: string) => /no better than chance/.test(n)) && !('atChance' in j), j.notes.join('\n'));
  const recipes = readdirSync(j.recipes).filter((n) => n.endsWith('.recipe.json'));
  assert.ok(recipes.length >= j.front.length);
  const chosenRecipe = recipes.find((n) => n.includes('-chosen'))!;
  assert.ok(chosenRecipe, recipes.join(', '));
  // the recipe keeps the search's K, so that its replay reports the figure the front showed
  assert.equal(JSON.parse(readFileSync(join(j.recipes, chosenRecipe), 'utf8')).k, 5);
  // the recipe replays to the same model, bit for bit
  const replayed = join(dir, 'replayed.onnx');
  const rr = run('run', join(j.recipes, chosenRecipe), '--out', replayed, '--no-latency');
  assert.equal(rr.code, 0, rr.stderr);
  assert.deepEqual(readFileSync(replayed), readFileSync(out));
  assert.match(rr.stdout, /NDCG@5 /);
  assert.doesNotMatch(rr.stdout, /NDCG@10/);
  // --k given to run wins over the recipe's
  const r10 = run('run', join(j.recipes, chosenRecipe), '--out', join(dir, 'k10.onnx'), '--no-latency', '--k', '10');
  assert.equal(r10.code, 0, r10.stderr);
  assert.match(r10.stdout, /NDCG@10 /);
  // a second search into the same place: refused without --force, nothing changed
  const again = run('compress', model, '--candidates', candidates, '--out', join(dir, 'other.onnx'), '--budget-minutes', '1');
  assert.equal(again.code, 0, again.stderr);
  const clash = run('compress', model, '--candidates', candidates, '--out', out, '--budget-minutes', '1');
  assert.equal(clash.code, 1);
  assert.match(clash.stderr, /already exists; --force replaces it\n$/);
  assert.ok(existsSync(out));
});

test('compress on candidates whose positives are random: the report says the original ranks them no better than chance', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const m = fx.models.neumf;
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-compress-chance-'));
  // each user's positive moved to one of the user's candidates at random (seeded)
  const [header, ...lines] = readFileSync(m.candidatesCsv, 'utf8').trim().split('\n');
  const byUser = new Map<string, string[][]>();
  for (const l of lines) {
    const f = l.split(',');
    f[2] = '0';
    byUser.set(f[0], [...(byUser.get(f[0]) ?? []), f]);
  }
  let seed = 1;
  for (const rows of byUser.values()) rows[(seed = (seed * 48271) % 2147483647) % rows.length][2] = '1';
  const shuffled = join(dir, 'random-positives.csv');
  writeFileSync(shuffled, [header, ...[...byUser.values()].flat().map((f) => f.join(','))].join('\n') + '\n');
  const r = run('compress', m.onnxPath!, '--candidates', shuffled, '--budget-minutes', '0.2', '--out', join(dir, 'x.onnx'), '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.ok(j.notes.some((n: string) => /^The original ranks these candidates no better than chance: NDCG@10 0\.\d{4}, against 0\.\d{4} ± 0\.\d{4}/.test(n)), j.notes.join('\n'));
  assert.equal(j.atChance.original, j.baseline.metrics.ndcg);
  assert.ok(j.atChance.original < j.atChance.mean + 3 * j.atChance.sd && j.atChance.sd > 0, JSON.stringify(j.atChance));
  // the text report says it before the front
  const text = run('compress', m.onnxPath!, '--candidates', shuffled, '--budget-minutes', '0.2', '--out', join(dir, 'y.onnx'));
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout.split('Pareto front')[0], /Warning: the original ranks these candidates no better than chance \(NDCG@10 0\.\d{4}, a random order 0\.\d{4} ± 0\.\d{4}\): every figure below is noise/);
});

test('compress --data: the low-bit students that decide the choice are fine-tuned again quantization-aware, and their recipes replay', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const m = fx.models.neumf;
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-compress-qat-'));
  const out = join(dir, 'small.onnx');
  // a wide budget, so that every low-bit student is within reach of its floor
  const r = run('compress', m.onnxPath!, '--candidates', m.candidatesCsv, '--data', m.interactionsCsv, '--max-drop', '0.3', '--budget-minutes', '3', '--out', out, '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  const phase = j.phases.find((p: { name: string }) => p.name === 'quantization-aware students');
  assert.ok(phase, JSON.stringify(j.phases));
  const qat = j.trained.filter((p: { label: string }) => p.label.endsWith(', quantization-aware'));
  assert.ok(qat.length >= 1 && qat.length <= 3, j.trained.map((p: { label: string }) => p.label).join('; '));
  assert.equal(phase.candidates, qat.length);
  for (const p of qat) {
    const [distill, finetune, ...quantize] = p.recipe as Array<{ method: string; settings: Record<string, unknown> }>;
    assert.equal(distill.method, 'distill');
    assert.equal(finetune.method, 'finetune');
    assert.equal(finetune.settings.teacher, m.onnxPath);
    const qa = finetune.settings.quantAware as { dtype: string; scales: string };
    assert.match(qa.dtype, /^int[43]$/);
    // the form it was stored in before, named in its label, is the form it trained through
    assert.ok(p.label.includes(`, ${qa.dtype}${qa.scales === 'column' ? 'col' : ''}, quantization-aware`), p.label);
    const tables = quantize.find((s) => s.method === 'quantize' && s.settings.dtype === qa.dtype);
    assert.ok(tables, JSON.stringify(quantize));
    assert.equal(tables.settings.scales ?? 'row', qa.scales);
  }
  // one of them replayed: the same size as the search measured
  const recipe = join(dir, 'qat.recipe.json');
  writeFileSync(recipe, JSON.stringify({ model: m.onnxPath, steps: qat[0].recipe }));
  const replayed = join(dir, 'qat.onnx');
  const rr = run('run', recipe, '--out', replayed, '--no-latency');
  assert.equal(rr.code, 0, rr.stderr);
  assert.equal(readFileSync(replayed).length, qat[0].bytes);
});

test('quantize --dtype int4 --finetune: the tables train through their rounding, taught by the original, and quantize stores them with no further rounding', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const m = fx.models.neumf;
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-quantize-qat-'));
  const out = join(dir, 'qat.onnx');
  const before = readFileSync(m.onnxPath!);
  const r = run('quantize', m.onnxPath!, '--dtype', 'int4', '--finetune', m.interactionsCsv, '--epochs', '1', '--candidates', m.candidatesCsv, '--out', out, '--no-latency', '--json');
  assert.equal(r.code, 0, r.stderr);
  type Step = { method: string; settings: Record<string, unknown> };
  const j = JSON.parse(r.stdout) as { method: string; settings: { steps: Step[] }; training?: Array<{ losses: number[] }>; changes: Array<{ tensor: string; action: string }> };
  assert.equal(j.method, 'finetune + quantize');
  const [ft, q] = j.settings.steps;
  assert.equal(ft.method, 'finetune');
  assert.deepEqual([ft.settings.data, ft.settings.epochs, ft.settings.teacher, ft.settings.quantAware], [m.interactionsCsv, 1, m.onnxPath, { dtype: 'int4', scales: 'row' }]);
  assert.equal(q.method, 'quantize');
  assert.equal(q.settings.dtype, 'int4');
  assert.equal(j.training?.[0].losses.length, 1, 'one epoch of training');
  // every table was already on its int4 grid: quantize changed nothing more
  const stored = j.changes.filter((c) => c.action.startsWith('quantize: int4 per-row'));
  assert.equal(stored.length, 4, j.changes.map((c) => `${c.tensor}: ${c.action}`).join('\n'));
  for (const c of stored) assert.match(c.action, /max \|Δw\| 0\.00e\+0, RMSE 0\.00e\+0\)$/, c.tensor);
  assert.deepEqual(readFileSync(m.onnxPath!), before, 'the original is untouched');
  // the same quantization without training: a model of the same size, whose tables moved
  const direct = run('quantize', m.onnxPath!, '--dtype', 'int4', '--out', join(dir, 'direct.onnx'), '--no-latency', '--json');
  assert.equal(direct.code, 0, direct.stderr);
  assert.equal(readFileSync(out).length, readFileSync(join(dir, 'direct.onnx')).length);
  // (a job of one step does not name the method in its changes)
  const moved = (JSON.parse(direct.stdout) as { changes: Array<{ action: string }> }).changes.filter((c) => c.action.startsWith('int4 per-row'));
  assert.equal(moved.length, 4);
  for (const c of moved) assert.doesNotMatch(c.action, /max \|Δw\| 0\.00e\+0/);
});

test('compress table: a chosen model off the front (a faster one under --max-latency-ratio) is shown in its place by size, once', async () => {
  const { formatPlan } = await import('../../src/cli/compress-command.js');
  const point = (id: string, bytes: number, kept: number, ratio: number, origin: PlanPointView['origin'] = 'combined'): PlanPointView => ({
    id,
    label: `label ${id}`,
    origin,
    bytes,
    ratio: 1000 / bytes,
    metrics: { ndcg: 0.4 * kept, hr: 0.6 * kept, auc: null },
    kept,
    users: 100,
    latency: { p50Ms: ratio * 0.05, ratio, slower: ratio > 1 },
    recipe: [{ method: 'quantize', settings: { dtype: 'int8' } }],
  });
  const front = [point('a', 100, 0.95, 2), point('b', 200, 0.99, 1.5), point('c', 400, 1, 1.2)];
  // d is faster than b, and b dominates it in size and metric
  const chosen = point('d', 250, 0.985, 0.9, 'finetuned');
  const plan: PlanView = {
    model: 'm.onnx',
    candidates: 'c.csv',
    metric: 'ndcg',
    k: 10,
    budget: { maxDrop: 0.02, maxLatencyRatio: 1 },
    chooseBy: 'measured',
    baseline: { bytes: 1000, metrics: { ndcg: 0.4, hr: 0.6, auc: null }, users: 100 },
    chosen,
    withinBudget: true,
    reason: 'the smallest candidate that keeps >= 98.0% of the original\'s metric',
    front,
    trained: [chosen],
    evaluated: 9,
    seconds: 3,
    budgetMinutes: 10,
    stoppedAtBudget: false,
    phases: [],
    sensitivity: [],
    notes: [],
  };
  const lines = formatPlan(plan, 'out.onnx', 'out.front').split('\n');
  const rows = lines.filter((l) => /^[ *] +[\d.]+x /.test(l));
  // a, b, d (chosen, starred), c: by size; d not listed again among the trained candidates off the front
  assert.deepEqual(rows.map((l) => l.trim().split(/ +/).at(-1)), ['a', 'b', 'd', 'c']);
  assert.deepEqual(rows.map((l) => l.startsWith('*')), [false, false, true, false]);
  assert.ok(lines.some((l) => l.includes('* is off the front')));
  assert.ok(!lines.includes('Trained candidates not on the front:'));
  // on the front: no such line
  const on = formatPlan({ ...plan, chosen: front[1], trained: [] }, 'out.onnx', 'out.front');
  assert.ok(!on.includes('off the front'));
  assert.equal(on.split('\n').filter((l) => l.startsWith('*')).length, 1);
});
