// Lease leader election against the real API server: one leader, quick hand-over on release, immediate stop when renewal fails.
import { expect } from 'chai';
import { KubeClient, type KubeRequest, type KubeTransport, type ResponseStream } from '../../src/kube/client.js';
import { TransportError } from '../../src/kube/errors.js';
import { LeaseClient } from '../../src/kube/lease.js';
import { LeaderElector, LeadershipLost } from '../../src/runtime/leader.js';
import { cluster, type TestCluster } from './harness.js';

/**
 * The real client, with a switch that makes every request fail as if the network were cut, and
 * one that lets the next write reach the server but loses its response.
 */
class CuttableTransport implements KubeTransport {
  cut = false;
  /** Called once, after the next PUT has been applied by the server and before its response is dropped. */
  onNextWriteLost: (() => void) | undefined;
  constructor(private readonly inner: KubeTransport) {}
  stream(req: KubeRequest): Promise<ResponseStream> {
    return this.cut ? Promise.reject(new TransportError('network cut by the test')) : this.inner.stream(req);
  }
  async json(req: KubeRequest): Promise<unknown> {
    if (this.cut) throw new TransportError('network cut by the test');
    const lost = req.method === 'PUT' ? this.onNextWriteLost : undefined;
    const res = await this.inner.json(req);
    if (lost === undefined) return res;
    this.onNextWriteLost = undefined;
    lost();
    throw new TransportError('response lost by the test');
  }
}

/** A timeline shared by the candidates, to check that leadership never overlaps. */
type Mark = [identity: string, what: 'start' | 'stop', at: number];

interface Candidate {
  elector: LeaderElector;
  transport: CuttableTransport;
  ctl: AbortController;
  done: Promise<void>;
  readonly leadingSignal: AbortSignal | undefined;
}

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleepMs(50);
  }
}

/** Checks that every `start` of one identity comes after the `stop` of the previous leader. */
function expectNoOverlap(marks: Mark[]): void {
  let leader: string | undefined;
  for (const [id, what] of marks) {
    if (what === 'start') {
      expect(leader, `${id} started leading while ${leader ?? ''} still led`).to.equal(undefined);
      leader = id;
    } else if (leader === id) {
      leader = undefined;
    }
  }
}

describe('lease leader election on the real API server', function () {
  this.timeout(120_000);
  let c: TestCluster;
  const namespace = 'default';
  const candidates: Candidate[] = [];

  function candidate(identity: string, lease: string, marks: Mark[]): Candidate {
    const transport = new CuttableTransport(new KubeClient(c.kc));
    const ctl = new AbortController();
    let leadingSignal: AbortSignal | undefined;
    const elector = new LeaderElector({
      transport,
      namespace,
      name: lease,
      identity,
      // Short, so the test runs in seconds; the ratios are the defaults' (15/10/2).
      leaseDurationMs: 3_000,
      renewDeadlineMs: 2_000,
      retryPeriodMs: 400,
      onStartedLeading: async (signal) => {
        marks.push([identity, 'start', Date.now()]);
        leadingSignal = signal;
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      },
      onStoppedLeading: () => marks.push([identity, 'stop', Date.now()]),
    });
    const cand: Candidate = {
      elector,
      transport,
      ctl,
      done: elector.start(ctl.signal),
      get leadingSignal() {
        return leadingSignal;
      },
    };
    candidates.push(cand);
    return cand;
  }

  before(function () {
    c = cluster();
  });

  afterEach(async function () {
    for (const cand of candidates.splice(0)) {
      cand.ctl.abort();
      await cand.done;
    }
  });

  it('elects one leader, and hands over at once when the leader releases the lease on shutdown', async function () {
    const lease = `dcp-e2e-${c.runId}-release`;
    const marks: Mark[] = [];
    const a = candidate('a', lease, marks);
    await eventually('a leads', () => a.elector.isLeader);
    const b = candidate('b', lease, marks);
    await sleepMs(2_000);
    expect(b.elector.isLeader, 'b waits while a renews').to.equal(false);
    expect(b.elector.leader).to.equal('a');

    // b is cut off while a shuts down, so the released record can be read before b takes it.
    b.transport.cut = true;
    a.ctl.abort();
    await a.done;
    const released = await new LeaseClient(new KubeClient(c.kc), namespace, lease).get();
    expect(released?.record, 'a released the lease').to.deep.include({ holderIdentity: '', leaseDurationSeconds: 1 });
    b.transport.cut = false;
    await eventually('b leads', () => b.elector.isLeader);
    expectNoOverlap(marks);
    expect(marks.map(([id, what]) => `${id}:${what}`)).to.deep.equal(['a:start', 'a:stop', 'b:start']);
  });

  it('releases the lease on shutdown even when its last renewal was written but not acknowledged', async function () {
    const lease = `dcp-e2e-${c.runId}-lost`;
    const marks: Mark[] = [];
    const a = candidate('a', lease, marks);
    await eventually('a leads', () => a.elector.isLeader);
    // The renewal lands, its response is lost, and a shuts down at that moment: a's last seen
    // resourceVersion is stale, so its first release attempt conflicts with its own write.
    let renewalLost = false;
    a.transport.onNextWriteLost = () => {
      renewalLost = true;
      a.ctl.abort();
    };
    await a.done;
    expect(renewalLost, 'a renewal was lost').to.equal(true);
    const released = await new LeaseClient(new KubeClient(c.kc), namespace, lease).get();
    expect(released?.record, 'a released the lease').to.deep.include({ holderIdentity: '', leaseDurationSeconds: 1 });
  });

  it('stops a leader that cannot renew by the deadline, before a standby takes over', async function () {
    const lease = `dcp-e2e-${c.runId}-cut`;
    const marks: Mark[] = [];
    const a = candidate('a', lease, marks);
    await eventually('a leads', () => a.elector.isLeader);
    const b = candidate('b', lease, marks);
    await sleepMs(1_000);
    a.transport.cut = true;
    await eventually('a stops leading', () => a.leadingSignal?.aborted === true, 10_000);
    expect(a.leadingSignal?.reason).to.be.instanceOf(LeadershipLost);
    await eventually('b leads', () => b.elector.isLeader, 20_000);
    expectNoOverlap(marks);
    const lease2 = await new LeaseClient(new KubeClient(c.kc), namespace, lease).get();
    expect(lease2?.record).to.deep.include({ holderIdentity: 'b', leaseTransitions: 1 });

    // Back on the network, a stays a standby: b renews.
    a.transport.cut = false;
    await sleepMs(2_000);
    expect(a.elector.isLeader).to.equal(false);
    expect(b.elector.isLeader).to.equal(true);
  });

  it('never has two leaders when three candidates race for a new lease', async function () {
    const lease = `dcp-e2e-${c.runId}-race`;
    const marks: Mark[] = [];
    const cs = ['x', 'y', 'z'].map((id) => candidate(id, lease, marks));
    await eventually('someone leads', () => cs.some((k) => k.elector.isLeader));
    for (let i = 0; i < 20; i++) {
      expect(cs.filter((k) => k.elector.isLeader).length).to.be.at.most(1);
      await sleepMs(100);
    }
    expectNoOverlap(marks);
    expect(marks.filter(([, what]) => what === 'start')).to.have.length(1);
  });
});
