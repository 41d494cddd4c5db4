// The work queue and controller runner: dedup, one worker per key, rate-limited retries and delays on a manual clock, clean stop.
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { ManualClock } from '../../src/runtime/clock.js';
import { ExponentialRateLimiter, WorkQueue } from '../../src/runtime/queue.js';
import { Controller, TerminalError, type ReconcileResult } from '../../src/runtime/controller.js';

/** Lets promise callbacks run (the controller awaits between steps). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((r) => setImmediate(r));
}

describe('work queue', function () {
  it('queues a key once however often it is added before a worker takes it', async function () {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).to.equal(2);
    expect(await q.get()).to.equal('a');
    expect(await q.get()).to.equal('b');
    expect(q.length).to.equal(0);
  });

  it('processes a key again after done when it was re-added while being processed, and never hands it to two workers', async function () {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    const key = await q.get();
    q.add('a');
    q.add('a');
    expect(q.length, 'not queued while processing').to.equal(0);
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await settle();
    expect(second).to.equal(undefined);
    q.done(key ?? '');
    await settle();
    expect(second).to.equal('a');
  });

  it('hands a key to a waiting worker as soon as it is added', async function () {
    const q = new WorkQueue({ name: 't' });
    const got = q.get();
    q.add('x');
    expect(await got).to.equal('x');
  });

  it('adds a key after a delay, keeping the earliest of several delays for the same key', async function () {
    const clock = new ManualClock();
    const q = new WorkQueue({ name: 't', clock });
    q.addAfter('a', 1000);
    q.addAfter('a', 300);
    q.addAfter('a', 5000);
    clock.advance(299);
    expect(q.length).to.equal(0);
    clock.advance(1);
    expect(q.length).to.equal(1);
    clock.advance(10_000);
    expect(q.length, 'the later delays were dropped').to.equal(1);
    expect(clock.pending).to.equal(0);
  });

  it('retries a failing key after 5 ms, 10 ms, 20 ms ... and from 5 ms again once forgotten', function () {
    const limiter = new ExponentialRateLimiter();
    expect([1, 2, 3, 4, 5].map(() => limiter.when('k'))).to.deep.equal([5, 10, 20, 40, 80]);
    expect(limiter.retries('k')).to.equal(5);
    expect(limiter.when('other'), 'per key').to.equal(5);
    limiter.forget('k');
    expect(limiter.when('k')).to.equal(5);
  });

  it('caps the retry delay at 1000 s', function () {
    const limiter = new ExponentialRateLimiter();
    let last = 0;
    for (let i = 0; i < 100; i++) last = limiter.when('k');
    expect(last).to.equal(1_000_000);
  });

  it('adds a rate-limited key when its delay has passed', function () {
    const clock = new ManualClock();
    const q = new WorkQueue({ name: 't', clock });
    q.addRateLimited('k'); // 5 ms
    q.addRateLimited('k'); // 10 ms, but the 5 ms one is earlier and wins
    clock.advance(4);
    expect(q.length).to.equal(0);
    clock.advance(1);
    expect(q.length).to.equal(1);
    expect(q.numRequeues('k')).to.equal(2);
  });

  it('resolves waiting workers with undefined on shut down and ignores later adds', async function () {
    const clock = new ManualClock();
    const q = new WorkQueue({ name: 't', clock });
    const waiting = q.get();
    q.addAfter('later', 100);
    q.shutDown();
    expect(await waiting).to.equal(undefined);
    q.add('x');
    expect(q.length).to.equal(0);
    expect(clock.pending, 'delayed adds are dropped').to.equal(0);
    expect(await q.get()).to.equal(undefined);
  });

  it('stops a worker waiting for a key when its signal aborts', async function () {
    const q = new WorkQueue({ name: 't' });
    const ctl = new AbortController();
    const waiting = q.get(ctl.signal);
    ctl.abort();
    expect(await waiting).to.equal(undefined);
    q.add('a');
    expect(await q.get(), 'the aborted worker took nothing').to.equal('a');
  });

  it('reports its depth in dcp_queue_depth', async function () {
    const registry = new Registry();
    const q = new WorkQueue({ name: 'policy', registry });
    q.add('a');
    q.add('b');
    const text = await registry.metrics();
    expect(text).to.contain('dcp_queue_depth{name="policy"} 2');
  });
});

describe('controller runner', function () {
  function controller(reconcile: (key: string) => Promise<ReconcileResult | void>, clock = new ManualClock()) {
    const errors: Array<[string, unknown, boolean]> = [];
    const c = new Controller({ name: 'test', reconcile, clock, onError: (k, e, requeued) => errors.push([k, e, requeued]) });
    return { c, clock, errors };
  }

  it('reconciles each enqueued key once, in order, one at a time', async function () {
    const seen: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const { c } = controller(async (key) => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      await settle();
      seen.push(key);
      running -= 1;
    });
    c.enqueue('a');
    c.enqueue('b');
    c.enqueue('a');
    const ctl = new AbortController();
    const done = c.start(ctl.signal);
    await settle();
    await settle();
    ctl.abort();
    await done;
    expect(seen).to.deep.equal(['a', 'b']);
    expect(maxRunning).to.equal(1);
  });

  it('retries a failing key with growing delays and resets the delay after a success', async function () {
    let calls = 0;
    const { c, clock, errors } = controller(async () => {
      calls += 1;
      if (calls <= 3) throw new Error(`fail ${calls}`);
    });
    const ctl = new AbortController();
    const done = c.start(ctl.signal);
    c.enqueue('k');
    await settle();
    expect(calls).to.equal(1);
    clock.advance(4);
    await settle();
    expect(calls, 'not before 5 ms').to.equal(1);
    clock.advance(1);
    await settle();
    expect(calls).to.equal(2);
    clock.advance(9);
    await settle();
    expect(calls, 'not before 10 ms').to.equal(2);
    clock.advance(1);
    await settle();
    expect(calls).to.equal(3);
    clock.advance(20);
    await settle();
    expect(calls).to.equal(4);
    expect(c.queue.numRequeues('k'), 'forgotten after the success').to.equal(0);
    expect(errors.map((e) => e[2])).to.deep.equal([true, true, true]);
    ctl.abort();
    await done;
  });

  it('runs a key again after requeueAfter', async function () {
    let calls = 0;
    const { c, clock } = controller(async () => {
      calls += 1;
      return { requeueAfter: 60_000 };
    });
    const ctl = new AbortController();
    const done = c.start(ctl.signal);
    c.enqueue('k');
    await settle();
    clock.advance(59_999);
    await settle();
    expect(calls).to.equal(1);
    clock.advance(1);
    await settle();
    expect(calls).to.equal(2);
    ctl.abort();
    await done;
  });

  it('does not retry a key whose reconcile throws a TerminalError', async function () {
    let calls = 0;
    const { c, clock, errors } = controller(async () => {
      calls += 1;
      throw new TerminalError('region can never work');
    });
    const ctl = new AbortController();
    const done = c.start(ctl.signal);
    c.enqueue('k');
    await settle();
    clock.advance(3_600_000);
    await settle();
    expect(calls).to.equal(1);
    expect(errors).to.have.length(1);
    expect(errors[0]?.[2]).to.equal(false);
    ctl.abort();
    await done;
  });

  it('finishes the reconcile in progress when stopped, and starts no other', async function () {
    let release: () => void = () => undefined;
    const finished: string[] = [];
    const { c } = controller(async (key) => {
      await new Promise<void>((r) => (release = r));
      finished.push(key);
    });
    c.enqueue('a');
    c.enqueue('b');
    const ctl = new AbortController();
    const done = c.start(ctl.signal);
    await settle();
    ctl.abort();
    let stopped = false;
    void done.then(() => (stopped = true));
    await settle();
    expect(stopped, 'waits for the key in progress').to.equal(false);
    release();
    await done;
    expect(finished).to.deep.equal(['a']);
  });
});
