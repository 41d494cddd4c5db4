// The exporter's core: profile filter, deduplication, direct write while the destination is up, the on-disk
// buffer while it is down, draining with backoff, and the purge of anything older than the retention.
import { join } from 'node:path';
import type { Log } from '../observability/log.js';
import { Backoff } from '../runtime/backoff.js';
import { sleep, systemClock, type Clock } from '../runtime/clock.js';
import { recordKey, type AuditRecord } from './audit-event.js';
import type { ExporterConfig } from './config.js';
import { DeliveredSet } from './delivered.js';
import { DestinationError, type AuditDestination } from './destinations/destination.js';
import type { AuditMetrics } from './metrics.js';
import { profileKeeps } from './profile.js';
import { Spool, type Dropped } from './spool.js';

export type AuditSource = 'webhook' | 'log';

export interface ExporterOptions {
  readonly config: ExporterConfig;
  readonly destination: AuditDestination;
  /** Buffer and delivered-set live here (an emptyDir in the cluster). */
  readonly stateDir: string;
  readonly metrics: AuditMetrics;
  readonly log: Log;
  /** Timers of the drain loop. @default systemClock */
  readonly clock?: Clock;
  /** Wall time, epoch ms: buffer ages and the purge. @default Date.now */
  readonly now?: () => number;
  /** Events were dropped (buffer full, retention): a Warning Event is due. */
  readonly onWarning?: (reason: 'BufferFull' | 'RetentionExpired', message: string) => void;
  /** Period of the housekeeping (purge, save, gauges) while nothing fails. @default 5000 */
  readonly tickMs?: number;
}

export interface ExporterStatus {
  readonly destinationUp: boolean | undefined;
  readonly destinationRefused: boolean;
  readonly lastError?: string;
  readonly backlogBytes: number;
  readonly backlogEvents: number;
  /** epoch ms of the oldest buffered batch. */
  readonly backlogOldest?: number;
}

export class Exporter {
  private readonly now: () => number;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  /** undefined until the first write tells. */
  private up: boolean | undefined;
  private refused = false;
  private lastError: string | undefined;
  // One writer at a time keeps the destination in arrival order and the buffer consistent.
  private queue: Promise<unknown> = Promise.resolve();
  private wake: (() => void) | undefined;

  private constructor(
    private readonly options: ExporterOptions,
    private readonly spool: Spool,
    private readonly delivered: DeliveredSet,
  ) {
    this.now = options.now ?? Date.now;
    this.clock = options.clock ?? systemClock;
    this.backoff = new Backoff({ initialMs: 1000, maxMs: 60_000, resetAfterMs: 10 * 60_000, jitter: 0.5 });
  }

  static async open(options: ExporterOptions): Promise<Exporter> {
    const now = options.now ?? Date.now;
    const retentionMs = options.config.intermediateRetentionHours * 3_600_000;
    const spool = await Spool.open({ dir: join(options.stateDir, 'buffer'), maxBytes: options.config.bufferMaxBytes, retentionMs, now });
    const delivered = new DeliveredSet({ retentionMs, now });
    await delivered.load(join(options.stateDir, 'delivered'));
    const exporter = new Exporter(options, spool, delivered);
    exporter.updateGauges();
    return exporter;
  }

  status(): ExporterStatus {
    const oldest = this.spool.oldest;
    return {
      destinationUp: this.up,
      destinationRefused: this.refused,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      backlogBytes: this.spool.bytes,
      backlogEvents: this.spool.events,
      ...(oldest !== undefined ? { backlogOldest: oldest } : {}),
    };
  }

  /**
   * Takes events from a source. Resolves once they are written or buffered on disk; rejects only when
   * the buffer cannot be written either (the webhook then answers 503 and the API server retries).
   */
  accept(records: readonly AuditRecord[], source: AuditSource): Promise<void> {
    const { metrics } = this.options;
    metrics.received.inc({ source }, records.length);
    const kept = records.filter((r) => profileKeeps(this.options.config.profile, r.verb));
    if (kept.length < records.length) metrics.dropped.inc({ reason: 'profile' }, records.length - kept.length);
    return this.serialized(async () => {
      const fresh = this.unseen(kept);
      if (fresh.length === 0) return;
      if (this.spool.isEmpty && this.up !== false) {
        try {
          await this.deliver(fresh);
          return;
        } catch (err) {
          this.markDown(err);
        }
      }
      this.noteDropped(await this.spool.append(fresh), 'BufferFull');
      this.updateGauges();
      this.wake?.();
    });
  }

