// The control-plane inventory: counts follow cache changes, events come on aligned ticks and debounced changes, policy changes apply.
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { PolicySpec } from '../../src/api/policy.js';
import { parsePolicy } from '../../src/api/validation.js';
import { InventoryCollector, InventoryCounter, registerInventoryGauges, significantChange, type InventorySnapshot } from '../../src/collectors/inventory.js';
import type { NamespaceProjection, NodeProjection, PodPhase, PodProjection } from '../../src/collectors/projections.js';
import type { DcpEvent } from '../../src/api/event.js';
import { PiiGuard } from '../../src/pipeline/guard.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { Store } from '../../src/runtime/store.js';
import { settle, startRun } from './collector-run.js';

const T0 = Date.parse('2026-03-01T00:00:00.000Z');
const KUBE_SYSTEM: NamespaceProjection = { uid: '0b9c8d7e-0000-4000-8000-000000000001', creationTimestamp: '2025-12-01T08:00:00Z' };

function spec(controlPlane: { enabled?: boolean; intervalSeconds?: number } = {}): PolicySpec {
  return parsePolicy({
    apiVersion: 'datacollection.arc.io/v1alpha1',
    kind: 'DataCollectionPolicy',
    metadata: { name: 'default' },
    spec: { subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001', region: 'eastus', categories: { controlPlane } },
  }).spec;
}

function nodeOf(cores: number, allocatable = cores): NodeProjection {
  return {
    uid: `uid-${cores}`,
    cpuCapacity: cores,
    cpuAllocatable: allocatable,
    nodeInfo: { osImage: '', kernelVersion: '', operatingSystem: 'linux', architecture: 'amd64', containerRuntimeVersion: '', kubeletVersion: '', systemUUID: '' },
    instanceType: undefined,
    hostnames: [],
    ready: true,
    unschedulable: false,
    memoryPressure: false,
    diskPressure: false,
    pidPressure: false,
  };
}

const pod = (phase: PodPhase, nodeName = 'n1'): PodProjection => ({ nodeName, phase });

class World {
  readonly clock = new ManualClock(T0 + 5_000);
  readonly nodes = new Store<NodeProjection>();
  readonly pods = new Store<PodProjection>();
  readonly events: DcpEvent[] = [];
  readonly snapshots: InventorySnapshot[] = [];
  readonly emit = async (events: readonly DcpEvent[]): Promise<void> => {
    this.events.push(...events);
    await Promise.resolve();
  };

  constructor(nodes: Record<string, number> = { n1: 4, n2: 2.5 }, pods: Record<string, PodPhase> = { 'default/a': 'Running', 'default/b': 'Pending' }) {
    this.nodes.replace(new Map(Object.entries(nodes).map(([k, c]) => [k, nodeOf(c)])));
    this.pods.replace(new Map(Object.entries(pods).map(([k, p]) => [k, pod(p)])));
  }

  async start(s: PolicySpec = spec(), extra: { debounceMs?: number; maxDelayMs?: number } = {}): Promise<{ collector: InventoryCollector; stop(): Promise<void> }> {
    const collector = new InventoryCollector({
      nodes: this.nodes,
      pods: this.pods,
      kubeSystem: KUBE_SYSTEM,
      spec: s,
      emit: this.emit,
      clock: this.clock,
      onSnapshot: (snap) => this.snapshots.push(snap),
      ...extra,
    });
    return startRun(collector);
  }

  async advance(ms: number): Promise<void> {
    this.clock.advance(ms);
    await settle();
  }
}

describe('collectors: inventory counts', function () {
  it('follow adds, updates and deletes of Nodes and Pods, including what the caches held before', function () {
    const c = new InventoryCounter();
    const nodes = new Store<NodeProjection>();
    const pods = new Store<PodProjection>();
    nodes.replace(new Map([['n1', nodeOf(4, 3.5)]]));
    nodes.subscribe(c.onNode, { replay: true });
    pods.subscribe(c.onPod, { replay: true });
    nodes.upsert('n2', nodeOf(2.25));
    pods.upsert('ns/a', pod('Pending'));
    pods.upsert('ns/b', pod('Pending'));
    pods.upsert('ns/a', pod('Running'));
    pods.upsert('ns/c', pod('Failed'));
    expect(c.snapshot()).to.deep.equal({
      nodes: 2,
      pods: 3,
      podsByPhase: { Pending: 1, Running: 1, Succeeded: 0, Failed: 1, Unknown: 0 },
      vCores: 6.25,
      allocatableVCores: 5.75,
    });
    nodes.upsert('n1', nodeOf(8, 8));
    nodes.delete('n2');
    pods.delete('ns/c');
    pods.upsert('ns/b', pod('Succeeded'));
    expect(c.snapshot()).to.deep.equal({
      nodes: 1,
      pods: 2,
      podsByPhase: { Pending: 0, Running: 1, Succeeded: 1, Failed: 0, Unknown: 0 },
      vCores: 8,
      allocatableVCores: 8,
    });
  });

  it('do not drift over many fractional adds and removes', function () {
    const c = new InventoryCounter();
    const nodes = new Store<NodeProjection>();
    nodes.subscribe(c.onNode);
    for (let i = 0; i < 10_000; i++) nodes.upsert(`n${i % 7}`, nodeOf(0.1 * ((i % 5) + 1)));
    for (let i = 0; i < 7; i++) nodes.delete(`n${i}`);
    expect(c.snapshot().vCores).to.equal(0);
    expect(c.snapshot().nodes).to.equal(0);
  });

  it('call a change significant when Nodes or vCores change or Pods move by a tenth', function () {
    const base: InventorySnapshot = { nodes: 3, pods: 100, podsByPhase: { Pending: 0, Running: 100, Succeeded: 0, Failed: 0, Unknown: 0 }, vCores: 12, allocatableVCores: 11 };
    expect(significantChange(undefined, base)).to.equal(true);
    expect(significantChange(base, { ...base })).to.equal(false);
    expect(significantChange(base, { ...base, pods: 105 })).to.equal(false);
    expect(significantChange(base, { ...base, pods: 110 })).to.equal(true);
    expect(significantChange(base, { ...base, nodes: 4 })).to.equal(true);
    expect(significantChange(base, { ...base, vCores: 12.5 })).to.equal(true);
    expect(significantChange(base, { ...base, allocatableVCores: 10 })).to.equal(true);
  });
});

describe('collectors: inventory collector', function () {
  it('waits for both caches to sync before it counts or emits', async function () {
    const w = new World();
    const pods = new Store<PodProjection>();
    const c = new InventoryCollector({ nodes: w.nodes, pods, kubeSystem: KUBE_SYSTEM, spec: spec(), emit: w.emit, clock: w.clock });
    const ctl = new AbortController();
    const done = c.run(ctl.signal);
    await w.advance(120_000);
    expect(w.events).to.have.length(0);
    pods.replace(new Map([['x/y', pod('Running')]]));
    await settle();
    await w.advance(2_000);
    expect(w.events).to.have.length(1);
    expect(w.events[0]?.data['pods']).to.equal(1);
    ctl.abort();
    await done;
  });

  it('emits a first event once the start settles, then one at every epoch-aligned tick', async function () {
    const w = new World();
    const r = await w.start(spec({ intervalSeconds: 60 }));
    await w.advance(2_000);
    expect(w.events.map((e) => e.time)).to.deep.equal(['2026-03-01T00:00:07.000Z']);
    await w.advance(53_000 + 120_000);
    expect(w.events.map((e) => e.time)).to.deep.equal(['2026-03-01T00:00:07.000Z', '2026-03-01T00:01:00.000Z', '2026-03-01T00:02:00.000Z', '2026-03-01T00:03:00.000Z']);
    await r.stop();
    expect(w.clock.pending).to.equal(0);
  });

  it('emits events that pass the schema and the PII guard, with the cluster creation time and all counts', async function () {
    const w = new World();
    const r = await w.start();
    await w.advance(2_000);
    await r.stop();
    const e = w.events[0];
    expect(e).to.not.equal(undefined);
    if (e === undefined) return;
    expect(validateEvent(e)).to.deep.equal({ ok: true, event: e });
    expect(new PiiGuard().inspect(e)).to.deep.equal([]);
    expect(e).to.deep.include({ category: 'controlPlane', name: 'ControlPlaneInventory', classification: 'non-personal' });
    expect(e.data).to.deep.equal({
      clusterCreationTimestamp: '2025-12-01T08:00:00Z',
      nodes: 2,
      pods: 2,
      podsByPhase: { Pending: 1, Running: 1, Succeeded: 0, Failed: 0, Unknown: 0 },
      vCores: 6.5,
      allocatableVCores: 6.5,
    });
  });

  it('emits one event 2 s after the last change of a burst of Node changes', async function () {
    const w = new World();
    const r = await w.start();
    await w.advance(2_000);
    w.events.length = 0;
    for (let i = 0; i < 5; i++) {
      w.nodes.upsert(`extra-${i}`, nodeOf(1));
      await w.advance(500);
    }
    expect(w.events).to.have.length(0);
    await w.advance(1_499);
    expect(w.events).to.have.length(0);
    await w.advance(1);
    expect(w.events).to.have.length(1);
    expect(w.events[0]?.data['nodes']).to.equal(7);
    await r.stop();
  });

  it('still reports a burst that never settles, within the maximum delay', async function () {
    const w = new World();
    const r = await w.start(spec({ intervalSeconds: 3600 }), { debounceMs: 2_000, maxDelayMs: 10_000 });
    await w.advance(2_000);
    w.events.length = 0;
    for (let i = 0; i < 30; i++) {
      w.nodes.upsert(`churn-${i}`, nodeOf(1));
      await w.advance(1_000);
    }
    // 30 s of a change every second: one event per 10 s, not one per change and not none.
    expect(w.events).to.have.length(3);
    await r.stop();
  });

  it('leaves Pod churn to the tick but keeps the snapshot hook current', async function () {
    const w = new World();
    const r = await w.start(spec({ intervalSeconds: 600 }));
    await w.advance(2_000);
    w.events.length = 0;
    w.pods.upsert('default/b', pod('Running'));
    await w.advance(3_000);
    expect(w.events).to.have.length(0);
    expect(w.snapshots[w.snapshots.length - 1]?.podsByPhase.Running).to.equal(2);
    await r.stop();
  });

  it('gives the same id to the same figures in the same bucket, so two overlapping leaders do not double-report', async function () {
    const w = new World();
    const a = await w.start(spec({ intervalSeconds: 60 }));
    const b = await w.start(spec({ intervalSeconds: 60 }));
    await w.advance(55_000);
    const ticks = w.events.filter((e) => e.time === '2026-03-01T00:01:00.000Z');
    expect(ticks).to.have.length(2);
    expect(ticks[0]?.id).to.equal(ticks[1]?.id);
    w.nodes.upsert('n3', nodeOf(1));
    await w.advance(60_000);
    const next = w.events.filter((e) => e.time === '2026-03-01T00:02:00.000Z');
    expect(next[0]?.id).to.not.equal(ticks[0]?.id);
    await a.stop();
    await b.stop();
  });

  it('stops emitting as soon as the category is disabled, keeps counting, and reports again when enabled', async function () {
    const w = new World();
    const r = await w.start(spec({ intervalSeconds: 60 }));
    await w.advance(2_000);
    const before = w.events.length;
    r.collector.reconfigure(spec({ enabled: false, intervalSeconds: 60 }));
    w.nodes.upsert('n3', nodeOf(8));
    await w.advance(300_000);
    expect(w.events).to.have.length(before);
    expect(r.collector.snapshot().vCores).to.equal(14.5);
    expect(w.snapshots[w.snapshots.length - 1]?.vCores).to.equal(14.5);
    r.collector.reconfigure(spec({ enabled: true, intervalSeconds: 60 }));
    await w.advance(2_000);
    expect(w.events).to.have.length(before + 1);
    expect(w.events[w.events.length - 1]?.data['vCores']).to.equal(14.5);
    await r.stop();
  });

  it('applies a new interval from the next tick', async function () {
    const w = new World();
    const r = await w.start(spec({ intervalSeconds: 60 }));
    await w.advance(2_000);
    r.collector.reconfigure(spec({ intervalSeconds: 300 }));
    w.events.length = 0;
    await w.advance(600_000);
    expect(w.events.map((e) => e.time)).to.deep.equal(['2026-03-01T00:05:00.000Z', '2026-03-01T00:10:00.000Z']);
    await r.stop();
  });

  it('logs and carries on when the event store refuses an event', async function () {
    const w = new World();
    let calls = 0;
    const c = new InventoryCollector({
      nodes: w.nodes,
      pods: w.pods,
      kubeSystem: KUBE_SYSTEM,
      spec: spec({ intervalSeconds: 60 }),
      clock: w.clock,
      emit: async () => {
        calls++;
        await Promise.resolve();
        throw new Error('store down');
      },
    });
    const ctl = new AbortController();
    const done = c.run(ctl.signal);
    await settle();
    await w.advance(120_000);
    // The first event, and one at each of two ticks: a refusal stops nothing.
    expect(calls).to.equal(3);
    ctl.abort();
    await done;
  });

  it('exposes the figures as gauges read at scrape time', async function () {
    const w = new World();
    const r = await w.start();
    const registry = new Registry();
    registerInventoryGauges(registry, r.collector);
    registerInventoryGauges(registry, r.collector);
    const text = await registry.metrics();
    expect(text).to.contain('dcp_inventory_nodes 2');
    expect(text).to.contain('dcp_inventory_pods{phase="Running"} 1');
    expect(text).to.contain('dcp_inventory_vcores 6.5');
    expect(text).to.contain('dcp_inventory_allocatable_vcores 6.5');
    await r.stop();
  });
});
