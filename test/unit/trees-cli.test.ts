import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { treesCommand } from '../../src/cli/trees-command.js';
import { writingTo } from '../../src/core/jobs/output-files.js';
import { UsageError } from '../../src/cli/args.js';
import { ModelFileError } from '../../src/core/model/ir.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { listTreeEnsembles, readTreeEnsemble, writeTreeEnsembleModel } from '../../src/core/trees/onnx-trees.js';
import { formatTreeCsv } from '../../src/core/trees/tree-data.js';
import { evaluateTreeEnsemble } from '../../src/core/trees/tree-eval.js';
import { auc } from '../../src/core/eval/metrics.js';
import { makeCtrData, trainGbdt } from '../fixtures/tree-trainer.js';
import { binarySingleWeight, writeSeveralEnsembles } from '../fixtures/tree-layouts.js';

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
    assert.match(text.out, /ranked by permutation: mean AUC drop when the column is shuffled, 5 repeats/);

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
    assert.match(dr.out, /selection: chose on a seeded half of valid.csv \(200 rows, seed 1, stratified by label\); reported on the other 200 rows/);
    assert.match(dr.out, /tuning auc \(the 200 rows it chose on, optimistic\): /);
    assert.match(dr.out, /held-out auc \(200 rows of the other half of valid.csv, not used to choose\): /);
    assert.doesNotMatch(dr.out, /validation auc/);

    // depth with --test: the cost on --data and a held-out figure on the test rows, equal to the written file's AUC there
    const testRows = makeCtrData(300, 6, 33);
    const testCsv = join(dir, 'test.csv');
    await writeFile(testCsv, formatTreeCsv(testRows));
    const dt = await capture([model, '--prune', 'depth=1', '--out', join(dir, 'd1.onnx'), '--data', csv, '--test', testCsv, '--json']);
    const dtj = JSON.parse(dt.out) as { validation: { metric: string }; heldOut: { metric: string; before: number; after: number; rows: number; source: string } };
    assert.equal(dtj.validation.metric, 'auc');
    assert.deepEqual([dtj.heldOut.metric, dtj.heldOut.rows, dtj.heldOut.source], ['auc', 300, 'test.csv']);
    const d1 = readTreeEnsemble(await readOnnxModel(join(dir, 'd1.onnx'))).ensemble;
    assert.equal(dtj.heldOut.after, auc(testRows.labels, evaluateTreeEnsemble(d1, testRows.X).scores));
    await assert.rejects(capture([model, '--prune', 'depth=1', '--out', join(dir, 'x.onnx'), '--test', testCsv]), (e: unknown) => e instanceof UsageError && /--test goes with --data/.test(e.message));

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

