// Fault scenario: the control plane stopped and started at random moments under churn; after every round the caches equal a fresh list, sockets stay bounded, nothing stored is lost on the way to the sink.
import { expect } from 'chai';
import { cluster, needsLocalControlPlane, type TestCluster } from '../e2e/harness.js';
import { OperatorProcess } from '../e2e/operator-process.js';
import { Receiver } from '../e2e/pipeline-helpers.js';
import { between, drainToSink, FaultScene, MAX_DOWN_S, Peaks, recovery, reportDrained, ROUNDS, SEED, seeded, sleep } from './campaign.js';

describe('faults: the control plane stopped and started at random moments', function () {
  this.timeout(120_000 + ROUNDS * (MAX_DOWN_S * 1000 + 90_000));
  const random = seeded(SEED);
  let c: TestCluster;
  let op: OperatorProcess;
  let receiver: Receiver;
  let scene: FaultScene;

  before(async function () {
    c = cluster();
    needsLocalControlPlane(this, 'it stops and starts the control plane');
    scene = new FaultScene(c, `faults-${c.runId}`, 100);
    await scene.create();
    receiver = await Receiver.start();
    op = await scene.collectInto(receiver.url(), { billing: true });
  });

  after(async function () {
    await scene?.cleanup([op], receiver);
  });

  it(`holds every invariant in each of ${ROUNDS} rounds (seed ${SEED})`, async function () {
    const { churn } = scene;
    const pid = op.child.pid ?? 0;
    const peaks = new Peaks();
    churn.start();
    await sleep(2000);
    await churn.pause();
    await recovery(c, op, 45_000);
    const baseline = peaks.observe(pid);
    churn.resume();
    for (let round = 1; round <= ROUNDS; round++) {
      // A random moment under churn, then a random downtime.
      await sleep(between(random, 500, 5000));
      const downMs = between(random, 1000, MAX_DOWN_S * 1000);
      await c.restartApiServer(downMs);
      await churn.pause();
      peaks.recovered(await recovery(c, op, 60_000));
      const v = peaks.observe(pid);
      // NOTE: a reconnect that leaked its old connection would grow this by one or more each round.
      expect(v.sockets, `open sockets after round ${round} (baseline ${baseline.sockets})`).to.be.at.most(baseline.sockets + 6);
      churn.resume();
    }
    await churn.stop();
    const accepted = () => ({ deliveries: receiver.events().length, ids: receiver.ids() });
    const drained = await drainToSink(op.dataDir, accepted);
    reportDrained('api-server-restart', ROUNDS, churn, drained, accepted(), peaks);
    expect(drained.lost, 'stored events the sink never accepted').to.deep.equal([]);
    expect(drained.stored.size).to.be.greaterThan(0);
    expect(churn.total).to.be.greaterThan(0);
  });
});
