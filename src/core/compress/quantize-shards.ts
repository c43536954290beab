// int8 quantization split into per-table work units, the way analysis is (analysis/shards.ts):
// `quantize --shard I/N` computes the int8 codes and scales of its share of the embedding tables
// (balanced by size, largest first) into one shard file; `quantize --from-shards` (or a
// `--distribute` run) writes the model with the codes taken from the shards instead of computed.
// The plan (which tables, per-row or per-table scales, float16 or float32 scales) is made by the
// same code in every process, and a shard only answers it: the assembled model is byte for byte
// the one-process model. A shard holds codes of its tables only (a quarter of their float bytes),
// so shards and the assembly stream; nothing holds a table.
//
// Shard file: [codes and scales of each table][JSON header][header length: uint32 LE][MAGIC].
// The header names the model (fingerprint), the shard, and each table's rowLen, scale dtype,
// byte ranges and max |Δw|. Written atomically (temp file, rename).

import { open, type FileHandle } from 'node:fs/promises';
import { ioReason, ModelFileError, type ModelIR, type ModelTensor } from '../model/ir.js';
import { writeAll, writeFilesAtomically } from '../model/atomic-write.js';
import { float16BitsToFloat32, tensorElementCount } from '../model/tensor-data.js';
import { fileByteStream, pipeBytes, type TensorByteStream } from '../model/tensor-stream.js';
import { balanceShards, modelFingerprint, type ShardSpec } from '../analysis/shards.js';
import { streamedRowsInt8, type RowsInt8, type RowsInt8Source } from './quantize-onnx.js';

export const QUANTIZE_SHARD_KIND = 'prunescope-quantize-shard';
const MAGIC = new TextEncoder().encode('PSQSHRD1');
const TRAILER = 4 + MAGIC.length;
const MAX_HEADER = 64 * 1024 * 1024;

interface ShardTable {
  name: string;
  rowLen: number;
  /** what the plan asked for */
  float16Scales: boolean;
  /** what was stored: float16 when asked for and every scale fit */
  scaleDtype: 'float16' | 'float32';
  elements: number;
  codes: { offset: number; length: number };
  scales: { offset: number; length: number };
  maxAbsError: number;
}

export interface QuantizeShardHeader {
  kind: typeof QUANTIZE_SHARD_KIND;
  version: 1;
  model: string;
  fingerprint: string;
  shard: ShardSpec;
  tables: ShardTable[];
}

/**
 * The 2-D tensors of `selected` that shard `shard.index` answers for: embedding tables balanced by
 * size, largest first; other 2-D tensors (which the plan quantizes as tables only if every reader
 * is a Gather) count as size 1, so that each has an owner without skewing the balance.
 */
export function tablesOfShard(selected: ModelTensor[], shard: ShardSpec): Set<string> {
  const tables = selected.filter((t) => t.shape.length === 2);
  const parts = balanceShards(tables.map((t) => (t.role === 'embedding' ? tensorElementCount(t.shape) : 1)), shard.count);
  return new Set(parts[shard.index].map((i) => tables[i].name));
}

/**
 * The answer for a table another shard computes: this shard's plan needs its scale count and
 * scale dtype to go on, never its codes (the plan is not written here), so the codes are a stream
 * that refuses to run and the scales are zeros.
 */
function otherShardsTable(t: ModelTensor, rowLen: number, float16Scales: boolean): RowsInt8 {
  const count = tensorElementCount(t.shape);
  const rows = rowLen > 0 ? count / rowLen : 0;
  const codes: TensorByteStream = {
    byteLength: count,
    stream: () => Promise.reject(new Error(`quantize shard: the codes of ${t.name} belong to another shard`)),
  };
  return { codes, scales: new Float32Array(rows), ...(float16Scales ? { scaleBits: new Uint16Array(rows) } : {}), maxAbsError: 0 };
}

/**
 * Computes the shard's tables as the plan asks for them and appends their codes and scales to
 * `fh`; `finish` appends the header. Tables of other shards are answered by otherShardsTable.
 */
