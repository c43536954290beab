// Where a compression job's output goes, and how it gets there: the method writes into a temp
// folder next to the target, and only a finished model is renamed into place. A job that fails
// or is cancelled leaves no output; nothing ever replaces the original model's files, and an
// existing output is replaced only when the user chose to.

import { existsSync, statSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ioReason, ModelFileError } from '../model/ir.js';

export type OutputFormat = 'onnx' | 'tfjs';

export class OutputExistsError extends Error {
  constructor(readonly target: string) {
    super(`${target} already exists; choose another output or allow replacing it`);
    this.name = 'OutputExistsError';
  }
}

/**
 * The output path from a pattern with `${dir}`, `${stem}` and `${method}`:
 * - ONNX `a/b/model.onnx`: dir `a/b`, stem `model`; the result gets `.onnx`.
 * - TF.js `a/b/model.json`: dir `a` (the model's folder's parent), stem `b` (the model's folder);
 *   the result is a folder holding `model.json` (a TF.js model owns its folder: shard names collide).
 * Relative results are resolved against the model's folder.
 */
export function outputPathFor(modelPath: string, method: string, pattern = '${dir}/${stem}-${method}'): string {
  const abs = resolve(modelPath);
  const onnx = extname(abs).toLowerCase() === '.onnx';
  const modelDir = dirname(abs);
  const dir = onnx ? modelDir : dirname(modelDir);
  const stem = onnx ? basename(abs, extname(abs)) : basename(modelDir);
  const safeMethod = method.replace(/[^a-zA-Z0-9._-]/g, '_');
  const filled = pattern.replace(/\$\{(dir|stem|method)\}/g, (_m, k: string) => (k === 'dir' ? dir : k === 'stem' ? stem : safeMethod));
  const base = resolve(modelDir, filled);
  if (onnx) return /\.onnx$/i.test(base) ? base : `${base}.onnx`;
  return /model\.json$/i.test(base) ? base : join(base, 'model.json');
}

/** An output path that does not fit the input's format (the message says what would). */
export class OutputPathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputPathError';
  }
}

/**
 * Where a model output given by the user goes, in the input's format (an output keeps it):
 * - ONNX: a `.onnx` file as given; an existing folder gets `<stem>-<method>.onnx` inside it.
 * - TF.js: `<folder>/model.json`; a path that does not end in `.json` is that folder (a TF.js model
 *   owns its folder: its shards are written beside model.json).
 * Throws OutputPathError for any other name (`out.json` for an ONNX model, `out.onnx` for a TF.js
 * one, `small` for an ONNX model), instead of writing a model under a name no reader expects.
 */
export function modelOutputPath(modelPath: string, out: string, method: string): string {
  const abs = resolve(out);
  const onnx = extname(modelPath).toLowerCase() === '.onnx';
  const isDir = existsSync(abs) && statSync(abs).isDirectory();
  if (onnx) {
    if (/\.onnx$/i.test(abs) && !isDir) return abs;
    if (isDir) return outputPathFor(modelPath, method, join(abs, '${stem}-${method}'));
    throw new OutputPathError(`--out ${out}: an ONNX model's output is a .onnx file (or an existing folder to write it in); the output keeps the input's format`);
  }
  if (/\.onnx$/i.test(abs)) throw new OutputPathError(`--out ${out}: a TF.js model's output is a folder (or its model.json), not a .onnx file; the output keeps the input's format`);
  if (/\.json$/i.test(abs) && !isDir) return abs;
  return join(abs, 'model.json');
}

/**
 * Makes a job's temp folder (tempDirFor), and the output's folder when it is missing (the editor's
 * output paths may name a new one), one level at a time from the nearest folder that exists:
 * Node's recursive mkdir loops forever under /proc (mkdir of the child says ENOENT, of the
 * parent EEXIST). An error names the folder that could not be made.
 */
