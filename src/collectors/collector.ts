// What every collector shares: the Collector contract, the event hand-off, the wall clock, and a wakeable sleep.
import type { CategoryName, PolicySpec } from '../api/policy.js';
import { Backoff } from '../runtime/backoff.js';
import type { Clock, TimerHandle } from '../runtime/clock.js';
import type { ClusterRef, DcpEvent } from '../api/event.js';
import type { NamespaceProjection } from './projections.js';

/**
 * Hands events to the pipeline. The promise resolves once they are durably stored (and rejects if
 * they are not); the billing meter relies on that to advance its watermark only afterwards.
 */
export type EmitEvents = (events: readonly DcpEvent[]) => Promise<void>;

/**
 * One category's collector: a long-running part started by the manager while this replica leads.
 * Nothing happens before `run`; policy changes arrive through `reconfigure` while it runs.
 */
export interface Collector {
  readonly category: CategoryName;
  /** Runs until `signal` aborts; resolves once stopped, with no timer left and no write of its own still in flight. */
  run(signal: AbortSignal): Promise<void>;
  /** Applies a new policy spec: enabling, disabling, intervals. Cheap and synchronous; effects follow within seconds. */
  reconfigure(spec: PolicySpec): void;
}

/**
 * A Clock whose `now()` is Unix epoch milliseconds. NOTE: collectors date events and align billing
 * intervals with `now()`, so they need wall time; the runtime's `systemClock` reads
 * `performance.now()` (milliseconds since process start) and must not be given to them.
 */
export const wallClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** The envelope's cluster reference: the kube-system UID plus the policy's (immutable) region and subscription. */
export function clusterRef(kubeSystem: NamespaceProjection, spec: PolicySpec): ClusterRef {
  return { id: kubeSystem.uid, region: spec.region, subscriptionId: spec.subscriptionId };
}

/**
 * A sleep that ends at its deadline, when woken, or when the signal aborts, whichever comes first.
 * A wake with nobody sleeping is remembered, so a change that arrives between two sleeps is not lost.
 */
export class Wakeup {
  private pending = false;
  private resolveCurrent: (() => void) | undefined;

  constructor(private readonly clock: Clock) {}

  wake(): void {
    if (this.resolveCurrent !== undefined) this.resolveCurrent();
    else this.pending = true;
  }

  /** Sleeps up to `ms` (Infinity: until woken or aborted). Never rejects. */
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    // Not a zero timer: a ManualClock would hold it until the test advances time.
    if (this.pending || signal.aborted || ms <= 0) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      const done = (): void => {
        if (timer !== undefined) this.clock.clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.resolveCurrent = undefined;
        resolve();
      };
      if (Number.isFinite(ms)) timer = this.clock.setTimeout(done, Math.max(0, ms));
      signal.addEventListener('abort', done, { once: true });
      this.resolveCurrent = done;
    });
  }
}

export interface FlushLoopOptions {
  readonly clock: Clock;
  /** Emits what is pending; rejects when the pipeline did not store it (the flush has put it back). */
  readonly flush: () => Promise<void>;
  /** Whether anything is left to flush. */
  readonly pending: () => boolean;
  /** Whether flushing is allowed now (the collector runs). */
  readonly active: () => boolean;
}

/**
 * When a collector hands its batches to the pipeline: a while after a change (so a burst costs one
 * batch), one flush at a time, at once again while work is pending, and after a growing delay while
 * the pipeline refuses. Shared by the collectors that gather changes before emitting them.
 */
export class FlushLoop {
  private timer: TimerHandle | undefined;
  private inFlight: Promise<void> | undefined;
  private readonly retry = new Backoff({ initialMs: 1000, maxMs: 60_000 });

  constructor(private readonly options: FlushLoopOptions) {}

  /** Flushes after `delayMs`, unless a flush is already due or running (it picks this change up). */
  schedule(delayMs: number): void {
    if (!this.options.active() || this.timer !== undefined || this.inFlight !== undefined) return;
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      this.inFlight = this.flushOnce().then((nextMs) => {
        this.inFlight = undefined;
        if (this.options.pending()) this.schedule(nextMs);
      });
    }, delayMs);
  }

  /** Drops a flush that is due; one already running finishes (see idle()). */
  cancel(): void {
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  get busy(): boolean {
    return this.inFlight !== undefined;
  }

  /** Resolves once no flush is running. */
  async idle(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight;
  }

  private async flushOnce(): Promise<number> {
    try {
      await this.options.flush();
      this.retry.reset();
      return 0;
    } catch {
      return this.retry.next(this.options.clock.now());
    }
  }
}
