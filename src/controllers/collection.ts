// One leader term of collection: opens the store, runs the pipeline, sinks and the collectors the policy enables.
import { billingGauges } from '../collectors/billing-metrics.js';
import type { Registry } from 'prom-client';
import type { CategoryName, PolicySpec, PolicyStatus, Sink } from '../api/policy.js';
import { CATEGORY_NAMES } from '../api/policy.js';
import {
  BillingMeter,
  ConfigMapMeterStateStore,
  denyNodeIdentifiers,
  getOrCreateDeviceKey,
  HostErrorsCollector,
  HostOsCollector,
  InventoryCollector,
  LinuxVmCollector,
  SecurityCollector,
  registerInventoryGauges,
  wallClock,
  type Collector,
  type InventorySnapshot,
  type NamespaceProjection,
  type NodeProjection,
  type PodProjection,
} from '../collectors/index.js';
import type { KubeTransport } from '../kube/client.js';
import { asRecord, asString } from '../kube/resource.js';
import type { DcpEvent } from '../api/event.js';
import { DenySet, PiiGuard } from '../pipeline/guard.js';
import { Ingest } from '../pipeline/ingest.js';
import type { Log } from '../observability/log.js';
import { EventValidator } from '../pipeline/validate.js';
import { sleep, type Clock } from '../runtime/clock.js';
import { OPEN_FENCE, type Fence } from '../runtime/fence.js';
import type { SkippedObjects } from '../runtime/skipped-objects.js';
import type { ReadStore } from '../runtime/store.js';
import { CursorStore, Dispatcher, createSink, type DispatchTarget } from '../sinks/index.js';
import { EventStore } from '../store/event-store.js';
import { WriteHealth, type WriteFailure } from '../store/write-health.js';
import type { Observed } from './policy-status.js';
import type { ReconnectRegistry } from '../runtime/reconnect-probe.js';
import { categoryEnabled } from '../api/categories.js';

export interface CollectionOptions {
  readonly transport: KubeTransport;
  /** The operator namespace: device-key Secret, billing ConfigMap, sink token Secrets. */
  readonly namespace: string;
  readonly dataDir: string;
  readonly nodes: ReadStore<NodeProjection>;
  readonly pods: ReadStore<PodProjection>;
  readonly namespaces: ReadStore<NamespaceProjection>;
  readonly registry: Registry;
  readonly log: Log;
  /** Wall clock (epoch ms) for collectors and the store. @default wallClock */
  readonly clock?: Clock;
  /** Something the status shows changed (inventory, events emitted): the reconciler should run. */
  readonly onChange: () => void;
  /** Where collectors report objects they cannot read (counted, and a Warning Event on the object). */
  readonly skipped?: SkippedObjects;
  /** A sink failing for longer than this turns Delivering False. @default 300000 */
  readonly sinkFailingThresholdMs?: number;
  /** Retention sweep period. @default 10 minutes */
  readonly sweepIntervalMs?: number;
  /** Checked right before each store append and each sink delivery (leader fencing). @default none */
  readonly fence?: Fence;
  /** Where the collectors' own reflectors enrol for wake-ups after an API server outage. */
  readonly reconnect?: ReconnectRegistry;
}

interface CategoryCounters {
  eventsEmitted: number;
  lastEventTime?: string;
}

interface RunningCollectors {
  readonly abort: AbortController;
  readonly collectors: Collector[];
  readonly done: Promise<unknown>;
  readonly inventory: InventoryCollector;
}

const sinkKey = (s: Sink): string => JSON.stringify([s.type, s.url, s.path, s.secretRef?.name, s.secretRef?.key, s.region]);

/**
 * NOTE: only the leader builds a Collection, and it stops writing the moment `signal` aborts:
 * collectors, dispatcher and retention all run under it, and close() waits for them.
 */
