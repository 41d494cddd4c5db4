// Fault scenario: the sink's receiver fails at random (500, 429 with Retry-After, slow answers, connections cut mid-response, down) under churn; Retry-After is honoured and everything stored arrives once it recovers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import type { DcpEvent } from '../../src/api/event.js';
import { cluster, needsLocalControlPlane, type TestCluster } from '../e2e/harness.js';
import { OperatorProcess, waitFor } from '../e2e/operator-process.js';
import { eventsOfBody, storeIds } from '../e2e/pipeline-helpers.js';
import { between, drainToSink, FaultScene, MAX_DOWN_S, Peaks, reportDrained, ROUNDS, SEED, seeded, sleep } from './campaign.js';

export type ReceiverFault = 'error500' | 'throttle429' | 'slow' | 'cut';
const FAULTS: readonly ReceiverFault[] = ['error500', 'throttle429', 'slow', 'cut'];
const RETRY_AFTER_S = 2;

/** A real HTTP receiver whose answers a test switches: 200, 500, 429 with Retry-After, 5 s late, or a connection cut mid-response. */
class FaultyReceiver {
  fault: ReceiverFault | undefined;
  readonly accepted: DcpEvent[] = [];
  requests = 0;
  /** When the last 429 was answered, and the shortest time from one to the next request. */
  private last429At: number | undefined;
  minGapAfter429Ms = Infinity;
  port = 0;
  private readonly server: Server = createServer((req, res) => this.handle(req, res));

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as AddressInfo).port;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.requests++;
      const now = Date.now();
      if (this.last429At !== undefined) {
        this.minGapAfter429Ms = Math.min(this.minGapAfter429Ms, now - this.last429At);
        this.last429At = undefined;
      }
      const accept = (): void => {
        this.accepted.push(...eventsOfBody(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      };
      switch (this.fault) {
        case 'error500':
          res.writeHead(500).end('{"error":"internal"}');
          return;
        case 'throttle429':
          this.last429At = now;
          res.writeHead(429, { 'retry-after': String(RETRY_AFTER_S) }).end('{"error":"slow down"}');
          return;
        case 'slow':
          // Accepted, but late: the sender must not send the same batch again while this one is in flight.
          setTimeout(accept, 5000);
          return;
        case 'cut':
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
          res.write('{"partial":');
          res.socket?.destroy();
          return;
        default:
          accept();
      }
    });
  }

  ids(): Set<string> {
    return new Set(this.accepted.map((e) => e.id));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('faults: the sink receiver failing at random', function () {
  this.timeout(120_000 + ROUNDS * (MAX_DOWN_S * 1000 + 60_000));
  const random = seeded(SEED + 2);
  let c: TestCluster;
  let op: OperatorProcess;
  let receiver: FaultyReceiver;
  let scene: FaultScene;

  before(async function () {
    c = cluster();
    needsLocalControlPlane(this, 'kwok Nodes come and go under churn');
    scene = new FaultScene(c, `faults-sink-${c.runId}`, 102);
    await scene.create();
    receiver = new FaultyReceiver();
    await receiver.start();
    op = await scene.collectInto(`http://127.0.0.1:${receiver.port}/ingest`, { billing: true });
  });

  after(async function () {
    await scene?.cleanup([op], receiver);
  });

  it(`catches up after each of ${ROUNDS} receiver faults and honours Retry-After (seed ${SEED})`, async function () {
    const { churn } = scene;
    const peaks = new Peaks();
    churn.start();
    const injected: ReceiverFault[] = [];
    const offset = Math.floor(random() * FAULTS.length);
    for (let round = 1; round <= ROUNDS; round++) {
      await sleep(between(random, 500, 3000));
      // Every kind comes up once before any repeats, so even the 2-round smoke sees two kinds.
      const fault = FAULTS[(round - 1 + offset) % FAULTS.length] ?? 'error500';
      injected.push(fault);
      receiver.fault = fault;
      await sleep(between(random, 2000, Math.max(2000, MAX_DOWN_S * 1000)));
      receiver.fault = undefined;
      const healedAt = Date.now();
      await churn.pause();
      // Recovered: everything stored so far has arrived.
      await waitFor(async () => {
        const delivered = receiver.ids();
        return [...(await storeIds(op.dataDir))].every((id) => delivered.has(id));
      }, 90_000, `the sink to catch up after ${fault}`, 250);
      peaks.recovered(Date.now() - healedAt);
      peaks.observe(op.child.pid ?? 0);
      churn.resume();
    }
    await churn.stop();
    const accepted = () => ({ deliveries: receiver.accepted.length, ids: receiver.ids() });
    const drained = await drainToSink(op.dataDir, accepted);
    reportDrained('sink-faults', injected.length, churn, drained, accepted(), peaks);
    console.log(`      faults injected: ${injected.join(', ')}; requests ${receiver.requests}; shortest wait after a 429: ${Number.isFinite(receiver.minGapAfter429Ms) ? `${receiver.minGapAfter429Ms} ms` : 'no 429 answered'}`);
    expect(drained.lost, 'stored events the sink never accepted').to.deep.equal([]);
    // Retry-After: 2 s; a little slack for the clock of the two sides.
    if (Number.isFinite(receiver.minGapAfter429Ms)) expect(receiver.minGapAfter429Ms).to.be.at.least(RETRY_AFTER_S * 1000 - 100);
  });
});
