// The store's in-memory index of day partitions (durable size, events, time span) and the scan that rebuilds it from disk at open.
import { join } from 'node:path';
import type { DcpEvent } from '../api/event.js';
import type { Log } from '../observability/log.js';
import { listDays, partitionFile } from './days.js';
import { checkSegment, truncateFile } from './segment.js';

/** One day partition as the store knows it. */
export interface Partition {
  /** Durable bytes: readers never look past it, so a cursor never points into unsynced data. */
  size: number;
  events: number;
  oldest: number;
  newest: number;
}

export const emptyPartition = (): Partition => ({ size: 0, events: 0, oldest: Infinity, newest: -Infinity });

/** Adds a stored event to its partition's count and time span. */
export function countEvent(p: Partition, e: DcpEvent): void {
  const t = Date.parse(e.time);
  p.events++;
  p.oldest = Math.min(p.oldest, t);
  p.newest = Math.max(p.newest, t);
}

/** A good record shaped like an event; anything else in a partition is passed over. */
export function isStoredEvent(v: unknown): v is DcpEvent {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as { id?: unknown; time?: unknown; data?: unknown };
  return typeof e.id === 'string' && typeof e.time === 'string' && typeof e.data === 'object';
}

/** What open() found. Torn records are the tail of an interrupted write; they were never acknowledged. */
export interface OpenReport {
  readonly partitions: number;
  readonly events: number;
  readonly tornRecords: number;
  readonly truncatedBytes: number;
  readonly corruptRecords: number;
  /**
   * Read-only opens only (a writer repairs instead): whole bad lines after the last good record of
   * a file, which a writer would cut off as torn. A partial last line (a write in progress) is not counted.
   */
  readonly skippedTailRecords: number;
  /** Read-only opens only: non-empty partition files without a single good record (garbage, a foreign file). */
  readonly filesWithoutRecords: number;
  /** Read-only opens only: partition files that could not be read at all, with why (a writer fails instead). */
  readonly unreadableFiles: readonly { readonly file: string; readonly error: string }[];
}

export const EMPTY_OPEN_REPORT: OpenReport = { partitions: 0, events: 0, tornRecords: 0, truncatedBytes: 0, corruptRecords: 0, skippedTailRecords: 0, filesWithoutRecords: 0, unreadableFiles: [] };

/**
 * The scan at open: every record of every partition file checked. A writer cuts a torn tail off and
 * fails on a file it cannot read; a reader (readOnly) changes nothing, reads around what it cannot
 * read and counts it. What it found adds up across the directories scanned, for the OpenReport.
 */
export class PartitionScan {
  private tornRecords = 0;
  private truncatedBytes = 0;
  private corruptRecords = 0;
  private skippedTailRecords = 0;
  private filesWithoutRecords = 0;
  private readonly unreadableFiles: { file: string; error: string }[] = [];

  constructor(private readonly options: { readonly readOnly: boolean; readonly log: Log }) {}

  /** The partitions of one stream's directory, day → summary; `onEvent` sees every stored event with its day. */
  async directory(dir: string, stream: string, onEvent: (e: DcpEvent, day: string) => void): Promise<Map<string, Partition>> {
    const { readOnly, log } = this.options;
    const found = new Map<string, Partition>();
    for (const day of await listDays(dir)) {
      const path = join(dir, partitionFile(day));
      const p = emptyPartition();
      let check;
      try {
        check = await checkSegment(path, (v) => {
          if (!isStoredEvent(v)) return;
          countEvent(p, v);
          onEvent(v, day);
        });
      } catch (err) {
        // A reader reports a file it cannot read and reads the others; a writer must not go on past it.
        if (!readOnly) throw err;
        this.unreadableFiles.push({ file: join(stream, partitionFile(day)), error: err instanceof Error ? err.message : String(err) });
        continue;
      }
      p.size = check.goodEnd;
      this.corruptRecords += check.corruptRecords;
      if (check.size > check.goodEnd) {
        this.tornRecords += check.tornRecords;
        this.truncatedBytes += check.size - check.goodEnd;
        if (readOnly) this.skippedTailRecords += check.badTailLines;
        if (readOnly && check.goodEnd === 0) this.filesWithoutRecords++;
        else log.warn('store: dropped a torn tail left by an interrupted write', { stream, partition: day, records: check.tornRecords, bytes: check.size - check.goodEnd });
        if (!readOnly) await truncateFile(path, check.goodEnd);
      }
      found.set(day, p);
    }
    return found;
  }

  /** What the scan found, for a store that now holds `partitions` raw partitions and `events` raw events. */
  report(partitions: number, events: number): OpenReport {
    const { tornRecords, truncatedBytes, corruptRecords, skippedTailRecords, filesWithoutRecords, unreadableFiles } = this;
    return { partitions, events, tornRecords, truncatedBytes, corruptRecords, skippedTailRecords, filesWithoutRecords, unreadableFiles };
  }
}
