// TF.js writer: the IR of a TF.js model (read by tfjs.ts) -> model.json + group shards, keeping
// every field of the original model.json (topology, signature, metadata, manifest entry extras)
// and changing only the weights the IR (or `replace`) changes. Files are written under temp names
// in the target folder, fsynced and renamed at the end, so a failed job leaves nothing behind, and
// nothing the original model is made of is ever overwritten.

import { mkdir, open, realpath, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DType, ModelFileError, ModelIR, ModelTensor, QuantizationInfo } from './ir.js';
import { readTensorBytes, tensorElementCount } from './tensor-data.js';
import { dtypeByteSize } from './dtype.js';

export interface TfjsReplacement {
  /** the logical dtype (what TF.js computes with): float32, int32, bool, complex64 */
  dtype: DType;
  shape: number[];
  /**
   * The STORED elements: the quantized values (uint8, or uint16 / float16 bits) when
   * `quantization` is given, else values of `dtype`. Only the bytes of the view are used, so
   * a Uint8Array of little-endian bytes is always accepted.
   */
  data: Float32Array | Int32Array | Uint8Array | Uint16Array;
  quantization?: QuantizationInfo;
}

export interface WriteTfjsOptions {
  /** new contents for tensors, by ModelTensor.name */
  replace?: Map<string, TfjsReplacement>;
  /** bytes per shard file; default 4 MiB, the tensorflowjs converter's default */
  shardBytes?: number;
}

const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;
const MANIFEST_DTYPES: ReadonlySet<string> = new Set(['float32', 'int32', 'bool', 'string', 'complex64']);
const COPY_CHUNK = 8 * 1024 * 1024;

type Json = Record<string, unknown>;

