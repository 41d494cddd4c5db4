// controlPlane: Node, Pod and vCore counts kept up to date from cache changes, emitted as ControlPlaneInventory.
import { Gauge, type Registry } from 'prom-client';
import type { PolicySpec } from '../api/policy.js';
import { buildEvent } from '../api/envelope.js';
import type { ControlPlaneInventoryData, EventOf } from '../api/event.js';
import { sha256Hex } from '../api/hash.js';
import { silentLog, type Log } from '../observability/log.js';
import { Tally } from '../runtime/aggregate.js';
import type { Clock, TimerHandle } from '../runtime/clock.js';
import type { ChangeHandler, ReadStore } from '../runtime/store.js';
import { clusterRef, wallClock, type Collector, type EmitEvents } from './collector.js';
import { POD_PHASES, toMillicores, type NamespaceProjection, type NodeProjection, type PodPhase, type PodProjection } from './projections.js';

export interface InventorySnapshot {
  readonly nodes: number;
  readonly pods: number;
  readonly podsByPhase: Readonly<Record<PodPhase, number>>;
  /** Sum of Node CPU capacity, in cores. */
  readonly vCores: number;
  /** Sum of Node allocatable CPU, in cores. */
  readonly allocatableVCores: number;
}

/**
 * Counts kept from change callbacks: each change moves one object's contribution, so a change
 * costs O(1) however large the cluster. CPU is summed in integer millicores so that adding and
 * removing Nodes for days does not drift.
 */
export class InventoryCounter {
  private nodeCount = new Tally<NodeProjection>(() => 'nodes');
  private capacity = capacityTally((n) => n.cpuCapacity);
  private allocatable = capacityTally((n) => n.cpuAllocatable);
  private podPhases = new Tally<PodProjection>((p) => p.phase);

  /** Back to zero, for a new subscription with replay (the object stays the same, so gauges reading it stay valid). */
  reset(): void {
    this.nodeCount = new Tally<NodeProjection>(() => 'nodes');
    this.capacity = capacityTally((n) => n.cpuCapacity);
    this.allocatable = capacityTally((n) => n.cpuAllocatable);
    this.podPhases = new Tally<PodProjection>((p) => p.phase);
  }

  readonly onNode: ChangeHandler<NodeProjection> = (type, key, newValue, oldValue) => {
    this.nodeCount.handler(type, key, newValue, oldValue);
    this.capacity.handler(type, key, newValue, oldValue);
    this.allocatable.handler(type, key, newValue, oldValue);
  };

  readonly onPod: ChangeHandler<PodProjection> = (type, key, newValue, oldValue) => {
    this.podPhases.handler(type, key, newValue, oldValue);
  };

  /** Sum of Node CPU capacity in millicores (what billing meters). */
  get capacityMillicores(): number {
    return this.capacity.total;
  }

  snapshot(): InventorySnapshot {
    const podsByPhase = {} as Record<PodPhase, number>;
    for (const phase of POD_PHASES) podsByPhase[phase] = this.podPhases.get(phase);
    return {
      nodes: this.nodeCount.total,
      pods: this.podPhases.total,
      podsByPhase,
      vCores: this.capacity.total / 1000,
      allocatableVCores: this.allocatable.total / 1000,
    };
  }
}

function capacityTally(cores: (n: NodeProjection) => number): Tally<NodeProjection> {
  return new Tally<NodeProjection>(
    () => 'cpu',
    (n) => toMillicores(cores(n)),
  );
}

/**
 * Whether a change is worth an event before the next periodic one: the cluster's shape (Nodes,
 * vCores, allocatable vCores) changed, or the Pod count moved by a tenth or more. Pod churn alone
 * waits for the tick; in a large cluster it never stops and would turn the debounce into a stream.
 */
export function significantChange(prev: InventorySnapshot | undefined, next: InventorySnapshot): boolean {
  if (prev === undefined) return true;
  if (prev.nodes !== next.nodes || prev.vCores !== next.vCores || prev.allocatableVCores !== next.allocatableVCores) return true;
  return Math.abs(next.pods - prev.pods) >= Math.max(1, prev.pods / 10);
}

/** The event data of a snapshot. */
export function inventoryData(snapshot: InventorySnapshot, clusterCreationTimestamp: string): ControlPlaneInventoryData {
  return {
    clusterCreationTimestamp,
    nodes: snapshot.nodes,
    pods: snapshot.pods,
    podsByPhase: { ...snapshot.podsByPhase },
    vCores: snapshot.vCores,
    allocatableVCores: snapshot.allocatableVCores,
  };
}