class ShardWriter {
  readonly tables: ShardTable[] = [];
  private pos = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly mine: Set<string>,
  ) {}

  readonly source: RowsInt8Source = async (t, rowLen, float16Scales) => {
    if (!this.mine.has(t.name)) return otherShardsTable(t, rowLen, float16Scales);
    const rq = await streamedRowsInt8(t, rowLen, float16Scales);
    const codesAt = this.pos;
    await pipeBytes(rq.codes, async (chunk) => {
      await writeAll(this.fh, chunk, this.pos);
      this.pos += chunk.length;
    }, t.name);
    const s = rq.scaleBits ?? rq.scales;
    const scaleBytes = new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
    const scalesAt = this.pos;
    await writeAll(this.fh, scaleBytes, this.pos);
    this.pos += scaleBytes.length;
    this.tables.push({
      name: t.name,
      rowLen,
      float16Scales,
      scaleDtype: rq.scaleBits ? 'float16' : 'float32',
      elements: rq.codes.byteLength,
      codes: { offset: codesAt, length: rq.codes.byteLength },
      scales: { offset: scalesAt, length: scaleBytes.length },
      maxAbsError: rq.maxAbsError,
    });
    return rq;
  };

  async finish(header: Omit<QuantizeShardHeader, 'tables'>): Promise<QuantizeShardHeader> {
    const full: QuantizeShardHeader = { ...header, tables: this.tables };
    const json = new TextEncoder().encode(JSON.stringify(full));
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, json.length, true);
    for (const part of [json, len, MAGIC]) {
      await writeAll(this.fh, part, this.pos);
      this.pos += part.length;
    }
    return full;
  }
}

/**
 * Writes shard `shard` of an int8 quantization of `ir` to `outPath` (atomically). `plan` runs the
 * quantization with the source it is given (quantize.ts passes its quantizeModel), so the shard
 * answers exactly the questions the one-process plan asks.
 */
export async function writeQuantizeShard(
  ir: ModelIR,
  selected: ModelTensor[],
  shard: ShardSpec,
  outPath: string,
  plan: (source: RowsInt8Source) => Promise<unknown>,
): Promise<QuantizeShardHeader> {
  const fingerprint = await modelFingerprint(ir);
  let header: QuantizeShardHeader | undefined;
  await writeFilesAtomically((add) =>
    add(outPath, async (fh) => {
      const writer = new ShardWriter(fh, tablesOfShard(selected, shard));
      await plan(writer.source);
      header = await writer.finish({ kind: QUANTIZE_SHARD_KIND, version: 1, model: ir.path, fingerprint, shard });
    }),
  );
  return header!;
}

/** Reads a shard file's header, checking its frame. */
export async function readShardHeader(file: string): Promise<QuantizeShardHeader> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw new ModelFileError(file, `cannot open the quantize shard: ${ioReason(e)}`);
  }
  try {
    const size = (await fh.stat()).size;
    const bad = (why: string): never => {
      throw new ModelFileError(file, `is not a PruneScope quantize shard (quantize --shard I/N writes one): ${why}`);
    };
    if (size < TRAILER) bad(`${size} bytes`);
    const trailer = new Uint8Array(TRAILER);
    await fh.read(trailer, 0, TRAILER, size - TRAILER);
    if (!MAGIC.every((b, i) => trailer[4 + i] === b)) bad('no shard trailer at its end');
    const len = new DataView(trailer.buffer).getUint32(0, true);
    if (len > MAX_HEADER || len > size - TRAILER) bad(`a header of ${len} bytes does not fit`);
    const json = new Uint8Array(len);
    await fh.read(json, 0, len, size - TRAILER - len);
    let h: QuantizeShardHeader;
    try {
      h = JSON.parse(new TextDecoder().decode(json)) as QuantizeShardHeader;
    } catch (e) {
      return bad(`its header is not JSON (${(e as Error).message})`);
    }
    if (h.kind !== QUANTIZE_SHARD_KIND || h.version !== 1 || !h.shard || !Array.isArray(h.tables)) bad('a header of another kind or version');
    const dataEnd = size - TRAILER - len;
    for (const t of h.tables) {
      for (const r of [t.codes, t.scales]) {
        if (!(Number.isSafeInteger(r.offset) && Number.isSafeInteger(r.length) && r.offset >= 0 && r.length >= 0 && r.offset + r.length <= dataEnd)) {
          bad(`the byte range of ${t.name} runs past its data`);
        }
      }
    }
    return h;
  } finally {
    await fh.close();
  }
}