export class Collection {
  private spec: PolicySpec | undefined;
  private running: RunningCollectors | undefined;
  private readonly counters = new Map<CategoryName, CategoryCounters>();
  private readonly denySet = new DenySet();
  private readonly ingest: Ingest;
  private readonly dispatcher: Dispatcher;
  private readonly clock: Clock;
  private retentionApplied: number | undefined;
  private retentionError: string | undefined;
  private sinkKeys = new Map<string, string>();
  private readonly background: Promise<unknown>[] = [];
  private readonly termAbort = new AbortController();
  private readonly fence: Fence;

  private constructor(
    private readonly options: CollectionOptions,
    private readonly store: EventStore,
    private readonly health: WriteHealth,
  ) {
    this.clock = options.clock ?? wallClock;
    const fence = options.fence ?? OPEN_FENCE;
    this.fence = fence;
    this.ingest = new Ingest({
      validator: new EventValidator({ registry: options.registry, log: options.log }),
      guard: new PiiGuard({ denySet: this.denySet, registry: options.registry, log: options.log }),
      store: {
        append: (events) => {
          fence.check('store append');
          return store.append(events);
        },
      },
    });
    this.dispatcher = new Dispatcher({
      store,
      cursors: new CursorStore(options.dataDir, health, () => fence.check('sink cursor')),
      policy: () => ({ region: this.spec?.region ?? 'eastus', export: { forwardAggregatesToCentral: this.spec?.export.forwardAggregatesToCentral ?? false } }),
      log: options.log,
      registry: options.registry,
      onStateChange: () => options.onChange(),
      beforeWrite: (what) => fence.check(what),
    });
  }

  static async open(options: CollectionOptions): Promise<Collection> {
    const clock = options.clock ?? wallClock;
    // A write failure or recovery changes StoreWritable: the reconciler should run at once.
    const health = new WriteHealth(options.registry, () => options.onChange());
    const fence = options.fence ?? OPEN_FENCE;
    const store = await EventStore.open({ dataDir: options.dataDir, now: () => clock.now(), log: options.log, registry: options.registry, health, beforeWrite: () => fence.check('store append') });
    const report = store.openReport;
    if (report.tornRecords > 0) options.log.warn('store opened after an interrupted write', { ...report });
    return new Collection(options, store, health);
  }

  /** Starts the dispatcher and the retention loop; they run until `signal` aborts or close() is called. */
  start(signal: AbortSignal): void {
    signal.addEventListener('abort', () => this.termAbort.abort(signal.reason), { once: true });
    const term = this.termAbort.signal;
    this.background.push(this.dispatcher.start(term).catch((err: unknown) => this.options.log.error('dispatcher stopped', { error: String(err) })));
    this.background.push(this.runRetention(term));
  }

  private async runRetention(signal: AbortSignal): Promise<void> {
    const period = this.options.sweepIntervalMs ?? 600_000;
    // The first sweep runs when the first spec is applied (it brings the retention); this loop repeats it.
    while (!signal.aborted) {
      await sleep(period, signal);
      if (!signal.aborted && this.spec) await this.sweepNow();
    }
  }

  private async sweepNow(): Promise<void> {
    const rawDays = this.spec?.retention.rawDays;
    try {
      this.fence.check('retention sweep');
      await this.store.sweep();
      this.retentionApplied = rawDays;
      this.retentionError = undefined;
    } catch (err) {
      this.retentionError = `retention sweep failed: ${String(err)}`;
      this.options.log.error('store: retention sweep failed', { error: String(err) });
    }
    this.options.onChange();
  }

  /** Applies a policy spec (undefined: the policy is gone, so collection stops). */
  async apply(spec: PolicySpec | undefined): Promise<void> {
    const previous = this.spec;
    this.spec = spec;
    if (spec === undefined) {
      await this.stopCollectors();
      await this.dispatcher.setTargets([]);
      return;
    }
    if (!previous || previous.retention.rawDays !== spec.retention.rawDays || previous.retention.aggregateDays !== spec.retention.aggregateDays) {
      this.store.setRetention({ rawDays: spec.retention.rawDays, aggregateDays: spec.retention.aggregateDays });
      // A retention change takes effect at once rather than at the next periodic sweep.
      void this.sweepNow();
    }
    await this.applySinks(spec);
    if (this.running) {
      for (const c of this.running.collectors) c.reconfigure(spec);
    } else {
      await this.startCollectors(spec);
    }
  }

