// Residency and delivery of `dcp run`: raw events to the regional sink only, aggregates to central only, nothing lost in an outage.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { buildEvent } from '../../src/api/envelope.js';
import type { ClusterRef, CoreUsageData, DcpEvent } from '../../src/api/event.js';
import { EXAMPLE_DATA } from '../../src/pipeline/examples.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import { DAY_MS, dayOf, dayStart } from '../../src/store/days.js';
import { EventStore } from '../../src/store/event-store.js';
import { cluster, RUN_LABEL, type TestCluster } from './harness.js';
import { killAllOperators, OperatorProcess, waitFor } from './operator-process.js';
import {
  applyOk,
  condition,
  getPolicy,
  policyYaml,
  readStore,
  readyAtGeneration,
  Receiver,
  REGION,
  SUBSCRIPTION,
  storeIds,
  storeStats,
  type SinkSpec,
} from './pipeline-helpers.js';

const INTERVAL_S = 10;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Billing and inventory every 10 s, so raw events of every kind arrive within seconds. */
const policy = (sinks: SinkSpec[], forwardAggregatesToCentral: boolean): string =>
  policyYaml({
    categories: { controlPlane: { intervalSeconds: INTERVAL_S }, billing: { intervalSeconds: INTERVAL_S } },
    export: { forwardAggregatesToCentral, sinks },
  });

const regionalSink = (r: Receiver): SinkSpec => ({ name: 'regional', type: 'http', url: r.url('/regional'), region: REGION });
const centralSink = (r: Receiver): SinkSpec => ({ name: 'central', type: 'http', url: r.url('/central'), region: 'central' });

/**
 * Yesterday's raw events, written as an operator that ran yesterday would have left them. The store
 * aggregates finished days only, so this is what makes a DailyAggregate appear at the operator's
 * first retention sweep (when the policy is applied) instead of after midnight.
 */
async function seedYesterday(dataDir: string, cluster: ClusterRef): Promise<DcpEvent[]> {
  const noon = dayStart(dayOf(Date.now() - DAY_MS)) + DAY_MS / 2;
  const at = (offsetS: number): Date => new Date(noon + offsetS * 1000);
  const usage = (start: number): CoreUsageData => ({ intervalStart: at(start).toISOString(), intervalEnd: at(start + INTERVAL_S).toISOString(), quantity: 6, unit: 'vCore' });
  const events: DcpEvent[] = [
    buildEvent({ name: 'ControlPlaneInventory', cluster, time: at(0), sourceKey: 'cluster', data: EXAMPLE_DATA.ControlPlaneInventory }),
    buildEvent({ name: 'HostOsInfo', cluster, time: at(1), sourceKey: EXAMPLE_DATA.HostOsInfo.deviceId, data: EXAMPLE_DATA.HostOsInfo }),
    buildEvent({ name: 'CoreUsage', cluster, time: at(INTERVAL_S), bucket: usage(0).intervalStart, sourceKey: 'cluster', data: usage(0) }),
    buildEvent({ name: 'CoreUsage', cluster, time: at(2 * INTERVAL_S), bucket: usage(INTERVAL_S).intervalStart, sourceKey: 'cluster', data: usage(INTERVAL_S) }),
  ];
  for (const e of events) expect(validateEvent(e).ok, `seeded ${e.name} is schema-valid`).to.equal(true);
  const store = await EventStore.open({ dataDir, now: () => noon + 3 * INTERVAL_S * 1000 });
  try {
    await store.append(events);
  } finally {
    await store.close();
  }
  return events;
}

const byId = (events: readonly DcpEvent[]): Map<string, DcpEvent> => new Map(events.map((e) => [e.id, e]));

/** A receiver got every event with each id in one version only (duplicates from at-least-once delivery must be identical). */
function expectConsistentCopies(events: readonly DcpEvent[], who: string): void {
  const seen = new Map<string, string>();
  for (const e of events) {
    const json = JSON.stringify(e);
    const before = seen.get(e.id);
    if (before !== undefined) expect(json, `${who}: two different events with id ${e.id}`).to.equal(before);
    seen.set(e.id, json);
  }
}

