// Which ONNX Runtime execution provider runs a model, and why. onnxruntime-node 1.30 (linux-x64)
// carries the WebGPU provider inside libonnxruntime.so (its own Dawn); the CUDA provider exists
// only when ORT's CUDA binaries were installed beside the binding
// (`npm install onnxruntime-node --onnxruntime-node-install=cuda12`); the CPU provider always.
// Nodes a GPU provider cannot run fall back to the CPU provider inside ORT (that is ORT's own
// partitioning, not ours), so "ran on webgpu" means the session was created with it.
//
// 'auto' takes hardware only: CUDA when its provider loads, else WebGPU when Dawn sees a
// hardware adapter (a software one, lavapipe, is orders of magnitude slower than the CPU
// provider), else CPU, naming what it passed over. A provider asked for by name runs or fails
// with an error that says what was tried. No option: the CPU provider (or PRUNESCOPE_EP).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import type * as ort from 'onnxruntime-node';
import { describeAdapter, GpuAdapterSummary, probeWebGpuAdapter } from './webgpu-adapter.js';

export type OrtEpPreference = 'auto' | 'cpu' | 'webgpu' | 'cuda';
export const ORT_EP_PREFERENCES: readonly OrtEpPreference[] = ['auto', 'cpu', 'webgpu', 'cuda'];

/** How the provider that ran was picked. */
export type ExecutionSelection =
  /** named by the user (--ep, PRUNESCOPE_EP) */
  | 'forced'
  /** 'auto' found a hardware accelerator */
  | 'auto'
  /** 'auto' found none and ran on the CPU; `reason` says why each was passed over */
  | 'fallback'
  /** nothing was asked: the CPU provider */
  | 'default';

/** The provider (ORT) or backend (TF.js) that actually ran a model, and why. Plain JSON. */
export interface ExecutionProviderReport {
  /** 'cpu' | 'webgpu' | 'cuda' for ORT; the TF.js backend name for TF.js models */
  name: string;
  /** what was asked for ('auto', a name, or 'default') */
  requested: string;
  selection: ExecutionSelection;
  reason: string;
  /** the WebGPU adapter as Dawn sees it (name, architecture, software or not) */
  adapter?: GpuAdapterSummary;
}

/** A provider asked for by name cannot run this model here. */
export class ExecutionProviderUnavailableError extends Error {
  constructor(
    readonly provider: OrtEpPreference,
    readonly tried: string[],
  ) {
    super(`the ONNX Runtime execution provider '${provider}' was asked for and cannot run here (tried: ${tried.join('; ')}). Use --ep cpu, or --ep auto to take the best that works`);
    this.name = 'ExecutionProviderUnavailableError';
  }
}

export function isOrtEpPreference(v: string): v is OrtEpPreference {
  return (ORT_EP_PREFERENCES as readonly string[]).includes(v);
}

/** PRUNESCOPE_EP when it names a provider (or 'auto'), else undefined (= the CPU provider). */
export function defaultOrtEpPreference(): OrtEpPreference | undefined {
  const env = process.env.PRUNESCOPE_EP;
  return env && isOrtEpPreference(env) ? env : undefined;
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n')[0].slice(0, 300);
}

