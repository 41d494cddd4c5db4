// Time as a dependency: real timers in production, a manual clock that tests advance by hand.

/** Opaque: whatever the clock's setTimeout returned. */
export type TimerHandle = object;

export interface Clock {
  /** Milliseconds, monotonic enough for durations. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** A clock that moves only when `advance` is called; timers fire in due order, synchronously. */
export class ManualClock implements Clock {
  private current: number;
  // Insertion order of the Map is creation order, which breaks ties between timers due at once.
  private readonly timers = new Map<TimerHandle, { at: number; fn: () => void }>();

  constructor(start = 0) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = {};
    this.timers.set(handle, { at: this.current + Math.max(0, ms), fn });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle);
  }

  /** Moves time forward, firing every timer that falls due, earliest first (ties in creation order). */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      let due: TimerHandle | undefined;
      let dueAt = Infinity;
      for (const [handle, t] of this.timers) {
        if (t.at <= target && t.at < dueAt) {
          dueAt = t.at;
          due = handle;
        }
      }
      if (due === undefined) break;
      const t = this.timers.get(due);
      this.timers.delete(due);
      this.current = dueAt;
      t?.fn();
    }
    this.current = target;
  }

  /**
   * Moves time forward without firing anything: a process paused (SIGSTOP) while time went on.
   * The timers that fell due meanwhile fire at the next advance(), as they would on SIGCONT.
   */
  jump(ms: number): void {
    this.current += ms;
  }

  /** Number of timers not yet fired. */
  get pending(): number {
    return this.timers.size;
  }
}

/**
 * Resolves after `ms`, or at once when the signal aborts (it never rejects): callers check
 * `signal.aborted` afterwards, so a stop is never mistaken for an error.
 */
export function sleep(ms: number, signal: AbortSignal | undefined, clock: Clock = systemClock): Promise<void> {
  if (signal?.aborted === true) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clock.clearTimeout(handle);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const handle = clock.setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
