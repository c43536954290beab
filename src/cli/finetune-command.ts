// `prunescope finetune MODEL --data INTERACTIONS.csv [--epochs N] [--masks keep-zeros|none] [--teacher ORIGINAL]
//   [--quant-aware int4|int3|int2 [--quant-scales row|column]] --out PATH`
// (options: command-specs.ts FINETUNE)

import { resolve } from 'node:path';
import { FINETUNE } from './command-specs.js';
import { runCompressCommand, trainingGroupSettings } from './run-compress-job.js';

export async function finetuneCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = FINETUNE.parse(argv);
  const settings: Record<string, unknown> = {
    data: o.data,
    epochs: o.epochs,
    lr: o.lr,
    batchSize: o['batch-size'],
    ...trainingGroupSettings({ 'output-kind': o['output-kind'], engine: o.engine }),
    ...(o.masks ? { masks: o.masks } : {}),
    ...(o.negatives !== undefined ? { negatives: o.negatives } : {}),
    ...(o.teacher ? { teacher: resolve(o.teacher) } : {}),
    ...(o.alpha !== undefined ? { alpha: o.alpha } : {}),
    ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
    ...trainingGroupSettings({ 'sample-keep': o['sample-keep'], 'sample-by': o['sample-by'], 'sample-warmup': o['sample-warmup'] }),
    ...(o.candidates ? { candidates: o.candidates } : {}),
    ...(o['quant-aware'] ? { quantAware: { dtype: o['quant-aware'], scales: o['quant-scales'] ?? 'row' } } : {}),
  };
  return runCompressCommand(o, positionals[0], [{ method: 'finetune', settings }], 'finetuned');
}
