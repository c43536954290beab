// Fuzz harness for the model and data readers: byte-level and structural mutations of real
// fixture files (see seeds.ts, mutate-*.ts) fed to the public readers in a worker thread. Every
// case must end as 'ok' or as an intentional error (ModelFileError, or an Error naming the file);
// anything else is a CRASH, and a case that outlives its time limit (twice) is a HANG.
//
// CLI: node out/scripts/fuzz/fuzz.js --format onnx|tfjs-json|tfjs-shards|csv|all [--cases N]
//      [--seed S] [--time-limit-ms MS]        exits 1 when any crash or hang was found.
//      ... --format F --seed S --case N       re-runs one case in this thread, full stack shown.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { analyzeModel } from '../../src/core/analysis/analyze-model.js';
import { readInteractions } from '../../src/core/eval/interactions.js';
import { readModel } from '../../src/core/model/read-model.js';
import { isIntentional, prepareCase, seedsFor, writeCase } from './fuzz-case.js';
import { FuzzWorkerData, FuzzWorkerMessage } from './fuzz-worker.js';
import { FUZZ_FORMATS, FuzzFormat, Seed, buildSeeds, loadSeed } from './seeds.js';

export interface FuzzOptions {
  format: FuzzFormat;
  cases: number;
  seed?: number;
  /** per case; a case over it is re-run once in a fresh worker with twice the limit */
  timeLimitMs?: number;
  /** heap limit of the worker thread, MB (default 2048) */
  workerHeapMb?: number;
  /** called every `every` cases */
  onProgress?: (done: number, total: number) => void;
}

export interface FuzzFinding {
  index: number;
  seed: string;
  desc: string;
  message: string;
}

export interface FuzzSummary {
  format: FuzzFormat;
  cases: number;
  ok: number;
  errors: number;
  crashes: FuzzFinding[];
  hangs: FuzzFinding[];
  slowestMs: number;
  slowest?: { index: number; seed: string; desc: string };
  runSeed: number;
  wallMs: number;
}

const DEFAULT_TIME_LIMIT_MS = 20_000;

class CaseRunner {
  private worker?: Worker;
  private readonly data: FuzzWorkerData & { fuzzWorker: true };
  private readonly heapMb: number;

  constructor(data: FuzzWorkerData, heapMb: number) {
    this.data = { ...data, fuzzWorker: true };
    this.heapMb = heapMb;
  }

  private start(): Worker {
    const w = new Worker(path.join(__dirname, 'fuzz-worker.js'), {
      workerData: this.data,
      resourceLimits: { maxOldGenerationSizeMb: this.heapMb },
      stdout: true,
      stderr: true,
    });
    // the readers must not print; drain the pipes so a chatty case cannot block the thread
    w.stdout.resume();
    w.stderr.resume();
    w.unref();
    return w;
  }

