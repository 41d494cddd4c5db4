// Property: personal and secret values planted in Nodes, Pods, Events and Secrets never reach the store, the files or any sink.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type * as k8s from '@kubernetes/client-node';
import { deviceIdOf } from '../../src/collectors/host-os.js';
import { projectNode } from '../../src/collectors/projections.js';
import { DEVICE_KEY_SECRET, keyOfSecret } from '../../src/collectors/device-key.js';
import { encodeRecord } from '../../src/store/record.js';
import { cluster, needsLocalControlPlane, RUN_LABEL, type TestCluster } from './harness.js';
import { killAllOperators, OperatorProcess, waitFor } from './operator-process.js';
import {
  applyOk,
  cursorPast,
  filesUnder,
  findLeaks,
  findMarkers,
  getPolicy,
  pool,
  policyYaml,
  rawEnd,
  readStore,
  readyAtGeneration,
  Receiver,
  REGION,
  storeIds,
  waitForDefaultServiceAccount,
  type Haystack,
} from './pipeline-helpers.js';
import { emitted, eventObjects, MARKER, needles, nodeObject, piiCases, podObject, secretObject, type Planted } from './pii-cases.js';

const CASES = Number(process.env.PII_CASES ?? 1000);
const SEED = Number(process.env.PII_SEED ?? Date.now() % 2 ** 31);
const CONCURRENCY = 24;

// ---------------------------------------------------------------------------------------------