export async function makeTempDir(tempDir: string, outPath: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dirname(tempDir); !existsSync(d); ) {
    missing.push(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  let at = dirname(tempDir);
  try {
    for (const d of missing.reverse()) {
      at = d;
      await mkdir(d);
    }
    at = dirname(tempDir);
    await mkdir(tempDir);
  } catch (e) {
    throw new ModelFileError(at, `cannot write ${basename(outPath)} here: ${ioReason(e)}`, { cause: e });
  }
}

/** A fresh temp folder name on the output's file system (so the final rename is atomic). */
export function tempDirFor(outPath: string): string {
  const format: OutputFormat = /\.onnx$/i.test(outPath) ? 'onnx' : 'tfjs';
  const parent = format === 'onnx' ? dirname(outPath) : dirname(dirname(outPath));
  return join(parent, `.prunescope-${randomBytes(6).toString('hex')}.tmp`);
}

function sameFile(a: string, b: string): boolean {
  return resolve(a) === resolve(b);
}

/** Throws when writing to outPath could touch the original or an existing output (unless overwrite). */
export async function checkOutputFree(outPath: string, format: OutputFormat, overwrite: boolean, original: string): Promise<void> {
  if (sameFile(outPath, original)) throw new Error(`the output ${outPath} is the original model; PruneScope never writes over it`);
  if (format === 'tfjs') {
    const outDir = dirname(outPath);
    if (sameFile(outDir, dirname(original))) {
      throw new Error(`the output folder ${outDir} is the original model's folder: a TF.js model needs a folder of its own (its shard files would collide)`);
    }
    if (!overwrite && existsSync(outDir) && (await readdir(outDir)).length > 0) throw new OutputExistsError(outDir);
  } else if (!overwrite && existsSync(outPath)) {
    throw new OutputExistsError(outPath);
  }
}

/**
 * Moves a finished model from tempDir into place and returns the final paths. The model file
 * (model.json / .onnx) is moved last, so a reader never sees it before its weight files.
 */
export async function commitOutput(tempDir: string, outPath: string, format: OutputFormat, overwrite: boolean, original: string): Promise<string[]> {
  await checkOutputFree(outPath, format, overwrite, original);
  const names = (await readdir(tempDir)).filter((n) => !n.endsWith('.tmp'));
  const modelName = basename(outPath);
  if (!names.includes(modelName)) throw new Error(`the method wrote no ${modelName}`);
  const outDir = dirname(outPath);
  const originalDir = dirname(resolve(original));
  if (format === 'tfjs' && !existsSync(outDir)) {
    // one rename moves the whole model
    await rename(tempDir, outDir);
    return names.map((n) => join(outDir, n));
  }
  const ordered = [...names.filter((n) => n !== modelName), modelName];
  for (const n of ordered) {
    const target = join(outDir, n);
    if (sameFile(dirname(target), originalDir) && existsSync(target) && (await isOriginalsFile(target, original))) {
      throw new Error(`writing ${target} would replace a file of the original model`);
    }
    if (!overwrite && existsSync(target)) throw new OutputExistsError(target);
  }
  const done: string[] = [];
  for (const n of ordered) {
    const target = join(outDir, n);
    await rename(join(tempDir, n), target);
    done.push(target);
  }
  return done;
}

/** The original ONNX file, or its external data (named after it by convention). */
async function isOriginalsFile(target: string, original: string): Promise<boolean> {
  if (sameFile(target, original)) return true;
  const stem = basename(original);
  const name = basename(target);
  return name.startsWith(stem) && (await stat(target)).isFile();
}

/** A temporary folder's name is always ours (`.prunescope-<hex>.tmp`): nothing else is ever removed as one. */
export function isOurTempDir(tempDir: string): boolean {
  return /^\.prunescope-[0-9a-f]+\.tmp$/.test(basename(tempDir));
}

export async function removeTemp(tempDir: string): Promise<void> {
  if (!isOurTempDir(tempDir)) return;
  await rm(tempDir, { recursive: true, force: true }).catch(() => undefined);
}

const WRITE_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
};

/**
 * Runs `write` (which writes `out`); a disk-full or permission error becomes a ModelFileError
 * naming `out` (Node's own message names neither the file nor, for ENOSPC, what was written), and
 * so does a refusal naming the file in our temporary folder that `out` is written through (an
 * invalid edit, say): the user never sees that folder.
 */
export async function writingTo<T>(out: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code;
    if (code && WRITE_ERRORS[code]) throw new ModelFileError(out, `cannot write the output: ${WRITE_ERRORS[code]} (${code})`, { cause: e });
    if (e instanceof ModelFileError && dirname(e.file).split(/[\\/]/).some((part) => isOurTempDir(part))) throw new ModelFileError(out, e.reason, { cause: e });
    throw e;
  }
}
