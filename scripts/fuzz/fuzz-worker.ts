// The fuzz worker thread: runs the cases its parent sends, one at a time, and reports each one
// before it starts (so that a case that hangs or kills the thread is still known by its parent).

import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import * as fs from 'node:fs';
import { prepareCase, runCase, seedsFor, writeCase } from './fuzz-case.js';
import { FuzzFormat, SeedManifestEntry, loadSeed } from './seeds.js';

export interface FuzzWorkerData {
  format: FuzzFormat;
  seedDir: string;
  seeds: SeedManifestEntry[];
  runSeed: number;
  workDir: string;
}

export type FuzzWorkerMessage =
  | { type: 'start'; index: number; seed: string; desc: string }
  | { type: 'done'; index: number; outcome: 'ok' | 'error' | 'crash'; ms: number; message?: string };

if (parentPort && workerData && (workerData as { fuzzWorker?: boolean }).fuzzWorker) {
  const data = workerData as FuzzWorkerData;
  const seeds = seedsFor(data.format, data.seeds.map((e) => loadSeed(data.seedDir, e)));
  const port = parentPort;
  port.on('message', (index: number) => {
    void (async () => {
      const c = prepareCase(data.format, seeds, data.runSeed, index);
      port.postMessage({ type: 'start', index, seed: c.seed, desc: c.desc } satisfies FuzzWorkerMessage);
      const dir = path.join(data.workDir, `c${index}`);
      const seed = seeds.find((s) => s.name === c.seed);
      if (!seed) throw new Error(`seed ${c.seed} vanished`);
      writeCase(seed, c, dir);
      const r = await runCase(data.format, c, dir, data.runSeed, index);
      fs.rmSync(dir, { recursive: true, force: true });
      port.postMessage({ type: 'done', index, ...r } satisfies FuzzWorkerMessage);
    })();
  });
}
