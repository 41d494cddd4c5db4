// The daily aggregates central sinks get, read from the operator's event store (read-only) for `dcp preview`.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DcpEvent } from '../../api/event.js';
import { EventStore } from '../../store/event-store.js';
import { plural } from '../table.js';

export interface StoredAggregates {
  readonly events: DcpEvent[];
  /** Why there are none, or which day they are of. */
  readonly note: string;
}

/** The newest day's DailyAggregates in the operator's store (read-only), the only thing a central sink ever gets. */
export async function latestAggregates(dataDir: string): Promise<StoredAggregates> {
  try {
    if (!(await stat(join(dataDir, 'aggregates'))).isDirectory()) throw new Error('not a directory');
  } catch {
    return { events: [], note: `not read (no event store at ${dataDir}; pass the operator's --data-dir)` };
  }
  const store = await EventStore.open({ dataDir, readOnly: true });
  try {
    const all = await store.read({ stream: 'aggregates' });
    const day = all.reduce<string | undefined>((max, e) => (max === undefined || e.time > max ? e.time : max), undefined);
    if (day === undefined) return { events: [], note: `none in the store at ${dataDir} yet (one per category is written after each finished UTC day)` };
    const events = all.filter((e) => e.time === day);
    return { events, note: `those of ${day.slice(0, 10)} from the store at ${dataDir} (${plural(events.length, 'event')}) are included` };
  } finally {
    await store.close();
  }
}
