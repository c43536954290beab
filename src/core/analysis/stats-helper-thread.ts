// A second thread for the fused statistics kernel of big tensors. One thread cannot keep up with
// reading (measured: the fused loop runs at ~0.25-0.3 GB/s, a page-cached read at ~2 GB/s), so
// each piece of rows is split in two: this helper runs the kernel on one half (copied into
// shared memory) while the calling thread runs the other; its accumulators are merged in at the
// end (tensor-stats.ts). The helper runs the kernel's own source (`fusedStatsKernel` uses
// nothing from outside its body but `roundTripRowErrors`, whose declaration, under whatever name
// a minifier gave it, comes along), so it needs no separate bundle entry. Hand-off is by Atomics
// on a shared control block: a round trip costs microseconds, not a postMessage's ~0.1 ms.
// analyzeModel uses it for the WebAssembly kernel only with 3+ cores: on 2, the copy of half of
// each piece and the waits cost more CPU than the helper saved (measured on a [2M, 64] table).

import { MessageChannel, MessagePort, Worker } from 'node:worker_threads';
import { STATS_KERNEL_WASM_BASE64 } from './kernels/stats-kernel-wasm.js';
import { fusedStatsKernel, HIST_BINS, roundTripRowErrors, STATE_SLOTS, WASM_CALL_ELEMENTS, wasmStatsRows, wasmViews } from './tensor-stats.js';

// control block: [0] job sequence, [1] done sequence, [2] stop, [3] nRows, [4] d,
// [5] first row (of the tensor: row norm index, row sample), [6] has rowNorms, [7] buffer generation,
// [8] run the WebAssembly kernel (1) or the JS loop (0)
const C_JOB = 0;
const C_DONE = 1;
const C_STOP = 2;
const C_ROWS = 3;
const C_D = 4;
const C_FIRST_ROW = 5;
const C_HAS_ROWNORMS = 6;
const C_GEN = 7;
const C_WASM = 8;
const CTRL_INTS = 9;

function helperSource(): string {
  return `
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
${roundTripRowErrors.toString()}
const fusedStatsKernel = ${fusedStatsKernel.toString()};
const wasmViewsFn = ${wasmViews.toString()};
const wasmStatsRowsFn = ${wasmStatsRows.toString()};
let wasm = null; // instantiated on the first WebAssembly job
function wasmJob(v, nRows, d, firstRow, rowNorms) {
  if (wasm === null) {
    const ex = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(workerData.wasm, 'base64')), {}).exports;
    wasm = { memory: ex.memory, stats: ex.stats };
  }
  const per = Math.max(1, Math.floor(${WASM_CALL_ELEMENTS} / d));
  const w = wasmViewsFn(wasm, d, Math.min(nRows, per));
  w.hist.fill(0);
  w.counts.fill(0);
  w.colAbs.fill(0);
  w.colZeros.fill(0);
  for (let r = 0; r < nRows; r += per) wasmStatsRowsFn(wasm, w, v.data, r, Math.min(per, nRows - r), d, firstRow + r, v.st, rowNorms);
  for (let j = 0; j < d; j++) {
    v.colAbs[j] += w.colAbs[j];
    v.colZeros[j] += w.colZeros[j];
  }
  const B = ${HIST_BINS};
  for (let b = 0; b < B; b++) v.hist[b] += w.hist[b] + w.hist[b + B] + w.hist[b + 2 * B] + w.hist[b + 3 * B];
  v.st[12] += w.counts[0];
  v.st[13] += w.counts[1];
  v.st[9] += w.counts[2];
}
const ctrl = new Int32Array(workerData.ctrl);
const port = workerData.port;
let seen = 0;
let v = null;
for (;;) {
  Atomics.wait(ctrl, ${C_JOB}, seen);
  if (Atomics.load(ctrl, ${C_STOP}) !== 0) break;
  seen = Atomics.load(ctrl, ${C_JOB});
  const gen = ctrl[${C_GEN}];
  while (v === null || v.gen !== gen) {
    const m = receiveMessageOnPort(port);
    if (m === undefined) continue; // posted just before the job: arrives in a moment
    const b = m.message;
    v = {
      gen: b.gen,
      data: new Float32Array(b.data),
      bits: new Uint32Array(b.data),
      st: new Float64Array(b.st),
      hist: new Int32Array(b.hist),
      colAbs: new Float64Array(b.colAbs),
      colZeros: new Float64Array(b.colZeros),
      rowNorms: b.rowNorms ? new Float32Array(b.rowNorms) : null,
    };
  }
  const rowNorms = ctrl[${C_HAS_ROWNORMS}] ? v.rowNorms : null;
  if (ctrl[${C_WASM}]) wasmJob(v, ctrl[${C_ROWS}], ctrl[${C_D}], ctrl[${C_FIRST_ROW}], rowNorms);
  else fusedStatsKernel(v.data, v.bits, 0, ctrl[${C_ROWS}], ctrl[${C_D}], v.st, v.hist, v.colAbs, v.colZeros, rowNorms, ctrl[${C_FIRST_ROW}]);
  Atomics.store(ctrl, ${C_DONE}, seen);
  Atomics.notify(ctrl, ${C_DONE});
}
port.close();
`;
}

