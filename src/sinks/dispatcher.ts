// The delivery loop: per sink, read the store after its cursor, route, send, then advance the cursor.
import type { Sink } from '../api/policy.js';
import type { DcpEvent } from '../api/event.js';
import { silentLog, type Log } from '../observability/log.js';
import { counter, scrapedGauge, type Registry } from '../observability/metrics.js';
import { shouldDeliver, type RoutingPolicy } from '../pipeline/routing.js';
import type { EventStore, StorePosition, Stream } from '../store/event-store.js';
import { backoffDelay, sleep, type BackoffPolicy } from './backoff.js';
import type { CursorStore, SinkCursor } from './cursor.js';
import { DeliveryTracker, type SinkDelivery } from './delivery-state.js';
import { SinkError, type EventSink } from './sink.js';

/** Between a sink's failed batches: from 1 s, doubling, at most a minute (jittered), so a sink that is back is tried within a minute. */
export const DEFAULT_SINK_BACKOFF: BackoffPolicy = { baseMs: 1000, maxMs: 60_000 };

/** A sink as the policy configures it (for routing) and as built (for sending). */
export interface DispatchTarget {
  readonly config: Pick<Sink, 'name' | 'region'>;
  readonly sink: EventSink;
}

/** The part of the store the dispatcher reads. */
export type DispatchSource = Pick<EventStore, 'readAfter' | 'version' | 'waitForChange'>;

export interface DispatcherOptions {
  readonly store: DispatchSource;
  readonly cursors: CursorStore;
  /** Read at every batch, so a policy change applies to the next one. */
  readonly policy: () => RoutingPolicy;
  /** Records read per batch. @default 500 */
  readonly batchSize?: number;
  /** Look again this often even without a change notice. @default 5000 */
  readonly idleMs?: number;
  /**
   * Between failed batches; the backlog waits in the store meanwhile. The ceiling bounds how long a sink that is back
   * waits for its first try (a 5-minute ceiling left one 346 s behind after a 10-minute outage in the fault campaign).
   * @default DEFAULT_SINK_BACKOFF
   */
  readonly backoff?: BackoffPolicy;
  readonly log?: Log;
  readonly registry?: Registry;
  /** A sink's state (Delivering, Backlogged, Failing) or error class changed. */
  readonly onStateChange?: () => void;
  /** Clock for the delivery state (epoch ms). @default Date.now */
  readonly now?: () => number;
  /**
   * Called right before each send and each cursor save; throwing refuses it (a leader whose lease
   * has lapsed must neither deliver nor move its cursors: a refused batch is sent again next term).
   */
  readonly beforeWrite?: (what: 'sink delivery' | 'sink cursor') => void;
}

/** Records looked at per stream when measuring a backlog: past it the gauge says "at least this many". */
const BACKLOG_SCAN_LIMIT = 50_000;
/** While a sink catches up successfully, its backlog is measured at most this often. */
const MEASURE_EVERY_MS = 5000;

const STREAMS: readonly Stream[] = ['raw', 'aggregates'];

const samePosition = (a: StorePosition | undefined, b: StorePosition | undefined): boolean =>
  a?.partition === b?.partition && a?.offset === b?.offset;

interface Running {
  readonly target: DispatchTarget;
  readonly abort: AbortController;
  readonly done: Promise<void>;
}

export class Dispatcher {
  private readonly options: DispatcherOptions;
  private readonly log: Log;
  private readonly batchSize: number;
  private readonly backoff: BackoffPolicy;
  private readonly cursorCache = new Map<string, SinkCursor>();
  private readonly running = new Map<string, Running>();
  private targets: readonly DispatchTarget[] = [];
  private signal: AbortSignal | undefined;
  private readonly sent;
  private readonly failures;
  private readonly tracker: DeliveryTracker;
  private readonly lastMeasured = new Map<string, number>();

  constructor(options: DispatcherOptions) {
    this.options = options;
    this.log = options.log ?? silentLog;
    this.batchSize = options.batchSize ?? 500;
    this.backoff = options.backoff ?? DEFAULT_SINK_BACKOFF;
    this.sent = counter(options.registry, 'dcp_sink_events_sent_total', 'Events a sink accepted.', ['sink']);
    this.failures = counter(options.registry, 'dcp_sink_send_failures_total', 'Batches a sink failed to accept (retried later).', ['sink']);
    const tracker = (this.tracker = new DeliveryTracker(options.now));
    scrapedGauge(options.registry, 'dcp_sink_backlog_events', 'Routed events stored but not yet accepted by the sink (as last measured).', 'sink', () => tracker.names(), (s) => tracker.backlog(s));
    scrapedGauge(
      options.registry,
      'dcp_sink_oldest_undelivered_seconds',
      'Age of the oldest event the sink has not accepted yet (0 when nothing waits).',
      'sink',
      () => tracker.names(),
      (s) => tracker.oldestUndeliveredSeconds(s),
    );
  }

  /** Per sink: Delivering, Backlogged or Failing, with backlog and times (for status.sinks[]). */
  deliveries(): SinkDelivery[] {
    return this.tracker.snapshot();
  }

  /**
   * Sets the sinks to deliver to. While running, loops start for new sinks and stop for removed or
   * replaced ones (a replaced sink's old instance is closed). Cursors are kept by sink name.
   */
  async setTargets(targets: readonly DispatchTarget[]): Promise<void> {
    this.targets = targets;
    const names = new Set(targets.map((t) => t.config.name));
    for (const name of this.tracker.names()) if (!names.has(name)) this.tracker.remove(name);
    if (this.signal) await this.reconcileLoops(this.signal);
  }

