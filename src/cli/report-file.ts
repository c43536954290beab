// Writing a report or recipe file the CLI produces: into a folder that exists, never over one of
// the command's inputs (even with --force), never over an existing file unless --force,
// atomically (temp file + rename), and a full disk or a permission error names the file.

import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { ModelFileError } from '../core/model/ir.js';
import { writingTo } from '../core/jobs/output-files.js';
import { writeFileAtomic } from '../core/model/atomic-write.js';
import { checkNotAnInput, checkOutputFolder, type CommandInput } from './output-checks.js';

/**
 * Checked before any work too: a taken output fails at once, not after an hour of analysis. Call
 * it again once the model is read with modelInputs(ir) in `inputs`: its weight files are known then.
 */
export function checkReportFileFree(target: string, force: boolean, inputs: readonly CommandInput[]): void {
  checkOutputFolder(dirname(target));
  checkNotAnInput(target, inputs);
  if (!existsSync(target)) return;
  if (statSync(target).isDirectory()) throw new ModelFileError(target, 'is a folder; give a file name');
  if (!force) throw new ModelFileError(target, 'already exists; --force replaces it');
}

export async function writeReportFile(target: string, text: string, force: boolean, inputs: readonly CommandInput[]): Promise<void> {
  checkReportFileFree(target, force, inputs);
  await writingTo(target, () => writeFileAtomic(target, new TextEncoder().encode(text)));
}
