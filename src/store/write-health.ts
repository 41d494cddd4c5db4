// Whether the data directory takes writes right now: the last append and cursor write, failures counted by reason.
import { counter, type Registry } from '../observability/metrics.js';
import { storeFailureReason, type StoreFailureReason } from './errors.js';

/** What writes to the data directory: the event store's appends and the sinks' cursors. */
export type StoreWriter = 'append' | 'cursor';

export interface WriteFailure {
  readonly writer: StoreWriter;
  readonly reason: StoreFailureReason;
  readonly message: string;
  /** Epoch ms of the first failure in this run of failures. */
  readonly since: number;
  /** A success before this (epoch ms) does not clear the failure: see failed(). */
  readonly holdUntil?: number;
}

/**
 * How long a failure the store recovered from by itself (its directory deleted and recreated) stays in
 * view although writes work again: long enough for status and /readyz to show it, not only the logs.
 */
export const RECOVERED_FAILURE_HOLD_MS = 30_000;

/**
 * The data directory's write state. NOTE: a failure stays until the same writer succeeds again,
 * so a full disk shows until space returns and the next append (collectors emit every interval)
 * or cursor write gets through: recovery needs no one to act.
 */
export class WriteHealth {
  private readonly failures = new Map<StoreWriter, WriteFailure>();
  private readonly failuresTotal;

  constructor(
    registry: Registry | undefined,
    private readonly onChange: () => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.failuresTotal = counter(registry, 'dcp_store_write_failures_total', 'Failed writes to the data directory (appends and sink cursors), by reason (errno code or Other).', ['reason']);
  }

  /** `recovered`: the store has already recovered (writes work again); the failure is held in view for RECOVERED_FAILURE_HOLD_MS. */
  failed(writer: StoreWriter, err: unknown, recovered = false): void {
    const reason = storeFailureReason(err);
    this.failuresTotal.inc({ reason });
    const before = this.failures.get(writer);
    const message = err instanceof Error ? err.message : String(err);
    const now = this.now();
    this.failures.set(writer, { writer, reason, message, since: before?.since ?? now, ...(recovered ? { holdUntil: now + RECOVERED_FAILURE_HOLD_MS } : {}) });
    if (!before || before.reason !== reason) this.onChange();
  }

  succeeded(writer: StoreWriter): void {
    const f = this.failures.get(writer);
    if (f?.holdUntil !== undefined && this.now() < f.holdUntil) return;
    if (this.failures.delete(writer)) this.onChange();
  }

  /** The oldest current failure, or undefined while writes succeed. */
  get failure(): WriteFailure | undefined {
    let oldest: WriteFailure | undefined;
    for (const f of this.failures.values()) if (!oldest || f.since < oldest.since) oldest = f;
    return oldest;
  }
}
