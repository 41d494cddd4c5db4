// The data directory deleted under a running store: noticed before the next write and on the next read, the open partition written back, nothing acknowledged in it lost.
import { expect } from 'chai';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { DcpEvent } from '../../src/api/event.js';
import { exampleEvent } from '../../src/pipeline/examples.js';
import { EventStore } from '../../src/store/event-store.js';
import { DataDirectoryLostError } from '../../src/store/lost-directory.js';
import { RECOVERED_FAILURE_HOLD_MS, WriteHealth } from '../../src/store/write-health.js';

const DAY = 86_400_000;

describe('event store: data directory deleted under it', function () {
  this.timeout(10_000);
  let dir: string;
  let now: number;
  let health: WriteHealth;
  let store: EventStore;
  const ev = (key: string): DcpEvent => exampleEvent('HostError', new Date(now), key);
  const ids = (events: readonly { id: string }[]): string[] => events.map((e) => e.id);

  beforeEach(async function () {
    dir = await mkdtemp(join(tmpdir(), 'dcp-store-lost-'));
    now = Date.parse('2026-03-01T12:00:00.000Z');
    health = new WriteHealth(new Registry(), () => undefined, () => now);
    store = await EventStore.open({ dataDir: dir, now: () => now, registry: new Registry(), health });
  });
  afterEach(async function () {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses the next append with a clear error, writes the open partition back and takes appends again', async function () {
    const before = [ev('a'), ev('b')];
    await store.append(before);
    await rm(dir, { recursive: true });

    // Before the fix the append went into the unlinked file: fsync'd, acknowledged, and gone.
    const err = await store.append([ev('c')]).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(DataDirectoryLostError);
    expect(String(err)).to.match(/was deleted under the running operator: recreated it, wrote back the open partition \(2 events\)/);
    expect(health.failure).to.include({ writer: 'append', reason: 'ENOENT' });
    expect((await readFile(join(dir, 'LOCK'), 'utf8')).trim()).to.equal(String(process.pid));

    const c = ev('c');
    expect(await store.append([c])).to.include({ stored: 1 });
    // Writes work again, but the deletion stays in view for a while (status, /readyz), then clears at the next append.
    expect(health.failure).to.include({ reason: 'ENOENT' });
    now += RECOVERED_FAILURE_HOLD_MS;
    const d = ev('d');
    await store.append([d]);
    expect(health.failure).to.equal(undefined);
    expect(ids(await store.read())).to.deep.equal([...ids(before), c.id, d.id]);
    // On disk too: a fresh reader finds all three.
    const reader = await EventStore.open({ dataDir: dir, readOnly: true, now: () => now });
    expect(ids(await reader.read())).to.deep.equal([...ids(before), c.id, d.id]);
  });

  it('never moves a reader past records it still holds open', async function () {
    await store.append([ev('a')]);
    const { next } = await store.readAfter('raw', undefined, 10);
    await store.append([ev('b')]);
    await rm(dir, { recursive: true });

    // Before the fix the read found no file and moved the cursor past "b" for good.
    const { records } = await store.readAfter('raw', next, 10);
    expect(ids(records.map((r) => r.event))).to.deep.equal([ev('b').id]);
    expect(health.failure).to.include({ reason: 'ENOENT' });
    expect(await readdir(join(dir, 'raw'))).to.have.length(1);
  });

  it('forgets older partitions that are gone, says how many events went with them, and stores those ids again', async function () {
    await store.append([ev('old')]);
    now += DAY;
    await store.append([ev('new')]);
    await rm(dir, { recursive: true });
    const err = await store.append([ev('x')]).then(() => undefined, (e: unknown) => e);
    expect(String(err)).to.match(/wrote back the open partition \(1 events\); 1 other partition\(s\) with 1 raw events are gone/);
    const { records } = await store.readAfter('raw', undefined, 10);
    expect(ids(records.map((r) => r.event))).to.deep.equal([ev('new').id]);
    now -= DAY;
    expect(await store.append([ev('old')])).to.include({ stored: 1 });
  });
});
