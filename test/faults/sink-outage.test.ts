// Fault scenario: one of two sinks down for long (connection refused), or refusing a wrong token (401) until its Secret is fixed; the other sink is never held up, the backlog stays within what the store keeps, and everything arrives afterwards.
import { expect } from 'chai';
import { cluster, needsLocalControlPlane, type TestCluster } from '../e2e/harness.js';
import { type OperatorProcess, waitFor } from '../e2e/operator-process.js';
import { condition, getPolicy, Receiver, REGION, sinkStatus, storeIds } from '../e2e/pipeline-helpers.js';
import { between, drainToSink, FaultScene, MAX_DOWN_S, Peaks, reportDrained, ROUNDS, SEED, seeded, sleep } from './campaign.js';

/** The first outage, in seconds: 600 in `make faults`, short in the smoke. Later outages last 2 s to FAULT_MAX_DOWN_S. */
const SINK_DOWN_S = Math.max(1, Number(process.env.FAULT_SINK_DOWN_S ?? 8));
const TOKEN = 'the-right-token';
const SECRET = 'faults-sink-token';

type OutageFault = 'down' | 'wrongToken';

describe('faults: one of two sinks down for long or refusing a wrong token', function () {
  // After a long outage the dispatcher's backoff (up to 5 min) decides how soon the sink is tried again.
  this.timeout(180_000 + SINK_DOWN_S * 1000 + ROUNDS * (MAX_DOWN_S * 1000 + 420_000));
  const random = seeded(SEED + 6);
  let c: TestCluster;
  let op: OperatorProcess | undefined;
  /** The sink under fault (flaky, with a token) and the one that must not be held up (regional). */
  let flaky: Receiver | undefined;
  let steady: Receiver | undefined;
  let scene: FaultScene;

  const setToken = async (token: string): Promise<void> => {
    const yaml = await c.kubectlOk(['-n', 'dcp-system', 'create', 'secret', 'generic', SECRET, `--from-literal=token=${token}`, '--dry-run=client', '-o', 'yaml']);
    await c.kubectlOk(['apply', '-f', '-'], yaml);
  };

  before(async function () {
    c = cluster();
    needsLocalControlPlane(this, 'kwok Nodes come and go under churn');
    scene = new FaultScene(c, `faults-outage-${c.runId}`, 106);
    await scene.create();
    flaky = await Receiver.start();
    flaky.token = TOKEN;
    steady = await Receiver.start();
    await setToken(TOKEN);
    const secretRef = { name: SECRET, key: 'token' };
    op = await scene.collectInto(steady.url(), { moreSinks: [{ name: 'flaky', type: 'http', url: flaky.url(), region: REGION, secretRef }] });
  });

  after(async function () {
    await flaky?.close().catch(() => undefined);
    await scene?.cleanup([op], steady);
    await c?.kubectl(['-n', 'dcp-system', 'delete', 'secret', SECRET, '--ignore-not-found']);
  });

  it(`keeps the other sink delivering through ${ROUNDS} outages and refusals, within retention, and catches up (seed ${SEED})`, async function () {
    const operator = op as OperatorProcess;
    const bad = flaky as Receiver;
    const good = steady as Receiver;
    const { churn } = scene;
    const peaks = new Peaks();
    const injected: string[] = [];
    let peakBacklog = 0;
    let steadyDuringFaults = 0;
    churn.start();
    for (let round = 1; round <= ROUNDS; round++) {
      await sleep(between(random, 500, 3000));
      const fault: OutageFault = round % 2 === 1 ? 'down' : 'wrongToken';
      const seconds = round === 1 ? SINK_DOWN_S : between(random, 2, Math.max(2, MAX_DOWN_S));
      injected.push(`${fault} ${seconds}s`);
      const failuresBefore = (await operator.metric('dcp_sink_send_failures_total', 'sink="flaky"')) ?? 0;
      const steadyBefore = good.ids().size;
      const started = Date.now();
      if (fault === 'down') await bad.down();
      else await setToken('a-wrong-token');

      // Reported: status.sinks[] and the failure counter say which sink fails and why; a refusal turns Delivering False at once.
      const errorClass = fault === 'down' ? 'Network' : 'Refused';
      await waitFor(async () => (await sinkStatus(c, 'flaky'))?.lastErrorClass === errorClass, 120_000, `status.sinks[flaky] ${errorClass} after ${fault}`, 500);
      if (fault === 'wrongToken') expect(condition(await getPolicy(c), 'Delivering')).to.include({ status: 'False', reason: 'SinkRefused' });
      expect(await operator.metric('dcp_sink_send_failures_total', 'sink="flaky"')).to.be.greaterThan(failuresBefore);
      expect((await sinkStatus(c, 'regional'))?.state, 'the other sink').to.not.equal('Failing');

      // Not held up: while the fault lasts, the other sink gets everything stored; the backlog never exceeds what the store keeps.
      let roundBacklog = 0;
      do {
        const backlog = (await operator.metric('dcp_sink_backlog_events', 'sink="flaky"')) ?? 0;
        const kept = (await storeIds(operator.dataDir)).size;
        expect(backlog, 'backlog beyond the events the store keeps').to.be.at.most(kept);
        roundBacklog = Math.max(roundBacklog, backlog);
        await sleep(Math.min(5000, Math.max(500, seconds * 50)));
      } while (Date.now() - started < seconds * 1000);
      // A failed send means something waits: the gauge must show it.
      expect(roundBacklog, `dcp_sink_backlog_events{sink="flaky"} while ${fault}`).to.be.greaterThan(0);
      peakBacklog = Math.max(peakBacklog, roundBacklog);
      const storedNow = await storeIds(operator.dataDir);
      await waitFor(() => [...storedNow].every((id) => good.ids().has(id)), 60_000, `the other sink to have everything stored while flaky is ${fault}`, 250);
      steadyDuringFaults += good.ids().size - steadyBefore;

      if (fault === 'down') await bad.up();
      else await setToken(TOKEN);
      const healedAt = Date.now();
      // Caught up: everything stored so far reached the sink that failed (its backoff may have grown to minutes).
      await churn.pause();
      const stored = await storeIds(operator.dataDir);
      await waitFor(() => [...stored].every((id) => bad.ids().has(id)), 400_000, `flaky to catch up after ${fault}`, 250);
      peaks.recovered(Date.now() - healedAt);
      peaks.observe(operator.child.pid ?? 0);
      churn.resume();
      await waitFor(async () => (await sinkStatus(c, 'flaky'))?.state !== 'Failing', 60_000, `status.sinks[flaky] no longer Failing after ${fault}`, 500);
    }
    await churn.stop();
    const accepted = () => ({ deliveries: bad.events().length, ids: bad.ids() });
    const drained = await drainToSink(operator.dataDir, accepted);
    // The sinks deliver independently: the other one may still be sending the last batch the flaky one took.
    const steadyLost = (await drainToSink(operator.dataDir, () => ({ deliveries: good.events().length, ids: good.ids() }))).lost;
    reportDrained('sink-outage', injected.length, churn, drained, accepted(), peaks);
    console.log(`      faults injected: ${injected.join(', ')}; peak backlog ${peakBacklog}; the other sink took ${steadyDuringFaults} new events during the faults`);
    expect(drained.lost, 'stored events the failing sink never accepted').to.deep.equal([]);
    expect(steadyLost, 'stored events the other sink never accepted').to.deep.equal([]);
  });
});
