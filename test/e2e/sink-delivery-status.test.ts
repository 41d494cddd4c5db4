// Delivery is visible (issue 20 item 2): a real HTTP receiver answers 500, then 401 for good, then 200;
// status.sinks[], the Delivering condition and the gauges on /metrics follow. A receiver taking 5 s per
// request is not sent a batch again while it still works on it.
import { expect } from 'chai';
import { cluster, type TestCluster } from './harness.js';
import { killAllOperators, OperatorProcess, waitFor } from './operator-process.js';
import { applyOk, condition, getPolicy, policyYaml, Receiver, REGION, sinkStatus } from './pipeline-helpers.js';

describe('sink delivery status, Delivering and the backlog gauges against a real receiver', function () {
  this.timeout(180_000);
  let c: TestCluster;
  let receiver: Receiver;
  let op: OperatorProcess | undefined;

  before(async function () {
    c = cluster();
    killAllOperators();
    await c.resetPolicy();
    receiver = await Receiver.start();
  });
  after(async function () {
    await op?.stop();
    killAllOperators();
    await receiver?.close();
    await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
    op?.cleanup();
  });

  it('shows Failing (ServerError, then Refused) with backlog and age, Delivering False on 401, and recovers', async function () {
    receiver.status = 500;
    op = new OperatorProcess(c.kubeconfigPath, []);
    await op.started();
    const sinks = [{ name: 'flaky', type: 'http', url: receiver.url(), region: REGION }];
    await applyOk(c, policyYaml({ categories: { controlPlane: { intervalSeconds: 10 }, billing: { intervalSeconds: 10 } }, export: { sinks } }));
    await waitFor(async () => (await sinkStatus(c, 'flaky'))?.lastErrorClass === 'ServerError', 60_000, 'flaky Failing with ServerError', 500);
    const failing = await sinkStatus(c, 'flaky');
    expect(failing).to.include({ state: 'Failing' });
    expect(failing?.backlogEvents).to.be.greaterThan(0);
    expect(failing).to.have.property('oldestUndeliveredTime');
    const metrics = await op.metrics();
    expect(Number(/^dcp_sink_backlog_events\{sink="flaky"\} (\S+)$/m.exec(metrics)?.[1])).to.be.greaterThan(0);
    expect(Number(/^dcp_sink_oldest_undelivered_seconds\{sink="flaky"\} (\S+)$/m.exec(metrics)?.[1])).to.be.greaterThan(0);

    receiver.status = 401;
    await waitFor(async () => condition(await getPolicy(c), 'Delivering')?.reason === 'SinkRefused', 90_000, 'Delivering False with SinkRefused', 500);
    const refused = condition(await getPolicy(c), 'Delivering');
    expect(refused).to.include({ status: 'False' });
    expect(refused?.message).to.match(/flaky/);
    expect(await sinkStatus(c, 'flaky')).to.include({ state: 'Failing', lastErrorClass: 'Refused' });
    expect(condition(await getPolicy(c), 'Ready')).to.include({ status: 'True' });

    receiver.status = 200;
    await waitFor(async () => condition(await getPolicy(c), 'Delivering')?.status === 'True', 120_000, 'Delivering True again', 500);
    await waitFor(async () => (await sinkStatus(c, 'flaky'))?.state === 'Delivering', 30_000, 'flaky Delivering', 500);
    expect(await sinkStatus(c, 'flaky')).to.have.property('lastSuccessTime');
    expect(await op.metrics()).to.match(/^dcp_sink_backlog_events\{sink="flaky"\} 0$/m);
  });

  it('a receiver taking 5 s per request gets each event at most ~once (≤ 1.1 deliveries per id)', async function () {
    const slow = await Receiver.start();
    slow.delayMs = 5000;
    try {
      const sinks = [{ name: 'slow', type: 'http', url: slow.url(), region: REGION }];
      await applyOk(c, policyYaml({ categories: { controlPlane: { intervalSeconds: 10 }, billing: { intervalSeconds: 10 } }, export: { sinks } }));
      await new Promise((r) => setTimeout(r, 45_000));
      const events = slow.events();
      const ids = new Set(events.map((e) => e.id));
      const perId = events.length / Math.max(1, ids.size);
      console.log(`      slow receiver: ${slow.requests.length} requests, ${events.length} deliveries, ${ids.size} ids, ${perId.toFixed(3)} per id`);
      expect(ids.size).to.be.greaterThan(0);
      expect(perId).to.be.at.most(1.1);
    } finally {
      await slow.close();
    }
  });
});