/** The start of the `intervalMs` period after `now`, aligned to the Unix epoch. */
export function nextAlignedTick(now: number, intervalMs: number): number {
  return (Math.floor(now / intervalMs) + 1) * intervalMs;
}

export interface InventoryCollectorOptions {
  readonly nodes: ReadStore<NodeProjection>;
  readonly pods: ReadStore<PodProjection>;
  /** The kube-system Namespace: cluster id and creation time. */
  readonly kubeSystem: NamespaceProjection;
  /** The policy spec at start; later ones come through reconfigure(). */
  readonly spec: PolicySpec;
  readonly emit: EmitEvents;
  /** Must read epoch milliseconds. @default wallClock */
  readonly clock?: Clock;
  readonly log?: Log;
  /** An event follows a significant change once no change came for this long. @default 2000 */
  readonly debounceMs?: number;
  /** ... but no later than this after the first change of a burst that never settles. @default 10000 */
  readonly maxDelayMs?: number;
  /** @default significantChange */
  readonly isSignificant?: (prev: InventorySnapshot | undefined, next: InventorySnapshot) => boolean;
  /**
   * Called with the latest figures once a burst of changes settles (any change, Pods too) and on
   * every tick: for the dcp_inventory_* gauges and the policy's status.inventory. It runs also while
   * controlPlane is disabled, since those figures stay in the cluster. Must not throw.
   */
  readonly onSnapshot?: (snapshot: InventorySnapshot) => void;
}

/**
 * Emits ControlPlaneInventory every `intervalSeconds` (at epoch-aligned ticks, so two replicas that
 * overlap during a leader change produce the same id for the same figures) and, debounced, after
 * a significant change.
 */
