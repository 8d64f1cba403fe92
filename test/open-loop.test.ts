import assert from 'node:assert/strict';
import { test } from 'node:test';
import { latencyRecorder } from '../bench/latency.ts';
import { openLoop, type Clock } from '../bench/open-loop.ts';
import { planRounds } from '../bench/plan.ts';
import { spread } from '../bench/summary.ts';

// The open-loop generator on a virtual clock: time moves only when every request in flight and
// the generator itself are waiting, so each figure below is worked out by hand, not measured.

function virtualClock() {
  let now = 0;
  let seq = 0;
  const timers: { at: number; seq: number; resolve: () => void }[] = [];
  const clock: Clock = {
    now: () => now,
    sleepUntil: (at) => new Promise<void>((resolve) => { timers.push({ at, seq: seq++, resolve }); }),
  };
  /** Runs `work` to its end, moving the clock to the next timer whenever everything waits. */
  async function run<T>(work: Promise<T>): Promise<T> {
    let done = false;
    void work.finally(() => { done = true; });
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      if (done) return work;
      timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = timers.shift();
      if (!next) throw new Error('nothing left to wait for, yet the run has not ended');
      now = Math.max(now, next.at);
      next.resolve();
    }
  }
  return { clock, run, sleep: (ms: number) => clock.sleepUntil(now + ms) };
}

/** HDR keeps 3 significant digits: a value read back is within 0.1% of the one recorded. */
const near = (actual: number, expected: number) =>
  assert.ok(Math.abs(actual - expected) <= expected * 0.001 + 0.1, `${actual} is not ${expected}`);

test('a service slower than the arrivals: latency counts from the due time, late sends are counted', async () => {
  // 10 requests due every 100 ms; one in flight at a time; each takes 250 ms. Request k (k >= 1)
  // is sent when k - 1 answers, at 250k, and answered at 250(k + 1): latency 250(k + 1) - 100k.
  const v = virtualClock();
  const sentAt: number[] = [];
  const result = await v.run(openLoop({ ratePerSec: 10, durationSec: 1, maxInFlight: 1, giveUpAfterSec: 60, clock: v.clock },
    async () => { sentAt.push(v.clock.now()); await v.sleep(250); }));
  assert.deepEqual(sentAt, [0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2250]);
  assert.equal(result.scheduled, 10);
  assert.equal(result.sent, 10);
  assert.equal(result.late, 9);
  assert.equal(result.unsent, 0);
  assert.equal(result.maxSendLagMs, 2250 - 900);
  // Latencies 250, 400, 550, ..., 1600: the 5th of 10 is 850, the 10th 1600.
  near(result.latency.p50, 850);
  near(result.latency.p99, 1600);
  near(result.latency.max, 1600);
  // Timed from each send, as a closed loop would: every request looks like 250 ms.
  near(result.serviceLatency.p50, 250);
  near(result.serviceLatency.max, 250);
  assert.equal(result.durationSec, 2.5);
});

test('a service that keeps up: every request on time, latency its own', async () => {
  const v = virtualClock();
  const result = await v.run(openLoop({ ratePerSec: 10, durationSec: 1, maxInFlight: 5, giveUpAfterSec: 60, clock: v.clock },
    () => v.sleep(250)));
  assert.equal(result.late, 0);
  assert.equal(result.maxSendLagMs, 0);
  near(result.latency.p50, 250);
  near(result.latency.max, 250);
  assert.equal(result.durationSec, 1.15); // last due at 900, answered at 1150
});

test('arrivals still unsent when the run gives up are counted, not sent', async () => {
  // Sends at 0, 250, 500, 750, 1000; the next would be at 1250, past the 1 s limit.
  const v = virtualClock();
  const result = await v.run(openLoop({ ratePerSec: 10, durationSec: 1, maxInFlight: 1, giveUpAfterSec: 1, clock: v.clock },
    () => v.sleep(250)));
  assert.equal(result.sent, 5);
  assert.equal(result.unsent, 5);
  assert.equal(result.latency.count, 5);
});

test('the latency histogram reads back percentiles of what was recorded', () => {
  const r = latencyRecorder();
  for (let ms = 1; ms <= 1000; ms++) r.record(ms);
  const s = r.summary();
  assert.equal(s.count, 1000);
  near(s.p50, 500);
  near(s.p99, 990);
  near(s.p999, 999);
  near(s.max, 1000);
});

test('repeats: medians and ranges; rounds start the variants at different places', () => {
  assert.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3 });
  assert.deepEqual(spread([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4 });
  const scale = { connections: 1, ordersPerConnection: 1 };
  const plan = planRounds([{ name: 'hot-10', scale }], ['no-tx', 'serializable', 'row-lock', 'redis'] as never, 2);
  assert.deepEqual(plan.map((c) => `${c.round}:${c.variant}`),
    ['1:no-tx', '1:serializable', '1:row-lock', '1:redis', '2:row-lock', '2:redis', '2:no-tx', '2:serializable']);
});
