// `prunescope finetune MODEL --data INTERACTIONS.csv [--epochs N] [--masks keep-zeros|none] [--teacher ORIGINAL] --out PATH`

import { resolve } from 'node:path';
import { numberArg, parseCommandArgs, stringArg, UsageError } from './args.js';
import { COMMON_COMPRESS_OPTIONS, runCompressCommand, ENGINE_OPTION, engineArg, OUTPUT_KIND_OPTION, outputKindArg, SAMPLE_PRUNING_OPTIONS, samplePruningArg } from './run-compress-job.js';

export async function finetuneCommand(argv: string[]): Promise<number> {
  const args = parseCommandArgs(argv, {
    ...COMMON_COMPRESS_OPTIONS,
    ...SAMPLE_PRUNING_OPTIONS,
    ...OUTPUT_KIND_OPTION,
    ...ENGINE_OPTION,
    data: { type: 'string' },
    epochs: { type: 'string' },
    lr: { type: 'string' },
    'batch-size': { type: 'string' },
    masks: { type: 'string' },
    negatives: { type: 'string' },
    teacher: { type: 'string' },
    alpha: { type: 'string' },
    temperature: { type: 'string' },
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
  Object.assign(settings, outputKindArg(args), engineArg(args));
  if (masks) settings.masks = masks;
  if (args.values.negatives !== undefined) settings.negatives = numberArg(args, 'negatives', 4, 0, 1000);
  const teacher = stringArg(args, 'teacher');
  if (teacher) settings.teacher = resolve(teacher);
  if ((args.values.alpha !== undefined || args.values.temperature !== undefined) && !teacher) throw new UsageError('--alpha and --temperature weigh a teacher\'s soft targets: give --teacher MODEL');
  if (args.values.alpha !== undefined) settings.alpha = numberArg(args, 'alpha', 0.7, 0, 1);
  if (args.values.temperature !== undefined) settings.temperature = numberArg(args, 'temperature', 1, 1e-6, 1000);
  const samplePruning = samplePruningArg(args);
  if (samplePruning) settings.samplePruning = samplePruning;
  const candidates = stringArg(args, 'candidates');
  if (candidates) settings.candidates = candidates;
  return runCompressCommand(args, [{ method: 'finetune', settings }], 'finetuned');
}