describe('the PII guard end to end: planted personal and secret values never leave through the pipeline', function () {
  this.timeout(300_000);
  let c: TestCluster;
  let namespace: string;
  let sinkDir: string;
  const receivers: Receiver[] = [];
  const operators: OperatorProcess[] = [];

  before(async function () {
    c = cluster();
    namespace = `pii-${c.runId}`;
    sinkDir = mkdtempSync(join(tmpdir(), 'dcp-e2e-pii-sink-'));
    await c.resetPolicy();
    await c.kubectl(['-n', 'dcp-system', 'delete', 'configmap', 'dcp-billing', '--ignore-not-found']);
  });

  afterEach(function () {
    killAllOperators();
    // A stopped operator is no longer "running": its data dir is removed here.
    for (const op of operators) op.cleanup();
  });

  after(async function () {
    for (const r of receivers) await r.close();
    rmSync(sinkDir, { recursive: true, force: true });
    const selector = `${RUN_LABEL}=${c.runId}`;
    await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
    await c.kubectl(['delete', 'namespace', namespace, '--wait=false', '--ignore-not-found']);
    await c.kubectl(['-n', 'kube-system', 'delete', 'secrets,events,pods', '-l', selector, '--wait=false']);
    await c.kubectl(['-n', 'default', 'delete', 'events', '-l', selector, '--wait=false']);
    await c.kubectl(['delete', 'nodes', '-l', selector, '--wait=false']);
  });

  it(`stores and sends none of the values planted in ${CASES} generated cases, and still reports the clean Nodes`, async function () {
    needsLocalControlPlane(this, `creates ${CASES} kwok-managed Nodes full of planted personal data`);
    const started = Date.now();
    const phase = (what: string): void => console.log(`      [${((Date.now() - started) / 1000).toFixed(1)} s] ${what}`);

    // GIVEN: ≥ 1,000 generated cases, each a Node, a Pod, two Events and a Secret full of planted values.
    const cases = piiCases(CASES, SEED);
    expect(cases.length).to.equal(CASES);
    const poisoned = cases.filter((p) => p.raw.poison !== undefined);
    const clean = cases.filter((p) => p.raw.poison === undefined);
    phase(`generated ${cases.length} cases (seed ${SEED}; PII_SEED=${SEED} reproduces them): ${poisoned.length} Nodes with PII in an emitted field`);
    for (const p of cases.slice(0, 50)) expect(new X509Certificate(p.certPem).subject).to.include(p.hostname);

    await c.ensureNamespace(namespace);
    await waitForDefaultServiceAccount(c, namespace);
    const core = c.core();
    const secrets = cases.map((p) => secretObject(c, p, namespace));
    await pool(cases, CONCURRENCY, async (p) => {
      await core.createNode({ body: nodeObject(c, p, cases) });
    });
    phase(`created ${cases.length} Nodes`);
    await pool(cases, CONCURRENCY, async (p, i) => {
      await core.createNamespacedPod({ namespace, body: podObject(c, p, namespace) });
      for (const e of eventObjects(c, p, namespace)) await core.createNamespacedEvent({ namespace: e.metadata.namespace ?? 'default', body: e });
      const s = secrets[i] as k8s.V1Secret;
      await core.createNamespacedSecret({ namespace: s.metadata?.namespace ?? namespace, body: s });
    });
    phase(`created ${cases.length} Pods, ${2 * cases.length} Events and ${cases.length} Secrets`);

    // WHEN: the operator runs with a regional http sink, a file sink and a central otlp sink.
    const regional = await Receiver.start();
    const central = await Receiver.start();
    receivers.push(regional, central);
    const op = new OperatorProcess(c.kubeconfigPath);
    operators.push(op);
    await op.started();
    await applyOk(
      c,
      policyYaml({
        categories: { controlPlane: { intervalSeconds: 10 } },
        export: {
          forwardAggregatesToCentral: true,
          sinks: [
            { name: 'regional', type: 'http', url: regional.url(), region: REGION },
            { name: 'archive', type: 'file', path: sinkDir, region: REGION },
            { name: 'central', type: 'otlp', url: central.url('/otel'), region: 'central' },
          ],
        },
      }),
    );
    await readyAtGeneration(c);
    phase('policy Ready');

    const count = async (resource: 'nodes' | 'pods'): Promise<number> =>
      (await c.kubectlOk(['get', resource, ...(resource === 'pods' ? ['-A'] : []), '-o', 'name'])).split('\n').filter((l) => l.trim() !== '').length;
    await waitFor(
      async () => {
        const [inventory, nodes, pods] = await Promise.all([getPolicy(c).then((p) => p?.status?.inventory), count('nodes'), count('pods')]);
        return inventory?.nodes === nodes && inventory.pods === pods;
      },
      90_000,
      'status.inventory to count every Node and Pod',
      500,
    );

    // The device IDs the clean Nodes' HostOsInfo events must carry: HMAC of the systemUUID under the cluster key.
    const key = keyOfSecret(JSON.parse(await c.kubectlOk(['-n', 'dcp-system', 'get', 'secret', DEVICE_KEY_SECRET, '-o', 'json'])));
    const apiNodes = (JSON.parse(await c.kubectlOk(['get', 'nodes', '-l', `${RUN_LABEL}=${c.runId}`, '-o', 'json'])) as { items: unknown[] }).items;
    const deviceOf = new Map<string, string>();
    for (const n of apiNodes) {
      const name = (n as { metadata: { name: string } }).metadata.name;
      const projection = projectNode(n);
      if (projection) deviceOf.set(name, deviceIdOf(key, projection));
    }
    expect(deviceOf.size).to.equal(cases.length);
    // What the collectors read is what was planted: neither the API server nor kwok rewrote it.
    const infoOf = new Map(apiNodes.map((n) => [(n as k8s.V1Node).metadata?.name, (n as k8s.V1Node).status?.nodeInfo]));
    for (const p of cases) {
      const info = infoOf.get(p.nodeName);
      expect({ osImage: info?.osImage, kernelVersion: info?.kernelVersion, containerRuntimeVersion: info?.containerRuntimeVersion, systemUUID: info?.systemUUID }, p.nodeName).to.deep.equal({
        osImage: emitted(p, 'osImage', cases),
        kernelVersion: emitted(p, 'kernelVersion', cases),
        containerRuntimeVersion: emitted(p, 'containerRuntimeVersion', cases),
        systemUUID: p.systemUUID,
      });
    }

    let hostOs = new Set<string>();
    await waitFor(
      async () => {
        const rejected = (await op.metric('dcp_events_pii_rejected_total', 'category="hostOs"')) ?? 0;
        const emittedCount = (await getPolicy(c))?.status?.categories?.hostOs?.eventsEmitted ?? 0;
        if (rejected < poisoned.length || emittedCount < clean.length) return false;
        if ((await readStore(op.dataDir, { name: 'ControlPlaneInventory' })).length === 0) return false;
        hostOs = new Set((await readStore(op.dataDir, { name: 'HostOsInfo' })).map((e) => String(e.data.deviceId)));
        return clean.every((p) => hostOs.has(deviceOf.get(p.nodeName) ?? ''));
      },
      120_000,
      'HostOsInfo events for every clean Node, a rejection for every poisoned one, and an inventory event',
      1000,
    );
    phase(`store holds HostOsInfo for all ${clean.length} clean Nodes`);

    // The Events and Secrets are read too: a HostError per Node Event (and per kubelet warning in kube-system), a
    // LinuxVmEvent per kube-system Pod Event, a CertificateStatus per TLS Secret (each certificate is its own).
    const tlsCases = cases.filter((p) => p.raw.secretType === 'tls');
    const tlsFingerprints = new Set(tlsCases.map((p) => new X509Certificate(p.certPem).fingerprint256.replace(/:/g, '').toLowerCase()));
    const systemPodEvents = cases.filter((p) => p.index % 2 === 0).length;
    let other = { hostErrors: 0, linuxVm: 0, certificates: 0 };
    await waitFor(
      async () => {
        const certificates = new Set((await readStore(op.dataDir, { name: 'CertificateStatus' })).map((e) => String(e.data.fingerprintSha256)));
        other = {
          hostErrors: (await readStore(op.dataDir, { name: 'HostError' })).length,
          linuxVm: (await readStore(op.dataDir, { name: 'LinuxVmEvent' })).length,
          certificates: [...tlsFingerprints].filter((f) => certificates.has(f)).length,
        };
        return other.hostErrors >= cases.length + systemPodEvents && other.linuxVm >= systemPodEvents && other.certificates === tlsFingerprints.size;
      },
      120_000,
      'HostError, LinuxVmEvent and CertificateStatus events for the planted Events and TLS Secrets',
      1000,
    );
    phase(`store holds ${other.hostErrors} HostError, ${other.linuxVm} LinuxVmEvent and all ${other.certificates} certificates of the TLS Secrets`);
    const rejected = (await op.metric('dcp_events_pii_rejected_total', 'category="hostOs"')) ?? 0;
    const invalid = (await op.metric('dcp_events_invalid_total')) ?? 0;

    // The sinks have caught up with the store: all three cursors past what is stored, every raw event at
    // the regional receiver and in the file sink (the central one reads them too, and must forward none).
    await waitFor(
      async () => {
        const end = await rawEnd(op.dataDir);
        if (end === undefined) return false;
        for (const sink of ['regional', 'archive', 'central']) if (!(await cursorPast(op.dataDir, sink, end))) return false;
        const stored = await storeIds(op.dataDir);
        const filed = new Set(
          (await filesUnder(sinkDir))
            .flatMap((f) => f.text.split('\n'))
            .filter((l) => l.trim() !== '')
            .map((l) => (JSON.parse(l) as { id: string }).id),
        );
        const got = regional.ids();
        return [...stored].every((id) => got.has(id) && filed.has(id));
      },
      60_000,
      'the regional and file sinks to receive every stored event',
      500,
    );
    const stop = await op.stop('SIGTERM');
    expect(stop.code, 'dcp run exit code').to.equal(0);
    phase('sinks caught up; operator stopped');

    // THEN: no planted value anywhere the data went.
    const haystacks: Haystack[] = [
      ...(await filesUnder(op.dataDir)),
      ...(await filesUnder(sinkDir)),
      ...regional.requests.map((r, i) => ({ name: `regional receiver body ${i}`, text: r.body })),
      ...central.requests.map((r, i) => ({ name: `central receiver body ${i}`, text: r.body })),
      // The operator's own log (debug level): logs leave the cluster too, through whatever collects them.
      { name: 'dcp run log', text: op.logs.map((l) => JSON.stringify(l)).join('\n') },
    ];
    const allNeedles = cases.flatMap((p, i) => needles(p, secrets[i] as k8s.V1Secret));
    // The scanner itself finds every value of a case in that case's own objects, JSON-escaped, nested in an
    // OTLP body, and as a store record.
    const first = cases[0] as Planted;
    const firstSecret = secrets[0] as k8s.V1Secret;
    const objects = {
      node: nodeObject(c, first, cases),
      pod: podObject(c, first, namespace),
      events: eventObjects(c, first, namespace),
      secret: { ...firstSecret, data: Object.fromEntries(Object.entries(firstSecret.stringData ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) },
    };
    const otlp = JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: JSON.stringify(objects) } }] }] }] });
    const firstNeedles = needles(first, firstSecret);
    for (const text of [otlp, encodeRecord(objects)]) {
      const selfFound = new Set(findLeaks([{ name: 'self-check', text }], firstNeedles).map((l) => l.needle));
      expect(firstNeedles.filter((n) => !selfFound.has(n)).map((n) => `${n.what}: ${JSON.stringify(n.value)}`), 'planted values the scanner missed').to.deep.equal([]);
      expect(findMarkers([{ name: 'self-check', text }], MARKER, new Set([first.marker])).length).to.equal(1);
    }
    const bytes = haystacks.reduce((n, h) => n + h.text.length, 0);
    const leaks = findLeaks(haystacks, allNeedles);
    const markers = findMarkers(haystacks, MARKER, new Set(cases.map((p) => p.marker)));
    phase(`scanned ${haystacks.length} files and bodies (${(bytes / 1024).toFixed(0)} KiB) for ${allNeedles.length} planted values`);
    expect(leaks.slice(0, 20).map((l) => `${l.needle.what} ${JSON.stringify(l.needle.value)} in ${l.where}`), 'planted values found').to.deep.equal([]);
    expect(markers.slice(0, 20), 'markers of planted values found').to.deep.equal([]);

    // AND the property is not vacuous: what was scanned holds the host OS facts of every clean Node.
    const poisonedDevices = new Set(poisoned.map((p) => deviceOf.get(p.nodeName)));
    expect([...hostOs].filter((d) => poisonedDevices.has(d)), 'HostOsInfo stored for a Node whose emitted fields carry PII').to.deep.equal([]);
    const sentHostOs = new Set(regional.events().filter((e) => e.name === 'HostOsInfo').map((e) => String(e.data.deviceId)));
    expect(clean.filter((p) => !sentHostOs.has(deviceOf.get(p.nodeName) ?? '')).map((p) => p.nodeName), 'clean Nodes missing at the regional sink').to.deep.equal([]);
    expect(poisoned.length).to.be.greaterThan(0);
    expect(rejected, 'dcp_events_pii_rejected_total{category="hostOs"}').to.be.at.least(poisoned.length);
    expect(invalid, 'dcp_events_invalid_total').to.equal(0);
    expect(regional.events().filter((e) => e.name === 'ControlPlaneInventory').length).to.be.greaterThan(0);
    expect(central.events().filter((e) => e.name !== 'DailyAggregate'), 'raw events at the central sink').to.deep.equal([]);
    phase(`done: ${clean.length} clean Nodes reported, ${rejected} host OS events rejected, ${haystacks.length} places scanned`);
  });
});
