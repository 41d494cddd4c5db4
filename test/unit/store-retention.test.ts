// Retention with an injected clock: raw partitions purged after rawDays, daily aggregates kept for aggregateDays.
import { expect } from 'chai';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { CollectedEventName, DcpEvent } from '../../src/api/event.js';
import { exampleEvent } from '../../src/pipeline/examples.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import { EventStore } from '../../src/store/event-store.js';

const DAY = 86_400_000;
const DAY1 = Date.parse('2026-03-01T10:00:00.000Z');

describe('store retention', function () {
  // Generous: fsync and the first schema compile are slow on a loaded machine; nothing here measures time.
  this.timeout(10_000);
  let dir: string;
  let now: number;
  let store: EventStore;
  const ev = (name: CollectedEventName, key: string, at = now): DcpEvent => exampleEvent(name, new Date(at), key);
  const rawFiles = async (): Promise<string[]> => (await readdir(join(dir, 'raw'))).sort();

  beforeEach(async function () {
    dir = await mkdtemp(join(tmpdir(), 'dcp-retention-'));
    now = DAY1;
    store = await EventStore.open({ dataDir: dir, now: () => now, registry: new Registry() });
  });
  afterEach(async function () {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('deletes day 1 when the clock moves 29 days forward, and not at 28', async function () {
    await store.append([ev('HostError', 'day1')]);
    now = DAY1 + DAY;
    await store.append([ev('HostError', 'day2')]);
    now = DAY1 + 28 * DAY;
    expect((await store.sweep()).deletedRaw).to.deep.equal([]);
    now = DAY1 + 29 * DAY;
    expect((await store.sweep()).deletedRaw).to.deep.equal(['2026-03-01']);
    expect(await rawFiles()).to.deep.equal(['2026-03-02.jsonl']);
    expect((await store.read()).map((e) => e.time)).to.deep.equal([new Date(DAY1 + DAY).toISOString()]);
    expect(store.stats().events).to.equal(1);
  });

  it('hides an event past rawDays at once, before any sweep deletes it', async function () {
    await store.append([ev('HostError', 'early')]);
    now = DAY1 + 12 * 3_600_000;
    await store.append([ev('HostError', 'late')]);
    now = DAY1 + 28 * DAY + 1;
    expect((await store.read()).map((e) => e.time)).to.deep.equal([new Date(DAY1 + 12 * 3_600_000).toISOString()]);
  });

  it('applies a changed rawDays at the next sweep', async function () {
    await store.append([ev('HostError', 'a')]);
    now = DAY1 + 10 * DAY;
    expect((await store.sweep()).deletedRaw).to.deep.equal([]);
    store.setRetention({ rawDays: 7, aggregateDays: 365 });
    expect((await store.sweep()).deletedRaw).to.deep.equal(['2026-03-01']);
    expect(await store.read()).to.deep.equal([]);
  });

  it('forgets the ids of deleted partitions, so retention bounds the dedup window', async function () {
    const e = ev('HostError', 'a');
    await store.append([e]);
    now = DAY1 + 29 * DAY;
    await store.sweep();
    // Same id, but a fresh observation time: it is a new fact to the store.
    expect(await store.append([{ ...e, time: new Date(now).toISOString() }])).to.include({ stored: 1 });
  });

  it('aggregates finished days into de-identified counts and numbers that outlive the raw events', async function () {
    await store.append([ev('ControlPlaneInventory', 'i1'), ev('ControlPlaneInventory', 'i2', DAY1 + 1000), ev('HostError', 'e1'), ev('CoreUsage', 'm1')]);
    expect((await store.sweep()).aggregatedDays).to.deep.equal([]);
    now = DAY1 + DAY;
    expect((await store.sweep()).aggregatedDays).to.deep.equal(['2026-03-01']);
    const aggregates = await store.read({ stream: 'aggregates' });
    expect(aggregates.map((a) => [a.category, a.data['eventName'], a.data['count']])).to.have.deep.members([
      ['controlPlane', 'ControlPlaneInventory', 2],
      ['hostErrors', 'HostError', 1],
      ['billing', 'CoreUsage', 1],
    ]);
    const inventory = aggregates.find((a) => a.category === 'controlPlane');
    expect(inventory?.data['numeric']).to.deep.include({ nodes: { min: 3, max: 3, avg: 3, sum: 6 }, 'podsByPhase.Running': { min: 38, max: 38, avg: 38, sum: 76 } });
    for (const a of aggregates) {
      expect(validateEvent(a).ok).to.equal(true);
      // No string from any event's data survives into an aggregate.
      expect(JSON.stringify(a.data)).to.not.contain('DiskPressure').and.not.contain('kubelet');
    }
    now = DAY1 + 40 * DAY;
    const sweep = await store.sweep();
    expect(sweep.deletedRaw).to.deep.equal(['2026-03-01']);
    expect(await store.read()).to.deep.equal([]);
    expect(await store.read({ stream: 'aggregates', category: 'billing' })).to.have.length(1);
    now = DAY1 + 366 * DAY;
    expect((await store.sweep()).deletedAggregates).to.include('2026-03-01');
    expect(await store.read({ stream: 'aggregates' })).to.deep.equal([]);
  });

  it('aggregates each day once, in day order, also across restarts', async function () {
    await store.append([ev('HostError', 'a')]);
    now = DAY1 + DAY;
    await store.append([ev('HostError', 'b')]);
    now = DAY1 + 3 * DAY;
    expect((await store.sweep()).aggregatedDays).to.deep.equal(['2026-03-01', '2026-03-02', '2026-03-03']);
    await store.close();
    store = await EventStore.open({ dataDir: dir, now: () => now, registry: new Registry() });
    expect((await store.sweep()).aggregatedDays).to.deep.equal([]);
    now += DAY;
    expect((await store.sweep()).aggregatedDays).to.deep.equal(['2026-03-04']);
    expect((await store.read({ stream: 'aggregates' })).map((a) => a.data['day'])).to.deep.equal(['2026-03-01', '2026-03-02']);
  });

  it('keeps appending to the newest partition when the clock steps back, so no cursor is passed', async function () {
    now = DAY1 + DAY;
    await store.append([ev('HostError', 'a')]);
    now = DAY1;
    await store.append([ev('HostError', 'b')]);
    expect(await rawFiles()).to.deep.equal(['2026-03-02.jsonl']);
  });
});
