// A second instance of the statistics kernel's WebAssembly module (kernels/stats-kernel.wat),
// with its own memory, for jobs that run within one synchronous call: exact selection
// (magnitude-select.ts), eigenvalues (linalg.ts), the row-norm summary (tensor-report.ts). The statistics instance cannot serve them:
// an analysis pass keeps its chunks in that memory across awaits. Its memory is grown once, to
// PRIVATE_KERNEL_BYTES, and never again, so views of it stay valid.

import { STATS_KERNEL_WASM_BASE64 } from './kernels/stats-kernel-wasm.js';

/** bytes of the private instance's memory (the selection's layout needs ~9.1 MB) */
export const PRIVATE_KERNEL_BYTES = 10 * 1024 * 1024;

export interface PrivateKernel {
  buffer: ArrayBuffer;
  hist16: (p: number, n: number, hist: number) => number;
  low16: (p: number, n: number, slot: number, low: number) => void;
  sum4: (hist: number) => void;
  locate: (h: number, nb: number, k: number, out: number) => number;
  tridiag: (V: number, d: number, e: number, n: number) => void;
  ql: (d: number, e: number, n: number) => void;
  heat: (p: number, n: number, per: number, thr: number, out: number) => number;
}

let instance: PrivateKernel | null | undefined;

/** The private instance (created on first use); null where WebAssembly SIMD is missing. */
export function privateKernel(): PrivateKernel | null {
  if (instance === undefined) {
    try {
      const ex = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(STATS_KERNEL_WASM_BASE64, 'base64')), {}).exports as unknown as Omit<
        PrivateKernel,
        'buffer'
      > & { memory: WebAssembly.Memory };
      const have = ex.memory.buffer.byteLength;
      if (have < PRIVATE_KERNEL_BYTES) ex.memory.grow(Math.ceil((PRIVATE_KERNEL_BYTES - have) / 65536));
      instance = {
        buffer: ex.memory.buffer,
        hist16: ex.hist16,
        low16: ex.low16,
        sum4: ex.sum4,
        locate: ex.locate,
        tridiag: ex.tridiag,
        ql: ex.ql,
        heat: ex.heat,
      };
    } catch {
      instance = null; // an engine without WebAssembly SIMD refuses the module: the JS code serves
    }
  }
  return instance;
}
