// Keeps a Store equal to one resource on the API server: runs the reflector machine's list and watch requests.
import { Registry } from 'prom-client';
import type { KubeRequest, KubeTransport } from '../kube/client.js';
import { errorFromStatus, parseStatus, WatchStalled } from '../kube/errors.js';
import type { WatchEvent, WatchEventType } from '../kube/json-lines.js';
import { fetchPage, type PageFetch } from '../kube/pager.js';
import type { FieldSet } from '../kube/protobuf.js';
import { collectionPath, objectKey, resourceVersionOf } from '../kube/resource.js';
import { ACCEPT_PROTOBUF, decodeListPage, watchDecoder } from '../kube/wire.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { sleep, systemClock, type Clock } from './clock.js';
import type { ReconnectRegistry } from './reconnect-probe.js';
import { initialState, serverRetryAfterMs, serverUnreachable, step, type Listing, type ReflectorEffect, type ReflectorInput, type ReflectorState, type Watching } from './reflector-machine.js';
import { Store, type ReadStore } from './store.js';
import { WatchMetrics } from './watch-metrics.js';

export interface ReflectorOptions<T> {
  readonly transport: KubeTransport;
  /** Cluster-wide collection path, e.g. `/api/v1/pods` or `/apis/events.k8s.io/v1/events`. */
  readonly path: string;
  /** Watch one namespace only (the path gains `/namespaces/<ns>`). */
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /**
   * Keeps the few fields the cache needs. Returns undefined for an object that lacks them:
   * it is skipped (and removed if cached), counted in dcp_watch_malformed_objects_total and
   * reported to `onMalformed`. It must not keep a reference to the object it is given.
   */
  readonly project: (obj: unknown) => T | undefined;
  /**
   * The protobuf fields `project` and `key` read (see kube/protobuf.ts). With them, lists and
   * watches ask for protobuf (unless the transport's `wire` is 'json') and read only these
   * fields; the server answers JSON for types it cannot encode (custom resources), which is then
   * read whole. Without them: JSON.
   */
  readonly fields?: FieldSet;
  /** @default namespace/name, or name for cluster-scoped objects */
  readonly key?: (obj: unknown) => string | undefined;
  /** Decides whether a new projection is an update. @default deepEqual */
  readonly equals?: (a: T, b: T) => boolean;
  /** The `resource` label of metrics and health. @default the last path segment, plus `:<namespace>` */
  readonly resource?: string;
  /** Where the dcp_watch_* metrics go. @default a private registry (metrics not exported) */
  readonly registry?: Registry;
  /** @default 500 */
  readonly pageSize?: number;
  /** The watch's timeoutSeconds is drawn uniformly from this range. @default [300, 600] */
  readonly watchTimeoutSeconds?: readonly [number, number];
  /** Abort a watch that receives no bytes for this long. @default (timeoutSeconds + 30) × 1000 */
  readonly stallTimeoutMs?: number;
  /** Abort a list page that receives no bytes for this long. @default 60000 */
  readonly listIdleTimeoutMs?: number;
  /**
   * Restart delays. @default 800 ms ×2 with full jitter, cap 30 s, back to 800 ms after 2 min
   * without a failure or after a complete list. Relists the server asks for (410) use a second
   * sequence with the same settings, so they are prompt even right after an outage.
   */
  readonly backoff?: BackoffOptions;
  /** A clean watch close sooner than this with no event counts as a failure. @default 1000 */
  readonly minWatchMs?: number;
  /** While it runs, the reflector enrols here to be woken when an unreachable API server is ready again (retryNow). */
  readonly reconnect?: ReconnectRegistry;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Draws watch timeouts (and backoff jitter unless `backoff.random` is set). @default Math.random */
  readonly random?: () => number;
  /** Every failure that causes a restart, for logging; the reflector itself retries. */
  readonly onError?: (err: Error, reason: string) => void;
  /** An object the projection rejected, for a warning; `key` is undefined if it had no name. */
  readonly onMalformed?: (key: string | undefined, obj: unknown) => void;
  /** A change handler threw. */
  readonly onHandlerError?: (err: unknown, key: string) => void;
}

