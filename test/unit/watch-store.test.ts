// The cache store: change delivery, relist diffs, sync waiting, handler isolation, and incremental tallies.
import { expect } from 'chai';
import { Store, deepEqual, type ChangeType } from '../../src/runtime/store.js';
import { Tally } from '../../src/runtime/aggregate.js';

interface Pod {
  phase: string;
  node: string;
}

type Change = [ChangeType, string, Pod | undefined, Pod | undefined];

function recorded(store: Store<Pod>): Change[] {
  const changes: Change[] = [];
  store.subscribe((type, key, n, o) => changes.push([type, key, n, o]));
  return changes;
}

const pod = (phase: string, node = 'n1'): Pod => ({ phase, node });

describe('cache store', function () {
  it('delivers added, updated and deleted with the new and old values', function () {
    const s = new Store<Pod>();
    const changes = recorded(s);
    s.upsert('ns/a', pod('Pending'));
    s.upsert('ns/a', pod('Running'));
    s.delete('ns/a');
    expect(changes).to.deep.equal([
      ['added', 'ns/a', pod('Pending'), undefined],
      ['updated', 'ns/a', pod('Running'), pod('Pending')],
      ['deleted', 'ns/a', undefined, pod('Running')],
    ]);
    expect(s.size).to.equal(0);
  });

  it('does not report an update whose projection did not change', function () {
    const s = new Store<Pod>();
    s.upsert('ns/a', pod('Running'));
    const changes = recorded(s);
    s.upsert('ns/a', pod('Running'));
    expect(changes).to.deep.equal([]);
  });

  it('ignores the delete of a key it does not hold', function () {
    const s = new Store<Pod>();
    const changes = recorded(s);
    s.delete('ns/missing');
    expect(changes).to.deep.equal([]);
  });

  it('delivers only the difference when a relist replaces the cache: new keys added, changed updated, missing deleted', function () {
    const s = new Store<Pod>();
    s.replace(new Map([['ns/a', pod('Running')], ['ns/b', pod('Pending')], ['ns/c', pod('Running')]]));
    const changes = recorded(s);
    s.replace(new Map([['ns/a', pod('Running')], ['ns/b', pod('Running')], ['ns/d', pod('Pending')]]));
    expect(changes).to.deep.equal([
      ['updated', 'ns/b', pod('Running'), pod('Pending')],
      ['added', 'ns/d', pod('Pending'), undefined],
      ['deleted', 'ns/c', undefined, pod('Running')],
    ]);
    expect([...s.keys()].sort()).to.deep.equal(['ns/a', 'ns/b', 'ns/d']);
  });

  it('delivers every item as added on the first sync when someone listens', function () {
    const s = new Store<Pod>();
    const changes = recorded(s);
    s.replace(new Map([['ns/a', pod('Running')], ['ns/b', pod('Pending')]]));
    expect(changes.map((c) => c[0])).to.deep.equal(['added', 'added']);
  });

  it('is synced only after the first complete list, and stays synced', async function () {
    const s = new Store<Pod>();
    expect(s.hasSynced).to.equal(false);
    const waiting = s.waitUntilSynced();
    s.upsert('ns/a', pod('Running'));
    expect(s.hasSynced).to.equal(false);
    s.replace(new Map());
    await waiting;
    expect(s.hasSynced).to.equal(true);
    s.replace(new Map([['ns/b', pod('Running')]]));
    expect(s.hasSynced).to.equal(true);
    await s.waitUntilSynced();
  });

  it('stops waiting for sync when the signal aborts', async function () {
    const s = new Store<Pod>();
    const ctl = new AbortController();
    const waiting = s.waitUntilSynced(ctl.signal);
    ctl.abort(new Error('shutting down'));
    let caught: unknown;
    try {
      await waiting;
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(Error).with.property('message', 'shutting down');
  });

  it('keeps calling the other handlers when one throws, and reports the error', function () {
    const errors: Array<[unknown, ChangeType, string]> = [];
    const s = new Store<Pod>({ onHandlerError: (err, type, key) => errors.push([err, type, key]) });
    const seen: string[] = [];
    s.subscribe(() => {
      throw new Error('bad handler');
    });
    s.subscribe((_t, key) => seen.push(key));
    s.upsert('ns/a', pod('Running'));
    expect(seen).to.deep.equal(['ns/a']);
    expect(errors).to.have.length(1);
    expect(errors[0]?.[1]).to.equal('added');
    expect(s.get('ns/a')).to.deep.equal(pod('Running'));
  });

  it('replays what it holds to a late subscriber that asks for it, and stops delivering after unsubscribe', function () {
    const s = new Store<Pod>();
    s.upsert('ns/a', pod('Running'));
    const keys: string[] = [];
    const off = s.subscribe((_t, key) => keys.push(key), { replay: true });
    s.upsert('ns/b', pod('Running'));
    off();
    s.upsert('ns/c', pod('Running'));
    expect(keys).to.deep.equal(['ns/a', 'ns/b']);
  });

  it('compares JSON-like values structurally', function () {
    expect(deepEqual({ a: 1, b: [1, { c: 'x' }] }, { b: [1, { c: 'x' }], a: 1 })).to.equal(true);
    expect(deepEqual({ a: 1 }, { a: 1, b: undefined })).to.equal(false);
    expect(deepEqual([1, 2], { 0: 1, 1: 2 })).to.equal(false);
    expect(deepEqual(NaN, NaN)).to.equal(true);
  });
});

describe('tally over a cache', function () {
  it('keeps counts by group up to date through adds, updates, deletes and a relist, without iterating', function () {
    const s = new Store<Pod>();
    const byPhase = new Tally<Pod>((p) => p.phase);
    byPhase.attach(s);
    s.upsert('a', pod('Pending'));
    s.upsert('b', pod('Pending'));
    s.upsert('a', pod('Running'));
    expect(Object.fromEntries(byPhase.groups())).to.deep.equal({ Pending: 1, Running: 1 });
    s.delete('b');
    expect(Object.fromEntries(byPhase.groups())).to.deep.equal({ Running: 1 });
    s.replace(new Map([['a', pod('Succeeded')], ['c', pod('Running')]]));
    expect(Object.fromEntries(byPhase.groups())).to.deep.equal({ Succeeded: 1, Running: 1 });
    expect(byPhase.total).to.equal(2);
  });

  it('sums integer weights, e.g. node millicores, and counts what the store held before it attached', function () {
    interface Node {
      cpuMillis: number;
    }
    const s = new Store<Node>();
    s.upsert('n1', { cpuMillis: 4000 });
    const cpu = new Tally<Node>(() => 'all', (n) => n.cpuMillis);
    cpu.attach(s);
    s.upsert('n2', { cpuMillis: 2500 });
    s.upsert('n1', { cpuMillis: 8000 });
    expect(cpu.total).to.equal(10_500);
    s.delete('n2');
    expect(cpu.get('all')).to.equal(8000);
  });

  it('leaves out values whose group is undefined', function () {
    const s = new Store<Pod>();
    const scheduled = new Tally<Pod>((p) => (p.node === '' ? undefined : p.node));
    scheduled.attach(s);
    s.upsert('a', pod('Pending', ''));
    s.upsert('b', pod('Running', 'n1'));
    s.upsert('a', pod('Running', 'n2'));
    expect(Object.fromEntries(scheduled.groups())).to.deep.equal({ n1: 1, n2: 1 });
  });
});
