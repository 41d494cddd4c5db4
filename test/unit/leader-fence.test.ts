// Fencing on the lease: a leader past its renew deadline (paused, cut off) refuses every write before its timers even run.
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { KubeRequest, KubeTransport, ResponseStream } from '../../src/kube/client.js';
import { Conflict, NotFound } from '../../src/kube/errors.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { fencedTransport, LeadershipLost, LeaseFence, writtenResource, type Fence } from '../../src/runtime/fence.js';
import { LeaderElector } from '../../src/runtime/leader.js';

/** One Lease kept in memory with resourceVersions, as the API server keeps it: a stale update is a 409. */
class LeaseServer implements KubeTransport {
  object: { metadata: { resourceVersion: string }; spec: Record<string, unknown> } | undefined;
  private version = 0;
  readonly writes: string[] = [];

  stream(): Promise<ResponseStream> {
    return Promise.reject(new Error('not used'));
  }

  json(req: KubeRequest): Promise<unknown> {
    const method = req.method ?? 'GET';
    if (method === 'GET') return this.object ? Promise.resolve(this.object) : Promise.reject(new NotFound(404, 'NotFound', 'no lease'));
    const body = req.body as { metadata: { resourceVersion?: string }; spec: Record<string, unknown> };
    const exists = this.object !== undefined;
    if (method === 'POST' ? exists : body.metadata.resourceVersion !== this.object?.metadata.resourceVersion) {
      return Promise.reject(new Conflict(409, 'Conflict', 'the object has been modified'));
    }
    this.writes.push(`${method} ${String(body.spec['holderIdentity'])}`);
    this.object = { metadata: { resourceVersion: String(++this.version) }, spec: body.spec };
    return Promise.resolve(this.object);
  }

  /** Another replica takes the lease (as a standby does once the lease duration has passed by its clock). */
  takeOver(identity: string): void {
    this.object = { metadata: { resourceVersion: String(++this.version) }, spec: { ...this.object?.spec, holderIdentity: identity } };
  }
}

/** Lets promise callbacks run between clock steps. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

describe('leader fencing on the lease', function () {
  it('refuses writes from the moment the renew deadline has passed since the last renewal was sent, and never comes back', function () {
    const clock = new ManualClock(1000);
    const lost: string[] = [];
    const refused: string[] = [];
    const fence = new LeaseFence(clock, 2000, 1000, (reason) => lost.push(reason.message), (w) => refused.push(w));
    clock.jump(1999);
    fence.check('store append');
    fence.renewed(2500);
    clock.jump(1500); // 1999 ms after the renewal was sent
    fence.check('store append');
    clock.jump(1);
    expect(() => fence.check('sink delivery')).to.throw(LeadershipLost, /not renewed for 2000 ms .*first refused: sink delivery/);
    fence.renewed(clock.now());
    expect(() => fence.check('store append')).to.throw(LeadershipLost);
    expect(lost).to.have.length(1);
    expect(refused).to.deep.equal(['sink delivery', 'store append']);
  });

  it('fences API writes but not reads, naming the resource written', async function () {
    const server = new LeaseServer();
    let fence: Fence = { check: () => undefined };
    const writes = fencedTransport(server, () => fence);
    await writes.json({ method: 'POST', path: '/apis/coordination.k8s.io/v1/namespaces/x/leases', body: { metadata: {}, spec: { holderIdentity: 'a' } } });
    fence = { check: (w) => { throw new LeadershipLost(w); } };
    await writes.json({ path: '/apis/coordination.k8s.io/v1/namespaces/x/leases/l' });
    let refused: unknown;
    await writes.json({ method: 'PUT', path: '/api/v1/namespaces/dcp-system/configmaps/dcp-billing', body: {} }).catch((err: unknown) => (refused = err));
    expect(refused).to.be.instanceOf(LeadershipLost).with.property('message', 'PUT configmaps');
    expect(writtenResource('/apis/dcp.example.com/v1/datacollectionpolicies/default/status')).to.equal('datacollectionpolicies/status');
    expect(writtenResource('/api/v1/namespaces/default/events')).to.equal('events');
  });

  it('a leader paused past its lease refuses its first write on resuming, and does not renew a lease another replica took', async function () {
    const clock = new ManualClock();
    const server = new LeaseServer();
    const registry = new Registry();
    let fence: Fence | undefined;
    let term: AbortSignal | undefined;
    const ctl = new AbortController();
    const elector = new LeaderElector({
      transport: server,
      namespace: 'dcp-system',
      name: 'dcp-operator',
      identity: 'a',
      leaseDurationMs: 3000,
      renewDeadlineMs: 2000,
      retryPeriodMs: 500,
      clock,
      random: () => 0,
      registry,
      onStartedLeading: (signal, f) => {
        term = signal;
        fence = f;
        return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      },
    });
    const done = elector.start(ctl.signal);
    await settle();
    expect(elector.isLeader).to.equal(true);
    for (let i = 0; i < 4; i++) {
      clock.advance(500);
      await settle();
    }
    fence?.check('store append'); // renewing: writes pass
    const renewals = server.writes.length;
    // SIGSTOP: time goes on, no timer runs; a standby takes the lease after its lease duration.
    clock.jump(5000);
    server.takeOver('b');
    // SIGCONT: the first thing that runs is a write; the deadline timer has not fired yet.
    expect(term?.aborted).to.equal(false);
    expect(() => fence?.check('store append')).to.throw(LeadershipLost);
    expect(term?.aborted).to.equal(true);
    clock.advance(0);
    await settle();
    expect(elector.isLeader).to.equal(false);
    expect(server.writes.slice(renewals), 'writes to the lease after the pause').to.deep.equal([]);
    expect(await registry.getSingleMetricAsString('dcp_leader_fenced_writes_total')).to.contain('writer="store append"} 1');
    ctl.abort();
    clock.advance(10_000);
    await done;
  });
});
