// `prunescope finetune MODEL --data INTERACTIONS.csv [--epochs N] [--masks keep-zeros|none] --out PATH`

import { numberArg, parseCommandArgs, stringArg, UsageError } from './args.js';
import { COMMON_COMPRESS_OPTIONS, runCompressCommand } from './run-compress-job.js';

export async function finetuneCommand(argv: string[]): Promise<number> {
  const args = parseCommandArgs(argv, {
    ...COMMON_COMPRESS_OPTIONS,
    'sample-keep': { type: 'string' },
    'sample-by': { type: 'string' },
    'sample-warmup': { type: 'string' },
    data: { type: 'string' },
    epochs: { type: 'string' },
    lr: { type: 'string' },
    'batch-size': { type: 'string' },
    masks: { type: 'string' },
    negatives: { type: 'string' },
  });
  const data = stringArg(args, 'data');
  if (!data) throw new UsageError('--data INTERACTIONS.csv is required');
  const masks = stringArg(args, 'masks');
  if (masks && masks !== 'keep-zeros' && masks !== 'none') throw new UsageError("--masks must be 'keep-zeros' or 'none'");
  const settings: Record<string, unknown> = {
    data,
    epochs: numberArg(args, 'epochs', 2, 1, 10000),
    lr: numberArg(args, 'lr', 0.001, 0, 10),
    batchSize: numberArg(args, 'batch-size', 1024, 1, 1 << 20),
  };
  if (masks) settings.masks = masks;
  if (args.values.negatives !== undefined) settings.negatives = numberArg(args, 'negatives', 4, 0, 1000);
  if (args.values['sample-keep'] !== undefined) {
    const by = stringArg(args, 'sample-by') ?? 'loss';
    if (by !== 'loss' && by !== 'gradnorm') throw new UsageError("--sample-by must be 'loss' or 'gradnorm'");
    settings.samplePruning = {
      keep: numberArg(args, 'sample-keep', 1, 0.0001, 1),
      by,
      ...(args.values['sample-warmup'] !== undefined ? { warmupEpochs: numberArg(args, 'sample-warmup', 1, 1, 10000) } : {}),
    };
  } else if (args.values['sample-by'] !== undefined || args.values['sample-warmup'] !== undefined) {
    throw new UsageError('--sample-by / --sample-warmup need --sample-keep FRACTION');
  }
  const candidates = stringArg(args, 'candidates');
  if (candidates) settings.candidates = candidates;
  return runCompressCommand(args, [{ method: 'finetune', settings }], 'finetuned');
}
