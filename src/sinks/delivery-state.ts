// Per-sink delivery state (pure): what the last attempt did, how much waits, since when it fails.
import type { SINK_ERROR_CLASSES, SINK_STATES, SinkStatus } from '../api/policy.js';
import { SinkError } from './sink.js';

export type SinkState = (typeof SINK_STATES)[number];
/** What kind of failure the last one was; Refused (401/403) will not heal by retrying. */
export type SinkErrorClass = (typeof SINK_ERROR_CLASSES)[number];
/** status.sinks[] entries (see SinkStatusSchema). */
export type SinkDelivery = SinkStatus;

export function classifyError(err: unknown): SinkErrorClass {
  if (err instanceof SinkError) {
    const s = err.status;
    if (s === 401 || s === 403) return 'Refused';
    if (s === 408 || s === 429) return 'Throttled';
    if (s !== undefined && s >= 500) return 'ServerError';
    if (s !== undefined && s >= 400) return 'Rejected';
    if (/no response within/.test(err.message)) return 'Timeout';
    return 'Network';
  }
  return 'Unknown';
}

interface Entry {
  backlogEvents: number;
  oldestUndelivered?: number;
  lastSuccess?: number;
  failingSince?: number;
  lastErrorClass?: SinkErrorClass;
  lastError?: string;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The state machine behind status.sinks[]: fed by the dispatcher, read by the status and the gauges. */
export class DeliveryTracker {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  private entry(name: string): Entry {
    let e = this.entries.get(name);
    if (!e) this.entries.set(name, (e = { backlogEvents: 0 }));
    return e;
  }

  /** A batch was accepted (or there was nothing to send): failures end. */
  succeeded(name: string): void {
    const e = this.entry(name);
    e.lastSuccess = this.now();
    e.failingSince = undefined;
    e.lastErrorClass = undefined;
    e.lastError = undefined;
  }

  failed(name: string, err: unknown): void {
    const e = this.entry(name);
    e.failingSince ??= this.now();
    e.lastErrorClass = classifyError(err);
    e.lastError = err instanceof Error ? err.message : String(err);
  }

  /** What waits after the cursor; `oldestMs` undefined when nothing does. */
  measured(name: string, backlogEvents: number, oldestMs: number | undefined): void {
    const e = this.entry(name);
    e.backlogEvents = backlogEvents;
    e.oldestUndelivered = backlogEvents > 0 ? oldestMs : undefined;
  }

  /** State and error class: when this changes, the status should be written again. */
  stateKey(name: string): string {
    const e = this.entries.get(name);
    if (!e) return '';
    return `${e.failingSince !== undefined ? 'Failing' : e.backlogEvents > 0 ? 'Backlogged' : 'Delivering'}/${e.lastErrorClass ?? ''}`;
  }

  /** The sink is no longer configured. */
  remove(name: string): void {
    this.entries.delete(name);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  /** Seconds the oldest undelivered event has waited since its event time; 0 when nothing waits. */
  oldestUndeliveredSeconds(name: string): number {
    const oldest = this.entries.get(name)?.oldestUndelivered;
    return oldest === undefined ? 0 : Math.max(0, (this.now() - oldest) / 1000);
  }

  backlog(name: string): number {
    return this.entries.get(name)?.backlogEvents ?? 0;
  }

  snapshot(): SinkDelivery[] {
    return [...this.entries].sort(([a], [b]) => a.localeCompare(b)).map(([name, e]) => {
      const state: SinkState = e.failingSince !== undefined ? 'Failing' : e.backlogEvents > 0 ? 'Backlogged' : 'Delivering';
      return {
        name,
        state,
        backlogEvents: e.backlogEvents,
        ...(e.oldestUndelivered !== undefined ? { oldestUndeliveredTime: iso(e.oldestUndelivered) } : {}),
        ...(e.lastSuccess !== undefined ? { lastSuccessTime: iso(e.lastSuccess) } : {}),
        ...(e.failingSince !== undefined ? { failingSince: iso(e.failingSince) } : {}),
        ...(e.lastErrorClass ? { lastErrorClass: e.lastErrorClass } : {}),
        ...(e.lastError ? { lastError: e.lastError.slice(0, 1024) } : {}),
      };
    });
  }
}
