// Picks the fastest TF.js backend that works in this process, at run time.
// Order for 'auto': tfjs-node-gpu, tfjs-node (native TensorFlow; optional, never bundled, never
// required at top level: their install needs a download that offline installs cannot do),
// WebGPU (extension point, see tryWebGpu), WASM (single-threaded in Node, SIMD), CPU.
// Our UnsortedSegmentSum kernels are installed for WASM and CPU so that models with
// embeddings can be trained on either (see segment-sum-kernel.ts).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import type * as WasmBackendModule from '@tensorflow/tfjs-backend-wasm';
import { installSegmentSumKernels } from './segment-sum-kernel.js';

export type TfjsBackendPreference = 'auto' | 'tfjs-node' | 'webgpu' | 'wasm' | 'cpu';

export interface TfjsBackendChoice {
  /** tf.getBackend() after the choice: 'tensorflow' (tfjs-node / -gpu), 'webgpu', 'wasm' or 'cpu' */
  backend: string;
  /** why this one: what was tried before it and why it was passed over */
  reason: string;
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

// Extension point. A WebGPU backend in Node needs `webgpu` (Dawn binding) and
// `@tensorflow/tfjs-backend-webgpu`, neither of which is a dependency yet. When they are added:
// install the globals shim, require the backend, setBackend('webgpu'), and reject fallback
// (software) adapters in 'auto' mode since WASM is faster than them (ENGINE_FACTS.md).
async function tryWebGpu(notes: string[]): Promise<TfjsBackendChoice | undefined> {
  notes.push('webgpu not supported in this build (no WebGPU binding bundled)');
  return undefined;
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
  current = chooseBackend(prefer, options);
  return current;
}

async function chooseBackend(prefer: TfjsBackendPreference, options: InitTfjsOptions): Promise<TfjsBackendChoice> {
  installSegmentSumKernels(['cpu', 'wasm']);
  // PROD silences the CPU backend's "install tfjs-node" banner (we already chose) and TF.js'
  // debug-mode checks; a caller that wants debug mode can set it back after this.
  tf.env().set('PROD', true);
  const notes: string[] = [];
  const order: Array<Exclude<TfjsBackendPreference, 'auto'>> =
    prefer === 'auto'
      ? ['tfjs-node', 'webgpu', 'wasm', 'cpu']
      : [prefer, ...(['tfjs-node', 'webgpu', 'wasm', 'cpu'] as const).filter((b) => b !== prefer && b !== 'tfjs-node' && b !== 'webgpu')];
  for (const candidate of order) {
    let chosen: TfjsBackendChoice | undefined;
    if (candidate === 'tfjs-node') chosen = await tryTfjsNode(notes);
    else if (candidate === 'webgpu') chosen = await tryWebGpu(notes);
    else if (candidate === 'wasm') chosen = await tryWasm(notes, options.wasmDir);
    else if (await trySetBackend('cpu')) chosen = { backend: 'cpu', reason: 'plain JavaScript CPU backend' };
    else notes.push('cpu failed to initialise');
    if (chosen) {
      const asked = prefer === 'auto' ? '' : `asked for ${prefer}; `;
      const passed = notes.length > 0 ? ` (passed over: ${notes.join('; ')})` : '';
      return { backend: chosen.backend, reason: `${asked}${chosen.reason}${passed}` };
    }
  }
  throw new Error(`no TF.js backend could be initialised: ${notes.join('; ')}`);
}
