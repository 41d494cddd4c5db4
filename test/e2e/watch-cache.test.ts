// Reflectors against the real API server: paged sync, restart and 410 recovery, bounded retries while down, stall replacement.
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { KubeClient, type KubeRequest, type KubeTransport, type ResponseStream } from '../../src/kube/client.js';
import { TransportError } from '../../src/kube/errors.js';
import { listAll } from '../../src/kube/pager.js';
import { asRecord, asString, collectionPath, metadataOf, objectKey } from '../../src/kube/resource.js';
import { EVENT_FIELDS, projectEvent, projectTlsSecret, TLS_SECRET_FIELDS } from '../../src/kube/projections.js';
import { field, fields, map, objectFields, objectMeta, type FieldSet } from '../../src/kube/protobuf.js';
import { eventCache, tlsSecretCache } from '../../src/runtime/caches.js';
import { Reflector, type ReflectorOptions } from '../../src/runtime/reflector.js';
import type { ChangeType, ReadStore } from '../../src/runtime/store.js';
import { cluster, needsLocalControlPlane, RUN_LABEL, type TestCluster } from './harness.js';

/** The real client, with a switch that cuts the network (open responses too) and a request count. */
class FaultyTransport implements KubeTransport {
  requests = 0;
  private partitioned = false;
  private readonly open = new Set<ResponseStream>();

  constructor(private readonly inner: KubeTransport) {}

  async stream(req: KubeRequest): Promise<ResponseStream> {
    this.requests += 1;
    if (this.partitioned) throw new TransportError('network cut by the test');
    const s = await this.inner.stream(req);
    this.open.add(s);
    return s;
  }

  async json(req: KubeRequest): Promise<unknown> {
    this.requests += 1;
    if (this.partitioned) throw new TransportError('network cut by the test');
    return this.inner.json(req);
  }

  partition(): void {
    this.partitioned = true;
    for (const s of this.open) s.close();
    this.open.clear();
  }

  heal(): void {
    this.partitioned = false;
  }
}

interface PodView {
  uid: string;
  phase: string;
  rev: string;
}

/** What these tests keep of a Pod: enough to see adds, deletes and label changes. */
function projectPodView(obj: unknown): PodView | undefined {
  const meta = metadataOf(obj);
  const uid = asString(meta?.['uid']);
  if (uid === undefined) return undefined;
  return {
    uid,
    phase: asString(asRecord(asRecord(obj)?.['status'])?.['phase']) ?? '',
    rev: asString(asRecord(meta?.['labels'])?.['rev']) ?? '',
  };
}

/** The protobuf fields projectPodView reads, by collection: status.phase is field 1 of PodStatus and NamespaceStatus, 3 of NodeStatus. */
const VIEW_META = objectMeta([[11, map('labels', 'string', ['rev'])]]);
const VIEW_FIELDS: Readonly<Record<string, FieldSet>> = {
  '/api/v1/pods': objectFields(VIEW_META, [[3, field('status', fields([[1, field('phase', 'string')]]))]]),
  '/api/v1/namespaces': objectFields(VIEW_META, [[3, field('status', fields([[1, field('phase', 'string')]]))]]),
  '/api/v1/nodes': objectFields(VIEW_META, [[3, field('status', fields([[3, field('phase', 'string')]]))]]),
};

/** A fresh paged list, projected the same way: what the cache must equal. */
async function freshList<T>(client: KubeClient, path: string, project: (o: unknown) => T | undefined): Promise<Record<string, T>> {
  const out: Record<string, T> = {};
  for await (const item of listAll(client, path, { pageSize: 100 })) {
    const key = objectKey(item);
    const value = project(item);
    if (key !== undefined && value !== undefined) out[key] = value;
  }
  return out;
}

function snapshot<T>(store: ReadStore<T>): Record<string, T> {
  return Object.fromEntries(store.entries());
}

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until the cache equals a fresh list, then asserts it (so a failure shows the difference). */
async function expectCacheEqualsFreshList<T>(client: KubeClient, store: ReadStore<T>, path: string, project: (o: unknown) => T | undefined, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let fresh = await freshList(client, path, project);
  while (Date.now() < deadline && JSON.stringify(sortKeys(snapshot(store))) !== JSON.stringify(sortKeys(fresh))) {
    await sleepMs(250);
    fresh = await freshList(client, path, project);
  }
  expect(snapshot(store)).to.deep.equal(fresh);
}

