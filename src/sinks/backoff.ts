// Exponential backoff with jitter, an abortable sleep, and a retry wrapper built from them.

export interface BackoffPolicy {
  /** First delay. */
  readonly baseMs: number;
  /** Ceiling for any delay. */
  readonly maxMs: number;
  /** @default Math.random */
  readonly random?: () => number;
}

/**
 * Delay before retry number `attempt` (0-based): base·2^attempt capped at max, then "equal jitter"
 * (half fixed, half random) so that many senders do not retry in step but never retry at once.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + (ceiling / 2) * (policy.random ?? Math.random)();
}

/** Resolves after `ms` or as soon as `signal` aborts, whichever is first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface RetryOptions extends BackoffPolicy {
  /** Tries in all, the first included. */
  readonly attempts: number;
  readonly signal: AbortSignal;
  readonly retryable: (err: unknown) => boolean;
  /** A delay the failure itself asks for (Retry-After), used instead of the computed one if longer. */
  readonly requestedDelay?: (err: unknown) => number | undefined;
  readonly onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export async function retry<T>(fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt + 1 >= options.attempts || !options.retryable(err) || options.signal.aborted) throw err;
      const asked = options.requestedDelay?.(err);
      const delay = Math.min(options.maxMs, Math.max(asked ?? 0, backoffDelay(attempt, options)));
      options.onRetry?.(err, attempt, delay);
      await sleep(delay, options.signal);
      if (options.signal.aborted) throw err;
    }
  }
}
