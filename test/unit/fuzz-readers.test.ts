// A few hundred fuzz cases per format (the benchmark-size run is `node out/scripts/fuzz/fuzz.js`):
// every mutated file must be read (and analysed) or refused with an intentional error; no crash,
// no hang. Plus the harness's own pieces: mutations are reproducible, protobuf edits keep the
// enclosing messages well-formed, and the classification tells crashes from intentional errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { onnx } from 'onnx-proto';
import { ModelFileError } from '../../src/core/model/ir.js';
import { runFuzz, summaryLine } from '../../scripts/fuzz/fuzz.js';
import { isIntentional, prepareCase, seedsFor } from '../../scripts/fuzz/fuzz-case.js';
import { encodeVarint, protoMutation, wireFields } from '../../scripts/fuzz/mutate-bytes.js';
import { Rng } from '../../scripts/fuzz/rng.js';
import { FuzzFormat, buildSeeds, loadSeed } from '../../scripts/fuzz/seeds.js';

const CASES: Record<FuzzFormat, number> = { onnx: 250, 'tfjs-json': 250, 'tfjs-shards': 150, csv: 200 };

for (const format of Object.keys(CASES) as FuzzFormat[]) {
  test(`fuzz ${format}: ${CASES[format]} mutated files, zero crashes, zero hangs`, { timeout: 600_000 }, async () => {
    // generous per-case limit: the suite may share a loaded machine; a real hang never finishes
    const s = await runFuzz({ format, cases: CASES[format], seed: 20261123, timeLimitMs: 30_000 });
    const detail = [...s.crashes, ...s.hangs].map((c) => `#${c.index} ${c.seed}: ${c.desc}\n  ${c.message}`).join('\n');
    assert.equal(s.crashes.length, 0, `${summaryLine(s)}\n${detail}`);
    assert.equal(s.hangs.length, 0, `${summaryLine(s)}\n${detail}`);
    assert.equal(s.cases, CASES[format]);
    assert.equal(s.ok + s.errors, s.cases);
    // the mutations reach both outcomes: some damage is harmless, some is refused
    assert.ok(s.ok > 0 && s.errors > 0, summaryLine(s));
  });
}

test('a case over its time limit is a hang: the worker is killed and replaced, the run goes on', async () => {
  // 2 ms is less than a fresh worker needs to load the readers, so both cases time out twice
  const s = await runFuzz({ format: 'csv', cases: 2, seed: 1, timeLimitMs: 2 });
  assert.equal(s.cases, 2);
  assert.deepEqual(s.hangs.map((h) => [h.index, h.message]), [[0, 'no answer within 4 ms'], [1, 'no answer within 4 ms']]);
  assert.equal(s.ok + s.errors + s.crashes.length, 0);
});

test('cases are reproducible from (seed, index) alone', async () => {
  const { dir, seeds } = await buildSeeds();
  const all = seeds.map((e) => loadSeed(dir, e));
  for (const format of ['onnx', 'tfjs-json', 'tfjs-shards', 'csv'] as FuzzFormat[]) {
    const ss = seedsFor(format, all);
    assert.ok(ss.length >= 4, `${format}: ${ss.length} seeds`);
    for (const i of [0, 17, 999]) {
      const a = prepareCase(format, ss, 5, i);
      const b = prepareCase(format, ss, 5, i);
      assert.equal(a.desc, b.desc);
      assert.deepEqual(a.actions, b.actions);
    }
  }
});

test('protobuf edits fix the enclosing lengths: the damaged field is nested, the message still parses', () => {
  const model = onnx.ModelProto.encode({
    irVersion: 8,
    graph: { name: 'g', initializer: [{ name: 'w', dims: [2], dataType: 1, rawData: new Uint8Array(8) }] },
  }).finish();
  const top = wireFields(model).filter((f) => f.ancestors.length === 0);
  assert.deepEqual(top.map((f) => f.field), [1, 7]);
  let nestedEdits = 0;
  for (let s = 1; s <= 300; s++) {
    const m = protoMutation(new Rng(s), model);
    if (!m || !/^(remove|duplicate) field/.test(m.desc)) continue;
    // removing or duplicating a field leaves a well-formed message: the top level parses and
    // spans the whole file; when it still has exactly ir_version and graph, the edit was nested
    const topAfter = wireFields(m.bytes).filter((f) => f.ancestors.length === 0);
    assert.ok(topAfter.length > 0 || m.bytes.length === 0, m.desc);
    if (topAfter.length > 0) assert.equal(topAfter[topAfter.length - 1].end, m.bytes.length, m.desc);
    if (topAfter.map((f) => f.field).join() === '1,7' && m.bytes.length !== model.length) nestedEdits++;
  }
  assert.ok(nestedEdits > 5, `only ${nestedEdits} nested edits`);
  assert.deepEqual(Array.from(encodeVarint(300n)), [0xac, 0x02]);
  assert.deepEqual(Array.from(encodeVarint(-1n)), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
});

test('classification: ModelFileError and plain Errors naming the file are intentional, the rest are crashes', () => {
  const dir = '/tmp/prunescope-fuzz-x/c1';
  assert.equal(isIntentional(new ModelFileError(`${dir}/m.onnx`, 'truncated'), dir), true);
  assert.equal(isIntentional(new Error(`${dir}/m.onnx: cannot read`), dir), true);
  assert.equal(isIntentional(new Error('index out of range: 3 + 8 > 10'), dir), false);
  assert.equal(isIntentional(new TypeError(`${dir}/m.onnx: x is undefined`), dir), false);
  assert.equal(isIntentional(new RangeError('Invalid array length'), dir), false);
  assert.equal(isIntentional('a string', dir), false);
});
