// UTC day arithmetic and day-named partition files (YYYY-MM-DD.jsonl), which sort in time order.
import { readdir } from 'node:fs/promises';

export const DAY_MS = 86_400_000;
const DAY_FILE = /^(\d{4}-\d{2}-\d{2})\.jsonl$/;

export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function dayStart(day: string): number {
  return Date.parse(`${day}T00:00:00.000Z`);
}

export function nextDay(day: string): string {
  return dayOf(dayStart(day) + DAY_MS);
}

export function partitionFile(day: string): string {
  return `${day}.jsonl`;
}

/** Day partitions in `dir`, oldest first; a missing directory has none. */
export async function listDays(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.flatMap((n) => DAY_FILE.exec(n)?.[1] ?? []).sort();
}
