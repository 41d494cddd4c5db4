// What every collector shares: the Collector contract, the event hand-off, the wall clock, and a wakeable sleep.
import type { CategoryName, PolicySpec } from '../api/policy.js';
import type { Clock, TimerHandle } from '../runtime/clock.js';
import type { ClusterRef, DcpEvent } from '../pipeline/event.js';
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
