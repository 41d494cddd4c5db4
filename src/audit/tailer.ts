// Tails an API server audit log (--audit-log-path, JSON lines): follows rotation and truncation, and persists
// its read position only after the events were accepted, so a restart neither loses nor repeats lines.
import { open, readdir, readFile, rename, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Log } from '../observability/log.js';
import { sleep, systemClock, type Clock } from '../runtime/clock.js';
import { MalformedAudit, parseAuditLine, type AuditRecord } from './audit-event.js';
import type { AuditMetrics } from './metrics.js';

export interface TailerOptions {
  readonly path: string;
  /** Where the position is kept (JSON: inode and offset). */
  readonly stateFile: string;
  readonly onRecords: (records: AuditRecord[]) => Promise<void>;
  readonly metrics: AuditMetrics;
  readonly log: Log;
  /** @default 500 */
  readonly pollMs?: number;
  readonly clock?: Clock;
}

interface Position {
  ino: number;
  offset: number;
}

interface Open {
  fh: FileHandle;
  ino: number;
  offset: number;
}

const CHUNK = 1024 * 1024;

export class LogTailer {
  private current: Open | undefined;

  constructor(private readonly options: TailerOptions) {}

  async run(signal: AbortSignal): Promise<void> {
    try {
      while (!signal.aborted) {
        try {
          await this.poll();
        } catch (err) {
          this.options.log.warn('audit log tail failed; retrying', { path: this.options.path, error: String(err) });
        }
        await sleep(this.options.pollMs ?? 500, signal, this.options.clock ?? systemClock);
      }
    } finally {
      await this.close();
    }
  }

  /** Closes the file being followed (run() does so when it ends; a caller driving poll() itself must). */
  async close(): Promise<void> {
    await this.current?.fh.close();
    this.current = undefined;
  }

  /** Reads whatever is new: the rest of a rotated file first, then the file at the path. */
  async poll(): Promise<void> {
    if (!this.current) {
      const resumed = await this.resume();
      if (!resumed) return;
      this.current = resumed;
    }
    const cur = this.current;
    const { size } = await cur.fh.stat();
    if (size < cur.offset) {
      this.options.log.info('audit log truncated: reading it from the start', { path: this.options.path });
      cur.offset = 0;
      await this.save(cur);
    }
    await this.readToEnd(cur);
    const atPath = await stat(this.options.path).catch(() => undefined);
    if (atPath && atPath.ino !== cur.ino) {
      // Rotated: the old file is read to its end above; the new one starts at 0.
      this.options.log.info('audit log rotated', { path: this.options.path });
      await cur.fh.close();
      this.current = { fh: await open(this.options.path, 'r'), ino: atPath.ino, offset: 0 };
      await this.save(this.current);
      await this.readToEnd(this.current);
    }
  }

  /** Opens where the last run stopped; a file rotated away meanwhile is finished first. */
  private async resume(): Promise<Open | undefined> {
    const atPath = await stat(this.options.path).catch(() => undefined);
    if (!atPath) return undefined;
    const saved = await this.load();
    if (saved && saved.ino !== atPath.ino) {
      const rotated = await this.findByInode(saved.ino);
      if (rotated) {
        const old: Open = { fh: await open(rotated, 'r'), ino: saved.ino, offset: saved.offset };
        try {
          await this.readToEnd(old);
        } finally {
          await old.fh.close();
        }
      }
    }
    const offset = saved && saved.ino === atPath.ino && saved.offset <= atPath.size ? saved.offset : 0;
    const resumed: Open = { fh: await open(this.options.path, 'r'), ino: atPath.ino, offset };
    await this.save(resumed);
    return resumed;
  }

  private async findByInode(ino: number): Promise<string | undefined> {
    const dir = dirname(this.options.path);
    const prefix = basename(this.options.path).replace(/\.[^.]*$/, '');
    for (const name of await readdir(dir)) {
      if (!name.startsWith(prefix)) continue;
      const s = await stat(join(dir, name)).catch(() => undefined);
      if (s?.ino === ino) return join(dir, name);
    }
    return undefined;
  }

  private async readToEnd(cur: Open): Promise<void> {
    const buffer = Buffer.alloc(CHUNK);
    let carry = Buffer.alloc(0);
    for (;;) {
      const { bytesRead } = await cur.fh.read(buffer, 0, CHUNK, cur.offset + carry.length);
      if (bytesRead === 0) return; // a partial last line waits for the rest
      const data = Buffer.concat([carry, buffer.subarray(0, bytesRead)]);
      const end = data.lastIndexOf(0x0a);
      if (end < 0) {
        carry = data;
        continue;
      }
      const complete = data.subarray(0, end + 1);
      carry = Buffer.from(data.subarray(end + 1));
      const records: AuditRecord[] = [];
      let malformed = 0;
      for (const line of complete.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        try {
          records.push(parseAuditLine(line));
        } catch (err) {
          if (!(err instanceof MalformedAudit)) throw err;
          malformed += 1;
        }
      }
      if (malformed > 0) {
        this.options.metrics.dropped.inc({ reason: 'malformed' }, malformed);
        this.options.log.warn('skipped malformed audit log lines', { path: this.options.path, lines: malformed });
      }
      if (records.length > 0) await this.options.onRecords(records);
      // NOTE: the position moves only after the events were accepted (written or buffered).
      cur.offset += complete.length;
      await this.save(cur);
    }
  }

  private async load(): Promise<Position | undefined> {
    try {
      const p = JSON.parse(await readFile(this.options.stateFile, 'utf8')) as Partial<Position>;
      return typeof p.ino === 'number' && typeof p.offset === 'number' ? { ino: p.ino, offset: p.offset } : undefined;
    } catch {
      return undefined;
    }
  }

  private async save(cur: Open): Promise<void> {
    const tmp = `${this.options.stateFile}.tmp`;
    await writeFile(tmp, JSON.stringify({ ino: cur.ino, offset: cur.offset }));
    await rename(tmp, this.options.stateFile);
  }
}
