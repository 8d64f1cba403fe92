import { AppError } from '../errors.ts';

// Gathers concurrent submissions into batches: a batch is run when it has `maxSize` entries, or
// `waitMs` after its first one arrived, whichever comes first. Batches run concurrently; each
// entry is settled exactly once, by its batch's `run` or, if `run` throws, with that error.

export interface Pending<T, R> {
  item: T;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export interface BatcherOptions<T, R> {
  maxSize: number;
  waitMs: number;
  /** Places one batch; settles each entry (entries it leaves unsettled get its error, if it throws). */
  run(batch: Pending<T, R>[]): Promise<void>;
}

export class OrderBatcher<T, R> {
  private pending: Pending<T, R>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly options: BatcherOptions<T, R>) {}

  submit(item: T): Promise<R> {
    if (this.closed) return Promise.reject(shuttingDown());
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.options.maxSize) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.waitMs);
    });
  }

  /**
   * Shutdown: refuses new submissions, runs the batch being gathered at once, and resolves when
   * every batch has finished. No entry is left unsettled.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.flush();
    await Promise.allSettled([...this.running]);
  }

  private flush() {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    const run = this.options.run(batch)
      .catch((err: unknown) => { for (const entry of batch) entry.reject(err); }) // settled ones ignore it
      .finally(() => { this.running.delete(run); });
    this.running.add(run);
  }
}

function shuttingDown() {
  return new AppError('SERVICE_UNAVAILABLE', 'the service is shutting down', {}, 1);
}
