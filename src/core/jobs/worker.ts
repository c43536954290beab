// The job worker (worker_thread): heavy reading, analysis and compression run here so that the
// extension host's event loop is never blocked. One job per worker; the host starts a fresh
// worker per job so a crash or an out-of-memory kill costs only that job.

import { parentPort } from 'node:worker_threads';
import type { HostToWorker, WorkerToHost } from './job-types.js';
import { runJobInProcess } from './run-job-in-process.js';

const port = parentPort;
if (!port) throw new Error('worker.js must run in a worker_thread');

const controller = new AbortController();
const send = (m: WorkerToHost) => port.postMessage(m);

port.on('message', (m: HostToWorker) => {
  if (m.type === 'cancel') {
    controller.abort(new Error('cancelled'));
    return;
  }
  runJobInProcess(m.spec, controller.signal, (progress) => send({ type: 'progress', progress })).then(
    (result) => send({ type: 'result', result }),
    (e: unknown) =>
      send({
        type: 'error',
        message: e instanceof Error ? e.message : String(e),
        cancelled: controller.signal.aborted,
      }),
  );
});
