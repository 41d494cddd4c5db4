// The reconnect probe on a manual clock: one /readyz a second while caches wait for an unreachable server, none otherwise, and the caches woken once it is ready.
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { KubeRequest, KubeTransport, ResponseStream, TextResponse } from '../../src/kube/client.js';
import { TransportError } from '../../src/kube/errors.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { ReconnectProbe, type ReconnectingCache } from '../../src/runtime/reconnect-probe.js';

/** A server that is down (refuses), starting (500) or ready (200), as the test sets it. */
class Server implements KubeTransport {
  state: 'down' | 'starting' | 'ready' = 'down';
  readonly asked: string[] = [];

  async text(req: KubeRequest): Promise<TextResponse> {
    this.asked.push(req.path);
    if (this.state === 'down') throw new TransportError('connect ECONNREFUSED');
    return this.state === 'ready' ? { statusCode: 200, body: 'ok' } : { statusCode: 500, body: '[-]poststarthook/rbac failed' };
  }

  stream(): Promise<ResponseStream> {
    throw new Error('not used');
  }

  json(): Promise<unknown> {
    throw new Error('not used');
  }
}

class Cache implements ReconnectingCache {
  waitingForServer = false;
  woken = 0;

  retryNow(): void {
    this.woken += 1;
    this.waitingForServer = false;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

describe('reconnect probe', function () {
  it('asks nothing while no cache waits, /readyz once a second while some do, and wakes only the waiting ones when it is ready', async function () {
    const clock = new ManualClock(0);
    const server = new Server();
    const [waiting, watching] = [new Cache(), new Cache()];
    const registry = new Registry();
    const reconnects: number[] = [];
    const probe = new ReconnectProbe({ transport: server, caches: [waiting, watching], clock, registry, onReconnect: (n) => reconnects.push(n) });
    const ctl = new AbortController();
    const done = probe.run(ctl.signal);
    const seconds = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        clock.advance(1000);
        await settle();
      }
    };
    await seconds(5);
    expect(server.asked, 'a healthy operator costs no requests').to.deep.equal([]);
    waiting.waitingForServer = true;
    await seconds(10);
    expect(server.asked).to.have.length(10);
    expect(server.asked[0]).to.equal('/readyz');
    server.state = 'starting';
    await seconds(2);
    expect(waiting.woken, 'not while /readyz fails').to.equal(0);
    server.state = 'ready';
    await seconds(1);
    expect([waiting.woken, watching.woken]).to.deep.equal([1, 0]);
    expect(reconnects).to.deep.equal([1]);
    await seconds(5);
    expect(server.asked, 'quiet again once no cache waits').to.have.length(13);
    const metrics = await registry.metrics();
    expect(metrics).to.contain('dcp_apiserver_reconnect_probes_total{result="failed"} 10');
    expect(metrics).to.contain('dcp_apiserver_reconnect_probes_total{result="unready"} 2');
    expect(metrics).to.contain('dcp_apiserver_reconnect_probes_total{result="ready"} 1');
    ctl.abort();
    await done;
  });
});
