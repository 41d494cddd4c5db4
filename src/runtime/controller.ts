// Runs a reconcile function over the keys of a work queue, one at a time, retrying failures with backoff.
import { Counter, Histogram, Registry } from 'prom-client';
import { type Clock } from './clock.js';
import { WorkQueue, type RateLimiter } from './queue.js';

/** What a reconcile asks for next. `requeueAfter` (ms) schedules another run even if nothing changes. */
export interface ReconcileResult {
  readonly requeueAfter?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileResult | void>;

/**
 * Thrown by a reconcile that can never succeed as things are (a spec that cannot work):
 * the key is not retried; it runs again only when something enqueues it.
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

export interface ControllerOptions {
  /** The `controller` label of metrics and the queue's name. */
  readonly name: string;
  readonly reconcile: Reconcile;
  /** Every failed reconcile, for logging; `requeued` is false for a TerminalError. */
  readonly onError?: (key: string, err: unknown, requeued: boolean) => void;
  /** @default ExponentialRateLimiter(5 ms, 1000 s) */
  readonly rateLimiter?: RateLimiter;
  readonly clock?: Clock;
  /** @default a private registry */
  readonly registry?: Registry;
}

interface ControllerMetrics {
  readonly total: Counter<'controller' | 'result'>;
  readonly duration: Histogram<'controller'>;
}

const metricsByRegistry = new WeakMap<Registry, ControllerMetrics>();

function controllerMetrics(registry: Registry): ControllerMetrics {
  let m = metricsByRegistry.get(registry);
  if (m === undefined) {
    m = {
      total: new Counter({
        name: 'dcp_controller_reconcile_total',
        help: 'Reconciles run, by result (success, requeue_after, error, terminal_error).',
        labelNames: ['controller', 'result'] as const,
        registers: [registry],
      }),
      duration: new Histogram({
        name: 'dcp_controller_reconcile_duration_seconds',
        help: 'Time spent in one reconcile.',
        labelNames: ['controller'] as const,
        buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
        registers: [registry],
      }),
    };
    metricsByRegistry.set(registry, m);
  }
  return m;
}

/**
 * A controller in the controller-runtime sense: event handlers call `enqueue(key)`; the
 * controller calls `reconcile(key)` with one worker (keys never run concurrently, and the same
 * key never twice at once), reads state from caches, and decides nothing from which event fired.
 */
export class Controller {
  readonly queue: WorkQueue;
  private readonly metrics: ControllerMetrics;
  private running = false;

  constructor(private readonly options: ControllerOptions) {
    const registry = options.registry ?? new Registry();
    this.queue = new WorkQueue({ name: options.name, rateLimiter: options.rateLimiter, clock: options.clock, registry });
    this.metrics = controllerMetrics(registry);
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  /**
   * Works until `signal` aborts; then it takes no new key, lets the reconcile in progress
   * finish, and resolves.
   */
  async start(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error(`controller ${this.options.name} is already running`);
    this.running = true;
    const { name } = this.options;
    const onAbort = (): void => this.queue.shutDown();
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        const key = await this.queue.get();
        if (key === undefined) break;
        const end = this.metrics.duration.startTimer({ controller: name });
        try {
          const result = await this.options.reconcile(key);
          this.queue.forget(key);
          const after = result?.requeueAfter;
          if (after !== undefined && after > 0) {
            this.queue.addAfter(key, after);
            this.metrics.total.inc({ controller: name, result: 'requeue_after' });
          } else {
            this.metrics.total.inc({ controller: name, result: 'success' });
          }
        } catch (err) {
          const terminal = err instanceof TerminalError;
          if (terminal) this.queue.forget(key);
          else this.queue.addRateLimited(key);
          this.metrics.total.inc({ controller: name, result: terminal ? 'terminal_error' : 'error' });
          try {
            this.options.onError?.(key, err, !terminal);
          } catch {
            // A failing logger must not stop the worker.
          }
        } finally {
          end();
          this.queue.done(key);
        }
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.queue.shutDown();
      this.running = false;
    }
  }
}
