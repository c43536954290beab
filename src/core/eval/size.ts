// Size on disk of every file a model is made of (model.json + shards; .onnx + external data)
// and its gzip size: what a download or a container layer costs. gzip runs at level 6 (the
// `gzip` command's default), streamed file by file, so a large model is never held in memory.

import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { ioReason, ModelFileError, ModelIR } from '../model/ir.js';
import { readModel } from '../model/read-model.js';

export interface ModelFileSize {
  path: string;
  kind: 'model' | 'weights' | 'external-data';
  bytes: number;
  gzipBytes: number;
}

export interface ModelSize {
  /** sum over the files */
  bytes: number;
  gzipBytes: number;
  /** true when a file was too big to gzip whole and its gzip size is estimated from samples */
  gzipEstimated?: boolean;
  files: ModelFileSize[];
}

export const GZIP_LEVEL = 6;
/** Files above this are not gzipped whole (about 1 s per 20 MB on this machine): their gzip size is sampled. */
export const GZIP_SAMPLE_ABOVE = 64 * 1024 * 1024;
const SAMPLE_BLOCKS = 64;
const SAMPLE_BLOCK_BYTES = 1 << 20;

function counter(): { sink: Writable; bytes: () => number } {
  let n = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      cb();
    },
  });
  return { sink, bytes: () => n };
}

/** gzip size (level 6) of a file, streamed. */
export async function gzipFileSize(file: string): Promise<number> {
  const c = counter();
  try {
    await pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), zlib.createGzip({ level: GZIP_LEVEL }), c.sink);
  } catch (e) {
    throw new ModelFileError(file, `cannot read for its gzip size: ${ioReason(e)}`, { cause: e });
  }
  return c.bytes();
}

/** Sample blocks gzipped at once, in libuv's thread pool (4 threads by default), off the event loop. */
const SAMPLE_CONCURRENCY = 4;
const gzipAsync = promisify(zlib.gzip);

/**
 * Estimated gzip size (level 6) of a big file: 64 blocks of 1 MiB spread evenly over it, each
 * gzipped alone, their ratio applied to the whole. Weights compress alike throughout a tensor, so
 * the estimate is within a few percent; reports say it is one.
 */
export async function sampledGzipFileSize(file: string, size: number): Promise<number> {
  const fh = await fs.promises.open(file, 'r').catch((e: unknown) => {
    throw new ModelFileError(file, `cannot read for its gzip size: ${ioReason(e)}`, { cause: e });
  });
  try {
    let raw = 0;
    let packed = 0;
    let next = 0;
    const lane = async (): Promise<void> => {
      const buf = Buffer.alloc(SAMPLE_BLOCK_BYTES);
      for (let i = next++; i < SAMPLE_BLOCKS; i = next++) {
        const at = Math.floor(((size - SAMPLE_BLOCK_BYTES) * i) / (SAMPLE_BLOCKS - 1));
        const { bytesRead } = await fh.read(buf, 0, SAMPLE_BLOCK_BYTES, Math.max(0, at));
        const gz = await gzipAsync(buf.subarray(0, bytesRead), { level: GZIP_LEVEL });
        // added after the await: `packed += await ...` would read packed before other lanes add to it
        raw += bytesRead;
        packed += gz.length;
      }
    };
    await Promise.all(Array.from({ length: SAMPLE_CONCURRENCY }, lane));
    return Math.round((packed / Math.max(1, raw)) * size);
  } finally {
    await fh.close();
  }
}

/** gzip size (level 6) of bytes in memory. */
export function gzipBufferSize(data: Uint8Array): number {
  return zlib.gzipSync(data, { level: GZIP_LEVEL }).length;
}

/** Sizes of the files of a model already read (ir.files lists them, external data included). */
export async function modelSizeOfIR(ir: Pick<ModelIR, 'files'>): Promise<ModelSize> {
  const seen = new Set<string>();
  const files: ModelFileSize[] = [];
  let estimated = false;
  for (const f of ir.files) {
    if (seen.has(f.path)) continue;
    seen.add(f.path);
    const st = await fs.promises.stat(f.path).catch((e: unknown) => {
      throw new ModelFileError(f.path, `cannot stat: ${ioReason(e)}`);
    });
    const sampled = st.size > GZIP_SAMPLE_ABOVE;
    if (sampled) estimated = true;
    files.push({ path: f.path, kind: f.kind, bytes: st.size, gzipBytes: sampled ? await sampledGzipFileSize(f.path, st.size) : await gzipFileSize(f.path) });
  }
  return {
    bytes: files.reduce((s, f) => s + f.bytes, 0),
    gzipBytes: files.reduce((s, f) => s + f.gzipBytes, 0),
    ...(estimated ? { gzipEstimated: true } : {}),
    files,
  };
}

/** Sizes of every file of the model at `path`. */
export async function modelSize(path: string): Promise<ModelSize> {
  return modelSizeOfIR(await readModel(path));
}
