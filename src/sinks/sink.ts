// The interface every sink implements, and the error a failed delivery raises.
import type { SinkType } from '../api/policy.js';
import type { DcpEvent } from '../api/event.js';

/**
 * One destination. Delivery is at least once: after a failure or a restart the same events may be
 * sent again, and receivers deduplicate on the event id.
 */
export interface EventSink {
  readonly name: string;
  readonly type: SinkType;
  /** Resolves once the destination has accepted the whole batch; throws (SinkError) otherwise. */
  send(events: readonly DcpEvent[], signal: AbortSignal): Promise<void>;
  /** Releases connections or files. */
  close(): Promise<void>;
}

export class SinkError extends Error {
  constructor(
    message: string,
    /** False for answers that will not change by retrying soon (400, 401, 403, 404, 413). */
    readonly retryable: boolean,
    readonly status?: number,
    /** The receiver's Retry-After, in milliseconds. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'SinkError';
  }
}