export interface ReflectorHealth {
  readonly resource: string;
  readonly phase: ReflectorState['phase'];
  readonly synced: boolean;
  /** Seconds since the last list or watch event (bookmarks included), or since start. */
  readonly lastEventAgeSeconds: number;
  readonly restarts: number;
  readonly relists: number;
  readonly resourceVersion: string | undefined;
  readonly lastError: string | undefined;
}

const EVENT_LABEL: Readonly<Record<WatchEventType, string>> = {
  ADDED: 'added',
  MODIFIED: 'modified',
  DELETED: 'deleted',
  BOOKMARK: 'bookmark',
  ERROR: 'error',
};

/**
 * The reflector of one resource: a paged LIST, then a WATCH from its resourceVersion, forever,
 * until the signal given to `start` aborts. It never gives up: every failure is retried with
 * backoff and exposed through `health()`, metrics and `onError`. Nothing happens before `start`.
 */
export class Reflector<T> {
  private readonly writable: Store<T>;
  private readonly transport: KubeTransport;
  private readonly path: string;
  private readonly clock: Clock;
  private readonly random: () => number;
  /** Delays after failures (server down, errors, stalls). */
  private readonly backoff: Backoff;
  /** Delays before relists the server asked for: it is up, so these start short even after an outage. */
  private readonly resyncBackoff: Backoff;
  private readonly metrics: WatchMetrics;
  private readonly keyOf: (obj: unknown) => string | undefined;
  private readonly eventCounters: Record<WatchEventType, { inc(): void }>;
  private state: ReflectorState = initialState;
  /** Items of the list in progress, by key; swapped into the store when the last page arrives. */
  private pending = new Map<string, T>();
  /** The page after the current one, requested ahead of its turn. */
  private nextPage: PageFetch | undefined;
  private started = false;
  private startedAt = 0;
  private lastEventAt: number | undefined;
  private restarts = 0;
  private relists = 0;
  private lastError: Error | undefined;
  private lastResourceVersion: string | undefined;
  /** The Accept header of lists and watches, and the fields a protobuf answer is read with. */
  private readonly accept: string;
  private readonly fields: FieldSet | undefined;
  /** Ends the watch in progress, if any. */
  private endWatch: ((why: Error) => void) | undefined;
  /** Ends the backoff wait in progress, if any. */
  private endBackoff: (() => void) | undefined;
  readonly resource: string;

  constructor(private readonly options: ReflectorOptions<T>) {
    this.transport = options.transport;
    this.path = collectionPath(options.path, options.namespace);
    this.resource = options.resource ?? defaultResourceName(options.path, options.namespace);
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.backoff = new Backoff({ random: this.random, ...options.backoff });
    this.resyncBackoff = new Backoff({ random: this.random, ...options.backoff });
    this.metrics = WatchMetrics.for(options.registry ?? new Registry());
    this.keyOf = options.key ?? objectKey;
    this.fields = options.transport.wire === 'json' ? undefined : options.fields;
    this.accept = this.fields === undefined ? 'application/json' : ACCEPT_PROTOBUF;
    const handlerErrors = this.metrics.handlerErrors.labels(this.resource);
    this.writable = new Store<T>({
      equals: options.equals,
      onHandlerError: (err, _type, key) => {
        handlerErrors.inc();
        options.onHandlerError?.(err, key);
      },
    });
    const counters = {} as Record<WatchEventType, { inc(): void }>;
    for (const t of Object.keys(EVENT_LABEL) as WatchEventType[]) {
      counters[t] = this.metrics.events.labels(this.resource, EVENT_LABEL[t]);
    }
    this.eventCounters = counters;
  }

