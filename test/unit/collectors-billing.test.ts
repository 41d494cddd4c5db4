// The billing meter on virtual time: one CoreUsage per interval, no gap, no duplicate, across restarts, crashes and overlapping leaders.
import { expect } from 'chai';
import type { PolicySpec } from '../../src/api/policy.js';
import { parsePolicy } from '../../src/api/validation.js';
import { BillingMeter, coreUsageEvent, type BillingMeterOptions } from '../../src/collectors/billing.js';
import type { MeterStateStore, StoredMeterState } from '../../src/collectors/billing-state.js';
import { parseMeterState, serializeMeterState, type MeterState } from '../../src/collectors/metering.js';
import type { NamespaceProjection, NodeProjection } from '../../src/collectors/projections.js';
import { Conflict } from '../../src/kube/errors.js';
import type { DcpEvent } from '../../src/api/event.js';
import { PiiGuard } from '../../src/pipeline/guard.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { Store } from '../../src/runtime/store.js';
import { settle, startRun } from './collector-run.js';

const MIN = 60_000;
const T0 = Date.parse('2026-03-01T00:00:00.000Z');
const at = (minutes: number): number => T0 + minutes * MIN;
const KUBE_SYSTEM: NamespaceProjection = { uid: '0b9c8d7e-0000-4000-8000-000000000001', creationTimestamp: '2025-12-01T00:00:00Z' };

