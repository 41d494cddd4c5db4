// Projections: CPU quantities parse exactly, and Nodes, Pods and Namespaces reduce to the allow-listed fields.
import { expect } from 'chai';
import { parseCpuQuantity, parseQuantityMillis, projectNamespace, projectNode, projectPod, toMillicores } from '../../src/collectors/projections.js';

function node(overrides: { status?: Record<string, unknown>; spec?: Record<string, unknown>; labels?: Record<string, string> } = {}): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: 'aks-nodepool1-12345678-vmss000000',
      uid: '6f1c1b3e-1111-4222-8333-944455556666',
      resourceVersion: '100',
      labels: {
        'kubernetes.io/hostname': 'aks-nodepool1-12345678-vmss000000',
        'node.kubernetes.io/instance-type': 'Standard_D4s_v5',
        'team': 'payments',
        ...overrides.labels,
      },
      annotations: { 'owner': 'alice@example.com' },
    },
    spec: { podCIDR: '10.244.0.0/24', ...overrides.spec },
    status: {
      capacity: { cpu: '4', memory: '16Gi', pods: '110' },
      allocatable: { cpu: '3860m', memory: '14Gi', pods: '110' },
      addresses: [
        { type: 'InternalIP', address: '10.0.0.4' },
        { type: 'Hostname', address: 'aks-nodepool1-12345678-vmss000000' },
      ],
      conditions: [
        { type: 'MemoryPressure', status: 'False', lastHeartbeatTime: '2026-01-01T00:00:00Z' },
        { type: 'DiskPressure', status: 'True', lastHeartbeatTime: '2026-01-01T00:00:00Z' },
        { type: 'PIDPressure', status: 'False', lastHeartbeatTime: '2026-01-01T00:00:00Z' },
        { type: 'Ready', status: 'True', lastHeartbeatTime: '2026-01-01T00:00:00Z' },
      ],
      nodeInfo: {
        architecture: 'amd64',
        bootID: 'b0d3c0de-0000-4000-8000-000000000000',
        containerRuntimeVersion: 'containerd://1.7.27',
        kernelVersion: '6.8.0-1021-azure',
        kubeProxyVersion: '',
        kubeletVersion: 'v1.34.4',
        machineID: 'abcdef',
        operatingSystem: 'linux',
        osImage: 'Ubuntu 24.04.2 LTS',
        systemUUID: '4C4C4544-0051-3510-8052-B2C04F4E4B32',
      },
      images: [{ names: ['registry.example/app:1'], sizeBytes: 1 }],
      ...overrides.status,
    },
  };
}

describe('collectors: CPU quantities', function () {
  const cases: [string, number][] = [
    ['4', 4],
    ['3500m', 3.5],
    ['1.5', 1.5],
    ['0.1', 0.1],
    ['.5', 0.5],
    ['2.', 2],
    ['+2', 2],
    ['2k', 2000],
    ['1Ki', 1024],
    ['5e-3', 0.005],
    ['1E3', 1000],
    ['100m', 0.1],
    ['250u', 0.001],
    ['1n', 0.001],
    ['0', 0],
  ];
  for (const [q, cores] of cases) {
    it(`reads "${q}" as ${cores} cores`, function () {
      expect(parseCpuQuantity(q)).to.equal(cores);
    });
  }

  it('rounds up to whole millicores as Kubernetes MilliValue does', function () {
    expect(parseQuantityMillis('1.0001')).to.equal(1001);
    expect(parseQuantityMillis('1u')).to.equal(1);
  });

  it('refuses what is not a quantity, a negative CPU, and numbers too large to be exact', function () {
    for (const q of ['', 'abc', '4 cores', '1.2.3', 'm', '1mi', '1e', '--1', '1e999999', '99999999999999999999']) {
      expect(parseCpuQuantity(q), q).to.equal(undefined);
    }
    expect(parseCpuQuantity('-1')).to.equal(undefined);
    expect(parseQuantityMillis('-1')).to.equal(-1000);
    expect(parseCpuQuantity(undefined)).to.equal(undefined);
    expect(parseCpuQuantity({})).to.equal(undefined);
  });

  it('accepts a JSON number as a quantity', function () {
    expect(parseCpuQuantity(8)).to.equal(8);
  });

  it('turns cores back into exact millicores, so sums do not drift', function () {
    let sum = 0;
    for (let i = 0; i < 1000; i++) sum += toMillicores(parseCpuQuantity('0.1') ?? NaN);
    expect(sum).to.equal(100_000);
  });
});

