// Opens any supported model file: picks the reader from the file's first bytes (never from the
// extension alone: a renamed file must get the right reader or a clear "not a model" error).

import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { ioReason, ModelFileError, ModelIR } from './ir.js';
import { readOnnxModel } from './onnx.js';
import { readTfjsModel } from './tfjs.js';

export interface ReadModelOptions {
  signal?: AbortSignal;
  onProgress?: (fraction: number) => void;
}

export type DetectedFormat = 'onnx' | 'tfjs';

/** Says which reader a file needs, from its name and first bytes. */
export async function detectModelFormat(path: string): Promise<DetectedFormat> {
  let size: number;
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new ModelFileError(path, 'is a folder; point at model.json or a .onnx file');
    // opening a FIFO waits for a writer forever, a device may never end: only regular files
    if (!st.isFile()) throw new ModelFileError(path, 'not a regular file (a pipe, socket or device cannot be a model)');
    size = st.size;
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    throw new ModelFileError(path, `cannot open: ${ioReason(e)}`);
  }
  if (size === 0) throw new ModelFileError(path, 'the file is empty');
  const head = new Uint8Array(Math.min(64, size));
  const fh = await open(path, 'r');
  try {
    await fh.read(head, 0, head.byteLength, 0);
  } finally {
    await fh.close();
  }
  let i = 0;
  while (i < head.length && (head[i] === 0x20 || head[i] === 0x0a || head[i] === 0x0d || head[i] === 0x09 || head[i] === 0xef || head[i] === 0xbb || head[i] === 0xbf)) i++;
  if (head[i] === 0x7b /* { */ || head[i] === 0x5b /* [ */) return 'tfjs';
  // An ONNX ModelProto starts with a protobuf tag; field 1 (ir_version, varint) is what every
  // exporter writes first, but any valid tag of fields 1-20 is accepted: the reader checks the rest.
  const tag = head[0];
  const field = tag >> 3;
  const wire = tag & 7;
  if (field >= 1 && field <= 20 && (wire === 0 || wire === 2)) return 'onnx';
  if (/\.onnx$/i.test(path)) return 'onnx';
  throw new ModelFileError(path, `not a model: ${basename(path)} is neither TF.js JSON nor an ONNX protobuf`);
}

export async function readModel(path: string, opts: ReadModelOptions = {}): Promise<ModelIR> {
  const format = await detectModelFormat(path);
  return format === 'onnx' ? readOnnxModel(path, opts) : readTfjsModel(path, opts);
}
