// Work done one item at a time in arrival order, with a promise for "nothing queued or running".
// The models tree scans models through it. No vscode import: the unit tests drive it directly.

export class SerialQueue<T> {
  private readonly queue: T[] = [];
  private running = false;
  private readonly idleWaiters: Array<() => void> = [];

  /**
   * `work` runs each item; an error it throws is passed to `onError` and the queue goes on.
   * `afterBatch` runs each time the queue has emptied, before the queue counts as idle; items
   * pushed while it runs are worked on next (they are never left waiting with nobody to run them).
   */
  constructor(
    private readonly keyOf: (item: T) => string,
    private readonly work: (item: T) => Promise<void>,
    private readonly options: { afterBatch?: () => PromiseLike<void>; onError?: (item: T | undefined, e: unknown) => void } = {},
  ) {}

  /** Queues an item unless one with the same key is already waiting, and starts the work if it is not running. */
  push(item: T): void {
    const key = this.keyOf(item);
    if (!this.queue.some((q) => this.keyOf(q) === key)) this.queue.push(item);
    void this.drain();
  }

  /** The items waiting (not the one being worked on). */
  get pending(): number {
    return this.queue.length;
  }

  /** Resolves when nothing is queued or running. */
  whenIdle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        for (let item = this.queue.shift(); item !== undefined; item = this.queue.shift()) {
          try {
            await this.work(item);
          } catch (e) {
            this.options.onError?.(item, e);
          }
        }
        try {
          await this.options.afterBatch?.();
        } catch (e) {
          this.options.onError?.(undefined, e);
        }
      }
    } finally {
      // the loop above left only when the queue was empty, with no await since: nothing is lost
      this.running = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }
}