interface PlannedWeight {
  entry: Json;
  byteLength: number;
  write: (sink: ShardSink) => Promise<void>;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function quantizationJson(q: QuantizationInfo): Json {
  return {
    dtype: q.dtype,
    ...(q.scale !== undefined ? { scale: q.scale } : {}),
    ...(q.min !== undefined ? { min: q.min } : {}),
    ...(q.originalDtype !== undefined ? { original_dtype: q.originalDtype } : {}),
  };
}

function sameQuantization(entryQ: unknown, q: QuantizationInfo | undefined): boolean {
  if (!q) return entryQ === undefined || entryQ === null;
  if (!isObject(entryQ)) return false;
  // original_dtype is informative (the reader fills it from the entry's dtype when absent)
  return entryQ.dtype === q.dtype && entryQ.scale === q.scale && entryQ.min === q.min &&
    (entryQ.original_dtype === undefined || entryQ.original_dtype === q.originalDtype);
}

function sameShape(a: unknown, b: readonly number[]): boolean {
  return Array.isArray(a) && a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkDtypes(outPath: string, name: string, dtype: DType, storedDtype: DType, q: QuantizationInfo | undefined): void {
  if (!MANIFEST_DTYPES.has(dtype)) {
    throw new ModelFileError(outPath, `tensor ${name} has dtype ${dtype}, which a TF.js weights manifest cannot hold (float32, int32, bool, string, complex64)`);
  }
  if (q) {
    if (q.dtype === 'float16' ? dtype !== 'float32' : dtype !== 'float32' && dtype !== 'int32') {
      throw new ModelFileError(outPath, `tensor ${name}: TF.js cannot load ${dtype} weights quantized as ${q.dtype}`);
    }
    if (q.dtype !== 'float16' && (typeof q.scale !== 'number' || typeof q.min !== 'number' || !Number.isFinite(q.scale) || !Number.isFinite(q.min))) {
      throw new ModelFileError(outPath, `tensor ${name}: ${q.dtype} quantization needs a finite scale and min`);
    }
    if (storedDtype !== q.dtype) throw new ModelFileError(outPath, `tensor ${name}: stored dtype ${storedDtype} does not match its ${q.dtype} quantization`);
  } else if (storedDtype !== dtype) {
    throw new ModelFileError(outPath, `tensor ${name}: stored as ${storedDtype} but computes as ${dtype} without quantization info; TF.js cannot describe that`);
  }
}

/** Writes consecutive bytes into shards of `shardBytes`, opening the next temp file as one fills. */
class ShardSink {
  private index = -1;
  private fh: FileHandle | undefined;
  private filled = 0;
  constructor(
    private readonly tempPaths: string[],
    private readonly shardBytes: number,
    private readonly onOpen: (p: string) => void,
  ) {}

  async write(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.byteLength) {
      if (!this.fh || this.filled === this.shardBytes) await this.next();
      const n = Math.min(bytes.byteLength - done, this.shardBytes - this.filled);
      let w = 0;
      while (w < n) {
        const { bytesWritten } = await (this.fh as FileHandle).write(bytes, done + w, n - w);
        w += bytesWritten;
      }
      this.filled += n;
      done += n;
    }
  }

  private async next(): Promise<void> {
    await this.closeCurrent();
    this.index++;
    if (this.index >= this.tempPaths.length) throw new Error('internal: more shard bytes than planned');
    const p = this.tempPaths[this.index];
    this.onOpen(p);
    this.fh = await open(p, 'wx');
    this.filled = 0;
  }

  private async closeCurrent(): Promise<void> {
    if (!this.fh) return;
    await this.fh.sync();
    await this.fh.close();
    this.fh = undefined;
  }

  async finish(): Promise<void> {
    await this.closeCurrent();
    if (this.index !== this.tempPaths.length - 1) throw new Error('internal: fewer shard bytes than planned');
  }

  async abort(): Promise<void> {
    if (this.fh) await this.fh.close().catch(() => undefined);
    this.fh = undefined;
  }
}

/** TF.js string encoding: per string a little-endian uint32 byte length, then the UTF-8 bytes. */
function encodeStrings(values: readonly string[]): Uint8Array {
  const parts = values.map((s) => Buffer.from(s, 'utf8'));
  const out = new Uint8Array(parts.reduce((s, p) => s + 4 + p.byteLength, 0));
  const dv = new DataView(out.buffer);
  let o = 0;
  for (const p of parts) {
    dv.setUint32(o, p.byteLength, true);
    out.set(p, o + 4);
    o += 4 + p.byteLength;
  }
  return out;
}

async function writeTensorBytes(t: ModelTensor, sink: ShardSink): Promise<void> {
  const src = t.storage.source;
  if (src.kind === 'bytes') {
    await sink.write(src.bytes);
  } else if (src.kind === 'file' || src.kind === 'file-parts') {
    const parts = src.kind === 'file' ? [src] : src.parts;
    for (const part of parts) {
      const fh = await open(part.path, 'r');
      try {
        const buf = new Uint8Array(Math.min(COPY_CHUNK, Math.max(1, part.length)));
        for (let done = 0; done < part.length; ) {
          const want = Math.min(buf.byteLength, part.length - done);
          const { bytesRead } = await fh.read(buf, 0, want, part.offset + done);
          if (bytesRead === 0) throw new ModelFileError(part.path, `file ended early: tensor ${t.name} needs ${part.length} bytes at offset ${part.offset}`);
          await sink.write(buf.subarray(0, bytesRead));
          done += bytesRead;
        }
      } finally {
        await fh.close();
      }
    }
  } else if (t.dtype === 'string') {
    await sink.write(encodeStrings(src.values as readonly string[]));
  } else {
    await sink.write(await readTensorBytes(t));
  }
}

function storedByteLength(t: ModelTensor): number {
  if (t.dtype === 'string') {
    const src = t.storage.source;
    return src.kind === 'values' ? encodeStrings(src.values as readonly string[]).byteLength : t.storage.byteLength;
  }
  const n = tensorElementCount(t.shape) * dtypeByteSize(t.storage.quantization?.dtype ?? t.storage.dtype);
  const src = t.storage.source;
  const have =
    src.kind === 'bytes' ? src.bytes.byteLength : src.kind === 'file' ? src.length : src.kind === 'file-parts' ? src.parts.reduce((a, p) => a + p.length, 0) : n;
  if (have !== n) {
    throw new ModelFileError(t.storage.location, `tensor ${t.name} [${t.shape.join(', ')}] needs ${n} stored bytes, its source holds ${have}`);
  }
  return n;
}

async function realOrSelf(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return path.resolve(p);
  }
}