test('trees CLI: --force replaces an existing --out (refused without it); write errors name the output path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ps-trees-cli-force-'));
  try {
    const train = makeCtrData(400, 5, 41);
    const model = join(dir, 'm.onnx');
    await writeTreeEnsembleModel(model, trainGbdt(train, { trees: 6, maxDepth: 3, seed: 2 }), { nFeatures: 5 });
    const out = join(dir, 'out.onnx');
    await writeFile(out, 'old');
    await assert.rejects(capture([model, '--prune', 'depth=1', '--out', out]), (e: unknown) => e instanceof UsageError && e.message.includes(out) && /--force/.test(e.message));
    const r = await capture([model, '--prune', 'depth=1', '--out', out, '--force']);
    assert.equal(r.code, 0);
    assert.match(r.out, /wrote /);
    assert.equal(readTreeEnsemble(await readOnnxModel(out)).ensemble.trees.length, 6);
    // --force is accepted (and has nothing to replace) without --prune too
    assert.equal((await capture([model, '--force'])).code, 0);

    // ENOSPC / EACCES become messages naming the file
    for (const code of ['ENOSPC', 'EACCES', 'EROFS']) {
      const raw = Object.assign(new Error(`${code}: something, write`), { code });
      await assert.rejects(
        writingTo('/data/out/pruned.onnx', async () => {
          throw raw;
        }),
        (e: unknown) => e instanceof ModelFileError && e.file === '/data/out/pruned.onnx' && e.message.startsWith('/data/out/pruned.onnx: cannot write the output') && e.message.includes(code) && (e as Error).cause === raw,
      );
    }
    // other errors pass through unchanged
    const other = new Error('boom');
    await assert.rejects(writingTo('/x.onnx', async () => { throw other; }), (e: unknown) => e === other);
    // a refusal naming the file in our temporary folder names the output instead; one naming another file is kept
    const refused = new ModelFileError('/data/out/.prunescope-0a1b2c.tmp/step-1/pruned.onnx', 'invalid edit: node "x" reads "y"');
    await assert.rejects(
      writingTo('/data/out/pruned.onnx', async () => { throw refused; }),
      (e: unknown) => e instanceof ModelFileError && e.message === '/data/out/pruned.onnx: invalid edit: node "x" reads "y"' && e.cause === refused,
    );
    const elsewhere = new ModelFileError('/data/in/model.onnx', 'truncated');
    await assert.rejects(writingTo('/data/out/pruned.onnx', async () => { throw elsewhere; }), (e: unknown) => e === elsewhere);
    // a real permission error (not as root, who may write anywhere)
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      const ro = join(dir, 'ro');
      await mkdir(ro);
      await chmod(ro, 0o500);
      try {
        await assert.rejects(capture([model, '--prune', 'depth=1', '--out', join(ro, 'p.onnx')]), (e: unknown) => e instanceof ModelFileError && e.message.includes(join(ro, 'p.onnx')) && /EACCES|EPERM/.test(e.message));
      } finally {
        await chmod(ro, 0o700);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('trees CLI: several ensembles in one graph: the first by default, --node picks one, the report names it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ps-trees-cli-several-'));
  try {
    const train = makeCtrData(400, 6, 51);
    const g = trainGbdt(train, { trees: 5, maxDepth: 3, seed: 3 });
    const model = join(dir, 'several.onnx');
    await writeSeveralEnsembles(model, 6, [
      { name: 'ranker', e: g },
      { name: 'ctr', e: binarySingleWeight(g, 'LOGISTIC', 0.2) },
    ]);
    const a = await capture([model]);
    assert.match(a.out, /tree ensemble: node "ranker" \(TreeEnsembleRegressor\), 1 of 2 in the graph \(--node NAME picks another: ctr\)/);
    const b = await capture([model, '--node', 'ctr', '--json']);
    const j = JSON.parse(b.out) as { node: string; op: string; ensembles: Array<{ name: string; op: string }> };
    assert.equal(j.node, 'ctr');
    assert.equal(j.op, 'TreeEnsembleClassifier');
    assert.deepEqual(j.ensembles.map((x) => x.name), ['ranker', 'ctr']);
    const out = join(dir, 'ctr-d1.onnx');
    const p = await capture([model, '--node', 'ctr', '--prune', 'depth=1', '--out', out]);
    assert.match(p.out, /tree ensemble: node "ctr" \(TreeEnsembleClassifier\), 2 of 2/);
    const ir = await readOnnxModel(out);
    assert.equal(readTreeEnsemble(ir, 'ranker').ensemble.trees[0].nodes.length, g.trees[0].nodes.length, 'the other ensemble is untouched');
    const pruned = readTreeEnsemble(ir).ensemble;
    assert.equal(readTreeEnsemble(ir).ref.name, 'ranker');
    assert.ok(pruned);
    const ctr = listTreeEnsembles(ir).find((r) => r.op === 'TreeEnsembleClassifier');
    assert.ok(ctr && ctr.name.startsWith('ctr'));
    const back = readTreeEnsemble(ir, ctr.name).ensemble;
    assert.ok(back.trees.every((t) => t.nodes.length <= 3));
    assert.deepEqual(back.baseValues, [Math.fround(0.2)], 'the single base value of the binary layout is kept');
    await assert.rejects(capture([model, '--node', 'nope']), (e: unknown) => e instanceof ModelFileError && /there are: ranker, ctr/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