function spec(billingIntervalSeconds = 3600): PolicySpec {
  const p = parsePolicy({
    apiVersion: 'datacollection.arc.io/v1alpha1',
    kind: 'DataCollectionPolicy',
    metadata: { name: 'default' },
    spec: { subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001', region: 'westeurope', categories: { billing: { intervalSeconds: billingIntervalSeconds } } },
  });
  return p.spec;
}

function nodeOf(cores: number, uid = `uid-${cores}`): NodeProjection {
  return {
    uid,
    cpuCapacity: cores,
    cpuAllocatable: cores,
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

/** The ConfigMap's contract: compare-and-swap on a version, state kept only in its serialized form. */
class MemoryStateStore implements MeterStateStore {
  text: string | undefined;
  version = 0;
  saves = 0;
  conflictsToInject = 0;
  failuresToInject = 0;

  async load(): Promise<StoredMeterState | undefined> {
    await Promise.resolve();
    return this.text === undefined ? undefined : { state: parseMeterState(this.text), resourceVersion: String(this.version) };
  }

  async save(state: MeterState, resourceVersion: string | undefined): Promise<StoredMeterState> {
    await Promise.resolve();
    if (this.failuresToInject > 0) {
      this.failuresToInject--;
      throw new Error('injected: API server unavailable');
    }
    if (this.conflictsToInject > 0) {
      this.conflictsToInject--;
      this.version++; // someone else wrote
      throw new Conflict(409, 'Conflict', 'injected conflict');
    }
    if (resourceVersion === undefined ? this.text !== undefined : resourceVersion !== String(this.version)) {
      throw new Conflict(409, 'Conflict', 'the object has been modified');
    }
    this.saves++;
    this.text = serializeMeterState(state);
    this.version++;
    return { state: parseMeterState(this.text), resourceVersion: String(this.version) };
  }

  get state(): MeterState | undefined {
    return this.text === undefined ? undefined : parseMeterState(this.text);
  }
}

/** The event store: deduplicates by id, as the real one does; remembers every hand-off too. */
class Ledger {
  readonly byId = new Map<string, DcpEvent>();
  readonly handed: DcpEvent[] = [];
  failuresToInject = 0;
  afterStore: (() => void) | undefined;

  readonly emit = async (events: readonly DcpEvent[]): Promise<void> => {
    await Promise.resolve();
    if (this.failuresToInject > 0) {
      this.failuresToInject--;
      throw new Error('injected: store unavailable');
    }
    for (const e of events) {
      this.handed.push(e);
      if (!this.byId.has(e.id)) this.byId.set(e.id, e);
    }
    this.afterStore?.();
  };

  /** [start minute, end minute, quantity] of the stored intervals, in time order. */
  table(): [number, number, number][] {
    return [...this.byId.values()]
      .map((e): [number, number, number] => [
        (Date.parse(String(e.data['intervalStart'])) - T0) / MIN,
        (Date.parse(String(e.data['intervalEnd'])) - T0) / MIN,
        Number(e.data['quantity']),
      ])
      .sort((a, b) => a[0] - b[0]);
  }
}

interface Running {
  meter: BillingMeter;
  stop(): Promise<void>;
}

class World {
  readonly clock: ManualClock;
  readonly nodes = new Store<NodeProjection>();
  readonly store = new MemoryStateStore();
  readonly ledger = new Ledger();

  constructor(startMinutes: number, cores: number[]) {
    this.clock = new ManualClock(at(startMinutes));
    this.nodes.replace(new Map(cores.map((c, i) => [`node-${i}`, nodeOf(c, `uid-${i}`)])));
  }

  async start(intervalSeconds = 3600, extra: Partial<BillingMeterOptions> = {}): Promise<Running> {
    const meter = new BillingMeter({
      nodes: this.nodes,
      kubeSystem: KUBE_SYSTEM,
      spec: spec(intervalSeconds),
      emit: this.ledger.emit,
      store: this.store,
      clock: this.clock,
      ...extra,
    });
    const { stop } = await startRun(meter);
    return { meter, stop };
  }

  /** Moves virtual time to `minutes`, a minute at a time, letting the meter work at each step. */
  async advanceTo(minutes: number): Promise<void> {
    while (this.clock.now() < at(minutes)) {
      this.clock.advance(Math.min(MIN, at(minutes) - this.clock.now()));
      await settle();
    }
  }
}

function expectContiguous(table: [number, number, number][], from: number, to: number): void {
  expect(table[0]?.[0], 'first interval start').to.equal(from);
  expect(table[table.length - 1]?.[1], 'last interval end').to.equal(to);
  for (let i = 1; i < table.length; i++) expect(table[i]?.[0], `interval ${i} starts where ${i - 1} ended`).to.equal(table[i - 1]?.[1]);
}

describe('collectors: billing meter', function () {
  it('emits one CoreUsage per hour with the time-weighted average, the first hour billed from the first observation', async function () {
    const w = new World(20, [4]);
    const r = await w.start();
    await w.advanceTo(90);
    w.nodes.upsert('node-9', nodeOf(2, 'uid-9'));
    await w.advanceTo(120);
    await r.stop();
    expect(w.ledger.table()).to.deep.equal([
      [0, 60, (4 * 40) / 60],
      [60, 120, (4 * 30 + 6 * 30) / 60],
    ]);
  });

  it('emits events that pass the schema and the PII guard, dated at the interval end, with an id from the interval', async function () {
    const w = new World(0, [4, 4]);
    const r = await w.start();
    await w.advanceTo(60);
    await r.stop();
    const [event] = w.ledger.byId.values();
    expect(event).to.not.equal(undefined);
    if (event === undefined) return;
    expect(validateEvent(event)).to.deep.equal({ ok: true, event });
    expect(new PiiGuard().inspect(event)).to.deep.equal([]);
    expect(event).to.deep.include({ category: 'billing', name: 'CoreUsage', classification: 'billing', time: '2026-03-01T01:00:00.000Z' });
    expect(event.data).to.deep.equal({ intervalStart: '2026-03-01T00:00:00.000Z', intervalEnd: '2026-03-01T01:00:00.000Z', quantity: 8, unit: 'vCore' });
    expect(event.cluster).to.deep.equal({ id: KUBE_SYSTEM.uid, region: 'westeurope', subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001' });
    // Same interval, another quantity (another leader's view): the same id, so the store keeps one.
    const again = coreUsageEvent(event.cluster, { start: at(0), end: at(60), intervalSeconds: 3600, quantity: 7 });
    expect(again.id).to.equal(event.id);
    expect(coreUsageEvent(event.cluster, { start: at(0), end: at(15), intervalSeconds: 900, quantity: 8 }).id).to.not.equal(event.id);
  });

  it('writes recorded vCore changes to the state within the persist delay, not on every change', async function () {
    const w = new World(0, [4]);
    const r = await w.start(3600, { persistDelayMs: 2000 });
    await w.advanceTo(1);
    const savesBefore = w.store.saves;
    w.nodes.upsert('node-8', nodeOf(8, 'uid-8'));
    w.nodes.upsert('node-9', nodeOf(2, 'uid-9'));
    await settle();
    expect(w.store.saves).to.equal(savesBefore);
    w.clock.advance(1999);
    await settle();
    expect(w.store.saves).to.equal(savesBefore);
    w.clock.advance(1);
    await settle();
    expect(w.store.saves).to.equal(savesBefore + 1);
    expect(w.store.state?.history).to.deep.equal([
      { t: at(0), vCores: 4 },
      { t: at(1), vCores: 14 },
    ]);
    await r.stop();
  });

  it('writes nothing for a Node update that leaves the CPU sum alone', async function () {
    const w = new World(0, [4]);
    const r = await w.start(3600, { persistDelayMs: 2000 });
    await w.advanceTo(1);
    const savesBefore = w.store.saves;
    w.nodes.upsert('node-0', { ...nodeOf(4, 'uid-0'), ready: false });
    await w.advanceTo(5);
    expect(w.store.saves).to.equal(savesBefore);
    await r.stop();
  });

  it('bills a restart in the middle of an interval once, carrying the last recorded vCores across the downtime', async function () {
    const w = new World(10, [4]);
    const a = await w.start();
    await w.advanceTo(80);
    w.nodes.upsert('node-1', nodeOf(4, 'uid-1')); // 8 vCores from minute 80
    await w.advanceTo(85);
    await a.stop();
    // No leader from 85 to 200; a Node added meanwhile is seen only when the next leader starts.
    await w.advanceTo(150);
    w.nodes.upsert('node-2', nodeOf(2, 'uid-2'));
    await w.advanceTo(200);
    const b = await w.start();
    await w.advanceTo(240);
    await b.stop();
    const table = w.ledger.table();
    expectContiguous(table, 0, 240);
    expect(table).to.deep.equal([
      [0, 60, (4 * 50) / 60],
      [60, 120, (4 * 20 + 8 * 40) / 60],
      [120, 180, 8],
      [180, 240, (8 * 20 + 10 * 40) / 60],
    ]);
    // No interval was handed to the store twice: the watermark told the second leader where to start.
    expect(w.ledger.handed).to.have.length(4);
  });

  it('re-emits the same events with the same ids and quantities after a crash between emit and watermark', async function () {
    const w = new World(0, [3]);
    const a = await w.start();
    await w.advanceTo(30);
    w.nodes.upsert('node-1', nodeOf(1, 'uid-1'));
    await w.advanceTo(59);
    // The crash: the events are stored, then the process dies before it advances the watermark.
    let crash: Promise<void> | undefined;
    w.ledger.afterStore = () => {
      w.ledger.afterStore = undefined;
      crash = a.stop();
    };
    await w.advanceTo(60);
    await crash;
    expect(w.store.state?.watermark).to.equal(at(0));
    const firstHandOff = [...w.ledger.handed];
    expect(firstHandOff).to.have.length(1);
    const b = await w.start();
    await b.stop();
    expect(w.ledger.handed).to.have.length(2);
    expect(w.ledger.handed[1]).to.deep.equal(firstHandOff[0]);
    expect(w.ledger.table()).to.deep.equal([[0, 60, (3 * 30 + 4 * 30) / 60]]);
    expect(w.store.state?.watermark).to.equal(at(60));
  });

  it('back-fills every hour missed while no leader ran, in batches, then continues on time', async function () {
    const w = new World(0, [2]);
    const a = await w.start();
    await w.advanceTo(5);
    await a.stop();
    await w.advanceTo(7 * 60 + 30);
    const calls: number[] = [];
    const emit = w.ledger.emit;
    const b = await w.start(3600, {
      maxBatch: 3,
      emit: async (events) => {
        calls.push(events.length);
        await emit(events);
      },
    });
    expect(calls).to.deep.equal([3, 3, 1]);
    await w.advanceTo(8 * 60);
    await b.stop();
    const table = w.ledger.table();
    expectContiguous(table, 0, 8 * 60);
    expect(table.every(([, , q]) => q === 2)).to.equal(true);
  });

  it('does not advance the watermark while the event store refuses the events, and emits them once it accepts', async function () {
    const w = new World(0, [4]);
    w.ledger.failuresToInject = 2;
    const r = await w.start();
    await w.advanceTo(60);
    expect(w.ledger.byId.size).to.equal(0);
    expect(w.store.state?.watermark).to.equal(at(0));
    await w.advanceTo(62);
    expect(w.ledger.table()).to.deep.equal([[0, 60, 4]]);
    expect(w.store.state?.watermark).to.equal(at(60));
    await r.stop();
  });

  it('re-reads the state and applies its change again when a write meets a conflict', async function () {
    const w = new World(0, [4]);
    const r = await w.start();
    w.store.conflictsToInject = 1;
    await w.advanceTo(60);
    expect(w.ledger.table()).to.deep.equal([[0, 60, 4]]);
    expect(w.store.state?.watermark).to.equal(at(60));
    await r.stop();
  });

  it('keeps retrying while the state cannot be written, losing no interval', async function () {
    const w = new World(0, [4]);
    const r = await w.start();
    w.store.failuresToInject = 3;
    await w.advanceTo(125);
    await r.stop();
    expectContiguous(w.ledger.table(), 0, 120);
    expect(w.store.state?.watermark).to.equal(at(120));
  });

  it('changes the interval length at the end of the interval in progress, and a restart keeps that schedule', async function () {
    const w = new World(0, [4]);
    const a = await w.start(3600);
    await w.advanceTo(20);
    a.meter.reconfigure(spec(900));
    await w.advanceTo(30);
    await a.stop();
    // The next leader already runs with the new spec; the stored schedule decides where intervals fall.
    const b = await w.start(900);
    await w.advanceTo(90);
    await b.stop();
    const table = w.ledger.table();
    expectContiguous(table, 0, 90);
    expect(table.map(([s, e]) => e - s)).to.deep.equal([60, 15, 15]);
  });

  it('two leaders that overlap during a handover still bill every interval once', async function () {
    const w = new World(0, [4]);
    const a = await w.start();
    await w.advanceTo(50);
    const b = await w.start();
    w.nodes.upsert('node-1', nodeOf(2, 'uid-1'));
    await w.advanceTo(130);
    await a.stop();
    await w.advanceTo(180);
    await b.stop();
    const table = w.ledger.table();
    expectContiguous(table, 0, 180);
    expect(table).to.have.length(3);
    expect(table[0]?.[2]).to.equal((4 * 50 + 6 * 10) / 60);
  });

  it('stops with a state it cannot read rather than overwriting it', async function () {
    const w = new World(0, [4]);
    w.store.text = '{"version":1,"watermark":"garbage"}';
    const r = await w.start();
    await w.advanceTo(120);
    await r.stop();
    expect(w.ledger.byId.size).to.equal(0);
    expect(w.store.text).to.equal('{"version":1,"watermark":"garbage"}');
  });

  it('many restarts and handovers at random moments leave no gap and no duplicate, and bill the observed history', async function () {
    const w = new World(3, [4]);
    const total = (): number => [...w.nodes.entries()].reduce((sum, [, n]) => sum + n.cpuCapacity, 0);
    // What leaders saw, at whole minutes: a change while one ran, and the figure at each start.
    const observed: { minute: number; vCores: number }[] = [];
    const observe = (): void => {
      observed.push({ minute: (w.clock.now() - T0) / MIN, vCores: total() });
    };
    // A deterministic pseudo-random schedule of node changes and leader changes over 12 hours of 15-minute intervals.
    let seed = 42;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let leader: Running | undefined = await w.start(900);
    observe();
    let starts = 1;
    for (let minute = 4; minute < 12 * 60; minute += 1 + Math.floor(rand() * 20)) {
      await w.advanceTo(minute);
      const roll = rand();
      if (roll < 0.3) {
        const i = Math.floor(rand() * 5);
        if (w.nodes.has(`node-${i}`) && rand() < 0.5) w.nodes.delete(`node-${i}`);
        else w.nodes.upsert(`node-${i}`, nodeOf(1 + Math.floor(rand() * 8), `uid-${i}`));
        if (leader !== undefined) observe();
      } else if (roll < 0.45 && leader !== undefined) {
        await leader.stop();
        leader = undefined;
      } else if (roll < 0.6 && leader === undefined) {
        leader = await w.start(900);
        observe();
        starts++;
      }
    }
    if (leader === undefined) {
      leader = await w.start(900);
      observe();
    }
    await w.advanceTo(12 * 60);
    await leader.stop();
    expect(starts).to.be.greaterThan(5);

    const table = w.ledger.table();
    expectContiguous(table, 0, 12 * 60);
    expect(table).to.have.length(48);
    expect(new Set(w.ledger.handed.map((e) => e.id)).size).to.equal(48);
    // The expected quantity, minute by minute: the last observation carried forward, 0 before the first.
    const valueAt = (minute: number): number => {
      let v = 0;
      for (const o of observed) if (o.minute <= minute) v = o.vCores;
      return v;
    };
    for (const [start, end, quantity] of table) {
      let sum = 0;
      for (let m = start; m < end; m++) sum += valueAt(m);
      expect(quantity, `interval starting at minute ${start}`).to.be.closeTo(sum / (end - start), 1e-9);
    }
  });
});
