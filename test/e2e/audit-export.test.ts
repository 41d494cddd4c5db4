// The audit-export extension end to end: the operator installs it on the test cluster; a second control plane's
// kube-apiserver sends its audit events to `dcp audit-exporter` processes run with what the controller wrote;
// Azurite (blob), a directory (file) and a local receiver (http) must hold exactly the test user's audit IDs.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parse, stringify } from 'yaml';
import { toRecord } from '../../src/audit/audit-event.js';
import { AzureBlobDestination, HttpDestination } from '../../src/audit/destinations/index.js';
import { Exporter } from '../../src/audit/exporter.js';
import { auditMetrics } from '../../src/audit/metrics.js';
import { silentLog } from '../../src/observability/log.js';
import { AuditedControlPlane, Azurite, ExporterProcess, fileDestinationEvents } from './audit-helpers.js';
import { cluster, KUBECTL, needsLocalControlPlane, ROOT, type TestCluster } from './harness.js';
import { killAllOperators, OperatorProcess, waitFor } from './operator-process.js';
import { policyYaml } from './pipeline-helpers.js';

const NS = 'dcp-system';
const SELECTOR = 'datacollection.arc.io/extension=audit-export';
const RID = '/subscriptions/3f2c1a9e-0000-4000-8000-000000000001/resourceGroups/e2e/providers/Microsoft.Kubernetes/connectedClusters/audited';
const TESTER = 'system:serviceaccount:audit-e2e:audit-tester';

interface AuditEvent {
  auditID: string;
  verb: string;
  user?: { username?: string };
}

interface PolicyStatusView {
  status?: {
    auditExport?: { state: string; reason?: string; backlogBytes?: number };
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}

async function getPolicy(c: TestCluster): Promise<PolicyStatusView | undefined> {
  const r = await c.kubectl(['get', 'dcp', 'default', '-o', 'json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as PolicyStatusView) : undefined;
}

const b64 = (s: unknown): string => Buffer.from(String(s), 'base64').toString('utf8');

/** The test user's audit IDs per destination, and how often each appears. */
function idsOf(events: AuditEvent[]): string[] {
  return events.filter((e) => e.user?.username === TESTER).map((e) => e.auditID);
}

describe('audit export extension (end to end)', function () {
  this.timeout(180_000);
  let c: TestCluster;
  let local = false;
  let operator: OperatorProcess;
  const azurite = new Azurite();
  const audited = new AuditedControlPlane();
  const work = mkdtempSync(join(tmpdir(), 'dcp-audit-e2e-'));
  const exporters: ExporterProcess[] = [];
  let webhookExporter: ExporterProcess;
  const httpReceived: AuditEvent[] = [];
  let httpServer: http.Server;
  const issued: Record<string, string> = {};

  before(async function () {
    // The tests build on one another from an audited control plane of their own (kwokctl, audit webhook flags).
    needsLocalControlPlane(this, 'starts an audited control plane of its own; kwok runs the exporter Pod');
    local = true;
    c = cluster();
    await c.resetPolicy();
    await c.kubectlOk(['apply', '-f', join(ROOT, 'deploy/base/audit-exporter-rbac.yaml')]);
    await c.kubectl(['delete', 'node', 'audit-node', '--ignore-not-found']);
    await c.createNodes([{ name: 'audit-node' }]);
    await azurite.start();
    await c.kubectl(['-n', NS, 'delete', 'secret', 'audit-storage', '--ignore-not-found']);
    await c.kubectlOk(['-n', NS, 'create', 'secret', 'generic', 'audit-storage', `--from-literal=connectionString=${azurite.connectionString}`]);
    httpServer = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        httpReceived.push(...(JSON.parse(Buffer.concat(chunks).toString()) as { items: AuditEvent[] }).items);
        res.end('{}');
      });
    });
    await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
    operator = new OperatorProcess(c.kubeconfigPath);
    await operator.started();
  });

