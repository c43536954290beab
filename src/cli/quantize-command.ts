// `prunescope quantize MODEL --dtype int8|int4|int2|float16|uint8|uint16 [--tensors ...] --out PATH`
// (options: command-specs.ts QUANTIZE)

import { QUANTIZE } from './command-specs.js';
import { runCompressCommand, tensorsSetting } from './run-compress-job.js';

export async function quantizeCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = QUANTIZE.parse(argv);
  const settings: Record<string, unknown> = {
    dtype: o.dtype,
    ...tensorsSetting(o.tensors),
    ...(o.dense ? { dense: o.dense } : {}),
    ...(o.lookup ? { lookup: o.lookup } : {}),
    ...(o['full-range'] ? { reduceRange: false } : {}),
  };
  return runCompressCommand(o, positionals[0], [{ method: 'quantize', settings }], o.dtype);
}
