// The event store: durable appends, dedup by id, queries, stats, cursors' reads and the single-writer rule.
import { expect } from 'chai';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { CollectedEventName, DcpEvent } from '../../src/api/event.js';
import { exampleEvent } from '../../src/pipeline/examples.js';
import { EventStore, StoreReadOnlyError, type StorePosition } from '../../src/store/event-store.js';
import { StoreLockedError } from '../../src/store/lock.js';

const START = Date.parse('2026-03-01T12:00:00.000Z');
const HOUR = 3_600_000;

describe('event store', function () {
  // Generous: fsync and the first schema compile are slow on a loaded machine; nothing here measures time.
  this.timeout(10_000);
  let dir: string;
  let now: number;
  const open = (extra: { readOnly?: boolean } = {}): Promise<EventStore> =>
    EventStore.open({ dataDir: dir, now: () => now, registry: new Registry(), ...extra });
  const ev = (name: CollectedEventName, key: string, at = now): DcpEvent => exampleEvent(name, new Date(at), key);

  beforeEach(async function () {
    dir = await mkdtemp(join(tmpdir(), 'dcp-store-'));
    now = START;
  });
  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('returns appended events in order, also after reopening', async function () {
    const events = [ev('HostError', 'a'), ev('CoreUsage', 'b'), ev('HostOsInfo', 'c')];
    let store = await open();
    expect(await store.append(events)).to.deep.equal({ stored: 3, duplicates: 0, expired: 0 });
    expect(await store.read()).to.deep.equal(events);
    await store.close();
    store = await open();
    expect(store.openReport).to.include({ events: 3, tornRecords: 0, corruptRecords: 0 });
    expect(await store.read()).to.deep.equal(events);
    await store.close();
  });

  it('stores an id once: within a batch, across batches and across restarts', async function () {
    let store = await open();
    const a = ev('HostError', 'a');
    expect(await store.append([a, a])).to.include({ stored: 1, duplicates: 1 });
    expect(await store.append([a, ev('HostError', 'b')])).to.include({ stored: 1, duplicates: 1 });
    await store.close();
    store = await open();
    expect(await store.append([a])).to.include({ stored: 0, duplicates: 1 });
    expect(await store.read()).to.have.length(2);
    await store.close();
  });

  it('commits concurrent appends together and loses none of them', async function () {
    const store = await open();
    const batches = Array.from({ length: 50 }, (_, b) => Array.from({ length: 20 }, (_, i) => ev('LinuxVmEvent', `${b}-${i}`)));
    const results = await Promise.all(batches.map((batch) => store.append(batch)));
    expect(results.reduce((n, r) => n + r.stored, 0)).to.equal(1000);
    expect(new Set((await store.read()).map((e) => e.id)).size).to.equal(1000);
    await store.close();
  });

  it('writes no queued append once beforeWrite refuses (a leader paused with appends queued), and takes the same events later', async function () {
    let lapsed = false;
    const store = await EventStore.open({
      dataDir: dir,
      now: () => now,
      registry: new Registry(),
      beforeWrite: () => {
        if (lapsed) throw new Error('fenced: store append');
      },
    });
    const a = ev('HostError', 'a');
    const b = ev('HostError', 'b');
    expect(await store.append([a])).to.include({ stored: 1 });
    // Accepted while the lease held, written after it lapsed: the batch is refused whole.
    const queued = store.append([b]);
    lapsed = true;
    expect(String(await queued.catch((err: unknown) => err))).to.contain('fenced');
    expect((await store.read()).map((e) => e.id)).to.deep.equal([a.id]);
    lapsed = false;
    expect(await store.append([b]), 'the refused id is not taken for a duplicate').to.include({ stored: 1, duplicates: 0 });
    await store.close();
  });

  it('answers queries by category, name, time and limit (the newest N)', async function () {
    const store = await open();
    const old = ev('HostError', 'old', START - 2 * HOUR);
    const billing = ev('CoreUsage', 'meter', START - HOUR);
    const recent = [1, 2, 3].map((i) => ev('HostError', `r${i}`, START - HOUR + i * 1000));
    await store.append([old, billing, ...recent]);
    expect(await store.read({ category: 'billing' })).to.deep.equal([billing]);
    expect(await store.read({ name: 'HostError', since: new Date(START - HOUR) })).to.deep.equal(recent);
    expect(await store.read({ category: 'hostErrors', limit: 2 })).to.deep.equal(recent.slice(1));
    await store.close();
  });

  it('reports stats for status.store: events, oldest event time, bytes on disk', async function () {
    const store = await open();
    expect(store.stats()).to.deep.equal({ events: 0, bytes: 0 });
    await store.append([ev('HostError', 'a', START - HOUR), ev('HostError', 'b')]);
    const files = await readdir(join(dir, 'raw'));
    const bytes = (await Promise.all(files.map((f) => stat(join(dir, 'raw', f))))).reduce((n, s) => n + s.size, 0);
    expect(store.stats()).to.deep.equal({ events: 2, oldestEventTime: new Date(START - HOUR).toISOString(), bytes });
    await store.close();
  });

  it('does not store an event already past retention', async function () {
    const store = await open();
    expect(await store.append([ev('HostError', 'ancient', START - 29 * 24 * HOUR)])).to.deep.equal({ stored: 0, duplicates: 0, expired: 1 });
    await store.close();
  });

  it('walks every record exactly once through positions, across partitions and restarts', async function () {
    let store = await open();
    const day1 = Array.from({ length: 7 }, (_, i) => ev('HostError', `d1-${i}`));
    await store.append(day1);
    now += 24 * HOUR;
    const day2 = Array.from({ length: 5 }, (_, i) => ev('HostError', `d2-${i}`));
    await store.append(day2);
    const seen: string[] = [];
    let pos: StorePosition | undefined;
    for (;;) {
      const { records, next } = await store.readAfter('raw', pos, 3);
      if (records.length === 0) break;
      seen.push(...records.map((r) => r.event.id));
      pos = next;
      if (seen.length === 6) {
        // A restart between two reads: positions stay valid.
        await store.close();
        store = await open();
      }
    }
    expect(seen).to.deep.equal([...day1, ...day2].map((e) => e.id));
    expect(pos?.partition).to.equal('2026-03-02');
    await store.close();
  });

  it('never lets a reader skip a record that was appended while it was reading', async function () {
    const store = await open();
    const ids: string[] = [];
    const writing = (async () => {
      for (let b = 0; b < 40; b++) {
        const batch = Array.from({ length: 1 + (b % 5) }, (_, i) => ev('HostError', `${b}-${i}`));
        ids.push(...batch.map((e) => e.id));
        await store.append(batch);
      }
    })();
    const seen: string[] = [];
    let pos: StorePosition | undefined;
    let writerDone = false;
    void writing.then(() => (writerDone = true));
    for (;;) {
      const { records, next } = await store.readAfter('raw', pos, 4);
      seen.push(...records.map((r) => r.event.id));
      pos = next;
      if (records.length === 0 && writerDone && seen.length === ids.length) break;
      if (records.length === 0) await new Promise((r) => setImmediate(r));
    }
    await writing;
    expect(seen).to.deep.equal(ids);
    await store.close();
  });

  it('wakes a waiting reader when events arrive', async function () {
    const store = await open();
    const version = store.version;
    const woken = store.waitForChange(version);
    await store.append([ev('HostError', 'a')]);
    await woken;
    expect(store.version).to.not.equal(version);
    await store.close();
  });

  it('lets a read-only reader (the CLI) read beside the writer, never write', async function () {
    const writer = await open();
    await writer.append([ev('HostError', 'a')]);
    const reader = await open({ readOnly: true });
    expect(await reader.read()).to.have.length(1);
    let error: unknown;
    try {
      await reader.append([ev('HostError', 'b')]);
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(StoreReadOnlyError);
    await reader.close();
    await writer.close();
  });

  it('refuses a second writer on the same data dir until the first closes', async function () {
    const first = await open();
    let error: unknown;
    try {
      await open();
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(StoreLockedError);
    await first.close();
    const second = await open();
    await second.close();
  });
});
