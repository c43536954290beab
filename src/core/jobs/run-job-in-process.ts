// The body of every job, independent of where it runs: the worker thread calls it, and so can a
// test. It reports progress with an ETA and honours an AbortSignal between chunks of work.

import { readModel } from '../model/read-model.js';
import { analyzeModel } from '../analysis/analyze-model.js';
import type { JobProgress, JobSpec } from './job-types.js';

export async function runJobInProcess(
  spec: JobSpec,
  signal: AbortSignal,
  onProgress: (p: JobProgress) => void,
): Promise<unknown> {
  const start = Date.now();
  const report = (phase: string, fraction: number, detail?: string) => {
    const elapsed = (Date.now() - start) / 1000;
    const etaSeconds = fraction > 0.02 && fraction < 1 ? (elapsed / fraction) * (1 - fraction) : null;
    onProgress({ phase, fraction, detail, etaSeconds });
  };
  switch (spec.kind) {
    case 'analyze': {
      report('reading', 0);
      const ir = await readModel(spec.path, { signal, onProgress: (f) => report('reading', 0.1 * f) });
      signal.throwIfAborted();
      return analyzeModel(ir, {
        epsilon: spec.epsilon,
        spectrum: spec.spectrum,
        signal,
        onProgress: (p) => report('analysing', 0.1 + 0.9 * p.fraction, p.tensor),
      });
    }
    default:
      throw new Error(`unknown job kind ${(spec as { kind: string }).kind}`);
  }
}
