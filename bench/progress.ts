// One live line per run: what runs, how far, the current rate. On a terminal the line is
// redrawn in place; in a log (CI) a line is printed every few seconds instead.

export interface Progress {
  update(done: number): void;
  /** A line of its own (an event within the run), without losing the live line. */
  note(line: string): void;
  finish(summary: string): void;
}

/** `total` null: an open-ended run (the fault bench's load runs for a time, not a count). */
export function progress(label: string, total: number | null, out: NodeJS.WriteStream = process.stderr): Progress {
  const started = Date.now();
  let lastPrint = 0;
  let lastDone = 0;
  let lastAt = started;
  const interactive = Boolean(out.isTTY);
  const every = interactive ? 250 : 5_000;
  const clear = interactive ? '\r\x1b[2K' : '';

  return {
    update(done) {
      const now = Date.now();
      if (now - lastPrint < every) return;
      const rate = ((done - lastDone) * 1000) / Math.max(1, now - lastAt);
      lastPrint = now; lastDone = done; lastAt = now;
      const count = total === null ? done.toLocaleString('en') : `${done.toLocaleString('en')}/${total.toLocaleString('en')}`;
      const line = `${label}: ${count} requests, ${Math.round(rate).toLocaleString('en')} req/s, ${((now - started) / 1000).toFixed(0)} s`;
      if (interactive) out.write(`${clear}${line}`);
      else out.write(`${line}\n`);
    },
    note(line) {
      out.write(`${clear}${label}: ${line}\n`);
      lastPrint = 0; // redraw the live line at the next update
    },
    finish(summary) {
      out.write(`${clear}${label}: ${summary}\n`);
    },
  };
}