export class InventoryCollector implements Collector {
  readonly category = 'controlPlane' as const;
  readonly counter = new InventoryCounter();
  private spec: PolicySpec;
  private readonly clock: Clock;
  private readonly log: Log;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  private readonly isSignificant: (prev: InventorySnapshot | undefined, next: InventorySnapshot) => boolean;
  private running = false;
  private replaying = false;
  private tickTimer: TimerHandle | undefined;
  private debounceTimer: TimerHandle | undefined;
  private burstStartedAt: number | undefined;
  private lastEmitted: InventorySnapshot | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: InventoryCollectorOptions) {
    this.spec = options.spec;
    this.clock = options.clock ?? wallClock;
    this.log = options.log ?? silentLog;
    this.debounceMs = options.debounceMs ?? 2000;
    this.maxDelayMs = Math.max(options.maxDelayMs ?? 10_000, this.debounceMs);
    this.isSignificant = options.isSignificant ?? significantChange;
  }

  /** The current figures (all zero until the caches have synced and run() has started). */
  snapshot(): InventorySnapshot {
    return this.counter.snapshot();
  }

  async run(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error('InventoryCollector is already running');
    try {
      await Promise.all([this.options.nodes.waitUntilSynced(signal), this.options.pods.waitUntilSynced(signal)]);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    if (signal.aborted) return;
    this.running = true;
    // The replay below counts everything again: a second run of this object must not count twice.
    this.counter.reset();
    this.lastEmitted = undefined;
    // Counted during the replay without arming the debounce timer once per cached Pod.
    this.replaying = true;
    const unsubscribe = [
      this.options.nodes.subscribe(this.onNode, { replay: true }),
      this.options.pods.subscribe(this.onPod, { replay: true }),
    ];
    this.replaying = false;
    // The start is a change: the first event follows once the replay has settled.
    this.changed();
    this.scheduleTick();
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    for (const u of unsubscribe) u();
    this.running = false;
    this.clearTimers();
    await Promise.allSettled([...this.inFlight]);
  }

  reconfigure(spec: PolicySpec): void {
    const before = this.spec.categories.controlPlane;
    this.spec = spec;
    const after = spec.categories.controlPlane;
    if (before.enabled === after.enabled && before.intervalSeconds === after.intervalSeconds) return;
    if (!after.enabled) this.lastEmitted = undefined;
    if (!this.running) return;
    this.scheduleTick();
    // Newly enabled: report the current figures soon rather than at the next tick.
    if (after.enabled && !before.enabled) this.changed();
  }

  private readonly onNode: ChangeHandler<NodeProjection> = (type, key, newValue, oldValue) => {
    this.counter.onNode(type, key, newValue, oldValue);
    this.changed();
  };

  private readonly onPod: ChangeHandler<PodProjection> = (type, key, newValue, oldValue) => {
    this.counter.onPod(type, key, newValue, oldValue);
    this.changed();
  };

  private changed(): void {
    if (!this.running || this.replaying) return;
    const now = this.clock.now();
    this.burstStartedAt ??= now;
    const at = Math.min(now + this.debounceMs, this.burstStartedAt + this.maxDelayMs);
    if (this.debounceTimer !== undefined) this.clock.clearTimeout(this.debounceTimer);
    this.debounceTimer = this.clock.setTimeout(() => this.settled(), at - now);
  }

  private settled(): void {
    this.debounceTimer = undefined;
    this.burstStartedAt = undefined;
    const snapshot = this.snapshot();
    this.report(snapshot);
    if (this.spec.categories.controlPlane.enabled && this.isSignificant(this.lastEmitted, snapshot)) {
      this.emit(snapshot, this.clock.now());
    }
  }

  private scheduleTick(): void {
    if (this.tickTimer !== undefined) this.clock.clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
    const { enabled, intervalSeconds } = this.spec.categories.controlPlane;
    if (!this.running || !enabled) return;
    const now = this.clock.now();
    const at = nextAlignedTick(now, intervalSeconds * 1000);
    this.tickTimer = this.clock.setTimeout(() => {
      this.tickTimer = undefined;
      const snapshot = this.snapshot();
      this.report(snapshot);
      if (this.spec.categories.controlPlane.enabled) this.emit(snapshot, at);
      this.scheduleTick();
    }, at - now);
  }

  private report(snapshot: InventorySnapshot): void {
    try {
      this.options.onSnapshot?.(snapshot);
    } catch (err) {
      this.log.warn('inventory snapshot hook failed', { error: String(err) });
    }
  }

  private emit(snapshot: InventorySnapshot, time: number): void {
    this.lastEmitted = snapshot;
    const event = inventoryEvent(snapshot, this.options.kubeSystem, this.spec, time);
    // A lost inventory event is not retried: the next tick reports the figures again.
    const p = this.options.emit([event]).then(
      () => undefined,
      (err: unknown) => {
        this.log.warn('inventory event not stored', { error: String(err) });
      },
    );
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private clearTimers(): void {
    if (this.tickTimer !== undefined) this.clock.clearTimeout(this.tickTimer);
    if (this.debounceTimer !== undefined) this.clock.clearTimeout(this.debounceTimer);
    this.tickTimer = undefined;
    this.debounceTimer = undefined;
    this.burstStartedAt = undefined;
  }
}

/** The ControlPlaneInventory event of a snapshot: one formula for the collector and `dcp preview`. */
export function inventoryEvent(snapshot: InventorySnapshot, kubeSystem: NamespaceProjection, spec: PolicySpec, time: number): EventOf<'ControlPlaneInventory'> {
  return buildEvent({
    name: 'ControlPlaneInventory',
    cluster: clusterRef(kubeSystem, spec),
    time: new Date(time),
    // The figures are part of the source key: a change event and a tick in one bucket are different facts.
    sourceKey: `inventory:${sha256Hex(JSON.stringify(snapshot)).slice(0, 16)}`,
    bucketSeconds: spec.categories.controlPlane.intervalSeconds,
    data: inventoryData(snapshot, kubeSystem.creationTimestamp),
  });
}

export const INVENTORY_GAUGES = ['dcp_inventory_nodes', 'dcp_inventory_pods', 'dcp_inventory_vcores', 'dcp_inventory_allocatable_vcores'] as const;

/**
 * Registers gauges that read the figures at scrape time: dcp_inventory_nodes, dcp_inventory_pods
 * (labelled by phase; sum() for the total), dcp_inventory_vcores, dcp_inventory_allocatable_vcores.
 * Replaces gauges of the same names, so a new leader term can register its own collector.
 */
export function registerInventoryGauges(registry: Registry, source: { snapshot(): InventorySnapshot }): void {
  for (const name of INVENTORY_GAUGES) registry.removeSingleMetric(name);
  new Gauge({
    name: 'dcp_inventory_nodes',
    help: 'Nodes in the cluster.',
    registers: [registry],
    collect() {
      this.set(source.snapshot().nodes);
    },
  });
  new Gauge({
    name: 'dcp_inventory_pods',
    help: 'Pods in the cluster, by phase.',
    labelNames: ['phase'],
    registers: [registry],
    collect() {
      const s = source.snapshot();
      for (const phase of POD_PHASES) this.set({ phase }, s.podsByPhase[phase]);
    },
  });
  new Gauge({
    name: 'dcp_inventory_vcores',
    help: 'Sum of Node CPU capacity, in cores.',
    registers: [registry],
    collect() {
      this.set(source.snapshot().vCores);
    },
  });
  new Gauge({
    name: 'dcp_inventory_allocatable_vcores',
    help: 'Sum of Node allocatable CPU, in cores.',
    registers: [registry],
    collect() {
      this.set(source.snapshot().allocatableVCores);
    },
  });
}
