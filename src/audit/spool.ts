// The intermediate buffer: batches the destination could not take yet, on disk, bounded in bytes and in age.
import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAuditLine, type AuditRecord } from './audit-event.js';

export interface SpoolOptions {
  readonly dir: string;
  readonly maxBytes: number;
  /** Batches received longer ago than this are deleted, delivered or not. */
  readonly retentionMs: number;
  /** Epoch ms; injectable so tests can let 48 hours pass. */
  readonly now: () => number;
}

export interface SpooledBatch {
  readonly file: string;
  readonly receivedAt: number;
  readonly count: number;
  readonly bytes: number;
}

/** What a call removed without delivering it. */
export interface Dropped {
  readonly batches: number;
  readonly events: number;
}

// <receivedAt ms>-<sequence>-<event count>.jsonl: the name alone orders, ages and counts a batch.
const NAME = /^(\d{13,})-(\d{6})-(\d+)\.jsonl$/;

/**
 * NOTE: a batch is one fsync'd file, written before the webhook is answered, and removed only after the
 * destination took it (or the bound or the retention forced it out, which is counted).
 */
export class Spool {
  private batches: SpooledBatch[] = [];
  private sequence = 0;
  private total = 0;

  private constructor(private readonly options: SpoolOptions) {}

  static async open(options: SpoolOptions): Promise<Spool> {
    const spool = new Spool(options);
    await mkdir(options.dir, { recursive: true });
    for (const name of (await readdir(options.dir)).sort()) {
      const m = NAME.exec(name);
      if (!m) continue;
      const file = join(options.dir, name);
      const { size } = await stat(file);
      spool.batches.push({ file, receivedAt: Number(m[1]), count: Number(m[3]), bytes: size });
      spool.total += size;
      spool.sequence = Math.max(spool.sequence, Number(m[2]) + 1);
    }
    return spool;
  }

  get bytes(): number {
    return this.total;
  }

  get isEmpty(): boolean {
    return this.batches.length === 0;
  }

  get events(): number {
    return this.batches.reduce((n, b) => n + b.count, 0);
  }

  /** receivedAt of the oldest batch kept. */
  get oldest(): number | undefined {
    return this.batches[0]?.receivedAt;
  }

  /** Writes a batch (fsync'd), then drops the oldest batches while over the bound. Throws when the disk refuses. */
  async append(records: readonly AuditRecord[]): Promise<Dropped> {
    if (records.length === 0) return { batches: 0, events: 0 };
    const receivedAt = this.options.now();
    const name = `${String(receivedAt).padStart(13, '0')}-${String(this.sequence++ % 1_000_000).padStart(6, '0')}-${records.length}.jsonl`;
    const file = join(this.options.dir, name);
    const body = records.map((r) => `${r.json}\n`).join('');
    const fh = await open(file, 'wx', 0o600);
    try {
      await fh.write(body);
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(file, { force: true });
      throw err;
    }
    await fh.close();
    const bytes = Buffer.byteLength(body);
    this.batches.push({ file, receivedAt, count: records.length, bytes });
    this.total += bytes;
    return this.evictOverBound();
  }

  /** The oldest batch and its events. */
  async peek(): Promise<{ batch: SpooledBatch; records: AuditRecord[] } | undefined> {
    const batch = this.batches[0];
    if (!batch) return undefined;
    const text = await readFile(batch.file, 'utf8');
    // Every line was a valid event when it was written; a torn last line (crash mid-write) is left out.
    const records: AuditRecord[] = [];
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        records.push(parseAuditLine(line));
      } catch {
        // torn line
      }
    }
    return { batch, records };
  }

  async remove(batch: SpooledBatch): Promise<void> {
    const i = this.batches.indexOf(batch);
    if (i < 0) return;
    await rm(batch.file, { force: true });
    this.batches.splice(i, 1);
    this.total -= batch.bytes;
  }

  /** Deletes every batch older than the retention (NOTE: whether or not it was delivered). */
  async purgeExpired(): Promise<Dropped> {
    const cutoff = this.options.now() - this.options.retentionMs;
    let batches = 0;
    let events = 0;
    for (const b of [...this.batches]) {
      if (b.receivedAt > cutoff) break;
      await this.remove(b);
      batches += 1;
      events += b.count;
    }
    return { batches, events };
  }

  private async evictOverBound(): Promise<Dropped> {
    let batches = 0;
    let events = 0;
    // Oldest first; the newest batch stays even if it alone is over the bound, so the bound never loses the present.
    while (this.total > this.options.maxBytes && this.batches.length > 1) {
      const b = this.batches[0];
      if (!b) break;
      await this.remove(b);
      batches += 1;
      events += b.count;
    }
    return { batches, events };
  }
}
