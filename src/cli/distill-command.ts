// `prunescope distill TEACHER --data INTERACTIONS.csv (--student-dim D | --ratio 8) [--epochs N] --out PATH`
// (options: command-specs.ts DISTILL)

import { DISTILL } from './command-specs.js';
import { runCompressCommand, trainingGroupSettings } from './run-compress-job.js';

/** `{ key: value }` when the value was given, else nothing (the method's default applies). */
function given<T>(key: string, v: T | undefined): Record<string, T> {
  return v === undefined ? {} : { [key]: v };
}

export async function distillCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = DISTILL.parse(argv);
  const settings: Record<string, unknown> = {
    data: o.data,
    ...given('studentDim', o['student-dim']),
    ...given('ratio', o.ratio ?? (o['student-dim'] === undefined ? 8 : undefined)),
    ...given('hidden', o.hidden),
    ...given('epochs', o.epochs),
    ...given('alpha', o.alpha),
    ...given('temperature', o.temperature),
    ...given('lr', o.lr),
    ...given('negatives', o.negatives),
    ...given('batchSize', o['batch-size']),
    ...given('seed', o.seed),
    ...trainingGroupSettings(o),
    ...given('candidates', o.candidates),
  };
  return runCompressCommand(o, positionals[0], [{ method: 'distill', settings }], 'student');
}
