// Inventory, host OS events and the device key against the real API server, with Nodes and Pods created as API objects.
import { expect } from 'chai';
import type { PolicySpec } from '../../src/api/policy.js';
import { parsePolicy } from '../../src/api/validation.js';
import { getOrCreateDeviceKey } from '../../src/collectors/device-key.js';
import { HostOsCollector } from '../../src/collectors/host-os.js';
import { InventoryCollector } from '../../src/collectors/inventory.js';
import { projectNode, projectPod, type NamespaceProjection, type NodeProjection, type PodProjection } from '../../src/collectors/projections.js';
import { KubeClient } from '../../src/kube/client.js';
import { objectKey } from '../../src/kube/resource.js';
import type { DcpEvent } from '../../src/api/event.js';
import { DenySet, PiiGuard } from '../../src/pipeline/guard.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { Store } from '../../src/runtime/store.js';
import { cluster, needsLocalControlPlane, RUN_LABEL } from './harness.js';

async function until(what: string, cond: () => boolean | Promise<boolean>, limitMs = 60_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function spec(): PolicySpec {
  return parsePolicy({
    apiVersion: 'datacollection.arc.io/v1alpha1',
    kind: 'DataCollectionPolicy',
    metadata: { name: 'default' },
    spec: { subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001', region: 'swedencentral' },
  }).spec;
}

describe('collectors: inventory and host OS on the local control plane', function () {
  this.timeout(180_000);
  let client: KubeClient;
  let kubeSystem: NamespaceProjection;
  let namespace: string;
  let selector: string;
  const nodes = new Store<NodeProjection>();
  const pods = new Store<PodProjection>();

  const syncNodes = async (): Promise<void> => {
    const list = (await client.json({ path: '/api/v1/nodes', query: { labelSelector: selector } })) as { items: unknown[] };
    const next = new Map<string, NodeProjection>();
    for (const item of list.items) {
      const key = objectKey(item);
      const p = projectNode(item);
      if (key !== undefined && p !== undefined) next.set(key, p);
    }
    nodes.replace(next);
  };
  const syncPods = async (): Promise<void> => {
    const list = (await client.json({ path: `/api/v1/namespaces/${namespace}/pods` })) as { items: unknown[] };
    const next = new Map<string, PodProjection>();
    for (const item of list.items) {
      const key = objectKey(item);
      const p = projectPod(item);
      if (key !== undefined && p !== undefined) next.set(key, p);
    }
    pods.replace(next);
  };

  before(async function () {
    const c = cluster();
    client = new KubeClient(c.kc);
    namespace = `dcp-inventory-${c.runId}`;
    selector = `${RUN_LABEL}=${c.runId},dcp-e2e=inventory`;
    await c.ensureNamespace(namespace);
    kubeSystem = await c.kubeSystem();
  });

  after(async function () {
    const c = cluster();
    await c.kubectl(['delete', 'namespace', namespace, '--wait=false']);
    await c.kubectl(['delete', 'nodes', '-l', selector, '--wait=false']);
  });

  it('creates the device key once, and every replica racing for it gets the same key', async function () {
    const keys = await Promise.all([1, 2, 3].map(() => getOrCreateDeviceKey({ transport: client, namespace })));
    expect(keys[0]?.length).to.equal(32);
    for (const k of keys) expect(k.equals(keys[0] ?? Buffer.alloc(0))).to.equal(true);
    const again = await getOrCreateDeviceKey({ transport: client, namespace });
    expect(again.equals(keys[0] ?? Buffer.alloc(0))).to.equal(true);
    expect(await cluster().kubectlOk(['-n', namespace, 'get', 'secret', 'dcp-device-key', '-o', 'jsonpath={.immutable}'])).to.equal('true');
  });

  it('counts Nodes, Pods and vCores as they are created, updated and deleted', async function () {
    needsLocalControlPlane(this, 'kwok plays the kubelet: the Pods turn Running');
    const c = cluster();
    const name = (s: string): string => `inv-${c.runId}-${s}`;
    const labels = { 'dcp-e2e': 'inventory' };
    await c.createNodes([
      { name: name('a'), cpu: '4', labels },
      { name: name('b'), cpu: '2', labels },
      { name: name('c'), cpu: '1500m', labels },
    ]);
    await c.createPods([0, 1, 2, 3, 4].map((i) => ({ name: `p${i}`, namespace, nodeName: name('a') })));
    await syncNodes();
    await syncPods();
    const clock = new ManualClock(Date.parse('2026-06-01T00:00:00Z'));
    const events: DcpEvent[] = [];
    const inventory = new InventoryCollector({
      nodes,
      pods,
      kubeSystem,
      spec: spec(),
      clock,
      emit: async (e) => {
        events.push(...e);
        await Promise.resolve();
      },
    });
    const ctl = new AbortController();
    const done = inventory.run(ctl.signal);
    await settle();
    expect(inventory.snapshot()).to.deep.include({ nodes: 3, pods: 5, vCores: 7.5 });

    // kwok plays the kubelet: the Pods turn Running.
    await until('the Pods to run', async () => {
      await syncPods();
      return inventory.snapshot().podsByPhase.Running === 5;
    });
    await c.kubectlOk(['delete', 'node', name('b'), '--wait=true']);
    await c.kubectlOk(['-n', namespace, 'delete', 'pod', 'p0', 'p1', '--wait=false', '--grace-period=0', '--force']);
    await c.kubectlOk(['patch', 'node', name('c'), '--subresource=status', '--type=merge', '-p', '{"status":{"capacity":{"cpu":"16"}}}']);
    await until('the changes to show', async () => {
      await syncNodes();
      await syncPods();
      const s = inventory.snapshot();
      return s.nodes === 2 && s.pods === 3 && s.vCores === 20;
    });
    clock.advance(2_000);
    await settle();
    ctl.abort();
    await done;
    const last = events[events.length - 1];
    expect(last?.data).to.deep.include({ nodes: 2, pods: 3, vCores: 20, clusterCreationTimestamp: kubeSystem.creationTimestamp });
    for (const e of events) expect(validateEvent(e).ok).to.equal(true);
  });

  it('reports host OS facts of real Nodes without their UUID, name or other label values', async function () {
    const c = cluster();
    const name = `hostos-${c.runId}-node`;
    await c.createNodes([
      {
        name,
        cpu: '8',
        instanceType: 'Standard_E8s_v5',
        labels: { 'dcp-e2e': 'inventory', 'cost-center': 'cc-payroll-7731', 'owner': 'erin.smith' },
        nodeInfo: { systemUUID: '7A1B2C3D-4E5F-4061-8273-9A8B7C6D5E4F', osImage: 'Azure Linux 3.0', kernelVersion: '6.6.58-1.azl3' },
      },
    ]);
    await syncNodes();
    const clock = new ManualClock(Date.parse('2026-06-01T00:00:00Z'));
    const events: DcpEvent[] = [];
    const denySet = new DenySet();
    const hostOs = new HostOsCollector({
      nodes,
      kubeSystem,
      spec: spec(),
      clock,
      denySet,
      deviceKey: (signal) => getOrCreateDeviceKey({ transport: client, namespace, signal }),
      emit: async (e) => {
        events.push(...e);
        await Promise.resolve();
      },
    });
    const ctl = new AbortController();
    const done = hostOs.run(ctl.signal);
    await until('the device key', async () => {
      clock.advance(1_000);
      await settle();
      return events.length > 0;
    });
    ctl.abort();
    await done;
    const mine = events.filter((e) => e.data['osImage'] === 'Azure Linux 3.0');
    expect(mine).to.have.length(1);
    expect(mine[0]?.data).to.deep.include({ model: 'Standard_E8s_v5', kernelVersion: '6.6.58-1.azl3', countryCode: 'SE', cpuCount: 8 });
    const json = JSON.stringify(events);
    for (const f of ['7A1B2C3D', '7a1b2c3d', name, 'hostos-', 'cc-payroll', 'erin', c.runId]) expect(json, f).to.not.contain(f);
    const guard = new PiiGuard({ denySet });
    for (const e of events) {
      expect(validateEvent(e).ok).to.equal(true);
      expect(guard.inspect(e)).to.deep.equal([]);
    }
  });
});
