// Seeds a simulated fleet that looks like a real one: kwok Nodes of mixed Azure sizes, Pods in several
// namespaces (some Pending, some Failed), a few Warning Events and TLS Secrets. Used by the demo and the benchmarks.
//   node dist/hack/fleet.js --kubeconfig F [--nodes 50] [--pods 1500] [--prefix fleet]
import { randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, type KubeTransport } from '../src/kube/client.js';
import { Conflict, NotFound } from '../src/kube/errors.js';
import { selfSignedCertificate } from './certs.js';

export interface FleetOptions {
  nodes: number;
  pods: number;
  /** Name prefix of Nodes, so several fleets can share a cluster. */
  prefix?: string;
  /** Share of Pods patched to Failed, and share left Pending on a Node that does not exist. */
  failedRatio?: number;
  pendingRatio?: number;
  /** Warning Events about Nodes and system Pods, and TLS Secrets in kube-system. @default true */
  warningEvents?: boolean;
  concurrency?: number;
  /** Called after each batch with how many objects exist so far. */
  onProgress?: (what: 'nodes' | 'pods', done: number, total: number) => void;
}

export const VM_SIZES = [
  { name: 'Standard_D2s_v5', cpu: 2, memoryGi: 8 },
  { name: 'Standard_D4s_v5', cpu: 4, memoryGi: 16 },
  { name: 'Standard_D8s_v5', cpu: 8, memoryGi: 32 },
  { name: 'Standard_E16s_v5', cpu: 16, memoryGi: 128 },
  { name: 'Standard_F4s_v2', cpu: 4, memoryGi: 8 },
] as const;

const IMAGES = [
  { osImage: 'Ubuntu 22.04.5 LTS', kernelVersion: '5.15.0-1079-azure' },
  { osImage: 'Azure Linux 3.0', kernelVersion: '6.6.64.2-9.azl3' },
];

export const FLEET_NAMESPACES = ['web', 'payments', 'batch', 'monitoring', 'kube-system'];

/** The CPU capacity the i-th fleet Node gets, so tests can compute the expected vCores. */
export function nodeSize(i: number): (typeof VM_SIZES)[number] {
  const size = VM_SIZES[i % VM_SIZES.length];
  if (!size) throw new Error('unreachable');
  return size;
}

export function fleetNode(prefix: string, i: number): Record<string, unknown> {
  const size = nodeSize(i);
  const image = IMAGES[i % IMAGES.length] ?? { osImage: 'Ubuntu 22.04.5 LTS', kernelVersion: '5.15.0-1079-azure' };
  const name = `${prefix}-${String(i).padStart(4, '0')}`;
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node.kubernetes.io/instance-type': size.name,
        'topology.kubernetes.io/region': 'eastus',
        'topology.kubernetes.io/zone': `eastus-${(i % 3) + 1}`,
        'kubernetes.azure.com/agentpool': `pool${i % 4}`,
        'owner': `ops-team-${i % 7}`,
        type: 'kwok',
      },
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0', 'contoso.example/notes': `rack 10.1.${i % 250}.7, owner j.doe` },
    },
    spec: { providerID: `azure:///subscriptions/x/resourceGroups/mc/providers/Microsoft.Compute/virtualMachineScaleSets/vmss/virtualMachines/${i}` },
    status: {
      capacity: { cpu: String(size.cpu), memory: `${size.memoryGi}Gi`, pods: '110', 'ephemeral-storage': '128Gi' },
      allocatable: { cpu: `${size.cpu * 1000 - 140}m`, memory: `${size.memoryGi - 2}Gi`, pods: '110', 'ephemeral-storage': '120Gi' },
      addresses: [
        { type: 'InternalIP', address: `10.224.${Math.floor(i / 250)}.${(i % 250) + 4}` },
        { type: 'Hostname', address: name },
      ],
      nodeInfo: {
        architecture: 'amd64',
        bootID: randomUUID(),
        containerRuntimeVersion: 'containerd://1.7.27-1',
        kernelVersion: image.kernelVersion,
        kubeProxyVersion: '',
        kubeletVersion: 'v1.34.4',
        machineID: randomBytes(16).toString('hex'),
        operatingSystem: 'linux',
        osImage: image.osImage,
        systemUUID: randomUUID(),
      },
    },
  };
}

