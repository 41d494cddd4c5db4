// Host OS events: one per Node on appearance and on a change of a reported fact, allow-listed, never the raw UUID or name.
import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import type { PolicySpec } from '../../src/api/policy.js';
import { parsePolicy } from '../../src/api/validation.js';
import { denyNodeIdentifiers, deviceIdOf, HostOsCollector, hostOsData, nodeIdentifiers, usableSystemUuid, vmSize } from '../../src/collectors/host-os.js';
import { projectNode, type NamespaceProjection, type NodeProjection } from '../../src/collectors/projections.js';
import { buildEvent } from '../../src/api/envelope.js';
import type { DcpEvent } from '../../src/api/event.js';
import { DenySet, PiiGuard } from '../../src/pipeline/guard.js';
import { cleanStrings } from '../../src/pipeline/clean-text.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { Store } from '../../src/runtime/store.js';
import { settle, startRun } from './collector-run.js';
import { dirt, dirty } from './planted-text.js';

const T0 = Date.parse('2026-03-01T00:00:00.000Z');
const KUBE_SYSTEM: NamespaceProjection = { uid: '0b9c8d7e-0000-4000-8000-000000000001', creationTimestamp: '2025-12-01T08:00:00Z' };
const KEY = Buffer.alloc(32, 7);

