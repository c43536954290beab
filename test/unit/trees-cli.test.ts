import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { treesCommand } from '../../src/cli/trees-command.js';
import { UsageError } from '../../src/cli/args.js';
import { ModelFileError } from '../../src/core/model/ir.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { readTreeEnsemble, writeTreeEnsembleModel } from '../../src/core/trees/onnx-trees.js';
import { formatTreeCsv } from '../../src/core/trees/tree-data.js';
import { makeCtrData, trainGbdt } from '../fixtures/tree-trainer.js';

async function capture(argv: string[]): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array) => {
    chunks.push(String(s));
    return true;
  }) as typeof process.stdout.write;
  try {
    const code = await treesCommand(argv);
    return { code, out: chunks.join('') };
  } finally {
    process.stdout.write = orig;
  }
}

test('trees CLI: analysis (--json), depth and drop pruning write runnable files, usage errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ps-trees-cli-'));
  try {
    const train = makeCtrData(800, 6, 31);
    const valid = makeCtrData(400, 6, 32);
    const model = join(dir, 'm.onnx');
    await writeTreeEnsembleModel(model, trainGbdt(train, { trees: 10, maxDepth: 3, seed: 1 }), { nFeatures: 6 });
    const csv = join(dir, 'valid.csv');
    await writeFile(csv, formatTreeCsv(valid));

    const a = await capture([model, '--json']);
    assert.equal(a.code, 0);
    const j = JSON.parse(a.out) as { trees: number; features: number; importance: Array<{ feature: number; rank: number }>; rankedBy: string };
    assert.equal(j.trees, 10);
    assert.equal(j.features, 6);
    assert.equal(j.rankedBy, 'gain');
    assert.deepEqual(j.importance.map((x) => x.rank), [1, 2, 3, 4, 5, 6]);
    const text = await capture([model, '--data', csv]);
    assert.match(text.out, /TreeEnsembleRegressor: 10 trees/);
    assert.match(text.out, /ranked by outputChange/);

    const out = join(dir, 'd2.onnx');
    const d = await capture([model, '--prune', 'depth=2', '--out', out, '--data', csv, '--json']);
    assert.equal(d.code, 0);
    const dj = JSON.parse(d.out) as { after: { trees: number }; ortCheck: { maxAbsDiff: number; rows: number }; bytes: { before: number; after: number } };
    assert.equal(dj.ortCheck.rows, 400);
    assert.ok(dj.ortCheck.maxAbsDiff <= 1e-6);
    assert.ok(dj.bytes.after < dj.bytes.before);
    const back = readTreeEnsemble(await readOnnxModel(out)).ensemble;
    assert.ok(back.trees.every((t) => t.nodes.length <= 7));

    const out2 = join(dir, 'drop.onnx');
    const dr = await capture([model, '--prune', 'drop=0.3', '--data', csv, '--out', out2]);
    assert.match(dr.out, /trees 10 -> 7/);
    assert.match(dr.out, /validation auc: /);

    await assert.rejects(capture([model, '--prune', 'post', '--out', join(dir, 'x.onnx')]), (e: unknown) => e instanceof UsageError && /needs --data/.test(e.message));
    await assert.rejects(capture([model, '--prune', 'depth=1.5', '--out', join(dir, 'x.onnx')]), UsageError);
    await assert.rejects(capture([model, '--prune', 'depth=2']), /needs --out/);
    await assert.rejects(capture([model, '--prune', 'shrink=2', '--out', join(dir, 'x.onnx')]), UsageError);
    await writeFile(join(dir, 'bad.csv'), 'f0,f1,label\n1,2,0\n');
    await assert.rejects(capture([model, '--data', join(dir, 'bad.csv')]), (e: unknown) => e instanceof ModelFileError && /has 2 feature columns, the model's input has 6/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
