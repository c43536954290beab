// Quantize Model's training choice as compress steps, composed as `prunescope quantize --finetune`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { composeQuantize, describeQuantizeTuning, quantizeSteps, QuantizeTuningError } from '../../src/core/jobs/quantize-steps.js';
import { checkedSettings } from '../../src/core/compress/method-settings.js';

const int4 = { dtype: 'int4', tensors: 'embeddings' };

test('quantized directly: the quantize step alone', () => {
  assert.deepEqual(quantizeSteps(int4, { kind: 'direct' }), [{ method: 'quantize', settings: int4 }]);
  assert.deepEqual(composeQuantize({ dtype: 'int8' }, undefined), [{ method: 'quantize', settings: { dtype: 'int8' } }]);
  assert.equal(describeQuantizeTuning({ kind: 'direct' }), 'no training');
});

test('quantization-aware: a finetune step through the same dtype and scales, taught by the original, then the quantize step', () => {
  assert.deepEqual(quantizeSteps(int4, { kind: 'quant-aware', data: 'train.csv', epochs: 2 }, 'model.onnx'), [
    { method: 'finetune', settings: { data: 'train.csv', epochs: 2, lr: 0.001, batchSize: 1024, quantAware: { dtype: 'int4', scales: 'row' }, teacher: 'model.onnx' } },
    { method: 'quantize', settings: int4 },
  ]);
  const cols = { dtype: 'int3', scales: 'column' };
  assert.deepEqual(composeQuantize(cols, { data: 'd.csv', epochs: 1, lr: 0.01, batchSize: 256, outputKind: 'logit' }), [
    { method: 'finetune', settings: { data: 'd.csv', epochs: 1, lr: 0.01, batchSize: 256, quantAware: { dtype: 'int3', scales: 'column' }, outputKind: 'logit' } },
    { method: 'quantize', settings: cols },
  ]);
  assert.equal(describeQuantizeTuning({ kind: 'quant-aware', data: 'x', epochs: 1 }), 'quantization-aware: fine-tuned 1 epoch');
  assert.equal(describeQuantizeTuning({ kind: 'quant-aware', data: 'x', epochs: 3 }), 'quantization-aware: fine-tuned 3 epochs');
});

test('refused: training before int8 / float16, and a list of tables (every table trains through the rounding)', () => {
  const ft = { data: 'd.csv', epochs: 2 };
  for (const dtype of ['int8', 'float16', 'uint8']) {
    assert.throws(() => composeQuantize({ dtype }, ft), (e: Error) => e instanceof QuantizeTuningError && e.message.includes(`--dtype ${dtype} keeps the metric without it`));
  }
  assert.throws(() => composeQuantize({ dtype: 'int4', tensors: ['user_embedding'] }, ft), /give --tensors embeddings \(or all\), not a list of tables/);
  assert.equal(composeQuantize({ dtype: 'int2', tensors: 'all' }, ft).length, 2);
  // byte scales are fitted to the table after training: nothing exact to train through
  assert.throws(
    () => composeQuantize({ dtype: 'int4', scales: 'byte' }, ft),
    (e: Error) => e instanceof QuantizeTuningError && e.message.includes('byte scales are fitted to the table after training: choose per row or per column, or quantize directly'),
  );
});

test('every composed step passes the method registry’s settings check', () => {
  for (const dtype of ['int4', 'int3', 'int2']) {
    for (const scales of [undefined, 'column']) {
      for (const step of composeQuantize({ dtype, tensors: 'embeddings', ...(scales ? { scales } : {}) }, { data: 'd.csv', epochs: 2, teacher: 'm.onnx' })) {
        assert.doesNotThrow(() => checkedSettings(step.method, step.settings), `${step.method} ${JSON.stringify(step.settings)}`);
      }
    }
  }
});
