// Captures real protobuf and JSON bytes from a local API server into test/fixtures/wire/ for the protobuf reader's unit tests.
//   node dist/hack/capture-wire-fixtures.js --kubeconfig .dev/kubeconfig --cluster NAME [--out test/fixtures/wire]
// Creates a few objects in namespace wire-fixtures (and two Nodes), reads them both ways, deletes them. With --cluster (a
// hack/cluster/cluster.sh cluster), it also compacts etcd and restarts the API server, to capture a watch's 410 ERROR event.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, type KubeRequest } from '../src/kube/client.js';
import { Conflict, NotFound } from '../src/kube/errors.js';
import { ACCEPT_PROTOBUF } from '../src/kube/wire.js';
import { selfSignedCertificate } from './certs.js';
import { fleetNode, fleetPod, waitForDefaultServiceAccount } from './fleet.js';

const NS = 'wire-fixtures';
const NODE_LABEL = 'dcp.test/wire-fixture';

interface Resource {
  /** File name stem. */
  readonly name: string;
  readonly path: string;
  readonly query?: Readonly<Record<string, string>>;
}

const RESOURCES: readonly Resource[] = [
  { name: 'pods', path: `/api/v1/namespaces/${NS}/pods` },
  { name: 'nodes', path: '/api/v1/nodes', query: { labelSelector: NODE_LABEL } },
  { name: 'namespaces', path: '/api/v1/namespaces', query: { fieldSelector: 'metadata.name=kube-system' } },
  { name: 'events', path: `/apis/events.k8s.io/v1/namespaces/${NS}/events` },
  { name: 'secrets', path: `/api/v1/namespaces/${NS}/secrets`, query: { fieldSelector: 'type=kubernetes.io/tls' } },
];

