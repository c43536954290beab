// Stored tensor bytes given to writers: in memory, or produced on demand chunk by chunk so that
// a writer can stream a big tensor into its output holding one chunk at a time.

import { open } from 'node:fs/promises';
import { ModelFileError } from './ir.js';

export type ByteSink = (chunk: Uint8Array) => Promise<void>;

export interface TensorByteStream {
  byteLength: number;
  /**
   * Calls `sink` with the bytes in order. A chunk may be reused once sink's promise resolves.
   * Each call starts over (a model may be written twice, e.g. for a check and then for real).
   */
  stream(sink: ByteSink): Promise<void>;
}

/** Little-endian stored bytes, in memory or streamed. */
export type TensorBytes = Uint8Array | TensorByteStream;

export function isByteStream(b: unknown): b is TensorByteStream {
  return typeof b === 'object' && b !== null && !(b instanceof Uint8Array) && typeof (b as TensorByteStream).stream === 'function' &&
    Number.isSafeInteger((b as TensorByteStream).byteLength);
}

export function byteLengthOf(b: TensorBytes): number {
  return b instanceof Uint8Array ? b.length : b.byteLength;
}

export function streamOf(b: TensorBytes): TensorByteStream {
  if (!(b instanceof Uint8Array)) return b;
  return { byteLength: b.length, stream: (sink) => sink(b) };
}

/** Streams `b` into `sink` and checks that exactly byteLength bytes came. */
export async function pipeBytes(b: TensorBytes, sink: ByteSink, what: string): Promise<void> {
  const s = streamOf(b);
  let n = 0;
  await s.stream(async (chunk) => {
    n += chunk.length;
    if (n > s.byteLength) throw new Error(`${what}: more than the ${s.byteLength} bytes announced`);
    await sink(chunk);
  });
  if (n !== s.byteLength) throw new Error(`${what}: ${n} bytes produced, ${s.byteLength} announced`);
}

/** All bytes in one array (for writers that need the whole tensor, e.g. TF.js shards built in memory). */
export async function collectBytes(b: TensorBytes, what = 'tensor'): Promise<Uint8Array> {
  if (b instanceof Uint8Array) return b;
  const out = new Uint8Array(b.byteLength);
  let pos = 0;
  await pipeBytes(b, async (chunk) => {
    out.set(chunk, pos);
    pos += chunk.length;
  }, what);
  return out;
}

const FILE_CHUNK = 16 * 1024 * 1024;

/** A byte range of a file, read in 16 MiB chunks. */
export function fileByteStream(path: string, offset: number, length: number): TensorByteStream {
  return {
    byteLength: length,
    async stream(sink) {
      const fh = await open(path, 'r');
      try {
        const buf = new Uint8Array(Math.min(FILE_CHUNK, Math.max(1, length)));
        let done = 0;
        while (done < length) {
          const want = Math.min(buf.length, length - done);
          const { bytesRead } = await fh.read(buf, 0, want, offset + done);
          if (bytesRead === 0) throw new ModelFileError(path, `truncated: expected ${length} bytes at offset ${offset}`);
          await sink(buf.subarray(0, bytesRead));
          done += bytesRead;
        }
      } finally {
        await fh.close();
      }
    },
  };
}