  /** The cache this reflector fills. */
  get store(): ReadStore<T> {
    return this.writable;
  }

  get phase(): ReflectorState['phase'] {
    return this.state.phase;
  }

  health(): ReflectorHealth {
    return {
      resource: this.resource,
      phase: this.state.phase,
      synced: this.writable.hasSynced,
      lastEventAgeSeconds: this.lastEventAgeSeconds(),
      restarts: this.restarts,
      relists: this.relists,
      resourceVersion: this.lastResourceVersion,
      lastError: this.lastError === undefined ? undefined : `${this.lastError.name}: ${this.lastError.message}`,
    };
  }

  /**
   * Runs until `signal` aborts, then closes its connection and resolves. It never rejects for
   * API or network errors. A reflector runs once: a stopped one stays stopped.
   */
  async start(signal: AbortSignal): Promise<void> {
    if (this.started) throw new Error(`reflector ${this.resource} was already started`);
    this.started = true;
    this.startedAt = this.clock.now();
    const store = this.writable;
    const removeSource = this.metrics.addSource({
      resource: this.resource,
      lastEventAgeSeconds: () => this.lastEventAgeSeconds(),
      get synced() {
        return store.hasSynced;
      },
      get objects() {
        return store.size;
      },
    });
    const leaveReconnect = this.options.reconnect?.add(this);
    try {
      while (!signal.aborted) {
        const s = this.state;
        if (s.phase === 'Stopped') break;
        if (s.phase === 'Listing') await this.listPage(s, signal);
        else if (s.phase === 'Watching') await this.watch(s, signal);
        else {
          const backoff = s.resync ? this.resyncBackoff : this.backoff;
          const delay = Math.max(backoff.next(this.clock.now()), serverRetryAfterMs(s.error) ?? 0);
          await this.backOff(delay, signal);
          if (!signal.aborted) this.dispatch({ kind: 'BackoffElapsed' });
        }
      }
    } finally {
      this.dispatch({ kind: 'Stop' });
      this.nextPage?.cancel();
      this.nextPage = undefined;
      this.pending = new Map();
      removeSource();
      leaveReconnect?.();
    }
  }

  /**
   * Drops the watch in progress and watches again from the same resourceVersion (after the usual
   * backoff): for a connection that may have died silently while the API server did not answer.
   * No relist; a no-op while listing or backing off.
   */
  restartWatch(why: Error): void {
    this.endWatch?.(why);
  }

  /**
   * True while waiting out a backoff because the API server could not be reached (no HTTP answer):
   * a probe that reaches it again may call retryNow().
   */
  get waitingForServer(): boolean {
    const s = this.state;
    return s.phase === 'BackingOff' && !s.resync && serverUnreachable(s.error);
  }

  /**
   * The API server answers again: ends a wait that began because it could not be reached, and
   * starts the next one from the shortest delay. NOTE: the backoff grows while the server is down
   * (to 30 s), so without this the first try after a 10 s outage could be 20 s away. Waits for any
   * other reason (a 403, a 429, a relist) are left alone: the server answered those.
   */
  retryNow(): void {
    if (!this.waitingForServer) return;
    this.backoff.reset();
    this.endBackoff?.();
  }

  private async backOff(delayMs: number, signal: AbortSignal): Promise<void> {
    const ctl = new AbortController();
    const onStop = (): void => ctl.abort();
    signal.addEventListener('abort', onStop, { once: true });
    this.endBackoff = () => ctl.abort();
    try {
      await sleep(delayMs, ctl.signal, this.clock);
    } finally {
      this.endBackoff = undefined;
      signal.removeEventListener('abort', onStop);
    }
  }

  private lastEventAgeSeconds(): number {
    const since = this.lastEventAt ?? this.startedAt;
    return Math.max(0, (this.clock.now() - since) / 1000);
  }

