// Runs the unit tests (node --test over out/test/unit/) with TMPDIR pointing at a folder of this
// run's own, removed afterwards: the tests' scratch folders (fixtures, written models, job
// folders) do not pile up in the system's temporary folder run after run.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const scratch = mkdtempSync(join(tmpdir(), 'prunescope-unit-'));
const args = ['--test', '--test-reporter=spec', ...process.argv.slice(2), 'out/test/unit/'];
const child = spawn(process.execPath, args, { stdio: 'inherit', env: { ...process.env, TMPDIR: scratch, TMP: scratch, TEMP: scratch } });
const forward = (sig) => () => child.kill(sig);
process.on('SIGINT', forward('SIGINT'));
process.on('SIGTERM', forward('SIGTERM'));
child.on('exit', (code, signal) => {
  rmSync(scratch, { recursive: true, force: true });
  process.exit(code ?? (signal ? 1 : 0));
});
