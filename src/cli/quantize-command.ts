// `prunescope quantize MODEL --dtype int8|int4|int2|float16|uint8|uint16 [--tensors all|embeddings|dense] --out PATH`

import { parseCommandArgs, stringArg, UsageError, flag } from './args.js';
import { COMMON_COMPRESS_OPTIONS, runCompressCommand } from './run-compress-job.js';

export async function quantizeCommand(argv: string[]): Promise<number> {
  const args = parseCommandArgs(argv, {
    ...COMMON_COMPRESS_OPTIONS,
    dtype: { type: 'string' },
    tensors: { type: 'string' },
    dense: { type: 'string' },
    lookup: { type: 'string' },
    'full-range': { type: 'boolean' },
  });
  const dtype = stringArg(args, 'dtype');
  if (!dtype || !['int8', 'int4', 'int2', 'float16', 'uint8', 'uint16'].includes(dtype)) {
    throw new UsageError('--dtype must be int8, int4, int2 (ONNX embedding tables), float16, uint8 or uint16');
  }
  const tensors = stringArg(args, 'tensors');
  const dense = stringArg(args, 'dense');
  if (dense && dense !== 'weights-only' && dense !== 'dynamic') throw new UsageError("--dense must be 'weights-only' or 'dynamic'");
  const lookup = stringArg(args, 'lookup');
  if (lookup && lookup !== 'compact' && lookup !== 'fast') throw new UsageError("--lookup must be 'compact' or 'fast'");
  const settings: Record<string, unknown> = { dtype };
  if (tensors) settings.tensors = ['all', 'embeddings', 'dense'].includes(tensors) ? tensors : tensors.split(',');
  if (dense) settings.dense = dense;
  if (lookup) settings.lookup = lookup;
  if (flag(args, 'full-range')) settings.reduceRange = false;
  return runCompressCommand(args, [{ method: 'quantize', settings }], dtype);
}