  private async applySinks(spec: PolicySpec): Promise<void> {
    const sinks = spec.export.sinks ?? [];
    const keys = new Map(sinks.map((s) => [s.name, sinkKey(s)]));
    const same = keys.size === this.sinkKeys.size && [...keys].every(([name, key]) => this.sinkKeys.get(name) === key);
    if (same) return;
    this.sinkKeys = keys;
    const targets: DispatchTarget[] = [];
    for (const config of sinks) {
      try {
        const ref = config.secretRef;
        const beforeRequest = (): void => this.fence.check('sink delivery');
        targets.push({ config, sink: createSink(config, { log: this.options.log, token: ref ? () => this.readToken(ref.name, ref.key) : undefined, beforeRequest }) });
      } catch (err) {
        this.options.log.error('sink not usable', { sink: config.name, error: String(err) });
      }
    }
    await this.dispatcher.setTargets(targets);
  }

  /** A sink's bearer token, read from a Secret in the operator namespace at each send (rotation applies at once). */
  private async readToken(name: string, key: string): Promise<string | undefined> {
    const secret = await this.options.transport.json({ path: `/api/v1/namespaces/${this.options.namespace}/secrets/${name}` });
    const value = asString(asRecord(asRecord(secret)?.data)?.[key]);
    return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8').trim();
  }

  private async startCollectors(spec: PolicySpec): Promise<void> {
    const abort = new AbortController();
    const onTermAbort = (): void => abort.abort(this.termAbort.signal.reason);
    this.termAbort.signal.addEventListener('abort', onTermAbort, { once: true });
    await this.options.namespaces.waitUntilSynced(abort.signal);
    const kubeSystem = this.options.namespaces.get('kube-system');
    if (!kubeSystem) throw new Error('the kube-system namespace is missing: no cluster id');
    const { transport, namespace, nodes, pods, log } = this.options;
    const emit = (events: readonly DcpEvent[]): Promise<void> => this.emit(events);
    const common = { kubeSystem, spec, emit, clock: this.clock, log };
    const inventory = new InventoryCollector({ ...common, nodes, pods, onSnapshot: () => this.options.onChange() });
    registerInventoryGauges(this.options.registry, inventory.counter);
    const { registry } = this.options;
    const skipped = this.options.skipped !== undefined ? { skipped: this.options.skipped } : {};
    const collectors: Collector[] = [
      inventory,
      new HostOsCollector({ ...common, nodes, denySet: this.denySet, deviceKey: (signal) => getOrCreateDeviceKey({ transport, namespace, signal }) }),
      new BillingMeter({ ...common, nodes, store: new ConfigMapMeterStateStore({ transport, namespace }), onBilled: billingGauges(registry) }),
      // These watch what they read (Events, TLS Secrets, CSRs) only while their category is enabled.
      new HostErrorsCollector({ ...common, transport, registry, denySet: this.denySet, ...skipped }),
      new LinuxVmCollector({ ...common, transport, registry, denySet: this.denySet, ...skipped }),
      new SecurityCollector({ ...common, transport, registry, ...skipped, ...(this.options.reconnect ? { reconnect: this.options.reconnect } : {}) }),
    ];
    const unsubscribeDeny = denyNodeIdentifiers(nodes, this.denySet);
    // Status follows Pod and Node changes at once, still without a write per change: the work queue runs one
    // reconcile at a time and folds every change that comes meanwhile into the next. (A 50 ms timer here used
    // to add its 50 ms to every change→status delay and saved no write the queue does not save already.)
    const nudge = (): void => this.options.onChange();
    const unsubscribePods = pods.subscribe(nudge);
    const unsubscribeNodes = nodes.subscribe(nudge);
    const done = Promise.allSettled(collectors.map((c) => c.run(abort.signal))).finally(() => {
      unsubscribeDeny();
      unsubscribePods();
      unsubscribeNodes();
      this.termAbort.signal.removeEventListener('abort', onTermAbort);
    });
    this.running = { abort, collectors, done, inventory };
    log.info('collection started', { region: spec.region });
  }

