// Fault scenario: the control plane stopped and started at random moments under churn; after every round the caches equal a fresh list, sockets stay bounded, nothing stored is lost on the way to the sink.
import { expect } from 'chai';
import { KubeClient } from '../../src/kube/client.js';
import { cluster, needsLocalControlPlane, RUN_LABEL, type TestCluster } from '../e2e/harness.js';
import { killAllOperators, OperatorProcess, waitFor } from '../e2e/operator-process.js';
import { applyOk, policyYaml, readyAtGeneration, Receiver, REGION, storeIds } from '../e2e/pipeline-helpers.js';
import { between, Churn, MAX_DOWN_S, recovery, report, ROUNDS, SEED, seeded, sleep, vitals } from './campaign.js';

describe('faults: the control plane stopped and started at random moments', function () {
  this.timeout(120_000 + ROUNDS * (MAX_DOWN_S * 1000 + 90_000));
  const random = seeded(SEED);
  let c: TestCluster;
  let op: OperatorProcess;
  let receiver: Receiver;
  let churn: Churn;
  let ns: string;

  before(async function () {
    c = cluster();
    needsLocalControlPlane(this, 'it stops and starts the control plane');
    killAllOperators();
    await c.resetPolicy();
    ns = `faults-${c.runId}`;
    await c.ensureNamespace(ns);
    receiver = await Receiver.start();
    op = new OperatorProcess(c.kubeconfigPath);
    await op.started();
    await applyOk(
      c,
      policyYaml({
        categories: { controlPlane: { intervalSeconds: 10 }, billing: { intervalSeconds: 10 } },
        export: { sinks: [{ name: 'regional', type: 'http', url: receiver.url(), region: REGION }] },
      }),
    );
    await readyAtGeneration(c);
    churn = new Churn({ transport: new KubeClient(c.kc), random: seeded(SEED + 100), namespace: ns, secretNamespace: 'dcp-system', prefix: `faults-${c.runId}`, label: { [RUN_LABEL]: c.runId } });
  });

  after(async function () {
    await churn?.stop();
    await op?.stop();
    op?.cleanup();
    killAllOperators();
    await receiver?.close();
    if (c?.owned) {
      await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
      await c.kubectl(['delete', 'namespace', ns, '--wait=false']);
      await c.kubectl(['delete', 'nodes', '-l', `${RUN_LABEL}=${c.runId}`, '--wait=false']);
      await c.kubectl(['-n', 'dcp-system', 'delete', 'secret', `faults-${c.runId}-tls`, '--ignore-not-found']);
    }
  });

  it(`holds every invariant in each of ${ROUNDS} rounds (seed ${SEED})`, async function () {
    const pid = op.child.pid ?? 0;
    churn.start();
    await sleep(2000);
    await churn.pause();
    await recovery(c, op, 45_000);
    const baseline = vitals(pid);
    churn.resume();
    let maxRecoveryMs = 0;
    let maxSockets = baseline.sockets;
    let maxRssMb = baseline.rssMb;
    for (let round = 1; round <= ROUNDS; round++) {
      // A random moment under churn, then a random downtime.
      await sleep(between(random, 500, 5000));
      const downMs = between(random, 1000, MAX_DOWN_S * 1000);
      await c.restartApiServer(downMs);
      await churn.pause();
      const recoveredMs = await recovery(c, op, 60_000);
      maxRecoveryMs = Math.max(maxRecoveryMs, recoveredMs);
      const v = vitals(pid);
      maxSockets = Math.max(maxSockets, v.sockets);
      maxRssMb = Math.max(maxRssMb, v.rssMb);
      // NOTE: a reconnect that leaked its old connection would grow this by one or more each round.
      expect(v.sockets, `open sockets after round ${round} (baseline ${baseline.sockets})`).to.be.at.most(baseline.sockets + 6);
      churn.resume();
    }
    await churn.stop();
    // Everything stored reaches the sink: wait for the backlog to drain, then compare ids.
    let stored = new Set<string>();
    let lost: string[] = [];
    await waitFor(
      async () => {
        stored = await storeIds(op.dataDir);
        const delivered = receiver.ids();
        lost = [...stored].filter((id) => !delivered.has(id));
        return lost.length === 0;
      },
      60_000,
      'the sink to have every stored event',
      500,
    ).catch(() => undefined);
    const deliveries = receiver.events().length;
    const delivered = receiver.ids().size;
    report({
      scenario: 'api-server-restart',
      rounds: ROUNDS,
      faults: ROUNDS,
      churn: churn.total,
      churnFailed: churn.counts.failed,
      events: stored.size,
      delivered,
      lost: lost.length,
      duplicated: deliveries - delivered,
      maxRecoveryMs,
      maxRssMb,
      maxSockets,
    });
    expect(lost, 'stored events the sink never accepted').to.deep.equal([]);
    expect(stored.size).to.be.greaterThan(0);
    expect(churn.total).to.be.greaterThan(0);
  });
});
