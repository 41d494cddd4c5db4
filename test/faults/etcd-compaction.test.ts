// Fault scenario: etcd compacted past every resourceVersion the operator holds, under churn, so its watches answer 410 Gone; after each round the caches relisted and /metrics and the policy status equal a fresh list.
import { expect } from 'chai';
import { cluster, needsLocalControlPlane, type TestCluster } from '../e2e/harness.js';
import { OperatorProcess, waitFor } from '../e2e/operator-process.js';
import { Receiver } from '../e2e/pipeline-helpers.js';
import { between, drainToSink, expectRecoveredInTime, FaultScene, Peaks, recovery, reportDrained, reportRound, ROUNDS, SEED, seeded, sleep } from './campaign.js';

describe('faults: etcd compacted under open watches (410 Gone)', function () {
  this.timeout(120_000 + ROUNDS * 90_000);
  const random = seeded(SEED + 3);
  let c: TestCluster;
  let op: OperatorProcess;
  let receiver: Receiver;
  let scene: FaultScene;

  before(async function () {
    c = cluster();
    needsLocalControlPlane(this, 'it compacts etcd and restarts the API server');
    scene = new FaultScene(c, `faults-410-${c.runId}`, 103);
    await scene.create();
    receiver = await Receiver.start();
    op = await scene.collectInto(receiver.url());
  });

  after(async function () {
    await scene?.cleanup([op], receiver);
  });

  it(`relists and equals a fresh list after each of ${ROUNDS} compactions (seed ${SEED})`, async function () {
    const { churn, namespace: ns } = scene;
    const peaks = new Peaks();
    churn.start();
    for (let round = 1; round <= ROUNDS; round++) {
      await sleep(between(random, 1000, 5000));
      await churn.pause();
      const relistsBefore = (await op.metric('dcp_watch_relists_total', 'resource="pods"')) ?? 0;
      // Writes the operator does not watch move etcd past every resourceVersion it holds; then compact and restart.
      for (let i = 0; i < 3; i++) await c.kubectlOk(['-n', ns, 'create', 'configmap', `bump-${round}-${i}`]);
      await c.compactEtcd();
      const restartedAt = Date.now();
      churn.resume();
      await sleep(between(random, 500, 2000));
      await churn.pause();
      await recovery(c, op, 60_000, { status: true });
      const recoveryMs = Date.now() - restartedAt;
      peaks.recovered(recoveryMs);
      // The pods watch could not resume from its resourceVersion: it listed again.
      await waitFor(async () => ((await op.metric('dcp_watch_relists_total', 'resource="pods"')) ?? 0) > relistsBefore, 30_000, `a relist of pods after compaction ${round}`);
      const v = peaks.observe(op.child.pid ?? 0);
      reportRound('etcd-compaction', round, { recoveryMs, sockets: v.sockets, rssMb: v.rssMb });
      expectRecoveredInTime(recoveryMs, round);
      churn.resume();
    }
    await churn.stop();
    const accepted = () => ({ deliveries: receiver.events().length, ids: receiver.ids() });
    const drained = await drainToSink(op.dataDir, accepted);
    reportDrained('etcd-compaction', ROUNDS, churn, drained, accepted(), peaks);
    expect(drained.lost, 'stored events the sink never accepted').to.deep.equal([]);
  });
});
