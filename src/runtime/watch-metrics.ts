// The dcp_watch_* metrics, registered once per Registry and shared by every reflector on it.
import { Counter, Gauge, Registry } from 'prom-client';

/** What a reflector reports to the gauges at scrape time. */
export interface WatchHealthSource {
  readonly resource: string;
  lastEventAgeSeconds(): number;
  readonly synced: boolean;
  readonly objects: number;
}

export class WatchMetrics {
  readonly restarts: Counter<'resource' | 'reason'>;
  readonly relists: Counter<'resource'>;
  readonly events: Counter<'resource' | 'type'>;
  readonly malformed: Counter<'resource'>;
  readonly handlerErrors: Counter<'resource'>;
  private readonly sources = new Set<WatchHealthSource>();

  private constructor(registry: Registry) {
    const registers = [registry];
    this.restarts = new Counter({
      name: 'dcp_watch_restarts_total',
      help: 'Lists and watches started again after a failure, by reason (expired, stalled, network, ...).',
      labelNames: ['resource', 'reason'] as const,
      registers,
    });
    this.relists = new Counter({
      name: 'dcp_watch_relists_total',
      help: 'Full lists made because a watch could not resume from its resourceVersion.',
      labelNames: ['resource'] as const,
      registers,
    });
    this.events = new Counter({
      name: 'dcp_watch_events_total',
      help: 'Watch events received, by type (added, modified, deleted, bookmark, error).',
      labelNames: ['resource', 'type'] as const,
      registers,
    });
    this.malformed = new Counter({
      name: 'dcp_watch_malformed_objects_total',
      help: 'Objects skipped because they lack fields the cache needs.',
      labelNames: ['resource'] as const,
      registers,
    });
    this.handlerErrors = new Counter({
      name: 'dcp_watch_handler_errors_total',
      help: 'Change handlers that threw; the error was swallowed to protect the watch.',
      labelNames: ['resource'] as const,
      registers,
    });
    const sources = this.sources;
    new Gauge({
      name: 'dcp_watch_last_event_age_seconds',
      help: 'Seconds since the last list or watch event (bookmarks included); grows while a watch is stalled.',
      labelNames: ['resource'] as const,
      registers,
      collect() {
        this.reset();
        for (const s of sources) this.set({ resource: s.resource }, s.lastEventAgeSeconds());
      },
    });
    new Gauge({
      name: 'dcp_watch_synced',
      help: '1 once the cache holds a complete list.',
      labelNames: ['resource'] as const,
      registers,
      collect() {
        this.reset();
        for (const s of sources) this.set({ resource: s.resource }, s.synced ? 1 : 0);
      },
    });
    new Gauge({
      name: 'dcp_watch_cache_objects',
      help: 'Objects held in the cache.',
      labelNames: ['resource'] as const,
      registers,
      collect() {
        this.reset();
        for (const s of sources) this.set({ resource: s.resource }, s.objects);
      },
    });
  }

  private static readonly byRegistry = new WeakMap<Registry, WatchMetrics>();

  /** The metrics of `registry`, created and registered on first use. */
  static for(registry: Registry): WatchMetrics {
    let m = WatchMetrics.byRegistry.get(registry);
    if (m === undefined) {
      m = new WatchMetrics(registry);
      WatchMetrics.byRegistry.set(registry, m);
    }
    return m;
  }

  /** Adds a reflector to the scrape-time gauges; returns the function that removes it. */
  addSource(source: WatchHealthSource): () => void {
    this.sources.add(source);
    return () => {
      this.sources.delete(source);
    };
  }
}
