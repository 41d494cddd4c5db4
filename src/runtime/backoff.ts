// Restart delays: exponential with jitter and a cap, forgotten after a healthy period (client-go's reflector backoff).

export interface BackoffOptions {
  /** @default 800 */
  readonly initialMs?: number;
  /** @default 2 */
  readonly factor?: number;
  /** Upper bound of every delay, jitter included. @default 30000 */
  readonly maxMs?: number;
  /** A delay is base × (1 + jitter × random()). @default 1 */
  readonly jitter?: number;
  /** When the previous delay was asked for longer ago than this, start again from `initialMs`. @default 120000 */
  readonly resetAfterMs?: number;
  /** @default Math.random */
  readonly random?: () => number;
}

/**
 * One sequence of restart delays. Jitter spreads the reconnects of many clients after an API
 * server restart, so they do not arrive together; the cap bounds the request rate while the server
 * is down (one attempt per ~30 s per watch at worst).
 */
export class Backoff {
  private readonly initialMs: number;
  private readonly factor: number;
  private readonly maxMs: number;
  private readonly jitter: number;
  private readonly resetAfterMs: number;
  private readonly random: () => number;
  private attempt = 0;
  private lastAt: number | undefined;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 800;
    this.factor = options.factor ?? 2;
    this.maxMs = options.maxMs ?? 30_000;
    this.jitter = options.jitter ?? 1;
    this.resetAfterMs = options.resetAfterMs ?? 120_000;
    this.random = options.random ?? Math.random;
  }

  /** The delay before the next attempt, given the current time in ms. */
  next(now: number): number {
    if (this.lastAt !== undefined && now - this.lastAt > this.resetAfterMs) this.attempt = 0;
    this.lastAt = now;
    // Math.min keeps the exponent from overflowing to Infinity after many failures.
    const base = Math.min(this.maxMs, this.initialMs * Math.pow(this.factor, Math.min(this.attempt, 64)));
    this.attempt += 1;
    return Math.min(this.maxMs, Math.round(base * (1 + this.jitter * this.random())));
  }

  reset(): void {
    this.attempt = 0;
    this.lastAt = undefined;
  }

  /** Delays handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }
}
