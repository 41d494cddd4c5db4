// `dcp preview` as a child process against the local control plane: per-sink bodies, residency, no identifiers, device key.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { selfSignedCertificate } from '../../hack/certs.js';
import type { DcpEvent } from '../../src/api/event.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import { cluster, RUN_LABEL, type TestCluster } from './harness.js';
import { killAllOperators, OperatorProcess, runDcp, waitFor, type CliResult } from './operator-process.js';

/** The parts of the preview JSON these tests read. */
interface Preview {
  generatedAt: string;
  policy: { region: string; forwardAggregatesToCentral: boolean };
  cluster: { nodes: number };
  deviceKey: { source: 'secret' | 'placeholder'; secret: string; reason?: string };
  sinks: { name: string; type: string; region: string; destination: string; receives: boolean; reason: string; events: DcpEvent[]; bytes: number; body: string | null }[];
  stored: DcpEvent[];
  dropped: { id: string; category: string; name: string; stage: string; problems: string[] }[];
  notes: string[];
}

interface NodeList {
  items: { metadata: { name: string; labels?: Record<string, string> }; status?: { addresses?: { type: string; address: string }[]; nodeInfo?: { systemUUID?: string } } }[];
}

describe('dcp preview against the local control plane', function () {
  this.timeout(180_000);
  let c: TestCluster;
  let namespace: string;
  let archive: string;
  let tlsFingerprint = '';
  const names = (): string[] => ['a', 'b', 'leak'].map((s) => `cli-pv-${c.runId}-${s}`);

  const policy = (sinks: boolean): string => `apiVersion: datacollection.arc.io/v1alpha1
kind: DataCollectionPolicy
metadata:
  name: default
spec:
  subscriptionId: 3f2c1a9e-0000-4000-8000-000000000001
  region: eastus
${
  sinks
    ? `  export:
    forwardAggregatesToCentral: true
    sinks:
      - { name: regional, type: http, url: "http://127.0.0.1:9/ingest", region: eastus }
      - { name: central, type: otlp, url: "http://127.0.0.1:9/otel", region: central }
      - { name: archive, type: file, path: "${archive}", region: eastus }
`
    : ''
}`;

  async function preview(extra: string[] = []): Promise<{ report: Preview; raw: CliResult }> {
    const raw = await runDcp(['preview', '--kubeconfig', c.kubeconfigPath, '--namespace', namespace, '--output', 'json', ...extra]);
    if (raw.code !== 0) throw new Error(`dcp preview failed (${raw.code}): ${raw.stderr}`);
    return { report: JSON.parse(raw.stdout) as Preview, raw };
  }

  /** Every node name, hostname and systemUUID in the cluster: none may appear in what preview prints. */
  async function identifiers(): Promise<string[]> {
    const list = JSON.parse(await c.kubectlOk(['get', 'nodes', '-o', 'json'])) as NodeList;
    const out = new Set<string>();
    for (const n of list.items) {
      out.add(n.metadata.name);
      const label = n.metadata.labels?.['kubernetes.io/hostname'];
      if (label) out.add(label);
      for (const a of n.status?.addresses ?? []) if (a.type === 'Hostname') out.add(a.address);
      const uuid = n.status?.nodeInfo?.systemUUID;
      if (uuid) out.add(uuid);
    }
    return [...out];
  }

  before(async function () {
    c = cluster();
    // A namespace of its own, so the device key this test sees created is the one its operator made.
    namespace = `dcp-cli-pv-${c.runId}`;
    archive = mkdtempSync(join(tmpdir(), 'dcp-e2e-archive-'));
    await c.ensureCrd();
    await c.ensureNamespace(namespace);
    await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
    const [a, b, leak] = names();
    await c.createNodes([
      {
        name: a ?? 'a',
        cpu: '4',
        instanceType: 'Standard_D4s_v5',
        labels: { 'kubernetes.io/hostname': `host-${c.runId}-a.corp.example` },
        nodeInfo: { systemUUID: `4c4c4544-0042-3510-8052-${c.runId}00000a`, osImage: 'Ubuntu 22.04.5 LTS' },
      },
      { name: b ?? 'b', cpu: '8', instanceType: 'Standard_D8s_v5', nodeInfo: { systemUUID: `4c4c4544-0042-3510-8052-${c.runId}00000b` } },
      // A Node whose OS image repeats its own name: the guard must drop its event, and say so without the name.
      { name: leak ?? 'leak', cpu: '2', nodeInfo: { osImage: `golden image of cli-pv-${c.runId}-leak` } },
    ]);
    // A TLS Secret in kube-system (a certificate namespace by default): preview shows its status, not its name.
    const tls = selfSignedCertificate({ commonName: `ingress-${c.runId}.corp.example`, notBefore: new Date(Date.now() - 86_400_000), notAfter: new Date(Date.now() + 90 * 86_400_000) });
    tlsFingerprint = new X509Certificate(tls.certPem).fingerprint256.replace(/:/g, '').toLowerCase();
    const secret = { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: `cli-pv-${c.runId}-tls`, namespace: 'kube-system' }, stringData: { 'tls.crt': tls.certPem, 'tls.key': tls.keyPem } };
    await c.kubectlOk(['apply', '-f', '-'], JSON.stringify(secret));
    expect((await c.apply(policy(true))).code).to.equal(0);
  });

  after(async function () {
    killAllOperators();
    await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
    await c.kubectl(['delete', 'nodes', '-l', `${RUN_LABEL}=${c.runId}`, '--wait=false']);
    await c.kubectl(['delete', 'namespace', namespace, '--wait=false']);
    await c.kubectl(['-n', 'kube-system', 'delete', 'secret', `cli-pv-${c.runId}-tls`, '--ignore-not-found']);
    rmSync(archive, { recursive: true, force: true });
  });

  it('gives each sink its exact body, with residency respected: the central sink gets no raw event', async function () {
    const { report } = await preview();
    expect(report.policy).to.deep.include({ region: 'eastus', forwardAggregatesToCentral: true });
    expect(report.sinks.map((s) => [s.name, s.type, s.region, s.receives])).to.deep.equal([
      ['regional', 'http', 'eastus', true],
      ['central', 'otlp', 'central', false],
      ['archive', 'file', 'eastus', true],
    ]);
    const [regional, central, file] = report.sinks;
    if (!regional || !central || !file) throw new Error('three sinks expected');

    // http: the JSON batch, every event schema-valid, inventory and one HostOsInfo per Node but the dropped one.
    const batch = JSON.parse(regional.body ?? 'null') as DcpEvent[];
    expect(batch).to.deep.equal(regional.events);
    for (const e of batch) expect(validateEvent(e), e.id).to.deep.include({ ok: true });
    expect(batch.filter((e) => e.name === 'ControlPlaneInventory')).to.have.length(1);
    expect(batch.filter((e) => e.name === 'HostOsInfo')).to.have.length(report.cluster.nodes - 1);
    // The security snapshot: the Secret's certificate by fingerprint and state, and the KMS health.
    expect(batch.find((e) => e.name === 'CertificateStatus' && e.data['fingerprintSha256'] === tlsFingerprint)?.data).to.deep.include({ state: 'valid', source: 'secret' });
    expect(batch.filter((e) => e.name === 'KmsStatus')).to.have.length(1);
    expect(JSON.stringify(batch)).to.not.contain(`cli-pv-${c.runId}-tls`).and.not.contain('corp.example');
    expect(regional.bytes).to.equal(Buffer.byteLength(regional.body ?? ''));
    expect(regional.destination).to.equal('http://127.0.0.1:9/ingest');

    // central: nothing, and why; no raw event in it at all.
    expect(central.body).to.equal(null);
    expect(central.events.filter((e) => e.name !== 'DailyAggregate')).to.deep.equal([]);
    expect(central.reason).to.include('central sinks receive de-identified aggregates only');
    expect(central.destination).to.equal('http://127.0.0.1:9/otel/v1/logs');

    // file: the same events as JSON lines, to the day file under the sink's path.
    expect(file.body).to.equal(batch.map((e) => `${JSON.stringify(e)}\n`).join(''));
    expect(file.destination).to.match(new RegExp(`^${archive}/events-\\d{4}-\\d{2}-\\d{2}\\.jsonl$`));

    expect(report.stored).to.deep.equal(batch);
    for (const e of report.stored) expect(e.cluster.region).to.equal('eastus');
  });

  it('drops the event that carries a node name before any sink, and names none of them anywhere', async function () {
    const { report, raw } = await preview();
    expect(report.dropped).to.have.length(1);
    expect(report.dropped[0]).to.deep.include({ category: 'hostOs', name: 'HostOsInfo', stage: 'pii', problems: ['data.osImage: denied'] });
    const table = await runDcp(['preview', '--kubeconfig', c.kubeconfigPath, '--namespace', namespace, '--body-events', 'all']);
    expect(table.code, table.stderr).to.equal(0);
    const everything = [raw.stdout, raw.stderr, table.stdout, table.stderr].join('\n').toLowerCase();
    const ids = await identifiers();
    expect(ids).to.include.members([...names(), `host-${c.runId}-a.corp.example`, `4c4c4544-0042-3510-8052-${c.runId}00000a`]);
    for (const id of ids) expect(everything, id).to.not.include(id.toLowerCase());
  });

  it('says the device IDs are placeholders before the operator made the key, and creates nothing', async function () {
    const { report } = await preview();
    expect(report.deviceKey).to.deep.include({ source: 'placeholder', secret: `${namespace}/dcp-device-key` });
    expect(report.deviceKey.reason).to.include('does not exist yet');
    const secrets = await c.kubectl(['-n', namespace, 'get', 'secret', 'dcp-device-key']);
    expect(secrets.code).to.not.equal(0);
    const table = await runDcp(['preview', '--kubeconfig', c.kubeconfigPath, '--namespace', namespace]);
    expect(table.stdout).to.match(/Device IDs {2}PLACEHOLDERS, the real ones will differ: Secret .* does not exist yet/);
  });

  it('uses the operator’s device key once it exists: the preview’s device IDs are the stored ones', async function () {
    const op = new OperatorProcess(c.kubeconfigPath, ['--namespace', namespace]);
    try {
      await op.started();
      const stored = async (): Promise<DcpEvent[]> => {
        const r = await runDcp(['events', '--data-dir', op.dataDir, '--category', 'hostOs', '--output', 'json']);
        return r.code === 0 ? (JSON.parse(r.stdout) as DcpEvent[]) : [];
      };
      const nodes = (JSON.parse(await c.kubectlOk(['get', 'nodes', '-o', 'json'])) as NodeList).items.length;
      // Every Node but the one whose event the guard drops.
      await waitFor(async () => (await stored()).length >= nodes - 1, 60_000, 'host OS events in the store', 500);
      const { report } = await preview(['--data-dir', op.dataDir]);
      expect(report.deviceKey.source).to.equal('secret');
      const previewIds = report.stored.filter((e) => e.name === 'HostOsInfo').map((e) => e.data['deviceId']);
      const storedIds = (await stored()).map((e) => e.data['deviceId']);
      expect(previewIds.length).to.be.greaterThan(0);
      expect(storedIds).to.include.members(previewIds);
      // The operator's store has no finished day yet: the central sink says so rather than staying silent.
      expect(report.sinks[1]?.reason).to.include('none in the store');
    } finally {
      await op.stop();
      // Removes the operator's data directory too.
      op.cleanup();
    }
  });

  it('prints a table a person can read: the policy, a sink table, the reasons, then the bodies', async function () {
    const r = await runDcp(['preview', '--kubeconfig', c.kubeconfigPath, '--namespace', namespace, '--body-events', '1']);
    expect(r.code, r.stderr).to.equal(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).to.match(/^Policy {6}default · region eastus \(US\) · subscription 3f2c1a9e-0000-4000-8000-000000000001$/);
    const header = lines.findIndex((l) => l.startsWith('SINK'));
    expect(lines[header]?.split(/\s{2,}/)).to.deep.equal(['SINK', 'TYPE', 'REGION', 'EVENTS', 'SIZE', 'DESTINATION']);
    const dest = lines[header]?.indexOf('DESTINATION') ?? -1;
    expect(lines.slice(header + 1, header + 4).map((l) => l.slice(dest, dest + 4))).to.deep.equal(['POST', 'POST', archive.slice(0, 4)]);
    expect(r.stdout).to.match(/\ncentral +nothing now: central sinks receive de-identified aggregates only/);
    expect(r.stdout).to.include('── regional · POST http://127.0.0.1:9/ingest');
    expect(r.stdout).to.include('JSON batch · ');
    expect(r.stdout).to.include('JSON lines (one record per line; shown pretty)');
  });

  it('without sinks, shows what would be stored locally and says no sink is configured', async function () {
    // kubectl apply removes what the last apply set and this one leaves out: the sinks.
    expect((await c.apply(policy(false))).code).to.equal(0);
    await waitFor(async () => (await preview()).report.sinks.length === 0, 10_000, 'the policy without sinks');
    const { report } = await preview();
    expect(report.stored.length).to.be.greaterThan(0);
    expect(report.notes[0]).to.match(/^no sink is configured/);
    const table = await runDcp(['preview', '--kubeconfig', c.kubeconfigPath, '--namespace', namespace]);
    expect(table.stdout).to.include('No sink is configured. The operator would store these events locally only:');
    expect(table.stdout).to.match(/\nTIME {17}CATEGORY/);
  });

  it('fails clearly when there is no policy', async function () {
    await c.kubectlOk(['delete', 'dcp', 'default']);
    const r = await runDcp(['preview', '--kubeconfig', c.kubeconfigPath, '--namespace', namespace]);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.include('there is no DataCollectionPolicy "default"');
  });

});
