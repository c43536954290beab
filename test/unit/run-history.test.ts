// The run history store (.prunescope/runs/): ids, atomic records, the README, newest-first
// listing per model, read and delete, files that are not records skipped with a log line, and
// the records made from compress / compare / tree job results.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRunId, isRunRecord, newRunId, RunHistory, RUNS_DIR } from '../../src/core/jobs/run-history.js';
import { runRecordOf, workspaceRelative } from '../../src/core/jobs/run-records.js';
import type { CompressJobResult, RunRecord, TreeFeaturesResult, TreeRemovalResult } from '../../src/shared/protocol.js';
import type { ModelReport } from '../../src/shared/report.js';

function record(id: string, model: string, startedAt: string, extra: Partial<RunRecord> = {}): RunRecord {
  return { version: 1, id, kind: 'compress', title: `run ${id}`, model, outputs: [], startedAt, seconds: 1, bytes: { before: 100, after: 50 }, ...extra };
}

function withWorkspace(fn: (ws: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const ws = mkdtempSync(join(tmpdir(), 'ps-runs-'));
    try {
      await fn(ws);
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  };
}

test('run ids: UTC start time to the second plus a hex suffix, sortable as text', () => {
  assert.equal(newRunId(new Date('2026-12-06T11:22:33.456Z'), '3f9a'), '20261206T112233Z-3f9a');
  assert.match(newRunId(new Date('2026-01-02T03:04:05Z')), /^20260102T030405Z-[0-9a-f]{4}$/);
  assert.equal(isRunId('20261206T112233Z-3f9a'), true);
  for (const bad of ['../20261206T112233Z-3f9a', '20261206T112233Z-3f9a.json', '20261206T112233Z-XYZ1', '', 5]) assert.equal(isRunId(bad), false, String(bad));
});

test('workspaceRelative: inside with / separators, outside as given', () => {
  assert.equal(workspaceRelative('/w', '/w/models/a.onnx'), 'models/a.onnx');
  assert.equal(workspaceRelative('/w', '/elsewhere/a.onnx'), '/elsewhere/a.onnx');
  assert.equal(workspaceRelative('/w', '/w'), '/w');
});

test('append writes <id>.json atomically and a README; list is newest first and per model; read; delete', withWorkspace(async (ws) => {
  const h = new RunHistory(ws);
  assert.deepEqual(await h.list(), [], 'no folder yet: no runs');
  const a = record('20261206T100000Z-aaaa', 'models/a.onnx', '2026-12-06T10:00:00.000Z');
  const b = record('20261206T110000Z-bbbb', 'models/a.onnx', '2026-12-06T11:00:00.000Z');
  const c = record('20261206T103000Z-cccc', 'models/c/model.json', '2026-12-06T10:30:00.000Z');
  for (const r of [a, b, c]) await h.append(r);
  assert.equal(h.dir, join(ws, RUNS_DIR));
  assert.deepEqual(readdirSync(h.dir).sort(), ['20261206T100000Z-aaaa.json', '20261206T103000Z-cccc.json', '20261206T110000Z-bbbb.json', 'README.md']);
  assert.deepEqual(JSON.parse(readFileSync(join(h.dir, '20261206T100000Z-aaaa.json'), 'utf8')), a);
  const readme = readFileSync(join(h.dir, 'README.md'), 'utf8');
  assert.match(readme, /safe to delete/);
  assert.match(readme, /No model is ever copied here/);
  assert.deepEqual((await h.list()).map((r) => r.id), [b.id, c.id, a.id]);
  assert.deepEqual((await h.list('models/a.onnx')).map((r) => r.id), [b.id, a.id]);
  assert.deepEqual(await h.list('models/none.onnx'), []);
  assert.deepEqual(await h.read(c.id), c);
  assert.equal(await h.read('../../etc/passwd'), undefined);
  await assert.rejects(h.append(a), /already exists/);
  await assert.rejects(h.append({ ...a, id: 'x' } as RunRecord), /not a run record/);
  assert.equal(await h.delete(a.id), true);
  assert.equal(await h.delete(a.id), false);
  assert.equal(await h.delete('../README'), false);
  assert.deepEqual((await h.list()).map((r) => r.id), [b.id, c.id]);
  assert.ok(readdirSync(h.dir).includes('README.md'), 'the README stays');
}));

test('corrupt, foreign, newer and misnamed files are skipped with a log line; other files are ignored', withWorkspace(async (ws) => {
  const lines: string[] = [];
  const h = new RunHistory(ws, (l) => lines.push(l));
  const good = record('20261206T100000Z-aaaa', 'a.onnx', '2026-12-06T10:00:00.000Z');
  await h.append(good);
  writeFileSync(join(h.dir, '20261206T100001Z-0001.json'), '{ "version": 1, "id": ');
  writeFileSync(join(h.dir, '20261206T100002Z-0002.json'), JSON.stringify({ name: 'package', version: '1.0.0' }));
  writeFileSync(join(h.dir, '20261206T100003Z-0003.json'), JSON.stringify({ ...record('20261206T100003Z-0003', 'a.onnx', '2026-12-06T10:00:03.000Z'), version: 2 }));
  writeFileSync(join(h.dir, '20261206T100004Z-0004.json'), JSON.stringify(record('20261206T100005Z-0005', 'a.onnx', '2026-12-06T10:00:05.000Z')));
  writeFileSync(join(h.dir, 'notes.txt'), 'mine');
  mkdirSync(join(h.dir, 'sub'));
  assert.deepEqual(await h.list(), [good]);
  assert.equal(lines.length, 4);
  assert.match(lines[0], /skipped .*20261206T100001Z-0001\.json: .*JSON/);
  assert.match(lines[1], /skipped .*20261206T100002Z-0002\.json: not a PruneScope run record \(version 1\)/);
  assert.match(lines[2], /skipped .*20261206T100003Z-0003\.json: not a PruneScope run record/);
  assert.match(lines[3], /skipped .*20261206T100004Z-0004\.json: its id 20261206T100005Z-0005 does not match the file name/);
  assert.equal(await h.read('20261206T100001Z-0001'), undefined);
  assert.equal(isRunRecord({ ...good, bytes: { before: 1 } }), false);
  assert.equal(isRunRecord({ ...good, outputs: [3] }), false);
  assert.equal(isRunRecord({ ...good, kind: 'analyze' }), false);
}));

const report = (fileBytes: number, totalParams: number) => ({ fileBytes, totalParams }) as unknown as ModelReport;

function compressResult(): CompressJobResult {
  return {
    method: 'prune-magnitude + finetune',
    settings: { steps: [] },
    original: '/w/m/neumf.onnx',
    output: '/w/m/neumf-prune-magnitude.onnx',
    outputFiles: ['/w/m/neumf-prune-magnitude.onnx'],
    changes: [],
    notes: [],
    training: [{ method: 'finetune', backend: 'wasm', engine: 'compiled', outputKind: 'probability', outputKindReason: '', samplesPerSecond: 1, seconds: 1, losses: [] }],
    comparison: {
      k: 10,
      params: { before: 1000, after: 1000 },
      bytes: { before: 4000, after: null },
      gzipBytes: { before: 3000, after: 1000 },
      hr: { before: 0.5, after: 0.48 },
      ndcg: { before: 0.3, after: 0.29 },
      latency: [{ batch: 1, p50Before: 0.1, p50After: 0.09, withinNoise: true }],
      runtime: 'onnxruntime-node cpu',
      dataset: '/w/data/candidates.csv',
      summary: [],
    },
    before: report(4000, 1000),
    after: report(3900, 1000),
    seconds: 3,
  };
}

const ctx = { workspace: '/w', startedAt: new Date('2026-12-06T11:22:33.000Z'), seconds: 4.5 };
const noId = (r: RunRecord) => {
  assert.match(r.id, /^20261206T112233Z-[0-9a-f]{4}$/);
  return { ...r, id: '' };
};

test('records of compress and compare jobs: recipe as asked, relative paths, figures, backend', () => {
  const steps = [
    { method: 'prune-magnitude' as const, settings: { sparsity: 0.5 } },
    { method: 'finetune' as const, settings: { data: 'train.csv', epochs: 1 } },
  ];
  const spec = { kind: 'compress' as const, path: '/w/m/neumf.onnx', method: 'prune-magnitude' as const, settings: { sparsity: 0.5 }, steps, outPath: '/w/m/neumf-prune-magnitude.onnx', tempDir: '/w/m/.prunescope-00.tmp' };
  const r = compressResult();
  assert.deepEqual(noId(runRecordOf(spec, r, { ...ctx, title: 'prune-magnitude 50% (fine-tuned 1 epoch)' })), {
    version: 1,
    id: '',
    kind: 'compress',
    title: 'prune-magnitude 50% (fine-tuned 1 epoch)',
    model: 'm/neumf.onnx',
    outputs: ['m/neumf-prune-magnitude.onnx'],
    recipe: steps,
    dataset: 'data/candidates.csv',
    startedAt: '2026-12-06T11:22:33.000Z',
    seconds: 4.5,
    backend: 'tfjs wasm',
    bytes: { before: 4000, after: 3900 },
    params: { before: 1000, after: 1000 },
    k: 10,
    ndcg: { before: 0.3, after: 0.29 },
    hr: { before: 0.5, after: 0.48 },
    // the gzip size (pruning's zeros shrink only it) and the latency verdict, as the job's table
    gzipBytes: { before: 3000, after: 1000 },
    latency: [{ batch: 1, p50Before: 0.1, p50After: 0.09, withinNoise: true }],
  });
  const single = runRecordOf({ ...spec, steps: undefined }, { ...r, training: undefined }, ctx);
  assert.deepEqual(single.recipe, [{ method: 'prune-magnitude', settings: { sparsity: 0.5 } }]);
  assert.equal(single.title, 'prune-magnitude + finetune');
  assert.equal(single.backend, 'onnxruntime-node cpu');
  const cmp = runRecordOf({ kind: 'compare', before: '/w/m/neumf.onnx', after: '/w/m/neumf-prune-magnitude.onnx' }, { ...r, method: 'compare' }, ctx);
  assert.deepEqual([cmp.kind, cmp.title, cmp.outputs, cmp.recipe], ['compare', 'compare with m/neumf-prune-magnitude.onnx', [], undefined]);
});

test('records of tree jobs: held-out AUC, sizes, the data they were measured on', () => {
  const removal: TreeRemovalResult = {
    model: '/w/forest.onnx',
    outPath: '/w/forest-trees.onnx',
    node: '',
    data: '/w/valid.csv',
    selection: 'half',
    fraction: 0.5,
    droppedTrees: [3, 7],
    tuning: { metric: 'auc', before: 0.9, after: 0.91, rows: 100 },
    heldOut: { metric: 'auc', before: 0.88, after: 0.87, rows: 100, source: 'valid.csv' },
    before: { trees: 10, nodes: 100, leaves: 55, bytes: 5000 },
    after: { trees: 8, nodes: 80, leaves: 44, bytes: 4100 },
    notes: [],
  };
  const spec = { kind: 'tree-remove' as const, path: '/w/forest.onnx', data: '/w/valid.csv', fraction: 0.5, outPath: '/w/forest-trees.onnx', tempDir: '/w/.prunescope-00.tmp' };
  assert.deepEqual(noId(runRecordOf(spec, removal, ctx)), {
    version: 1,
    id: '',
    kind: 'tree-remove',
    title: 'remove 2 of 10 trees',
    model: 'forest.onnx',
    outputs: ['forest-trees.onnx'],
    dataset: 'valid.csv',
    startedAt: '2026-12-06T11:22:33.000Z',
    seconds: 4.5,
    bytes: { before: 5000, after: 4100 },
    auc: { before: 0.88, after: 0.87 },
  });
  // a multi-class forest is judged by accuracy, a regressor by RMSE: the record keeps that figure under its name
  const byAccuracy: TreeRemovalResult = { ...removal, tuning: { ...removal.tuning, metric: 'accuracy' }, heldOut: { ...removal.heldOut, metric: 'accuracy', before: 0.75, after: 0.7 } };
  const acc = runRecordOf(spec, byAccuracy, ctx);
  assert.deepEqual([acc.auc, acc.accuracy, acc.rmse], [undefined, { before: 0.75, after: 0.7 }, undefined]);
  const byRmse: TreeRemovalResult = { ...removal, tuning: { ...removal.tuning, metric: 'rmse' }, heldOut: { ...removal.heldOut, metric: 'rmse', before: 1.5, after: 1.6 } };
  const rm = runRecordOf(spec, byRmse, ctx);
  assert.deepEqual([rm.auc, rm.accuracy, rm.rmse], [undefined, undefined, { before: 1.5, after: 1.6 }]);
  const features: TreeFeaturesResult = {
    model: '/w/forest.onnx',
    outPath: '/w/forest-features.onnx',
    node: '',
    removedFeatures: [1, 4],
    becameUnused: [],
    before: { trees: 10, nodes: 100, leaves: 55, bytes: 5000 },
    after: { trees: 10, nodes: 90, leaves: 50, bytes: 4600 },
  };
  const fspec = { kind: 'tree-features' as const, path: '/w/forest.onnx', features: [1, 4], outPath: '/w/forest-features.onnx', tempDir: '/w/.prunescope-01.tmp' };
  assert.deepEqual(noId(runRecordOf(fspec, features, ctx)), {
    version: 1,
    id: '',
    kind: 'tree-features',
    title: 'drop tree features 1, 4',
    model: 'forest.onnx',
    outputs: ['forest-features.onnx'],
    startedAt: '2026-12-06T11:22:33.000Z',
    seconds: 4.5,
    bytes: { before: 5000, after: 4600 },
  });
});
