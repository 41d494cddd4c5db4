// One writer per data dir: a LOCK file holding the owner's pid, taken over when that process is gone.
import { open, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { removeIfExists } from './segment.js';

export class StoreLockedError extends Error {
  constructor(readonly dataDir: string, readonly pid: number) {
    super(`data dir ${dataDir} is in use by process ${pid}`);
    this.name = 'StoreLockedError';
  }
}

// Within one process the pid says nothing, so remember which dirs this process holds.
const heldHere = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid of another live process holding the data dir's lock, or undefined when none does (or it is stale). */
export async function lockHolder(dataDir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(join(resolve(dataDir), 'LOCK'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const owner = Number(text.trim());
  return Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner) ? owner : undefined;
}

export async function acquireLock(dataDir: string): Promise<() => Promise<void>> {
  const dir = resolve(dataDir);
  if (heldHere.has(dir)) throw new StoreLockedError(dir, process.pid);
  const path = join(dir, 'LOCK');
  try {
    const fh = await open(path, 'wx');
    await fh.writeFile(String(process.pid));
    await fh.close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const owner = Number((await readFile(path, 'utf8')).trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) throw new StoreLockedError(dir, owner);
    // The owner died (SIGKILL, OOM): its lock is stale.
    await writeFile(path, String(process.pid));
  }
  heldHere.add(dir);
  return async () => {
    heldHere.delete(dir);
    await removeIfExists(path);
  };
}

/** Writes the lock again after the data directory was deleted under its holder, which goes on writing there. */
export async function reclaimLock(dataDir: string): Promise<void> {
  const path = join(resolve(dataDir), 'LOCK');
  if ((await lockHolder(dataDir)) === undefined) await writeFile(path, String(process.pid));
}
