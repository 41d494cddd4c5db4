// billing: the meter. One CoreUsage event per metering interval, exactly once across restarts and leader changes.
import type { PolicySpec } from '../api/policy.js';
import { Conflict } from '../kube/errors.js';
import { buildEvent } from '../api/envelope.js';
import type { ClusterRef, EventOf } from '../api/event.js';
import { silentLog, type Log } from '../observability/log.js';
import { Tally } from '../runtime/aggregate.js';
import { Backoff } from '../runtime/backoff.js';
import type { Clock } from '../runtime/clock.js';
import type { ChangeHandler, ReadStore } from '../runtime/store.js';
import type { MeterStateStore, StoredMeterState } from './billing-state.js';
import { clusterRef, wallClock, Wakeup, type Collector, type EmitEvents } from './collector.js';
import {
  advanceWatermark,
  closedIntervals,
  initialMeterState,
  openIntervalEnd,
  sameSchedule,
  withIntervalSeconds,
  withPoints,
  type CoreUsageInterval,
  type MeterState,
  type VCorePoint,
} from './metering.js';
import { toMillicores, type NamespaceProjection, type NodeProjection } from './projections.js';

/**
 * The CoreUsage event of one interval. Its id hashes the interval's start and length only (plus
 * cluster and name): NOTE this is what makes a repeat harmless, since the store deduplicates by id;
 * anything that differs between two computations of the same interval (process, time of emission)
 * must stay out of it.
 */
export function coreUsageEvent(cluster: ClusterRef, interval: CoreUsageInterval): EventOf<'CoreUsage'> {
  const start = new Date(interval.start).toISOString();
  const end = new Date(interval.end);
  return buildEvent({
    name: 'CoreUsage',
    cluster,
    time: end,
    sourceKey: 'meter',
    bucket: `${start}/${interval.intervalSeconds}s`,
    data: { intervalStart: start, intervalEnd: end.toISOString(), quantity: interval.quantity, unit: 'vCore' },
  });
}

export interface BillingMeterOptions {
  readonly nodes: ReadStore<NodeProjection>;
  /** The kube-system Namespace (its UID is the cluster id). */
  readonly kubeSystem: NamespaceProjection;
  /** The policy spec at start; later ones come through reconfigure(). */
  readonly spec: PolicySpec;
  /** Must resolve only once the events are durably stored: the watermark moves after it. */
  readonly emit: EmitEvents;
  /** e.g. `new ConfigMapMeterStateStore({ transport, namespace })`. */
  readonly store: MeterStateStore;
  /** Must read epoch milliseconds. @default wallClock */
  readonly clock?: Clock;
  readonly log?: Log;
  /** A recorded vCore change is written to the state within this long. @default 2000 */
  readonly persistDelayMs?: number;
  /** At most this many intervals per emit() call when back-filling. @default 500 */
  readonly maxBatch?: number;
  /** Called after intervals were stored and the watermark moved past them (status, metrics, tests). */
  readonly onBilled?: (intervals: readonly CoreUsageInterval[], watermark: number) => void;
  /** Called after every successful step with the stored state: a liveness signal for health checks and tests. */
  readonly onStep?: (state: MeterState) => void;
}

// Bounded, so a store that answers every write with 409 surfaces as an error rather than a busy loop.
const MAX_CONFLICT_RETRIES = 10;

/**
 * Meters Node CPU capacity. Run it only while leading. Order of work in each step:
 * 1. record vCore changes in memory (from the Node cache, O(1) each);
 * 2. write them and any interval change to the state before an interval that depends on them is emitted;
 * 3. emit every closed interval since the watermark;
 * 4. only then advance the watermark.
 * A crash between 3 and 4 makes the next leader emit the same intervals again, with the same ids and,
 * because of 2, the same quantities. Billing cannot be disabled; only its interval can change.
 */
