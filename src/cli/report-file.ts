// Writing a report or recipe file the CLI produces: never over an existing file unless --force,
// atomically (temp file + rename), and a full disk or a permission error names the file.

import { existsSync } from 'node:fs';
import { ModelFileError } from '../core/model/ir.js';
import { writingTo } from '../core/jobs/output-files.js';
import { writeFileAtomic } from '../core/model/atomic-write.js';

/** Checked before any work too: a taken output fails at once, not after an hour of analysis. */
export function checkReportFileFree(target: string, force: boolean): void {
  if (!force && existsSync(target)) throw new ModelFileError(target, 'already exists; --force replaces it');
}

export async function writeReportFile(target: string, text: string, force: boolean): Promise<void> {
  checkReportFileFree(target, force);
  await writingTo(target, () => writeFileAtomic(target, new TextEncoder().encode(text)));
}
