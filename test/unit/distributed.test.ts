// Work across processes: scripts/cluster/local.sh starts a private Redis server and two
// `prunescope worker` processes; `analyze --distribute 4` puts four shards on the queue, and the
// merged report equals the one-process analysis; `quantize --distribute 3` puts three int8 table
// shards on it, and the assembled model equals the one-process model byte for byte. Needs
// redis-server (CI installs it; elsewhere the test says it skips).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readModel } from '../../src/core/model/read-model.js';
import { analyzeModel } from '../../src/core/analysis/analyze-model.js';
import { redisConnection } from '../../src/core/distributed/queue.js';
import { quantizeModel } from '../../src/core/compress/quantize.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const ROOT = join(__dirname, '..', '..', '..');
const fixtureDir = join(tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);
const hasRedis = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).status === 0;

test('redis URLs: host, port, db, credentials; anything else is refused', () => {
  assert.deepEqual(redisConnection('redis://10.0.0.5:6380/2'), { host: '10.0.0.5', port: 6380, db: 2, maxRetriesPerRequest: null });
  assert.deepEqual(redisConnection('redis://u:p%40ss@q'), { host: 'q', port: 6379, username: 'u', password: 'p@ss', db: 0, maxRetriesPerRequest: null });
  assert.throws(() => redisConnection('http://q:6379'), /must be a redis:\/\/ URL/);
  assert.throws(() => redisConnection('q:6379x'), /must be a/);
});

test('two local workers analyse four shards; the merge equals the one-process analysis', { skip: !hasRedis && !process.env.CI ? 'redis-server is not installed (Debian: apt-get install redis-server)' : false }, async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const model = fx.models.deepfm.onnxPath!;
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'cluster', 'local.sh'), model, '4', '2'], {
    encoding: 'utf8',
    env: { ...process.env, PRUNESCOPE_CLI: join(ROOT, 'out', 'src', 'cli', 'main.js') },
    timeout: 180_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const merged = JSON.parse(r.stdout);
  const whole = await analyzeModel(await readModel(model));
  assert.deepEqual({ ...merged, generatedAt: '' }, JSON.parse(JSON.stringify({ ...whole, generatedAt: '' })));
  // every shard was processed once, by the workers (not by the producer)
  const done = r.stderr.split('\n').filter((l) => /^worker-\d+: .*: done$/.test(l));
  assert.equal(done.length, 4, r.stderr);
  assert.equal(new Set(done.map((l) => /-(\d)-4: done$/.exec(l)![1])).size, 4);
});

test('two local workers quantize three table shards to int8; the assembled model equals the one-process model byte for byte', { skip: !hasRedis && !process.env.CI ? 'redis-server is not installed (Debian: apt-get install redis-server)' : false }, async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const model = fx.models.deepfm.onnxPath!;
  const dir = await mkdtemp(join(tmpdir(), 'ps-dist-quantize-'));
  try {
    const out = join(dir, 'deepfm-int8.onnx');
    const r = spawnSync('bash', [join(ROOT, 'scripts', 'cluster', 'local.sh'), '--quantize', out, model, '3', '2'], {
      encoding: 'utf8',
      env: { ...process.env, PRUNESCOPE_CLI: join(ROOT, 'out', 'src', 'cli', 'main.js') },
      timeout: 180_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { notes: string[] };
    assert.ok(result.notes.some((n) => /came from 3 shard file\(s\)/.test(n)), result.notes.join('\n'));
    const done = r.stderr.split('\n').filter((l) => /^worker-\d+: .*job q-.*: done$/.test(l));
    assert.equal(done.length, 3, r.stderr);
    const one = await quantizeModel(await readModel(model), { dtype: 'int8', verify: false });
    const oneOut = join(dir, 'one', 'deepfm-int8.onnx');
    await mkdir(dirname(oneOut), { recursive: true });
    await one.write(oneOut);
    assert.ok((await readFile(out)).equals(await readFile(oneOut)), 'the assembled model differs from the one-process model');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