export class BillingMeter implements Collector {
  readonly category = 'billing' as const;
  private spec: PolicySpec;
  private readonly clock: Clock;
  private readonly log: Log;
  private readonly persistDelayMs: number;
  private readonly maxBatch: number;
  private capacity = newCapacityTally();
  private readonly wakeup: Wakeup;
  private running = false;
  /** Observed, not yet written to the state. */
  private pending: VCorePoint[] = [];
  private pendingSince: number | undefined;
  private stored: StoredMeterState | undefined;
  /** Millicores at the last recorded point: a Node update that leaves the sum alone records nothing. */
  private lastRecorded: number | undefined;

  constructor(private readonly options: BillingMeterOptions) {
    this.spec = options.spec;
    this.clock = options.clock ?? wallClock;
    this.log = options.log ?? silentLog;
    this.persistDelayMs = options.persistDelayMs ?? 2000;
    this.maxBatch = Math.max(1, options.maxBatch ?? 500);
    this.wakeup = new Wakeup(this.clock);
  }

  /** vCores now, as metered (sum of Node CPU capacity). */
  get vCores(): number {
    return this.capacity.total / 1000;
  }

  /** The state as last read or written (for status and tests). */
  get state(): MeterState | undefined {
    return this.stored?.state;
  }

  reconfigure(spec: PolicySpec): void {
    const changed = spec.categories.billing.intervalSeconds !== this.spec.categories.billing.intervalSeconds;
    this.spec = spec;
    // The next step writes the new schedule: from the end of the interval in progress.
    if (changed) this.wakeup.wake();
  }

