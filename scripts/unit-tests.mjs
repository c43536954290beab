// Runs the unit tests (node --test over out/test/unit/) with TMPDIR pointing at a folder of this
// run's own, removed afterwards: the tests' scratch folders (fixtures, written models, job
// folders) do not pile up in the system's temporary folder run after run. Extra arguments go to
// node --test; the exit code is the test run's (128 + the signal's number if it was killed).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';

const scratch = mkdtempSync(join(tmpdir(), 'prunescope-unit-'));
const args = ['--test', '--test-reporter=spec', ...process.argv.slice(2), 'out/test/unit/'];
const child = spawn(process.execPath, args, { stdio: 'inherit', env: { ...process.env, TMPDIR: scratch, TMP: scratch, TEMP: scratch } });

function cleanUp() {
  try {
    rmSync(scratch, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  } catch (e) {
    console.error(`could not remove the tests' temporary folder ${scratch}: ${e.message}`);
  }
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('error', (e) => {
  console.error(`could not run node --test: ${e.message}`);
  cleanUp();
  process.exit(1);
});
child.on('exit', (code, signal) => {
  cleanUp();
  process.exit(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1));
});