describe('collectors: Node projection', function () {
  it('keeps capacity, allocatable, node info, the instance type, conditions and hostnames', function () {
    expect(projectNode(node())).to.deep.equal({
      uid: '6f1c1b3e-1111-4222-8333-944455556666',
      cpuCapacity: 4,
      cpuAllocatable: 3.86,
      nodeInfo: {
        osImage: 'Ubuntu 24.04.2 LTS',
        kernelVersion: '6.8.0-1021-azure',
        operatingSystem: 'linux',
        architecture: 'amd64',
        containerRuntimeVersion: 'containerd://1.7.27',
        kubeletVersion: 'v1.34.4',
        systemUUID: '4C4C4544-0051-3510-8052-B2C04F4E4B32',
      },
      instanceType: 'Standard_D4s_v5',
      hostnames: ['aks-nodepool1-12345678-vmss000000'],
      ready: true,
      unschedulable: false,
      memoryPressure: false,
      diskPressure: true,
      pidPressure: false,
    });
  });

  it('leaves out every other label, annotation, address and heartbeat', function () {
    const json = JSON.stringify(projectNode(node()));
    for (const absent of ['payments', 'alice', '10.0.0.4', '10.244.0.0', 'lastHeartbeatTime', 'bootID', 'machineID', 'registry.example']) {
      expect(json).to.not.contain(absent);
    }
  });

  it('projects a heartbeat-only update to an equal value, so the cache sees no change', function () {
    const later = node({
      status: {
        conditions: [
          { type: 'MemoryPressure', status: 'False', lastHeartbeatTime: '2026-01-01T00:05:00Z' },
          { type: 'DiskPressure', status: 'True', lastHeartbeatTime: '2026-01-01T00:05:00Z' },
          { type: 'PIDPressure', status: 'False', lastHeartbeatTime: '2026-01-01T00:05:00Z' },
          { type: 'Ready', status: 'True', lastHeartbeatTime: '2026-01-01T00:05:00Z' },
        ],
      },
    });
    expect(projectNode(later)).to.deep.equal(projectNode(node()));
  });

  it('falls back to the beta instance-type label', function () {
    const n = node({ labels: { 'node.kubernetes.io/instance-type': '', 'beta.kubernetes.io/instance-type': 'Standard_B2s' } });
    expect(projectNode(n)?.instanceType).to.equal('Standard_B2s');
  });

  it('reads unschedulable from the spec and defaults allocatable to capacity', function () {
    const n = node({ spec: { unschedulable: true }, status: { allocatable: {} } });
    expect(projectNode(n)?.unschedulable).to.equal(true);
    expect(projectNode(n)?.cpuAllocatable).to.equal(4);
  });

  it('counts a Node with a malformed or missing capacity as 0 cores, not as no Node', function () {
    expect(projectNode(node({ status: { capacity: { cpu: 'lots' } } }))?.cpuCapacity).to.equal(0);
    expect(projectNode(node({ status: { capacity: undefined } }))?.cpuCapacity).to.equal(0);
  });

  it('is undefined for something that is not a Node the API server made', function () {
    expect(projectNode(undefined)).to.equal(undefined);
    expect(projectNode('node')).to.equal(undefined);
    expect(projectNode({ metadata: { name: 'n' } })).to.equal(undefined);
  });

  it('treats a Node without conditions or nodeInfo as not ready, with empty facts', function () {
    const p = projectNode({ metadata: { name: 'n', uid: 'u' } });
    expect(p?.ready).to.equal(false);
    expect(p?.nodeInfo.osImage).to.equal('');
    expect(p?.hostnames).to.deep.equal([]);
  });
});

describe('collectors: Pod and Namespace projections', function () {
  it('keeps a Pod’s node name and phase only', function () {
    const pod = { metadata: { name: 'p', namespace: 'ns', labels: { a: 'b' } }, spec: { nodeName: 'n1', containers: [] }, status: { phase: 'Running', podIP: '10.1.1.1' } };
    expect(projectPod(pod)).to.deep.equal({ nodeName: 'n1', phase: 'Running' });
  });

  it('counts an unscheduled Pod with no or an unknown phase as Unknown with an empty node name', function () {
    expect(projectPod({ metadata: { name: 'p' } })).to.deep.equal({ nodeName: '', phase: 'Unknown' });
    expect(projectPod({ metadata: { name: 'p' }, status: { phase: 'Exploded' } })?.phase).to.equal('Unknown');
    expect(projectPod(null)).to.equal(undefined);
    expect(projectPod({ spec: {} })).to.equal(undefined);
  });

  it('keeps a Namespace’s UID and creation time, and is undefined without them', function () {
    const ns = { metadata: { name: 'kube-system', uid: '0b9c8d7e-0000-4000-8000-000000000001', creationTimestamp: '2026-01-02T03:04:05Z', labels: { x: 'y' } } };
    expect(projectNamespace(ns)).to.deep.equal({ uid: '0b9c8d7e-0000-4000-8000-000000000001', creationTimestamp: '2026-01-02T03:04:05Z' });
    expect(projectNamespace({ metadata: { name: 'kube-system', uid: 'u' } })).to.equal(undefined);
  });
});
