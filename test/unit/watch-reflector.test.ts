// The reflector driver on scripted responses and a manual clock: request parameters, backoff timing, relist diffs, malformed objects, stop.
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { readJson, type KubeRequest, type KubeTransport, type ResponseStream } from '../../src/kube/client.js';
import { Forbidden, ServerError, TooManyRequests, TransportError } from '../../src/kube/errors.js';
import { asString, metadataOf } from '../../src/kube/resource.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { Reflector } from '../../src/runtime/reflector.js';
import type { ChangeType } from '../../src/runtime/store.js';
import { field, fields, objectFields, objectMeta } from '../../src/kube/protobuf.js';
import { ACCEPT_PROTOBUF, PROTOBUF } from '../../src/kube/wire.js';
import { encodePodList, encodeWatchFrame } from './wire-encode.js';

/*
 * What cannot be produced on demand by a real API server is scripted here: exact failure
 * sequences against virtual time, objects without uid or name, and lines after an ERROR event.
 * Everything else about the reflector runs in test/e2e/watch-cache.test.ts on the real one.
 */

/** One scripted answer: a failure, or a body in chunks that stays open (a live watch) if `open`. */
type Answer = { readonly error: Error } | { readonly chunks: ReadonlyArray<string | Buffer>; readonly open?: boolean };

/** Every test runs twice: on JSON bodies and on protobuf bodies (what the API server sends for built-in types). */
let wire: 'json' | 'protobuf' = 'json';

interface Seen {
  readonly path: string;
  readonly query: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly accept: string | undefined;
  readonly at: number;
}

class ScriptedTransport implements KubeTransport {
  readonly seen: Seen[] = [];

  constructor(
    private readonly answers: Answer[],
    private readonly clock: ManualClock,
  ) {}

  async stream(req: KubeRequest): Promise<ResponseStream> {
    this.seen.push({ path: req.path, query: req.query ?? {}, accept: req.accept, at: this.clock.now() });
    // When the script runs out, the request hangs like a quiet watch until it is aborted.
    const answer: Answer = this.answers.shift() ?? { chunks: [], open: true };
    if ('error' in answer) throw answer.error;
    const signal = req.signal;
    return {
      statusCode: 200,
      contentType: wire === 'json' ? 'application/json' : req.query?.['watch'] !== undefined ? `${PROTOBUF};stream=watch` : PROTOBUF,
      close: () => undefined,
      async *[Symbol.asyncIterator]() {
        for (const c of answer.chunks) yield Buffer.from(c);
        if (answer.open === true) {
          await new Promise<void>((_, reject) => {
            if (signal?.aborted === true) reject(new Error('aborted'));
            signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
          });
        }
      },
    };
  }

  async json(req: KubeRequest): Promise<unknown> {
    return readJson(await this.stream(req));
  }
}

const pod = (name: string, uid: string | undefined, phase = 'Running', rv = '1') => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv, ...(uid !== undefined ? { uid } : {}) },
  status: { phase },
});

const list = (rv: string, items: unknown[], cont?: string): Answer => ({
  chunks: [
    wire === 'protobuf'
      ? encodePodList(rv, items, cont)
      : JSON.stringify({ kind: 'PodList', metadata: { resourceVersion: rv, ...(cont !== undefined ? { continue: cont } : {}) }, items }),
  ],
});

/** One watch event: a JSON line, or a length-prefixed protobuf frame. */
const line = (type: string, object: unknown): Buffer => (wire === 'protobuf' ? encodeWatchFrame(type, object) : Buffer.from(`${JSON.stringify({ type, object })}\n`));

/** The protobuf fields projectView reads. */
const VIEW_FIELDS = objectFields(objectMeta(), [[3, field('status', fields([[1, field('phase', 'string')]]))]]);

interface PodView {
  uid: string;
  phase: string;
}

