// Fault scenario: the operator SIGKILLed at random moments while it appends and delivers, restarted on the same data directory; nothing stored is lost, billing stays contiguous, every stored event reaches the sink.
import { expect } from 'chai';
import { cluster, needsLocalControlPlane, type TestCluster } from '../e2e/harness.js';
import { OperatorProcess, waitFor } from '../e2e/operator-process.js';
import { readStore, Receiver, storeIds } from '../e2e/pipeline-helpers.js';
import { between, billingFaults, drainToSink, FaultScene, Peaks, recovery, reportDrained, ROUNDS, SEED, seeded, sleep } from './campaign.js';

describe('faults: the operator SIGKILLed at random moments while appending and delivering', function () {
  this.timeout(120_000 + ROUNDS * 90_000);
  const random = seeded(SEED + 1);
  let c: TestCluster;
  let receiver: Receiver;
  let scene: FaultScene;
  let first: OperatorProcess;
  let current: OperatorProcess;

  before(async function () {
    c = cluster();
    needsLocalControlPlane(this, 'kwok Nodes come and go under churn');
    scene = new FaultScene(c, `faults-kill-${c.runId}`, 101);
    await scene.create();
    // A meter state left by an earlier test (hourly intervals) would hold back the 10 s intervals this scenario checks.
    await c.kubectl(['-n', 'dcp-system', 'delete', 'configmap', 'dcp-billing', '--ignore-not-found']);
    receiver = await Receiver.start();
    first = await scene.collectInto(receiver.url(), { billing: true });
    current = first;
  });

  after(async function () {
    await scene?.cleanup([current, first], receiver);
  });

  it(`loses nothing stored over ${ROUNDS} kills (seed ${SEED})`, async function () {
    const dataDir = first.dataDir;
    const { churn } = scene;
    const peaks = new Peaks();
    churn.start();
    let torn = 0;
    const seen = new Set<string>();
    for (let round = 1; round <= ROUNDS; round++) {
      // Long enough for appends and deliveries to be under way, short enough to land mid-write sometimes.
      await sleep(between(random, 1500, 8000));
      for (const id of await storeIds(dataDir)) seen.add(id);
      peaks.observe(current.child.pid ?? 0);
      await current.stop('SIGKILL');
      const killedAt = Date.now();
      current = new OperatorProcess(c.kubeconfigPath, [], dataDir);
      await current.started();
      await churn.pause();
      await recovery(c, current, 60_000);
      peaks.recovered(Date.now() - killedAt);
      // The store opened (collection started) and cut at most one torn record.
      await waitFor(() => current.hasLog('collection started') || current.hasLog('leading: starting collection'), 30_000, 'the new process to collect');
      const opened = current.logs.find((l) => l.message === 'store opened after an interrupted write');
      const cut = typeof opened?.['tornRecords'] === 'number' ? opened['tornRecords'] : 0;
      expect(cut, `torn records cut after kill ${round}`).to.be.at.most(1);
      torn += cut;
      expect(current.logs.filter((l) => l.message === 'dcp run failed'), `kill ${round}`).to.deep.equal([]);
      // Whatever a reader saw in the store before the kill is still there.
      const after = await storeIds(dataDir);
      const vanished = [...seen].filter((id) => !after.has(id));
      expect(vanished, `events gone after kill ${round}`).to.deep.equal([]);
      churn.resume();
    }
    await churn.stop();
    // Let one more metering interval close, so billing has something after the last kill.
    await sleep(11_000);
    const accepted = () => ({ deliveries: receiver.events().length, ids: receiver.ids() });
    const drained = await drainToSink(dataDir, accepted);
    const billing = billingFaults(await readStore(dataDir, { category: 'billing' }));
    reportDrained('operator-sigkill', ROUNDS, churn, drained, accepted(), peaks);
    console.log(`      billing: ${billing.intervals} intervals, ${billing.gaps.length} gaps, ${billing.overlaps.length} overlaps, ${billing.repeated.length} repeated; torn records cut: ${torn}`);
    expect(drained.lost, 'stored events the sink never accepted').to.deep.equal([]);
    expect(billing.intervals).to.be.greaterThan(0);
    expect({ gaps: billing.gaps, overlaps: billing.overlaps, repeated: billing.repeated }).to.deep.equal({ gaps: [], overlaps: [], repeated: [] });
  });
});
