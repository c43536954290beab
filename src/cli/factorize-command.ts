// `prunescope factorize MODEL (--rank R | --energy 0.95) [--tensors all|embeddings|dense] --out PATH`

import { numberArg, parseCommandArgs, stringArg, UsageError } from './args.js';
import { COMMON_COMPRESS_OPTIONS, runCompressCommand } from './run-compress-job.js';

export async function factorizeCommand(argv: string[]): Promise<number> {
  const args = parseCommandArgs(argv, {
    ...COMMON_COMPRESS_OPTIONS,
    rank: { type: 'string' },
    energy: { type: 'string' },
    tensors: { type: 'string' },
    'min-saving': { type: 'string' },
  });
  const settings: Record<string, unknown> = {};
  if (args.values.rank !== undefined) settings.rank = numberArg(args, 'rank', 0, 1, 1 << 20);
  if (args.values.energy !== undefined) settings.energy = numberArg(args, 'energy', 0.95, Number.MIN_VALUE, 1);
  if (settings.rank === undefined && settings.energy === undefined) throw new UsageError('give --rank R or --energy E (e.g. 0.95)');
  if (settings.rank !== undefined && !Number.isInteger(settings.rank)) throw new UsageError('--rank must be an integer');
  const tensors = stringArg(args, 'tensors');
  if (tensors) settings.tensors = ['all', 'embeddings', 'dense'].includes(tensors) ? tensors : tensors.split(',');
  if (args.values['min-saving'] !== undefined) settings.minSaving = numberArg(args, 'min-saving', 0.1, -10, 1);
  const tag = settings.rank !== undefined ? `rank${settings.rank}` : `energy${Math.round((settings.energy as number) * 100)}`;
  return runCompressCommand(args, [{ method: 'factorize', settings }], tag);
}
