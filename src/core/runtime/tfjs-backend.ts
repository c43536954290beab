// Picks the fastest TF.js backend that works in this process, at run time.
// Order for 'auto': tfjs-node-gpu, tfjs-node (native TensorFlow; optional, never bundled, never
// required at top level: their install needs a download that offline installs cannot do),
// WebGPU on a HARDWARE adapter (Dawn through the `webgpu` package, loaded on first use; a
// software adapter such as lavapipe is slower than WASM and is never taken by 'auto'), WASM
// (single-threaded in Node, SIMD), CPU. A preference other than 'auto' is that backend or an
// error that says what was tried: never a silent fallback.
// Our UnsortedSegmentSum kernels are installed for WASM and CPU so that models with
// embeddings can be trained on either (see segment-sum-kernel.ts).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import type * as WasmBackendModule from '@tensorflow/tfjs-backend-wasm';
import { installSegmentSumKernels } from './segment-sum-kernel.js';
import { describeAdapter, GpuAdapterSummary, probeWebGpuAdapter, setSoftwareAdapterAllowed } from './webgpu-adapter.js';

export type TfjsBackendPreference = 'auto' | 'tfjs-node' | 'webgpu' | 'wasm' | 'cpu';

export interface TfjsBackendChoice {
  /** tf.getBackend() after the choice: 'tensorflow' (tfjs-node / -gpu), 'webgpu', 'wasm' or 'cpu' */
  backend: string;
  /** why this one: what was tried before it and why it was passed over */
  reason: string;
  /** the preference it answers ('auto' or the backend that was forced) */
  requested?: TfjsBackendPreference;
  /** the WebGPU adapter, when backend is 'webgpu' (software: a CPU driver, not GPU figures) */
  adapter?: GpuAdapterSummary;
}

/** A backend was forced (--backend, PRUNESCOPE_BACKEND, the setting) and cannot run here. */
export class BackendUnavailableError extends Error {
  constructor(
    readonly backend: TfjsBackendPreference,
    readonly tried: string[],
  ) {
    super(
      `the TF.js backend '${backend}' was asked for and is not available here (tried: ${tried.join('; ')}). ` +
        `Choose another backend (--backend, PRUNESCOPE_BACKEND or the prunescope.backend setting; 'auto' takes the best that works)`,
    );
    this.name = 'BackendUnavailableError';
  }
}

export interface InitTfjsOptions {
  /** folder holding tfjs-backend-wasm*.wasm; overrides PRUNESCOPE_WASM_DIR and the lookup */
  wasmDir?: string;
}

const WASM_FILE = 'tfjs-backend-wasm-simd.wasm';

// A module name held in a variable: bundlers leave the require alone instead of failing the
// build on a package that is not installed.
function optionalRequire(name: string): unknown {
  const req = createRequire(__filename);
  return req(name);
}

function errorText(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n')[0].slice(0, 200);
}

/**
 * The folder with the .wasm files: explicit option, then $PRUNESCOPE_WASM_DIR, then next to
 * this file (a bundle ships them beside itself), then the installed package's dist/.
 */
export function resolveWasmDir(explicit?: string): { dir: string; from: string } | undefined {
  const candidates: Array<{ dir: string | undefined; from: string }> = [
    { dir: explicit, from: 'option wasmDir' },
    { dir: process.env.PRUNESCOPE_WASM_DIR, from: 'PRUNESCOPE_WASM_DIR' },
    { dir: __dirname, from: 'next to the bundle' },
  ];
  try {
    const main = createRequire(__filename).resolve('@tensorflow/tfjs-backend-wasm');
    candidates.push({ dir: path.dirname(main), from: 'node_modules/@tensorflow/tfjs-backend-wasm' });
  } catch {
    // not resolvable (bundled without node_modules): the other candidates decide
  }
  for (const c of candidates) {
    if (c.dir && fs.existsSync(path.join(c.dir, WASM_FILE))) return { dir: path.resolve(c.dir), from: c.from };
  }
  return undefined;
}

async function trySetBackend(name: string): Promise<boolean> {
  try {
    const ok = await tf.setBackend(name);
    // setBackend may resolve false and leave getBackend() pointing at the failed one
    return ok && tf.getBackend() === name;
  } catch {
    return false;
  }
}

