// While caches wait out a backoff because the API server could not be reached, asks it one cheap question a second and wakes them the moment it is ready.
import type { KubeTransport } from '../kube/client.js';
import { counter, type Registry } from '../observability/metrics.js';
import { sleep, systemClock, type Clock } from './clock.js';

/** What the probe needs of a cache (a Reflector). */
export interface ReconnectingCache {
  /** Backing off after a failure that got no HTTP answer (refused, reset, silent). */
  readonly waitingForServer: boolean;
  /** Ends that wait now and starts the next one from the shortest delay. */
  retryNow(): void;
}

/** Where a cache enrols for the probe's wake-ups while it runs (a ReconnectProbe). */
export interface ReconnectRegistry {
  /** Returns the removal. */
  add(cache: ReconnectingCache): () => void;
}

export interface ReconnectProbeOptions {
  readonly transport: KubeTransport;
  /** Caches known up front; others enrol through add() (reflectors given this probe as `reconnect` do so themselves). */
  readonly caches?: readonly ReconnectingCache[];
  /** Time between probes while some cache waits. @default 1000 */
  readonly intervalMs?: number;
  /** A probe that hears nothing for this long failed. @default 2000 */
  readonly timeoutMs?: number;
  readonly registry?: Registry;
  readonly clock?: Clock;
  /** The server answered after caches had waited for it: how many were woken. */
  readonly onReconnect?: (woken: number) => void;
}

/**
 * NOTE: each cache's restart delay doubles while the server is down (800 ms up to 30 s, as in
 * client-go), which keeps a down server from being hammered but leaves caches stale for up to 30 s
 * after it returns. One probe for all caches (GET /readyz, answered without etcd) at a fixed second
 * costs one request a second while the server is down, whatever the number of caches, and brings
 * them back within about a second of it being ready. Nothing is asked while no cache waits.
 */
export class ReconnectProbe implements ReconnectRegistry {
  private readonly caches: Set<ReconnectingCache>;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly probes;

  constructor(private readonly options: ReconnectProbeOptions) {
    this.caches = new Set(options.caches);
    this.intervalMs = options.intervalMs ?? 1000;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.clock = options.clock ?? systemClock;
    this.probes = counter(options.registry, 'dcp_apiserver_reconnect_probes_total', 'Readiness probes of the API server while caches waited for it, by result (ready, unready, failed).', ['result']);
  }

  add(cache: ReconnectingCache): () => void {
    this.caches.add(cache);
    return () => void this.caches.delete(cache);
  }

  /** Probes every interval while a cache waits, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleep(this.intervalMs, signal, this.clock);
      if (signal.aborted) return;
      if (![...this.caches].some((c) => c.waitingForServer)) continue;
      if (!(await this.ready(signal))) continue;
      const waiting = [...this.caches].filter((c) => c.waitingForServer);
      for (const c of waiting) c.retryNow();
      try {
        this.options.onReconnect?.(waiting.length);
      } catch {
        // A failing listener must not stop the probe.
      }
    }
  }

  private async ready(signal: AbortSignal): Promise<boolean> {
    const ctl = new AbortController();
    const onStop = (): void => ctl.abort(signal.reason);
    signal.addEventListener('abort', onStop, { once: true });
    const req = { path: '/readyz', signal: ctl.signal, idleTimeoutMs: this.timeoutMs };
    try {
      const { transport } = this.options;
      // /readyz answers 500 with a text body until the server is ready; a transport without text() reads 2xx only.
      const ok = transport.text !== undefined ? (await transport.text(req)).statusCode === 200 : (await transport.stream(req), true);
      this.probes.inc({ result: ok ? 'ready' : 'unready' });
      return ok;
    } catch {
      if (!signal.aborted) this.probes.inc({ result: 'failed' });
      return false;
    } finally {
      signal.removeEventListener('abort', onStop);
      ctl.abort();
    }
  }
}
