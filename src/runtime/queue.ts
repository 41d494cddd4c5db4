// A work queue of keys in the controller-runtime style: deduplicated, one worker per key at a time, rate-limited retries.
import { Gauge, Registry } from 'prom-client';
import { systemClock, type Clock, type TimerHandle } from './clock.js';

/** How long to wait before retrying a key that failed. */
export interface RateLimiter {
  /** The delay for this key's next retry; each call counts one more failure. */
  when(key: string): number;
  /** The key succeeded: its next failure starts from the base delay again. */
  forget(key: string): void;
  retries(key: string): number;
}

/** Per-key exponential delay: base × 2^failures, capped (client-go's ItemExponentialFailureRateLimiter). */
export class ExponentialRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly baseMs = 5,
    private readonly maxMs = 1_000_000,
  ) {}

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // The exponent is bounded so 2^n cannot overflow before the cap applies.
    return Math.min(this.maxMs, this.baseMs * Math.pow(2, Math.min(n, 62)));
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

export interface WorkQueueOptions {
  /** The `name` label of dcp_queue_depth. */
  readonly name: string;
  /** @default ExponentialRateLimiter(5 ms, 1000 s) */
  readonly rateLimiter?: RateLimiter;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Where dcp_queue_depth goes. @default a private registry */
  readonly registry?: Registry;
}

const depthSources = new WeakMap<Registry, Set<WorkQueue>>();

function registerDepth(registry: Registry, queue: WorkQueue): void {
  let queues = depthSources.get(registry);
  if (queues === undefined) {
    const set = new Set<WorkQueue>();
    queues = set;
    depthSources.set(registry, set);
    new Gauge({
      name: 'dcp_queue_depth',
      help: 'Keys waiting in a work queue (not counting keys being processed or waiting for a retry).',
      labelNames: ['name'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const q of set) this.set({ name: q.name }, q.length);
      },
    });
  }
  queues.add(queue);
}

/**
 * Guarantees of the queue, as in client-go's workqueue:
 * - a key is queued at most once, however often it is added before a worker takes it;
 * - a key is handed to one worker at a time: added while being processed, it is queued again
 *   when the worker calls `done`, so the change that came in is not lost;
 * - keys come out in the order they were first added.
 */
export class WorkQueue {
  readonly name: string;
  private items: string[] = [];
  private head = 0;
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly waiting = new Map<string, { at: number; timer: TimerHandle }>();
  private readonly getters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;
  private readonly rateLimiter: RateLimiter;
  private readonly clock: Clock;

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.rateLimiter = options.rateLimiter ?? new ExponentialRateLimiter();
    this.clock = options.clock ?? systemClock;
    registerDepth(options.registry ?? new Registry(), this);
  }

  /** Keys queued and not yet taken. */
  get length(): number {
    return this.items.length - this.head;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.items.push(key);
    this.deliver();
  }

  /** Adds the key after `ms`; of several pending delays for one key, the earliest wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + ms;
    const current = this.waiting.get(key);
    if (current !== undefined) {
      if (current.at <= at) return;
      this.clock.clearTimeout(current.timer);
    }
    const timer = this.clock.setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, ms);
    this.waiting.set(key, { at, timer });
  }

  /** Adds the key after its rate limiter's delay: the retry path for a failed reconcile. */
  addRateLimited(key: string): void {
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Resets the key's retry delay (call after a success). */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.retries(key);
  }

  /**
   * The next key, waiting for one if need be; the caller must call `done(key)` when finished.
   * Resolves undefined once the queue is shut down, or when `signal` aborts.
   */
  get(signal?: AbortSignal): Promise<string | undefined> {
    const key = this.take();
    if (key !== undefined) return Promise.resolve(key);
    if (this.shuttingDown || signal?.aborted === true) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const getter = (k: string | undefined): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(k);
      };
      const onAbort = (): void => {
        const i = this.getters.indexOf(getter);
        if (i !== -1) this.getters.splice(i, 1);
        resolve(undefined);
      };
      this.getters.push(getter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.items.push(key);
      this.deliver();
    }
  }

  /** Stops the queue: waiting `get`s resolve undefined, later adds are ignored, delayed adds are dropped. */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) this.clock.clearTimeout(timer);
    this.waiting.clear();
    for (const g of this.getters.splice(0)) g(undefined);
  }

  private take(): string | undefined {
    if (this.head >= this.items.length || this.shuttingDown) return undefined;
    const key = this.items[this.head];
    this.head += 1;
    // Compact now and then so the array does not grow for ever; amortised O(1) per key.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (key === undefined) return undefined;
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  private deliver(): void {
    while (this.getters.length > 0 && this.length > 0) {
      const key = this.take();
      const getter = this.getters.shift();
      if (key === undefined || getter === undefined) return;
      getter(key);
    }
  }
}
