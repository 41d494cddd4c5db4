// Leader election decisions: create, wait while held, take over an expired or released lease, renew, release.
import { expect } from 'chai';
import { decide, releasedRecord, LeaderElector } from '../../src/runtime/leader.js';
import type { LeaseRecord } from '../../src/kube/lease.js';
import type { KubeTransport } from '../../src/kube/client.js';

const WALL = Date.UTC(2026, 10, 25, 12, 0, 0, 123);
const NOW = '2026-11-25T12:00:00.123000Z';

const held = (holder: string, over: Partial<LeaseRecord> = {}): LeaseRecord => ({
  holderIdentity: holder,
  leaseDurationSeconds: 15,
  acquireTime: '2026-11-25T11:00:00.000000Z',
  renewTime: '2026-11-25T11:59:58.000000Z',
  leaseTransitions: 3,
  ...over,
});

describe('leader election decisions', function () {
  it('creates the lease when there is none', function () {
    expect(decide(undefined, 'me', 0, 0, 15, WALL)).to.deep.equal({
      action: 'create',
      record: { holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: NOW, renewTime: NOW, leaseTransitions: 0 },
    });
  });

  it('waits while another holder\'s lease has not expired by this process\'s own clock', function () {
    // Seen (changed) at t=100 s; 15 s lease; now 114.999 s.
    expect(decide(held('other'), 'me', 100_000, 114_999, 15, WALL)).to.deep.equal({ action: 'wait', holder: 'other' });
  });

  it('takes over a lease whose holder stopped renewing, counting a transition', function () {
    const d = decide(held('other'), 'me', 100_000, 115_001, 15, WALL);
    expect(d).to.deep.equal({
      action: 'update',
      record: { holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: NOW, renewTime: NOW, leaseTransitions: 4 },
    });
  });

  it('ignores the timestamps written in the lease, so a skewed clock elsewhere cannot cut a lease short', function () {
    const ancient = held('other', { renewTime: '2000-01-01T00:00:00.000000Z' });
    expect(decide(ancient, 'me', 100_000, 101_000, 15, WALL).action).to.equal('wait');
  });

  it('takes a released lease at once', function () {
    const released = held('', { leaseDurationSeconds: 1 });
    expect(decide(released, 'me', 100_000, 100_000, 15, WALL)).to.deep.include({ action: 'update' });
  });

  it('renews its own lease, keeping the acquire time and the transition count', function () {
    const d = decide(held('me'), 'me', 100_000, 100_500, 15, WALL);
    expect(d).to.deep.equal({
      action: 'update',
      record: { holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: '2026-11-25T11:00:00.000000Z', renewTime: NOW, leaseTransitions: 3 },
    });
  });

  it('releases with no holder and a one-second duration, so a standby takes over quickly', function () {
    expect(releasedRecord(held('me'), WALL)).to.deep.equal({
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: '2026-11-25T11:00:00.000000Z',
      renewTime: NOW,
      leaseTransitions: 3,
    });
  });

  it('refuses timings where a leader could outlive its lease', function () {
    const transport: KubeTransport = { stream: () => Promise.reject(new Error('unused')), json: () => Promise.reject(new Error('unused')) };
    const base = { transport, namespace: 'ns', name: 'l', identity: 'me', onStartedLeading: () => undefined };
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).to.throw(RangeError);
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).to.throw(RangeError);
    expect(() => new LeaderElector(base)).not.to.throw();
  });
});