export function fleetPod(namespace: string, name: string, nodeName: string): Record<string, unknown> {
  const app = name.replace(/-\d+$/, '');
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: { app, 'app.kubernetes.io/name': app, 'pod-template-hash': '7d9f8c6b5', team: 'platform', 'contact': 'jane.doe' },
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-11-20T10:00:00Z', 'contoso.example/owner': 'jane.doe@contoso.example' },
    },
    spec: {
      nodeName,
      containers: [
        {
          name: app,
          image: `contoso.azurecr.io/${app}:1.4.2`,
          ports: [{ containerPort: 8080, name: 'http', protocol: 'TCP' }],
          env: [
            { name: 'LOG_LEVEL', value: 'info' },
            { name: 'REGION', value: 'eastus' },
          ],
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
          readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 10 },
        },
      ],
      tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
    },
  };
}

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>, onBatch?: (done: number) => void): Promise<void> {
  let next = 0;
  let done = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    for (;;) {
      const i = next++;
      const item = items[i];
      if (item === undefined) return;
      await work(item);
      done++;
      if (done % 500 === 0) onBatch?.(done);
    }
  });
  await Promise.all(workers);
  onBatch?.(done);
}

async function createIgnoringConflict(t: KubeTransport, path: string, body: unknown): Promise<void> {
  try {
    await t.json({ method: 'POST', path, body });
  } catch (err) {
    if (!(err instanceof Conflict)) throw err;
  }
}