  /** Runs one case; resolves with the worker's report, a hang, or the worker's death. */
  run(index: number, limitMs: number): Promise<{ start?: { seed: string; desc: string }; done?: FuzzWorkerMessage & { type: 'done' }; hang?: boolean; died?: string }> {
    const w = (this.worker ??= this.start());
    return new Promise((resolve) => {
      let start: { seed: string; desc: string } | undefined;
      const finish = (r: { done?: FuzzWorkerMessage & { type: 'done' }; hang?: boolean; died?: string }): void => {
        clearTimeout(timer);
        w.off('message', onMsg);
        w.off('error', onError);
        w.off('exit', onExit);
        resolve({ start, ...r });
      };
      const onMsg = (m: FuzzWorkerMessage): void => {
        if (m.index !== index) return;
        if (m.type === 'start') start = { seed: m.seed, desc: m.desc };
        else finish({ done: m });
      };
      const onError = (e: Error): void => {
        this.worker = undefined;
        void w.terminate();
        finish({ died: `worker died: ${e.name}: ${e.message}` });
      };
      const onExit = (code: number): void => {
        this.worker = undefined;
        finish({ died: `worker exited with code ${code}` });
      };
      const timer = setTimeout(() => {
        this.worker = undefined;
        w.off('exit', onExit);
        void w.terminate();
        finish({ hang: true });
      }, limitMs);
      w.on('message', onMsg);
      w.on('error', onError);
      w.on('exit', onExit);
      w.postMessage(index);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzSummary> {
  const runSeed = (opts.seed ?? 1) >>> 0;
  const limit = opts.timeLimitMs ?? DEFAULT_TIME_LIMIT_MS;
  const t0 = Date.now();
  const { dir: seedDir, seeds } = await buildSeeds();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `prunescope-fuzz-${opts.format}-`));
  const runner = new CaseRunner({ format: opts.format, seedDir, seeds, runSeed, workDir }, opts.workerHeapMb ?? 2048);
  // to name a case that died before its worker could say what it was
  let local: Seed[] | undefined;
  const describe = (i: number): { seed: string; desc: string } => {
    local ??= seedsFor(opts.format, seeds.map((e) => loadSeed(seedDir, e)));
    const c = prepareCase(opts.format, local, runSeed, i);
    return { seed: c.seed, desc: c.desc };
  };
  const s: FuzzSummary = { format: opts.format, cases: 0, ok: 0, errors: 0, crashes: [], hangs: [], slowestMs: 0, runSeed, wallMs: 0 };
  try {
    for (let i = 0; i < opts.cases; i++) {
      let r = await runner.run(i, limit);
      if (r.hang) r = await runner.run(i, limit * 2); // a loaded machine gets a second chance
      const where = { index: i, ...(r.start ?? (r.done ? { seed: '?', desc: '?' } : describe(i))) };
      s.cases++;
      if (r.hang) s.hangs.push({ ...where, message: `no answer within ${limit * 2} ms` });
      else if (r.died) s.crashes.push({ ...where, message: r.died });
      else if (r.done) {
        if (r.done.ms > s.slowestMs) {
          s.slowestMs = r.done.ms;
          s.slowest = where;
        }
        if (r.done.outcome === 'ok') s.ok++;
        else if (r.done.outcome === 'error') s.errors++;
        else s.crashes.push({ ...where, message: r.done.message ?? '' });
      }
      if (opts.onProgress && (i + 1) % 500 === 0) opts.onProgress(i + 1, opts.cases);
    }
  } finally {
    await runner.close();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  s.wallMs = Date.now() - t0;
  return s;
}

export function summaryLine(s: FuzzSummary): string {
  return (
    `${s.format}: cases ${s.cases}, ok ${s.ok}, intentional errors ${s.errors}, crashes = ${s.crashes.length}, ` +
    `hangs = ${s.hangs.length}, slowest case ${s.slowestMs.toFixed(0)} ms` +
    (s.slowest ? ` (#${s.slowest.index} ${s.slowest.seed}: ${s.slowest.desc.slice(0, 80)})` : '') +
    ` [seed ${s.runSeed}, ${(s.wallMs / 1000).toFixed(0)} s]`
  );
}

function parseArgs(argv: string[]): { formats: FuzzFormat[]; cases: number; seed: number; timeLimitMs: number } {
  const get = (k: string): string | undefined => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const f = get('--format') ?? 'all';
  const formats = f === 'all' ? [...FUZZ_FORMATS] : (f.split(',') as FuzzFormat[]);
  for (const x of formats) if (!FUZZ_FORMATS.includes(x)) throw new Error(`unknown format ${x}; one of ${FUZZ_FORMATS.join(', ')}, all`);
  return { formats, cases: Number(get('--cases') ?? 1000), seed: Number(get('--seed') ?? 1), timeLimitMs: Number(get('--time-limit-ms') ?? DEFAULT_TIME_LIMIT_MS) };
}

/** Runs case `index` in this thread and prints what happened, with the full stack of any error. */
export async function reproduceCase(format: FuzzFormat, runSeed: number, index: number): Promise<void> {
  const { dir: seedDir, seeds: entries } = await buildSeeds();
  const seeds = seedsFor(format, entries.map((e) => loadSeed(seedDir, e)));
  const c = prepareCase(format, seeds, runSeed, index);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-fuzz-repro-'));
  writeCase(seeds.find((x) => x.name === c.seed) as Seed, c, dir);
  console.log(`case #${index} ${c.seed}: ${c.desc}\nfiles in ${dir}`);
  const file = path.join(dir, c.entry);
  try {
    if (format === 'csv') await readInteractions(file, { extraColumns: 'all', userVocab: 1000, itemVocab: 1000 });
    else await analyzeModel(await readModel(file), { threads: 1 });
    console.log('ok');
  } catch (e) {
    console.log(isIntentional(e, dir) ? 'intentional error:' : 'CRASH:', e instanceof Error ? e.stack : e);
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const a = parseArgs(argv);
  const only = argv.indexOf('--case');
  if (only >= 0) {
    await reproduceCase(a.formats[0], a.seed, Number(argv[only + 1]));
    return 0;
  }
  let bad = 0;
  for (const format of a.formats) {
    const s = await runFuzz({
      format,
      cases: a.cases,
      seed: a.seed,
      timeLimitMs: a.timeLimitMs,
      onProgress: (d, n) => process.stderr.write(`  ${format}: ${d}/${n}\n`),
    });
    console.log(summaryLine(s));
    for (const c of s.crashes) console.log(`  CRASH #${c.index} (--seed ${s.runSeed}) ${c.seed}: ${c.desc}\n    ${c.message}`);
    for (const h of s.hangs) console.log(`  HANG #${h.index} (--seed ${s.runSeed}) ${h.seed}: ${h.desc}`);
    bad += s.crashes.length + s.hangs.length;
  }
  return bad > 0 ? 1 : 0;
}

if (require.main === module && /fuzz\.js$/.test(process.argv[1] ?? '')) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e instanceof Error ? e.stack : String(e));
      process.exit(2);
    },
  );
}
