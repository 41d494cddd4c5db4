// Billing against the real API server: meters killed, restarted and handed over on virtual time, state in the dcp-billing ConfigMap.
import { expect } from 'chai';
import type { PolicySpec } from '../../src/api/policy.js';
import { parsePolicy } from '../../src/api/validation.js';
import { BillingMeter } from '../../src/collectors/billing.js';
import { ConfigMapMeterStateStore } from '../../src/collectors/billing-state.js';
import { openIntervalEnd, type MeterState } from '../../src/collectors/metering.js';
import { projectNode, type NamespaceProjection, type NodeProjection } from '../../src/collectors/projections.js';
import { KubeClient } from '../../src/kube/client.js';
import { Conflict } from '../../src/kube/errors.js';
import type { DcpEvent } from '../../src/api/event.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { Store } from '../../src/runtime/store.js';
import { cluster, RUN_LABEL } from './harness.js';

/** Polls a condition on real time; the limit only bounds a hung test, it asserts nothing about speed. */
async function until(what: string, cond: () => boolean | Promise<boolean>, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function spec(intervalSeconds: number): PolicySpec {
  return parsePolicy({
    apiVersion: 'datacollection.arc.io/v1alpha1',
    kind: 'DataCollectionPolicy',
    metadata: { name: 'default' },
    spec: { subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001', region: 'eastus', categories: { billing: { intervalSeconds } } },
  }).spec;
}

interface Leader {
  readonly name: string;
  readonly meter: BillingMeter;
  steps: number;
  state: MeterState | undefined;
  stop(): Promise<void>;
}

describe('collectors: billing meter on the local control plane', function () {
  this.timeout(180_000);
  let namespace: string;
  let client: KubeClient;
  let kubeSystem: NamespaceProjection;

  before(async function () {
    const c = cluster();
    namespace = `dcp-billing-${c.runId}`;
    client = new KubeClient(c.kc);
    await c.ensureNamespace(namespace);
    kubeSystem = await c.kubeSystem();
  });

  after(async function () {
    const c = cluster();
    await c.kubectl(['delete', 'namespace', namespace, '--wait=false']);
    await c.kubectl(['delete', 'nodes', '-l', `${RUN_LABEL}=${c.runId},dcp-e2e=billing`, '--wait=false']);
  });

  it('refuses a write over a version someone else has replaced (409), so concurrent meters cannot lose a write', async function () {
    const store = new ConfigMapMeterStateStore({ transport: client, namespace, name: 'cas-check' });
    expect(await store.load()).to.equal(undefined);
    const state: MeterState = { watermark: 0, schedule: [{ from: 0, intervalSeconds: 60 }], history: [{ t: 0, vCores: 1 }] };
    const v1 = await store.save(state, undefined);
    let createAgain: unknown;
    await store.save(state, undefined).catch((err: unknown) => (createAgain = err));
    expect(createAgain).to.be.instanceOf(Conflict);
    const v2 = await store.save({ ...state, watermark: 60_000 }, v1.resourceVersion);
    let stale: unknown;
    await store.save({ ...state, watermark: 120_000 }, v1.resourceVersion).catch((err: unknown) => (stale = err));
    expect(stale).to.be.instanceOf(Conflict);
    expect((await store.load())?.state.watermark).to.equal(60_000);
    expect((await store.load())?.resourceVersion).to.equal(v2.resourceVersion);
  });

  it('bills every interval exactly once through crashes, restarts, overlapping leaders, an outage and an interval change', async function () {
    const c = cluster();
    const selector = `${RUN_LABEL}=${c.runId},dcp-e2e=billing`;
    const nodeName = (s: string): string => `billing-${c.runId}-${s}`;
    const nodes = new Store<NodeProjection>();
    // The cache: the real Node list, applied when the test says so (what a reflector does on each event).
    const sync = async (): Promise<void> => {
      const list = (await client.json({ path: '/api/v1/nodes', query: { labelSelector: selector } })) as { items: unknown[] };
      const next = new Map<string, NodeProjection>();
      for (const item of list.items) {
        const p = projectNode(item);
        const name = (item as { metadata: { name: string } }).metadata.name;
        if (p !== undefined) next.set(name, p);
      }
      nodes.replace(next);
    };
    const addNode = async (s: string, cpu: string): Promise<void> => {
      await c.createNodes([{ name: nodeName(s), cpu, labels: { 'dcp-e2e': 'billing' } }]);
    };
    const deleteNode = async (s: string): Promise<void> => {
      await c.kubectlOk(['delete', 'node', nodeName(s), '--wait=true']);
    };

    const I = 60;
    const BASE = Math.floor(Date.parse('2026-06-01T00:00:00Z') / 1000 / 3600) * 3600 * 1000;
    const clock = new ManualClock(BASE);
    const sec = (): number => (clock.now() - BASE) / 1000;
    const ledger = new Map<string, DcpEvent>();
    const handed: DcpEvent[] = [];
    let afterStore: (() => void) | undefined;
    const emit = async (events: readonly DcpEvent[]): Promise<void> => {
      await Promise.resolve();
      for (const e of events) {
        handed.push(e);
        if (!ledger.has(e.id)) ledger.set(e.id, e);
      }
      afterStore?.();
    };
    const store = new ConfigMapMeterStateStore({ transport: client, namespace });
    const vCoresNow = (): number => [...nodes.entries()].reduce((s, [, n]) => s + n.cpuCapacity, 0);
    // What leaders saw: each start and each change they were running for. The expected bill follows from it.
    const observed: { t: number; vCores: number }[] = [];
    const leaders = new Set<Leader>();
    const timeline: string[] = [];

    const start = async (name: string, intervalSeconds = I): Promise<Leader> => {
      const ctl = new AbortController();
      const leader: Leader = {
        name,
        meter: new BillingMeter({
          nodes,
          kubeSystem,
          spec: spec(intervalSeconds),
          emit,
          store,
          clock,
          persistDelayMs: 2000,
          onStep: (state) => {
            leader.steps++;
            leader.state = state;
          },
        }),
        steps: 0,
        state: undefined,
        stop: async () => {
          ctl.abort();
          await done;
          leaders.delete(leader);
          timeline.push(`${sec()}s: ${name} stops`);
        },
      };
      const done = leader.meter.run(ctl.signal);
      leaders.add(leader);
      observed.push({ t: clock.now(), vCores: vCoresNow() });
      timeline.push(`${sec()}s: ${name} starts (${vCoresNow()} vCores)`);
      await until(`${name} to take its first step`, () => leader.steps > 0);
      return leader;
    };
    /** Advances virtual time in 1 s steps, waiting at each for the running meters to finish their work. */
    const advanceTo = async (seconds: number): Promise<void> => {
      while (sec() < seconds) {
        const before = [...leaders].map((l) => l.steps);
        clock.advance(1000);
        const now = clock.now();
        // A meter steps when a timer of its fell due: at an interval end or a persist deadline.
        await until(`meters to settle at ${sec()}s`, async () => {
          const due = [...leaders].some((l, i) => {
            const s = l.state;
            if (s === undefined) return false;
            return l.steps === before[i] && (nextEnd(s) <= now);
          });
          return !due;
        });
      }
    };
    const nextEnd = (s: MeterState): number => openIntervalEnd(s, s.watermark);
    const change = async (what: () => Promise<void>, label: string): Promise<void> => {
      await what();
      await sync();
      if (leaders.size > 0) observed.push({ t: clock.now(), vCores: vCoresNow() });
      timeline.push(`${sec()}s: ${label} → ${vCoresNow()} vCores${leaders.size === 0 ? ' (no leader sees it)' : ''}`);
    };
    const persisted = async (): Promise<void> => {
      const t = clock.now();
      await advanceTo(sec() + 2);
      await until('the change to reach the ConfigMap', async () => ((await store.load())?.state.history ?? []).some((p) => p.t >= t - 1) || leaders.size === 0);
    };

    await addNode('a', '4');
    await addNode('b', '2500m');
    await sync();
    await advanceTo(10);

    const A = await start('A');
    await advanceTo(30);
    await change(() => addNode('c', '1'), 'node c (1 core) added');
    await persisted();
    await advanceTo(61);
    await until('interval [0, 60) billed', () => ledger.size === 1);

    // A crashes between storing the events of [60, 120) and advancing the watermark.
    afterStore = () => {
      afterStore = undefined;
      timeline.push(`${sec()}s: A crashes after the events of the interval ending at 120s were stored`);
      void A.stop();
    };
    await advanceTo(120);
    await until('A to stop', () => !leaders.has(A));
    expect((await store.load())?.state.watermark).to.equal(BASE + 60_000);
    await advanceTo(130);
    const B = await start('B');
    await until('B to re-emit [60, 120)', () => B.state !== undefined && B.state.watermark >= BASE + 120_000);

    await advanceTo(150);
    await change(() => deleteNode('a'), 'node a (4 cores) deleted');
    await persisted();
    // Handover with overlap: C starts while B still runs, and both close [120, 180).
    await advanceTo(155);
    const C = await start('C');
    await advanceTo(185);
    await B.stop();
    await advanceTo(200);
    await C.stop();

    // An outage: no leader from 200 s to 400 s; a Node added meanwhile is seen only by the next leader.
    await change(() => addNode('d', '8'), 'node d (8 cores) added');
    await advanceTo(400);
    const D = await start('D');
    await until('D to back-fill to 360s', () => D.state !== undefined && D.state.watermark >= BASE + 360_000);
    await advanceTo(430);
    D.meter.reconfigure(spec(120));
    timeline.push(`${sec()}s: intervalSeconds 60 → 120 (from the next boundary)`);
    await advanceTo(610);
    await D.stop();
    await advanceTo(615);
    await start('E', 120);
    await advanceTo(721);
    for (const l of [...leaders]) await l.stop();

    // The table: every interval once, back to back, with the quantity the observed history gives.
    const rows = [...ledger.values()]
      .map((e) => ({
        start: (Date.parse(String(e.data['intervalStart'])) - BASE) / 1000,
        end: (Date.parse(String(e.data['intervalEnd'])) - BASE) / 1000,
        quantity: Number(e.data['quantity']),
        id: e.id,
        handed: handed.filter((h) => h.id === e.id).length,
      }))
      .sort((a, b) => a.start - b.start);
    const valueAt = (t: number): number => {
      let v = 0;
      for (const o of observed) if (o.t <= t) v = o.vCores;
      return v;
    };
    const expectedQuantity = (startS: number, endS: number): number => {
      // Integrate the step function exactly between its change points.
      const cuts = [...new Set([startS * 1000, endS * 1000, ...observed.map((o) => o.t - BASE).filter((t) => t > startS * 1000 && t < endS * 1000)])].sort((a, b) => a - b);
      let sum = 0;
      for (let i = 0; i + 1 < cuts.length; i++) sum += valueAt(BASE + (cuts[i] ?? 0)) * ((cuts[i + 1] ?? 0) - (cuts[i] ?? 0));
      return sum / ((endS - startS) * 1000);
    };
    console.log(`      timeline:\n${timeline.map((l) => `        ${l}`).join('\n')}`);
    console.log('      interval (s)   quantity   expected   handed to the store');
    for (const r of rows) {
      console.log(`      [${String(r.start).padStart(3)}, ${String(r.end).padStart(3)})   ${r.quantity.toFixed(4).padStart(8)}   ${expectedQuantity(r.start, r.end).toFixed(4).padStart(8)}   ${r.handed}×`);
    }

    expect(rows[0]?.start).to.equal(0);
    expect(rows[rows.length - 1]?.end).to.equal(720);
    for (let i = 1; i < rows.length; i++) expect(rows[i]?.start, `row ${i}`).to.equal(rows[i - 1]?.end);
    expect(rows.map((r) => r.end - r.start)).to.deep.equal([60, 60, 60, 60, 60, 60, 60, 60, 120, 120]);
    for (const r of rows) expect(r.quantity, `[${r.start}, ${r.end})`).to.be.closeTo(expectedQuantity(r.start, r.end), 1e-9);
    // Every event handed over more than once was the same event (same id, same data): a repeat, not a second bill.
    for (const h of handed) expect(h).to.deep.equal(ledger.get(h.id));
    for (const e of ledger.values()) expect(validateEvent(e).ok).to.equal(true);
    const final = await store.load();
    expect(final?.state.watermark).to.equal(BASE + 720_000);
    expect(final?.state.schedule).to.deep.equal([{ from: BASE + 480_000, intervalSeconds: 120 }]);
  });
});
