// The `make bench-scale` fleet: Deployment-style Pods of about 7 kB of JSON (30 per kwok Node), grown size by size, and the Pod update churn.
import { randomUUID } from 'node:crypto';
import { fleetNode, waitForDefaultServiceAccount } from '../hack/fleet.js';
import type { KubeTransport } from '../src/kube/client.js';
import { Conflict } from '../src/kube/errors.js';

export const PODS_PER_NODE = 30;
export const NAMESPACES = ['shop', 'payments', 'search', 'batch'];
const APPS = ['frontend', 'cart', 'checkout', 'catalog', 'search-api', 'worker', 'recommender', 'gateway'];
const NODE_PREFIX = 'scale';

/** The ReplicaSet every Pod of `app` names as owner (it exists, so the garbage collector leaves the Pods alone). */
function replicaSet(namespace: string, app: string): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name: `${app}-7d9f8c6b5`, namespace, labels: { app } },
    // Zero replicas and a selector no Pod carries: the controller never touches the seeded Pods.
    spec: { replicas: 0, selector: { matchLabels: { 'bench-rs': app } }, template: { metadata: { labels: { 'bench-rs': app } }, spec: { containers: [{ name: 'c', image: 'x' }] } } },
  };
}

function container(name: string, image: string, port: number, cpu: string, memory: string): Record<string, unknown> {
  return {
    name,
    image,
    ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
    env: [
      { name: 'LOG_LEVEL', value: 'info' },
      { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://otel-collector.monitoring.svc:4317' },
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ],
    resources: { requests: { cpu, memory }, limits: { memory: '512Mi' } },
    readinessProbe: { httpGet: { path: '/ready', port }, periodSeconds: 10 },
    livenessProbe: { httpGet: { path: '/healthz', port }, initialDelaySeconds: 15, periodSeconds: 20 },
  };
}

/**
 * A Pod as a Deployment makes it: owner, template hash, two containers with requests, probes and env. About 1.9 kB as
 * written; the API server's managedFields and kwok's status bring it to 7.9 kB of JSON (4.5 kB without managedFields),
 * near PERFORMANCE.md's 7.2 kB Pods.
 */
export function deploymentPod(namespace: string, i: number, nodeName: string, ownerUid: string): Record<string, unknown> {
  const app = APPS[i % APPS.length] ?? 'app';
  const suffix = `${i.toString(36).padStart(5, '0')}`;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${app}-7d9f8c6b5-${suffix}`,
      namespace,
      labels: { app, 'app.kubernetes.io/name': app, 'app.kubernetes.io/version': '1.4.2', 'pod-template-hash': '7d9f8c6b5', team: 'platform' },
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-11-20T10:00:00Z', 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9080' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${app}-7d9f8c6b5`, uid: ownerUid, controller: false, blockOwnerDeletion: true }],
    },
    spec: {
      nodeName,
      containers: [container(app, `contoso.azurecr.io/${app}:1.4.2`, 8080, '100m', '128Mi'), container('envoy', 'envoyproxy/envoy:v1.31.2', 9901, '50m', '64Mi')],
      tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
    },
  };
}

/**
 * Creates the object; one that exists already is fine. A loaded API server sometimes hangs up on a create (seen at 30k
 * Pods on 2 cores): it is sent again a few times, and if the first one did land, the retry's Conflict says so.
 */
async function createIgnoringConflict(t: KubeTransport, path: string, body: unknown): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await t.json({ method: 'POST', path, body });
      return;
    } catch (err) {
      if (err instanceof Conflict) return;
      if (attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}

async function pool(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      for (let i = next++; i < count; i = next++) await work(i);
    }),
  );
}

/** The namespaces and owner ReplicaSets; returns each namespace's owner uids by app index. */
export async function prepareFleet(t: KubeTransport): Promise<Map<string, string[]>> {
  const owners = new Map<string, string[]>();
  for (const ns of NAMESPACES) {
    await createIgnoringConflict(t, '/api/v1/namespaces', { metadata: { name: ns } });
    await waitForDefaultServiceAccount(t, ns);
    const uids: string[] = [];
    for (const app of APPS) {
      await createIgnoringConflict(t, `/apis/apps/v1/namespaces/${ns}/replicasets`, replicaSet(ns, app));
      const rs = (await t.json({ path: `/apis/apps/v1/namespaces/${ns}/replicasets/${app}-7d9f8c6b5` })) as { metadata: { uid: string } };
      uids.push(rs.metadata.uid);
    }
    owners.set(ns, uids);
  }
  return owners;
}

/** Grows the fleet from `from` to `to` Pods (and Nodes at 30 Pods each). Idempotent per index. */
export async function growFleet(t: KubeTransport, owners: Map<string, string[]>, from: number, to: number, concurrency = 24): Promise<void> {
  const nodesFrom = Math.ceil(from / PODS_PER_NODE);
  const nodesTo = Math.ceil(to / PODS_PER_NODE);
  await pool(nodesTo - nodesFrom, concurrency, (k) => createIgnoringConflict(t, '/api/v1/nodes', fleetNode(NODE_PREFIX, nodesFrom + k)));
  await pool(to - from, concurrency, async (k) => {
    const i = from + k;
    const ns = NAMESPACES[i % NAMESPACES.length] ?? 'default';
    const owner = owners.get(ns)?.[i % APPS.length] ?? randomUUID();
    const node = `${NODE_PREFIX}-${String(Math.floor(i / PODS_PER_NODE)).padStart(4, '0')}`;
    await createIgnoringConflict(t, `/api/v1/namespaces/${ns}/pods`, deploymentPod(ns, i, node, owner));
  });
}

/** The path of the i-th seeded Pod. */
export function podPath(i: number): string {
  const ns = NAMESPACES[i % NAMESPACES.length] ?? 'default';
  const app = APPS[i % APPS.length] ?? 'app';
  return `/api/v1/namespaces/${ns}/pods/${app}-7d9f8c6b5-${i.toString(36).padStart(5, '0')}`;
}

/**
 * Updates random seeded Pods at `rate`/s for `seconds` (an annotation, as a rollout or a controller
 * would): each is one MODIFIED event for every watcher. Returns how many updates the server took.
 */
export async function churn(t: KubeTransport, pods: number, rate: number, seconds: number): Promise<{ updates: number; achievedRate: number }> {
  const total = Math.round(rate * seconds);
  const started = performance.now();
  let updates = 0;
  // Enough requests in flight for 500/s at the API server's latency here; what it reaches is reported.
  await pool(total, 96, async (k) => {
    const due = started + (k * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // The time limit holds even when the server cannot take `rate`: what it took is reported.
    if (performance.now() - started > seconds * 1000) return;
    const i = Math.floor(Math.random() * pods);
    try {
      await t.json({ method: 'PATCH', path: podPath(i), contentType: 'application/merge-patch+json', body: { metadata: { annotations: { 'bench/tick': String(k) } } } });
      updates++;
    } catch {
      // A Pod not there (still being created) is a lost update, not a failed run.
    }
  });
  return { updates, achievedRate: updates / ((performance.now() - started) / 1000) };
}