  /**
   * One pass: purge what is past retention, then send buffered batches oldest first until one fails.
   * Resolves true when the buffer is empty.
   */
  drain(): Promise<boolean> {
    return this.serialized(async () => {
      this.noteDropped(await this.spool.purgeExpired(), 'RetentionExpired');
      for (;;) {
        const next = await this.spool.peek();
        if (!next) break;
        const fresh = this.unseen(next.records);
        try {
          await this.deliver(fresh);
        } catch (err) {
          this.markDown(err);
          this.updateGauges();
          return false;
        }
        await this.spool.remove(next.batch);
      }
      this.updateGauges();
      await this.delivered.save(join(this.options.stateDir, 'delivered'));
      return true;
    });
  }

  /** The drain loop: housekeeping every tick, retries with backoff while the destination fails. Ends when `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const tick = this.options.tickMs ?? 5000;
    while (!signal.aborted) {
      let delay = tick;
      try {
        const empty = await this.drain();
        if (empty) this.backoff.reset();
        else delay = this.backoff.next(this.clock.now());
      } catch (err) {
        this.options.log.error('audit buffer housekeeping failed', { error: String(err) });
        delay = this.backoff.next(this.clock.now());
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        void sleep(delay, signal, this.clock).then(resolve);
      });
      this.wake = undefined;
    }
  }

  /** At shutdown: one last attempt to send the buffer, and the delivered set saved. */
  async close(): Promise<void> {
    try {
      if (this.up !== false) await this.drain();
    } finally {
      await this.serialized(() => this.delivered.save(join(this.options.stateDir, 'delivered')));
      await this.options.destination.close();
    }
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(fn);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Drops what the destination already has, or what repeats within the batch. */
  private unseen(records: readonly AuditRecord[]): AuditRecord[] {
    const batch = new Set<string>();
    const fresh = records.filter((r) => {
      const key = recordKey(r);
      if (this.delivered.has(key) || batch.has(key)) return false;
      batch.add(key);
      return true;
    });
    if (fresh.length < records.length) this.options.metrics.dropped.inc({ reason: 'duplicate' }, records.length - fresh.length);
    return fresh;
  }

  private async deliver(records: AuditRecord[]): Promise<void> {
    const { destination, metrics, log } = this.options;
    if (records.length > 0) await destination.write(records);
    for (const r of records) this.delivered.add(recordKey(r));
    metrics.written.inc({ destination: destination.type }, records.length);
    if (this.up !== true) log.info('audit destination is up', { destination: destination.type });
    this.up = true;
    this.refused = false;
    this.lastError = undefined;
    metrics.destinationUp.set(1);
  }

  private markDown(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (this.up !== false || message !== this.lastError) {
      this.options.log.warn('audit destination unavailable: buffering on disk', { destination: this.options.destination.type, error: message });
    }
    this.up = false;
    this.refused = err instanceof DestinationError && err.refused;
    this.lastError = message;
    this.options.metrics.destinationUp.set(0);
  }

  private noteDropped(d: Dropped, reason: 'BufferFull' | 'RetentionExpired'): void {
    if (d.events === 0) return;
    const label = reason === 'BufferFull' ? 'buffer_full' : 'retention_expired';
    this.options.metrics.dropped.inc({ reason: label }, d.events);
    const message =
      reason === 'BufferFull'
        ? `audit buffer over ${this.options.config.bufferMaxBytes} bytes: dropped the oldest ${d.events} events (${d.batches} batches)`
        : `deleted ${d.events} undelivered audit events older than ${this.options.config.intermediateRetentionHours}h`;
    this.options.log.warn(message, { reason });
    this.options.onWarning?.(reason, message);
  }

  private updateGauges(): void {
    const { metrics } = this.options;
    metrics.backlogBytes.set(this.spool.bytes);
    const oldest = this.spool.oldest;
    metrics.backlogOldestSeconds.set(oldest === undefined ? 0 : Math.max(0, (this.now() - oldest) / 1000));
  }
}
