// What every audit destination does: take a batch of events, durably, or throw a DestinationError.
import type { AuditRecord } from '../audit-event.js';

export type DestinationType = 'file' | 'http' | 'azureBlob';

export interface AuditDestination {
  readonly type: DestinationType;
  /** Resolves once every event is stored; throws DestinationError otherwise (the batch is then kept and retried). */
  write(records: readonly AuditRecord[]): Promise<void>;
  close(): Promise<void>;
}

/** A write that failed. `refused`: the destination answered and said no (credentials, permissions), not merely down. */
export class DestinationError extends Error {
  override readonly name = 'DestinationError';
  constructor(
    message: string,
    readonly refused: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** UTC parts of an event time, for hour partitions. */
export function hourParts(time: number): { y: string; m: string; d: string; h: string } {
  const iso = new Date(time).toISOString();
  return { y: iso.slice(0, 4), m: iso.slice(5, 7), d: iso.slice(8, 10), h: iso.slice(11, 13) };
}

/** Groups records by the UTC hour of their event time, keeping their order within each hour. */
export function byHour(records: readonly AuditRecord[]): Map<number, AuditRecord[]> {
  const groups = new Map<number, AuditRecord[]>();
  for (const r of records) {
    const hour = Math.floor(r.time / 3_600_000) * 3_600_000;
    const group = groups.get(hour);
    if (group) group.push(r);
    else groups.set(hour, [r]);
  }
  return groups;
}