  after(async function () {
    if (!local) return; // skipped before anything started (E2E_KUBECONFIG)
    for (const e of exporters) await e.stop('SIGKILL');
    await audited.stop();
    await azurite.cleanup();
    httpServer.close();
    await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
    await c.kubectl(['-n', NS, 'delete', 'secret', 'audit-storage', '--ignore-not-found']);
    await c.kubectl(['delete', 'node', 'audit-node', '--ignore-not-found']);
    killAllOperators();
    rmSync(work, { recursive: true, force: true });
  });

  const labelled = async (): Promise<string[]> =>
    (await c.kubectlOk(['-n', NS, 'get', 'configmaps,secrets,serviceaccounts,services,deployments,replicasets,pods', '-l', SELECTOR, '-o', 'name'])).split('\n').filter((l) => l !== '');

  const enable = (profile: string) =>
    c.apply(
      policyYaml({
        diagnostics: {
          auditExport: { enabled: true, profile, destination: { type: 'azureBlob', resourceId: RID, secretRef: { name: 'audit-storage', key: 'connectionString' } } },
        },
      }),
    );

  it('enabling creates the ConfigMap, TLS Secret, ServiceAccount, Service and Deployment, labelled and owned by the policy', async function () {
    const r = await enable('kube-audit');
    expect(r.code, r.stderr).to.equal(0);
    const want = ['configmap/dcp-audit-exporter-config', 'secret/dcp-audit-exporter-tls', 'serviceaccount/dcp-audit-exporter', 'service/dcp-audit-exporter', 'deployment.apps/dcp-audit-exporter'];
    await waitFor(async () => {
      const now = await labelled();
      return want.every((w) => now.includes(w));
    }, 30_000, 'the extension objects', 500);
    const policy = await getPolicy(c);
    const deployment = JSON.parse(await c.kubectlOk(['-n', NS, 'get', 'deployment', 'dcp-audit-exporter', '-o', 'json'])) as { metadata: { ownerReferences: { kind: string; uid: string }[] } };
    expect(deployment.metadata.ownerReferences[0]).to.include({ kind: 'DataCollectionPolicy' });
    expect(policy?.status?.auditExport?.state).to.be.oneOf(['Progressing', 'Enabled']);
  });

