// Prune Model's fine-tuning choices as compress steps, composed as `prunescope prune --finetune`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeTuning, pruneSteps } from '../../src/core/jobs/prune-steps.js';
import { checkedSettings } from '../../src/core/compress/method-settings.js';
import type { CompressStep } from '../../src/core/jobs/job-types.js';

const magnitude: CompressStep = { method: 'prune-magnitude', settings: { sparsity: 0.9, scope: 'global' } };
const rows: CompressStep = { method: 'prune-rows', settings: { sparsity: 0.5 } };
const ft = (epochs: number, masks: string) => ({ data: 'train.csv', epochs, lr: 0.001, batchSize: 1024, masks });

test('one-shot is the cut alone', () => {
  assert.deepEqual(pruneSteps(magnitude, { kind: 'one-shot' }), [magnitude]);
  assert.equal(describeTuning({ kind: 'one-shot' }), 'one-shot: no fine-tuning');
});

test('magnitude pruning fine-tuned 2+ epochs: one finetune step with dynamic masks regrown for all but the last epoch', () => {
  assert.deepEqual(pruneSteps(magnitude, { kind: 'finetune', data: 'train.csv', epochs: 3 }), [
    { method: 'finetune', settings: { ...ft(3, 'none'), dynamic: { prune: magnitude.settings, regrowEpochs: 2, frequency: 100 } } },
  ]);
  assert.equal(describeTuning({ kind: 'finetune', data: 'x', epochs: 3 }), 'fine-tuned 3 epochs');
});

test('one epoch, column granularity or structured pruning: the cut, then a plain fine-tuning', () => {
  assert.deepEqual(pruneSteps(magnitude, { kind: 'finetune', data: 'train.csv', epochs: 1 }), [magnitude, { method: 'finetune', settings: ft(1, 'keep-zeros') }]);
  const columns: CompressStep = { method: 'prune-magnitude', settings: { sparsity: 0.5, granularity: 'column' } };
  assert.deepEqual(pruneSteps(columns, { kind: 'finetune', data: 'train.csv', epochs: 2 }), [columns, { method: 'finetune', settings: ft(2, 'keep-zeros') }]);
  assert.deepEqual(pruneSteps(rows, { kind: 'finetune', data: 'train.csv', epochs: 2 }), [rows, { method: 'finetune', settings: ft(2, 'none') }]);
});

test('gradual: one finetune step that prunes while it trains; magnitude pruning only', () => {
  const tuning = { kind: 'gradual', data: 'train.csv', epochs: 3, rampEpochs: 2 } as const;
  assert.deepEqual(pruneSteps(magnitude, tuning), [{ method: 'finetune', settings: { ...ft(3, 'none'), gradual: { prune: magnitude.settings, rampEpochs: 2, frequency: 100 } } }]);
  assert.throws(() => pruneSteps(rows, tuning), /applies to magnitude pruning/);
  assert.equal(describeTuning(tuning), 'gradual: pruned while training 3 epochs (ramp over 2)');
});

test('every composed step passes the method registry’s settings check', () => {
  const all = [
    ...pruneSteps(magnitude, { kind: 'finetune', data: 'train.csv', epochs: 2 }),
    ...pruneSteps(magnitude, { kind: 'finetune', data: 'train.csv', epochs: 1 }),
    ...pruneSteps(rows, { kind: 'finetune', data: 'train.csv', epochs: 3 }),
    ...pruneSteps(magnitude, { kind: 'gradual', data: 'train.csv', epochs: 3, rampEpochs: 2 }),
  ];
  for (const s of all) assert.doesNotThrow(() => checkedSettings(s.method, s.settings), `${s.method} ${JSON.stringify(s.settings)}`);
});

test('composePrune: the teacher reaches every fine-tuning step; schedules that cannot run are refused', async () => {
  const { composePrune, pruneSteps, PruneScheduleError } = await import('../../src/core/jobs/prune-steps.js');
  const cut = { method: 'prune-magnitude' as const, settings: { sparsity: 0.9, scope: 'global' } };
  const ft = { data: 't.csv', epochs: 3, teacher: '/m/original.onnx' };
  const dynamic = composePrune(cut, ft);
  assert.equal(dynamic.length, 1);
  assert.equal(dynamic[0].settings.teacher, '/m/original.onnx');
  assert.deepEqual(dynamic[0].settings.dynamic, { prune: cut.settings, regrowEpochs: 2, frequency: 100 });
  const threeCuts = composePrune(cut, ft, { steps: 3 });
  assert.deepEqual(threeCuts.map((s) => s.method), ['prune-magnitude', 'finetune', 'prune-magnitude', 'finetune', 'prune-magnitude', 'finetune']);
  assert.ok(threeCuts.filter((s) => s.method === 'finetune').every((s) => s.settings.teacher === '/m/original.onnx'));
  assert.equal(threeCuts[4].settings.sparsity, 0.9);
  assert.ok((threeCuts[0].settings.sparsity as number) < (threeCuts[2].settings.sparsity as number));
  assert.equal(pruneSteps(cut, { kind: 'finetune', data: 't.csv', epochs: 2 }, '/m/x.onnx')[0].settings.teacher, '/m/x.onnx');
  assert.equal(pruneSteps(cut, { kind: 'finetune', data: 't.csv', epochs: 2 })[0].settings.teacher, undefined);
  const rows = { method: 'prune-rows' as const, settings: { sparsity: 0.5 } };
  assert.throws(() => composePrune(rows, ft, { rampEpochs: 1 }), PruneScheduleError);
  assert.throws(() => composePrune(cut, undefined, { rampEpochs: 1 }), /--ramp-epochs needs --finetune/);
  assert.throws(() => composePrune(cut, ft, { steps: 2, regrowEpochs: 1 }), /not both/);
  assert.throws(() => composePrune(cut, undefined, { frequency: 10 }), /--frequency goes with/);
});