  /** Delivers until `signal` aborts; resolves when every loop has stopped and its sink is closed. */
  async start(signal: AbortSignal): Promise<void> {
    this.signal = signal;
    await this.reconcileLoops(signal);
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    await Promise.all([...this.running.values()].map((r) => r.done));
    await Promise.all([...this.running.values()].map((r) => r.target.sink.close()));
    this.running.clear();
    this.signal = undefined;
  }

  private async reconcileLoops(signal: AbortSignal): Promise<void> {
    const wanted = new Map(this.targets.map((t) => [t.config.name, t]));
    for (const [name, r] of this.running) {
      if (wanted.get(name) === r.target) continue;
      r.abort.abort();
      await r.done;
      await r.target.sink.close();
      this.running.delete(name);
    }
    if (signal.aborted) return;
    for (const [name, target] of wanted) {
      if (this.running.has(name)) continue;
      const abort = new AbortController();
      const loopSignal = AbortSignal.any([signal, abort.signal]);
      this.running.set(name, { target, abort, done: this.loop(target, loopSignal) });
    }
  }

  private async loop(target: DispatchTarget, signal: AbortSignal): Promise<void> {
    const name = target.config.name;
    let failures = 0;
    while (!signal.aborted) {
      // Taken before reading, so an append during the batch is not slept through.
      const version = this.options.store.version;
      const before = this.tracker.stateKey(name);
      const changed = (): void => {
        if (this.tracker.stateKey(name) !== before) this.options.onStateChange?.();
      };
      try {
        const consumed = await this.deliverOnce(target, signal);
        failures = 0;
        this.tracker.succeeded(name);
        if (consumed > 0) {
          await this.measure(target, false).catch(() => undefined);
          changed();
          continue;
        }
        this.tracker.measured(name, 0, undefined);
        changed();
        await this.idle(version, signal);
      } catch (err) {
        if (signal.aborted) break;
        this.failures.inc({ sink: name });
        this.tracker.failed(name, err);
        await this.measure(target, true).catch(() => undefined);
        changed();
        // A send that gave up on a 429 or 503 carries the receiver's Retry-After: the next batch waits at least that long
        // (the transport honours it between its own tries, but its last answer would otherwise be followed within a second).
        const asked = err instanceof SinkError ? (err.retryAfterMs ?? 0) : 0;
        const delay = Math.min(this.backoff.maxMs, Math.max(asked, backoffDelay(failures++, this.backoff)));
        this.log.warn('sink: delivery failed; backlog kept', { sink: name, retryInMs: Math.round(delay), error: String(err) });
        await sleep(delay, signal);
      }
    }
  }

  /** Counts the routed events after the sink's cursor and the oldest one's time; throttled unless `force`. */
  private async measure(target: DispatchTarget, force: boolean): Promise<void> {
    const name = target.config.name;
    const now = Date.now();
    if (!force && now - (this.lastMeasured.get(name) ?? 0) < MEASURE_EVERY_MS) return;
    this.lastMeasured.set(name, now);
    const cursor = await this.cursor(name);
    const policy = this.options.policy();
    let count = 0;
    let oldest: number | undefined;
    for (const stream of STREAMS) {
      const { records } = await this.options.store.readAfter(stream, cursor[stream], BACKLOG_SCAN_LIMIT);
      for (const r of records) {
        if (!shouldDeliver(r.event, target.config, policy)) continue;
        count++;
        const t = Date.parse(r.event.time);
        if (Number.isFinite(t) && (oldest === undefined || t < oldest)) oldest = t;
      }
    }
    this.tracker.measured(name, count, oldest);
  }

  /** Until the store changes, idleMs pass, or `signal` aborts. */
  private async idle(version: number, signal: AbortSignal): Promise<void> {
    const wake = new AbortController();
    const timer = setTimeout(() => wake.abort(), this.options.idleMs ?? 5000);
    const stop = (): void => wake.abort();
    signal.addEventListener('abort', stop, { once: true });
    try {
      await this.options.store.waitForChange(version, wake.signal);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
    }
  }

  private async cursor(name: string): Promise<SinkCursor> {
    let c = this.cursorCache.get(name);
    if (!c) this.cursorCache.set(name, (c = await this.options.cursors.load(name)));
    return c;
  }

  /**
   * One batch per stream for one sink: the records after its cursor, filtered by routing, sent,
   * and only then the cursor advanced (NOTE: the other order would lose events on a crash).
   * Returns how many records were consumed, routed or not.
   */
  async deliverOnce(target: DispatchTarget, signal: AbortSignal): Promise<number> {
    const name = target.config.name;
    const cursor = await this.cursor(name);
    let consumed = 0;
    for (const stream of STREAMS) {
      const { records, next } = await this.options.store.readAfter(stream, cursor[stream], this.batchSize);
      if (records.length === 0 && samePosition(next, cursor[stream])) continue;
      const policy = this.options.policy();
      const events: DcpEvent[] = records.filter((r) => shouldDeliver(r.event, target.config, policy)).map((r) => r.event);
      if (events.length > 0) {
        this.options.beforeWrite?.('sink delivery');
        await target.sink.send(events, signal);
        this.sent.inc({ sink: name }, events.length);
      }
      const advanced: SinkCursor = { ...cursor, [stream]: next };
      this.options.beforeWrite?.('sink cursor');
      await this.options.cursors.save(name, advanced);
      this.cursorCache.set(name, advanced);
      Object.assign(cursor, advanced);
      consumed += records.length;
    }
    return consumed;
  }

  /** Delivers everything currently stored to every target, once, without retrying: for tools and tests. */
  async drain(signal: AbortSignal = new AbortController().signal): Promise<void> {
    for (const target of this.targets) while ((await this.deliverOnce(target, signal)) > 0);
  }
}