  it('the API server sends to an exporter run with what the controller wrote; every destination holds exactly the expected audit IDs, none twice', async function () {
    const cm = JSON.parse(await c.kubectlOk(['-n', NS, 'get', 'configmap', 'dcp-audit-exporter-config', '-o', 'json'])) as { data: Record<string, string> };
    const secret = JSON.parse(await c.kubectlOk(['-n', NS, 'get', 'secret', 'dcp-audit-exporter-tls', '-o', 'json'])) as { data: Record<string, string> };
    const storage = JSON.parse(await c.kubectlOk(['-n', NS, 'get', 'secret', 'audit-storage', '-o', 'json'])) as { data: Record<string, string> };
    // The files as the Deployment mounts them.
    for (const d of ['config', 'tls', 'credentials']) mkdirSync(join(work, d), { recursive: true });
    for (const [k, v] of Object.entries(cm.data)) writeFileSync(join(work, 'config', k), v);
    for (const [k, v] of Object.entries(secret.data)) writeFileSync(join(work, 'tls', k), b64(v));
    writeFileSync(join(work, 'credentials', 'connectionString'), b64(storage.data.connectionString));
    const config = JSON.parse(cm.data['exporter.json']!) as Record<string, unknown>;
    expect(config).to.deep.include({ profile: 'kube-audit', destination: { type: 'azureBlob', resourceId: RID, credentialKey: 'connectionString' } });
    const saKubeconfig = await c.tokenKubeconfig(NS, 'dcp-audit-exporter', join(work, 'exporter-sa.kubeconfig'));

    webhookExporter = new ExporterProcess([
      '--config', join(work, 'config/exporter.json'),
      '--listen', '127.0.0.1:0',
      '--tls-cert', join(work, 'tls/tls.crt'),
      '--tls-key', join(work, 'tls/tls.key'),
      '--token-file', join(work, 'tls/token'),
      '--state-dir', join(work, 'state-webhook'),
      '--credentials-dir', join(work, 'credentials'),
      '--max-body-bytes', String(1024 * 1024),
      '--kubeconfig', saKubeconfig,
      '--namespace', NS,
    ]);
    exporters.push(webhookExporter);
    await webhookExporter.ready();

    // The webhook kubeconfig as written, pointed at this process instead of the Service's ClusterIP.
    const kubeconfig = parse(readFileSync(join(work, 'tls/webhook-kubeconfig.yaml'), 'utf8')) as { clusters: { cluster: Record<string, string> }[] };
    expect(kubeconfig.clusters[0]!.cluster['tls-server-name']).to.equal('dcp-audit-exporter.dcp-system.svc');
    kubeconfig.clusters[0]!.cluster.server = `https://127.0.0.1:${webhookExporter.webhookPort}/audit`;
    writeFileSync(join(work, 'webhook.kubeconfig'), stringify(kubeconfig));
    await audited.start(join(work, 'config/audit-policy.yaml'), join(work, 'webhook.kubeconfig'));

    // The log-file source: the same profile to a file destination, and kube-audit-admin to an http destination.
    const logConfig = (over: Record<string, unknown>, name: string): string => {
      const file = join(work, `${name}.json`);
      writeFileSync(file, JSON.stringify({ ...config, ...over }));
      return file;
    };
    const fileDir = join(work, 'file-destination');
    for (const [name, cfg] of [
      ['log-file', logConfig({ destination: { type: 'file', path: fileDir } }, 'log-file')],
      ['log-http', logConfig({ profile: 'kube-audit-admin', destination: { type: 'http', url: `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/audit` } }, 'log-http')],
    ] as const) {
      const e = new ExporterProcess(['--config', cfg, '--listen', '', '--audit-log', audited.auditLog, '--state-dir', join(work, `state-${name}`)]);
      exporters.push(e);
      await e.ready();
    }

    // As a test user (a ServiceAccount token: RBAC applies): create, update, get, list, delete.
    const admin = ['--kubeconfig', audited.kubeconfig];
    const kubectl = KUBECTL;
    const { execFileSync } = await import('node:child_process');
    const k = (...args: string[]): string => execFileSync(kubectl, [...admin, ...args], { encoding: 'utf8' });
    k('create', 'namespace', 'audit-e2e');
    k('-n', 'audit-e2e', 'create', 'serviceaccount', 'audit-tester');
    k('-n', 'audit-e2e', 'create', 'rolebinding', 'audit-tester', '--clusterrole=edit', '--serviceaccount=audit-e2e:audit-tester');
    const token = k('-n', 'audit-e2e', 'create', 'token', 'audit-tester').trim();
    const kc = parse(readFileSync(audited.kubeconfig, 'utf8')) as { clusters: { cluster: { server: string; 'certificate-authority'?: string; 'certificate-authority-data'?: string } }[] };
    const cl = kc.clusters[0]!.cluster;
    const ca = cl['certificate-authority-data'] ? b64(cl['certificate-authority-data']) : readFileSync(cl['certificate-authority']!, 'utf8');
    const call = (method: string, path: string, body?: unknown): Promise<{ status: number; auditId: string }> =>
      new Promise((resolve, reject) => {
        const url = new URL(path, cl.server);
        const req = https.request(url, { method, ca, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, auditId: String(res.headers['audit-id']) }));
        });
        req.on('error', reject);
        req.end(body === undefined ? undefined : JSON.stringify(body));
      });
    const base = '/api/v1/namespaces/audit-e2e/configmaps';
    const steps: [string, string, string, unknown?][] = [
      ['create', 'POST', base, { metadata: { name: 'audited' }, data: { a: '1' } }],
      ['update', 'PUT', `${base}/audited`, { metadata: { name: 'audited' }, data: { a: '2' } }],
      ['get', 'GET', `${base}/audited`],
      ['list', 'GET', base],
      ['delete', 'DELETE', `${base}/audited`],
    ];
    for (const [verb, method, path, body] of steps) {
      const r = await call(method, path, body);
      expect(r.status, `${verb} answered ${r.status}`).to.be.lessThan(300);
      issued[verb] = r.auditId;
    }
    const all = Object.values(issued).sort();
    const mutating = [issued.create, issued.update, issued.delete].map(String).sort();

    const blobEvents = async (): Promise<AuditEvent[]> => {
      const events: AuditEvent[] = [];
      for (const [name, lines] of await azurite.blobLines('insights-logs-kube-audit')) {
        expect(name).to.match(/^resourceId=\/SUBSCRIPTIONS\/3F2C1A9E-0000-4000-8000-000000000001\/RESOURCEGROUPS\/E2E\/PROVIDERS\/MICROSOFT\.KUBERNETES\/CONNECTEDCLUSTERS\/AUDITED\/y=\d{4}\/m=\d\d\/d=\d\d\/h=\d\d\/m=00\/PT1H\.json$/);
        for (const l of lines) events.push(JSON.parse((JSON.parse(l) as { properties: { log: string } }).properties.log) as AuditEvent);
      }
      return events;
    };
    const sorted = (xs: string[]): string[] => [...new Set(xs)].sort();
    await waitFor(
      async () =>
        sorted(idsOf(await blobEvents())).join() === all.join() &&
        sorted(idsOf(fileDestinationEvents(fileDir) as unknown as AuditEvent[])).join() === all.join() &&
        sorted(idsOf(httpReceived)).join() === mutating.join(),
      60_000,
      'the audit IDs in every destination',
      500,
    );
    await new Promise((r) => setTimeout(r, 3000)); // anything sent twice would have arrived by now
    expect(idsOf(await blobEvents()).sort(), 'azureBlob (webhook, kube-audit)').to.deep.equal(all);
    expect(idsOf(fileDestinationEvents(fileDir) as unknown as AuditEvent[]).sort(), 'file (log file, kube-audit)').to.deep.equal(all);
    expect(idsOf(httpReceived).sort(), 'http (log file, kube-audit-admin)').to.deep.equal(mutating);
    expect(await webhookExporter.metric('dcp_audit_events_written_total', 'destination="azureBlob"')).to.be.greaterThan(0);
  });

  it('the status tells the truth: Enabled once the exporter reports and its Pod is ready', async function () {
    await waitFor(async () => (await getPolicy(c))?.status?.auditExport?.state === 'Enabled', 60_000, 'state Enabled', 1000);
    const policy = await getPolicy(c);
    const cond = policy?.status?.conditions?.find((x) => x.type === 'AuditExportReady');
    expect(cond).to.include({ status: 'True', reason: 'Exporting' });
    expect(policy?.status?.auditExport).to.include({ backlogBytes: 0 });
  });

  it('refuses and counts unauthenticated, forbidden, oversized and malformed webhook requests', async function () {
    const token = readFileSync(join(work, 'tls/token'), 'utf8');
    const ca = readFileSync(join(work, 'tls/tls.crt'), 'utf8');
    const post = (body: string, auth?: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = https.request(
          { host: '127.0.0.1', port: webhookExporter.webhookPort, method: 'POST', path: '/audit', ca, servername: 'dcp-audit-exporter.dcp-system.svc', headers: auth ? { authorization: `Bearer ${auth}` } : {} },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const list = '{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[]}';
    expect(await post(list)).to.equal(401);
    expect(await post(list, 'not-the-token')).to.equal(403);
    expect(await post(`{"kind":"EventList","items":[${'"x",'.repeat(400_000)}"x"]}`, token)).to.equal(413);
    expect(await post('{"kind":"EventList","items":[', token)).to.equal(400);
    for (const reason of ['unauthenticated', 'forbidden', 'too_large', 'malformed']) {
      expect(await webhookExporter.metric('dcp_audit_requests_refused_total', `reason="${reason}"`), reason).to.equal(1);
    }
  });

  it('the status tells the truth when the destination refuses writes and when its Secret is missing, and recovers', async function () {
    const state = async (): Promise<string> => {
      const a = (await getPolicy(c))?.status?.auditExport;
      return `${a?.state}/${a?.reason}`;
    };
    const credential = join(work, 'credentials', 'connectionString');
    const good = readFileSync(credential, 'utf8');
    // A rotated Secret with a wrong account key: the exporter reads it at the next write and Azure Storage answers 403.
    writeFileSync(credential, good.replace(/AccountKey=[^;]+/, `AccountKey=${Buffer.from('not-the-key').toString('base64')}`));
    await waitFor(async () => (await state()) === 'Failed/DestinationRefused', 30_000, 'Failed/DestinationRefused', 500);
    const cond = (await getPolicy(c))?.status?.conditions?.find((x) => x.type === 'AuditExportReady');
    expect(cond).to.include({ status: 'False', reason: 'DestinationRefused' });
    expect(await webhookExporter.metric('dcp_audit_destination_up')).to.equal(0);
    await c.kubectlOk(['-n', NS, 'delete', 'secret', 'audit-storage']);
    await waitFor(async () => (await state()) === 'Failed/SecretNotFound', 30_000, 'Failed/SecretNotFound', 500);
    await c.kubectlOk(['-n', NS, 'create', 'secret', 'generic', 'audit-storage', `--from-literal=connectionString=${azurite.connectionString}`]);
    writeFileSync(credential, good);
    await waitFor(async () => (await state()) === 'Enabled/Exporting', 60_000, 'Enabled again', 500);
    await waitFor(async () => (await webhookExporter.metric('dcp_audit_backlog_bytes')) === 0, 30_000, 'the buffer drained', 500);
  });

  it('objects deleted or edited by hand are put back within seconds', async function () {
    const uid = (await c.kubectlOk(['-n', NS, 'get', 'configmap', 'dcp-audit-exporter-config', '-o', 'jsonpath={.metadata.uid}'])).trim();
    const token = (await c.kubectlOk(['-n', NS, 'get', 'secret', 'dcp-audit-exporter-tls', '-o', 'jsonpath={.data.token}'])).trim();
    await c.kubectlOk(['-n', NS, 'delete', 'configmap', 'dcp-audit-exporter-config']);
    await c.kubectlOk(['-n', NS, 'delete', 'secret', 'dcp-audit-exporter-tls']);
    await c.kubectlOk(['-n', NS, 'patch', 'service', 'dcp-audit-exporter', '--type=json', '-p', '[{"op":"replace","path":"/spec/ports/0/targetPort","value":1234}]']);
    await waitFor(
      async () => {
        const r = await c.kubectl(['-n', NS, 'get', 'configmap', 'dcp-audit-exporter-config', '-o', 'jsonpath={.metadata.uid}']);
        const port = await c.kubectlOk(['-n', NS, 'get', 'service', 'dcp-audit-exporter', '-o', 'jsonpath={.spec.ports[0].targetPort}']);
        return r.code === 0 && r.stdout.trim() !== uid && port.trim() === '9443';
      },
      10_000,
      'the ConfigMap recreated and the Service port restored',
      250,
    );
    // The Secret comes back with the same token and certificate: the API server's webhook kubeconfig still works.
    await waitFor(async () => (await c.kubectl(['-n', NS, 'get', 'secret', 'dcp-audit-exporter-tls'])).code === 0, 10_000, 'the TLS Secret recreated', 250);
    expect((await c.kubectlOk(['-n', NS, 'get', 'secret', 'dcp-audit-exporter-tls', '-o', 'jsonpath={.data.token}'])).trim()).to.equal(token);
  });

  it('a profile change updates the objects in place and rolls the Deployment', async function () {
    const hash = async (): Promise<string> =>
      (await c.kubectlOk(['-n', NS, 'get', 'deployment', 'dcp-audit-exporter', '-o', 'jsonpath={.spec.template.metadata.annotations.datacollection\\.arc\\.io/config-hash}'])).trim();
    const before = await hash();
    expect((await enable('kube-audit-admin')).code).to.equal(0);
    await waitFor(async () => (await hash()) !== before, 15_000, 'a new Pod template', 250);
    const cm = JSON.parse(await c.kubectlOk(['-n', NS, 'get', 'configmap', 'dcp-audit-exporter-config', '-o', 'json'])) as { data: Record<string, string> };
    expect((JSON.parse(cm.data['exporter.json']!) as { profile: string }).profile).to.equal('kube-audit-admin');
    expect(cm.data['audit-policy.yaml']).to.contain('level: None');
  });

  it('a 10-minute destination outage (simulated clock) loses nothing, then drains each event once', async function () {
    const events = fileDestinationEvents(join(work, 'file-destination')).slice(0, 40).map(toRecord);
    expect(events.length).to.be.greaterThan(10);
    let now = Date.now();
    const registry = new Registry();
    const outageRid = `${RID}-outage`;
    const exporter = await Exporter.open({
      config: { profile: 'kube-audit', destination: { type: 'azureBlob', resourceId: outageRid, credentialKey: 'x' }, intermediateRetentionHours: 48, bufferMaxBytes: 64 << 20 },
      destination: new AzureBlobDestination({ profile: 'kube-audit', resourceId: outageRid, credential: () => Promise.resolve(azurite.connectionString) }),
      stateDir: join(work, 'state-outage'),
      metrics: auditMetrics(registry),
      log: silentLog,
      now: () => now,
    });
    await exporter.accept(events.slice(0, 4), 'webhook');
    await azurite.stop();
    for (let minute = 1; minute <= 10; minute++) {
      now += 60_000;
      await exporter.accept(events.slice(minute * 3 + 1, minute * 3 + 4), 'webhook');
      if (minute === 5) await exporter.accept(events.slice(minute * 3 + 1, minute * 3 + 4), 'webhook'); // a resent batch
      expect(await exporter.drain()).to.equal(false);
    }
    expect(exporter.status()).to.include({ destinationUp: false, backlogEvents: 33 });
    await azurite.start();
    expect(await exporter.drain()).to.equal(true);
    const lines = [...(await azurite.blobLines('insights-logs-kube-audit')).entries()].filter(([name]) => name.includes('-OUTAGE/')).flatMap(([, l]) => l);
    const ids = lines.map((l) => (JSON.parse((JSON.parse(l) as { properties: { log: string } }).properties.log) as AuditEvent).auditID);
    expect(ids.sort()).to.deep.equal(events.slice(0, 34).map((e) => e.auditID).sort());
    await exporter.close();
  });

  it('the 48-hour purge deletes undelivered buffered data on an injected clock, and counts it', async function () {
    const events = fileDestinationEvents(join(work, 'file-destination')).slice(0, 5).map(toRecord);
    let now = Date.now();
    const registry = new Registry();
    const stateDir = join(work, 'state-purge');
    const exporter = await Exporter.open({
      config: { profile: 'kube-audit', destination: { type: 'http', url: 'http://127.0.0.1:9/' }, intermediateRetentionHours: 48, bufferMaxBytes: 64 << 20 },
      destination: new HttpDestination({ url: 'http://127.0.0.1:9/', timeoutMs: 2000 }),
      stateDir,
      metrics: auditMetrics(registry),
      log: silentLog,
      now: () => now,
    });
    await exporter.accept(events, 'webhook');
    expect(exporter.status().backlogEvents).to.equal(5);
    now += 47 * 3_600_000;
    await exporter.drain();
    expect(exporter.status().backlogEvents).to.equal(5);
    now += 3_600_000;
    await exporter.drain();
    expect(exporter.status()).to.include({ backlogEvents: 0, backlogBytes: 0 });
    expect(readdirSync(join(stateDir, 'buffer'))).to.deep.equal([]);
    const dropped = (await registry.getSingleMetric('dcp_audit_events_dropped_total')?.get())?.values.find((v) => v.labels.reason === 'retention_expired');
    expect(dropped?.value).to.equal(5);
    await exporter.close();
  });

  it('disabling removes every extension object; the exporters flush and exit 0 on SIGTERM', async function () {
    for (const e of exporters) expect(await e.stop('SIGTERM'), e.output.slice(-15).join('\n')).to.equal(0);
    const r = await c.apply(policyYaml({ diagnostics: { auditExport: { enabled: false } } }));
    expect(r.code, r.stderr).to.equal(0);
    await waitFor(async () => (await labelled()).length === 0, 60_000, 'no extension object left', 500);
    await waitFor(async () => (await getPolicy(c))?.status?.auditExport?.state === 'Disabled', 30_000, 'state Disabled', 500);
  });
});
