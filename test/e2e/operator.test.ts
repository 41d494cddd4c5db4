// `dcp run` as a process against the real API server: status, inventory, restarts, 410, leader election, SIGTERM.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { cluster, needsLocalControlPlane, ROOT, RUN_LABEL, type TestCluster } from './harness.js';
import { killAllOperators, OperatorProcess, waitFor } from './operator-process.js';

interface PolicyView {
  metadata: { generation: number };
  spec: Record<string, unknown>;
  status?: {
    observedGeneration?: number;
    conditions?: Array<{ type: string; status: string; reason: string; observedGeneration?: number }>;
    inventory?: { nodes: number; pods: number; vCores: number };
  };
}

const SAMPLE = readFileSync(join(ROOT, 'deploy/samples/default-policy.yaml'), 'utf8');

async function getPolicy(c: TestCluster): Promise<PolicyView | undefined> {
  const r = await c.kubectl(['get', 'dcp', 'default', '-o', 'json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as PolicyView) : undefined;
}

const condition = (p: PolicyView | undefined, type: string) => p?.status?.conditions?.find((c) => c.type === type);

async function readyAtGeneration(c: TestCluster): Promise<PolicyView> {
  let last: PolicyView | undefined;
  await waitFor(
    async () => {
      last = await getPolicy(c);
      return last !== undefined && last.status?.observedGeneration === last.metadata.generation && condition(last, 'Ready')?.status === 'True' && condition(last, 'Ready')?.observedGeneration === last.metadata.generation;
    },
    30_000,
    'the policy to be Ready at its generation',
  );
  if (!last) throw new Error('unreachable');
  return last;
}

async function count(c: TestCluster, resource: 'nodes' | 'pods'): Promise<number> {
  const out = await c.kubectlOk(['get', resource, ...(resource === 'pods' ? ['-A'] : []), '-o', 'name']);
  return out.split('\n').filter((l) => l.trim() !== '').length;
}

/** Waits until the operator's Pod and Node counts equal a fresh list from the API server. */
async function countsMatchFreshList(c: TestCluster, op: OperatorProcess): Promise<void> {
  let seen = '';
  await waitFor(
    async () => {
      const [pods, nodes, mPods, mNodes] = await Promise.all([count(c, 'pods'), count(c, 'nodes'), op.metric('dcp_inventory_pods'), op.metric('dcp_inventory_nodes')]);
      seen = `api: ${pods} pods ${nodes} nodes; operator: ${mPods} pods ${mNodes} nodes`;
      return pods === mPods && nodes === mNodes;
    },
    45_000,
    `operator counts to equal a fresh list (${seen})`,
    250,
  ).catch((err: unknown) => {
    throw new Error(`${String(err)} — last seen ${seen}`);
  });
}

describe('dcp run against the local control plane', function () {
  this.timeout(180_000);
  let c: TestCluster;
  let kubeconfig: string;
  const podsNs = 'operator-e2e';

  before(async function () {
    c = cluster();
    kubeconfig = c.kubeconfigPath;
    await c.resetPolicy();
    await c.ensureNamespace(podsNs);
    await c.createNodes([
      { name: `op-${c.runId}-a`, cpu: '4', instanceType: 'Standard_D4s_v5' },
      { name: `op-${c.runId}-b`, cpu: '8', instanceType: 'Standard_D8s_v5' },
    ]);
  });

  afterEach(function () {
    killAllOperators();
  });

  after(async function () {
    await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
    await c.kubectl(['delete', 'namespace', podsNs, '--wait=false']);
    await c.kubectl(['delete', 'nodes', '-l', `${RUN_LABEL}=${c.runId}`, '--wait=false']);
  });

  it('idles with no policy, then gets the policy Ready at its generation after apply and after each edit', async function () {
    const op = new OperatorProcess(kubeconfig);
    await op.started();
    await waitFor(() => op.ready(), 20_000, 'readyz');
    expect(op.hasLog('collection started')).to.equal(false);

    expect((await c.apply(SAMPLE)).code).to.equal(0);
    const first = await readyAtGeneration(c);
    expect(first.metadata.generation).to.equal(1);
    expect(condition(first, 'Accepted')?.status).to.equal('True');
    expect(condition(first, 'RegionEnforced')?.status).to.equal('True');

    await c.kubectlOk(['patch', 'dcp', 'default', '--type=merge', '-p', '{"spec":{"retention":{"rawDays":20}}}']);
    const second = await readyAtGeneration(c);
    expect(second.metadata.generation).to.equal(2);

    await c.kubectlOk(['patch', 'dcp', 'default', '--type=merge', '-p', '{"spec":{"categories":{"controlPlane":{"intervalSeconds":30}}}}']);
    const third = await readyAtGeneration(c);
    expect(third.metadata.generation).to.equal(3);
    await waitFor(async () => condition(await getPolicy(c), 'RetentionEnforced')?.status === 'True', 20_000, 'RetentionEnforced');

    const events = await c.kubectlOk(['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.kind=DataCollectionPolicy', '-o', 'jsonpath={.items[*].reason}']);
    expect(events.split(' ')).to.include.members(['Accepted', 'Ready']);
  });

  it('mirrors Node and Pod counts in status.inventory and /metrics as they change', async function () {
    const op = new OperatorProcess(kubeconfig);
    await op.started();
    await c.apply(SAMPLE);
    await readyAtGeneration(c);
    await c.createPods(Array.from({ length: 6 }, (_, i) => ({ name: `inv-${i}`, namespace: podsNs, nodeName: `op-${c.runId}-a` })));
    await countsMatchFreshList(c, op);
    await c.kubectlOk(['-n', podsNs, 'delete', 'pod', 'inv-0', 'inv-1', '--wait=false']);
    await countsMatchFreshList(c, op);
    const pods = await count(c, 'pods');
    await waitFor(async () => (await getPolicy(c))?.status?.inventory?.pods === pods, 20_000, 'status.inventory.pods');
    const row = await c.kubectlOk(['get', 'dcp', 'default', '--no-headers']);
    const nodes = await count(c, 'nodes');
    expect(row.split(/\s+/)[4]).to.equal(String(nodes));
  });

  it('ends with counts equal to a fresh list after an API-server restart and after a forced 410', async function () {
    needsLocalControlPlane(this, 'restarts the API server and compacts etcd');
    const op = new OperatorProcess(kubeconfig);
    await op.started();
    await c.apply(SAMPLE);
    await readyAtGeneration(c);
    await countsMatchFreshList(c, op);

    await c.restartApiServer(2000);
    await c.createPods([{ name: 'after-restart', namespace: podsNs, nodeName: `op-${c.runId}-b` }]);
    await countsMatchFreshList(c, op);
    expect(await op.metric('dcp_watch_restarts_total', 'resource="pods"')).to.be.greaterThan(0);

    const relistsBefore = (await op.metric('dcp_watch_relists_total', 'resource="pods"')) ?? 0;
    await c.kubectlOk(['-n', podsNs, 'delete', 'pod', 'after-restart', '--wait=false']);
    await countsMatchFreshList(c, op);
    // Changes the operator does not watch move etcd past every resourceVersion it holds; then compact.
    for (let i = 0; i < 3; i++) await c.kubectlOk(['-n', podsNs, 'create', 'configmap', `bump-${Date.now()}-${i}`]);
    await c.compactEtcd();
    await c.createPods([{ name: 'after-compaction', namespace: podsNs, nodeName: `op-${c.runId}-b` }]);
    await countsMatchFreshList(c, op);
    // One Pod deleted and one created: the counts can match before the watch is back, so wait for its relist.
    const relisted = async (): Promise<boolean> => ((await op.metric('dcp_watch_relists_total', 'resource="pods"')) ?? 0) > relistsBefore;
    await waitFor(relisted, 30_000, 'a relist of pods after the compaction');
    await countsMatchFreshList(c, op);
    await readyAtGeneration(c);
  });

  it('elects one leader among two replicas, and a standby takes over within the lease duration when the leader is killed', async function () {
    const lease = ['--leader-elect', '--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '1s'];
    const a = new OperatorProcess(kubeconfig, lease);
    const b = new OperatorProcess(kubeconfig, lease);
    await Promise.all([a.started(), b.started()]);
    await c.apply(SAMPLE);
    const leaderOf = async (): Promise<OperatorProcess[]> => {
      const flags = await Promise.all([a, b].map(async (p) => (p.exitCode === undefined ? await p.metric('dcp_leader_is_leader') : 0)));
      return [a, b].filter((_, i) => flags[i] === 1);
    };
    await waitFor(async () => (await leaderOf()).length === 1, 20_000, 'one leader');
    const [leader] = await leaderOf();
    const standby = leader === a ? b : a;
    if (!leader) throw new Error('unreachable');
    expect(standby.hasLog('leading: starting collection')).to.equal(false);
    await readyAtGeneration(c);

    await leader.stop('SIGKILL');
    const killedAt = Date.now();
    await waitFor(async () => (await standby.metric('dcp_leader_is_leader')) === 1, 15_000, 'the standby to lead', 100);
    const tookMs = Date.now() - killedAt;
    // The lease is 4 s; the standby notices within one retry period (1 s, with jitter) after it expires.
    expect(tookMs).to.be.lessThan(4000 + 2 * 1000 * 2.2 + 1000);
    await c.createPods([{ name: 'after-handover', namespace: podsNs, nodeName: `op-${c.runId}-a` }]);
    await countsMatchFreshList(c, standby);
    const holder = await c.kubectlOk(['-n', 'dcp-system', 'get', 'lease', 'dcp-operator', '-o', 'jsonpath={.spec.holderIdentity}']);
    expect(holder).to.equal(standby.identity);
  });

  it('exits 0 within a few seconds of SIGTERM and releases the Lease', async function () {
    const op = new OperatorProcess(kubeconfig, ['--leader-elect', '--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '1s']);
    await op.started();
    await c.apply(SAMPLE);
    await waitFor(async () => (await op.metric('dcp_leader_is_leader')) === 1, 20_000, 'leading');
    await readyAtGeneration(c);
    const { code, ms } = await op.stop('SIGTERM');
    expect(code).to.equal(0);
    expect(ms).to.be.lessThan(5000);
    expect(op.hasLog('stopped cleanly')).to.equal(true);
    const holder = await c.kubectlOk(['-n', 'dcp-system', 'get', 'lease', 'dcp-operator', '-o', 'jsonpath={.spec.holderIdentity}']);
    expect(holder).to.equal('');
  });

  it('stops a category within seconds when the policy disables it, and resumes it when enabled again', async function () {
    const op = new OperatorProcess(kubeconfig);
    await op.started();
    await c.apply(SAMPLE);
    await c.kubectlOk(['patch', 'dcp', 'default', '--type=merge', '-p', '{"spec":{"categories":{"controlPlane":{"intervalSeconds":10},"hostOs":{"enabled":true}}}}']);
    await readyAtGeneration(c);
    const emitted = async (category: string): Promise<number> => {
      const p = await getPolicy(c);
      const status = p?.status as { categories?: Record<string, { eventsEmitted?: number; enabled?: boolean }> } | undefined;
      return status?.categories?.[category]?.eventsEmitted ?? 0;
    };
    await waitFor(async () => (await emitted('controlPlane')) > 0 && (await emitted('hostOs')) > 0, 30_000, 'inventory and host OS events');

    await c.kubectlOk(['patch', 'dcp', 'default', '--type=merge', '-p', '{"spec":{"categories":{"controlPlane":{"enabled":false},"hostOs":{"enabled":false}}}}']);
    await readyAtGeneration(c);
    await new Promise((r) => setTimeout(r, 2000));
    const before = { controlPlane: await emitted('controlPlane'), hostOs: await emitted('hostOs') };
    // A new Node is a significant change and a new host: neither may produce an event now.
    await c.createNodes([{ name: `op-${c.runId}-late`, cpu: '2', instanceType: 'Standard_D2s_v5' }]);
    await new Promise((r) => setTimeout(r, 12_000));
    expect(await emitted('controlPlane')).to.equal(before.controlPlane);
    expect(await emitted('hostOs')).to.equal(before.hostOs);
    const policy = await getPolicy(c);
    expect((policy?.status as { categories?: Record<string, { enabled?: boolean }> }).categories?.hostOs?.enabled).to.equal(false);

    await c.kubectlOk(['patch', 'dcp', 'default', '--type=merge', '-p', '{"spec":{"categories":{"controlPlane":{"enabled":true},"hostOs":{"enabled":true}}}}']);
    await waitFor(async () => (await emitted('controlPlane')) > before.controlPlane && (await emitted('hostOs')) > before.hostOs, 30_000, 'events again');
  });

  it('stops collecting when the policy is deleted, and starts again when it returns', async function () {
    const op = new OperatorProcess(kubeconfig);
    await op.started();
    await c.apply(SAMPLE);
    await readyAtGeneration(c);
    await c.kubectlOk(['delete', 'dcp', 'default']);
    await waitFor(() => op.hasLog('collection stopped'), 20_000, 'collection to stop');
    await c.apply(SAMPLE);
    await waitFor(() => op.logs.filter((l) => l.message === 'collection started').length === 2, 20_000, 'collection to start again');
    await readyAtGeneration(c);
  });
});
