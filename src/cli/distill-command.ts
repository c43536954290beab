// `prunescope distill TEACHER --data INTERACTIONS.csv (--student-dim D | --ratio 8) [--epochs N] --out PATH`

import { numberArg, parseCommandArgs, stringArg, UsageError } from './args.js';
import { COMMON_COMPRESS_OPTIONS, runCompressCommand, ENGINE_OPTION, engineArg, OUTPUT_KIND_OPTION, outputKindArg, SAMPLE_PRUNING_OPTIONS, samplePruningArg } from './run-compress-job.js';

export async function distillCommand(argv: string[]): Promise<number> {
  const args = parseCommandArgs(argv, {
    ...COMMON_COMPRESS_OPTIONS,
    ...SAMPLE_PRUNING_OPTIONS,
    ...OUTPUT_KIND_OPTION,
    ...ENGINE_OPTION,
    data: { type: 'string' },
    'student-dim': { type: 'string' },
    ratio: { type: 'string' },
    hidden: { type: 'string' },
    epochs: { type: 'string' },
    alpha: { type: 'string' },
    temperature: { type: 'string' },
    lr: { type: 'string' },
    seed: { type: 'string' },
    negatives: { type: 'string' },
    'batch-size': { type: 'string' },
  });
  const data = stringArg(args, 'data');
  if (!data) throw new UsageError('--data INTERACTIONS.csv is required (the student learns from it and from the teacher)');
  const settings: Record<string, unknown> = { data };
  if (args.values['student-dim'] !== undefined) settings.studentDim = numberArg(args, 'student-dim', 8, 1, 4096);
  if (args.values.ratio !== undefined) settings.ratio = numberArg(args, 'ratio', 8, 1, 1e6);
  if (settings.studentDim === undefined && settings.ratio === undefined) settings.ratio = 8;
  const hidden = stringArg(args, 'hidden');
  if (hidden) {
    const h = hidden.split(',').map(Number);
    if (h.some((x) => !Number.isInteger(x) || x < 1)) throw new UsageError('--hidden must be comma-separated positive integers, e.g. 32,16');
    settings.hidden = h;
  }
  if (args.values.epochs !== undefined) settings.epochs = numberArg(args, 'epochs', 5, 1, 10000);
  if (args.values.alpha !== undefined) settings.alpha = numberArg(args, 'alpha', 0.7, 0, 1);
  if (args.values.temperature !== undefined) settings.temperature = numberArg(args, 'temperature', 1, 0.01, 100);
  if (args.values.lr !== undefined) settings.lr = numberArg(args, 'lr', 0.005, 0, 10);
  if (args.values.negatives !== undefined) settings.negatives = numberArg(args, 'negatives', 4, 0, 1000);
  if (args.values['batch-size'] !== undefined) settings.batchSize = numberArg(args, 'batch-size', 512, 1, 1 << 20);
  if (args.values.seed !== undefined) settings.seed = numberArg(args, 'seed', 1, 0, 2 ** 31);
  Object.assign(settings, outputKindArg(args), engineArg(args));
  const samplePruning = samplePruningArg(args);
  if (samplePruning) settings.samplePruning = samplePruning;
  const candidates = stringArg(args, 'candidates');
  if (candidates) settings.candidates = candidates;
  return runCompressCommand(args, [{ method: 'distill', settings }], 'student');
}
