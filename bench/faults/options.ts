import { QUEUED, TRANSACTIONAL_VARIANTS, type OrderRouteVariant } from '../../src/orders/variants/index.ts';
import type { FaultBenchOptions } from './bench.ts';
import { FAULT_NAMES, type FaultName } from './faults.ts';

// The fault bench's settings from the command line: its defaults, full and --quick (seconds,
// except clients and workers), and the conversion to what the bench runs on.

export const FAULT_DEFAULTS = {
  full: { clients: 20, lead: 3, tail: 3, outage: 5, lockHold: 10 },
  // Small enough for CI: a few clients, short faults.
  quick: { clients: 4, lead: 1, tail: 1, outage: 2, lockHold: 3 },
  workers: 2, recoveryBound: 30, mirrorWait: 10, requestTimeout: 15,
};

export interface FaultCliOptions {
  /** true: --faults without a list, all of them. */
  faults: FaultName[] | true;
  /** null when --variants was not given: all transactional variants and queued. */
  variants: OrderRouteVariant[] | null;
  connections?: number; pool: number; quick: boolean; out: string;
  outage?: number; lockHold?: number; lead?: number; tail?: number; recoveryBound: number; workers: number;
}

/** The bench's options, or a message saying what is wrong with them. */
export function faultBenchOptions(o: FaultCliOptions): FaultBenchOptions | string {
  const allowed: OrderRouteVariant[] = [...TRANSACTIONAL_VARIANTS, QUEUED];
  const variants = o.variants ?? allowed;
  if (variants.some((v) => !allowed.includes(v))) {
    return `--faults runs the transactional variants and queued only (${allowed.join(', ')})`;
  }
  const d = o.quick ? FAULT_DEFAULTS.quick : FAULT_DEFAULTS.full;
  const ms = (s: number) => Math.round(s * 1000);
  return {
    faults: o.faults === true ? [...FAULT_NAMES] : o.faults,
    variants,
    clients: o.connections ?? d.clients,
    pool: o.pool,
    workers: o.workers,
    quick: o.quick,
    out: o.out,
    timings: {
      leadMs: ms(o.lead ?? d.lead), tailMs: ms(o.tail ?? d.tail), outageMs: ms(o.outage ?? d.outage),
      lockHoldMs: ms(o.lockHold ?? d.lockHold), recoveryBoundMs: ms(o.recoveryBound),
      mirrorWaitMs: ms(FAULT_DEFAULTS.mirrorWait), requestTimeoutMs: ms(FAULT_DEFAULTS.requestTimeout),
    },
  };
}
