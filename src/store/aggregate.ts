// Daily de-identified aggregates, pure: per day, category and event name, a count and numeric summaries; no strings.
import { buildAggregate } from '../api/envelope.js';
import type { CollectedEventName, DcpEvent, EventOf, NumericSummary } from '../api/event.js';
import { dayOf } from './days.js';

/** Numeric and boolean leaves of `data` (booleans as 0/1, one nesting level as `a.b`). Strings are left out by design. */
function numericFields(data: DcpEvent['data']): [string, number][] {
  const out: [string, number][] = [];
  const take = (field: string, v: unknown): void => {
    if (typeof v === 'number' && Number.isFinite(v)) out.push([field, v]);
    else if (typeof v === 'boolean') out.push([field, v ? 1 : 0]);
  };
  for (const [k, v] of Object.entries(data)) {
    if (typeof v === 'object') for (const [k2, v2] of Object.entries(v)) take(`${k}.${k2}`, v2);
    else take(k, v);
  }
  return out;
}

interface Field {
  min: number;
  max: number;
  sum: number;
  n: number;
}

interface Group {
  first: DcpEvent;
  count: number;
  fields: Map<string, Field>;
}

/** Accumulates one day's events, so the store can aggregate while streaming a partition. */
export class DayAggregator {
  private readonly groups = new Map<string, Group>();

  constructor(readonly day: string) {}

  add(e: DcpEvent): void {
    if (e.name === 'DailyAggregate' || dayOf(Date.parse(e.time)) !== this.day) return;
    const key = `${e.cluster.id}\u0000${e.category}\u0000${e.name}`;
    let g = this.groups.get(key);
    if (!g) this.groups.set(key, (g = { first: e, count: 0, fields: new Map() }));
    g.count++;
    for (const [name, v] of numericFields(e.data)) {
      const f = g.fields.get(name);
      if (!f) g.fields.set(name, { min: v, max: v, sum: v, n: 1 });
      else {
        f.min = Math.min(f.min, v);
        f.max = Math.max(f.max, v);
        f.sum += v;
        f.n++;
      }
    }
  }

  /** One DailyAggregate per cluster, category and event name, in a stable order. */
  result(): EventOf<'DailyAggregate'>[] {
    return [...this.groups.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, g]) => {
        const numeric: Record<string, NumericSummary> = {};
        for (const [name, f] of [...g.fields.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
          numeric[name] = { min: f.min, max: f.max, avg: f.sum / f.n, sum: f.sum };
        }
        return buildAggregate(g.first.cluster, {
          category: g.first.category,
          eventName: g.first.name as CollectedEventName,
          day: this.day,
          count: g.count,
          numeric,
        });
      });
  }
}

/** The aggregates of the events whose time falls on `day` (UTC, YYYY-MM-DD). */
export function aggregateDay(events: Iterable<DcpEvent>, day: string): EventOf<'DailyAggregate'>[] {
  const agg = new DayAggregator(day);
  for (const e of events) agg.add(e);
  return agg.result();
}
