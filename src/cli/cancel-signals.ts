// Ctrl-C and SIGTERM (what `timeout`, CI cancels and `kill` send) for the commands that work in a
// temporary folder beside their output: the first signal aborts the job, which cleans up and
// exits 130; a second one, while that clean-up runs, removes the folder at once and exits 130.
// Either way no hidden `.prunescope-*.tmp` folder is left beside the output.

import { rmSync } from 'node:fs';
import { isOurTempDir } from '../core/jobs/output-files.js';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** Listens for the signals until the returned function is called. */
export function cancelOnSignals(ac: AbortController, tempDir: string, out: string): () => void {
  const onSignal = () => {
    if (!ac.signal.aborted) {
      ac.abort();
      return;
    }
    if (isOurTempDir(tempDir)) {
      try {
        rmSync(tempDir, { recursive: true, force: true });
      } catch {
        // the job's own clean-up may be removing it at this moment
      }
    }
    process.stderr.write(`\ncancelled: nothing was written (${out})\n`);
    process.exit(130);
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  return () => {
    for (const s of SIGNALS) process.removeListener(s, onSignal);
  };
}