function sortKeys<T>(r: Record<string, T>): Array<[string, T]> {
  return Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The API server's own count of open WATCH requests for one resource and scope. */
async function serverWatches(c: TestCluster, resource: string, scope: 'namespace' | 'cluster'): Promise<number> {
  const text = await c.kubectlOk(['get', '--raw', '/metrics']);
  const line = text.split('\n').find((l) => l.startsWith('apiserver_longrunning_requests{') && l.includes(`resource="${resource}"`) && l.includes(`scope="${scope}"`) && l.includes('verb="WATCH"'));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleepMs(100);
  }
}

interface Harness<T> {
  reflector: Reflector<T>;
  transport: FaultyTransport;
  changes: Array<[ChangeType, string]>;
  errors: Array<[string, Error]>;
  ctl: AbortController;
  done: Promise<void>;
  registry: Registry;
}

function startReflector<T>(c: TestCluster, options: Omit<ReflectorOptions<T>, 'transport'>): Harness<T> {
  const transport = new FaultyTransport(new KubeClient(c.kc));
  const changes: Array<[ChangeType, string]> = [];
  const errors: Array<[string, Error]> = [];
  const registry = new Registry();
  // Protobuf, as the operator reads these resources; the JSON path runs in watch-protobuf.test.ts.
  const viewFields = VIEW_FIELDS[options.path];
  const reflector = new Reflector<T>({ registry, ...(viewFields !== undefined ? { fields: viewFields } : {}), ...options, transport, onError: (err, reason) => errors.push([reason, err]) });
  reflector.store.subscribe((type, key) => changes.push([type, key]));
  const ctl = new AbortController();
  const done = reflector.start(ctl.signal);
  return { reflector, transport, changes, errors, ctl, done, registry };
}

