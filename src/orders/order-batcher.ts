import { AppError } from '../errors.ts';

// Gathers concurrent submissions into batches, "smart batching" (group commit as a log writer
// does it): at most `maxInFlight` batches run at once, and the next batch gathers while they run.
// When one finishes, everything that arrived meanwhile (up to `maxSize`) leaves at once as the
// next batch. So batches grow with the load instead of multiplying: under load there are never
// more than `maxInFlight` batches per process fighting for the same hot rows, each carrying more
// orders. With a slot free, a batch leaves when it has `maxSize` entries or `waitMs` after its
// first one arrived, whichever comes first. Each entry is settled exactly once, by its batch's
// `run` or, if `run` throws, with that error.

export interface Pending<T, R> {
  item: T;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export interface BatcherOptions<T, R> {
  maxSize: number;
  waitMs: number;
  /** Batches running at once (default 1); submissions beyond wait for the next batch. */
  maxInFlight?: number;
  /** Places one batch; settles each entry (entries it leaves unsettled get its error, if it throws). */
  run(batch: Pending<T, R>[]): Promise<void>;
}

export class OrderBatcher<T, R> {
  private pending: Pending<T, R>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly running = new Set<Promise<void>>();
  private readonly maxInFlight: number;
  private closed = false;

  constructor(private readonly options: BatcherOptions<T, R>) {
    this.maxInFlight = options.maxInFlight ?? 1;
  }

  submit(item: T): Promise<R> {
    if (this.closed) return Promise.reject(shuttingDown());
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      // No slot free: the batch that finishes first takes this one along.
      if (this.running.size >= this.maxInFlight) return;
      if (this.pending.length >= this.options.maxSize) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.waitMs);
    });
  }

  /** Batches running and submissions waiting for one (for tests and metrics). */
  get usage() {
    return { inFlight: this.running.size, waiting: this.pending.length };
  }

  /**
   * Shutdown: refuses new submissions, runs what is being gathered at once, and resolves when
   * every batch has finished. No entry is left unsettled.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.flush();
    while (this.running.size) await Promise.allSettled([...this.running]);
  }

  private flush() {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0 || this.running.size >= this.maxInFlight) return;
    const batch = this.pending.splice(0, this.options.maxSize);
    const run = this.options.run(batch)
      .catch((err: unknown) => { for (const entry of batch) entry.reject(err); }) // settled ones ignore it
      .finally(() => {
        this.running.delete(run);
        // What gathered meanwhile has waited a whole batch already: it leaves now.
        this.flush();
      });
    this.running.add(run);
    // Slots left and a full batch waiting (a burst): it need not wait for the timer either.
    if (this.pending.length >= this.options.maxSize) this.flush();
    else if (this.pending.length && this.running.size < this.maxInFlight) this.timer = setTimeout(() => this.flush(), this.options.waitMs);
  }
}

function shuttingDown() {
  return new AppError('SERVICE_UNAVAILABLE', 'the service is shutting down', {}, 1);
}
