// WebGPU in Node through Dawn's binding (the `webgpu` npm package, an ES module with a native
// dawn.node): loaded on first use only, never at import time, so that analysis and the CLI's
// analyze bundle never touch it. One Dawn instance per process (worker threads each get their
// own module instance and so their own Dawn).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
//
// Policy (ENGINE_FACTS.md): a software adapter (Mesa's lavapipe/llvmpipe, SwiftShader: Dawn
// marks them `isFallbackAdapter`, architecture 'software') is slower than WASM on the CPU, so
// 'auto' never takes one; a user or a test that forces WebGPU may.

/** What Dawn says about an adapter, plus our verdict. Plain JSON: it goes into reports. */
export interface GpuAdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** a CPU implementation (fallback adapter, architecture 'software', or a known software driver) */
  software: boolean;
}

export interface WebGpuProbe {
  adapter?: GpuAdapterSummary;
  /** why there is no adapter (package missing, no driver, Dawn's message) */
  reason?: string;
}

// The few WebGPU shapes used here (the DOM lib of our TypeScript has no WebGPU types).
interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface AdapterLike {
  info?: AdapterInfoLike;
  isFallbackAdapter?: boolean;
}
interface RequestAdapterOptionsLike {
  powerPreference?: 'low-power' | 'high-performance';
  forceFallbackAdapter?: boolean;
}
interface GpuLike {
  requestAdapter(options?: RequestAdapterOptionsLike): Promise<AdapterLike | null>;
  getPreferredCanvasFormat?(): string;
  readonly wgslLanguageFeatures?: unknown;
}
interface WebGpuModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

const SOFTWARE_NAMES = /llvmpipe|lavapipe|softpipe|swiftshader|software rasterizer|microsoft basic render/i;

/** True for CPU implementations of WebGPU: never a GPU, whatever the numbers say. */
export function isSoftwareAdapter(info: Pick<GpuAdapterSummary, 'architecture' | 'device' | 'description' | 'isFallbackAdapter'>): boolean {
  return info.isFallbackAdapter || info.architecture.toLowerCase() === 'software' || SOFTWARE_NAMES.test(`${info.device} ${info.description}`);
}

/** e.g. "mesa llvmpipe: Mesa 25.0.7 (LLVM 15.0.6) [software, fallback adapter]". */
export function describeAdapter(a: GpuAdapterSummary): string {
  const name = [a.vendor, a.description || a.device].filter((s) => s).join(' ') || 'unnamed adapter';
  const tags = [a.architecture || 'architecture unknown', a.software ? 'software' : 'hardware', ...(a.isFallbackAdapter ? ['fallback adapter'] : [])];
  return `${name} [${[...new Set(tags)].join(', ')}]`;
}

function summarise(adapter: AdapterLike): GpuAdapterSummary {
  const info = adapter.info ?? {};
  const base = {
    vendor: String(info.vendor ?? ''),
    architecture: String(info.architecture ?? ''),
    device: String(info.device ?? ''),
    description: String(info.description ?? ''),
    isFallbackAdapter: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false),
  };
  return { ...base, software: isSoftwareAdapter(base) };
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n')[0].slice(0, 300);
}

// A real dynamic import (tsc's Node16 output and esbuild both keep import() as it is): `webgpu` is
// an ES module with a native part, external to the bundles. The name is held in a variable so
// that type checking does not pull in its WebGPU type declarations.
const WEBGPU_PACKAGE: string = 'webgpu';

let dawn: Promise<{ gpu: GpuLike } | { error: string }> | undefined;

/**
 * Loads `webgpu` once and installs what TF.js' WebGPU backend expects of a browser:
 * the GPU* globals (GPUBufferUsage, ...) and `navigator.gpu`. Our `navigator.gpu` only hands out
 * adapters allowed by the current policy (see setSoftwareAdapterAllowed).
 */
export function loadDawn(): Promise<{ gpu: GpuLike } | { error: string }> {
  dawn ??= (async () => {
    let mod: WebGpuModule;
    try {
      mod = (await import(WEBGPU_PACKAGE)) as WebGpuModule;
    } catch (e) {
      return { error: `the 'webgpu' package (Dawn for Node) cannot be loaded: ${firstLine(e)}` };
    }
    let gpu: GpuLike;
    try {
      for (const [k, v] of Object.entries(mod.globals)) {
        if (!(k in globalThis)) Object.defineProperty(globalThis, k, { value: v, configurable: true, writable: true });
      }
      gpu = mod.create([]);
    } catch (e) {
      return { error: `Dawn did not start: ${firstLine(e)}` };
    }
    installNavigatorGpu(gpu);
    return { gpu };
  })();
  return dawn;
}

let allowSoftware = false;

/** Whether navigator.gpu may hand a software adapter to TF.js (forced WebGPU only). */
export function setSoftwareAdapterAllowed(allowed: boolean): void {
  allowSoftware = allowed;
}

