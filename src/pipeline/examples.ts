// One valid example of every event name: a reference for collector authors and fixtures for tests and benchmarks.
import { buildEvent } from '../api/envelope.js';
import type { ClusterRef, CollectedEventName, EventDataMap, EventOf } from '../api/event.js';

export const EXAMPLE_CLUSTER: ClusterRef = {
  id: '7d0c8f4e-2b1a-4c3d-9e8f-0a1b2c3d4e5f',
  region: 'eastus',
  subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001',
};

export const EXAMPLE_DATA: { [N in CollectedEventName]: EventDataMap[N] } = {
  ControlPlaneInventory: {
    clusterCreationTimestamp: '2026-01-05T08:00:00Z',
    nodes: 3,
    pods: 41,
    podsByPhase: { Pending: 1, Running: 38, Succeeded: 2, Failed: 0, Unknown: 0 },
    vCores: 12,
    allocatableVCores: 11.4,
  },
  HostOsInfo: {
    osName: 'linux',
    osImage: 'Ubuntu 22.04.4 LTS',
    kernelVersion: '5.15.0-1064-azure',
    architecture: 'amd64',
    model: 'Standard_D4s_v5',
    deviceId: 'a3f1c9d27e5b4f6089c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3',
    countryCode: 'US',
    cpuCount: 4,
    ready: true,
    unschedulable: false,
    memoryPressure: false,
    diskPressure: false,
    pidPressure: false,
    containerRuntimeVersion: 'containerd://1.7.15',
  },
  HostError: { reason: 'KubeletHasDiskPressure', message: 'The node had condition: [DiskPressure].', count: 2, component: 'kubelet' },
  LinuxVmEvent: { kind: 'boot', reason: 'Rebooted', message: 'Node has been rebooted, boot id changed', count: 1 },
  CoreUsage: { intervalStart: '2026-11-24T20:00:00.000Z', intervalEnd: '2026-11-24T21:00:00.000Z', quantity: 11.75, unit: 'vCore' },
  CertificateStatus: {
    notBefore: '2026-01-01T00:00:00Z',
    notAfter: '2027-01-01T00:00:00Z',
    daysToExpiry: 38,
    fingerprintSha256: '5f1e0c3b9a7d4e2f8c6b1a0d9e8f7c6b5a4d3e2f1c0b9a8d7e6f5c4b3a2d1e0f',
    state: 'valid',
    source: 'secret',
  },
  KmsStatus: { providers: 1, healthyProviders: 1, keyIdHash: '0f1e2d3c4b5a69788796a5b4c3d2e1f0', healthy: true },
  AuditExportStatus: { state: 'Enabled', profile: 'kube-audit-admin', destinationType: 'file', eventsReceived: 1200, eventsExported: 900 },
};

/** A valid event of `name` at `time`; `sourceKey` distinguishes facts (and so ids). */
export function exampleEvent<N extends CollectedEventName>(name: N, time: Date, sourceKey = 'example', cluster: ClusterRef = EXAMPLE_CLUSTER): EventOf<N> {
  const data = EXAMPLE_DATA[name] as EventDataMap[N];
  return buildEvent({ name, cluster, time, sourceKey, data });
}