async function tryTfjsNode(notes: string[]): Promise<TfjsBackendChoice | undefined> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      optionalRequire(pkg);
    } catch (e) {
      notes.push(`${pkg} not available (${errorText(e)})`);
      continue;
    }
    if (await trySetBackend('tensorflow')) {
      return { backend: 'tensorflow', reason: `${pkg} is installed (native TensorFlow)` };
    }
    notes.push(`${pkg} loaded but its 'tensorflow' backend did not initialise`);
  }
  return undefined;
}

/** dataSync() / arraySync() of a tensor whose values are on the GPU, in Node. */
export class WebGpuSyncReadError extends Error {
  constructor() {
    super(
      'TF.js on WebGPU cannot read a GPU tensor synchronously in Node (dataSync/arraySync, or moving it to another backend: ' +
        "the backend's readSync needs a browser's OffscreenCanvas). Read it with `await tensor.data()` (after which dataSync works)",
    );
    this.name = 'WebGpuSyncReadError';
  }
}

const SYNC_READS_EXPLAINED = Symbol.for('prunescope.webgpuSyncReadsExplained');

/**
 * TF.js' WebGPU backend reads synchronously through OffscreenCanvas, which Node lacks: the
 * failure would be "OffscreenCanvas is not defined" from deep inside TF.js. Say what happened
 * and what to do instead. Values already cached on the CPU (uploaded ones, or read once with
 * data()) still read synchronously as before.
 */
function explainSyncReads(backend: unknown): void {
  const proto = Object.getPrototypeOf(backend) as Record<string | symbol, unknown> | null;
  if (!proto || proto[SYNC_READS_EXPLAINED] || typeof proto.readSync !== 'function') return;
  const readSync = proto.readSync as (this: unknown, dataId: object) => unknown;
  proto.readSync = function (this: { tensorMap?: { get(id: object): { values?: unknown; dtype?: string; complexTensorInfos?: unknown } | undefined } }, dataId: object) {
    const d = this.tensorMap?.get(dataId);
    const onGpuOnly = d !== undefined && d.values == null && d.dtype !== 'string' && d.complexTensorInfos == null;
    if (onGpuOnly && typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === 'undefined') throw new WebGpuSyncReadError();
    return readSync.call(this, dataId);
  };
  proto[SYNC_READS_EXPLAINED] = true;
}

/**
 * WebGPU through Dawn. 'auto' (forced = false) takes a hardware adapter only, and not in a worker
 * thread: worker.terminate() with a GPU readback pending aborts the whole process, so GPU jobs
 * run in a child process (jobs/job-runner.ts), where they are asked for by name. Forced takes
 * any adapter, software included (tests exercise the path on lavapipe), and says so.
 */
async function tryWebGpu(notes: string[], forced: boolean): Promise<TfjsBackendChoice | undefined> {
  if (!forced && !isMainThread) {
    notes.push("webgpu not supported in a worker thread under 'auto' (a crash there would take the host process down): ask for backend webgpu to run the job in a child process");
    return undefined;
  }
  const probe = await probeWebGpuAdapter({ hardwareOnly: !forced });
  if (!probe.adapter) {
    notes.push(`webgpu not supported here: ${probe.reason ?? 'no adapter'}`);
    return undefined;
  }
  const adapter = probe.adapter;
  if (adapter.software && !forced) {
    notes.push(`webgpu not supported by hardware here: the adapter is ${describeAdapter(adapter)}, a CPU driver slower than WASM`);
    return undefined;
  }
  setSoftwareAdapterAllowed(forced);
  try {
    // required here, not at the top: importing it registers the 'webgpu' backend, which needs
    // navigator.gpu (installed by probeWebGpuAdapter) and must not exist where nobody asked for it
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    notes.push(`webgpu: @tensorflow/tfjs-backend-webgpu cannot be loaded (${errorText(e)})`);
    return undefined;
  }
  if (!(await trySetBackend('webgpu'))) {
    notes.push(`webgpu: the TF.js WebGPU backend did not initialise on ${describeAdapter(adapter)}`);
    return undefined;
  }
  explainSyncReads(tf.backend());
  const caveat = adapter.software ? ': a SOFTWARE adapter (CPU), slower than WASM; its figures are not GPU figures' : '';
  return { backend: 'webgpu', reason: `WebGPU (Dawn) on ${describeAdapter(adapter)}${caveat}`, adapter };
}