  private dispatch(input: ReflectorInput, event?: WatchEvent): void {
    const next = step(this.state, input, { minWatchMs: this.options.minWatchMs });
    this.state = next.state;
    for (const effect of next.effects) this.perform(effect, event);
  }

  private perform(effect: ReflectorEffect, event: WatchEvent | undefined): void {
    switch (effect.kind) {
      case 'ApplyEvent':
        if (event !== undefined) this.apply(event);
        return;
      case 'CommitList': {
        const items = this.pending;
        this.pending = new Map();
        this.writable.replace(items);
        // A whole list went through: the server is healthy, so the next failure starts short, and so does the
        // next relist it asks for (each API server restart can answer 410 once; those must not add up).
        this.backoff.reset();
        this.resyncBackoff.reset();
        this.lastEventAt = this.clock.now();
        this.lastResourceVersion = effect.resourceVersion;
        return;
      }
      case 'Relist':
        this.relists += 1;
        this.metrics.relists.labels(this.resource).inc();
        return;
      case 'Restart': {
        this.restarts += 1;
        this.metrics.restarts.labels(this.resource, effect.reason).inc();
        const err = effect.error instanceof Error ? effect.error : new Error(String(effect.error));
        this.lastError = err;
        try {
          this.options.onError?.(err, effect.reason);
        } catch {
          // A failing logger must not stop the reflector.
        }
        return;
      }
    }
  }

  private async listPage(state: Listing, signal: AbortSignal): Promise<void> {
    const first = state.continueToken === undefined;
    if (first) this.pending = new Map();
    const ahead = this.nextPage;
    this.nextPage = undefined;
    let current: PageFetch;
    if (!first && ahead?.token === state.continueToken) {
      current = ahead;
    } else {
      ahead?.cancel();
      current = fetchPage(this.transport, this.pageRequest(state, signal), state.continueToken);
    }
    let input: ReflectorInput;
    try {
      // Ask for the next page as soon as this one names it, so the server prepares and sends it
      // while this one is parsed. One page ahead at most: that one starts its successor only
      // when its own turn comes.
      const next = await current.next;
      if (typeof next === 'string') this.nextPage = fetchPage(this.transport, this.pageRequest(state, signal), next);
      // NOTE: a page is parsed whole and only projections are kept; `page` goes out of scope at
      // the end of this block, so at most two raw pages (this one, the next) are alive at a time.
      const page = decodeListPage(await current.body, current.contentType(), this.fields);
      for (const item of page.items) this.collect(item);
      input = { kind: 'ListPage', resourceVersion: page.resourceVersion, continueToken: page.continueToken };
    } catch (err) {
      this.nextPage?.cancel();
      this.nextPage = undefined;
      if (signal.aborted) return;
      input = { kind: 'ListFailed', error: err };
    }
    this.dispatch(input);
  }

  private pageRequest(state: Listing, signal: AbortSignal): KubeRequest {
    // The continue token carries the version of the first page; the server refuses both.
    const from = state.continueToken === undefined && state.from.resourceVersion !== '' ? state.from : undefined;
    return {
      path: this.path,
      query: {
        limit: this.options.pageSize ?? 500,
        resourceVersion: from?.resourceVersion,
        resourceVersionMatch: from?.match,
        labelSelector: this.options.labelSelector,
        fieldSelector: this.options.fieldSelector,
      },
      accept: this.accept,
      signal,
      idleTimeoutMs: this.options.listIdleTimeoutMs ?? 60_000,
    };
  }

  private collect(item: unknown): void {
    const key = this.keyOf(item);
    const value = key === undefined ? undefined : this.project(item);
    if (key === undefined || value === undefined) {
      this.malformed(key, item);
      return;
    }
    this.pending.set(key, value);
  }

