// Lease-based leader election (client-go's leaderelection): one replica writes, the others wait to take over.
import { Counter, Gauge, Registry } from 'prom-client';
import type { KubeTransport } from '../kube/client.js';
import { Conflict } from '../kube/errors.js';
import { LeaseClient, type Lease, type LeaseRecord } from '../kube/lease.js';
import { microTime } from '../kube/recorder.js';
import { sleep, systemClock, type Clock, type TimerHandle } from './clock.js';
import { LeaseFence, type Fence } from './fence.js';

export { LeadershipLost } from './fence.js';

export type LeaseDecision =
  | { readonly action: 'create'; readonly record: LeaseRecord }
  | { readonly action: 'update'; readonly record: LeaseRecord }
  | { readonly action: 'wait'; readonly holder: string };

/**
 * What a candidate does with the Lease it just read. Expiry is judged by when *this process*
 * last saw the record change (`observedAtMs`, its own monotonic clock), never by the timestamps
 * in the record, so clock skew between nodes cannot make two leaders.
 */
export function decide(
  current: LeaseRecord | undefined,
  identity: string,
  observedAtMs: number,
  nowMs: number,
  leaseDurationSeconds: number,
  wallNowMs: number,
): LeaseDecision {
  const now = microTime(new Date(wallNowMs));
  if (current === undefined) {
    return { action: 'create', record: { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 } };
  }
  const held = current.holderIdentity !== '' && current.holderIdentity !== identity;
  if (held && observedAtMs + current.leaseDurationSeconds * 1000 > nowMs) {
    return { action: 'wait', holder: current.holderIdentity };
  }
  const mine = current.holderIdentity === identity;
  return {
    action: 'update',
    record: {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: mine ? (current.acquireTime ?? now) : now,
      renewTime: now,
      leaseTransitions: mine ? current.leaseTransitions : current.leaseTransitions + 1,
    },
  };
}

/** The record that hands the lease back: no holder, and a 1 s duration so a standby takes over at once. */
export function releasedRecord(current: LeaseRecord, wallNowMs: number): LeaseRecord {
  const now = microTime(new Date(wallNowMs));
  return { ...current, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now };
}

export interface LeaderElectorOptions {
  readonly transport: KubeTransport;
  readonly namespace: string;
  readonly name: string;
  /** Unique per replica, e.g. the Pod name plus a random suffix. */
  readonly identity: string;
  /** How long a standby waits after the last renewal it saw before taking over. @default 15000 */
  readonly leaseDurationMs?: number;
  /** A leader that has not renewed for this long stops leading. @default 10000 */
  readonly renewDeadlineMs?: number;
  /** Between attempts to acquire or renew. @default 2000 */
  readonly retryPeriodMs?: number;
  /**
   * Called on becoming leader. `signal` aborts the moment leadership ends (lost, or shutdown);
   * the work must stop writing then. `fence` is checked by every write right before it is made:
   * it throws once the renew deadline has passed by this process's clock, even if the process
   * was paused and the timers that abort `signal` have not run yet. If it returns a promise, the
   * elector waits for it before releasing the lease or competing again.
   */
  readonly onStartedLeading: (signal: AbortSignal, fence: Fence) => void | Promise<void>;
  readonly onStoppedLeading?: () => void;
  /** The holder changed (including to this identity). */
  readonly onNewLeader?: (identity: string) => void;
  /** Failed API calls and callbacks that threw; the elector keeps going. */
  readonly onError?: (err: unknown) => void;
  /** Monotonic time for expiry. @default systemClock */
  readonly clock?: Clock;
  /** Wall time for the timestamps written into the Lease. @default Date.now */
  readonly wallClock?: () => number;
  /** @default Math.random */
  readonly random?: () => number;
  /** Where dcp_leader_is_leader goes. @default a private registry */
  readonly registry?: Registry;
}

const JITTER = 1.2;

interface LeaderMetrics {
  readonly leading: Gauge<'lease'>;
  readonly fenced: Counter<'lease' | 'writer'>;
}

const leaderMetricsByRegistry = new WeakMap<Registry, LeaderMetrics>();