function installNavigatorGpu(real: GpuLike): void {
  const gated: GpuLike = {
    async requestAdapter(options?: RequestAdapterOptionsLike) {
      const adapter = await real.requestAdapter(options);
      if (!adapter) return null;
      return allowSoftware || !summarise(adapter).software ? adapter : null;
    },
    getPreferredCanvasFormat: () => real.getPreferredCanvasFormat?.() ?? 'rgba8unorm',
    get wgslLanguageFeatures() {
      return real.wgslLanguageFeatures;
    },
  };
  const g = globalThis as { navigator?: object };
  if (g.navigator) {
    // Node >= 21 has its own navigator (a getter on globalThis): add gpu to it
    try {
      Object.defineProperty(g.navigator, 'gpu', { value: gated, configurable: true });
      if ((g.navigator as { gpu?: unknown }).gpu === gated) return;
    } catch {
      // not extensible: replace navigator below
    }
  }
  Object.defineProperty(globalThis, 'navigator', { value: { ...(g.navigator ?? {}), gpu: gated }, configurable: true, writable: true });
}

let probed: Promise<WebGpuProbe> | undefined;

/**
 * The adapter Dawn would give a high-performance request in this process (probed once), or why
 * there is none. Software adapters are returned too, marked `software`: the caller decides.
 * `hardwareOnly` (a choice made for speed, 'auto'): on Linux with no GPU device node Dawn is not
 * asked, since only a software driver could answer, and lavapipe prints two warnings on stderr
 * when asked.
 */
export function probeWebGpuAdapter(opts: { hardwareOnly?: boolean } = {}): Promise<WebGpuProbe> {
  if (opts.hardwareOnly && !probed) {
    const none = noGpuDeviceNode();
    if (none) return Promise.resolve({ reason: none });
  }
  probed ??= (async (): Promise<WebGpuProbe> => {
    // Dawn prints its own two-line warning on stderr when it cannot load the Vulkan loader; on
    // Linux without one there is nothing to find, so it is not asked (and prints nothing)
    const noLoader = missingVulkanLoader();
    if (noLoader) return { reason: noLoader };
    const loaded = await loadDawn();
    if ('error' in loaded) return { reason: loaded.error };
    try {
      const adapter = await loaded.gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) return { reason: 'Dawn found no WebGPU adapter (no Vulkan/Metal/D3D12 driver that it accepts)' };
      return { adapter: summarise(adapter) };
    } catch (e) {
      return { reason: `requesting a WebGPU adapter failed: ${firstLine(e)}` };
    }
  })();
  return probed;
}

/** The folders dlopen searches besides its cache: LD_LIBRARY_PATH, then the trusted ones. */
function loaderSearchDirs(): string[] {
  const multiarch = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  return [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), '/lib', '/usr/lib', '/lib64', '/usr/lib64', `/lib/${multiarch}`, `/usr/lib/${multiarch}`];
}

/**
 * On Linux, a GPU is reached through a device node: /dev/dri/renderD* (Mesa, AMD, Intel),
 * /dev/nvidia* (NVIDIA), /dev/dxg (WSL). With none, the reason; otherwise undefined (other
 * systems, or a node that may lead to a GPU).
 */
export function noGpuDeviceNode(opts: { platform?: NodeJS.Platform; dev?: string } = {}): string | undefined {
  if ((opts.platform ?? process.platform) !== 'linux') return undefined;
  const dev = opts.dev ?? '/dev';
  let names: string[];
  try {
    names = readdirSync(dev);
  } catch {
    return undefined;
  }
  if (names.includes('dxg') || names.some((n) => /^nvidia\d+$/.test(n))) return undefined;
  try {
    if (readdirSync(join(dev, 'dri')).some((n) => n.startsWith('renderD'))) return undefined;
  } catch {
    // no /dev/dri
  }
  return `no GPU device node (${dev}/dri/renderD*, ${dev}/nvidia*, ${dev}/dxg): only a software driver could answer`;
}

/**
 * On Linux, Dawn reaches GPUs through the Vulkan loader (libvulkan.so.1). When the dynamic
 * linker cannot find it (not in its cache, not in a folder it searches), the reason; otherwise
 * undefined (other systems, or a loader that may be there: Dawn is asked).
 */
export function missingVulkanLoader(opts: { platform?: NodeJS.Platform; ldCache?: string; searchDirs?: readonly string[] } = {}): string | undefined {
  if ((opts.platform ?? process.platform) !== 'linux') return undefined;
  const LOADER = 'libvulkan.so.1';
  try {
    if (readFileSync(opts.ldCache ?? '/etc/ld.so.cache').includes(LOADER)) return undefined;
  } catch {
    return undefined; // no cache to read (musl, containers): let Dawn look
  }
  for (const dir of opts.searchDirs ?? loaderSearchDirs()) if (existsSync(join(dir, LOADER))) return undefined;
  return `no Vulkan loader (${LOADER}) on this system, so Dawn has no GPU to reach (Debian: apt-get install libvulkan1 and a Vulkan driver)`;
}
