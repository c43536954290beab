// `analyze --shard I/N` + `merge` from the command line equal `analyze --json`; report files are
// never replaced without --force (analyze --out, merge --out, sensitivity --recipe).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const CLI = join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const fixtureDir = join(tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('analyze --shard 1/3..3/3 then merge prints what analyze --json prints', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const model = fx.models.neumf.onnxPath!;
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-shards-'));
  const files = [1, 2, 3].map((i) => join(dir, `s${i}.json`));
  for (const [i, f] of files.entries()) {
    const r = run('analyze', model, '--shard', `${i + 1}/3`, '--out', f);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^shard ${i + 1}/3: \\d+ tensors -> `));
  }
  const merged = run('merge', model, ...files, '--json');
  assert.equal(merged.code, 0, merged.stderr);
  const whole = run('analyze', model, '--json');
  const strip = (t: string) => ({ ...JSON.parse(t), generatedAt: '' });
  assert.deepEqual(strip(merged.stdout), strip(whole.stdout));
  const missing = run('merge', model, files[0], files[2]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /shard 2\/3 missing/);
  assert.equal(run('analyze', model, '--shard', '4/3', '--out', join(dir, 'x.json')).code, 2);
  assert.match(run('analyze', model, '--shard', '1/3').stderr, /--shard I\/N writes a shard report: give --out SHARD.json/);
  assert.match(run('analyze', model, '--redis', 'redis://x').stderr, /--redis needs --distribute/);
});

test('report files are replaced only with --force', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const model = fx.models.neumf.onnxPath!;
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-force-'));
  const out = join(dir, 'report.json');
  writeFileSync(out, 'keep me');
  const refused = run('analyze', model, '--out', out);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /report.json: already exists; --force replaces it/);
  assert.equal(readFileSync(out, 'utf8'), 'keep me');
  assert.equal(run('analyze', model, '--out', out, '--force').code, 0);
  assert.equal(JSON.parse(readFileSync(out, 'utf8')).path, model);
  const recipe = join(dir, 'prune.recipe.json');
  writeFileSync(recipe, 'keep me');
  const s = run('sensitivity', model, '--candidates', fx.models.neumf.candidatesCsv, '--sparsities', '0.5', '--recipe', recipe);
  assert.equal(s.code, 1);
  assert.match(s.stderr, /prune.recipe.json: already exists; --force replaces it/);
  assert.equal(readFileSync(recipe, 'utf8'), 'keep me');
});