describe('watch caches on the real API server', function () {
  this.timeout(180_000);
  let c: TestCluster;
  let client: KubeClient;
  let ns: string;
  let node: string;
  const running: Array<Harness<unknown>> = [];

  function track<T>(h: Harness<T>): Harness<T> {
    running.push(h as unknown as Harness<unknown>);
    return h;
  }

  async function createPods(names: string[], rev = '1'): Promise<void> {
    const items = names.map((name) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: ns, labels: { [RUN_LABEL]: c.runId, rev } },
      spec: {
        nodeName: node,
        containers: [{ name: 'app', image: 'registry.example/app:1' }],
        tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
      },
    }));
    await c.kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  }

  async function deletePods(names: string[]): Promise<void> {
    await c.kubectlOk(['-n', ns, 'delete', 'pod', '--grace-period=0', '--force', '--wait=false', ...names]);
  }

  async function relabel(names: string[], rev: string): Promise<void> {
    await c.kubectlOk(['-n', ns, 'label', 'pod', '--overwrite', ...names, `rev=${rev}`]);
  }

  const podsPath = (): string => collectionPath('/api/v1/pods', ns);
  const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

  before(async function () {
    c = cluster();
    client = new KubeClient(c.kc);
    ns = `watch-${c.runId}`;
    node = `watch-${c.runId}`;
    await c.ensureNamespace(ns);
    await c.createNodes([{ name: node }]);
  });

  afterEach(async function () {
    for (const h of running.splice(0)) {
      h.ctl.abort();
      await h.done;
    }
  });

  it('fills the cache with a paged list and follows adds, label changes and deletes', async function () {
    await createPods(names('base', 30));
    const h = track(startReflector(c, { path: '/api/v1/pods', namespace: ns, project: projectPodView, pageSize: 7 }));
    await h.reflector.store.waitUntilSynced();
    expect(h.reflector.store.size).to.equal(30);
    await expectCacheEqualsFreshList(client, h.reflector.store, podsPath(), projectPodView);

    h.changes.length = 0;
    await createPods(['new-0', 'new-1']);
    await relabel(['base-0'], '2');
    await deletePods(['base-1']);
    await expectCacheEqualsFreshList(client, h.reflector.store, podsPath(), projectPodView);
    expect(h.changes).to.deep.include.members([
      ['added', `${ns}/new-0`],
      ['added', `${ns}/new-1`],
      ['updated', `${ns}/base-0`],
      ['deleted', `${ns}/base-1`],
    ]);
    expect(h.reflector.health()).to.include({ synced: true, phase: 'Watching', relists: 0 });
    expect(h.errors).to.deep.equal([]);
  });

  it('equals a fresh list again after the API server restarts, with changes made right after', async function () {
    needsLocalControlPlane(this, 'restarts the API server');
    const h = track(startReflector(c, { path: '/api/v1/pods', namespace: ns, project: projectPodView }));
    await h.reflector.store.waitUntilSynced();
    await c.restartApiServer();
    await createPods(names('after-restart', 3));
    await relabel(['base-2', 'base-3'], '3');
    await deletePods(['base-4', 'base-5']);
    await expectCacheEqualsFreshList(client, h.reflector.store, podsPath(), projectPodView);
    expect(h.reflector.health().restarts).to.be.at.least(1);
    expect(h.reflector.phase).to.equal('Watching');
  });

  it('relists after a forced 410 (etcd compacted, API server restarted) and delivers the difference', async function () {
    needsLocalControlPlane(this, 'compacts etcd and restarts the API server');
    const h = track(startReflector(c, { path: '/api/v1/pods', namespace: ns, project: projectPodView }));
    await h.reflector.store.waitUntilSynced();
    // Cut this reflector off, change things it cannot see, and compact them out of history.
    h.transport.partition();
    await createPods(names('unseen', 3));
    await relabel(['base-6', 'base-7'], '4');
    await deletePods(['base-8', 'base-9']);
    await c.compactEtcd();
    h.changes.length = 0;
    h.transport.heal();
    await expectCacheEqualsFreshList(client, h.reflector.store, podsPath(), projectPodView);
    expect(h.reflector.health().relists, 'the watch answered 410 and the reflector relisted').to.be.at.least(1);
    expect(h.errors.map(([reason]) => reason)).to.include('expired');
    expect(h.changes).to.deep.include.members([
      ['added', `${ns}/unseen-0`],
      ['added', `${ns}/unseen-2`],
      ['updated', `${ns}/base-6`],
      ['updated', `${ns}/base-7`],
      ['deleted', `${ns}/base-8`],
      ['deleted', `${ns}/base-9`],
    ]);
    const metrics = await h.registry.metrics();
    expect(metrics).to.match(/dcp_watch_relists_total\{resource="pods:watch-[0-9a-f]+"\} [1-9]/);
  });

  it('keeps its request rate bounded while the API server is down, and resyncs when it is back', async function () {
    needsLocalControlPlane(this, 'stops and starts the API server');
    // Draws of 0 make the backoff its slowest-growing sequence: 0.8, 1.6, 3.2, 6.4, 12.8 s ...
    const opts = { random: () => 0 };
    const pods = track(startReflector(c, { ...opts, path: '/api/v1/pods', namespace: ns, project: projectPodView }));
    const hs = [
      pods,
      track(startReflector(c, { ...opts, path: '/api/v1/namespaces', project: projectPodView })),
      track(startReflector(c, { ...opts, path: '/api/v1/nodes', project: projectPodView })),
    ];
    await Promise.all(hs.map((h) => h.reflector.store.waitUntilSynced()));
    await c.stopControlPlane();
    const before = hs.map((h) => h.transport.requests);
    const downMs = 20_000;
    await sleepMs(downMs);
    const during = hs.map((h, i) => h.transport.requests - (before[i] ?? 0));
    await c.startControlPlane();
    // At 0.8 + 1.6 + 3.2 + 6.4 = 12 s the 4th retry is due, the 5th at 24.8 s: at most 5 in 20 s
    // (one more for a watch cut while kwokctl was stopping the server).
    for (const n of during) expect(n).to.be.at.most(6);
    await expectCacheEqualsFreshList(client, pods.reflector.store, podsPath(), projectPodView);
    await eventually('every cache watching again', () => hs.every((h) => h.reflector.phase === 'Watching'), 60_000);
  });

  it('replaces a watch that goes quiet, closing the old connection, and keeps following changes', async function () {
    // No one else watches PodTemplates in one namespace, so the server's count of such watches is ours.
    const h = track(
      startReflector(c, {
        path: '/api/v1/podtemplates',
        namespace: ns,
        project: (o: unknown) => asString(metadataOf(o)?.['uid']),
        stallTimeoutMs: 1_000,
        backoff: { initialMs: 100, jitter: 0, maxMs: 400 },
      }),
    );
    await h.reflector.store.waitUntilSynced();
    await eventually('three stalled watches replaced', () => h.errors.filter(([r]) => r === 'stalled').length >= 3);
    await eventually('one open watch on the server', async () => (await serverWatches(c, 'podtemplates', 'namespace')) === 1);
    await c.kubectlOk(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'PodTemplate',
      metadata: { name: 'quiet', namespace: ns },
      template: { spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] } },
    }));
    await eventually('the new PodTemplate in the cache', () => h.reflector.store.has(`${ns}/quiet`));
    expect(h.reflector.health().relists).to.equal(0);

    h.ctl.abort();
    await h.done;
    await eventually('no watch left open on the server', async () => (await serverWatches(c, 'podtemplates', 'namespace')) === 0);
  });

  it('stays stopped after a deliberate stop, without reporting it as an error', async function () {
    const h = startReflector(c, { path: '/api/v1/pods', namespace: ns, project: projectPodView });
    await h.reflector.store.waitUntilSynced();
    const requests = h.transport.requests;
    h.ctl.abort();
    await h.done;
    await sleepMs(1_500);
    expect(h.reflector.phase).to.equal('Stopped');
    expect(h.errors).to.deep.equal([]);
    expect(h.transport.requests).to.equal(requests);
    let again: unknown;
    try {
      await h.reflector.start(new AbortController().signal);
    } catch (err) {
      again = err;
    }
    expect(again, 'a reflector runs once').to.be.instanceOf(Error);
  });

  it('caches Events and TLS Secrets through their projections, never keeping key material', async function () {
    const registry = new Registry();
    const ctl = new AbortController();
    const transport = new KubeClient(c.kc);
    const events = eventCache(transport, projectEvent, { namespace: ns, registry, fields: EVENT_FIELDS });
    const secrets = tlsSecretCache(transport, ns, projectTlsSecret, { registry, fields: TLS_SECRET_FIELDS });
    const runs = [events.start(ctl.signal), secrets.start(ctl.signal)];
    try {
      await Promise.all([events.store.waitUntilSynced(), secrets.store.waitUntilSynced()]);
      await transport.json({
        method: 'POST',
        path: `/apis/events.k8s.io/v1/namespaces/${ns}/events`,
        body: {
          metadata: { name: 'watch-e2e', namespace: ns },
          eventTime: new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'),
          type: 'Warning',
          reason: 'TestReason',
          action: 'Test',
          note: 'hello',
          reportingController: 'dcp-operator/e2e',
          reportingInstance: 'e2e',
          regarding: { kind: 'Pod', name: 'base-10', namespace: ns, apiVersion: 'v1' },
        },
      });
      const crt = '-----BEGIN CERTIFICATE-----\nMIIBcTCCARegAwIBAgICEjQwCgYIKoZIzj0EAwIwFzEVMBMGA1UEAwwMdGVzdC5l\neGFtcGxlMB4XDTI2MTEyNTIwMDUwM1oXDTM2MTEyMjIwMDUwM1owFzEVMBMGA1UE\nAwwMdGVzdC5leGFtcGxlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8VdTUIlH\nw+cjoSNDluMsmndvWn2p0LeweXOf191q8ShRncMpp8kTwZmu6SZaM2HFtjZxpKid\nh635pHzmAdwMc6NTMFEwHQYDVR0OBBYEFAZSL0RHODrmVYjSOHVQzaGdXnn4MB8G\nA1UdIwQYMBaAFAZSL0RHODrmVYjSOHVQzaGdXnn4MA8GA1UdEwEB/wQFMAMBAf8w\nCgYIKoZIzj0EAwIDSAAwRQIgbZ+6qrljN6LHM59azJJmfp/7zJle8/2QcaHESXi0\nAwoCIQCz3E/Tg+jyw9pY8YTaJXH8ZBCqkWXFVRoj+feok66ezA==\n-----END CERTIFICATE-----\n';
      await transport.json({
        method: 'POST',
        path: `/api/v1/namespaces/${ns}/secrets`,
        body: {
          metadata: { name: 'tls-e2e', namespace: ns },
          type: 'kubernetes.io/tls',
          data: { 'tls.crt': Buffer.from(crt).toString('base64'), 'tls.key': Buffer.from('not a real key').toString('base64') },
        },
      });
      await transport.json({ method: 'POST', path: `/api/v1/namespaces/${ns}/secrets`, body: { metadata: { name: 'opaque-e2e', namespace: ns }, stringData: { a: 'b' } } });
      await eventually('the Event in the cache', () => events.store.has(`${ns}/watch-e2e`));
      await eventually('the TLS Secret in the cache', () => secrets.store.has(`${ns}/tls-e2e`));
      expect(events.store.get(`${ns}/watch-e2e`)).to.deep.include({ type: 'Warning', reason: 'TestReason', note: 'hello', count: 1 });
      expect(secrets.store.get(`${ns}/tls-e2e`)?.certificates[0]?.serialNumber).to.equal('1234');
      expect(secrets.store.has(`${ns}/opaque-e2e`), 'the field selector keeps other Secrets out').to.equal(false);
      expect(JSON.stringify(snapshot(secrets.store))).not.to.contain(Buffer.from('not a real key').toString('base64'));
    } finally {
      ctl.abort();
      await Promise.all(runs);
    }
  });
});