async function bytes(client: KubeClient, req: KubeRequest, untilMs?: number): Promise<{ body: Buffer; contentType: string }> {
  const ctl = new AbortController();
  const res = await client.stream({ ...req, signal: ctl.signal });
  const chunks: Buffer[] = [];
  const timer = untilMs === undefined ? undefined : setTimeout(() => ctl.abort(new Error('captured')), untilMs);
  try {
    for await (const c of res) chunks.push(c);
  } catch (err) {
    if (!ctl.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
  }
  return { body: Buffer.concat(chunks), contentType: res.contentType ?? '' };
}

async function create(client: KubeClient, path: string, body: unknown): Promise<void> {
  try {
    await client.json({ method: 'POST', path, body });
  } catch (err) {
    if (!(err instanceof Conflict)) throw err;
  }
}

async function remove(client: KubeClient, path: string): Promise<void> {
  try {
    await client.json({ method: 'DELETE', path });
  } catch (err) {
    if (!(err instanceof NotFound)) throw err;
  }
}

async function seed(client: KubeClient): Promise<void> {
  // A previous capture's namespace may still be terminating.
  for (let i = 0; i < 120; i++) {
    try {
      await client.json({ path: `/api/v1/namespaces/${NS}` });
      await new Promise((r) => setTimeout(r, 500));
    } catch (err) {
      if (err instanceof NotFound) break;
      throw err;
    }
  }
  await create(client, '/api/v1/namespaces', { metadata: { name: NS } });
  await waitForDefaultServiceAccount(client, NS);
  for (const i of [0, 1]) {
    const node = fleetNode('wire', i) as { metadata: { labels: Record<string, string> }; spec: Record<string, unknown> };
    node.metadata.labels[NODE_LABEL] = 'true';
    // The second one differs where projections branch: cordoned, no instance-type label.
    if (i === 1) {
      node.spec['unschedulable'] = true;
      delete node.metadata.labels['node.kubernetes.io/instance-type'];
      node.metadata.labels['beta.kubernetes.io/instance-type'] = 'Standard_D2s_v3';
    }
    await create(client, '/api/v1/nodes', node);
  }
  for (const i of [0, 1, 2]) await create(client, `/api/v1/namespaces/${NS}/pods`, fleetPod(NS, `web-${i}`, `wire-000${i % 2}`));
  // Not scheduled: no nodeName, phase Pending.
  const pending = fleetPod(NS, 'pending-0', '') as { spec: Record<string, unknown> };
  delete pending.spec['nodeName'];
  await create(client, `/api/v1/namespaces/${NS}/pods`, pending);
  const now = new Date();
  await create(client, `/apis/events.k8s.io/v1/namespaces/${NS}/events`, {
    metadata: { name: 'oops.1', namespace: NS },
    eventTime: now.toISOString().replace('Z', '000Z'),
    series: { count: 3, lastObservedTime: now.toISOString().replace('Z', '000Z') },
    reportingController: 'kernel-monitor',
    reportingInstance: 'wire-0000',
    action: 'Detected',
    reason: 'KernelOops',
    note: 'kernel: BUG at 10.0.0.4',
    type: 'Warning',
    regarding: { kind: 'Pod', name: 'web-0', namespace: NS, apiVersion: 'v1' },
  });
  // Written through core/v1 as old clients do: deprecated fields set, no eventTime.
  await create(client, `/api/v1/namespaces/${NS}/events`, {
    metadata: { name: 'backoff.1', namespace: NS },
    involvedObject: { kind: 'Pod', name: 'web-0', namespace: NS, apiVersion: 'v1' },
    reason: 'BackOff',
    message: 'Back-off restarting failed container',
    type: 'Warning',
    source: { component: 'kubelet' },
    firstTimestamp: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    lastTimestamp: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    count: 4,
  });
  const day = 86_400_000;
  const { certPem, keyPem } = selfSignedCertificate({
    commonName: 'ingress.contoso.example',
    dnsNames: ['ingress.contoso.example'],
    notBefore: new Date(Date.UTC(2026, 0, 1)),
    notAfter: new Date(Date.UTC(2026, 0, 1) + 400 * day),
  });
  await create(client, `/api/v1/namespaces/${NS}/secrets`, { metadata: { name: 'ingress-tls' }, type: 'kubernetes.io/tls', stringData: { 'tls.crt': certPem, 'tls.key': keyPem } });
  await create(client, `/api/v1/namespaces/${NS}/secrets`, { metadata: { name: 'broken-tls' }, type: 'kubernetes.io/tls', stringData: { 'tls.crt': 'not a certificate', 'tls.key': 'x' } });
  // Let kwok run the scheduled Pods, so phases differ.
  await new Promise((r) => setTimeout(r, 3000));
}

async function compactAndRestart(client: KubeClient, cluster: string): Promise<void> {
  const sh = (...args: string[]): string => execFileSync(resolve('hack/cluster/cluster.sh'), args, { encoding: 'utf8' });
  const status = JSON.parse(sh('kwokctl', cluster, 'etcdctl', 'endpoint', 'status', '-w', 'json')) as Array<{ Status: { header: { revision: number } } }>;
  sh('kwokctl', cluster, 'etcdctl', 'compact', String(status[0]?.Status.header.revision ?? 0));
  sh('stop', cluster);
  sh('start', cluster);
  for (let i = 0; i < 120; i++) {
    try {
      await client.json({ path: '/readyz' });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { kubeconfig: { type: 'string' }, cluster: { type: 'string' }, out: { type: 'string', default: 'test/fixtures/wire' } } });
  const kc = new KubeConfig();
  if (values.kubeconfig !== undefined) kc.loadFromFile(values.kubeconfig);
  else kc.loadFromDefault();
  const client = new KubeClient(kc);
  const out = resolve(values.out);
  mkdirSync(out, { recursive: true });
  const write = (file: string, body: Buffer): void => {
    writeFileSync(join(out, file), body);
    console.log(`${file}: ${body.length} bytes`);
  };
  await seed(client);
  try {
    for (const r of RESOURCES) {
      // JSON first; protobuf at exactly the same resourceVersion, so both hold the same objects.
      const json = await bytes(client, { path: r.path, query: r.query });
      const rv = (JSON.parse(json.body.toString('utf8')) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
      const pb = await bytes(client, { path: r.path, query: { ...r.query, resourceVersion: rv, resourceVersionMatch: 'Exact' }, accept: ACCEPT_PROTOBUF });
      if (!pb.contentType.startsWith('application/vnd.kubernetes.protobuf')) throw new Error(`${r.name}: the server answered ${pb.contentType}`);
      write(`${r.name}.list.json`, json.body);
      write(`${r.name}.list.pb`, pb.body);
    }
    // A first page that names its successor.
    write('pods.page1.pb', (await bytes(client, { path: RESOURCES[0]?.path ?? '', query: { limit: '2' }, accept: ACCEPT_PROTOBUF })).body);

    // The same watch both ways: initial events, the BOOKMARK that ends them, then a change, a delete and a create.
    const podsPath = RESOURCES[0]?.path ?? '';
    const listed = JSON.parse((await bytes(client, { path: podsPath })).body.toString('utf8')) as { metadata: { resourceVersion: string } };
    const watchQuery = { watch: '1', allowWatchBookmarks: 'true', sendInitialEvents: 'true', resourceVersionMatch: 'NotOlderThan', resourceVersion: listed.metadata.resourceVersion };
    const pbWatch = bytes(client, { path: podsPath, query: watchQuery, accept: ACCEPT_PROTOBUF }, 4000);
    const jsonWatch = bytes(client, { path: podsPath, query: watchQuery }, 4000);
    await new Promise((r) => setTimeout(r, 1000));
    await client.json({ method: 'PATCH', path: `${podsPath}/web-1`, body: { metadata: { labels: { changed: 'yes' } } } });
    await client.json({ method: 'DELETE', path: `${podsPath}/web-2`, query: { gracePeriodSeconds: 0 } });
    await create(client, podsPath, fleetPod(NS, 'web-3', 'wire-0000'));
    const [pbw, jsw] = await Promise.all([pbWatch, jsonWatch]);
    if (!pbw.contentType.includes('stream=watch')) throw new Error(`watch answered ${pbw.contentType}`);
    write('pods.watch.pb', pbw.body);
    write('pods.watch.json', jsw.body);
    // A watch from a resourceVersion compacted away: the server answers with an ERROR event (410).
    if (values.cluster !== undefined) await compactAndRestart(client, values.cluster);
    write('pods.watch-expired.pb', (await bytes(client, { path: podsPath, query: { watch: '1', resourceVersion: '1' }, accept: ACCEPT_PROTOBUF }, 3000)).body);
  } finally {
    await remove(client, `/api/v1/namespaces/${NS}`);
    for (const i of [0, 1]) await remove(client, `/api/v1/nodes/wire-000${i}`);
    client.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
