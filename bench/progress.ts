// One live line per run: what runs, how far, the current rate. On a terminal the line is
// redrawn in place; in a log (CI) a line is printed every few seconds instead.

export interface Progress { update(done: number): void; finish(summary: string): void }

export function progress(label: string, total: number, out: NodeJS.WriteStream = process.stderr): Progress {
  const started = Date.now();
  let lastPrint = 0;
  let lastDone = 0;
  let lastAt = started;
  const interactive = Boolean(out.isTTY);
  const every = interactive ? 250 : 5_000;

  return {
    update(done) {
      const now = Date.now();
      if (now - lastPrint < every) return;
      const rate = ((done - lastDone) * 1000) / Math.max(1, now - lastAt);
      lastPrint = now; lastDone = done; lastAt = now;
      const line = `${label}: ${done.toLocaleString('en')}/${total.toLocaleString('en')} requests, ` +
        `${Math.round(rate).toLocaleString('en')} req/s, ${((now - started) / 1000).toFixed(0)} s`;
      if (interactive) out.write(`\r\x1b[2K${line}`);
      else out.write(`${line}\n`);
    },
    finish(summary) {
      out.write(`${interactive ? '\r\x1b[2K' : ''}${label}: ${summary}\n`);
    },
  };
}
