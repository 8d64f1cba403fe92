import { setTimeout as sleep } from 'node:timers/promises';
import { latencyRecorder, type LatencySummary } from './latency.ts';

// An open loop: requests are due at a fixed rate from the start (request i at start + i / rate),
// whatever the answers. Each request's latency is taken from the moment it was *due*, not from
// when it could be sent: when the service (or this generator, or the cap on requests in flight)
// falls behind, the waiting counts, as it would for a real buyer arriving on time. Measuring from
// the actual send instead would drop that waiting (coordinated omission); that figure is kept
// apart as `serviceLatency` only to show the difference.

/** Time in milliseconds, and a way to wait for a moment: the real one, or a virtual one in tests. */
export interface Clock {
  now(): number;
  sleepUntil(at: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleepUntil: async (at) => {
    const wait = at - performance.now();
    if (wait > 0) await sleep(wait);
  },
};

/** A request sent more than this after it was due was not sent on time. */
export const LATE_AFTER_MS = 10;

export interface OpenLoopOptions {
  ratePerSec: number;
  durationSec: number;
  /** Requests in flight at most; a request due while all are busy waits for one (and is late). */
  maxInFlight: number;
  /** Requests still unsent this long after the start are not sent at all (counted as unsent). */
  giveUpAfterSec: number;
  clock?: Clock;
  onProgress?: (answered: number) => void;
}

export interface OpenLoopResult {
  /** Requests due in the run: rate x duration. */
  scheduled: number;
  sent: number;
  /** Sent more than LATE_AFTER_MS after they were due. */
  late: number;
  /** Never sent: still waiting when the run gave up (the service could not keep up). */
  unsent: number;
  /** The longest delay between a request being due and being sent. */
  maxSendLagMs: number;
  /** From the start to the last answer. */
  durationSec: number;
  /** From each request's due time to its answer (coordinated omission corrected). */
  latency: LatencySummary;
  /** From each request's actual send to its answer: what a closed-loop tool would report. */
  serviceLatency: LatencySummary;
}

/** `send(i)` sends request i and resolves on its answer, whatever it is; it should not reject. */
export async function openLoop(o: OpenLoopOptions, send: (i: number) => Promise<unknown>): Promise<OpenLoopResult> {
  const clock = o.clock ?? realClock;
  const latency = latencyRecorder();
  const serviceLatency = latencyRecorder();
  const scheduled = Math.round(o.ratePerSec * o.durationSec);
  const interval = 1000 / o.ratePerSec;
  const start = clock.now();
  const giveUpAt = start + o.giveUpAfterSec * 1000;
  let inFlight = 0;
  let answered = 0;
  let late = 0;
  let sent = 0;
  let maxSendLagMs = 0;
  let lastAnswer = start;
  const slotWaiters: (() => void)[] = [];
  const pending = new Set<Promise<void>>();

  for (let i = 0; i < scheduled; i++) {
    const due = start + i * interval;
    if (clock.now() < due) await clock.sleepUntil(due);
    while (inFlight >= o.maxInFlight) await new Promise<void>((resolve) => slotWaiters.push(resolve));
    const sentAt = clock.now();
    if (sentAt > giveUpAt) break;
    const lag = sentAt - due;
    maxSendLagMs = Math.max(maxSendLagMs, lag);
    if (lag > LATE_AFTER_MS) late++;
    inFlight++;
    sent++;
    const request: Promise<void> = send(i).catch(() => undefined).then(() => {
      lastAnswer = clock.now();
      latency.record(lastAnswer - due);
      serviceLatency.record(lastAnswer - sentAt);
      inFlight--;
      pending.delete(request);
      o.onProgress?.(++answered);
      slotWaiters.shift()?.();
    });
    pending.add(request);
  }
  await Promise.all(pending);
  return {
    scheduled, sent, late, unsent: scheduled - sent, maxSendLagMs: Math.round(maxSendLagMs * 10) / 10,
    durationSec: (lastAnswer - start) / 1000, latency: latency.summary(), serviceLatency: serviceLatency.summary(),
  };
}
