// The 'tree-remove' job behind the editor's "Remove N trees" action: it chooses the same trees as
// `prunescope trees --prune drop=F` (a seeded half of --data chooses, the other half or --test
// reports), keeps the tuning and held-out figures apart, never writes over the original, and
// leaves no temp folder.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { treesCommand, TUNING_SPLIT_SEED } from '../../src/cli/trees-command.js';
import { runJobInProcess, TREE_REMOVAL_SPLIT_SEED } from '../../src/core/jobs/run-job-in-process.js';
import { outputPathFor, tempDirFor } from '../../src/core/jobs/output-files.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { readTreeEnsemble, writeTreeEnsembleModel } from '../../src/core/trees/onnx-trees.js';
import { formatTreeCsv } from '../../src/core/trees/tree-data.js';
import { parseWebviewMessage, treeRemovalProposal, type TreeEnsembleView, type TreeRemovalResult } from '../../src/shared/protocol.js';
import { makeCtrData, trainGbdt } from '../fixtures/tree-trainer.js';

async function cliJson(argv: string[]): Promise<Record<string, unknown>> {
  const chunks: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array) => {
    chunks.push(String(s));
    return true;
  }) as typeof process.stdout.write;
  try {
    await treesCommand([...argv, '--json']);
  } finally {
    process.stdout.write = orig;
  }
  return JSON.parse(chunks.join('')) as Record<string, unknown>;
}

test('tree-remove job: same trees as the CLI, held-out figures on the other half, tuning figures on the rows it chose on, original untouched', async () => {
  assert.equal(TREE_REMOVAL_SPLIT_SEED, TUNING_SPLIT_SEED, 'the editor and the CLI split the validation rows alike');
  const dir = await mkdtemp(join(tmpdir(), 'ps-tree-remove-'));
  try {
    const model = join(dir, 'gbdt.onnx');
    await writeTreeEnsembleModel(model, trainGbdt(makeCtrData(800, 6, 201), { trees: 20, maxDepth: 3, seed: 2 }), { nFeatures: 6 });
    const csv = join(dir, 'valid.csv');
    await writeFile(csv, formatTreeCsv(makeCtrData(400, 6, 202)));
    const original = await readFile(model);
    const out = outputPathFor(model, 'trees');
    assert.equal(out, join(dir, 'gbdt-trees.onnx'));
    const fractions: number[] = [];
    const r = (await runJobInProcess(
      { kind: 'tree-remove', path: model, data: csv, fraction: 0.5, tolerance: 1, outPath: out, tempDir: tempDirFor(out) },
      new AbortController().signal,
      (p) => fractions.push(p.fraction),
    )) as TreeRemovalResult;
    assert.equal(r.outPath, out);
    assert.equal(r.before.trees, 20);
    assert.equal(r.after.trees, 10);
    assert.equal(r.droppedTrees.length, 10);
    assert.match(r.selection, /chose on a seeded half of valid\.csv \(200 rows, seed 1, stratified by label\); reported on the other 200 rows/);
    assert.equal(r.tuning.rows, 200);
    assert.deepEqual([r.heldOut.rows, r.heldOut.source, r.heldOut.metric], [200, 'the other half of valid.csv', 'auc']);
    assert.ok(fractions.length >= 2 && fractions.at(-1) === 1);
    // the written model holds the pruned ensemble; the original is byte-for-byte the same
    assert.equal(readTreeEnsemble(await readOnnxModel(out)).ensemble.trees.length, 10);
    assert.ok((await readFile(model)).equals(original), 'the original model changed');
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.prunescope-')), [], 'a temp folder was left behind');

    // the CLI on the same data removes the same trees and reports the same figures
    const cli = await cliJson([model, '--prune', 'drop=0.5', '--tolerance', '1', '--data', csv, '--out', join(dir, 'cli.onnx')]);
    assert.deepEqual(cli.droppedTrees, r.droppedTrees);
    assert.deepEqual(cli.heldOut, r.heldOut);
    assert.deepEqual(cli.tuning, r.tuning);

    // an existing output is not replaced without overwrite; the model itself never is
    await assert.rejects(runJobInProcess({ kind: 'tree-remove', path: model, data: csv, fraction: 0.5, outPath: out, tempDir: tempDirFor(out) }, new AbortController().signal, () => {}));
    await assert.rejects(runJobInProcess({ kind: 'tree-remove', path: model, data: csv, fraction: 0.5, outPath: model, overwrite: true, tempDir: tempDirFor(model) }, new AbortController().signal, () => {}));
    assert.ok((await readFile(model)).equals(original), 'the original model changed');

    // with a test file: all of valid.csv chooses, test.csv reports
    const testCsv = join(dir, 'test.csv');
    await writeFile(testCsv, formatTreeCsv(makeCtrData(250, 6, 203)));
    const out2 = join(dir, 'gbdt-trees-2.onnx');
    const t = (await runJobInProcess(
      { kind: 'tree-remove', path: model, data: csv, test: testCsv, fraction: 0.25, outPath: out2, tempDir: tempDirFor(out2) },
      new AbortController().signal,
      () => {},
    )) as TreeRemovalResult;
    assert.match(t.selection, /chose on all 400 rows of valid\.csv; reported on the 250 rows of test\.csv/);
    assert.equal(t.tuning.rows, 400);
    assert.deepEqual([t.heldOut.rows, t.heldOut.source], [250, 'test.csv']);
    assert.ok(t.droppedTrees.length <= 5);

    // a CSV of the wrong width names the file
    const bad = join(dir, 'bad.csv');
    await writeFile(bad, formatTreeCsv(makeCtrData(50, 4, 204)));
    await assert.rejects(
      runJobInProcess({ kind: 'tree-remove', path: model, data: bad, fraction: 0.5, outPath: join(dir, 'x.onnx'), tempDir: tempDirFor(join(dir, 'x.onnx')) }, new AbortController().signal, () => {}),
      /bad\.csv/,
    );
    assert.ok(!existsSync(join(dir, 'x.onnx')));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('"Remove N trees" finding: proposed for ensembles of 10 trees or more; the webview message needs a node and a share in (0, 1)', () => {
  const view = (trees: number) => ({ trees }) as TreeEnsembleView;
  assert.equal(treeRemovalProposal(view(9)), 0);
  assert.equal(treeRemovalProposal(view(20)), 10);
  assert.equal(treeRemovalProposal(view(150)), 75);
  assert.deepEqual(parseWebviewMessage({ type: 'removeTrees', node: 'trees', fraction: 0.5 }), { type: 'removeTrees', node: 'trees', fraction: 0.5 });
  assert.equal(parseWebviewMessage({ type: 'removeTrees', node: 'trees', fraction: 1 }), undefined);
  assert.equal(parseWebviewMessage({ type: 'removeTrees', node: 'trees', fraction: 0 }), undefined);
  assert.equal(parseWebviewMessage({ type: 'removeTrees', node: 'trees', fraction: '0.5' }), undefined);
  assert.equal(parseWebviewMessage({ type: 'removeTrees', fraction: 0.5 }), undefined);
});