/** Pods are refused until the controller-manager has made a new namespace's default ServiceAccount. */
export async function waitForDefaultServiceAccount(t: KubeTransport, namespace: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await t.json({ path: `/api/v1/namespaces/${namespace}/serviceaccounts/default` });
      return;
    } catch (err) {
      if (!(err instanceof NotFound) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Creates the fleet; idempotent (existing objects are left as they are). */
export async function seedFleet(t: KubeTransport, options: FleetOptions): Promise<{ failed: number; pending: number }> {
  const prefix = options.prefix ?? 'fleet';
  const concurrency = options.concurrency ?? 32;
  const nodes = Array.from({ length: options.nodes }, (_, i) => i);
  await pool(nodes, concurrency, (i) => createIgnoringConflict(t, '/api/v1/nodes', fleetNode(prefix, i)), (d) => options.onProgress?.('nodes', d, options.nodes));
  for (const ns of FLEET_NAMESPACES) {
    await createIgnoringConflict(t, '/api/v1/namespaces', { metadata: { name: ns } });
    await waitForDefaultServiceAccount(t, ns);
  }
  const failedEvery = options.failedRatio === 0 ? 0 : Math.round(1 / (options.failedRatio ?? 0.02));
  const pendingEvery = options.pendingRatio === 0 ? 0 : Math.round(1 / (options.pendingRatio ?? 0.01));
  let failed = 0;
  let pending = 0;
  const pods = Array.from({ length: options.pods }, (_, i) => i);
  const apps = ['frontend', 'api', 'checkout', 'worker', 'metrics-agent', 'coredns'];
  await pool(
    pods,
    concurrency,
    async (i) => {
      const ns = FLEET_NAMESPACES[i % FLEET_NAMESPACES.length] ?? 'default';
      const name = `${apps[i % apps.length] ?? 'app'}-${i}`;
      const isPending = pendingEvery > 0 && options.nodes > 0 && i % pendingEvery === pendingEvery - 1;
      const isFailed = !isPending && failedEvery > 0 && i % failedEvery === 0;
      // NOTE: Pods kwok manages turn Running whatever their status says, so Pending and Failed ones
      // are bound to a Node that does not exist, where nothing changes them.
      const nodeName = isPending || isFailed || options.nodes === 0 ? `${prefix}-gone` : `${prefix}-${String(i % options.nodes).padStart(4, '0')}`;
      await createIgnoringConflict(t, `/api/v1/namespaces/${ns}/pods`, fleetPod(ns, name, nodeName));
      if (isPending) pending++;
      if (isFailed) {
        failed++;
        await t.json({
          method: 'PATCH',
          path: `/api/v1/namespaces/${ns}/pods/${name}/status`,
          contentType: 'application/merge-patch+json',
          body: { status: { phase: 'Failed', reason: 'Error', message: 'container exited with code 1' } },
        });
      }
    },
    (d) => options.onProgress?.('pods', d, options.pods),
  );
  if (options.warningEvents ?? true) {
    await seedWarningEvents(t, prefix, Math.min(options.nodes, 4));
    await seedCertificates(t, prefix);
  }
  return { failed, pending };
}

/** A few Warning Events about Nodes and system Pods, as node-problem-detector and the kubelet write them. */
export async function seedWarningEvents(t: KubeTransport, prefix: string, nodes: number): Promise<void> {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const reasons = [
    { reason: 'KernelOops', message: 'kernel: BUG: unable to handle page fault for address: ffff8881 at 10.224.0.4' },
    { reason: 'NodeNotReady', message: 'Node is not ready' },
    { reason: 'FrequentContainerdRestart', message: 'containerd restarted 5 times in 20 minutes' },
    { reason: 'Rebooted', message: 'Node has been rebooted, boot id changed' },
  ];
  for (let i = 0; i < nodes; i++) {
    const node = `${prefix}-${String(i).padStart(4, '0')}`;
    const r = reasons[i % reasons.length] ?? reasons[0];
    if (!r) continue;
    await createIgnoringConflict(t, '/api/v1/namespaces/default/events', {
      metadata: { name: `${node}.${randomBytes(6).toString('hex')}`, namespace: 'default' },
      involvedObject: { kind: 'Node', name: node, uid: node, apiVersion: 'v1' },
      reason: r.reason,
      message: r.message,
      type: 'Warning',
      source: { component: 'kernel-monitor', host: node },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
  }
  // A system Pod in a crash loop, as the kubelet reports it.
  await createIgnoringConflict(t, '/api/v1/namespaces/kube-system/events', {
    metadata: { name: `coredns-${prefix}.${randomBytes(6).toString('hex')}`, namespace: 'kube-system' },
    involvedObject: { kind: 'Pod', name: `coredns-${prefix}`, namespace: 'kube-system', apiVersion: 'v1' },
    reason: 'BackOff',
    message: 'Back-off restarting failed container coredns',
    type: 'Warning',
    source: { component: 'kubelet' },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 4,
  });
}

/** TLS Secrets in kube-system as an ingress and a webhook keep them: one valid for months, one about to expire. */
export async function seedCertificates(t: KubeTransport, prefix: string): Promise<void> {
  const now = Date.now();
  const day = 86_400_000;
  const secrets = [
    { name: `${prefix}-ingress-tls`, cn: 'ingress.contoso.example', from: now - 30 * day, to: now + 335 * day },
    { name: `${prefix}-webhook-tls`, cn: 'webhook.kube-system.svc', from: now - 80 * day, to: now + 10 * day },
  ];
  for (const s of secrets) {
    const { certPem, keyPem } = selfSignedCertificate({ commonName: s.cn, dnsNames: [s.cn], notBefore: new Date(s.from), notAfter: new Date(s.to) });
    await createIgnoringConflict(t, '/api/v1/namespaces/kube-system/secrets', {
      metadata: { name: s.name, namespace: 'kube-system' },
      type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': certPem, 'tls.key': keyPem },
    });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kubeconfig: { type: 'string' },
      nodes: { type: 'string', default: '50' },
      pods: { type: 'string', default: '1500' },
      prefix: { type: 'string', default: 'fleet' },
    },
  });
  const kc = new KubeConfig();
  if (values.kubeconfig) kc.loadFromFile(values.kubeconfig);
  else kc.loadFromDefault();
  const started = Date.now();
  const result = await seedFleet(new KubeClient(kc), {
    nodes: Number(values.nodes),
    pods: Number(values.pods),
    prefix: values.prefix,
    onProgress: (what, done, total) => process.stderr.write(`  ${what}: ${done}/${total}\n`),
  });
  console.log(
    `fleet ready: ${values.nodes} nodes, ${values.pods} pods (${result.failed} failed, ${result.pending} pending) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