async function tryWasm(notes: string[], wasmDir?: string): Promise<TfjsBackendChoice | undefined> {
  const found = resolveWasmDir(wasmDir);
  if (!found) {
    notes.push(`wasm: ${WASM_FILE} not found (set PRUNESCOPE_WASM_DIR)`);
    return undefined;
  }
  // Required here, not at the top: importing the package registers 'wasm' as the highest
  // priority backend, after which any tf op run before an async init throws. Modules that only
  // import this file must not change what plain TF.js code gets.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof WasmBackendModule;
  wasm.setWasmPaths(found.dir + path.sep);
  if (await trySetBackend('wasm')) {
    return { backend: 'wasm', reason: `WASM (SIMD, single thread) with binaries from ${found.from}` };
  }
  notes.push(`wasm failed to initialise from ${found.dir}`);
  return undefined;
}

let current: Promise<TfjsBackendChoice> | undefined;
let currentPreference: TfjsBackendPreference | undefined;

const PREFERENCES: readonly TfjsBackendPreference[] = ['auto', 'tfjs-node', 'webgpu', 'wasm', 'cpu'];

/** The process's default preference: PRUNESCOPE_BACKEND (the CLI and the extension's jobs set it), else 'auto'. */
export function defaultBackendPreference(): TfjsBackendPreference {
  const env = process.env.PRUNESCOPE_BACKEND;
  return env && (PREFERENCES as readonly string[]).includes(env) ? (env as TfjsBackendPreference) : 'auto';
}

/**
 * Chooses and activates a backend. Repeated calls with the same preference return the first
 * answer; a different preference switches backend. Without a preference, the backend already
 * chosen stays (methods call it that way, so a user's choice made earlier holds), or the
 * process default is chosen.
 */
export function initTfjs(prefer?: TfjsBackendPreference, options: InitTfjsOptions = {}): Promise<TfjsBackendChoice> {
  if (prefer === undefined) {
    if (current) return current;
    prefer = defaultBackendPreference();
  }
  if (current && currentPreference === prefer) return current;
  currentPreference = prefer;
  const attempt = chooseBackend(prefer, options);
  current = attempt;
  // a failed choice is not remembered: the next call tries again
  attempt.catch(() => {
    if (current === attempt) {
      current = undefined;
      currentPreference = undefined;
    }
  });
  return attempt;
}

async function chooseBackend(prefer: TfjsBackendPreference, options: InitTfjsOptions): Promise<TfjsBackendChoice> {
  installSegmentSumKernels(['cpu', 'wasm']);
  // PROD silences the CPU backend's "install tfjs-node" banner (we already chose) and TF.js'
  // debug-mode checks; a caller that wants debug mode can set it back after this.
  tf.env().set('PROD', true);
  const notes: string[] = [];
  const order: Array<Exclude<TfjsBackendPreference, 'auto'>> = prefer === 'auto' ? ['tfjs-node', 'webgpu', 'wasm', 'cpu'] : [prefer];
  for (const candidate of order) {
    let chosen: TfjsBackendChoice | undefined;
    if (candidate === 'tfjs-node') chosen = await tryTfjsNode(notes);
    else if (candidate === 'webgpu') chosen = await tryWebGpu(notes, prefer === 'webgpu');
    else if (candidate === 'wasm') chosen = await tryWasm(notes, options.wasmDir);
    else if (await trySetBackend('cpu')) chosen = { backend: 'cpu', reason: 'plain JavaScript CPU backend' };
    else notes.push('cpu failed to initialise');
    if (chosen) {
      const asked = prefer === 'auto' ? '' : `asked for ${prefer}; `;
      const passed = notes.length > 0 ? ` (passed over: ${notes.join('; ')})` : '';
      return { ...chosen, requested: prefer, reason: `${asked}${chosen.reason}${passed}` };
    }
  }
  if (prefer !== 'auto') throw new BackendUnavailableError(prefer, notes);
  throw new Error(`no TF.js backend could be initialised: ${notes.join('; ')}`);
}