/** Views of the shared memory of one tensor's run (the helper's accumulators and input). */
export interface HelperBuffers {
  data: Float32Array;
  st: Float64Array;
  /** int32 bin counts, folded into the caller's histogram while the helper is idle */
  hist: Int32Array;
  colAbs: Float64Array;
  colZeros: Float64Array;
  /** row norms of the whole tensor, written by both threads (null when not kept) */
  rowNorms: Float32Array | null;
}

export class StatsHelperThread {
  private readonly worker: Worker;
  private readonly ctrl: Int32Array;
  private readonly port: MessagePort;
  private seq = 0;
  private gen = 0;
  private running = false;
  private closed = false;
  buffers: HelperBuffers | undefined;

  constructor() {
    const ctrlBuf = new SharedArrayBuffer(CTRL_INTS * 4);
    this.ctrl = new Int32Array(ctrlBuf);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(helperSource(), {
      eval: true,
      workerData: { ctrl: ctrlBuf, port: port2, wasm: STATS_KERNEL_WASM_BASE64 },
      transferList: [port2],
    });
    this.worker.unref();
    port1.unref();
  }

  /**
   * New shared buffers for a tensor of `rows` rows of `d` elements, read in pieces of at most
   * `maxPieceElements`; `initialState` seeds the helper's kernel state (epsilon bits, flags).
   */
  prepare(d: number, maxPieceElements: number, rows: number, keepRowNorms: boolean, initialState: Float64Array): HelperBuffers {
    if (this.running) throw new Error('StatsHelperThread: prepare while a job runs');
    const sab = (bytes: number) => new SharedArrayBuffer(Math.max(8, bytes));
    const shared = {
      gen: ++this.gen,
      data: sab(maxPieceElements * 4),
      st: sab(STATE_SLOTS * 8),
      hist: sab(HIST_BINS * 4),
      colAbs: sab(d * 8),
      colZeros: sab(d * 8),
      rowNorms: keepRowNorms ? sab(rows * 4) : null,
    };
    const b: HelperBuffers = {
      data: new Float32Array(shared.data),
      st: new Float64Array(shared.st),
      hist: new Int32Array(shared.hist),
      colAbs: new Float64Array(shared.colAbs),
      colZeros: new Float64Array(shared.colZeros),
      rowNorms: shared.rowNorms ? new Float32Array(shared.rowNorms, 0, rows) : null,
    };
    b.st.set(initialState);
    this.port.postMessage(shared);
    this.ctrl[C_GEN] = this.gen;
    this.buffers = b;
    return b;
  }

  /** Starts the kernel (the WebAssembly one if `wasm`) on `nRows` rows of `values` (copied into shared memory). */
  start(values: Float32Array, nRows: number, d: number, firstRow: number, wasm = false): void {
    const b = this.buffers;
    if (!b || this.running || this.closed) throw new Error('StatsHelperThread: start without prepare, twice, or after close');
    b.data.set(values);
    const c = this.ctrl;
    c[C_ROWS] = nRows;
    c[C_D] = d;
    c[C_FIRST_ROW] = firstRow;
    c[C_HAS_ROWNORMS] = b.rowNorms ? 1 : 0;
    c[C_WASM] = wasm ? 1 : 0;
    this.running = true;
    Atomics.store(c, C_JOB, ++this.seq);
    Atomics.notify(c, C_JOB);
  }

  /** Blocks until the job started last is done (the helper's half is as long as ours: short). */
  wait(): void {
    if (!this.running) return;
    const t0 = Date.now();
    for (;;) {
      const done = Atomics.load(this.ctrl, C_DONE);
      if (done === this.seq) break;
      // a job is a few ms; a helper silent for a minute is dead (its 'error' event cannot reach
      // this blocked thread), so give up rather than hang
      if (Date.now() - t0 > 60_000) {
        this.closed = true;
        void this.worker.terminate();
        throw new Error('statistics helper thread stopped responding');
      }
      Atomics.wait(this.ctrl, C_DONE, done, 1000);
    }
    this.running = false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.wait();
    this.closed = true;
    Atomics.store(this.ctrl, C_STOP, 1);
    Atomics.store(this.ctrl, C_JOB, ++this.seq);
    Atomics.notify(this.ctrl, C_JOB);
    this.port.close();
    await this.worker.terminate();
  }
}