/**
 * A source that answers the plan from shard files: all N shards of one split, of this model. A
 * table asked for with other settings than its shard was made with, or held by no shard, is an
 * error naming the file.
 */
export async function shardedRowsInt8(ir: ModelIR, files: string[]): Promise<{ source: RowsInt8Source; shards: number }> {
  if (files.length === 0) throw new ModelFileError(ir.path, 'quantize: fromShards names no shard file');
  const fingerprint = await modelFingerprint(ir);
  const byTable = new Map<string, { file: string; table: ShardTable }>();
  const seen = new Map<number, string>();
  let count: number | undefined;
  for (const file of files) {
    const h = await readShardHeader(file);
    if (h.fingerprint !== fingerprint) throw new ModelFileError(file, `is a quantize shard of another model (or another version of ${ir.path})`);
    count ??= h.shard.count;
    if (h.shard.count !== count) throw new ModelFileError(file, `is shard ${h.shard.index + 1}/${h.shard.count}, the others are of ${count}`);
    const dup = seen.get(h.shard.index);
    if (dup !== undefined) throw new ModelFileError(file, `is shard ${h.shard.index + 1}/${count} again (also ${dup})`);
    seen.set(h.shard.index, file);
    for (const table of h.tables) byTable.set(table.name, { file, table });
  }
  if (seen.size !== count) {
    const missing = Array.from({ length: count! }, (_, i) => i).filter((i) => !seen.has(i)).map((i) => `${i + 1}/${count}`);
    throw new ModelFileError(ir.path, `quantize: shards ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''} are missing`);
  }
  const source: RowsInt8Source = async (t, rowLen, float16Scales) => {
    const got = byTable.get(t.name);
    if (!got) throw new ModelFileError(ir.path, `quantize: no shard holds table ${t.name} (shards made with other --tensors?)`);
    const { file, table } = got;
    const elements = tensorElementCount(t.shape);
    if (table.rowLen !== rowLen || table.float16Scales !== float16Scales || table.elements !== elements) {
      throw new ModelFileError(file, `holds ${t.name} quantized with other settings (made with another --lookup, or of another table shape)`);
    }
    const rows = rowLen > 0 ? elements / rowLen : 0;
    const raw = new Uint8Array(table.scales.length);
    const fh = await open(file, 'r');
    try {
      await fh.read(raw, 0, raw.length, table.scales.offset);
    } finally {
      await fh.close();
    }
    let scales: Float32Array;
    let scaleBits: Uint16Array | undefined;
    if (table.scaleDtype === 'float16') {
      if (raw.length !== rows * 2) throw new ModelFileError(file, `holds ${raw.length} bytes of scales for ${t.name}, ${rows * 2} expected`);
      scaleBits = new Uint16Array(raw.buffer, 0, rows);
      scales = Float32Array.from(scaleBits, float16BitsToFloat32);
    } else {
      if (raw.length !== rows * 4) throw new ModelFileError(file, `holds ${raw.length} bytes of scales for ${t.name}, ${rows * 4} expected`);
      scales = new Float32Array(raw.buffer, 0, rows);
    }
    return { codes: fileByteStream(file, table.codes.offset, table.codes.length), scales, ...(scaleBits ? { scaleBits } : {}), maxAbsError: table.maxAbsError };
  };
  return { source, shards: count! };
}
