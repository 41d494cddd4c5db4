// End-to-end delivery from the store through routing to real receivers: residency, outages, restarts.
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { Sink } from '../../src/api/policy.js';
import { EVENT_CATALOG, type CollectedEventName, type DcpEvent } from '../../src/api/event.js';
import { exampleEvent } from '../../src/pipeline/examples.js';
import type { RoutingPolicy } from '../../src/pipeline/routing.js';
import { CursorStore } from '../../src/sinks/cursor.js';
import { Dispatcher, type DispatchTarget } from '../../src/sinks/dispatcher.js';
import { createSink } from '../../src/sinks/factory.js';
import { EventStore } from '../../src/store/event-store.js';

const DAY = 86_400_000;
const NAMES = Object.keys(EVENT_CATALOG) as CollectedEventName[];

/** A receiver that records the events of every accepted batch, and answers 503 while `down` (with Retry-After if `retryAfterS`). */
class Receiver {
  readonly batches: DcpEvent[][] = [];
  requests = 0;
  /** When each request had been read, epoch ms. */
  readonly requestTimes: number[] = [];
  down = false;
  retryAfterS: number | undefined;
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.requests++;
      this.requestTimes.push(Date.now());
      if (this.down) {
        res.writeHead(503, this.retryAfterS === undefined ? {} : { 'retry-after': String(this.retryAfterS) }).end();
        return;
      }
      this.batches.push(JSON.parse(Buffer.concat(chunks).toString()) as DcpEvent[]);
      res.writeHead(200).end();
    });
  });
  url = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/events`;
    return this;
  }

  ids(): string[] {
    return this.batches.flat().map((e) => e.id);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}

let testOver = false;

/** Polls `condition` until it holds; the mocha timeout bounds the wait, and the poll ends with the test. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) {
    if (testOver) throw new Error('test ended while waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('delivery', function () {
  this.timeout(20_000);
  let dir: string;
  let now: number;
  let store: EventStore;
  let receivers: Receiver[];
  let stops: AbortController[];

  const policy = (forwardAggregatesToCentral: boolean): RoutingPolicy => ({ region: 'eastus', export: { forwardAggregatesToCentral } });
  const target = (config: Sink): DispatchTarget => ({ config, sink: createSink(config, { retry: { attempts: 2, baseMs: 1, maxMs: 5 } }) });
  const httpSink = (name: string, region: Sink['region'], r: Receiver): Sink => ({ name, type: 'http', url: r.url, region });
  const dispatcher = (forward: boolean, batchSize = 100): Dispatcher =>
    new Dispatcher({
      store,
      cursors: new CursorStore(dir),
      policy: () => policy(forward),
      batchSize,
      idleMs: 50,
      backoff: { baseMs: 5, maxMs: 40 },
      registry: new Registry(),
    });
  /** Runs the dispatcher in the background until the test's end (or stop()). */
  const run = (d: Dispatcher): { stop: () => void; done: Promise<void> } => {
    const ac = new AbortController();
    stops.push(ac);
    return { stop: () => ac.abort(), done: d.start(ac.signal) };
  };

  beforeEach(async function () {
    dir = await mkdtemp(join(tmpdir(), 'dcp-delivery-'));
    now = Date.parse('2026-03-01T12:00:00.000Z');
    store = await EventStore.open({ dataDir: dir, now: () => now, registry: new Registry() });
    receivers = [];
    stops = [];
    testOver = false;
  });
  afterEach(async function () {
    testOver = true;
    for (const s of stops) s.abort();
    await store.close();
    await Promise.all(receivers.map((r) => r.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  const receiver = async (): Promise<Receiver> => {
    const r = await new Receiver().start();
    receivers.push(r);
    return r;
  };

  /** One event of every name today, and yesterday's daily aggregates. */
  async function fill(): Promise<{ raw: DcpEvent[]; aggregates: DcpEvent[] }> {
    const raw = NAMES.map((n) => exampleEvent(n, new Date(now), 'day1'));
    await store.append(raw);
    now += DAY;
    await store.sweep();
    return { raw, aggregates: await store.read({ stream: 'aggregates' }) };
  }

  it('sends the regional sink everything and the central sink only non-billing aggregates', async function () {
    const regional = await receiver();
    const central = await receiver();
    const { raw, aggregates } = await fill();
    expect(aggregates).to.have.length(NAMES.length);
    const d = dispatcher(true);
    await d.setTargets([target(httpSink('regional', 'eastus', regional)), target(httpSink('central', 'central', central))]);
    const running = run(d);
    const expectedCentral = aggregates.filter((a) => a.category !== 'billing').map((a) => a.id);
    await until(() => regional.ids().length === raw.length + aggregates.length && central.ids().length === expectedCentral.length);
    running.stop();
    await running.done;
    expect(regional.ids()).to.deep.equal([...raw, ...aggregates].map((e) => e.id));
    expect(central.ids()).to.deep.equal(expectedCentral);
    expect(central.batches.flat().every((e) => e.name === 'DailyAggregate' && e.classification === 'non-personal')).to.equal(true);
  });

  it('sends the central sink nothing when forwarding is off', async function () {
    const regional = await receiver();
    const central = await receiver();
    const { raw, aggregates } = await fill();
    const d = dispatcher(false);
    await d.setTargets([target(httpSink('regional', 'eastus', regional)), target(httpSink('central', 'central', central))]);
    await d.drain();
    expect(regional.ids()).to.have.length(raw.length + aggregates.length);
    expect(central.requests).to.equal(0);
  });

  it('keeps the backlog through a 503 outage and delivers all of it, without gaps, when the receiver recovers', async function () {
    const regional = await receiver();
    regional.down = true;
    const d = dispatcher(true, 64);
    await d.setTargets([target(httpSink('regional', 'eastus', regional))]);
    const running = run(d);
    const stored: string[] = [];
    for (let b = 0; b < 10; b++) {
      const batch = Array.from({ length: 50 }, (_, i) => exampleEvent('HostError', new Date(now + b * 1000), `b${b}-${i}`));
      await store.append(batch);
      stored.push(...batch.map((e) => e.id));
    }
    // Several failed attempts, then the receiver comes back.
    await until(() => regional.requests >= 6);
    expect(regional.batches).to.have.length(0);
    regional.down = false;
    await until(() => new Set(regional.ids()).size === stored.length);
    running.stop();
    await running.done;
    // At least once: every id, in store order; a repeat may only restate a batch already delivered.
    const firstSeen = [...new Set(regional.ids())];
    expect(firstSeen).to.deep.equal(stored);
  });

  it("waits the receiver's Retry-After before the next batch once a send has given up on it", async function () {
    const regional = await receiver();
    regional.down = true;
    regional.retryAfterS = 1;
    // The dispatcher's own backoff would retry within 5 ms; its ceiling is far above the 1 s asked for.
    const d = new Dispatcher({ store, cursors: new CursorStore(dir), policy: () => policy(true), idleMs: 50, backoff: { baseMs: 5, maxMs: 5000 }, registry: new Registry() });
    await d.setTargets([target(httpSink('regional', 'eastus', regional))]);
    await store.append([exampleEvent('HostError', new Date(now), 'ra')]);
    const running = run(d);
    // Two tries per send (the transport's): requests 1 and 2 are the first send, 3 the start of the second.
    await until(() => regional.requests >= 3);
    running.stop();
    await running.done;
    const [, lastOfFirst, firstOfSecond] = regional.requestTimes;
    expect((firstOfSecond ?? 0) - (lastOfFirst ?? 0), 'ms between two sends after a 503 with Retry-After: 1').to.be.at.least(950);
  });

  it('resumes from the persisted cursor after a restart: old events are not sent again, new ones are', async function () {
    const regional = await receiver();
    const first = Array.from({ length: 30 }, (_, i) => exampleEvent('LinuxVmEvent', new Date(now), `a${i}`));
    await store.append(first);
    let d = dispatcher(true, 7);
    await d.setTargets([target(httpSink('regional', 'eastus', regional))]);
    await d.drain();
    expect(regional.ids()).to.deep.equal(first.map((e) => e.id));
    const second = Array.from({ length: 5 }, (_, i) => exampleEvent('LinuxVmEvent', new Date(now), `b${i}`));
    await store.append(second);
    // A new process: fresh dispatcher, cursors read back from the data dir.
    d = dispatcher(true, 7);
    await d.setTargets([target(httpSink('regional', 'eastus', regional))]);
    await d.drain();
    expect(regional.ids()).to.deep.equal([...first, ...second].map((e) => e.id));
  });

  it('a fenced dispatcher (its lease lapsed) neither delivers nor moves its cursor: the batch waits for the next term', async function () {
    const regional = await receiver();
    const events = Array.from({ length: 5 }, (_, i) => exampleEvent('LinuxVmEvent', new Date(now), `f${i}`));
    await store.append(events);
    const refused: string[] = [];
    const fenced = (refuse: ReadonlySet<string>): Dispatcher =>
      new Dispatcher({
        store,
        cursors: new CursorStore(dir),
        policy: () => policy(true),
        registry: new Registry(),
        beforeWrite: (what) => {
          if (!refuse.has(what)) return;
          refused.push(what);
          throw new Error(`fenced: ${what}`);
        },
      });
    const target0 = target(httpSink('regional', 'eastus', regional));
    // Paused mid-batch: the send had gone out before, the cursor save comes after the lease lapsed.
    let d = fenced(new Set(['sink cursor']));
    await d.setTargets([target0]);
    await d.drain().catch(() => undefined);
    expect(await new CursorStore(dir).load('regional')).to.deep.equal({});
    d = fenced(new Set(['sink delivery', 'sink cursor']));
    await d.setTargets([target0]);
    await d.drain().catch(() => undefined);
    expect(refused).to.deep.equal(['sink cursor', 'sink delivery']);
    expect(regional.ids(), 'only the batch sent before the lease lapsed').to.deep.equal(events.map((e) => e.id));
    // The next term sends the batch again (at least once; receivers deduplicate on id) and moves the cursor.
    d = dispatcher(true);
    await d.setTargets([target0]);
    await d.drain();
    expect(regional.ids()).to.deep.equal([...events, ...events].map((e) => e.id));
    expect((await new CursorStore(dir).load('regional')).raw).to.not.equal(undefined);
  });

  it('a cursor save refused after its data was written (a leader paused mid-save) leaves the old cursor', async function () {
    let lapsed = false;
    const cursors = new CursorStore(dir, undefined, () => {
      if (lapsed) throw new Error('fenced: sink cursor');
    });
    await cursors.save('regional', { raw: { partition: '2026-03-01', offset: 10 } });
    lapsed = true;
    const refused = await cursors.save('regional', { raw: { partition: '2026-03-01', offset: 20 } }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(String(refused)).to.contain('fenced');
    expect(await new CursorStore(dir).load('regional')).to.deep.equal({ raw: { partition: '2026-03-01', offset: 10 } });
  });

  it('delivers what arrives while running, woken by the store rather than by polling alone', async function () {
    const regional = await receiver();
    const d = dispatcher(true);
    await d.setTargets([target(httpSink('regional', 'eastus', regional))]);
    const running = run(d);
    for (let i = 0; i < 5; i++) {
      const e = exampleEvent('HostError', new Date(now), `live${i}`);
      await store.append([e]);
      await until(() => regional.ids().includes(e.id));
    }
    running.stop();
    await running.done;
    expect(regional.ids()).to.have.length(5);
  });

  it('starts a sink added while running, and stops one removed', async function () {
    const a = await receiver();
    const b = await receiver();
    const d = dispatcher(true);
    await d.setTargets([target(httpSink('a', 'eastus', a))]);
    const running = run(d);
    await store.append([exampleEvent('HostError', new Date(now), 'one')]);
    await until(() => a.ids().length === 1);
    await d.setTargets([target(httpSink('b', 'eastus', b))]);
    await store.append([exampleEvent('HostError', new Date(now), 'two')]);
    // b starts from the oldest record kept: it gets the backlog too.
    await until(() => b.ids().length === 2);
    running.stop();
    await running.done;
    expect(a.ids()).to.have.length(1);
  });
});
