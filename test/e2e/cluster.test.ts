// Proof the local cluster is whole: scheduler, controller-manager and kwok roll a Deployment out to Running Pods.
import { expect } from 'chai';
import { stringify } from 'yaml';
import { cluster, needsLocalControlPlane, pinnedKubernetesVersion, RUN_LABEL } from './harness.js';

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

  after(async function () {
    const c = cluster();
    await c.kubectl(['delete', 'namespace', ns, '--wait=false']);
    await c.kubectl(['delete', 'nodes', '-l', `${RUN_LABEL}=${c.runId}`, '--wait=false']);
  });
});
