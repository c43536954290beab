import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cellSpan, describeSettings, formatPairedRatio, localTime } from '../../src/shared/format.js';

test('cellSpan: one index alone, a range otherwise, cut at the matrix edge', () => {
  assert.equal(cellSpan('col', 3, 1, 32), 'col 3');
  assert.equal(cellSpan('row', 0, 8, 943), 'rows 0–7');
  // 943 rows in cells of 8: the last cell holds rows 936-942
  assert.equal(cellSpan('row', 936, 8, 943), 'rows 936–942');
  // a last cell of one row
  assert.equal(cellSpan('row', 942, 4, 943), 'row 942');
  // the size unknown (a tensor that is not a matrix): the cell's own extent
  assert.equal(cellSpan('col', 4, 4), 'cols 4–7');
});

test('formatPairedRatio names the direction', () => {
  assert.equal(formatPairedRatio(2.1), '2.10x slower');
  assert.equal(formatPairedRatio(0.8), '1.25x faster');
});

test('describeSettings: one method plainly, a recipe as its steps with long lists counted', () => {
  assert.equal(describeSettings({}), '');
  assert.equal(describeSettings({ energy: 0.9, tensors: 'embeddings' }), 'energy 0.9, tensors embeddings');
  // nested settings one level deep
  assert.equal(describeSettings({ sparsity: 0.5, gradual: { epochs: 3, ramp: { a: 1 } } }), 'sparsity 0.5, gradual {epochs 3, ramp {…}}');
  assert.equal(
    describeSettings({ steps: [
      { method: 'factorize', settings: { tensors: ['user_mlp'], energy: 0.8 } },
      { method: 'quantize', settings: { dtype: 'int4', tensors: ['a', 'b', 'c'], scales: 'column' } },
    ] }),
    'factorize (tensors user_mlp, energy 0.8) → quantize (dtype int4, tensors 3 names, scales column)',
  );
});

test('localTime: a stored UTC timestamp in the viewer time zone', () => {
  const before = process.env.TZ;
  try {
    process.env.TZ = 'UTC';
    assert.equal(localTime('2026-12-07T16:05:09.123Z'), '2026-12-07 16:05');
    assert.equal(localTime('2026-12-07T16:05:09.123Z', true), '2026-12-07 16:05:09');
    process.env.TZ = 'Asia/Tokyo';
    // UTC+9: the next day
    assert.equal(localTime('2026-12-07T16:05:09.123Z'), '2026-12-08 01:05');
    assert.equal(localTime('not a date'), 'not a date');
  } finally {
    if (before === undefined) delete process.env.TZ;
    else process.env.TZ = before;
  }
});
