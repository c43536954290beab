// One fuzz case: derive the mutation from (seed, index), write the damaged files into a folder of
// their own, run the public readers (readModel then analyzeModel, or readInteractions), and say
// how it ended. Runs inside the fuzz worker thread (fuzz-worker.ts) so that a hang can be killed.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeModel } from '../../src/core/analysis/analyze-model.js';
import { readInteractions } from '../../src/core/eval/interactions.js';
import { ModelFileError } from '../../src/core/model/ir.js';
import { readModel } from '../../src/core/model/read-model.js';
import { Rng, caseSeed } from './rng.js';
import { Mutated, plainMutation, protoMutation } from './mutate-bytes.js';
import { onnxStructuralMutation } from './mutate-onnx.js';
import { ShardAction, mutateCsv, mutateModelJson, mutateShards } from './mutate-text.js';
import { FuzzFormat, Seed } from './seeds.js';

export type Outcome = 'ok' | 'error' | 'crash';

export interface CaseResult {
  outcome: Outcome;
  ms: number;
  /** the error message (for 'error' and 'crash') */
  message?: string;
}

export interface PreparedCase {
  seed: string;
  desc: string;
  actions: ShardAction[];
  entry: string;
}

/** Seeds by the kind of file each format fuzzes. */
export function seedsFor(format: FuzzFormat, all: Seed[]): Seed[] {
  const kind = format === 'onnx' ? /^onnx-/ : format === 'csv' ? /^csv-/ : /^tfjs-/;
  return all.filter((s) => kind.test(s.name));
}

function withFile(seed: Seed, name: string, m: Mutated): { actions: ShardAction[]; desc: string } {
  return { actions: [{ kind: 'bytes', name, bytes: m.bytes }], desc: `${name}: ${m.desc}` };
}

/** The mutation of case `index`: deterministic in (runSeed, index). */
export function prepareCase(format: FuzzFormat, seeds: Seed[], runSeed: number, index: number): PreparedCase {
  const rng = new Rng(caseSeed(runSeed, index));
  const seed = rng.pick(seeds);
  let r: { actions: ShardAction[]; desc: string } | undefined;
  const entryBytes = seed.files.get(seed.entry) as Uint8Array;
  if (format === 'onnx') {
    const dataFiles = [...seed.files.keys()].filter((f) => f !== seed.entry);
    const k = rng.int(10);
    if (k < 4) {
      const m = protoMutation(rng, entryBytes);
      if (m) r = withFile(seed, seed.entry, m);
    } else if (k < 7) {
      const m = onnxStructuralMutation(rng, entryBytes, dataFiles);
      if (m) r = withFile(seed, seed.entry, m);
    } else if (k === 7 && dataFiles.length > 0) {
      const d = rng.pick(dataFiles);
      r = withFile(seed, d, plainMutation(rng, seed.files.get(d) as Uint8Array));
    } else if (k === 8 && rng.bool(0.1)) {
      // the model or its data file is a named pipe, a device link, or a folder
      const name = dataFiles.length > 0 && rng.bool() ? rng.pick(dataFiles) : seed.entry;
      const a = rng.int(3);
      r = {
        actions: [a === 0 ? { kind: 'fifo', name } : a === 1 ? { kind: 'symlink', name, target: '/dev/zero' } : { kind: 'folder', name }],
        desc: `${name}: ${['a named pipe', 'a link to /dev/zero', 'a folder'][a]}`,
      };
    }
    if (!r) r = withFile(seed, seed.entry, plainMutation(rng, entryBytes));
  } else if (format === 'tfjs-json') {
    r = withFile(seed, seed.entry, mutateModelJson(rng, entryBytes));
  } else if (format === 'tfjs-shards') {
    const shards = [...seed.files].filter(([n]) => n !== seed.entry).map(([name, bytes]) => ({ name, bytes }));
    r = mutateShards(rng, shards);
  } else {
    r = withFile(seed, seed.entry, mutateCsv(rng, entryBytes));
  }
  return { seed: seed.name, desc: r.desc, actions: r.actions, entry: seed.entry };
}

/** Writes the seed's files with the case's actions applied into `dir` (created fresh). */
export function writeCase(seed: Seed, c: PreparedCase, dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const changed = new Set(c.actions.map((a) => a.name));
  for (const [name, bytes] of seed.files) if (!changed.has(name)) fs.writeFileSync(path.join(dir, name), bytes);
  for (const a of c.actions) {
    const p = path.join(dir, a.name);
    fs.rmSync(p, { recursive: true, force: true });
    if (a.kind === 'bytes') fs.writeFileSync(p, a.bytes);
    else if (a.kind === 'folder') fs.mkdirSync(p);
    else if (a.kind === 'sparse') {
      const fd = fs.openSync(p, 'w');
      fs.ftruncateSync(fd, a.size);
      fs.closeSync(fd);
    } else if (a.kind === 'symlink') fs.symlinkSync(a.target, p);
    else if (a.kind === 'fifo') execFileSync('mkfifo', [p]);
  }
}

/** An intentional error: ModelFileError, or an Error whose message names the file it is about. */
export function isIntentional(e: unknown, dir: string): boolean {
  if (e instanceof ModelFileError) return true;
  return e instanceof Error && e.constructor === Error && e.message.includes(dir);
}

function describeError(e: unknown): string {
  if (e instanceof Error) {
    const stack = (e.stack ?? '').split('\n').slice(1, 5).map((l) => l.trim()).join(' | ');
    return `${e.name}: ${e.message.slice(0, 300)}${stack ? ` [${stack}]` : ''}`;
  }
  return `non-Error thrown: ${String(e).slice(0, 200)}`;
}

/** Runs the public readers on the case's files. */
export async function runCase(format: FuzzFormat, c: PreparedCase, dir: string, runSeed: number, index: number): Promise<CaseResult> {
  const file = path.join(dir, c.entry);
  const t0 = performance.now();
  try {
    if (format === 'csv') {
      const rng = new Rng(caseSeed(runSeed ^ 0x5bd1e995, index));
      await readInteractions(file, {
        extraColumns: rng.bool(0.5) ? 'all' : undefined,
        userVocab: rng.bool(0.7) ? 1000 : undefined,
        itemVocab: rng.bool(0.7) ? 1000 : undefined,
        requireLabel: rng.bool(0.3),
      });
    } else {
      const ir = await readModel(file);
      await analyzeModel(ir, { threads: 1 });
    }
    return { outcome: 'ok', ms: performance.now() - t0 };
  } catch (e) {
    const ms = performance.now() - t0;
    if (isIntentional(e, dir)) return { outcome: 'error', ms, message: (e as Error).message.slice(0, 300) };
    return { outcome: 'crash', ms, message: describeError(e) };
  }
}
