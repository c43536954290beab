// tf.io handlers for Node's file system, so that model.save(handler) and
// tf.loadLayersModel(handler) work without @tensorflow/tfjs-node (which offline installs lack).
// Writes model.json plus weight shards `group1-shard{i}of{n}.bin` (4 MB each by default, like
// the TF.js converter); each file goes to a temp name first and is renamed into place, shards
// before model.json, so a reader never sees a model.json whose shards are missing or partial.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ModelFileError } from './ir.js';
import { commitTempFiles, discardTempFiles, writeAll, writeTempFile } from './atomic-write.js';
import { DTYPE_BYTES } from './dtype.js';

export const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;

export interface FileSystemSaveOptions {
  /** bytes per weight shard; default 4 MB */
  shardSizeBytes?: number;
}

function toBuffers(data: tf.io.WeightData | undefined): ArrayBuffer[] {
  if (data === undefined) return [];
  return Array.isArray(data) ? data : [data];
}

/** The chunks in a temp file beside `target` (atomic-write.ts); returns the temp path to commit. */
function writeFileAtomic(target: string, chunks: Uint8Array[]): Promise<string> {
  return writeTempFile(target, async (fh) => {
    let pos = 0;
    for (const c of chunks) {
      await writeAll(fh, c, pos);
      pos += c.byteLength;
    }
  });
}

/** Splits the concatenated weight bytes (given as one or more buffers) into shards of `size` bytes. */
function shardWeightBytes(buffers: ArrayBuffer[], size: number): Uint8Array[][] {
  const total = buffers.reduce((a, b) => a + b.byteLength, 0);
  const shards: Uint8Array[][] = [];
  let current: Uint8Array[] = [];
  let room = size;
  for (const buf of buffers) {
    let off = 0;
    while (off < buf.byteLength) {
      const take = Math.min(room, buf.byteLength - off);
      current.push(new Uint8Array(buf, off, take));
      off += take;
      room -= take;
      if (room === 0) {
        shards.push(current);
        current = [];
        room = size;
      }
    }
  }
  if (current.length > 0 || (total === 0 && shards.length === 0)) shards.push(current);
  return shards;
}

/** Shard files named by an existing model.json at `file` (inside its folder only); none if unreadable. */
async function shardsOfExistingModel(file: string): Promise<string[]> {
  try {
    const json = JSON.parse(await fs.promises.readFile(file, 'utf8')) as { weightsManifest?: Array<{ paths?: unknown[] }> };
    const dir = path.dirname(file);
    const out: string[] = [];
    for (const g of json.weightsManifest ?? []) {
      for (const p of g.paths ?? []) {
        if (typeof p !== 'string') continue;
        const abs = path.resolve(dir, p);
        if (path.dirname(abs) === dir && abs !== file) out.push(abs);
      }
    }
    return out;
  } catch {
    return [];
  }
}

/**
 * A save handler writing `modelJsonPath` and its shards next to it. Saving over an existing
 * model removes the shards of the old one that the new model.json does not name.
 */
export function fileSystemSaveHandler(modelJsonPath: string, options: FileSystemSaveOptions = {}): tf.io.IOHandler {
  const shardSize = options.shardSizeBytes ?? DEFAULT_SHARD_BYTES;
  if (!Number.isInteger(shardSize) || shardSize <= 0) {
    throw new Error(`fileSystemSaveHandler: shardSizeBytes must be a positive integer, got ${shardSize}`);
  }
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new Error('fileSystemSaveHandler: binary (ArrayBuffer) model topology is not supported');
      }
      const dir = path.dirname(path.resolve(modelJsonPath));
      await fs.promises.mkdir(dir, { recursive: true });
      const buffers = toBuffers(artifacts.weightData);
      const hasWeights = artifacts.weightSpecs !== undefined && artifacts.weightSpecs.length > 0;
      const shards = hasWeights ? shardWeightBytes(buffers, shardSize) : [];
      const names = shards.map((_, i) => `group1-shard${i + 1}of${shards.length}.bin`);

      const modelJson: Record<string, unknown> = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: hasWeights ? [{ paths: names, weights: artifacts.weightSpecs }] : [],
      };
      if (artifacts.trainingConfig !== undefined) modelJson.trainingConfig = artifacts.trainingConfig;
      if (artifacts.signature !== undefined) modelJson.signature = artifacts.signature;
      if (artifacts.userDefinedMetadata !== undefined) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
      if (artifacts.modelInitializer !== undefined) modelJson.modelInitializer = artifacts.modelInitializer;
      if (artifacts.initializerSignature !== undefined) modelJson.initializerSignature = artifacts.initializerSignature;

      const previousShards = await shardsOfExistingModel(path.resolve(modelJsonPath));
      const pending: Array<{ tmp: string; target: string }> = [];
      try {
        for (let i = 0; i < shards.length; i++) {
          const target = path.join(dir, names[i]);
          pending.push({ tmp: await writeFileAtomic(target, shards[i]), target });
        }
        const jsonBytes = new TextEncoder().encode(JSON.stringify(modelJson));
        const jsonTarget = path.resolve(modelJsonPath);
        pending.push({ tmp: await writeFileAtomic(jsonTarget, [jsonBytes]), target: jsonTarget });
      } catch (e) {
        await discardTempFiles(pending);
        throw e;
      }
      // model.json is last in `pending`: it only appears once every shard is in place
      await commitTempFiles(pending);
      // shards of the model this one replaced that the new model.json no longer names
      const kept = new Set(names.map((n) => path.join(dir, n)));
      for (const old of previousShards) if (!kept.has(old)) await fs.promises.rm(old, { force: true });

      const weightDataBytes = buffers.reduce((a, b) => a + b.byteLength, 0);
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology ?? null).length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
          weightDataBytes,
        },
      };
    },
  };
}