export async function writeTfjsModel(ir: ModelIR, outPath: string, opts: WriteTfjsOptions = {}): Promise<void> {
  const outFile = path.resolve(outPath);
  checkTfjsIr(ir, outFile);
  const replace = opts.replace ?? new Map<string, TfjsReplacement>();
  const irNames = new Set(ir.tensors.map((t) => t.name));
  for (const k of replace.keys()) if (!irNames.has(k)) throw new ModelFileError(outFile, `replacement for unknown tensor ${k}`);
  const items: WeightItem[] = ir.tensors.map((t) => ({ name: t.name, tensor: t, r: replace.get(t.name) }));
  await writeWeights(ir, outFile, items, opts.shardBytes, undefined);
}

/** An edit of a TF.js model: weights replaced, added or removed, and/or a new modelTopology. */
export interface TfjsModelEdit {
  /**
   * An edited copy of model.json's modelTopology (e.g. an Embedding's input_dim changed, a layer
   * added); written as given. Not for weights-only manifests (no model.json object).
   */
  topology?: unknown;
  /** replace (same name, same place in the manifest) or add (appended to the last group) */
  setWeights?: Array<{ name: string } & TfjsReplacement>;
  /** names of existing weights */
  removeWeights?: string[];
}

export interface WriteEditedTfjsOptions {
  /** bytes per shard file; default 4 MiB */
  shardBytes?: number;
}

/**
 * Writes `ir` (read by readTfjsModel) with `edit` applied. The manifest is rebuilt from the
 * resulting weights (original order, then the added ones), names unique; every other field of
 * model.json is kept. Atomic like writeTfjsModel; never writes over the original's files.
 */
export async function writeEditedTfjsModel(ir: ModelIR, edit: TfjsModelEdit, outPath: string, opts: WriteEditedTfjsOptions = {}): Promise<void> {
  const outFile = path.resolve(outPath);
  checkTfjsIr(ir, outFile);
  const existing = new Map(ir.tensors.map((t) => [t.name, t]));
  const removed = new Set<string>();
  for (const n of edit.removeWeights ?? []) {
    if (!existing.has(n)) throw new ModelFileError(outFile, `cannot remove weight "${n}": no such weight in ${ir.path}`);
    removed.add(n);
  }
  const set = new Map<string, TfjsReplacement>();
  const added: WeightItem[] = [];
  for (const w of edit.setWeights ?? []) {
    if (typeof w.name !== 'string' || !w.name) throw new ModelFileError(outFile, 'setWeights: every weight needs a name');
    if (set.has(w.name)) throw new ModelFileError(outFile, `setWeights: "${w.name}" given twice`);
    if (removed.has(w.name)) throw new ModelFileError(outFile, `weight "${w.name}" is both set and removed`);
    const r: TfjsReplacement = { dtype: w.dtype, shape: w.shape, data: w.data, ...(w.quantization ? { quantization: w.quantization } : {}) };
    set.set(w.name, r);
    if (!existing.has(w.name)) added.push({ name: w.name, r });
  }
  const items: WeightItem[] = [
    ...ir.tensors.filter((t) => !removed.has(t.name)).map((t) => ({ name: t.name, tensor: t, r: set.get(t.name) })),
    ...added,
  ];
  let topology: { value: unknown } | undefined;
  if (edit.topology !== undefined) {
    if (Array.isArray(ir.native)) throw new ModelFileError(outFile, 'a weights-only manifest has no modelTopology to replace');
    topology = { value: JSON.parse(JSON.stringify(edit.topology)) as unknown };
  }
  await writeWeights(ir, outFile, items, opts.shardBytes, topology);
}

interface WeightItem {
  name: string;
  /** the original tensor (absent for an added weight) */
  tensor?: ModelTensor;
  r?: TfjsReplacement;
}

function checkTfjsIr(ir: ModelIR, outFile: string): void {
  if (ir.format !== 'tfjs-layers' && ir.format !== 'tfjs-graph' && ir.format !== 'tfjs-weights') {
    throw new ModelFileError(outFile, `cannot write a ${ir.format} model as TF.js`);
  }
  if (!isObject(ir.native) && !Array.isArray(ir.native)) {
    throw new ModelFileError(outFile, 'the model has no parsed model.json to write from (IR.native)');
  }
}

