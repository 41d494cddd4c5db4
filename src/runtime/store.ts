// The in-memory cache of one resource: projected values by key, one writer (the reflector), many readers.

export type ChangeType = 'added' | 'updated' | 'deleted';

/**
 * Called synchronously for every change of the cache, after the cache holds the new state.
 * `added`: newValue set, oldValue undefined; `updated`: both set and not equal; `deleted`:
 * newValue undefined, oldValue set. Handlers must be trivial (update a count, enqueue a key):
 * they run inside the watch loop, and a handler that throws is counted and skipped.
 */
export type ChangeHandler<T> = (type: ChangeType, key: string, newValue: T | undefined, oldValue: T | undefined) => void;

export interface SubscribeOptions {
  /** Deliver `added` for every value already in the cache before any later change. @default false */
  readonly replay?: boolean;
}

/** What readers get: the cache is only a cache, always a little behind the API server. */
export interface ReadStore<T> {
  get(key: string): T | undefined;
  has(key: string): boolean;
  /** A copy of the values; prefer `entries()` for a large cache. */
  list(): T[];
  /** Live iteration without a copy; do not hold it across an await. */
  entries(): IterableIterator<[string, T]>;
  keys(): IterableIterator<string>;
  readonly size: number;
  /** True once the first complete list has been applied; never goes back to false. */
  readonly hasSynced: boolean;
  /** Resolves when synced; rejects with the signal's reason if it aborts first. */
  waitUntilSynced(signal?: AbortSignal): Promise<void>;
  /** Returns the function that unsubscribes. */
  subscribe(handler: ChangeHandler<T>, options?: SubscribeOptions): () => void;
}

export interface StoreOptions<T> {
  /** Decides whether a new value is an update. @default deepEqual (JSON-like values) */
  readonly equals?: (a: T, b: T) => boolean;
  /** A handler threw: the error is swallowed here so it never reaches the watch loop. */
  readonly onHandlerError?: (err: unknown, type: ChangeType, key: string) => void;
}

/** Structural equality for JSON-like values (what projections produce). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  for (const k of ak) {
    if (!Object.prototype.hasOwnProperty.call(bo, k) || !deepEqual(ao[k], bo[k])) return false;
  }
  return true;
}

/**
 * The writable cache. Only the reflector that owns it writes; everyone else gets it as a
 * ReadStore. A write whose value equals the cached one is not a change: handlers are not called,
 * which is what keeps status-only Pod updates from costing anything downstream.
 */
export class Store<T> implements ReadStore<T> {
  private items = new Map<string, T>();
  private readonly handlers = new Set<ChangeHandler<T>>();
  private synced = false;
  private readonly syncWaiters = new Set<() => void>();
  private readonly equals: (a: T, b: T) => boolean;
  private readonly onHandlerError: (err: unknown, type: ChangeType, key: string) => void;

  constructor(options: StoreOptions<T> = {}) {
    this.equals = options.equals ?? deepEqual;
    this.onHandlerError = options.onHandlerError ?? (() => undefined);
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  has(key: string): boolean {
    return this.items.has(key);
  }

  list(): T[] {
    return [...this.items.values()];
  }

  entries(): IterableIterator<[string, T]> {
    return this.items.entries();
  }

  keys(): IterableIterator<string> {
    return this.items.keys();
  }

  get size(): number {
    return this.items.size;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  waitUntilSynced(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (signal?.aborted === true) return Promise.reject(abortReason(signal));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.syncWaiters.delete(done);
        reject(signal === undefined ? new Error('aborted') : abortReason(signal));
      };
      const done = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.syncWaiters.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  subscribe(handler: ChangeHandler<T>, options: SubscribeOptions = {}): () => void {
    if (options.replay === true) {
      for (const [key, value] of this.items) this.call(handler, 'added', key, value, undefined);
    }
    this.handlers.add(handler);
    return () => {
      this.handlers.delete(handler);
    };
  }

  /** Adds or replaces one value. */
  upsert(key: string, value: T): void {
    const old = this.items.get(key);
    if (old === undefined) {
      this.items.set(key, value);
      this.emit('added', key, value, undefined);
    } else if (!this.equals(old, value)) {
      this.items.set(key, value);
      this.emit('updated', key, value, old);
    }
  }

  delete(key: string): void {
    const old = this.items.get(key);
    if (old === undefined) return;
    this.items.delete(key);
    this.emit('deleted', key, undefined, old);
  }

  /**
   * Makes the cache equal to a complete list, delivering only the difference: new keys are
   * added, changed values updated, and keys missing from the list deleted (what happened
   * while the watch was down). Marks the store synced. The store takes ownership of `next`:
   * the caller must not use it afterwards.
   */
  replace(next: Map<string, T>): void {
    if (this.items.size === 0 && this.handlers.size === 0) {
      // The first sync of an unobserved cache: adopt the map, no per-item work and no copy.
      this.items = next;
    } else {
      for (const [key, value] of next) this.upsert(key, value);
      // NOTE: deleting the current entry while iterating a Map is safe in JS; it is what makes
      // objects deleted during a watch outage disappear from the cache.
      for (const key of this.items.keys()) {
        if (!next.has(key)) this.delete(key);
      }
    }
    this.markSynced();
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const w of this.syncWaiters) w();
    this.syncWaiters.clear();
  }

  private emit(type: ChangeType, key: string, newValue: T | undefined, oldValue: T | undefined): void {
    for (const h of this.handlers) this.call(h, type, key, newValue, oldValue);
  }

  private call(h: ChangeHandler<T>, type: ChangeType, key: string, newValue: T | undefined, oldValue: T | undefined): void {
    try {
      h(type, key, newValue, oldValue);
    } catch (err) {
      try {
        this.onHandlerError(err, type, key);
      } catch {
        // The error reporter failed too; nothing more can be done without risking the watch loop.
      }
    }
  }
}

function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new Error('aborted');
}
