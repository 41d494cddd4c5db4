// The embedded event store: day-partitioned, checksummed, fsync'd JSON lines with dedup, retention and daily aggregates.
import { constants } from 'node:fs';
import { mkdir, open, readFile, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { CategoryName } from '../api/policy.js';
import type { DcpEvent, EventName } from '../api/event.js';
import { silentLog, type Log } from '../observability/log.js';
import { counter, type Registry } from '../observability/metrics.js';
import { DayAggregator } from './aggregate.js';
import { DAY_MS, dayOf, dayStart, nextDay, partitionFile } from './days.js';
import { acquireLock, reclaimLock } from './lock.js';
import { DataDirectoryLostError, exists, unlinked, writeBack } from './lost-directory.js';
import type { WriteHealth } from './write-health.js';
import { encodeRecord } from './record.js';
import { countEvent, EMPTY_OPEN_REPORT, emptyPartition, isStoredEvent, PartitionScan, type OpenReport, type Partition } from './partitions.js';
import { fsyncDir, readRecords, removeIfExists, truncateFile, writeFileAtomic } from './segment.js';

/** `raw`: every stored event, partitioned by the day the store received it. `aggregates`: DailyAggregates by the day they summarise. */
export type Stream = 'raw' | 'aggregates';

/** A place in a stream: just past a record. Cursors of sinks are positions. */
export interface StorePosition {
  readonly partition: string;
  readonly offset: number;
}

export interface StoredRecord {
  readonly event: DcpEvent;
  /** Just past this record: where to continue after it. */
  readonly position: StorePosition;
}

export interface Retention {
  readonly rawDays: number;
  readonly aggregateDays: number;
}

export const DEFAULT_RETENTION: Retention = { rawDays: 28, aggregateDays: 365 };

export interface EventStoreOptions {
  readonly dataDir: string;
  /** @default DEFAULT_RETENTION */
  readonly retention?: Retention;
  /** Milliseconds since the epoch. @default Date.now */
  readonly now?: () => number;
  /** For `dcp events` beside a running operator: no lock, no repair, no writes. @default false */
  readonly readOnly?: boolean;
  readonly log?: Log;
  readonly registry?: Registry;
  /** Told of every append that fails or succeeds (StoreWritable, /readyz). */
  readonly health?: WriteHealth;
  /**
   * Checked right before each group-commit batch is written; throwing fails the batch's appends
   * and writes nothing. A leader paused with appends queued must not write them once its lease
   * has lapsed (a check when the append was accepted is not enough: the batch is written later).
   */
  readonly beforeWrite?: () => void;
}

export interface AppendResult {
  readonly stored: number;
  /** Already stored within the retention window (same id). */
  readonly duplicates: number;
  /** Older than rawDays: dropped, it would be purged at once. */
  readonly expired: number;
}

/** The shape of the policy's status.store. */
export interface StoreStats {
  readonly events: number;
  readonly oldestEventTime?: string;
  readonly bytes: number;
}

export interface SweepReport {
  readonly aggregatedDays: string[];
  readonly deletedRaw: string[];
  readonly deletedAggregates: string[];
}

export interface ReadQuery {
  readonly stream?: Stream;
  readonly category?: CategoryName;
  readonly name?: EventName;
  readonly since?: Date;
  /** Keep the newest `limit` matches. */
  readonly limit?: number;
}

export class StoreClosedError extends Error {
  constructor() {
    super('the event store is closed');
    this.name = 'StoreClosedError';
  }
}

export class StoreReadOnlyError extends Error {
  constructor() {
    super('the event store was opened read-only');
    this.name = 'StoreReadOnlyError';
  }
}

interface Pending {
  readonly lines: string[];
  readonly events: DcpEvent[];
  readonly done: (err?: unknown) => void;
}

const LAST_AGGREGATED = 'LAST';
const STREAMS: readonly Stream[] = ['raw', 'aggregates'];

async function readLastAggregated(path: string): Promise<string | undefined> {
  try {
    const day = (await readFile(path, 'utf8')).trim();
    return /^\d{4}-\d{2}-\d{2}$/.test(day) ? day : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export class EventStore {
  private readonly dataDir: string;
  private readonly rawDir: string;
  private readonly aggDir: string;
  private readonly now: () => number;
  private readonly log: Log;
  private readonly readOnly: boolean;
  private readonly health: WriteHealth | undefined;
  private readonly beforeWrite: (() => void) | undefined;
  private retention: Retention;
  private readonly partitions: Record<Stream, Map<string, Partition>> = { raw: new Map(), aggregates: new Map() };
  /** id → raw partition holding it ('' while its batch is in flight). */
  private readonly ids = new Map<string, string>();
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private handle: { day: string; fh: FileHandle } | undefined;
  private waiters = new Set<() => void>();
  private changes = 0;
  private releaseLock: (() => Promise<void>) | undefined;
  /** The newest day whose aggregates are written (persisted in aggregates/LAST). */
  private lastAggregated: string | undefined;
  private closed = false;
  private report: OpenReport = EMPTY_OPEN_REPORT;
  private readonly appended;
  private readonly duplicates;

  private constructor(options: EventStoreOptions) {
    this.dataDir = options.dataDir;
    this.rawDir = join(options.dataDir, 'raw');
    this.aggDir = join(options.dataDir, 'aggregates');
    this.now = options.now ?? Date.now;
    this.log = options.log ?? silentLog;
    this.readOnly = options.readOnly ?? false;
    this.health = options.health;
    this.beforeWrite = options.beforeWrite;
    this.retention = options.retention ?? DEFAULT_RETENTION;
    this.appended = counter(options.registry, 'dcp_store_events_appended_total', 'Events durably appended to the store.', ['category']);
    this.duplicates = counter(options.registry, 'dcp_store_duplicates_total', 'Events not stored because their id was already stored.', []);
  }

  /** Opens (creating if needed) the store under `dataDir`, checking every record and cutting off a torn tail. */
  static async open(options: EventStoreOptions): Promise<EventStore> {
    const store = new EventStore(options);
    if (!store.readOnly) {
      await mkdir(store.rawDir, { recursive: true });
      await mkdir(store.aggDir, { recursive: true });
      store.releaseLock = await acquireLock(options.dataDir);
    }
    try {
      await store.load();
    } catch (err) {
      await store.releaseLock?.();
      throw err;
    }
    return store;
  }

  get openReport(): OpenReport {
    return this.report;
  }

  /** Rebuilds the partition index and the id set from disk (see PartitionScan for what it repairs or reports). */
  private async load(): Promise<void> {
    const scan = new PartitionScan({ readOnly: this.readOnly, log: this.log });
    for (const stream of STREAMS) {
      const dir = this.dir(stream);
      if (stream === 'aggregates' && !this.readOnly) await this.removeTempFiles(dir);
      const found = await scan.directory(dir, stream, (e, day) => {
        if (stream === 'raw') this.ids.set(e.id, day);
      });
      for (const [day, p] of found) this.partitions[stream].set(day, p);
    }
    this.lastAggregated = await readLastAggregated(join(this.aggDir, LAST_AGGREGATED));
    this.report = scan.report(this.partitions.raw.size, this.ids.size);
    if (this.report.corruptRecords > 0) this.log.warn('store: skipping corrupt records', { records: this.report.corruptRecords });
  }

  private async removeTempFiles(dir: string): Promise<void> {
    for (const name of await readdir(dir)) if (name.endsWith('.tmp')) await unlink(join(dir, name));
  }

  private dir(stream: Stream): string {
    return stream === 'raw' ? this.rawDir : this.aggDir;
  }

  private days(stream: Stream): string[] {
    return [...this.partitions[stream].keys()].sort();
  }

  /** Events older than this are past retention: invisible now, deleted at the next sweep. */
  private cutoff(stream: Stream): number {
    return this.now() - (stream === 'raw' ? this.retention.rawDays : this.retention.aggregateDays) * DAY_MS;
  }

  setRetention(retention: Retention): void {
    this.retention = retention;
  }

  /**
   * Stores events not seen before; resolves once they are on disk (fsync). Concurrent calls share
   * one write and one fsync (group commit).
   */
  async append(events: readonly DcpEvent[]): Promise<AppendResult> {
    this.assertWritable();
    const cutoff = this.cutoff('raw');
    const lines: string[] = [];
    const accepted: DcpEvent[] = [];
    let duplicates = 0;
    let expired = 0;
    // Validation upstream guarantees RFC 3339 times; a NaN here would poison stats and retention.
    const bad = events.find((e) => !Number.isFinite(Date.parse(e.time)));
    if (bad) throw new TypeError(`event ${bad.id} has no valid time: validate events before storing them`);
    for (const e of events) {
      if (this.ids.has(e.id)) duplicates++;
      else if (Date.parse(e.time) < cutoff) expired++;
      else {
        this.ids.set(e.id, '');
        lines.push(encodeRecord(e));
        accepted.push(e);
      }
    }
    if (duplicates) this.duplicates.inc(duplicates);
    if (accepted.length > 0) {
      await new Promise<void>((resolve, reject) => {
        this.pending.push({ lines, events: accepted, done: (err) => (err === undefined ? resolve() : reject(err)) });
        this.flushing ??= this.flushLoop();
      });
    }
    return { stored: accepted.length, duplicates, expired };
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        await this.exclusive(() => this.writeBatch(batch));
      }
    } finally {
      // No await between the loop's last check and here, so no append can slip through unflushed.
      this.flushing = undefined;
    }
  }

  /** Appends go to today's partition, or a newer one if the clock stepped back: never behind a cursor. */
  private writeDay(): string {
    const today = dayOf(this.now());
    const newest = this.days('raw').at(-1);
    return newest !== undefined && newest > today ? newest : today;
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    try {
      this.beforeWrite?.();
    } catch (err) {
      // Refused, not failed: nothing was written and the disk is fine, so the write health stays.
      for (const b of batch) for (const e of b.events) this.ids.delete(e.id);
      for (const b of batch) b.done(err);
      return;
    }
    const day = this.writeDay();
    const p = this.partitions.raw.get(day) ?? emptyPartition();
    const buf = Buffer.from(batch.flatMap((b) => b.lines).join(''));
    try {
      // Refused after a write-back, and held in StoreWritable for a while: writes work again, but someone should see it.
      const lost = await this.recoverLostDirectory(this.handle === undefined);
      if (lost) throw lost;
      const fh = await this.fileFor(day);
      this.partitions.raw.set(day, p);
      // Positional writes at the durable size: a failed partial write is simply overwritten next time.
      for (let written = 0; written < buf.length; ) {
        const { bytesWritten } = await fh.write(buf, written, buf.length - written, p.size + written);
        written += bytesWritten;
      }
      await fh.datasync();
    } catch (err) {
      await this.closeFile().catch(() => undefined);
      await truncateFile(join(this.rawDir, partitionFile(day)), p.size).catch(() => undefined);
      for (const b of batch) for (const e of b.events) this.ids.delete(e.id);
      if (!(err instanceof DataDirectoryLostError)) {
        this.log.error('store: write failed', { partition: day, error: String(err) });
        this.health?.failed('append', err);
      }
      for (const b of batch) b.done(err);
      return;
    }
    this.health?.succeeded('append');
    p.size += buf.length;
    for (const b of batch) {
      for (const e of b.events) {
        this.ids.set(e.id, day);
        countEvent(p, e);
        this.appended.inc({ category: e.category });
      }
      b.done();
    }
    this.notify();
  }

  /**
   * Notices the data directory deleted under the running store (the open partition unlinked; with `full`,
   * also any known partition file gone) and recovers: recreates the directories and the lock, writes the
   * open partition back from its handle byte for byte (cursors into it stay valid), and forgets the
   * partitions that are gone. Logs and reports it as an append failure (held in view for a while); returns the error, or undefined
   * when nothing was lost. Runs under exclusive().
   */
  private async recoverLostDirectory(full: boolean): Promise<DataDirectoryLostError | undefined> {
    if (this.readOnly) return undefined;
    const open = this.handle;
    const openLost = open !== undefined && (await unlinked(open.fh));
    if (!openLost && !full) return undefined;
    const gone: { stream: Stream; day: string }[] = [];
    for (const stream of STREAMS) {
      for (const day of this.days(stream)) {
        if (openLost && stream === 'raw' && day === open.day) continue;
        if (!(await exists(join(this.dir(stream), partitionFile(day))))) gone.push({ stream, day });
      }
    }
    if (!openLost && gone.length === 0) return undefined;
    await mkdir(this.rawDir, { recursive: true });
    await mkdir(this.aggDir, { recursive: true });
    await reclaimLock(this.dataDir);
    let keptEvents = 0;
    if (openLost) {
      const p = this.partitions.raw.get(open.day) ?? emptyPartition();
      await writeBack(open.fh, p.size, join(this.rawDir, partitionFile(open.day)));
      keptEvents = p.events;
      await this.closeFile();
    }
    let lostEvents = 0;
    for (const { stream, day } of gone) {
      lostEvents += stream === 'raw' ? (this.partitions.raw.get(day)?.events ?? 0) : 0;
      this.partitions[stream].delete(day);
    }
    const goneRaw = new Set(gone.filter((g) => g.stream === 'raw').map((g) => g.day));
    for (const [id, day] of this.ids) if (goneRaw.has(day)) this.ids.delete(id);
    if (this.lastAggregated !== undefined && !(await exists(join(this.aggDir, LAST_AGGREGATED)))) {
      await writeFileAtomic(join(this.aggDir, LAST_AGGREGATED), `${this.lastAggregated}\n`);
    }
    const err = new DataDirectoryLostError(
      `the data directory ${this.dataDir} was deleted under the running operator: recreated it, wrote back the open partition (${keptEvents} events); ${gone.length} other partition(s) with ${lostEvents} raw events are gone`,
    );
    this.log.error('store: the data directory was deleted under the running operator', { dataDir: this.dataDir, keptEvents, lostPartitions: gone.map((g) => `${g.stream}/${g.day}`), lostEvents });
    this.health?.failed('append', err, true);
    this.notify();
    return err;
  }

  private async fileFor(day: string): Promise<FileHandle> {
    if (this.handle?.day === day) return this.handle.fh;
    await this.closeFile();
    // Cheap here (once per file opened), and a directory deleted while no file was open comes back by itself.
    await mkdir(this.rawDir, { recursive: true });
    const path = join(this.rawDir, partitionFile(day));
    const fh = await open(path, constants.O_RDWR | constants.O_CREAT, 0o640);
    // A new file's directory entry must be durable too, or a crash could lose the whole partition.
    if (!this.partitions.raw.has(day)) await fsyncDir(this.rawDir);
    this.handle = { day, fh };
    return fh;
  }

  private async closeFile(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    await h?.fh.close();
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private notify(): void {
    this.changes++;
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const w of waiters) w();
  }

  /** Bumped at every append and aggregation; pass it to waitForChange. */
  get version(): number {
    return this.changes;
  }

  /**
   * Resolves once the store has changed since `version` (at once if it already has), or when
   * `signal` aborts. Readers take the version before reading, so no append slips between.
   */
  waitForChange(version: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (this.changes !== version || signal?.aborted) return resolve();
      const done = (): void => {
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Up to `max` records after `after` (from the start when undefined), skipping corrupt and expired
   * ones. `next` is where to continue; it moves past skipped records too.
   */
  async readAfter(stream: Stream, after: StorePosition | undefined, max: number): Promise<{ records: StoredRecord[]; next: StorePosition | undefined }> {
    const records: StoredRecord[] = [];
    const cutoff = this.cutoff(stream);
    let next = after;
    for (const day of this.days(stream)) {
      if (after && day < after.partition) continue;
      const p = this.partitions[stream].get(day);
      if (!p) continue;
      const start = after && day === after.partition ? after.offset : 0;
      // NOTE: read the durable size once; appends landing during the read belong to the next call.
      const end = p.size;
      const path = join(this.dir(stream), partitionFile(day));
      if (start < end && !(await exists(path))) {
        // Gone without retention deleting it: never move a cursor past records the store may still hold open.
        await this.exclusive(() => this.recoverLostDirectory(true));
        if (this.partitions[stream].get(day) !== p) continue;
      }
      for await (const r of readRecords(path, start, end, false)) {
        next = { partition: day, offset: r.end };
        if (isStoredEvent(r.value) && Date.parse(r.value.time) >= cutoff) records.push({ event: r.value, position: next });
        if (records.length >= max) return { records, next };
      }
      next = { partition: day, offset: Math.max(start, end) };
    }
    return { records, next };
  }

  /** For the CLI: matching events in store order, the newest `limit` of them. */
  async read(query: ReadQuery = {}): Promise<DcpEvent[]> {
    const stream = query.stream ?? 'raw';
    const since = Math.max(this.cutoff(stream), query.since?.getTime() ?? -Infinity);
    const limit = query.limit ?? Infinity;
    let out: DcpEvent[] = [];
    for (const day of this.days(stream)) {
      const p = this.partitions[stream].get(day);
      if (!p || p.newest < since) continue;
      for await (const r of readRecords(join(this.dir(stream), partitionFile(day)), 0, p.size)) {
        const e = r.value;
        if (!isStoredEvent(e) || Date.parse(e.time) < since) continue;
        if ((query.category && e.category !== query.category) || (query.name && e.name !== query.name)) continue;
        out.push(e);
        if (out.length >= 2 * limit) out = out.slice(-limit);
      }
    }
    return limit === Infinity ? out : out.slice(-limit);
  }

  stats(): StoreStats {
    let events = 0;
    let bytes = 0;
    let oldest = Infinity;
    for (const p of this.partitions.raw.values()) {
      events += p.events;
      bytes += p.size;
      oldest = Math.min(oldest, p.oldest);
    }
    for (const p of this.partitions.aggregates.values()) bytes += p.size;
    return Number.isFinite(oldest) ? { events, oldestEventTime: new Date(oldest).toISOString(), bytes } : { events, bytes };
  }

  /**
   * Retention: first writes the daily aggregates of finished days, then deletes raw partitions whose
   * whole day is older than rawDays and aggregate partitions older than aggregateDays.
   */
  sweep(): Promise<SweepReport> {
    this.assertWritable();
    return this.exclusive(async () => {
      const aggregatedDays = await this.aggregateFinishedDays();
      const deletedRaw = await this.deleteBefore('raw');
      const deletedAggregates = await this.deleteBefore('aggregates');
      if (aggregatedDays.length > 0) this.notify();
      if (deletedRaw.length + deletedAggregates.length > 0) this.log.info('store: retention sweep', { deletedRaw, deletedAggregates });
      return { aggregatedDays, deletedRaw, deletedAggregates };
    });
  }

  /**
   * Writes one aggregates file per finished day that has events (days without any get none).
   * NOTE: days are done in order and never redone (the newer of LAST and the newest file says how far
   * we got), so an aggregates cursor never sees a file change or appear behind it. Events arriving
   * after their day was aggregated stay in raw only.
   */
  private async aggregateFinishedDays(): Promise<string[]> {
    const yesterday = dayOf(this.now() - DAY_MS);
    const done = [this.lastAggregated, this.days('aggregates').at(-1)].filter((d): d is string => d !== undefined).sort().at(-1);
    let oldestRaw = Infinity;
    for (const p of this.partitions.raw.values()) oldestRaw = Math.min(oldestRaw, p.oldest);
    let first = done !== undefined ? nextDay(done) : Number.isFinite(oldestRaw) ? dayOf(oldestRaw) : undefined;
    if (first === undefined) return [];
    const earliestKept = dayOf(this.cutoff('aggregates'));
    if (first < earliestKept) first = earliestKept;
    if (first > yesterday) return [];

    const aggregators = new Map<string, DayAggregator>();
    for (let d = first; d <= yesterday; d = nextDay(d)) aggregators.set(d, new DayAggregator(d));
    for (const day of this.days('raw')) {
      const p = this.partitions.raw.get(day);
      if (!p || p.newest < dayStart(first)) continue;
      for await (const r of readRecords(join(this.rawDir, partitionFile(day)), 0, p.size)) {
        if (isStoredEvent(r.value)) aggregators.get(dayOf(Date.parse(r.value.time)))?.add(r.value);
      }
    }
    for (const [day, agg] of aggregators) {
      const events = agg.result();
      if (events.length === 0) continue;
      const text = events.map((e) => encodeRecord(e)).join('');
      await writeFileAtomic(join(this.aggDir, partitionFile(day)), text, { syncDir: false });
      const p = emptyPartition();
      p.size = Buffer.byteLength(text);
      for (const e of events) countEvent(p, e);
      this.partitions.aggregates.set(day, p);
    }
    // One directory sync covers every rename above; LAST's own write syncs it again after.
    await fsyncDir(this.aggDir);
    await writeFileAtomic(join(this.aggDir, LAST_AGGREGATED), `${yesterday}\n`);
    this.lastAggregated = yesterday;
    return [...aggregators.keys()];
  }

  private async deleteBefore(stream: Stream): Promise<string[]> {
    const cutoff = this.cutoff(stream);
    const deleted: string[] = [];
    for (const day of this.days(stream)) {
      // A partition goes whole once its last possible instant is past retention.
      if (dayStart(day) + DAY_MS > cutoff) break;
      if (this.handle?.day === day) await this.closeFile();
      await removeIfExists(join(this.dir(stream), partitionFile(day)));
      this.partitions[stream].delete(day);
      deleted.push(day);
    }
    if (deleted.length === 0) return deleted;
    await fsyncDir(this.dir(stream));
    if (stream === 'raw') {
      const gone = new Set(deleted);
      for (const [id, day] of this.ids) if (gone.has(day)) this.ids.delete(id);
    }
    return deleted;
  }

  /** Waits for acknowledged-pending appends, then releases the file and the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing) await this.flushing;
    await this.exclusive(() => this.closeFile());
    await this.releaseLock?.();
    this.notify();
  }

  private assertWritable(): void {
    if (this.closed) throw new StoreClosedError();
    if (this.readOnly) throw new StoreReadOnlyError();
  }
}
