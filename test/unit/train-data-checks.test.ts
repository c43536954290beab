// Training data is checked against the model while it is read (finetune, distill): ids out of
// its tables name the file and line, labels with no positive are refused, and an --output-kind
// that the graph contradicts is named in the report.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readModel } from '../../src/core/model/read-model.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const fixtureDir = join(tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);
const CLI = join(__dirname, '..', '..', 'src', 'cli', 'main.js');

test('finetune and distill check the data ids against the model while reading: the error names the file and line, nothing is written', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const dir = mkdtempSync(join(tmpdir(), 'ps-train-ids-'));
  const lines = readFileSync(fx.models.neumf.interactionsCsv, 'utf8').trim().split('\n');
  const header = lines[0].split(',');
  const itemAt = header.indexOf('item');
  const cells = lines[50].split(',');
  cells[itemAt] = '99999';
  lines[50] = cells.join(',');
  const bad = join(dir, 'bad.csv');
  writeFileSync(bad, lines.join('\n') + '\n');
  const items = (await readModel(fx.models.neumf.onnxPath!)).tensors.find((t) => t.name.includes('item') && t.role === 'embedding')!.shape[0];
  for (const args of [
    ['finetune', fx.models.neumf.onnxPath!, '--data', bad, '--epochs', '1', '--out', join(dir, 'ft.onnx')],
    ['distill', fx.models.neumf.onnxPath!, '--data', bad, '--epochs', '1', '--out', join(dir, 'st.onnx')],
  ]) {
    const r = spawnSync(process.execPath, [CLI, ...args, '--no-latency'], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr.trim(), `prunescope ${args[0]}: ${bad}: line 51: item 99999 is outside the model's embedding table (${items} rows, ids 0..${items - 1})`);
  }
  assert.deepEqual(readdirSync(dir), ['bad.csv']);
});

test('training data with no positive row is refused naming the file; an --output-kind against the graph is named in the report', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const dir = mkdtempSync(join(tmpdir(), 'ps-train-neg-'));
  const lines = readFileSync(fx.models.neumf.interactionsCsv, 'utf8').trim().split('\n');
  const labelAt = lines[0].split(',').indexOf('label');
  assert.ok(labelAt >= 0, 'the fixture has labels');
  const negatives = join(dir, 'neg.csv');
  writeFileSync(negatives, [lines[0], ...lines.slice(1, 200).map((l) => l.split(',').map((c, i) => (i === labelAt ? '0' : c)).join(','))].join('\n') + '\n');
  const r = spawnSync(process.execPath, [CLI, 'finetune', fx.models.neumf.onnxPath!, '--data', negatives, '--epochs', '1', '--out', join(dir, 'ft.onnx'), '--no-latency'], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr.trim(), `prunescope finetune: ${negatives}: no positive row (every label is 0): there is nothing to learn from`);
  // the tiny NeuMF ends in a sigmoid: asked to train it as a logit, the report says the graph disagrees
  const ok = spawnSync(process.execPath, [CLI, 'finetune', fx.models.neumf.onnxPath!, '--data', fx.models.neumf.interactionsCsv, '--epochs', '1', '--output-kind', 'logit', '--out', join(dir, 'ft.onnx'), '--no-latency', '--json'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(JSON.stringify(JSON.parse(ok.stdout)), /output taken as a logit, as asked \(--output-kind logit\); but the graph ends in Sigmoid \([^)]*\), whose output is a probability: check the flag/);
});