function projectView(obj: unknown): PodView | undefined {
  const uid = asString(metadataOf(obj)?.['uid']);
  if (uid === undefined) return undefined;
  return { uid, phase: asString((obj as { status?: { phase?: unknown } }).status?.phase) ?? '' };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

function setup(answers: Answer[], extra: { random?: () => number } = {}) {
  const clock = new ManualClock(1_000_000);
  const transport = new ScriptedTransport(answers, clock);
  const registry = new Registry();
  const errors: Array<[string, Error]> = [];
  const malformed: Array<string | undefined> = [];
  const changes: Array<[ChangeType, string]> = [];
  const reflector = new Reflector<PodView>({
    transport,
    path: '/api/v1/pods',
    project: projectView,
    fields: VIEW_FIELDS,
    registry,
    clock,
    random: extra.random ?? (() => 0),
    onError: (err, reason) => errors.push([reason, err]),
    onMalformed: (key) => malformed.push(key),
  });
  reflector.store.subscribe((type, key) => changes.push([type, key]));
  const ctl = new AbortController();
  const done = reflector.start(ctl.signal);
  return { clock, transport, registry, errors, malformed, changes, reflector, ctl, done };
}

function driverTests(): void {
  it('lists in pages of 500 with continue tokens, then watches from the list\'s version with bookmarks and a 300–600 s timeout', async function () {
    const t = setup([list('10', [pod('a', 'ua')], 'tok'), list('10', [pod('b', 'ub')])], { random: () => 0.5 });
    await settle();
    const [first, second, watch] = t.transport.seen;
    expect(first?.query).to.deep.include({ limit: 500, continue: undefined, resourceVersion: undefined });
    expect(watch?.accept, 'protobuf for a cache with fields, JSON as the fallback').to.equal(ACCEPT_PROTOBUF);
    expect(second?.query).to.deep.include({ limit: 500, continue: 'tok', resourceVersion: undefined, resourceVersionMatch: undefined });
    expect(watch?.query).to.deep.include({ watch: 1, resourceVersion: '10', allowWatchBookmarks: true });
    const timeout = Number(watch?.query['timeoutSeconds']);
    expect(timeout).to.be.within(300, 600);
    expect(t.reflector.store.size).to.equal(2);
    expect(t.reflector.health()).to.include({ synced: true, phase: 'Watching', resourceVersion: '10' });
    t.ctl.abort();
    await t.done;
  });

  it('retries a failing list on the backoff schedule, honours Retry-After, and never gives up', async function () {
    const t = setup([
      { error: new TransportError('connect ECONNREFUSED') },
      { error: new ServerError(503, 'ServiceUnavailable', 'etcd') },
      { error: new Forbidden(403, 'Forbidden', 'pods is forbidden') },
      { error: new TooManyRequests(429, 'TooManyRequests', 'slow down', 20_000) },
      list('5', [pod('a', 'ua')]),
    ]);
    for (let i = 0; i < 300; i++) {
      await settle();
      t.clock.advance(100);
    }
    await settle();
    const start = 1_000_000;
    // random 0: 800, 1600, 3200, then the server's 20 s beat the 6.4 s backoff.
    expect(t.transport.seen.map((s) => s.at - start).slice(0, 5)).to.deep.equal([0, 800, 2400, 5600, 25_600]);
    expect(t.errors.map(([r]) => r)).to.deep.equal(['network', 'server_error', 'forbidden', 'throttled']);
    expect(t.reflector.store.hasSynced).to.equal(true);
    const metrics = await t.registry.metrics();
    expect(metrics).to.contain('dcp_watch_restarts_total{resource="pods",reason="forbidden"} 1');
    t.ctl.abort();
    await t.done;
  });

  it('retries at once when a probe finds the server again after an outage, from the shortest delay; other waits are left alone', async function () {
    const refused = (): Answer => ({ error: new TransportError('connect ECONNREFUSED') });
    const t = setup([refused(), refused(), refused(), refused(), refused(), refused(), { error: new Forbidden(403, 'Forbidden', 'pods is forbidden') }, list('5', [pod('a', 'ua')])]);
    const start = 1_000_000;
    const until = async (ms: number): Promise<void> => {
      while (t.clock.now() - start < ms) {
        await settle();
        t.clock.advance(100);
      }
      await settle();
    };
    // random 0: tries at 0, 0.8, 2.4, 5.6 and 12 s; the next would be 12.8 s later, at 24.8 s.
    await until(13_000);
    expect(t.transport.seen.map((s) => s.at - start)).to.deep.equal([0, 800, 2400, 5600, 12_000]);
    expect(t.reflector.waitingForServer).to.equal(true);
    t.reflector.retryNow();
    await settle();
    // Refused once more: the delay starts again at 800 ms, not 25.6 s.
    await until(13_900);
    expect(t.transport.seen.map((s) => s.at - start).slice(5)).to.deep.equal([13_000, 13_800]);
    // A 403 is the server answering: a probe's success must not turn it into a request a second.
    expect(t.reflector.phase).to.equal('BackingOff');
    expect(t.reflector.waitingForServer).to.equal(false);
    t.reflector.retryNow();
    await settle();
    expect(t.transport.seen).to.have.length(7);
    await until(15_500);
    // The 403's own 1.6 s (the backoff's second step), then the list and its watch.
    expect(t.transport.seen.map((s) => s.at - start).slice(7)).to.deep.equal([15_400, 15_400]);
    expect(t.reflector.store.hasSynced).to.equal(true);
    t.ctl.abort();
    await t.done;
  });

  it('relists after a 410 ERROR event mid-stream, ignores what follows it, and delivers only the difference', async function () {
    const t = setup([
      list('10', [pod('a', 'ua'), pod('b', 'ub', 'Pending'), pod('c', 'uc')]),
      {
        chunks: [
          line('ADDED', pod('d', 'ud', 'Pending', '11')),
          // The ERROR event arrives split over two chunks.
          line('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 11 (40)' }).subarray(0, 30),
          Buffer.concat([line('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 11 (40)' }).subarray(30), line('ADDED', pod('e', 'ue', 'Running', '12'))]),
        ],
        open: true,
      },
      list('40', [pod('a', 'ua'), pod('b', 'ub', 'Running'), pod('d', 'ud', 'Pending')]),
    ]);
    await settle();
    t.changes.length = 0;
    t.clock.advance(800);
    await settle();
    const relist = t.transport.seen[2];
    expect(relist?.query).to.deep.include({ resourceVersion: '11', resourceVersionMatch: 'NotOlderThan', continue: undefined });
    expect(t.changes).to.deep.equal([
      ['updated', 'ns/b'],
      ['deleted', 'ns/c'],
    ]);
    expect(t.reflector.store.has('ns/e'), 'events after the ERROR are not applied').to.equal(false);
    expect(t.transport.seen[3]?.query).to.deep.include({ watch: 1, resourceVersion: '40' });
    expect(t.reflector.health()).to.include({ relists: 1, restarts: 1 });
    t.ctl.abort();
    await t.done;
  });

  it('relists promptly after every 410, however many come in a row: a complete list starts the relist delay over', async function () {
    const gone = (rv: string): Answer => ({ chunks: [line('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: `too old resource version: ${rv}` })] });
    const t = setup([list('10', []), gone('10'), list('20', []), gone('20'), list('30', []), gone('30'), list('40', [])]);
    const start = 1_000_000;
    for (let i = 0; i < 100; i++) {
      await settle();
      t.clock.advance(100);
    }
    await settle();
    const lists = t.transport.seen.filter((s) => s.query['watch'] === undefined).map((s) => s.at - start);
    // random 0: 800 ms before each relist, not 800, 1600, 3200 (each API server restart may answer 410 once).
    expect(lists).to.deep.equal([0, 800, 1600, 2400]);
    expect(t.reflector.health()).to.include({ relists: 3 });
    t.ctl.abort();
    await t.done;
  });

  it('skips and counts malformed objects, and drops a cached object that becomes malformed', async function () {
    const t = setup([
      list('10', [pod('good', 'u1'), pod('no-uid', undefined), { metadata: { namespace: 'ns' } }]),
      { chunks: [line('MODIFIED', pod('good', undefined, 'Running', '11')), line('ADDED', pod('next', 'u2', 'Running', '12'))], open: true },
    ]);
    await settle();
    expect(t.malformed).to.deep.equal(['ns/no-uid', undefined, 'ns/good']);
    expect([...t.reflector.store.keys()]).to.deep.equal(['ns/next']);
    expect(t.changes).to.deep.include(['deleted', 'ns/good']);
    expect(await t.registry.metrics()).to.contain('dcp_watch_malformed_objects_total{resource="pods"} 3');
    t.ctl.abort();
    await t.done;
  });

  it('keeps going when a change handler throws, and counts it', async function () {
    const t = setup([list('10', []), { chunks: [line('ADDED', pod('a', 'ua', 'Running', '11')), line('ADDED', pod('b', 'ub', 'Running', '12'))], open: true }]);
    t.reflector.store.subscribe(() => {
      throw new Error('handler bug');
    });
    await settle();
    expect(t.reflector.store.size).to.equal(2);
    expect(await t.registry.metrics()).to.contain('dcp_watch_handler_errors_total{resource="pods"} 2');
    expect(t.errors).to.deep.equal([]);
    t.ctl.abort();
    await t.done;
  });

  it('counts bookmarks, advances its version with them, and watches again from it after a normal close', async function () {
    const t = setup([
      list('10', []),
      { chunks: [line('BOOKMARK', { metadata: { resourceVersion: '99' } })] },
    ]);
    await settle();
    // The second watch (from 99) is the open one the script falls back to.
    expect(t.transport.seen[2]?.query).to.deep.include({ watch: 1, resourceVersion: '99' });
    expect(t.errors, 'a normal close is not an error').to.deep.equal([]);
    expect(await t.registry.metrics()).to.contain('dcp_watch_events_total{resource="pods",type="bookmark"} 1');
    t.ctl.abort();
    await t.done;
  });

  it('stops at once when stopped during a backoff, reports no error for the stop, and stays stopped', async function () {
    const t = setup([{ error: new TransportError('ECONNREFUSED') }]);
    await settle();
    expect(t.reflector.phase).to.equal('BackingOff');
    t.ctl.abort();
    await t.done;
    expect(t.reflector.phase).to.equal('Stopped');
    expect(t.errors.map(([r]) => r)).to.deep.equal(['network']);
    t.clock.advance(60_000);
    await settle();
    expect(t.transport.seen).to.have.length(1);
  });

  it('reports the age of the last event in its health and in dcp_watch_last_event_age_seconds', async function () {
    const t = setup([list('10', [])]);
    await settle();
    t.clock.advance(42_000);
    expect(t.reflector.health().lastEventAgeSeconds).to.equal(42);
    expect(await t.registry.metrics()).to.contain('dcp_watch_last_event_age_seconds{resource="pods"} 42');
    t.ctl.abort();
    await t.done;
  });
}

for (const w of ['json', 'protobuf'] as const) {
  describe(`reflector driver (${w})`, function () {
    before(() => (wire = w));
    after(() => (wire = 'json'));
    driverTests();
  });
}
