// Sizes of a written model measured on disk, for the notes of the pruning methods: raw bytes and
// gzip bytes of every file, gzip sampled above 64 MiB per file (eval/size.ts) so that a 600 MB
// model is measured in about a second and never held in memory.

import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { ModelIR } from '../model/ir.js';
import { GZIP_SAMPLE_ABOVE, gzipFileSize, sampledGzipFileSize } from '../eval/size.js';

export interface FileSizes {
  files: string[];
  raw: number;
  /** sum of the gzip (level 6) sizes of the files, one by one */
  gzip: number;
  /** true when a file's gzip size was estimated from samples */
  gzipEstimated: boolean;
}

/** The files a written model is made of: the .onnx (+ external data files), or model.json + shards. */
export async function modelFilesAt(format: ModelIR['format'], outPath: string): Promise<string[]> {
  const abs = path.resolve(outPath);
  if (format === 'onnx') {
    const files = [abs];
    const data = `${abs}.data`;
    if (await stat(data).then(() => true, () => false)) files.push(data);
    return files;
  }
  const doc = JSON.parse(await readFile(abs, 'utf8')) as { weightsManifest?: Array<{ paths?: string[] }> } | Array<{ paths?: string[] }>;
  const groups = Array.isArray(doc) ? doc : doc.weightsManifest ?? [];
  const files = [abs];
  for (const g of groups) for (const p of g.paths ?? []) files.push(path.join(path.dirname(abs), p));
  return files;
}

/** Raw and gzip sizes of files (gzip is what a CDN or an app bundle would transfer). */
export async function fileSizes(files: string[]): Promise<FileSizes> {
  let raw = 0;
  let gzip = 0;
  let gzipEstimated = false;
  for (const f of files) {
    const size = (await stat(f)).size;
    raw += size;
    if (size > GZIP_SAMPLE_ABOVE) {
      gzipEstimated = true;
      gzip += await sampledGzipFileSize(f, size);
    } else {
      gzip += await gzipFileSize(f);
    }
  }
  return { files, raw, gzip, gzipEstimated };
}

/** "raw a -> b bytes; gzip c -> d bytes", saying when gzip was estimated. */
export function sizeNote(before: FileSizes, after: FileSizes, rawChange = `${(before.raw / Math.max(1, after.raw)).toFixed(2)}x smaller`): string {
  const est = before.gzipEstimated || after.gzipEstimated ? ', estimated from 64 MiB sampled per file above 64 MiB' : '';
  return `Size on disk: raw ${before.raw} -> ${after.raw} bytes (${rawChange}); gzip ${before.gzip} -> ${after.gzip} bytes (${(before.gzip / Math.max(1, after.gzip)).toFixed(2)}x smaller${est}).`;
}

/** The sizes of the original's files and of the model written at `outPath`. */
export async function measureWritten(ir: ModelIR, outPath: string): Promise<{ before: FileSizes; after: FileSizes }> {
  return { before: await fileSizes(ir.files.map((f) => f.path)), after: await fileSizes(await modelFilesAt(ir.format, outPath)) };
}

/** Writes, then appends the measured sizes to `notes`. */
export async function writeAndMeasure(ir: ModelIR, notes: string[], outPath: string, write: () => Promise<void>): Promise<void> {
  await write();
  const { before, after } = await measureWritten(ir, outPath);
  notes.push(sizeNote(before, after));
}
