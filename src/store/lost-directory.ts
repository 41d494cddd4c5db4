// The data directory deleted under the running store: how it is noticed, and how what the store still holds open is written back.
import { stat, type FileHandle } from 'node:fs/promises';
import { writeFileAtomic } from './segment.js';

/**
 * The data directory (or partition files in it) vanished while the store was running: `rm -rf` of the
 * directory, a volume wiped. Carries the ENOENT code so that metrics and conditions file it with other
 * missing-file failures, and a message that says what was written back and what is gone.
 */
export class DataDirectoryLostError extends Error {
  readonly code = 'ENOENT';

  constructor(message: string) {
    super(message);
    this.name = 'DataDirectoryLostError';
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Whether a file the store holds open has lost its last name. NOTE: writes to such a file succeed and
 * fsync says they are durable, yet no reader will ever find them: it must be noticed before writing.
 */
export async function unlinked(fh: FileHandle): Promise<boolean> {
  return (await fh.stat()).nlink === 0;
}

/** Writes the first `size` bytes of an open (unlinked) file to `path`, durably: the same bytes, so positions into it stay valid. */
export async function writeBack(fh: FileHandle, size: number, path: string): Promise<void> {
  const buf = Buffer.alloc(size);
  for (let read = 0; read < size; ) {
    const { bytesRead } = await fh.read(buf, read, size - read, read);
    if (bytesRead === 0) throw new Error(`${path}: the open file ended at ${read} of ${size} bytes`);
    read += bytesRead;
  }
  await writeFileAtomic(path, buf);
}
