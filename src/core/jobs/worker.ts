// The job worker: heavy reading, analysis and compression run here so that the extension host's
// event loop is never blocked. One job per worker; the host starts a fresh worker per job so a
// crash or an out-of-memory kill costs only that job. It runs as a worker_thread, or as a child
// process (forked with an IPC channel) for GPU jobs: see job-runner.ts.

import { parentPort } from 'node:worker_threads';
import type { HostToWorker, WorkerToHost } from './job-types.js';
import { runJobInProcess } from './run-job-in-process.js';

interface HostLink {
  send(m: WorkerToHost, final?: boolean): void;
  onMessage(handler: (m: HostToWorker) => void): void;
}

function hostLink(): HostLink {
  const port = parentPort;
  if (port) {
    return { send: (m) => port.postMessage(m), onMessage: (h) => port.on('message', h) };
  }
  const send = process.send?.bind(process);
  if (send) {
    return {
      // the last message: once it is out, the process ends (a GPU device would keep it alive)
      send: (m, final) => send(m, undefined, {}, final ? () => process.exit(0) : undefined),
      onMessage: (h) => {
        // Ctrl-C in a terminal reaches the whole process group: the host turns it into a
        // cooperative cancel, which must find this job still running
        process.on('SIGINT', () => undefined);
        process.on('message', h);
        // the host went away (it was killed, or it closed the channel): nobody wants the result
        process.on('disconnect', () => process.exit(0));
      },
    };
  }
  throw new Error('worker.js must run in a worker_thread or a child process with an IPC channel');
}

const link = hostLink();
const controller = new AbortController();

link.onMessage((m: HostToWorker) => {
  if (m.type === 'cancel') {
    controller.abort(new Error('cancelled'));
    return;
  }
  runJobInProcess(m.spec, controller.signal, (progress) => link.send({ type: 'progress', progress })).then(
    (result) => link.send({ type: 'result', result }, true),
    (e: unknown) =>
      link.send(
        {
          type: 'error',
          message: e instanceof Error ? e.message : String(e),
          cancelled: controller.signal.aborted,
        },
        true,
      ),
  );
});
