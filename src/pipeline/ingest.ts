// The path every collected event takes to storage: clean text, schema validation, the PII guard, a durable append.
import type { DcpEvent } from '../api/event.js';
import { cleanStrings } from './clean-text.js';
import type { PiiGuard } from './guard.js';
import type { EventValidator } from './validate.js';

/** What ingest needs from the store. */
export interface EventAppender {
  append(events: readonly DcpEvent[]): Promise<{ stored: number; duplicates: number; expired: number }>;
}

export interface IngestResult {
  readonly stored: number;
  readonly duplicates: number;
  readonly expired: number;
  /** Dropped: failed the schema (dcp_events_invalid_total). */
  readonly invalid: number;
  /** Dropped: the PII guard found personal or secret data (dcp_events_pii_rejected_total). */
  readonly rejected: number;
  /** The events validation and the guard let through, for status (lastEventTime, eventsEmitted). */
  readonly accepted: readonly DcpEvent[];
}

export interface IngestOptions {
  readonly validator: EventValidator;
  readonly guard: PiiGuard;
  readonly store: EventAppender;
}

export class Ingest {
  constructor(private readonly options: IngestOptions) {}

  get guard(): PiiGuard {
    return this.options.guard;
  }

  /** Resolves once the admitted events are on disk. NOTE: nothing reaches the store around this path. */
  async submit(candidates: readonly unknown[]): Promise<IngestResult> {
    const accepted: DcpEvent[] = [];
    let invalid = 0;
    let rejected = 0;
    for (const c of candidates) {
      // NOTE: cleaned before the guard looks, so a control character cannot hide an address from it.
      const event = this.options.validator.admit(cleanStrings(c));
      if (!event) invalid++;
      else if (!this.options.guard.admit(event)) rejected++;
      else accepted.push(event);
    }
    const { stored, duplicates, expired } = accepted.length > 0 ? await this.options.store.append(accepted) : { stored: 0, duplicates: 0, expired: 0 };
    return { stored, duplicates, expired, invalid, rejected, accepted };
  }
}
