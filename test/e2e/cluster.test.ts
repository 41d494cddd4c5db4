// Proof the local cluster is whole: the pinned release, scheduler, controller-manager and kwok roll a Deployment out
// to Running Pods; clusters started at the same moment do not collide.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { cluster, clusterDir, clusterSh, KUBECTL, needsLocalControlPlane, pinnedKubernetesVersion, ROOT, RUN_LABEL } from './harness.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the local cluster', function () {
  const ns = 'rollout';

  it('reports the pinned release (hack/cluster go.mod of K8S_VERSION) for kubectl and the API server', async function () {
    needsLocalControlPlane(this, 'checks the pinned local binaries');
    const out = JSON.parse(await cluster().kubectlOk(['version', '-o', 'json'])) as {
      clientVersion: { gitVersion: string };
      serverVersion: { gitVersion: string };
    };
    expect(out.clientVersion.gitVersion).to.equal(pinnedKubernetesVersion());
    expect(out.serverVersion.gitVersion).to.equal(pinnedKubernetesVersion());
  });

  it('rolls a Deployment out to Running Pods on kwok Nodes', async function () {
    needsLocalControlPlane(this, 'kwok plays the kubelet');
    const c = cluster();
    await c.createNodes([
      { name: `rollout-${c.runId}-a`, instanceType: 'Standard_D4s_v5' },
      { name: `rollout-${c.runId}-b`, instanceType: 'Standard_D4s_v5' },
    ]);
    await c.ensureNamespace(ns);
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: ns, labels: { [RUN_LABEL]: c.runId } },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web', [RUN_LABEL]: c.runId } },
          spec: {
            nodeSelector: { [RUN_LABEL]: c.runId },
            containers: [{ name: 'web', image: 'registry.example/web:1' }],
            tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
          },
        },
      },
    };
    const applied = await c.apply(stringify(deployment));
    expect(applied.code, applied.stderr).to.equal(0);
    await c.kubectlOk(['-n', ns, 'rollout', 'status', 'deployment/web', '--timeout=90s']);
    const phases = await c.kubectlOk(['-n', ns, 'get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[*].status.phase}']);
    expect(phases.split(' ')).to.deep.equal(['Running', 'Running', 'Running']);
    const nodes = await c.kubectlOk(['-n', ns, 'get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[*].spec.nodeName}']);
    for (const node of nodes.split(' ')) expect(node).to.match(new RegExp(`^rollout-${c.runId}-[ab]$`));
  });

  it('starts two clusters created at the same moment on different ports, and stop returns once the components have exited', async function () {
    needsLocalControlPlane(this, 'starts clusters of its own');
    const names = ['a', 'b'].map((x) => `dcp-e2e-pair-${cluster().runId}-${x}`);
    const kubeconfigs = names.map((n) => join(ROOT, '.dev/e2e', `${n}.kubeconfig`));
    try {
      const ups = await Promise.all(names.map((n, i) => clusterSh(['up', n, kubeconfigs[i]!])));
      for (const up of ups) expect(up.code, up.stderr).to.equal(0);
      const servers = kubeconfigs.map((k) => (parse(readFileSync(k, 'utf8')) as { clusters: { cluster: { server: string } }[] }).clusters[0]!.cluster.server);
      expect(new Set(servers).size, servers.join(' ')).to.equal(2);
      for (const k of kubeconfigs) execFileSync(KUBECTL, ['--kubeconfig', k, 'get', '--raw', '/readyz']);

      const pidsDir = join(clusterDir(names[0]!), 'pids');
      const pids = readdirSync(pidsDir).map((f) => Number(readFileSync(join(pidsDir, f), 'utf8')));
      expect(pids.length).to.be.greaterThan(3);
      const stop = await clusterSh(['stop', names[0]!]);
      expect(stop.code, stop.stderr).to.equal(0);
      expect(pids.filter(alive), 'components still running after stop').to.deep.equal([]);
    } finally {
      for (const n of names) await clusterSh(['down', n]);
      for (const k of kubeconfigs) rmSync(k, { force: true });
    }
  });

  after(async function () {
    const c = cluster();
    await c.kubectl(['delete', 'namespace', ns, '--wait=false']);
    await c.kubectl(['delete', 'nodes', '-l', `${RUN_LABEL}=${c.runId}`, '--wait=false']);
  });
});
