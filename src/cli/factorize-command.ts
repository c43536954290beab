// `prunescope factorize MODEL (--rank R | --energy 0.95) [--tensors all|embeddings|dense] --out PATH`
// (options: command-specs.ts FACTORIZE)

import { FACTORIZE } from './command-specs.js';
import { runCompressCommand, tensorsSetting } from './run-compress-job.js';

export async function factorizeCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = FACTORIZE.parse(argv);
  const settings: Record<string, unknown> = {
    ...(o.rank !== undefined ? { rank: o.rank } : {}),
    ...(o.energy !== undefined ? { energy: o.energy } : {}),
    ...tensorsSetting(o.tensors),
    ...(o['min-saving'] !== undefined ? { minSaving: o['min-saving'] } : {}),
    ...(o['no-fold'] ? { fold: false } : {}),
  };
  const tag = o.rank !== undefined ? `rank${o.rank}` : `energy${Math.round(o.energy! * 100)}`;
  return runCompressCommand(o, positionals[0], [{ method: 'factorize', settings }], tag);
}
