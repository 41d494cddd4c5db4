// Reading and checking partition files record by record, and the fsync plumbing that makes writes durable.
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { decodeRecord } from './record.js';

export interface RawRecord {
  /** The decoded value, or undefined for a corrupt line. */
  readonly value: unknown;
  readonly start: number;
  /** Offset just past the newline. */
  readonly end: number;
}

const CHUNK = 1 << 20;

/**
 * Complete lines of `path` between byte offsets `start` and `end`. Bytes after the last newline
 * (a torn write) are not yielded. A missing file (deleted by retention meanwhile) yields nothing,
 * unless `missingOk` is false: then it throws ENOENT.
 */
export async function* readRecords(path: string, start: number, end = Infinity, missingOk = true): AsyncGenerator<RawRecord> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if (missingOk && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    let pos = start;
    let carry = Buffer.alloc(0);
    const buf = Buffer.alloc(CHUNK);
    while (pos < end) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, end - pos), pos);
      if (bytesRead === 0) break;
      const data = carry.length ? Buffer.concat([carry, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
      const base = pos - carry.length;
      let lineStart = 0;
      for (let nl = data.indexOf(10, lineStart); nl !== -1; nl = data.indexOf(10, lineStart)) {
        yield { value: decodeRecord(data.toString('utf8', lineStart, nl)), start: base + lineStart, end: base + nl + 1 };
        lineStart = nl + 1;
      }
      carry = Buffer.from(data.subarray(lineStart));
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

export interface SegmentCheck {
  /** End of the last good record: everything after it is a torn tail. */
  readonly goodEnd: number;
  readonly size: number;
  /** Bad lines followed by a good one: skipped on every read, kept on disk. */
  readonly corruptRecords: number;
  /** Bad lines and partial bytes after the last good record. */
  readonly tornRecords: number;
  /** Of those, the whole (newline-terminated) bad lines. */
  readonly badTailLines: number;
}

/** Checks every line of a partition, handing each good record to `onRecord` as it streams by. */
export async function checkSegment(path: string, onRecord: (value: unknown) => void): Promise<SegmentCheck> {
  let goodEnd = 0;
  let badSinceGood = 0;
  let corruptRecords = 0;
  let lastEnd = 0;
  for await (const r of readRecords(path, 0)) {
    lastEnd = r.end;
    if (r.value === undefined) {
      badSinceGood++;
      continue;
    }
    corruptRecords += badSinceGood;
    badSinceGood = 0;
    onRecord(r.value);
    goodEnd = r.end;
  }
  const size = await fileSize(path);
  const partialTail = size > lastEnd ? 1 : 0;
  return { goodEnd, size, corruptRecords, tornRecords: badSinceGood + partialTail, badTailLines: badSinceGood };
}

export async function fileSize(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    return (await fh.stat()).size;
  } finally {
    await fh.close();
  }
}

/** Makes a file's creation, rename or deletion durable: the directory entry must reach disk too. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `path` with `data` all at once: a crash leaves either the old file or the new one.
 * With syncDir false the caller syncs the directory itself (once for many files). `beforeCommit`
 * runs right before the rename; throwing leaves the old file (and the scratch `.tmp`) in place.
 */
export async function writeFileAtomic(path: string, data: string | Buffer, options: { syncDir?: boolean; beforeCommit?: () => void } = {}): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  options.beforeCommit?.();
  await rename(tmp, path);
  if (options.syncDir ?? true) await fsyncDir(dirname(path));
}

export async function truncateFile(path: string, length: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.truncate(length);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function removeIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