  private async watch(state: Watching, signal: AbortSignal): Promise<void> {
    const [min, max] = this.options.watchTimeoutSeconds ?? [300, 600];
    const timeoutSeconds = Math.floor(min + this.random() * (max - min + 1));
    const stallMs = this.options.stallTimeoutMs ?? (timeoutSeconds + 30) * 1000;
    // One controller per watch: whatever ends this watch (a stop, a stall, a relist decided
    // mid-stream) destroys its connection, so a replaced watch never lingers.
    const ctl = new AbortController();
    this.endWatch = (why) => ctl.abort(why);
    const onStop = (): void => ctl.abort(signal.reason);
    signal.addEventListener('abort', onStop, { once: true });
    const startedAt = this.clock.now();
    let events = 0;
    let input: ReflectorInput | undefined;
    try {
      const res = await this.transport.stream({
        path: this.path,
        query: {
          watch: 1,
          resourceVersion: state.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
        },
        accept: this.accept,
        signal: ctl.signal,
        idleTimeoutMs: stallMs,
        idleError: (ms) => new WatchStalled(ms, `watch ${this.resource}: no bytes for ${ms} ms`),
      });
      const decoder = watchDecoder(res.contentType, this.fields);
      stream: for await (const chunk of res) {
        for (const event of decoder.push(chunk)) {
          events += 1;
          this.onWatchEvent(event);
          // An ERROR event or a malformed frame ended this watch: stop reading it.
          if (this.state.phase !== 'Watching') break stream;
        }
      }
      if (this.state.phase === 'Watching') {
        for (const event of decoder.flush()) {
          events += 1;
          this.onWatchEvent(event);
          if (this.state.phase !== 'Watching') break;
        }
      }
      if (this.state.phase === 'Watching') {
        input = { kind: 'WatchClosed', durationMs: this.clock.now() - startedAt, events };
      }
    } catch (err) {
      if (!signal.aborted) input = { kind: 'WatchFailed', error: err };
    } finally {
      this.endWatch = undefined;
      signal.removeEventListener('abort', onStop);
      ctl.abort();
    }
    if (input !== undefined) this.dispatch(input);
  }

  private onWatchEvent(event: WatchEvent | Error): void {
    if (event instanceof Error) {
      this.dispatch({ kind: 'WatchFailed', error: event });
      return;
    }
    this.eventCounters[event.type].inc();
    this.lastEventAt = this.clock.now();
    const error = event.type === 'ERROR' ? errorFromStatus(parseStatus(event.object, 500)) : undefined;
    const resourceVersion = event.type === 'ERROR' ? undefined : resourceVersionOf(event.object);
    this.dispatch({ kind: 'WatchEvent', type: event.type, resourceVersion, error }, event);
    if (this.state.phase === 'Watching') this.lastResourceVersion = this.state.resourceVersion;
  }

  private apply(event: WatchEvent): void {
    const key = this.keyOf(event.object);
    if (key === undefined) {
      this.malformed(undefined, event.object);
      return;
    }
    if (event.type === 'DELETED') {
      this.writable.delete(key);
      return;
    }
    const value = this.project(event.object);
    if (value === undefined) {
      this.malformed(key, event.object);
      // A fresh list would not contain it either: keep the cache equal to what a list gives.
      this.writable.delete(key);
      return;
    }
    this.writable.upsert(key, value);
  }

  private project(obj: unknown): T | undefined {
    try {
      return this.options.project(obj);
    } catch {
      // A projection that throws is a projection that found the object malformed.
      return undefined;
    }
  }

  private malformed(key: string | undefined, obj: unknown): void {
    this.metrics.malformed.labels(this.resource).inc();
    try {
      this.options.onMalformed?.(key, obj);
    } catch {
      // Reporting must not break the watch.
    }
  }
}

function defaultResourceName(path: string, namespace: string | undefined): string {
  const plural = path.replace(/\/+$/, '').split('/').pop() ?? path;
  return namespace === undefined || namespace === '' ? plural : `${plural}:${namespace}`;
}
