// The same cluster synced twice at once, over JSON and over protobuf: the caches must be identical, and stay so through changes.
import { setMaxListeners } from 'node:events';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { GROUP, PLURAL, VERSION } from '../../src/api/policy.js';
import { NAMESPACE_FIELDS, NODE_FIELDS, POD_FIELDS, projectNamespace, projectNode, projectPod } from '../../src/collectors/projections.js';
import { KubeClient, type KubeRequest, type KubeTransport, type ResponseStream, type WireFormat } from '../../src/kube/client.js';
import { EVENT_FIELDS, projectEvent, projectTlsSecret, TLS_SECRET_FIELDS } from '../../src/kube/projections.js';
import { objectFields, objectMeta } from '../../src/kube/protobuf.js';
import { asString, metadataOf } from '../../src/kube/resource.js';
import { eventCache, namespaceCache, nodeCache, podCache, tlsSecretCache } from '../../src/runtime/caches.js';
import { Reflector } from '../../src/runtime/reflector.js';
import { selfSignedCertificate } from '../../hack/certs.js';
import { waitForDefaultServiceAccount } from '../../hack/fleet.js';
import { cluster, type TestCluster } from './harness.js';

/** The real client, noting the Content-Type of every answer. */
class RecordingTransport implements KubeTransport {
  readonly contentTypes = new Set<string>();
  readonly wire: WireFormat;

  constructor(private readonly inner: KubeClient) {
    this.wire = inner.wire;
  }

  async stream(req: KubeRequest): Promise<ResponseStream> {
    const res = await this.inner.stream(req);
    this.contentTypes.add(`${req.query?.['watch'] !== undefined ? 'watch' : 'list'} ${res.contentType ?? ''}`);
    return res;
  }

  json(req: KubeRequest): Promise<unknown> {
    return this.inner.json(req);
  }
}

function caches(transport: KubeTransport, ns: string) {
  const registry = new Registry();
  return {
    pods: podCache(transport, projectPod, { fields: POD_FIELDS, registry }),
    nodes: nodeCache(transport, projectNode, { fields: NODE_FIELDS, registry }),
    namespaces: namespaceCache(transport, projectNamespace, { fields: NAMESPACE_FIELDS, registry }),
    events: eventCache(transport, projectEvent, { fields: EVENT_FIELDS, namespace: ns, registry }),
    secrets: tlsSecretCache(transport, ns, projectTlsSecret, { fields: TLS_SECRET_FIELDS, registry }),
    // A custom resource: asked for protobuf too, answered (and read) as JSON.
    policies: new Reflector({
      transport,
      path: `/apis/${GROUP}/${VERSION}/${PLURAL}`,
      project: (o: unknown) => asString(metadataOf(o)?.['uid']),
      fields: objectFields(objectMeta()),
      registry,
    }),
  };
}

type Caches = ReturnType<typeof caches>;

function snapshot(c: Caches): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [name, r] of Object.entries(c)) out[name] = Object.fromEntries([...(r.store.entries() as Iterable<[string, unknown]>)].sort(([a], [b]) => (a < b ? -1 : 1)));
  return out;
}

