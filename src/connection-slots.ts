import { AppError } from './errors.ts';

/**
 * One slot per pool connection. postgres.js queues work for a busy pool without any bound, so a
 * lock held elsewhere would let every request wait as long as the lock is held; here a request
 * that cannot get a connection by its deadline is refused (503 SERVICE_BUSY) before it has
 * started anything, so the refusal is always true: nothing was written.
 */
export class ConnectionSlots {
  private free: number;
  private readonly waiting: { grant: () => void; timer: NodeJS.Timeout }[] = [];

  constructor(readonly size: number) {
    this.free = size;
  }

  /** Runs `fn` holding a slot; waits for one until `deadline` (epoch ms) at the latest. */
  async run<T>(deadline: number, fn: () => Promise<T>): Promise<T> {
    await this.acquire(deadline);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /** Slots in use and requests waiting for one (for /health and metrics). */
  get usage() {
    return { busy: this.size - this.free, waiting: this.waiting.length };
  }

  private acquire(deadline: number): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => { clearTimeout(waiter.timer); resolve(); },
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1);
          reject(busy());
        }, Math.max(0, deadline - Date.now())),
      };
      this.waiting.push(waiter);
    });
  }

  private release() {
    const next = this.waiting.shift();
    if (next) next.grant(); // the slot passes straight to the next waiter
    else this.free++;
  }
}

/** The request's time to start its database work ran out; nothing was written. */
export function busy() {
  return new AppError('SERVICE_BUSY', 'no database connection could be had before the request timed out', {}, 1);
}
