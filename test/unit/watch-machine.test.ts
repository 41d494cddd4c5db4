// The reflector state machine, driven by arrays of inputs: list paging, watch resumption, relists, backoff and stop.
import { expect } from 'chai';
import {
  Forbidden,
  Gone,
  ResourceVersionTooLarge,
  ServerError,
  TooManyRequests,
  TransportError,
  WatchStalled,
} from '../../src/kube/errors.js';
import {
  initialState,
  serverRetryAfterMs,
  step,
  type ReflectorEffect,
  type ReflectorInput,
  type ReflectorState,
} from '../../src/runtime/reflector-machine.js';

interface Run {
  state: ReflectorState;
  effects: ReflectorEffect[];
  /** The phase after each input. */
  phases: string[];
}

function run(inputs: ReflectorInput[], from: ReflectorState = initialState): Run {
  let state = from;
  const effects: ReflectorEffect[] = [];
  const phases: string[] = [];
  for (const input of inputs) {
    const next = step(state, input);
    state = next.state;
    effects.push(...next.effects);
    phases.push(state.phase);
  }
  return { state, effects, phases };
}

const page = (resourceVersion: string, continueToken?: string): ReflectorInput => ({ kind: 'ListPage', resourceVersion, continueToken });
const listFailed = (error: unknown): ReflectorInput => ({ kind: 'ListFailed', error });
const event = (type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK', resourceVersion: string): ReflectorInput => ({ kind: 'WatchEvent', type, resourceVersion });
const errorEvent = (error: unknown): ReflectorInput => ({ kind: 'WatchEvent', type: 'ERROR', resourceVersion: undefined, error });
const closed = (durationMs: number, events: number): ReflectorInput => ({ kind: 'WatchClosed', durationMs, events });
const failed = (error: unknown): ReflectorInput => ({ kind: 'WatchFailed', error });
const elapsed: ReflectorInput = { kind: 'BackoffElapsed' };
const stop: ReflectorInput = { kind: 'Stop' };

const gone = (): Gone => new Gone(410, 'Expired', 'too old resource version: 5 (9)');
const kinds = (effects: ReflectorEffect[]): string[] => effects.map((e) => (e.kind === 'Restart' || e.kind === 'Relist' ? `${e.kind}:${e.reason}` : e.kind));

describe('reflector state machine', function () {
  describe('listing', function () {
    it('starts with a list of the most recent state, first page', function () {
      expect(initialState).to.deep.include({ phase: 'Listing', from: { resourceVersion: '' }, continueToken: undefined });
    });

    it('follows continue tokens page by page, then commits the whole list and watches from its resourceVersion', function () {
      const r = run([page('100', 'c1'), page('100', 'c2'), page('100')]);
      expect(r.phases).to.deep.equal(['Listing', 'Listing', 'Watching']);
      expect(r.state).to.deep.equal({ phase: 'Watching', resourceVersion: '100' });
      expect(r.effects).to.deep.equal([{ kind: 'CommitList', resourceVersion: '100' }]);
    });

    it('asks for the next page with the token the last page returned', function () {
      const r = run([page('100', 'c1'), page('100', 'c2')]);
      expect(r.state).to.deep.include({ phase: 'Listing', continueToken: 'c2' });
    });

    it('restarts the list from its first page at once when the continue token expires', function () {
      const r = run([page('100', 'c1'), listFailed(gone())]);
      expect(r.state).to.deep.include({ phase: 'Listing', continueToken: undefined, restartedForExpiredToken: true });
      expect(kinds(r.effects)).to.deep.equal(['Restart:continue_expired']);
    });

    it('backs off when the continue token expires a second time in the same list', function () {
      const r = run([page('100', 'c1'), listFailed(gone()), page('120', 'd1'), listFailed(gone())]);
      expect(r.state.phase).to.equal('BackingOff');
      const after = run([elapsed], r.state);
      expect(after.state).to.deep.include({ phase: 'Listing', continueToken: undefined });
    });

    it('retries a failed page where it stopped, after a backoff', function () {
      const r = run([page('100', 'c1'), listFailed(new ServerError(503, 'ServiceUnavailable', 'etcd unavailable'))]);
      expect(r.state.phase).to.equal('BackingOff');
      expect(kinds(r.effects)).to.deep.equal(['Restart:server_error']);
      const after = run([elapsed], r.state);
      expect(after.state).to.deep.include({ phase: 'Listing', continueToken: 'c1' });
    });

    it('never gives up on a list: 401, 403, 429, 5xx and network errors all back off and retry', function () {
      const errors = [
        new Forbidden(403, 'Forbidden', 'pods is forbidden'),
        new TooManyRequests(429, 'TooManyRequests', 'slow down', 2000),
        new ServerError(500, 'InternalError', 'boom'),
        new TransportError('connect ECONNREFUSED 127.0.0.1:6443'),
      ];
      let state: ReflectorState = initialState;
      for (const e of errors) {
        state = run([listFailed(e)], state).state;
        expect(state.phase).to.equal('BackingOff');
        state = run([elapsed], state).state;
        expect(state.phase).to.equal('Listing');
      }
      expect(run([page('7')], state).state).to.deep.equal({ phase: 'Watching', resourceVersion: '7' });
    });

    it('relists from the most recent state when the server is behind the resourceVersion asked for', function () {
      const from: ReflectorState = { phase: 'Listing', from: { resourceVersion: '500', match: 'NotOlderThan' }, continueToken: undefined, restartedForExpiredToken: false };
      const r = run([listFailed(new ResourceVersionTooLarge(504, 'Timeout', 'Too large resource version'))], from);
      expect(r.state).to.deep.include({ phase: 'Listing', from: { resourceVersion: '' } });
      expect(kinds(r.effects)).to.deep.equal(['Restart:too_large_resource_version']);
    });

    it('relists from the most recent state when a not-older-than list answers 410', function () {
      const from: ReflectorState = { phase: 'Listing', from: { resourceVersion: '500', match: 'NotOlderThan' }, continueToken: undefined, restartedForExpiredToken: false };
      expect(run([listFailed(gone())], from).state).to.deep.include({ phase: 'Listing', from: { resourceVersion: '' } });
    });

    it('ignores watch inputs while listing', function () {
      const r = run([event('ADDED', '5'), closed(5000, 3)]);
      expect(r.state).to.equal(initialState);
      expect(r.effects).to.deep.equal([]);
    });
  });

  describe('watching', function () {
    const watching: ReflectorState = { phase: 'Watching', resourceVersion: '100' };

    it('applies added, modified and deleted events and advances the resourceVersion with each', function () {
      const r = run([event('ADDED', '101'), event('MODIFIED', '102'), event('DELETED', '103')], watching);
      expect(r.state).to.deep.equal({ phase: 'Watching', resourceVersion: '103' });
      expect(kinds(r.effects)).to.deep.equal(['ApplyEvent', 'ApplyEvent', 'ApplyEvent']);
    });

    it('advances the resourceVersion on a bookmark without touching the cache', function () {
      const r = run([event('BOOKMARK', '250')], watching);
      expect(r.state).to.deep.equal({ phase: 'Watching', resourceVersion: '250' });
      expect(r.effects).to.deep.equal([]);
    });

    it('watches again from the last resourceVersion after a normal close, without a relist or a backoff', function () {
      const r = run([event('MODIFIED', '140'), closed(300_000, 1)], watching);
      expect(r.state).to.deep.equal({ phase: 'Watching', resourceVersion: '140' });
      expect(kinds(r.effects)).to.deep.equal(['ApplyEvent']);
    });

    it('treats a long watch without events that closes normally as healthy', function () {
      const r = run([closed(300_000, 0)], watching);
      expect(r.state).to.deep.equal(watching);
    });

    it('counts a watch that closes in under a second with no event as a failure', function () {
      const r = run([closed(200, 0)], watching);
      expect(r.state).to.deep.include({ phase: 'BackingOff', reason: 'closed_early' });
      expect(run([elapsed], r.state).state).to.deep.equal(watching);
    });

    it('relists after an ERROR event with 410, from a state not older than the last one seen', function () {
      const r = run([event('MODIFIED', '120'), errorEvent(gone())], watching);
      expect(kinds(r.effects)).to.deep.equal(['ApplyEvent', 'Relist:expired', 'Restart:expired']);
      expect(r.state, 'a relist the server asked for, not a failure').to.deep.include({ phase: 'BackingOff', resync: true });
      const after = run([elapsed], r.state);
      expect(after.state).to.deep.equal({
        phase: 'Listing',
        from: { resourceVersion: '120', match: 'NotOlderThan' },
        continueToken: undefined,
        restartedForExpiredToken: false,
      });
    });

    it('relists when the watch request itself answers 410', function () {
      const r = run([failed(gone()), elapsed], watching);
      expect(r.state).to.deep.include({ phase: 'Listing', from: { resourceVersion: '100', match: 'NotOlderThan' } });
      expect(kinds(r.effects)).to.deep.equal(['Relist:expired', 'Restart:expired']);
    });

    it('relists from the most recent state when the watch says the resourceVersion is too large', function () {
      const r = run([failed(new ResourceVersionTooLarge(504, 'Timeout', 'Too large resource version')), elapsed], watching);
      expect(r.state).to.deep.include({ phase: 'Listing', from: { resourceVersion: '' } });
    });

    it('re-watches from the same resourceVersion after a stall, with a backoff and no relist', function () {
      const r = run([failed(new WatchStalled(330_000)), elapsed], watching);
      expect(r.phases[0]).to.equal('BackingOff');
      expect(step(watching, failed(new WatchStalled(1))).state).to.deep.include({ resync: false });
      expect(r.state).to.deep.equal(watching);
      expect(kinds(r.effects)).to.deep.equal(['Restart:stalled']);
    });

    it('never gives up on a watch: 401, 403, 429, 5xx, network errors and non-410 ERROR events back off and re-watch', function () {
      const errors = [
        new Forbidden(403, 'Forbidden', 'no'),
        new TooManyRequests(429, 'TooManyRequests', 'later', undefined),
        new ServerError(500, 'InternalError', 'boom'),
        new TransportError('socket hang up'),
      ];
      for (const e of errors) {
        const r = run([failed(e), elapsed, errorEvent(e), elapsed], watching);
        expect(r.phases).to.deep.equal(['BackingOff', 'Watching', 'BackingOff', 'Watching']);
        expect(r.state).to.deep.equal(watching);
      }
    });

    it('passes on the server\'s Retry-After as the minimum delay of a 429', function () {
      const r = run([failed(new TooManyRequests(429, 'TooManyRequests', 'later', 5000))], watching);
      expect(r.state.phase).to.equal('BackingOff');
      expect(r.state.phase === 'BackingOff' ? serverRetryAfterMs(r.state.error) : undefined).to.equal(5000);
    });
  });

  describe('stopping', function () {
    it('stops from every phase and stays stopped whatever comes next', function () {
      const phases: ReflectorState[] = [
        initialState,
        { phase: 'Watching', resourceVersion: '1' },
        { phase: 'BackingOff', reason: 'network', error: new TransportError('x'), resync: false, next: initialState },
      ];
      for (const from of phases) {
        const r = run([stop, page('5'), elapsed, failed(gone()), event('ADDED', '9')], from);
        expect(r.phases).to.deep.equal(['Stopped', 'Stopped', 'Stopped', 'Stopped', 'Stopped']);
        expect(r.effects, 'a stop is not a restart and not an error').to.deep.equal([]);
      }
    });
  });

  it('goes through a whole life: sync, events, outage, expiry, relist, and back to watching', function () {
    const r = run([
      page('10', 'c'),
      page('10'),
      event('ADDED', '11'),
      event('BOOKMARK', '15'),
      failed(new TransportError('ECONNREFUSED')),
      elapsed,
      errorEvent(gone()),
      elapsed,
      page('40'),
      event('DELETED', '41'),
    ]);
    expect(r.phases).to.deep.equal(['Listing', 'Watching', 'Watching', 'Watching', 'BackingOff', 'Watching', 'BackingOff', 'Listing', 'Watching', 'Watching']);
    expect(kinds(r.effects)).to.deep.equal([
      'CommitList',
      'ApplyEvent',
      'Restart:network',
      'Relist:expired',
      'Restart:expired',
      'CommitList',
      'ApplyEvent',
    ]);
    expect(r.state).to.deep.equal({ phase: 'Watching', resourceVersion: '41' });
  });
});
