// The file sink: appends each batch as JSON lines to <path>/events-YYYY-MM-DD.jsonl and fsyncs.
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { DcpEvent } from '../api/event.js';
import type { EventSink } from './sink.js';
import { SinkError } from './sink.js';

export interface FileSinkOptions {
  readonly name: string;
  /** Directory; created if missing. */
  readonly path: string;
  /** Names the day file. @default Date.now */
  readonly now?: () => number;
}

export class FileSink implements EventSink {
  readonly type = 'file' as const;
  readonly name: string;
  private readonly path: string;
  private readonly now: () => number;

  constructor(options: FileSinkOptions) {
    this.name = options.name;
    this.path = options.path;
    this.now = options.now ?? Date.now;
  }

  /** The file a batch sent now goes to. */
  currentFile(): string {
    return join(this.path, `events-${new Date(this.now()).toISOString().slice(0, 10)}.jsonl`);
  }

  async send(events: readonly DcpEvent[], signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new SinkError(`file sink ${this.name}: aborted`, true);
    if (events.length === 0) return;
    try {
      await mkdir(this.path, { recursive: true });
      const fh = await open(this.currentFile(), 'a+', 0o640);
      try {
        // After a crash mid-write the file may end in half a line; start on a fresh one so readers lose only that line.
        const { size } = await fh.stat();
        const last = Buffer.alloc(1);
        if (size > 0) await fh.read(last, 0, 1, size - 1);
        const lead = size > 0 && last[0] !== 0x0a ? '\n' : '';
        await fh.write(lead + events.map((e) => `${JSON.stringify(e)}\n`).join(''));
        await fh.datasync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      // A full or read-only disk may recover; keep the backlog and retry.
      throw new SinkError(`file sink ${this.name}: ${String(err)}`, true);
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
