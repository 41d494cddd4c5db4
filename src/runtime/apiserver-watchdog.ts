// Notices within seconds that the API server accepts connections but answers nothing: watch traffic first, a small probe when it is quiet.
import type { KubeTransport } from '../kube/client.js';
import { gauge, type Registry } from '../observability/metrics.js';
import { sleep, systemClock, type Clock } from './clock.js';

/** What the watchdog reads of each cache: seconds since its last list or watch event (bookmarks included). */
export interface WatchedCache {
  health(): { readonly lastEventAgeSeconds: number };
  restartWatch(why: Error): void;
}

export interface ApiServerWatchdogOptions {
  readonly transport: KubeTransport;
  readonly caches: readonly WatchedCache[];
  /** Silence longer than this is a stall. @default 30000 */
  readonly thresholdMs?: number;
  readonly registry?: Registry;
  readonly clock?: Clock;
  /** Responsive → stalled and back. */
  readonly onChange?: (responsive: boolean, silentMs: number) => void;
}

export interface ApiServerState {
  readonly responsive: boolean;
  readonly thresholdMs: number;
  /** RFC 3339, while stalled: when the silence began. */
  readonly stalledSince?: string;
  /** Why the last probe failed, if it did. */
  readonly lastError?: string;
  /**
   * While responsive: the last stall, if there was one. NOTE: the policy status cannot be written while the server
   * does not answer, so this is how a stall stays visible in the status afterwards.
   */
  readonly lastStall?: { readonly since: string; readonly seconds: number };
}

const rfc3339 = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * NOTE: watches alone cannot tell a paused server from a quiet cluster (a quiet watch gets a
 * bookmark about once a minute), so when nothing has arrived for half the threshold the watchdog
 * asks GET /version with a deadline of the other half. A busy cluster costs no requests at all.
 * After a stall, watches that heard nothing since it began are restarted from their
 * resourceVersion: their connections may have died without a word.
 */
export class ApiServerWatchdog {
  private readonly thresholdMs: number;
  private readonly clock: Clock;
  private lastProbeOk: number;
  private responsive = true;
  private stalledAt: number | undefined;
  private lastError: string | undefined;
  private lastStall: ApiServerState['lastStall'];
  private readonly responsiveGauge;
  private readonly silentGauge;

  constructor(private readonly options: ApiServerWatchdogOptions) {
    this.thresholdMs = options.thresholdMs ?? 30_000;
    this.clock = options.clock ?? systemClock;
    this.lastProbeOk = this.clock.now();
    this.responsiveGauge = gauge(options.registry, 'dcp_apiserver_responsive', 'Whether the API server answered within the stall threshold (1) or not (0).', []);
    this.silentGauge = gauge(options.registry, 'dcp_apiserver_silent_seconds', 'Seconds since anything was heard from the API server (watch events, bookmarks, probes).', []);
    this.responsiveGauge.set(1);
  }

  /** Milliseconds since the API server was last heard from. */
  silentMs(): number {
    const sinceProbe = this.clock.now() - this.lastProbeOk;
    const sinceWatch = Math.min(...this.options.caches.map((c) => c.health().lastEventAgeSeconds * 1000));
    return Math.max(0, Math.min(sinceProbe, sinceWatch));
  }

  /** NOTE: no running figures (silence so far): the policy status must not change at every look. */
  state(): ApiServerState {
    if (this.responsive) return { responsive: true, thresholdMs: this.thresholdMs, ...(this.lastStall ? { lastStall: this.lastStall } : {}) };
    return {
      responsive: false,
      thresholdMs: this.thresholdMs,
      ...(this.stalledAt !== undefined ? { stalledSince: rfc3339(this.wallNow() - (this.clock.now() - this.stalledAt)) } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  private wallNow(): number {
    return Date.now();
  }

  /** Checks every tenth of the threshold until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const tick = Math.max(100, Math.floor(this.thresholdMs / 10));
    while (!signal.aborted) {
      await sleep(tick, signal, this.clock);
      if (signal.aborted) return;
      if (this.silentMs() >= this.thresholdMs / 2) await this.probe(signal);
      this.update();
    }
  }

  private async probe(signal: AbortSignal): Promise<void> {
    const ctl = new AbortController();
    const onStop = (): void => ctl.abort(signal.reason);
    signal.addEventListener('abort', onStop, { once: true });
    try {
      await this.options.transport.json({ path: '/version', signal: ctl.signal, idleTimeoutMs: Math.max(100, Math.floor(this.thresholdMs / 2)) });
      this.lastProbeOk = this.clock.now();
      this.lastError = undefined;
    } catch (err) {
      if (!signal.aborted) this.lastError = err instanceof Error ? err.message : String(err);
    } finally {
      signal.removeEventListener('abort', onStop);
      ctl.abort();
    }
  }

  private update(): void {
    const silent = this.silentMs();
    this.silentGauge.set(silent / 1000);
    const responsive = silent < this.thresholdMs;
    if (responsive === this.responsive) return;
    this.responsive = responsive;
    this.responsiveGauge.set(responsive ? 1 : 0);
    if (!responsive) {
      this.stalledAt = this.clock.now() - silent;
    } else if (this.stalledAt !== undefined) {
      const since = this.stalledAt;
      this.stalledAt = undefined;
      const stalledMs = this.clock.now() - silent - since;
      this.lastStall = { since: rfc3339(this.wallNow() - (this.clock.now() - since)), seconds: Math.round(stalledMs / 1000) };
      const why = new Error('the API server did not answer for a while: watching again');
      for (const c of this.options.caches) if (this.clock.now() - c.health().lastEventAgeSeconds * 1000 <= since) c.restartWatch(why);
    }
    try {
      this.options.onChange?.(responsive, silent);
    } catch {
      // A failing listener must not stop the watchdog.
    }
  }
}
