// The file destination: <path>/YYYY-MM-DD/HH.jsonl by event time (UTC), one event per line, fsync'd.
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditRecord } from '../audit-event.js';
import { byHour, DestinationError, hourParts, type AuditDestination } from './destination.js';

export class FileDestination implements AuditDestination {
  readonly type = 'file' as const;

  constructor(private readonly path: string) {}

  fileFor(time: number): string {
    const { y, m, d, h } = hourParts(time);
    return join(this.path, `${y}-${m}-${d}`, `${h}.jsonl`);
  }

  async write(records: readonly AuditRecord[]): Promise<void> {
    try {
      for (const [hour, group] of byHour(records)) {
        const file = this.fileFor(hour);
        await mkdir(join(file, '..'), { recursive: true });
        const fh = await open(file, 'a+', 0o640);
        try {
          // After a crash mid-write the file may end in half a line: start on a fresh one so readers lose only that line.
          const { size } = await fh.stat();
          const last = Buffer.alloc(1);
          if (size > 0) await fh.read(last, 0, 1, size - 1);
          const lead = size > 0 && last[0] !== 0x0a ? '\n' : '';
          await fh.write(lead + group.map((r) => `${r.json}\n`).join(''));
          await fh.datasync();
        } finally {
          await fh.close();
        }
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A read-only or unwritable directory will not heal by itself; a full disk may.
      throw new DestinationError(`file destination ${this.path}: ${String(err)}`, code === 'EACCES' || code === 'EROFS', { cause: err });
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