  async run(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error('BillingMeter is already running');
    try {
      await this.options.nodes.waitUntilSynced(signal);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    if (signal.aborted) return;
    this.running = true;
    // A new term starts from nothing: counts and unwritten points of an earlier term are stale.
    this.capacity = newCapacityTally();
    this.pending = [];
    this.pendingSince = undefined;
    this.stored = undefined;
    this.lastRecorded = undefined;
    // The replay counts the cached Nodes without recording each as a change; one point follows.
    const unsubscribe = this.options.nodes.subscribe(this.capacity.handler, { replay: true });
    const unsubscribeChanges = this.options.nodes.subscribe(this.onNode);
    // NOTE: the observation at the start of every term: from here on, the time since the previous
    // leader's last recorded point is no longer carried forward but replaced by what is seen now.
    this.record();
    const backoff = new Backoff({ initialMs: 1000, maxMs: 30_000 });
    try {
      while (!signal.aborted) {
        let wakeAt: number;
        try {
          wakeAt = await this.step(signal);
          backoff.reset();
          const state = this.state;
          if (state !== undefined && !signal.aborted) this.options.onStep?.(state);
        } catch (err) {
          if (signal.aborted) break;
          this.log.error('billing meter step failed; retrying', { error: String(err), name: err instanceof Error ? err.name : undefined });
          // Re-read before the next write: the failure may have left our view of the state stale.
          this.stored = undefined;
          wakeAt = this.clock.now() + backoff.next(this.clock.now());
        }
        await this.wakeup.sleep(wakeAt - this.clock.now(), signal);
      }
    } finally {
      unsubscribe();
      unsubscribeChanges();
      this.running = false;
    }
  }

  private readonly onNode: ChangeHandler<NodeProjection> = () => {
    if (this.running) this.record();
  };

  /** Notes the current vCores as a change point, if they differ from the last noted value. */
  private record(): void {
    const millicores = this.capacity.total;
    if (millicores === this.lastRecorded) return;
    this.lastRecorded = millicores;
    const t = Math.floor(this.clock.now());
    const point = { t, vCores: millicores / 1000 };
    const last = this.pending[this.pending.length - 1];
    // Several changes within one millisecond (a relist) leave the last value.
    if (last !== undefined && last.t === t) this.pending[this.pending.length - 1] = point;
    else this.pending.push(point);
    this.pendingSince ??= this.clock.now();
    this.wakeup.wake();
  }

  /** What the stored state becomes with the pending points and the current interval applied. */
  private proposed(base: MeterState | undefined, now: number): MeterState {
    const intervalSeconds = this.spec.categories.billing.intervalSeconds;
    const first = this.pending[0];
    const start = base ?? initialMeterState(first?.t ?? now, intervalSeconds);
    return withIntervalSeconds(withPoints(start, this.pending), intervalSeconds, now);
  }

  /**
   * Writes pending points, the interval schedule and (optionally) a new watermark, compare-and-swap:
   * on 409 it reads the state again and re-applies the same change to it.
   */
  private async commit(signal: AbortSignal, advanceTo?: number): Promise<StoredMeterState> {
    for (let attempt = 0; ; attempt++) {
      if (this.stored === undefined) this.stored = await this.options.store.load(signal);
      const base = this.stored;
      const taken = this.pending.length;
      let next = this.proposed(base?.state, this.clock.now());
      if (advanceTo !== undefined) next = advanceWatermark(next, advanceTo);
      let saved: StoredMeterState;
      try {
        saved = await this.options.store.save(next, base?.resourceVersion, signal);
      } catch (err) {
        if (!(err instanceof Conflict) || attempt >= MAX_CONFLICT_RETRIES) throw err;
        this.stored = undefined;
        continue;
      }
      this.stored = saved;
      this.pending.splice(0, taken);
      if (this.pending.length === 0) this.pendingSince = undefined;
      return saved;
    }
  }

  /** One pass: persist what must be, emit what has closed, advance. Resolves with when to run again. */
  private async step(signal: AbortSignal): Promise<number> {
    if (this.stored === undefined) this.stored = await this.options.store.load(signal);
    // NOTE: one `now` for the whole step: every point recorded up to it is written below, so the
    // intervals closed by it are computed from stored points only.
    const now = this.clock.now();
    const base = this.stored?.state;
    const proposed = this.proposed(base, now);
    const due = closedIntervals(proposed.history, proposed.watermark, now, proposed.schedule, this.maxBatch);
    const closing = due.watermark > proposed.watermark;
    const scheduleChanged = base === undefined || !sameSchedule(base.schedule, proposed.schedule);
    const pointsDue = this.pendingSince !== undefined && now - this.pendingSince >= this.persistDelayMs;
    // NOTE: what an interval is computed from is stored before the interval is emitted, so a leader
    // that recomputes it after a crash gets the same event, quantity included.
    let stored = this.stored;
    if (stored === undefined || scheduleChanged || pointsDue || (closing && this.pending.length > 0)) stored = await this.commit(signal);

    const closed = closedIntervals(stored.state.history, stored.state.watermark, now, stored.state.schedule, this.maxBatch);
    if (closed.watermark > stored.state.watermark) {
      if (closed.intervals.length > 0) {
        const cluster = clusterRef(this.options.kubeSystem, this.spec);
        // NOTE: emit first, advance after: the reverse order would lose an interval on a crash in between.
        await this.options.emit(closed.intervals.map((i) => coreUsageEvent(cluster, i)));
        if (signal.aborted) return this.clock.now();
      }
      stored = await this.commit(signal, closed.watermark);
      try {
        this.options.onBilled?.(closed.intervals, closed.watermark);
      } catch (err) {
        this.log.warn('billing hook failed', { error: String(err) });
      }
    }
    const state = stored.state;
    const later = this.clock.now();
    // A back-fill cut short by maxBatch continues at once.
    if (closedIntervals(state.history, state.watermark, later, state.schedule, 1).watermark > state.watermark) return later;
    let wakeAt = openIntervalEnd(state, later);
    if (this.pendingSince !== undefined) wakeAt = Math.min(wakeAt, this.pendingSince + this.persistDelayMs);
    return wakeAt;
  }
}

function newCapacityTally(): Tally<NodeProjection> {
  return new Tally<NodeProjection>(
    () => 'cpu',
    (n) => toMillicores(n.cpuCapacity),
  );
}