async function writeWeights(
  ir: ModelIR,
  outFile: string,
  items: WeightItem[],
  shardBytesOpt: number | undefined,
  topology: { value: unknown } | undefined,
): Promise<void> {
  const shardBytes = shardBytesOpt ?? DEFAULT_SHARD_BYTES;
  if (!Number.isSafeInteger(shardBytes) || shardBytes < 1) throw new ModelFileError(outFile, `shardBytes must be a positive integer, got ${shardBytes}`);
  const seen = new Set<string>();
  for (const it of items) {
    if (seen.has(it.name)) throw new ModelFileError(outFile, `two weights are named "${it.name}"; manifest names must be unique`);
    seen.add(it.name);
  }

  const doc = JSON.parse(JSON.stringify(ir.native)) as Json | unknown[];
  if (topology && !Array.isArray(doc)) doc.modelTopology = topology.value;
  const origGroups: unknown[] = Array.isArray(doc) ? doc : Array.isArray(doc.weightsManifest) ? doc.weightsManifest : [];
  // original entry (and its group) by name, to keep extras such as `group` and unchanged entries verbatim
  const original = new Map<string, { group: number; entry: Json }>();
  origGroups.forEach((g, gi) => {
    if (!isObject(g) || !Array.isArray(g.weights)) return;
    for (const e of g.weights) if (isObject(e) && typeof e.name === 'string' && !original.has(e.name)) original.set(e.name, { group: gi, entry: e });
  });

  const groupCount = Math.max(1, origGroups.length);
  const planned: PlannedWeight[][] = Array.from({ length: groupCount }, () => []);
  for (const { name, tensor: t, r } of items) {
    const orig = original.get(name);
    if (!t && !r) throw new Error(`internal: weight ${name} has no data`);
    const dtype = r ? r.dtype : (t as ModelTensor).dtype;
    const shape = r ? r.shape : (t as ModelTensor).shape;
    const q = r ? r.quantization : (t as ModelTensor).storage.quantization;
    const storedDtype = r ? (r.quantization ? r.quantization.dtype : r.dtype) : (t as ModelTensor).storage.dtype;
    checkDtypes(outFile, name, dtype, storedDtype, q);
    let byteLength: number;
    let write: (sink: ShardSink) => Promise<void>;
    if (r) {
      if (dtype === 'string') throw new ModelFileError(outFile, `tensor ${name}: string tensors cannot be replaced`);
      let count: number;
      try {
        count = tensorElementCount(shape);
      } catch (e) {
        throw new ModelFileError(outFile, `replacement for ${name}: ${(e as Error).message}`);
      }
      byteLength = count * dtypeByteSize(storedDtype);
      if (r.data.byteLength !== byteLength) {
        throw new ModelFileError(outFile, `replacement for ${name} [${shape.join(', ')}] ${storedDtype} needs ${byteLength} bytes, got ${r.data.byteLength}`);
      }
      const bytes = new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength);
      write = (sink) => sink.write(bytes);
    } else {
      const tt = t as ModelTensor;
      byteLength = storedByteLength(tt);
      write = (sink) => writeTensorBytes(tt, sink);
    }
    let entry: Json;
    if (orig && orig.entry.dtype === dtype && sameShape(orig.entry.shape, shape) && sameQuantization(orig.entry.quantization, q)) {
      entry = orig.entry;
    } else {
      // keep the entry's other fields (e.g. `group`); name, shape, dtype and quantization are new
      const extras: Json = { ...(orig ? orig.entry : {}) };
      delete extras.quantization;
      entry = { ...extras, name, shape: [...shape], dtype, ...(q ? { quantization: quantizationJson(q) } : {}) };
    }
    // tensors the original manifest did not have go to its last group
    planned[orig ? orig.group : groupCount - 1].push({ entry, byteLength, write });
  }

  const outDir = path.dirname(outFile);
  // the first folder this call creates, removed again if the write fails
  const madeDir = await mkdir(outDir, { recursive: true });
  try {
    await writeInto(ir, outFile, outDir, planned, origGroups, doc, shardBytes);
  } catch (e) {
    if (madeDir) await rm(madeDir, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
}

async function writeInto(
  ir: ModelIR,
  outFile: string,
  outDir: string,
  planned: PlannedWeight[][],
  origGroups: unknown[],
  doc: Json | unknown[],
  shardBytes: number,
): Promise<void> {
  const realOutDir = await realpath(outDir);

  // What we must never overwrite: every file the model (and its tensors) is read from.
  const protectedFiles = new Set<string>();
  for (const f of [ir.path, ...ir.files.map((x) => x.path)]) protectedFiles.add(await realOrSelf(f));
  for (const t of ir.tensors) {
    const src = t.storage.source;
    if (src.kind === 'file') protectedFiles.add(await realOrSelf(src.path));
    if (src.kind === 'file-parts') for (const p of src.parts) protectedFiles.add(await realOrSelf(p.path));
  }

  const keptGroups = planned.map((ws, gi) => ({ ws, gi })).filter(({ ws, gi }) => ws.length > 0 || (gi === 0 && planned.every((p) => p.length === 0) && origGroups.length > 0));
  const finalTargets: Array<{ temp: string; final: string }> = [];
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tempFor = (name: string): string => path.join(realOutDir, `.${name}.${tag}.tmp`);
  const newGroups: Json[] = [];
  const shardPlans: Array<{ temps: string[]; weights: PlannedWeight[] }> = [];
  keptGroups.forEach(({ ws, gi }, k) => {
    const total = ws.reduce((s, w) => s + w.byteLength, 0);
    const n = total === 0 ? 0 : Math.ceil(total / shardBytes);
    const names = Array.from({ length: n }, (_, i) => `group${k + 1}-shard${i + 1}of${n}.bin`);
    const temps = names.map(tempFor);
    names.forEach((nm, i) => finalTargets.push({ temp: temps[i], final: path.join(realOutDir, nm) }));
    const orig = origGroups[gi];
    newGroups.push({ ...(isObject(orig) ? orig : {}), paths: names, weights: ws.map((w) => w.entry) });
    shardPlans.push({ temps, weights: ws });
  });
  const modelFinal = path.join(realOutDir, path.basename(outFile));
  const modelTemp = tempFor(path.basename(outFile));
  for (const target of [modelFinal, ...finalTargets.map((f) => f.final)]) {
    if (protectedFiles.has(await realOrSelf(target))) {
      throw new ModelFileError(outFile, `refusing to write ${target}: it is part of the model being written from (${ir.path}); choose another file or folder`);
    }
  }

  if (Array.isArray(doc)) {
    doc.length = 0;
    doc.push(...newGroups);
  } else if (doc.weightsManifest !== undefined || newGroups.some((g) => (g.weights as unknown[]).length > 0)) {
    doc.weightsManifest = newGroups;
  }

  const created: string[] = [];
  const renamed: string[] = [];
  try {
    for (const plan of shardPlans) {
      const sink = new ShardSink(plan.temps, shardBytes, (p) => created.push(p));
      try {
        for (const w of plan.weights) await w.write(sink);
        await sink.finish();
      } catch (e) {
        await sink.abort();
        throw e;
      }
    }
    created.push(modelTemp);
    const fh = await open(modelTemp, 'wx');
    try {
      await fh.writeFile(JSON.stringify(doc), 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    // shards first, model.json last: a reader never sees a model.json whose shards are missing
    for (const f of finalTargets) {
      await rename(f.temp, f.final);
      renamed.push(f.final);
    }
    await rename(modelTemp, modelFinal);
    await syncDir(realOutDir);
  } catch (e) {
    for (const p of created) await rm(p, { force: true }).catch(() => undefined);
    for (const p of renamed) await rm(p, { force: true }).catch(() => undefined);
    if (e instanceof ModelFileError) throw e;
    throw new ModelFileError(outFile, `writing failed: ${(e as Error).message}`, { cause: e });
  }
}

async function syncDir(dir: string): Promise<void> {
  // makes the renames durable; some file systems refuse fsync on directories, which is harmless
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* not supported here */
  }
}