function spec(enabled = true): PolicySpec {
  return parsePolicy({
    apiVersion: 'datacollection.arc.io/v1alpha1',
    kind: 'DataCollectionPolicy',
    metadata: { name: 'default' },
    spec: { subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001', region: 'westeurope', categories: { hostOs: { enabled } } },
  }).spec;
}

interface RawNodeOptions {
  uuid?: string;
  ready?: boolean;
  kubelet?: string;
  heartbeat?: string;
  kernel?: string;
  cpu?: string;
}

/** A raw Node as a kubelet reports it, full of values that must never leave the cluster. */
function rawNode(name: string, o: RawNodeOptions = {}): unknown {
  return {
    metadata: {
      name,
      uid: `uid-${name}`,
      labels: {
        'kubernetes.io/hostname': `${name}-host`,
        'node.kubernetes.io/instance-type': 'Standard_D8s_v5',
        'topology.kubernetes.io/zone': 'westeurope-secret-zone-3',
        'owner-email': 'carol.jones',
        'cost-center': 'cc-payroll-7731',
      },
      annotations: { 'note': 'managed by dave' },
    },
    spec: {},
    status: {
      capacity: { cpu: o.cpu ?? '8' },
      allocatable: { cpu: '7800m' },
      addresses: [
        { type: 'InternalIP', address: '10.240.0.17' },
        { type: 'Hostname', address: `${name}-host` },
      ],
      conditions: [
        { type: 'Ready', status: o.ready === false ? 'False' : 'True', lastHeartbeatTime: o.heartbeat ?? '2026-03-01T00:00:00Z' },
        { type: 'MemoryPressure', status: 'False', lastHeartbeatTime: o.heartbeat ?? '2026-03-01T00:00:00Z' },
      ],
      nodeInfo: {
        architecture: 'amd64',
        containerRuntimeVersion: 'containerd://1.7.27',
        kernelVersion: o.kernel ?? '6.8.0-1021-azure',
        kubeletVersion: o.kubelet ?? 'v1.34.4',
        operatingSystem: 'linux',
        osImage: 'Ubuntu 24.04.2 LTS',
        systemUUID: o.uuid ?? 'EC2A1B3C-4D5E-6F70-8192-A3B4C5D6E7F8',
        machineID: 'f00dfeedf00dfeedf00dfeedf00dfeed',
        bootID: 'c0ffee00-0000-4000-8000-000000000000',
      },
    },
  };
}

function project(raw: unknown): NodeProjection {
  const p = projectNode(raw);
  if (p === undefined) throw new Error('not a node');
  return p;
}

class World {
  readonly clock = new ManualClock(T0);
  readonly nodes = new Store<NodeProjection>();
  readonly events: DcpEvent[] = [];
  readonly denySet = new DenySet();
  emitFailures = 0;
  readonly emit = async (events: readonly DcpEvent[]): Promise<void> => {
    await Promise.resolve();
    if (this.emitFailures > 0) {
      this.emitFailures--;
      throw new Error('store down');
    }
    this.events.push(...events);
  };

  constructor(names: string[] = ['aks-system-31415926-vmss000000', 'aks-user-27182818-vmss000001']) {
    this.nodes.replace(new Map(names.map((n, i) => [n, project(rawNode(n, { uuid: `EC2A1B3C-4D5E-6F70-8192-A3B4C5D6E7F${i}` }))])));
  }

  async start(s: PolicySpec = spec(), deviceKey: (signal: AbortSignal) => Promise<Buffer> = () => Promise.resolve(KEY)) {
    const collector = new HostOsCollector({ nodes: this.nodes, kubeSystem: KUBE_SYSTEM, spec: s, emit: this.emit, deviceKey, denySet: this.denySet, clock: this.clock });
    return startRun(collector);
  }

  async advance(ms: number): Promise<void> {
    this.clock.advance(ms);
    await settle();
  }

  update(name: string, o: RawNodeOptions): void {
    this.nodes.upsert(name, project(rawNode(name, o)));
  }
}

describe('collectors: host OS facts', function () {
  it('hashes the systemUUID with the cluster key into the device ID, case-insensitively', function () {
    const n = project(rawNode('n1', { uuid: 'EC2A1B3C-4D5E-6F70-8192-A3B4C5D6E7F8' }));
    const expected = createHmac('sha256', KEY).update('ec2a1b3c-4d5e-6f70-8192-a3b4c5d6e7f8').digest('hex');
    expect(deviceIdOf(KEY, n)).to.equal(expected).and.to.match(/^[0-9a-f]{64}$/);
    expect(deviceIdOf(KEY, project(rawNode('n1', { uuid: 'ec2a1b3c-4d5e-6f70-8192-a3b4c5d6e7f8' })))).to.equal(expected);
    expect(deviceIdOf(Buffer.alloc(32, 8), n)).to.not.equal(expected);
  });

  it('gives two Nodes without a systemUUID different device IDs, from their object UIDs', function () {
    const a = project(rawNode('a', { uuid: '' }));
    const b = project(rawNode('b', { uuid: '' }));
    expect(deviceIdOf(KEY, a)).to.not.equal(deviceIdOf(KEY, b));
  });

  // Firmware without a UUID reports zeros, F's, the SMBIOS sample or a BIOS string; many machines then share it.
  const PLACEHOLDERS = [
    '',
    '   ',
    '00000000-0000-0000-0000-000000000000',
    'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    '{00000000-0000-0000-0000-000000000000}',
    '11111111-1111-1111-1111-111111111111',
    '03000200-0400-0500-0006-000700080009',
    'Not Settable',
    'To Be Filled By O.E.M.',
    'Default string',
    'None',
    'Unknown',
  ];

  it('treats empty, blank, all-zero, all-F, sample and BIOS-default systemUUIDs as absent', function () {
    for (const p of PLACEHOLDERS) expect(usableSystemUuid(p), JSON.stringify(p)).to.equal(undefined);
    expect(usableSystemUuid(' EC2A1B3C-4D5E-6F70-8192-A3B4C5D6E7F8 ')).to.equal('ec2a1b3c-4d5e-6f70-8192-a3b4c5d6e7f8');
    expect(usableSystemUuid('ec2a1b3c4d5e6f708192a3b4c5d6e7f8')).to.equal('ec2a1b3c4d5e6f708192a3b4c5d6e7f8');
  });

  it('never lets a placeholder systemUUID into the deny set, where it would redact words like "Unknown"', function () {
    for (const p of PLACEHOLDERS) expect(nodeIdentifiers('n1', project(rawNode('n1', { uuid: p })))).to.deep.equal(['n1', 'n1-host']);
  });

  it('gives no two HostOsInfo records of different Nodes one device ID when their systemUUIDs are missing or placeholders', async function () {
    // 13 placeholder kinds × 8 Nodes each, plus Nodes that report no nodeInfo at all.
    const names: string[] = [];
    const w = new World([]);
    PLACEHOLDERS.forEach((uuid, i) => {
      for (let j = 0; j < 8; j++) {
        const name = `pool${i}-vmss${String(j).padStart(6, '0')}`;
        names.push(name);
        w.nodes.upsert(name, project(rawNode(name, { uuid })));
      }
    });
    for (let j = 0; j < 8; j++) {
      const name = `bare-${j}`;
      names.push(name);
      w.nodes.upsert(name, project({ metadata: { name, uid: `uid-${name}` }, status: {} }));
    }
    const r = await w.start();
    await w.advance(1_000);
    await r.stop();
    expect(w.events).to.have.length(names.length);
    const ids = new Set(w.events.map((e) => e.data['deviceId']));
    expect(ids.size).to.equal(names.length);
    for (const e of w.events) expect(validateEvent(e).ok).to.equal(true);
    // And none of them is the hash every Node without a UUID used to get.
    const hashOfNothing = createHmac('sha256', KEY).update('').digest('hex');
    expect([...ids]).to.not.include(hashOfNothing);
  });

  it('reports an osImage full of control characters and escape sequences as one clean line', function () {
    const raw = rawNode('n1') as { status: { nodeInfo: Record<string, string> } };
    raw.status.nodeInfo['osImage'] = 'Ubuntu\u0001\u0002\u001b[31mred\u001b[0m\r\nInjected: yes';
    const data = hostOsData(project(raw), 'ab'.repeat(32), 'NL');
    expect(data.osImage).to.equal('Ubuntured Injected: yes');
  });

  it('reports valid, clean facts whatever a kubelet plants in nodeInfo (property)', function () {
    const field = fc.constantFrom('osImage', 'kernelVersion', 'operatingSystem', 'architecture', 'containerRuntimeVersion');
    fc.assert(
      fc.property(fc.array(fc.tuple(field, fc.oneof(dirty, fc.string({ maxLength: 300, unit: 'binary' }), dirt)), { minLength: 1, maxLength: 5 }), (plants) => {
        const raw = rawNode('n1') as { status: { nodeInfo: Record<string, string> } };
        for (const [f, v] of plants) raw.status.nodeInfo[f] = v;
        const data = hostOsData(project(raw), 'ab'.repeat(32), 'NL');
        const event = buildEvent({ name: 'HostOsInfo', cluster: { id: KUBE_SYSTEM.uid, region: 'westeurope', subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001' }, time: new Date(T0), sourceKey: 'n', data });
        // Valid as built: the collector cleans, the ingest's own cleaning has nothing left to do.
        return validateEvent(event).ok && cleanStrings(event) === event;
      }),
      { numRuns: 1000 },
    );
  });

  it('reports the allow-listed facts and flags of a Node', function () {
    const data = hostOsData(project(rawNode('n1', { ready: false, cpu: '3500m' })), 'ab'.repeat(32), 'NL');
    expect(data).to.deep.equal({
      osName: 'linux',
      osImage: 'Ubuntu 24.04.2 LTS',
      kernelVersion: '6.8.0-1021-azure',
      architecture: 'amd64',
      model: 'Standard_D8s_v5',
      deviceId: 'ab'.repeat(32),
      countryCode: 'NL',
      cpuCount: 3,
      ready: false,
      unschedulable: false,
      memoryPressure: false,
      diskPressure: false,
      pidPressure: false,
      containerRuntimeVersion: 'containerd://1.7.27',
    });
  });

  // Azure Linux 3 kernels are versioned like 6.6.64.2-9.azl3: a dotted quad the guard must not take for an IPv4 address.
  it('reports an Azure Linux kernel version the PII guard admits', function () {
    const node = project({
      metadata: { name: 'aks-azl-0', uid: 'u-azl' },
      status: { nodeInfo: { kernelVersion: '6.6.64.2-9.azl3', osImage: 'Azure Linux 3.0', operatingSystem: 'linux', architecture: 'amd64' } },
    });
    const data = hostOsData(node, 'ab'.repeat(32), 'US');
    expect(data.kernelVersion).to.equal('6.6.64.2-9.azl3');
    const event = buildEvent({ name: 'HostOsInfo', cluster: { id: 'c', region: 'eastus', subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001' }, time: new Date(0), sourceKey: 'n', data });
    expect(new PiiGuard().inspect(event)).to.deep.equal([]);
  });

  it('fills facts a Node does not report with "unknown", as the schema wants non-empty text', function () {
    const data = hostOsData(project({ metadata: { name: 'bare', uid: 'u' } }), 'ab'.repeat(32), 'US');
    expect(data.osImage).to.equal('unknown');
    expect(data.model).to.equal('unknown');
    expect(data).to.not.have.property('containerRuntimeVersion');
  });
});

describe('collectors: host OS collector', function () {
  it('emits one HostOsInfo per Node once it starts, valid and admitted by the PII guard', async function () {
    const w = new World();
    const r = await w.start();
    await w.advance(1_000);
    expect(w.events).to.have.length(2);
    const guard = new PiiGuard({ denySet: w.denySet });
    for (const e of w.events) {
      expect(validateEvent(e)).to.deep.equal({ ok: true, event: e });
      expect(guard.inspect(e)).to.deep.equal([]);
      expect(e).to.deep.include({ category: 'hostOs', name: 'HostOsInfo', classification: 'non-personal' });
      expect(e.data['countryCode']).to.equal('NL');
    }
    await r.stop();
  });

  it('never serializes the raw systemUUID, the node name, hostnames, addresses or any label value beyond the instance type', async function () {
    const w = new World();
    const r = await w.start();
    await w.advance(1_000);
    w.update('aks-system-31415926-vmss000000', { ready: false, uuid: 'EC2A1B3C-4D5E-6F70-8192-A3B4C5D6E7F0' });
    await w.advance(1_000);
    await r.stop();
    expect(w.events).to.have.length(3);
    const json = JSON.stringify(w.events);
    const forbidden = [
      'EC2A1B3C',
      'ec2a1b3c',
      '4D5E-6F70',
      'aks-system-31415926',
      'aks-user-27182818',
      'vmss000000',
      '-host',
      '10.240.0.17',
      'westeurope-secret-zone',
      'carol',
      'cc-payroll',
      'dave',
      'f00dfeed',
      'c0ffee00',
      'uid-aks',
    ];
    for (const f of forbidden) expect(json, f).to.not.contain(f);
    expect(json).to.contain('Standard_D8s_v5');
  });

  it('denies node names, hostnames and raw UUIDs to the PII guard before any event about the Node', async function () {
    const w = new World();
    const r = await w.start();
    const guard = new PiiGuard({ denySet: w.denySet });
    const leak = buildEvent({
      name: 'HostError',
      cluster: { id: KUBE_SYSTEM.uid, region: 'westeurope', subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001' },
      time: new Date(T0),
      sourceKey: 'x',
      data: { reason: 'KubeletDown', message: 'kubelet on aks-user-27182818-vmss000001-host stopped', count: 1, component: 'kubelet' },
    });
    expect(guard.admit(leak)).to.equal(false);
    await r.stop();
    // The standalone registration does the same for replicas that do not run the collector.
    const other = new DenySet();
    const unsubscribe = denyNodeIdentifiers(w.nodes, other);
    expect(new PiiGuard({ denySet: other }).admit(leak)).to.equal(false);
    w.update('late-node-42', {});
    expect(other.matches('late-node-42 went away')).to.equal(true);
    unsubscribe();
  });

  it('ignores heartbeats and changes of facts it does not report', async function () {
    const w = new World();
    const r = await w.start();
    await w.advance(1_000);
    const before = w.events.length;
    const name = 'aks-user-27182818-vmss000001';
    const uuid = 'EC2A1B3C-4D5E-6F70-8192-A3B4C5D6E7F1';
    w.update(name, { uuid, heartbeat: '2026-03-01T00:00:40Z' });
    w.update(name, { uuid, kubelet: 'v1.34.5' });
    await w.advance(5_000);
    expect(w.events).to.have.length(before);
    await r.stop();
  });

  it('emits once for a burst of changes to a Node, with the latest facts', async function () {
    const w = new World();
    const r = await w.start();
    await w.advance(1_000);
    w.events.length = 0;
    const name = 'aks-user-27182818-vmss000001';
    const uuid = 'EC2A1B3C-4D5E-6F70-8192-A3B4C5D6E7F1';
    w.update(name, { uuid, ready: false });
    w.update(name, { uuid, ready: false, kernel: '6.8.0-1022-azure' });
    await w.advance(1_000);
    expect(w.events).to.have.length(1);
    expect(w.events[0]?.data).to.deep.include({ ready: false, kernelVersion: '6.8.0-1022-azure' });
    await r.stop();
  });

  it('reports a flap back to earlier facts as a new event with a new id', async function () {
    const w = new World(['n1']);
    const r = await w.start();
    await w.advance(1_000);
    w.update('n1', { uuid: 'EC2A1B3C-4D5E-6F70-8192-A3B4C5D6E7F0', ready: false });
    await w.advance(1_000);
    w.update('n1', { uuid: 'EC2A1B3C-4D5E-6F70-8192-A3B4C5D6E7F0', ready: true });
    await w.advance(1_000);
    expect(w.events.map((e) => e.data['ready'])).to.deep.equal([true, false, true]);
    expect(new Set(w.events.map((e) => e.id)).size).to.equal(3);
    await r.stop();
  });

  it('forgets a deleted Node and reports it again when it comes back', async function () {
    const w = new World(['n1']);
    const r = await w.start();
    await w.advance(1_000);
    w.nodes.delete('n1');
    await w.advance(1_000);
    expect(w.events).to.have.length(1);
    w.update('n1', { uuid: 'EC2A1B3C-4D5E-6F70-8192-A3B4C5D6E7F0' });
    await w.advance(1_000);
    expect(w.events).to.have.length(2);
    await r.stop();
  });

  it('stops at once when disabled, and reports every Node again when enabled', async function () {
    const w = new World();
    const r = await w.start();
    await w.advance(1_000);
    r.collector.reconfigure(spec(false));
    w.update('aks-user-27182818-vmss000001', { ready: false });
    await w.advance(60_000);
    expect(w.events).to.have.length(2);
    r.collector.reconfigure(spec(true));
    await w.advance(1_000);
    expect(w.events).to.have.length(4);
    await r.stop();
  });

  it('does not emit what was changed and then disabled before the batch went out', async function () {
    const w = new World();
    const r = await w.start();
    r.collector.reconfigure(spec(false));
    await w.advance(10_000);
    expect(w.events).to.have.length(0);
    await r.stop();
  });

  it('retries a batch the event store refused', async function () {
    const w = new World();
    w.emitFailures = 1;
    const r = await w.start();
    await w.advance(1_000);
    expect(w.events).to.have.length(0);
    await w.advance(60_000);
    expect(w.events).to.have.length(2);
    await r.stop();
  });

  it('waits for the device key, retrying, before it reports anything', async function () {
    const w = new World();
    let calls = 0;
    const r = await w.start(spec(), async () => {
      calls++;
      await Promise.resolve();
      if (calls < 3) throw new Error('API server unavailable');
      return KEY;
    });
    await w.advance(1_000);
    expect(w.events).to.have.length(0);
    for (let i = 0; i < 10 && w.events.length === 0; i++) await w.advance(30_000);
    expect(calls).to.equal(3);
    expect(w.events).to.have.length(2);
    await r.stop();
  });

  it('leaves no timer behind when stopped', async function () {
    const w = new World();
    const r = await w.start();
    w.update('aks-user-27182818-vmss000001', { ready: false });
    await r.stop();
    expect(w.clock.pending).to.equal(0);
  });
});

describe('collectors: the VM size allow-list', function () {
  it('keeps instance types shaped like VM sizes and drops anything else', function () {
    for (const size of ['Standard_D4s_v5', 'm5.large', 'n2-standard-4', 'Standard_E16s_v5']) expect(vmSize(size)).to.equal(size);
    for (const other of ['jane.doe', 'ops-team', '', 'a b 1', 'x'.repeat(80) + '1']) expect(vmSize(other)).to.equal('');
    expect(vmSize(undefined)).to.equal('');
  });
});