describe('residency and delivery of dcp run: regional, central, outage, forwarding switched off', function () {
  this.timeout(240_000);
  let c: TestCluster;
  let clusterRef: ClusterRef;
  let dataDirs: string[] = [];
  let receivers: Receiver[] = [];

  const receiver = async (): Promise<Receiver> => {
    const r = await Receiver.start();
    receivers.push(r);
    return r;
  };
  const dataDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'dcp-e2e-residency-'));
    dataDirs.push(d);
    return d;
  };

  before(async function () {
    c = cluster();
    await c.resetPolicy();
    await c.createNodes([
      { name: `res-${c.runId}-a`, cpu: '4', instanceType: 'Standard_D4s_v5' },
      { name: `res-${c.runId}-b`, cpu: '2', instanceType: 'Standard_D2s_v5' },
    ]);
    const uid = (await c.kubectlOk(['get', 'namespace', 'kube-system', '-o', 'jsonpath={.metadata.uid}'])).trim();
    clusterRef = { id: uid, region: REGION, subscriptionId: SUBSCRIPTION };
  });

  beforeEach(async function () {
    // A fresh meter per test: billing state left by another test would back-fill its intervals here.
    await c.kubectl(['-n', 'dcp-system', 'delete', 'configmap', 'dcp-billing', '--ignore-not-found']);
  });

  afterEach(async function () {
    killAllOperators();
    for (const r of receivers) await r.close();
    receivers = [];
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
    dataDirs = [];
    await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
  });

  after(async function () {
    await c.kubectl(['delete', 'nodes', '-l', `${RUN_LABEL}=${c.runId}`, '--wait=false']);
  });

  it('sends every raw event to the regional sink and only non-billing DailyAggregates to the central one, and reports the store in status', async function () {
    const regional = await receiver();
    const central = await receiver();
    const dir = dataDir();
    const seeded = await seedYesterday(dir, clusterRef);
    const op = new OperatorProcess(c.kubeconfigPath, [], dir);
    await op.started();
    await applyOk(c, policy([regionalSink(regional), centralSink(central)], true));
    await readyAtGeneration(c);

    // Raw events of every collected kind, plus yesterday's aggregates, are in the store.
    const today = dayOf(Date.now());
    let aggregates: DcpEvent[] = [];
    await waitFor(
      async () => {
        const raw = (await readStore(dir)).filter((e) => e.time.startsWith(today));
        aggregates = await readStore(dir, { stream: 'aggregates' });
        const count = (name: string): number => raw.filter((e) => e.name === name).length;
        return count('CoreUsage') >= 2 && count('ControlPlaneInventory') >= 1 && count('HostOsInfo') >= 2 && aggregates.length >= 3;
      },
      90_000,
      'CoreUsage, ControlPlaneInventory and HostOsInfo of today and the aggregates of yesterday in the store',
      500,
    );
    expect(aggregates.map((e) => `${e.category}/${String(e.data.eventName)}`).sort()).to.deep.equal(['billing/CoreUsage', 'controlPlane/ControlPlaneInventory', 'hostOs/HostOsInfo']);

    // The regional sink catches up with everything stored; the central one with the aggregates it may have.
    const snapshot = await storeIds(dir);
    const forCentral = aggregates.filter((e) => e.category !== 'billing').map((e) => e.id);
    await waitFor(
      () => {
        const got = regional.ids();
        const gotCentral = central.ids();
        return [...snapshot].every((id) => got.has(id)) && forCentral.every((id) => gotCentral.has(id));
      },
      60_000,
      'the regional sink to receive every stored event and the central sink its aggregates',
      250,
    );

    // status.store mirrors the store on disk; retention has been applied.
    let last: Awaited<ReturnType<typeof getPolicy>>;
    let onDisk: Awaited<ReturnType<typeof storeStats>> | undefined;
    await waitFor(
      async () => {
        [last, onDisk] = await Promise.all([getPolicy(c), storeStats(dir)]);
        const s = last?.status?.store;
        return s !== undefined && s.events === onDisk.events && s.bytes === onDisk.bytes && s.oldestEventTime === onDisk.oldestEventTime;
      },
      45_000,
      'status.store to equal the store on disk',
      500,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}: last status.store ${JSON.stringify(last?.status?.store)}, on disk ${JSON.stringify(onDisk)}`);
    });
    const status = last?.status?.store;
    expect(status?.events).to.be.greaterThan(seeded.length);
    expect(status?.bytes).to.be.greaterThan(0);
    expect(status?.oldestEventTime, 'the oldest event is the seeded one of yesterday').to.equal(seeded[0]?.time);
    expect(condition(last, 'RetentionEnforced')?.status).to.equal('True');
    expect(condition(last, 'RegionEnforced')?.status).to.equal('True');

    expect((await op.stop('SIGTERM')).code).to.equal(0);
    const stored = byId([...(await readStore(dir)), ...(await readStore(dir, { stream: 'aggregates' }))]);

    // Regional: only what the store holds, every kind of raw event, billing and the aggregates included.
    const atRegional = regional.events();
    expectConsistentCopies(atRegional, 'regional');
    expect(atRegional.filter((e) => !stored.has(e.id)).map((e) => e.id), 'events the regional sink got that the store does not hold').to.deep.equal([]);
    for (const name of ['ControlPlaneInventory', 'HostOsInfo', 'CoreUsage', 'DailyAggregate']) expect(atRegional.some((e) => e.name === name), `${name} at the regional sink`).to.equal(true);
    expect(seeded.every((e) => regional.ids().has(e.id)), "yesterday's raw events at the regional sink").to.equal(true);
    expect(regional.requests.every((r) => r.path === '/regional' && r.method === 'POST')).to.equal(true);

    // Central: de-identified, non-billing aggregates only, exactly the ones the store made.
    const atCentral = central.events();
    expectConsistentCopies(atCentral, 'central');
    expect(atCentral.filter((e) => e.name !== 'DailyAggregate').map((e) => `${e.name} ${e.id}`), 'raw events at the central sink').to.deep.equal([]);
    expect([...central.ids()].sort()).to.deep.equal([...forCentral].sort());
    for (const e of atCentral) {
      expect(e.classification).to.equal('non-personal');
      expect(e.category).to.not.equal('billing');
      expect(e.cluster.region).to.equal(REGION);
      const strings = Object.entries(e.data).filter(([, v]) => typeof v === 'string').map(([k]) => k);
      expect(strings.sort(), 'the only strings in an aggregate').to.deep.equal(['category', 'day', 'eventName']);
    }
  });

  it('delivers everything stored during a 10 s regional outage once the receiver recovers: no gap, no loss', async function () {
    const regional = await receiver();
    const dir = dataDir();
    const op = new OperatorProcess(c.kubeconfigPath, [], dir);
    await op.started();
    await applyOk(c, policy([regionalSink(regional)], false));
    await readyAtGeneration(c);
    await waitFor(() => regional.events().some((e) => e.name === 'CoreUsage'), 60_000, 'a first CoreUsage at the regional sink', 250);

    // The receiver answers 503 for 10 s, and on until it has refused more tries than one send makes (4), so at
    // least one batch failed outright and waits in the store; billing and inventory keep producing meanwhile.
    regional.status = 503;
    const outageStart = Date.now();
    const refused = (): number => regional.requests.filter((r) => r.status === 503).length;
    await sleep(10_000);
    await waitFor(
      async () => refused() >= 5 && (await readStore(dir, { name: 'CoreUsage' })).some((e) => Date.parse(e.time) > outageStart),
      60_000,
      'five refused requests and a CoreUsage stored during the outage',
      250,
    );
    const storedDuringOutage = (await readStore(dir)).filter((e) => Date.parse(e.time) >= outageStart);
    regional.status = 200;
    const outageMs = Date.now() - outageStart;
    expect(storedDuringOutage.length).to.be.greaterThan(0);

    const recovered = Date.now();
    const snapshot = await storeIds(dir);
    await waitFor(() => [...snapshot].every((id) => regional.ids().has(id)), 90_000, 'the regional sink to catch up after the outage', 250);
    // And billing goes on after it: an interval that starts once the receiver is back.
    await waitFor(() => regional.events().some((e) => e.name === 'CoreUsage' && Date.parse((e.data as CoreUsageData).intervalStart) >= recovered), 60_000, 'a CoreUsage of an interval after the outage', 250);
    expect((await op.metric('dcp_sink_send_failures_total', 'sink="regional"')) ?? 0).to.be.greaterThan(0);
    expect((await op.stop('SIGTERM')).code).to.equal(0);

    // What was stored up to the stop, and not yet sent, goes out after a restart from the persisted cursor.
    const finalIds = await storeIds(dir);
    const again = new OperatorProcess(c.kubeconfigPath, [], dir);
    await again.started();
    await waitFor(() => [...finalIds].every((id) => regional.ids().has(id)), 60_000, 'everything stored before the restart at the regional sink', 250);
    expect((await again.stop('SIGTERM')).code).to.equal(0);

    const stored = byId([...(await readStore(dir)), ...(await readStore(dir, { stream: 'aggregates' }))]);
    const received = regional.events();
    const receivedIds = regional.ids();
    expectConsistentCopies(received, 'regional');
    expect([...finalIds].filter((id) => !receivedIds.has(id)), 'stored but never received').to.deep.equal([]);
    expect(received.filter((e) => !stored.has(e.id)).map((e) => e.id), 'received but never stored').to.deep.equal([]);
    expect(storedDuringOutage.filter((e) => !regional.ids().has(e.id)).map((e) => `${e.name} ${e.time}`), 'stored during the outage but never received').to.deep.equal([]);

    // Billing has no gap: the intervals received tile time.
    const intervals = [...byId(received.filter((e) => e.name === 'CoreUsage')).values()].map((e) => e.data as CoreUsageData).sort((a, b) => a.intervalStart.localeCompare(b.intervalStart));
    expect(intervals.length).to.be.at.least(3);
    for (let i = 1; i < intervals.length; i++) expect(intervals[i]?.intervalStart, 'a gap or overlap between billed intervals').to.equal(intervals[i - 1]?.intervalEnd);
    expect(intervals.some((iv) => Date.parse(iv.intervalEnd) > outageStart && Date.parse(iv.intervalStart) < outageStart + outageMs), 'an interval billed during the outage').to.equal(true);
  });

  it('stops central delivery when forwarding is switched off together with removing the central sink', async function () {
    const regional = await receiver();
    const central = await receiver();
    central.status = 503;
    const dir = dataDir();
    await seedYesterday(dir, clusterRef);
    const op = new OperatorProcess(c.kubeconfigPath, [], dir);
    await op.started();
    await applyOk(c, policy([regionalSink(regional), centralSink(central)], true));
    await readyAtGeneration(c);

    // Forwarding on: the operator tries to hand yesterday's aggregates to the (failing) central receiver.
    const tried = (): boolean => central.requests.some((r) => r.path === '/central');
    await waitFor(() => tried() && regional.events().some((e) => e.name === 'DailyAggregate'), 60_000, 'aggregates offered to central and delivered regionally', 250);
    for (const r of central.requests) expect(r.status).to.equal(503);
    const offered = central.requests.flatMap((r) => JSON.parse(r.body) as DcpEvent[]);
    expect(offered.every((e) => e.name === 'DailyAggregate' && e.category !== 'billing')).to.equal(true);

    // The API server refuses forwarding off while a central sink remains.
    const refused = await c.apply(policy([regionalSink(regional), centralSink(central)], false));
    expect(refused.code).to.not.equal(0);
    expect(refused.stderr).to.include('forwardAggregatesToCentral');

    // Forwarding off and the central sink gone, in one edit; once Ready at that generation, central gets nothing more.
    await applyOk(c, policy([regionalSink(regional)], false));
    const second = await readyAtGeneration(c);
    expect(second.metadata.generation).to.equal(2);
    const requestsAtEdit = central.requests.length;
    central.status = 200;

    // Time for several delivery rounds: two more billing intervals reach the regional sink.
    const billedBefore = new Set(regional.events().filter((e) => e.name === 'CoreUsage').map((e) => e.id)).size;
    await waitFor(() => new Set(regional.events().filter((e) => e.name === 'CoreUsage').map((e) => e.id)).size >= billedBefore + 2, 60_000, 'two more CoreUsage at the regional sink', 250);
    expect((await op.stop('SIGTERM')).code).to.equal(0);
    expect(central.requests.length, 'requests to the central receiver after the edit').to.equal(requestsAtEdit);
    expect(central.accepted(), 'events the central receiver accepted').to.deep.equal([]);
    expect(condition(second, 'RegionEnforced')?.status).to.equal('True');
  });
});