/** Bytes one manifest entry takes in the shards, or undefined when it cannot be known ahead (strings). */
function specByteLength(spec: tf.io.WeightsManifestEntry): number | undefined {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.quantization) {
    const q = spec.quantization.dtype;
    return n * (q === 'uint8' ? 1 : 2);
  }
  const size = spec.dtype === 'string' ? undefined : (DTYPE_BYTES as Record<string, number | undefined>)[spec.dtype];
  return size === undefined ? undefined : n * size;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** A load handler reading `modelJsonPath` and the shards its weightsManifest names. */
export function fileSystemLoadHandler(modelJsonPath: string): tf.io.IOHandler {
  const file = path.resolve(modelJsonPath);
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      let text: string;
      try {
        text = await fs.promises.readFile(file, 'utf8');
      } catch (e) {
        throw new ModelFileError(file, `cannot read: ${(e as Error).message}`, { cause: e });
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new ModelFileError(file, `not valid JSON: ${(e as Error).message}`, { cause: e });
      }
      if (!isRecord(json) || json.modelTopology === undefined) {
        throw new ModelFileError(file, 'not a TF.js model.json (no modelTopology)');
      }
      const manifest = json.weightsManifest ?? [];
      if (!Array.isArray(manifest)) throw new ModelFileError(file, 'weightsManifest is not an array');
      const dir = path.dirname(file);
      const specs: tf.io.WeightsManifestEntry[] = [];
      const buffers: ArrayBuffer[] = [];
      let shardBytes = 0;
      for (const [gi, group] of manifest.entries()) {
        if (!isRecord(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
          throw new ModelFileError(file, `weightsManifest[${gi}] needs 'paths' and 'weights' arrays`);
        }
        for (const w of group.weights) {
          if (!isRecord(w) || typeof w.name !== 'string' || !Array.isArray(w.shape) || typeof w.dtype !== 'string') {
            throw new ModelFileError(file, `weightsManifest[${gi}] has an entry without name/shape/dtype`);
          }
          if (!w.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
            throw new ModelFileError(file, `weight '${w.name}' has an invalid shape [${w.shape.join(',')}]`);
          }
          specs.push(w as unknown as tf.io.WeightsManifestEntry);
        }
        for (const p of group.paths) {
          if (typeof p !== 'string') throw new ModelFileError(file, `weightsManifest[${gi}] has a non-string path`);
          const shardPath = path.resolve(dir, p);
          const rel = path.relative(dir, shardPath);
          if (rel.startsWith('..') || path.isAbsolute(rel)) {
            throw new ModelFileError(file, `weight path '${p}' leaves the model's folder`);
          }
          let data: Buffer;
          try {
            data = await fs.promises.readFile(shardPath);
          } catch (e) {
            throw new ModelFileError(file, `cannot read weight shard '${p}': ${(e as Error).message}`, { cause: e });
          }
          shardBytes += data.byteLength;
          // an exact, aligned ArrayBuffer per shard (Buffer may be a slice of a shared pool)
          buffers.push(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer);
        }
      }
      const sizes = specs.map(specByteLength);
      if (sizes.every((s) => s !== undefined)) {
        const need = (sizes as number[]).reduce((a, b) => a + b, 0);
        if (need !== shardBytes) {
          throw new ModelFileError(file, `weights need ${need} bytes but the shards hold ${shardBytes}`);
        }
      }
      const artifacts: tf.io.ModelArtifacts = {
        modelTopology: json.modelTopology as object,
        weightSpecs: specs,
        weightData: buffers.length === 1 ? buffers[0] : buffers,
        format: json.format as string | undefined,
        generatedBy: json.generatedBy as string | undefined,
        convertedBy: json.convertedBy as string | null | undefined,
      };
      if (json.trainingConfig !== undefined) artifacts.trainingConfig = json.trainingConfig as tf.io.TrainingConfig;
      if (json.signature !== undefined) artifacts.signature = json.signature as tf.io.ModelArtifacts["signature"];
      if (json.userDefinedMetadata !== undefined) artifacts.userDefinedMetadata = json.userDefinedMetadata as tf.io.ModelArtifacts['userDefinedMetadata'];
      if (json.modelInitializer !== undefined) artifacts.modelInitializer = json.modelInitializer as object;
      return artifacts;
    },
  };
}

/** 'file:///a/b/model.json' -> that file; 'file:///a/b' -> /a/b/model.json (tfjs-node's convention). */
export function modelJsonPathFromFileUrl(url: string): string {
  const rest = url.slice('file://'.length);
  return rest.endsWith('.json') ? path.resolve(rest) : path.join(path.resolve(rest), 'model.json');
}

let routersRegistered = false;

/** Makes model.save('file://...') and tf.loadLayersModel('file://...') use the handlers above. Idempotent. */
export function registerFileSystemRouters(): void {
  if (routersRegistered) return;
  routersRegistered = true;
  const route = (make: (p: string) => tf.io.IOHandler) => (url: string | string[]) => {
    const u = Array.isArray(url) ? url[0] : url;
    return typeof u === 'string' && u.startsWith('file://') ? make(modelJsonPathFromFileUrl(u)) : null;
  };
  // a router answers null for URLs it does not own (the declared type omits that)
  tf.io.registerSaveRouter(route((p) => fileSystemSaveHandler(p)) as Parameters<typeof tf.io.registerSaveRouter>[0]);
  tf.io.registerLoadRouter(route((p) => fileSystemLoadHandler(p)) as Parameters<typeof tf.io.registerLoadRouter>[0]);
}
