// SIGTERM and a second Ctrl-C leave no temporary folder beside the output: the first signal
// aborts the job (which cleans up), a second one removes the folder at once and exits 130.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MODULE = join(__dirname, '..', '..', 'src', 'cli', 'cancel-signals.js');

/** A process that registers the handlers, makes the folder, then sends itself the signals. */
function child(signals: string[], tempName: string): { code: number | null; stderr: string; tempLeft: boolean; aborted: boolean } {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cancel-'));
  const temp = join(dir, tempName);
  const script = `
    const fs = require('node:fs');
    const { cancelOnSignals } = require(${JSON.stringify(MODULE)});
    fs.mkdirSync(${JSON.stringify(temp)});
    fs.writeFileSync(${JSON.stringify(join(temp, 'part.onnx'))}, 'x');
    const ac = new AbortController();
    cancelOnSignals(ac, ${JSON.stringify(temp)}, 'out.onnx');
    // the job would now be busy cleaning up; keep the process alive
    const t = setTimeout(() => { process.stdout.write(ac.signal.aborted ? 'aborted' : 'running'); }, 300);
    for (const s of ${JSON.stringify(signals)}) process.kill(process.pid, s);
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  const tempLeft = existsSync(temp);
  rmSync(dir, { recursive: true, force: true });
  return { code: r.status, stderr: r.stderr, tempLeft, aborted: r.stdout === 'aborted' };
}

test('one SIGINT or SIGTERM aborts the job and leaves the clean-up to it; a second removes the temporary folder and exits 130', () => {
  for (const s of ['SIGINT', 'SIGTERM']) {
    const once = child([s], '.prunescope-0a1b.tmp');
    assert.deepEqual([once.code, once.aborted, once.tempLeft], [0, true, true], `${s} once: ${once.stderr}`);
    const twice = child([s, s], '.prunescope-0a1b.tmp');
    assert.deepEqual([twice.code, twice.tempLeft], [130, false], `${s} twice: ${twice.stderr}`);
    assert.equal(twice.stderr, '\ncancelled: nothing was written (out.onnx)\n');
  }
  // a folder not named as ours is never removed
  const foreign = child(['SIGTERM', 'SIGTERM'], 'my-models');
  assert.deepEqual([foreign.code, foreign.tempLeft], [130, true]);
});
