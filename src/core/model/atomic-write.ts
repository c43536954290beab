// Atomic file writing for every model writer: a temp file in the target's folder (same file
// system, so rename is atomic), fsynced, renamed onto the target only when all is written.

import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A temp path beside `target`. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Writes all of `bytes` at `position` (fh.write may write less than asked; Node refuses single writes over 2 GiB). */
export async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const len = Math.min(bytes.length - done, 2 ** 30);
    const { bytesWritten } = await fh.write(bytes, done, len, position + done);
    if (bytesWritten <= 0) throw new Error('write returned 0 bytes');
    done += bytesWritten;
  }
}

/**
 * Writes through `fill` into a temp file beside `target`, fsyncs and closes it, and returns the
 * temp path: the caller commits it (commitTempFiles, so that several files land together) or removes it.
 */
export async function writeTempFile(target: string, fill: (fh: FileHandle) => Promise<void>): Promise<string> {
  const tmp = tempPathFor(target);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fill(fh);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  return tmp;
}

export interface TempFile {
  tmp: string;
  target: string;
}

/** Renames temp files onto their targets in order; on failure removes the temps not yet renamed. */
export async function commitTempFiles(pairs: TempFile[]): Promise<void> {
  let i = 0;
  try {
    for (; i < pairs.length; i++) await rename(pairs[i].tmp, pairs[i].target);
  } catch (e) {
    await discardTempFiles(pairs.slice(i));
    throw e;
  }
}

export async function discardTempFiles(pairs: TempFile[]): Promise<void> {
  for (const p of pairs) await unlink(p.tmp).catch(() => undefined);
}

/**
 * Runs `fill`, which adds temp files (writeTempFile) to the list it is given, then commits them
 * in the order added; on any failure every temp file is removed and nothing reaches a target.
 */
export async function writeFilesAtomically(fill: (add: (target: string, write: (fh: FileHandle) => Promise<void>) => Promise<void>) => Promise<void>): Promise<void> {
  const pairs: TempFile[] = [];
  try {
    await fill(async (target, write) => {
      pairs.push({ tmp: await writeTempFile(target, write), target });
    });
    await commitTempFiles(pairs);
  } catch (e) {
    await discardTempFiles(pairs);
    throw e;
  }
}

/** One file written atomically from bytes. */
export async function writeFileAtomic(target: string, bytes: Uint8Array | Uint8Array[]): Promise<void> {
  const parts = Array.isArray(bytes) ? bytes : [bytes];
  await writeFilesAtomically((add) =>
    add(target, async (fh) => {
      let pos = 0;
      for (const p of parts) {
        await writeAll(fh, p, pos);
        pos += p.length;
      }
    }),
  );
}
