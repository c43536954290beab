// DeepFM field columns are matched to the model's fields input by name, not by their place in
// the file: the same rows with the columns in another order give the same metrics (before, they
// were fed in file order: wrong scores and no error, or an ORT range error naming no file).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readModel } from '../../src/core/model/read-model.js';
import { fieldColumns } from '../../src/core/model/field-columns.js';
import { evaluateModel } from '../../src/core/eval/evaluate.js';
import { readInteractionTable } from '../../src/core/compress/train/interaction-table.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';
import { pytorchExports } from '../fixtures/pytorch/exports.js';

const fixtureDir = join(tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);

/** The CSV with its columns in the order of `names` (a header of other names renames them). */
function reordered(src: string, dest: string, names: string[], rename: Record<string, string> = {}): string {
  const lines = readFileSync(src, 'utf8').trim().split('\n');
  const header = lines[0].split(',');
  const at = names.map((n) => header.indexOf(n));
  assert.ok(at.every((i) => i >= 0), `${names.join(',')} in ${header.join(',')}`);
  const rows = lines.map((l, i) => (i === 0 ? names.map((n) => rename[n] ?? n) : at.map((j) => l.split(',')[j])).join(','));
  writeFileSync(dest, rows.join('\n') + '\n');
  return dest;
}

test('fieldColumns: the fields input column each named table reads (our ONNX and TF.js DeepFM)', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  for (const file of [fx.models.deepfm.onnxPath!, fx.models.deepfm.tfjsModelJson!]) {
    const { at } = fieldColumns(await readModel(file));
    const cols = ['user', 'item', 'item_category', 'user_segment', 'noise_a', 'noise_b', 'timestamp', 'user_seg'].map(at);
    // 'item' is item_embedding's column, not item_category's; no table is named after 'timestamp' or 'user_seg'
    assert.deepEqual(cols, [0, 1, 2, 3, 4, 5, undefined, undefined], file);
  }
});

test('eval, training data: DeepFM columns in another order give the same metrics and rows; an unnamed column is refused naming the file', async () => {
  const fx = await writeTinyFixtures(fixtureDir);
  const dir = mkdtempSync(join(tmpdir(), 'ps-field-columns-'));
  const cand = fx.models.deepfm.candidatesCsv;
  const order = ['noise_b', 'user', 'label', 'user_segment', 'item', 'noise_a', 'timestamp', 'item_category'];
  const shuffled = reordered(cand, join(dir, 'shuffled.csv'), order);
  for (const file of [fx.models.deepfm.onnxPath!, fx.models.deepfm.tfjsModelJson!]) {
    const a = await evaluateModel(file, { candidates: cand });
    const b = await evaluateModel(file, { candidates: shuffled });
    assert.deepEqual([b.hr, b.ndcg, b.auc], [a.hr, a.ndcg, a.auc], file);
    const ir = await readModel(file);
    const [ta, tb] = [await readInteractionTable(cand, { model: ir }), await readInteractionTable(shuffled, { model: ir })];
    assert.deepEqual(tb.extraNames, ['item_category', 'user_segment', 'noise_a', 'noise_b']);
    assert.deepEqual(tb.extra, ta.extra);
  }
  // one column renamed so that no table is named after it: which field it feeds is unknown
  const renamed = reordered(cand, join(dir, 'renamed.csv'), order, { noise_b: 'nb' });
  await assert.rejects(
    evaluateModel(fx.models.deepfm.onnxPath!, { candidates: renamed }),
    (e: Error) => e.message.startsWith(`${renamed}: line 1: the model has no field table named after column(s) 'nb'`),
  );
  // a field column left out: the message names it, not a column that is there
  const missing = reordered(cand, join(dir, 'missing.csv'), ['user', 'item', 'label', 'item_category', 'noise_a', 'noise_b']);
  await assert.rejects(
    evaluateModel(fx.models.deepfm.onnxPath!, { candidates: missing }),
    (e: Error) => e.message === `${missing}: line 1: the model's fields input takes user, item and 4 more columns; the file has 3 ('item_category', 'noise_a', 'noise_b'): no column 'user_segment'`,
  );
  // the last field column left out
  const last = reordered(cand, join(dir, 'last.csv'), ['user', 'item', 'label', 'item_category', 'user_segment', 'noise_a']);
  await assert.rejects(
    evaluateModel(fx.models.deepfm.onnxPath!, { candidates: last }),
    (e: Error) => e.message === `${last}: line 1: the model's fields input takes user, item and 4 more columns; the file has 3 ('item_category', 'user_segment', 'noise_a'): no column 'noise_b'`,
  );
  // no field column at all (another model's user,item,label candidates): all of them named
  const bare = reordered(cand, join(dir, 'bare.csv'), ['user', 'item', 'label']);
  await assert.rejects(
    evaluateModel(fx.models.deepfm.onnxPath!, { candidates: bare }),
    (e: Error) => e.message === `${bare}: line 1: the model's fields input takes user, item and 4 more columns; the file has none: no column 'item_category', 'user_segment', 'noise_a', 'noise_b'`,
  );
  assert.equal(fieldColumns(await readModel(fx.models.deepfm.onnxPath!)).nameOf(3), 'user_segment');
});

test('a PyTorch-exported DeepFM (one fields input, Constant-node column indices): columns matched by name', async (t) => {
  const e = pytorchExports();
  if (!e) return t.skip('PyTorch not installed');
  const m = e.models.find((x) => x.inputs.length === 1 && /deepfm/.test(x.file))!;
  assert.ok(m, 'the exports include a DeepFM');
  const file = join(e.dir, m.file);
  const cand = join(e.dir, m.candidates);
  const header = readFileSync(cand, 'utf8').split('\n')[0].split(',');
  const extra = header.filter((h) => !['user', 'item', 'label'].includes(h));
  assert.ok(extra.length >= 2, `two extra fields at least: ${header.join(',')}`);
  const { at } = fieldColumns(await readModel(file));
  assert.deepEqual(['user', 'item', ...extra].map(at), [0, 1, ...extra.map((_, i) => 2 + i)]);
  const swapped = reordered(cand, join(mkdtempSync(join(tmpdir(), 'ps-field-columns-pt-')), 'swapped.csv'), ['label', ...extra.slice().reverse(), 'item', 'user']);
  const [a, b] = [await evaluateModel(file, { candidates: cand }), await evaluateModel(file, { candidates: swapped })];
  assert.ok(Math.abs(a.ndcg! - m.ndcg10) < 1e-6, `NDCG@10 ${a.ndcg} as PyTorch measured ${m.ndcg10}`);
  assert.deepEqual([b.hr, b.ndcg, b.auc], [a.hr, a.ndcg, a.auc]);
});
