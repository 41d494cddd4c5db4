// The stall watchdog on a manual clock: a silent server turns it unresponsive, and once it answers again the state keeps the last stall for the policy status.
import { expect } from 'chai';
import type { DataCollectionPolicy } from '../../src/api/policy.js';
import type { KubeRequest, KubeTransport, ResponseStream } from '../../src/kube/client.js';
import { RequestStalled } from '../../src/kube/errors.js';
import { planStatus } from '../../src/controllers/policy-status.js';
import { ApiServerWatchdog } from '../../src/runtime/apiserver-watchdog.js';
import { ManualClock } from '../../src/runtime/clock.js';

/** A /version that answers while `up`, and stalls (as a paused server does) otherwise. */
class Server implements KubeTransport {
  up = true;

  async json(req: KubeRequest): Promise<unknown> {
    if (!this.up) throw new RequestStalled(req.idleTimeoutMs ?? 0);
    return { major: '1' };
  }

  stream(): Promise<ResponseStream> {
    throw new Error('not used');
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

describe('API server watchdog', function () {
  it('is unresponsive past the threshold of silence, and responsive again with the last stall remembered for the status', async function () {
    const clock = new ManualClock(0);
    const server = new Server();
    // The watches hear nothing at all: only the probe can tell the server answers.
    const lastHeard = 0;
    const cache = { health: () => ({ lastEventAgeSeconds: (clock.now() - lastHeard) / 1000 }), restartWatch: () => undefined };
    const changes: boolean[] = [];
    const watchdog = new ApiServerWatchdog({ transport: server, caches: [cache], thresholdMs: 4000, clock, onChange: (r) => changes.push(r) });
    const ctl = new AbortController();
    const done = watchdog.run(ctl.signal);
    const seconds = async (n: number): Promise<void> => {
      for (let i = 0; i < n * 10; i++) {
        clock.advance(100);
        await settle();
      }
    };
    server.up = false;
    await seconds(10);
    expect(watchdog.state()).to.include({ responsive: false, thresholdMs: 4000 });
    server.up = true;
    await seconds(3);
    const state = watchdog.state();
    expect(changes).to.deep.equal([false, true]);
    expect(state.responsive).to.equal(true);
    // Silent from 0 until the first probe after the server came back (within a 400 ms tick of 10 s).
    expect(state.lastStall?.seconds).to.be.within(10, 11);
    expect(state.lastStall?.since).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const policy = {
      metadata: { name: 'default', generation: 1 },
      spec: { region: 'eastus', retention: { rawDays: 28, aggregateDays: 365 }, export: { sinks: [] }, diagnostics: { auditExport: { enabled: false } } },
    } as unknown as DataCollectionPolicy;
    const status = planStatus(policy, { leading: true, unsyncedCaches: [], apiServer: state }, new Date());
    const condition = status.conditions?.find((c) => c.type === 'APIServerResponsive');
    expect(condition).to.include({ status: 'True', reason: 'Responsive' });
    expect(condition?.message).to.match(/answers within 4s \(it last stalled at .*Z: no answer for 1\ds\)/);
    ctl.abort();
    await done;
  });
});
