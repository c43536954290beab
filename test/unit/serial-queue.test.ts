// The one-at-a-time queue behind the models tree's scans: order, no duplicate waiting items, errors
// that do not stop the queue, and "idle" that never resolves with an item still waiting (an item
// pushed while the queue saved its cache after a batch was once left behind, and a caller waiting
// for idle waited forever).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SerialQueue } from '../../src/extension/serial-queue.js';

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('items run one at a time in arrival order; a waiting duplicate is not queued twice', async () => {
  const done: string[] = [];
  let active = 0;
  let most = 0;
  const q = new SerialQueue<string>(
    (s) => s,
    async (s) => {
      active++;
      most = Math.max(most, active);
      await tick();
      done.push(s);
      active--;
    },
  );
  q.push('a');
  q.push('b');
  q.push('b');
  q.push('c');
  assert.equal(q.pending, 2, 'a runs, b and c wait; the second b is dropped');
  await q.whenIdle();
  assert.deepEqual(done, ['a', 'b', 'c']);
  assert.equal(most, 1);
});

test('an item pushed while the batch hook runs is worked on before the queue counts as idle', async () => {
  const done: string[] = [];
  let batches = 0;
  let q!: SerialQueue<string>;
  q = new SerialQueue<string>(
    (s) => s,
    async (s) => {
      await tick(1);
      done.push(s);
    },
    {
      afterBatch: async () => {
        batches++;
        // the file watcher finds a new model while the cache is being saved
        if (batches === 1) q.push('late');
        await tick(10);
      },
    },
  );
  q.push('first');
  await tick(3);
  let idle = false;
  const waiting = q.whenIdle().then(() => (idle = true));
  await Promise.race([waiting, tick(1000)]);
  assert.equal(idle, true, 'whenIdle did not resolve within a second');
  assert.deepEqual(done, ['first', 'late']);
  assert.equal(batches, 2);
  assert.equal(q.pending, 0);
});

test('an error in one item goes to onError and the queue goes on; idle resolves at once when empty', async () => {
  const errors: string[] = [];
  const done: number[] = [];
  const q = new SerialQueue<number>(
    String,
    async (n) => {
      if (n === 2) throw new Error('bad file');
      done.push(n);
    },
    { onError: (n, e) => errors.push(`${n}: ${(e as Error).message}`) },
  );
  await q.whenIdle();
  for (const n of [1, 2, 3]) q.push(n);
  await q.whenIdle();
  assert.deepEqual(done, [1, 3]);
  assert.deepEqual(errors, ['2: bad file']);
});