  private async stopCollectors(): Promise<void> {
    const running = this.running;
    this.running = undefined;
    if (!running) return;
    running.abort.abort(new Error('collection stopped'));
    await running.done;
    this.options.log.info('collection stopped');
  }

  /** The collectors' hand-off: validate, guard, store durably; then count for status. */
  private async emit(events: readonly DcpEvent[]): Promise<void> {
    const result = await this.ingest.submit(events);
    for (const e of result.accepted) {
      const c = this.counters.get(e.category) ?? { eventsEmitted: 0 };
      c.eventsEmitted++;
      if (!c.lastEventTime || e.time > c.lastEventTime) c.lastEventTime = e.time;
      this.counters.set(e.category, c);
    }
    if (result.accepted.length > 0) this.options.onChange();
    // NOTE: a dropped billing event must not look stored: the meter would move its watermark past it and
    // the interval would never be billed. Other categories drop a bad event (counted and logged) and go on.
    const dropped = result.invalid + result.rejected;
    if (dropped > 0 && events.some((e) => e.category === 'billing')) {
      throw new Error(`${result.invalid} schema-invalid and ${result.rejected} PII-rejected event(s) were not stored`);
    }
  }

  inventory(): InventorySnapshot | undefined {
    return this.running?.inventory.counter.snapshot();
  }

  /** Why the data directory does not take writes now, or undefined while it does. */
  writeFailure(): WriteFailure | undefined {
    return this.health.failure;
  }

  /** What the status shows about this term. */
  observe(): Partial<Observed> {
    const spec = this.spec;
    const stats = this.store.stats();
    const snapshot = this.inventory();
    const categories: NonNullable<PolicyStatus['categories']> = {};
    for (const name of CATEGORY_NAMES) {
      const c = this.counters.get(name);
      const enabled = spec ? categoryEnabled(spec, name) : false;
      categories[name] = c?.lastEventTime ? { enabled, eventsEmitted: c.eventsEmitted, lastEventTime: c.lastEventTime } : { enabled, eventsEmitted: c?.eventsEmitted ?? 0 };
    }
    const kubeSystem = this.options.namespaces.get('kube-system');
    return {
      ...(kubeSystem ? { clusterCreationTimestamp: kubeSystem.creationTimestamp } : {}),
      ...(snapshot ? { inventory: { nodes: snapshot.nodes, pods: snapshot.pods, vCores: snapshot.vCores } } : {}),
      categories,
      store: {
        events: stats.events,
        bytes: stats.bytes,
        ...(stats.oldestEventTime ? { oldestEventTime: stats.oldestEventTime } : {}),
        ...(this.retentionApplied !== undefined ? { rawDaysApplied: this.retentionApplied } : {}),
        ...(this.retentionError ? { error: this.retentionError } : {}),
      },
      ...(this.writeFailure() ? { storeWrite: this.writeFailure() } : {}),
      delivery: { sinks: this.dispatcher.deliveries(), failingThresholdMs: this.options.sinkFailingThresholdMs ?? 300_000 },
    };
  }

  /** Stops collectors, dispatcher and retention, then closes the store (everything acknowledged is on disk). */
  async close(): Promise<void> {
    await this.stopCollectors();
    this.termAbort.abort(new Error('collection closed'));
    await Promise.allSettled(this.background);
    await this.store.close();
  }
}
