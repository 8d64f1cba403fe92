import * as hdr from 'hdr-histogram-js';

// One way of measuring latency for every run (HTTP or direct, closed or open loop): each
// request's time, in microseconds, into an HDR histogram (3 significant digits), read back as
// percentiles in milliseconds. The closed loop records from the moment a request was sent; the
// open loop from the moment it was due (see open-loop.ts).

export interface LatencySummary {
  /** Requests recorded. */
  count: number;
  p50: number;
  p75: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface LatencyRecorder {
  record(ms: number): void;
  summary(): LatencySummary;
}

export function latencyRecorder(): LatencyRecorder {
  // autoResize: a request stuck for a minute must still be recorded, not dropped.
  const histogram = hdr.build({ lowestDiscernibleValue: 1, numberOfSignificantValueDigits: 3, autoResize: true });
  const ms = (us: number) => Math.round(us / 100) / 10;
  return {
    record(value) {
      histogram.recordValue(Math.max(1, Math.round(value * 1000)));
    },
    summary() {
      const at = (p: number) => (histogram.totalCount ? ms(histogram.getValueAtPercentile(p)) : 0);
      return { count: histogram.totalCount, p50: at(50), p75: at(75), p90: at(90), p99: at(99), p999: at(99.9), max: ms(histogram.maxValue) };
    },
  };
}