describe('protobuf and JSON caches on the real API server', function () {
  this.timeout(180_000);
  let c: TestCluster;
  let ns: string;
  const stop = new AbortController();
  // Twelve reflectors share this signal.
  setMaxListeners(32, stop.signal);
  const running: Array<Promise<void>> = [];
  const clients: KubeClient[] = [];
  const client = (wire: WireFormat): KubeClient => {
    const k = new KubeClient(c.kc, { wire });
    clients.push(k);
    return k;
  };

  before(async function () {
    c = cluster();
    ns = `wire-${c.runId}`;
    await c.ensureNamespace(ns);
    await waitForDefaultServiceAccount(client('json'), ns);
    await c.ensureCrd();
    await c.createNodes([{ name: `wire-${c.runId}-a`, instanceType: 'Standard_D4s_v5' }, { name: `wire-${c.runId}-b`, labels: { 'beta.kubernetes.io/instance-type': 'Standard_D2s_v3' } }]);
    await c.createPods(Array.from({ length: 12 }, (_, i) => ({ name: `p-${i}`, namespace: ns, nodeName: i % 3 === 0 ? undefined : `wire-${c.runId}-${i % 2 === 0 ? 'a' : 'b'}` })));
    const k = client('json');
    const { certPem, keyPem } = selfSignedCertificate({ commonName: 'wire.example', dnsNames: ['wire.example'], notBefore: new Date(Date.UTC(2026, 0, 1)), notAfter: new Date(Date.UTC(2027, 0, 1)) });
    await k.json({ method: 'POST', path: `/api/v1/namespaces/${ns}/secrets`, body: { metadata: { name: 'tls' }, type: 'kubernetes.io/tls', stringData: { 'tls.crt': certPem, 'tls.key': keyPem } } });
    const now = new Date().toISOString().replace('Z', '000Z');
    await k.json({
      method: 'POST',
      path: `/apis/events.k8s.io/v1/namespaces/${ns}/events`,
      body: { metadata: { name: 'e1' }, eventTime: now, series: { count: 2, lastObservedTime: now }, reportingController: 'kernel-monitor', reportingInstance: 'x', action: 'Detected', reason: 'KernelOops', note: 'oops', type: 'Warning', regarding: { kind: 'Pod', name: 'p-0', namespace: ns, apiVersion: 'v1' } },
    });
  });

  after(async function () {
    stop.abort();
    await Promise.all(running);
    for (const k of clients) k.destroy();
    await c.kubectl(['delete', 'namespace', ns, '--wait=false']);
    await c.kubectl(['delete', 'node', `wire-${c.runId}-a`, `wire-${c.runId}-b`, '--wait=false']);
  });

  it('syncs identical caches both ways, asking protobuf for built-in types and reading custom resources as JSON', async function () {
    const transports: Record<WireFormat, RecordingTransport> = {
      json: new RecordingTransport(client('json')),
      protobuf: new RecordingTransport(client('protobuf')),
    };
    const sets = { json: caches(transports.json, ns), protobuf: caches(transports.protobuf, ns) };
    for (const set of Object.values(sets)) for (const r of Object.values(set)) running.push((r as Reflector<unknown>).start(stop.signal));
    for (const set of Object.values(sets)) await Promise.all(Object.values(set).map((r) => (r as Reflector<unknown>).store.waitUntilSynced()));

    const equalSoon = async (what: string): Promise<void> => {
      const deadline = Date.now() + 30_000;
      while (JSON.stringify(snapshot(sets.json)) !== JSON.stringify(snapshot(sets.protobuf)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(snapshot(sets.protobuf), what).to.deep.equal(snapshot(sets.json));
    };
    await equalSoon('after the list');
    const synced = snapshot(sets.protobuf);
    expect(Object.keys(synced['pods'] ?? {}).filter((k) => k.startsWith(`${ns}/`))).to.have.length(12);
    expect(synced['events']?.[`${ns}/e1`]).to.include({ reason: 'KernelOops', count: 2 });
    expect((synced['secrets']?.[`${ns}/tls`] as { certificates: unknown[] }).certificates).to.have.length(1);
    expect(synced['nodes']?.[`wire-${c.runId}-b`]).to.include({ instanceType: 'Standard_D2s_v3' });

    // Changes through the watches: relabel, delete, create, cordon.
    await c.kubectlOk(['-n', ns, 'label', 'pod', 'p-1', 'changed=yes']);
    await c.kubectlOk(['-n', ns, 'delete', 'pod', 'p-2', '--grace-period=0', '--force', '--wait=false']);
    await c.createPods([{ name: 'p-new', namespace: ns, nodeName: `wire-${c.runId}-a` }]);
    await c.kubectlOk(['cordon', `wire-${c.runId}-a`]);
    await equalSoon('after changes');
    expect(sets.protobuf.pods.store.has(`${ns}/p-2`)).to.equal(false);
    expect(sets.protobuf.pods.store.has(`${ns}/p-new`)).to.equal(true);
    expect(sets.protobuf.nodes.store.get(`wire-${c.runId}-a`)).to.include({ unschedulable: true });

    const pb = [...transports.protobuf.contentTypes];
    expect(pb).to.include('list application/vnd.kubernetes.protobuf');
    expect(pb).to.include('watch application/vnd.kubernetes.protobuf;stream=watch');
    expect(pb).to.include('list application/json', 'the custom resource falls back to JSON');
    expect([...transports.json.contentTypes].every((t) => t.endsWith('application/json'))).to.equal(true);
  });
});