function leaderMetrics(registry: Registry): LeaderMetrics {
  let m = leaderMetricsByRegistry.get(registry);
  if (m === undefined) {
    m = {
      leading: new Gauge({ name: 'dcp_leader_is_leader', help: '1 while this replica holds the lease.', labelNames: ['lease'] as const, registers: [registry] }),
      fenced: new Counter({
        name: 'dcp_leader_fenced_writes_total',
        help: 'Writes refused because the lease was not renewed within the renew deadline (a paused or cut-off leader), by writer.',
        labelNames: ['lease', 'writer'] as const,
        registers: [registry],
      }),
    };
    leaderMetricsByRegistry.set(registry, m);
  }
  return m;
}

export class LeaderElector {
  private readonly leases: LeaseClient;
  private readonly clock: Clock;
  private readonly wallClock: () => number;
  private readonly random: () => number;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly metrics: LeaderMetrics;
  /** The last Lease seen or written, and when (monotonic) it was first seen in that state. */
  private observed: Lease | undefined;
  private observedAt = 0;
  private leading = false;
  private running = false;

  constructor(private readonly options: LeaderElectorOptions) {
    this.leases = new LeaseClient(options.transport, options.namespace, options.name);
    this.clock = options.clock ?? systemClock;
    this.wallClock = options.wallClock ?? Date.now;
    this.random = options.random ?? Math.random;
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (this.leaseDurationMs <= this.renewDeadlineMs) throw new RangeError('leaseDurationMs must be greater than renewDeadlineMs');
    if (this.renewDeadlineMs <= this.retryPeriodMs * JITTER) throw new RangeError('renewDeadlineMs must be greater than retryPeriodMs × 1.2');
    this.metrics = leaderMetrics(options.registry ?? new Registry());
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The holder of the lease as last seen, '' if none. */
  get leader(): string {
    return this.observed?.record.holderIdentity ?? '';
  }

  /**
   * Competes for the lease until `signal` aborts. While leading, renews every retry period; a
   * leader that cannot renew within the renew deadline stops at once and competes again. On
   * abort, a leader stops its work, waits for it, releases the lease, and then this resolves.
   */
  async start(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error('leader elector is already running');
    this.running = true;
    try {
      while (!signal.aborted) {
        const acquiredAt = await this.acquire(signal);
        if (acquiredAt === undefined) break;
        await this.lead(signal, acquiredAt);
      }
    } finally {
      this.running = false;
    }
  }

  /** Competes until the lease is acquired (resolves with when the winning request was sent) or `signal` aborts (undefined). */
  private async acquire(signal: AbortSignal): Promise<number | undefined> {
    while (!signal.aborted) {
      const sentAt = this.clock.now();
      if (await this.attempt(signal, this.retryPeriodMs * (1 + JITTER))) return sentAt;
      await sleep(this.retryPeriodMs * (1 + JITTER * this.random()), signal, this.clock);
    }
    return undefined;
  }

  private async lead(signal: AbortSignal, acquiredAt: number): Promise<void> {
    const name = `${this.options.namespace}/${this.options.name}`;
    this.leading = true;
    this.metrics.leading.set({ lease: name }, 1);
    const leadingCtl = new AbortController();
    const fence = new LeaseFence(
      this.clock,
      this.renewDeadlineMs,
      acquiredAt,
      (reason) => {
        this.report(reason);
        leadingCtl.abort(reason);
      },
      (writer) => this.metrics.fenced.inc({ lease: name, writer }),
    );
    // The timer ends the term when nothing writes; a write finds the deadline passed by itself (fence.check).
    const armDeadline = (): TimerHandle =>
      this.clock.setTimeout(() => {
        if (!fence.lost()) deadline = armDeadline();
      }, Math.max(1, this.renewDeadlineMs - fence.sinceRenewalMs));
    let deadline = armDeadline();
    const work = (async () => {
      try {
        await this.options.onStartedLeading(leadingCtl.signal, fence);
      } catch (err) {
        this.report(err);
      }
    })();
    const stopRenewing = (): void => leadingCtl.abort(signal.reason);
    signal.addEventListener('abort', stopRenewing, { once: true });
    try {
      while (!leadingCtl.signal.aborted) {
        await sleep(this.retryPeriodMs, leadingCtl.signal, this.clock);
        // NOTE: after a pause the sleep may end before the deadline timer runs: a term past its
        // deadline ends here, and is not renewed back to life.
        if (leadingCtl.signal.aborted || fence.lost()) break;
        // NOTE: the attempt is cut off by the leading signal, which the deadline aborts:
        // a renewal that has not succeeded by the deadline can never count.
        const sentAt = this.clock.now();
        if (await this.attempt(leadingCtl.signal, this.renewDeadlineMs)) {
          fence.renewed(sentAt);
          this.clock.clearTimeout(deadline);
          deadline = armDeadline();
        }
      }
    } finally {
      signal.removeEventListener('abort', stopRenewing);
      this.clock.clearTimeout(deadline);
      this.leading = false;
      this.metrics.leading.set({ lease: name }, 0);
      try {
        this.options.onStoppedLeading?.();
      } catch (err) {
        this.report(err);
      }
      await work;
      if (signal.aborted) await this.release();
    }
  }

  /** One try to acquire or renew, bounded by `timeoutMs`; false if the lease is held or a call failed. */
  private async attempt(parent: AbortSignal, timeoutMs: number): Promise<boolean> {
    const ctl = new AbortController();
    const onParent = (): void => ctl.abort(parent.reason);
    parent.addEventListener('abort', onParent, { once: true });
    const timer = this.clock.setTimeout(() => ctl.abort(new Error('lease request timed out')), timeoutMs);
    try {
      return await this.tryAcquireOrRenew(ctl.signal);
    } catch (err) {
      if (!(err instanceof Conflict) && !ctl.signal.aborted) this.report(err);
      return false;
    } finally {
      this.clock.clearTimeout(timer);
      parent.removeEventListener('abort', onParent);
    }
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const durationSeconds = Math.ceil(this.leaseDurationMs / 1000);
    // A leader renews straight from the record it wrote last: one request instead of two. On a
    // conflict it falls back to reading the lease.
    if (this.leading && this.observed !== undefined && this.observed.record.holderIdentity === this.options.identity) {
      const d = decide(this.observed.record, this.options.identity, this.observedAt, this.clock.now(), durationSeconds, this.wallClock());
      if (d.action === 'update') {
        try {
          this.see(await this.leases.update(d.record, this.observed.resourceVersion, signal));
          return true;
        } catch (err) {
          if (!(err instanceof Conflict)) throw err;
        }
      }
    }
    const current = await this.leases.get(signal);
    if (current !== undefined) this.see(current);
    const d = decide(current?.record, this.options.identity, this.observedAt, this.clock.now(), durationSeconds, this.wallClock());
    if (d.action === 'wait') return false;
    const written =
      d.action === 'create' || current === undefined
        ? await this.leases.create(d.record, signal)
        : await this.leases.update(d.record, current.resourceVersion, signal);
    this.see(written);
    return true;
  }

  /** Records a Lease as seen now if it differs from the one seen before. */
  private see(lease: Lease): void {
    if (this.observed?.resourceVersion === lease.resourceVersion) return;
    const before = this.observed?.record.holderIdentity;
    this.observed = lease;
    this.observedAt = this.clock.now();
    const holder = lease.record.holderIdentity;
    if (holder !== before && holder !== '') {
      try {
        this.options.onNewLeader?.(holder);
      } catch (err) {
        this.report(err);
      }
    }
  }

  private async release(): Promise<void> {
    const lease = this.observed;
    if (lease === undefined || lease.record.holderIdentity !== this.options.identity) return;
    const ctl = new AbortController();
    const timer = this.clock.setTimeout(() => ctl.abort(new Error('lease release timed out')), this.renewDeadlineMs);
    try {
      try {
        this.see(await this.leases.update(releasedRecord(lease.record, this.wallClock()), lease.resourceVersion, ctl.signal));
      } catch (err) {
        if (!(err instanceof Conflict)) throw err;
        // A renewal cut off by the shutdown may still have been written: read the lease again
        // and release it if it is still ours; if someone else holds it, there is nothing to hand back.
        const current = await this.leases.get(ctl.signal);
        if (current === undefined || current.record.holderIdentity !== this.options.identity) return;
        this.see(await this.leases.update(releasedRecord(current.record, this.wallClock()), current.resourceVersion, ctl.signal));
      }
    } catch (err) {
      if (!(err instanceof Conflict)) this.report(err);
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  private report(err: unknown): void {
    try {
      this.options.onError?.(err);
    } catch {
      // A failing logger must not stop the elector.
    }
  }
}
