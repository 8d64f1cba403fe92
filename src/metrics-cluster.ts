import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { AppError } from './errors.ts';

// With WEB_CONCURRENCY workers behind one port, a scrape of GET /metrics lands on any one of
// them, yet must describe the whole service. The worker that got it asks the supervisor, which
// collects every worker's registry over the cluster channel (prom-client's AggregatorRegistry)
// and answers with their sum: counters and histograms added up, pool gauges summed.

const COLLECT = 'orders:metrics:collect';
const COLLECTED = 'orders:metrics:collected';
/** prom-client gives up on a worker after 5 s; this only covers a supervisor that never answers. */
const ANSWER_WITHIN_MS = 6_000;

interface Collected { type: typeof COLLECTED; id: number; text?: string; error?: string }

/** In the supervisor: answers workers' requests for the service's metrics. */
export function serveClusterMetrics() {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: { type?: string; id?: number }) => {
    if (message?.type !== COLLECT) return;
    const reply = (answer: Omit<Collected, 'type' | 'id'>) => {
      if (worker.isConnected()) worker.send({ type: COLLECTED, id: message.id, ...answer });
    };
    aggregator.clusterMetrics().then((text) => reply({ text }), (err: Error) => reply({ error: err.message }));
  });
}

/**
 * In a worker: offers `registry` to the supervisor's collection, and returns what renders the
 * whole service's metrics through it. A collection that fails (a worker just starting has not
 * offered its registry yet) answers 503: a partial sum would look like counters going backwards.
 */
export function clusterRender(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry(); // installs the worker's side of prom-client's collection
  const pending = new Map<number, (answer: Collected | undefined) => void>();
  let nextId = 0;
  process.on('message', (message: Partial<Collected>) => {
    if (message?.type === COLLECTED) pending.get(message.id!)?.(message as Collected);
  });
  return () => new Promise<string>((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => settle(undefined), ANSWER_WITHIN_MS);
    const settle = (answer: Collected | undefined) => {
      clearTimeout(timer);
      pending.delete(id);
      if (answer?.text !== undefined) resolve(answer.text);
      else reject(new AppError('SERVICE_UNAVAILABLE', `the service's metrics could not be collected: ${answer?.error ?? 'no answer'}`, {}, 1));
    };
    pending.set(id, settle);
    process.send!({ type: COLLECT, id });
  });
}