/** The folder of onnxruntime-node's native binding (where ORT looks for provider libraries). */
export function ortBindingDir(): string | undefined {
  try {
    const pkg = createRequire(__filename).resolve('onnxruntime-node/package.json');
    const dir = path.join(path.dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
    return fs.existsSync(dir) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** Whether ORT's CUDA provider library is installed; a reason when it is not. */
export function ortCudaProvider(): { installed: true; file: string } | { installed: false; reason: string } {
  const dir = ortBindingDir();
  if (!dir) return { installed: false, reason: 'onnxruntime-node binding folder not found' };
  const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  const file = path.join(dir, lib);
  if (fs.existsSync(file)) return { installed: true, file };
  return {
    installed: false,
    reason: `ORT's CUDA provider is not installed (no ${lib} in ${dir}; install with: npm install onnxruntime-node --onnxruntime-node-install=cuda12)`,
  };
}

type OrtModule = typeof ort;

/**
 * Creates a session on the provider `prefer` asks for (undefined: PRUNESCOPE_EP, else CPU) and
 * reports which one it is and why. `create` errors of the CPU provider are returned as thrown
 * by ORT (the caller names the file); a forced provider that fails throws
 * ExecutionProviderUnavailableError.
 */
export async function createOrtSession(
  ortModule: OrtModule,
  file: string,
  options: ort.InferenceSession.SessionOptions,
  prefer: OrtEpPreference | undefined = defaultOrtEpPreference(),
): Promise<{ session: ort.InferenceSession; provider: ExecutionProviderReport }> {
  // ORT's own warnings (graph optimizer notes on Loop bodies of nn.EmbeddingBag exports, ...) go
  // straight to stderr between our lines; errors still reach us as exceptions
  const create = (eps: string[]) => ortModule.InferenceSession.create(file, { logSeverityLevel: 3, ...options, executionProviders: eps });
  if (prefer === undefined || prefer === 'cpu') {
    const session = await create(['cpu']);
    return {
      session,
      provider: prefer === 'cpu'
        ? { name: 'cpu', requested: 'cpu', selection: 'forced', reason: 'the CPU provider was asked for' }
        : { name: 'cpu', requested: 'default', selection: 'default', reason: 'the CPU provider (the default; --ep auto tries CUDA, then WebGPU on a hardware adapter)' },
    };
  }
  const notes: string[] = [];
  const forced = prefer !== 'auto';

  if (prefer === 'cuda' || prefer === 'auto') {
    const cuda = ortCudaProvider();
    if (!cuda.installed) notes.push(`cuda: ${cuda.reason}`);
    else {
      try {
        const session = await create(['cuda']);
        return { session, provider: { name: 'cuda', requested: prefer, selection: forced ? 'forced' : 'auto', reason: `ORT's CUDA provider (${cuda.file})` } };
      } catch (e) {
        notes.push(`cuda: the provider did not start: ${firstLine(e)}`);
      }
    }
  }

  if (prefer === 'webgpu' || prefer === 'auto') {
    // Dawn's view of the adapter (ORT's WebGPU provider has its own Dawn and picks the same way);
    // without the `webgpu` package a forced run still goes ahead, unnamed
    const probe = await probeWebGpuAdapter({ hardwareOnly: !forced });
    const adapter = probe.adapter;
    if (!forced && !adapter) notes.push(`webgpu: ${probe.reason ?? 'no adapter'}`);
    else if (!forced && adapter?.software) notes.push(`webgpu: the adapter is ${describeAdapter(adapter)}, a CPU driver much slower than the CPU provider`);
    else {
      try {
        const session = await create(['webgpu']);
        const on = adapter ? describeAdapter(adapter) : `an adapter Dawn's probe could not name (${probe.reason ?? 'unknown'})`;
        const caveat = adapter?.software ? ': a SOFTWARE adapter (CPU): its figures are not GPU figures' : '';
        return {
          session,
          provider: { name: 'webgpu', requested: prefer, selection: forced ? 'forced' : 'auto', reason: `ORT's WebGPU provider on ${on}${caveat}`, adapter },
        };
      } catch (e) {
        notes.push(`webgpu: the provider did not start${adapter ? ` on ${describeAdapter(adapter)}` : ''}: ${firstLine(e)}`);
      }
    }
  }

  if (forced) throw new ExecutionProviderUnavailableError(prefer, notes);
  const session = await create(['cpu']);
  return { session, provider: { name: 'cpu', requested: 'auto', selection: 'fallback', reason: `no hardware accelerator for ORT here, so the CPU provider: ${notes.join('; ')}` } };
}
