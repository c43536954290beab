// The checks every file a command writes passes before any work: its folder exists (a usage error,
// exit 2, naming the folder) and it is none of the command's inputs (the model, its weight files,
// the data it reads), even with --force: PruneScope never writes over what it reads. Paths are
// compared by their real paths (`./sub/../m.onnx` and symbolic links are the same file) and, for
// files that exist, by device and inode (hard links too).

import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { ModelIR } from '../core/model/ir.js';
import { UsageError } from './args.js';

/** A file the command reads, and what it is, in the words of the message ("the --candidates file"). */
export interface CommandInput {
  path: string;
  what: string;
}

/** The files of a model read: the file given, then its weight shards or external data. */
export function modelInputs(ir: Pick<ModelIR, 'path' | 'files'>): CommandInput[] {
  const inputs: CommandInput[] = [{ path: ir.path, what: 'the original model' }];
  for (const f of ir.files) {
    if (f.path !== ir.path) inputs.push({ path: f.path, what: f.kind === 'model' ? 'the original model' : 'a weight file of the original model' });
  }
  return inputs;
}

/** The folder a model output goes in: a .onnx file's folder; a TF.js <folder>/model.json's parent (the folder itself is made). */
export function modelOutputFolder(out: string): string {
  return /\.onnx$/i.test(out) ? dirname(out) : dirname(dirname(out));
}

/** The output's folder must exist (nothing is made on a typo): a usage error naming it. */
export function checkOutputFolder(folder: string): void {
  if (!existsSync(folder)) throw new UsageError(`the output folder ${folder} does not exist`);
  if (!statSync(folder).isDirectory()) throw new UsageError(`the output folder ${folder} is not a folder`);
}

/** The real path of a file, or of its folder and its name when the file is not there (yet). */
function realPathOf(p: string): string {
  const abs = resolve(p);
  try {
    return realpathSync(abs);
  } catch {
    try {
      return join(realpathSync(dirname(abs)), basename(abs));
    } catch {
      return abs;
    }
  }
}

function sameFile(a: string, b: string): boolean {
  if (realPathOf(a) === realPathOf(b)) return true;
  try {
    const x = statSync(a);
    const y = statSync(b);
    // inode 0: a file system that has none; only the paths can tell there
    return x.ino !== 0 && x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}

/** Refuses an output that is one of the inputs, whatever --force says. */
export function checkNotAnInput(target: string, inputs: readonly CommandInput[]): void {
  for (const input of inputs) {
    if (sameFile(target, input.path)) throw new Error(`the output ${target} is ${input.what}; PruneScope never writes over it`);
  }
}
