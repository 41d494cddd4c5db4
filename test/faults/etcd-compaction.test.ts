// Fault scenario: etcd compacted past every resourceVersion the operator holds, under churn, so its watches answer 410 Gone; after each round the caches relisted and equal a fresh list.
import { expect } from 'chai';
import { KubeClient } from '../../src/kube/client.js';
import { cluster, needsLocalControlPlane, RUN_LABEL, type TestCluster } from '../e2e/harness.js';
import { killAllOperators, OperatorProcess, waitFor } from '../e2e/operator-process.js';
import { applyOk, policyYaml, readyAtGeneration, Receiver, REGION, storeIds } from '../e2e/pipeline-helpers.js';
import { between, Churn, recovery, report, ROUNDS, SEED, seeded, sleep, vitals } from './campaign.js';

describe('faults: etcd compacted under open watches (410 Gone)', function () {
  this.timeout(120_000 + ROUNDS * 90_000);
  const random = seeded(SEED + 3);
  let c: TestCluster;
  let op: OperatorProcess;
  let receiver: Receiver;
  let churn: Churn;
  let ns: string;

  before(async function () {
    c = cluster();
    needsLocalControlPlane(this, 'it compacts etcd and restarts the API server');
    killAllOperators();
    await c.resetPolicy();
    ns = `faults-410-${c.runId}`;
    await c.ensureNamespace(ns);
    receiver = await Receiver.start();
    op = new OperatorProcess(c.kubeconfigPath);
    await op.started();
    await applyOk(c, policyYaml({ categories: { controlPlane: { intervalSeconds: 10 } }, export: { sinks: [{ name: 'regional', type: 'http', url: receiver.url(), region: REGION }] } }));
    await readyAtGeneration(c);
    churn = new Churn({ transport: new KubeClient(c.kc), random: seeded(SEED + 103), namespace: ns, secretNamespace: 'dcp-system', prefix: `faults-410-${c.runId}`, label: { [RUN_LABEL]: c.runId } });
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
      await c.kubectl(['-n', 'dcp-system', 'delete', 'secret', `faults-410-${c.runId}-tls`, '--ignore-not-found']);
    }
  });

  it(`relists and equals a fresh list after each of ${ROUNDS} compactions (seed ${SEED})`, async function () {
    churn.start();
    let maxRecoveryMs = 0;
    let maxRssMb = 0;
    let maxSockets = 0;
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
      await recovery(c, op, 60_000);
      maxRecoveryMs = Math.max(maxRecoveryMs, Date.now() - restartedAt);
      // The pods watch could not resume from its resourceVersion: it listed again.
      await waitFor(async () => ((await op.metric('dcp_watch_relists_total', 'resource="pods"')) ?? 0) > relistsBefore, 30_000, `a relist of pods after compaction ${round}`);
      const v = vitals(op.child.pid ?? 0);
      maxRssMb = Math.max(maxRssMb, v.rssMb);
      maxSockets = Math.max(maxSockets, v.sockets);
      churn.resume();
    }
    await churn.stop();
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
    const delivered = receiver.ids().size;
    report({
      scenario: 'etcd-compaction',
      rounds: ROUNDS,
      faults: ROUNDS,
      churn: churn.total,
      churnFailed: churn.counts.failed,
      events: stored.size,
      delivered,
      lost: lost.length,
      duplicated: receiver.events().length - delivered,
      maxRecoveryMs,
      maxRssMb,
      maxSockets,
    });
    expect(lost, 'stored events the sink never accepted').to.deep.equal([]);
  });
});
