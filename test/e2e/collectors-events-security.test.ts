// hostErrors, linuxVm and security against the real API server: Events, TLS Secrets, CSRs and /readyz.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { certificateRequest, selfSignedCertificate } from '../../hack/certs.js';
import type { PolicySpec } from '../../src/api/policy.js';
import { parsePolicy } from '../../src/api/validation.js';
import { HostErrorsCollector, LinuxVmCollector } from '../../src/collectors/host-events.js';
import type { NamespaceProjection } from '../../src/collectors/projections.js';
import { SecurityCollector } from '../../src/collectors/security.js';
import type { Collector } from '../../src/collectors/collector.js';
import { KubeClient } from '../../src/kube/client.js';
import type { DcpEvent } from '../../src/api/event.js';
import { DenySet, PiiGuard } from '../../src/pipeline/guard.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import { EventRecorder } from '../../src/kube/recorder.js';
import { SkippedObjects } from '../../src/runtime/skipped-objects.js';
import { cluster, RUN_LABEL } from './harness.js';

const DAY = 86_400_000;

async function until(what: string, cond: () => boolean | Promise<boolean>, limitMs = 60_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function spec(categories: Record<string, unknown>): PolicySpec {
  return parsePolicy({
    apiVersion: 'datacollection.arc.io/v1alpha1',
    kind: 'DataCollectionPolicy',
    metadata: { name: 'default' },
    spec: { subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001', region: 'westeurope', categories },
  }).spec;
}

/** A collector running until the test stops it. */
class Run {
  private readonly ctl = new AbortController();
  private done: Promise<void> | undefined;
  constructor(readonly collector: Collector) {}
  start(): this {
    this.done = this.collector.run(this.ctl.signal);
    return this;
  }
  async stop(): Promise<void> {
    this.ctl.abort();
    await this.done;
  }
}

const fingerprintOf = (pem: string): string => {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return createHash('sha256').update(der).digest('hex');
};

describe('collectors: host errors, Linux VM events and security on the local control plane', function () {
  this.timeout(180_000);
  let client: KubeClient;
  let kubeSystem: NamespaceProjection;
  let namespace: string;
  let systemNamespace: string;
  const runs: Run[] = [];
  const denySet = new DenySet();

  const run = (collector: Collector): Run => {
    const r = new Run(collector);
    runs.push(r);
    return r.start();
  };
  const common = (s: PolicySpec, r: { events: DcpEvent[] }) => ({
    transport: client,
    kubeSystem,
    spec: s,
    denySet,
    batchDelayMs: 200,
    emit: async (events: readonly DcpEvent[]) => {
      r.events.push(...events);
      await Promise.resolve();
    },
  });

  /** A core/v1 Event as the kubelet or node-problem-detector writes it. */
  const coreEvent = async (ns: string, e: { name: string; kind: string; object: string; type: string; reason: string; message: string; component: string; count?: number }): Promise<void> => {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    await client.json({
      method: 'POST',
      path: `/api/v1/namespaces/${ns}/events`,
      body: {
        metadata: { name: e.name, namespace: ns, labels: { [RUN_LABEL]: cluster().runId } },
        involvedObject: { apiVersion: 'v1', kind: e.kind, name: e.object, ...(e.kind === 'Node' ? {} : { namespace: ns }) },
        type: e.type,
        reason: e.reason,
        message: e.message,
        source: { component: e.component, host: 'aks-nodepool1-31718369-vmss000002' },
        firstTimestamp: now,
        lastTimestamp: now,
        count: e.count ?? 1,
      },
    });
  };

  before(async function () {
    const c = cluster();
    client = new KubeClient(c.kc);
    namespace = `dcp-hostev-${c.runId}`;
    systemNamespace = `dcp-sys-${c.runId}`;
    await c.ensureNamespace(namespace);
    await c.ensureNamespace(systemNamespace);
    kubeSystem = await c.kubeSystem();
  });

  afterEach(async function () {
    for (const r of runs.splice(0)) await r.stop();
  });

  after(async function () {
    const c = cluster();
    await c.kubectl(['delete', 'namespace', namespace, systemNamespace, '--wait=false']);
    await c.kubectl(['-n', 'default', 'delete', 'events', '-l', `${RUN_LABEL}=${c.runId}`, '--wait=false']);
    await c.kubectl(['delete', 'csr', '-l', `${RUN_LABEL}=${c.runId}`, '--wait=false']);
  });

  it('reports Warning Events about Nodes and host components, scrubbed, with stable ids, and follows enable/disable', async function () {
    const c = cluster();
    const node = `aks-nodepool1-${c.runId}-vmss000002`;
    denySet.add([node]);
    const s = spec({ linuxVm: { enabled: false }, security: { enabled: false } });
    const sink = { events: [] as DcpEvent[] };
    const hostErrors = new HostErrorsCollector(common(s, sink));
    const r = run(hostErrors);
    await coreEvent('default', {
      name: `${node}.oops-${c.runId}`,
      kind: 'Node',
      object: node,
      type: 'Warning',
      reason: 'KernelOops',
      message: `kernel: BUG: unable to handle page fault for address: ffff8881 on ${node} at 10.224.0.4 reported by erin.smith@contoso.com`,
      component: 'kernel-monitor',
      count: 3,
    });
    // A workload's warning (a user Pod outside kube-system) and a Normal Event are not host errors.
    await coreEvent(namespace, { name: `web.pull-${c.runId}`, kind: 'Pod', object: 'web', type: 'Warning', reason: 'Failed', message: 'Failed to pull image', component: 'kubelet' });
    await coreEvent('default', { name: `${node}.start-${c.runId}`, kind: 'Node', object: node, type: 'Normal', reason: 'Starting', message: 'Starting kubelet.', component: 'kubelet' });
    await until('the host error', () => sink.events.some((e) => e.data['reason'] === 'KernelOops'));
    const oops = sink.events.filter((e) => e.data['reason'] === 'KernelOops');
    expect(oops).to.have.length(1);
    expect(oops[0]?.category).to.equal('hostErrors');
    expect(oops[0]?.data).to.deep.include({ component: 'kernel-monitor', count: 3 });
    const message = String(oops[0]?.data['message']);
    expect(message).to.match(/^kernel: BUG: unable to handle page fault/);
    for (const leak of [node, '10.224.0.4', 'erin', 'contoso', 'ffff8881']) expect(message, leak).to.not.contain(leak);
    expect(sink.events.filter((e) => e.data['reason'] === 'Failed' || e.data['reason'] === 'Starting')).to.deep.equal([]);

    // The same fact reported by a new run (a restart, a new leader) has the same id: the store keeps one.
    await r.stop();
    const again = { events: [] as DcpEvent[] };
    run(new HostErrorsCollector(common(s, again)));
    await until('the replayed host error', () => again.events.some((e) => e.data['reason'] === 'KernelOops'));
    expect(again.events.find((e) => e.data['reason'] === 'KernelOops')?.id).to.equal(oops[0]?.id);
    for (const e of [...sink.events, ...again.events]) {
      expect(validateEvent(e).ok, JSON.stringify(e)).to.equal(true);
      expect(new PiiGuard({ denySet }).inspect(e)).to.deep.equal([]);
    }
  });

  it('stops host error events within seconds when disabled, and reports what it missed when enabled again', async function () {
    const c = cluster();
    const node = `aks-nodepool1-${c.runId}-vmss000003`;
    const on = spec({ linuxVm: { enabled: false }, security: { enabled: false } });
    const off = spec({ hostErrors: { enabled: false }, linuxVm: { enabled: false }, security: { enabled: false } });
    const sink = { events: [] as DcpEvent[] };
    const collector = new HostErrorsCollector(common(on, sink));
    run(collector);
    await until('the collector to watch', async () => {
      await coreEvent('default', { name: `${node}.probe-${Date.now()}`, kind: 'Node', object: node, type: 'Warning', reason: 'NodeNotReady', message: 'Node is not ready', component: 'kubelet' });
      await new Promise((res) => setTimeout(res, 1_000));
      return sink.events.length > 0;
    });
    collector.reconfigure(off);
    await new Promise((res) => setTimeout(res, 1_000));
    const before = sink.events.length;
    await coreEvent('default', { name: `${node}.disk-${c.runId}`, kind: 'Node', object: node, type: 'Warning', reason: 'FreeDiskSpaceFailed', message: 'failed to free disk space', component: 'kubelet' });
    await new Promise((res) => setTimeout(res, 3_000));
    expect(sink.events.length, 'events while disabled').to.equal(before);
    collector.reconfigure(on);
    await until('the missed event after enabling', () => sink.events.some((e) => e.data['reason'] === 'FreeDiskSpaceFailed'));
  });

  it('classifies Linux VM events from system namespaces and Node lifecycle, and ignores other namespaces', async function () {
    const c = cluster();
    const node = `aks-nodepool1-${c.runId}-vmss000004`;
    denySet.add([node]);
    const s = spec({ hostErrors: { enabled: false }, security: { enabled: false }, linuxVm: { systemNamespaces: [systemNamespace] } });
    const sink = { events: [] as DcpEvent[] };
    run(new LinuxVmCollector(common(s, sink)));
    await coreEvent('default', { name: `${node}.reboot-${c.runId}`, kind: 'Node', object: node, type: 'Warning', reason: 'Rebooted', message: `Node ${node} has been rebooted, boot id: 7a1b2c3d-4e5f-4061-8273-9a8b7c6d5e4f`, component: 'kubelet' });
    await coreEvent(systemNamespace, { name: `coredns.backoff-${c.runId}`, kind: 'Pod', object: 'coredns-5d78c9869d-abcde', type: 'Warning', reason: 'BackOff', message: 'Back-off restarting failed container coredns in pod coredns-5d78c9869d-abcde', component: 'kubelet', count: 7 });
    await coreEvent(namespace, { name: `web.backoff-${c.runId}`, kind: 'Pod', object: 'web', type: 'Warning', reason: 'BackOff', message: 'Back-off restarting failed container', component: 'kubelet' });
    const rebooted = (e: DcpEvent): boolean => e.data['kind'] === 'boot' && e.data['reason'] === 'Rebooted';
    await until('the boot and the application error', () => sink.events.some(rebooted) && sink.events.some((e) => e.data['kind'] === 'applicationError'));
    await new Promise((res) => setTimeout(res, 1_000));
    const boot = sink.events.find(rebooted);
    expect(boot?.data).to.deep.include({ reason: 'Rebooted', count: 1 });
    expect(String(boot?.data['message'])).to.not.contain(node).and.not.contain('7a1b2c3d');
    const app = sink.events.filter((e) => e.data['kind'] === 'applicationError');
    expect(app, 'only the system namespace').to.have.length(1);
    expect(app[0]?.data).to.deep.include({ reason: 'BackOff', count: 7 });
    expect(String(app[0]?.data['message'])).to.not.contain('coredns-5d78c9869d-abcde');
    for (const e of sink.events) {
      expect(e.category).to.equal('linuxVm');
      expect(validateEvent(e).ok, JSON.stringify(e)).to.equal(true);
      expect(new PiiGuard({ denySet }).inspect(e)).to.deep.equal([]);
    }
  });

  it('reports each certificate of TLS Secrets and CSRs with its state, a renewal, and KMS health; never names or key material', async function () {
    const c = cluster();
    const now = Date.now();
    const cert = (cn: string, from: number, to: number) => selfSignedCertificate({ commonName: cn, dnsNames: [`${cn}.contoso.example`], notBefore: new Date(from), notAfter: new Date(to) });
    const certs = {
      valid: cert('api-valid', now - DAY, now + 200 * DAY),
      expiring: cert('api-expiring', now - 80 * DAY, now + 10 * DAY),
      expired: cert('api-expired', now - 100 * DAY, now - 2 * DAY),
      notYetValid: cert('api-future', now + 5 * DAY, now + 400 * DAY),
    };
    for (const [state, { certPem, keyPem }] of Object.entries(certs)) {
      await client.json({
        method: 'POST',
        path: `/api/v1/namespaces/${namespace}/secrets`,
        body: { metadata: { name: `tls-${state.toLowerCase()}` }, type: 'kubernetes.io/tls', stringData: { 'tls.crt': certPem, 'tls.key': keyPem } },
      });
    }
    // An issued CSR: approved through its approval subresource, the certificate set through status, as a signer does.
    const csrName = `dcp-e2e-${c.runId}`;
    const csrCert = cert('system:node:aks-nodepool1-vmss000009', now - DAY, now + 365 * DAY);
    await c.kubectlOk(['create', '-f', '-'], JSON.stringify({
      apiVersion: 'certificates.k8s.io/v1',
      kind: 'CertificateSigningRequest',
      metadata: { name: csrName, labels: { [RUN_LABEL]: c.runId } },
      spec: { request: Buffer.from(certificateRequest('dcp-e2e-requester')).toString('base64'), signerName: 'example.com/dcp-e2e', usages: ['client auth'] },
    }));
    await c.kubectlOk(['certificate', 'approve', csrName]);
    await c.kubectlOk(['patch', 'csr', csrName, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { certificate: Buffer.from(csrCert.certPem).toString('base64') } })]);

    const s = spec({ hostErrors: { enabled: false }, linuxVm: { enabled: false }, security: { certificateNamespaces: [namespace], expiryWarningDays: 30 } });
    const sink = { events: [] as DcpEvent[] };
    const security = new SecurityCollector({ ...common(s, sink), checkIntervalMs: 1_000 });
    run(security);
    const byFingerprint = (pem: string): DcpEvent[] => sink.events.filter((e) => e.name === 'CertificateStatus' && e.data['fingerprintSha256'] === fingerprintOf(pem));
    await until('a status for every certificate and KMS', () =>
      Object.values(certs).every(({ certPem }) => byFingerprint(certPem).length > 0) && byFingerprint(csrCert.certPem).length > 0 && sink.events.some((e) => e.name === 'KmsStatus'),
    );
    for (const [state, { certPem }] of Object.entries(certs)) {
      const e = byFingerprint(certPem)[0];
      expect(e?.data, state).to.deep.include({ state, source: 'secret' });
    }
    expect(byFingerprint(certs.expiring.certPem)[0]?.data['daysToExpiry']).to.be.within(9, 10);
    expect(byFingerprint(certs.expired.certPem)[0]?.data['daysToExpiry']).to.be.below(0);
    expect(byFingerprint(csrCert.certPem)[0]?.data).to.deep.include({ state: 'valid', source: 'csr' });
    // No KMS plugin is configured on this API server.
    expect(sink.events.find((e) => e.name === 'KmsStatus')?.data).to.deep.include({ providers: 0, healthy: true });

    // A renewal: the Secret gets a new certificate while the collector runs.
    const renewed = cert('api-valid', now - 60_000, now + 365 * DAY);
    await client.json({
      method: 'PATCH',
      path: `/api/v1/namespaces/${namespace}/secrets/tls-valid`,
      contentType: 'application/merge-patch+json',
      body: { stringData: { 'tls.crt': renewed.certPem, 'tls.key': renewed.keyPem } },
    });
    await until('the renewal', () => byFingerprint(renewed.certPem).some((e) => e.data['state'] === 'renewed'));

    const json = JSON.stringify(sink.events);
    for (const leak of ['tls-valid', namespace, 'contoso', 'api-valid', csrName, 'aks-nodepool1', 'PRIVATE KEY', certs.valid.keyPem.split('\n')[1] ?? '-']) expect(json, leak).to.not.contain(leak);
    for (const e of sink.events) {
      expect(e.category).to.equal('security');
      expect(validateEvent(e).ok, JSON.stringify(e)).to.equal(true);
    }
  });

  it('counts unreadable TLS Secrets in dcp_objects_skipped_total, with a Warning Event on each, and names none in what it emits', async function () {
    const c = cluster();
    const now = Date.now();
    const good = selfSignedCertificate({ commonName: 'api-good', notBefore: new Date(now - DAY), notAfter: new Date(now + 200 * DAY) });
    // What the issue planted: garbage, a PEM block that is no certificate, an empty tls.crt.
    const broken: Record<string, string> = {
      'tls-garbage': 'c0ffee garbage, not PEM at all',
      'tls-badpem': '-----BEGIN CERTIFICATE-----\nTUlJQnJva2Vu\n-----END CERTIFICATE-----\n',
      'tls-empty': '',
    };
    const ns = `dcp-skip-${c.runId}`;
    await c.ensureNamespace(ns);
    try {
      for (const [name, crt] of Object.entries({ ...broken, 'tls-good': good.certPem })) {
        await client.json({
          method: 'POST',
          path: `/api/v1/namespaces/${ns}/secrets`,
          body: { metadata: { name }, type: 'kubernetes.io/tls', stringData: { 'tls.crt': crt, 'tls.key': good.keyPem } },
        });
      }
      // (A CSR with an unreadable certificate cannot be made here: the API server parses status.certificate as X.509; the unit tests cover it.)
      const registry = new Registry();
      const recorder = new EventRecorder(client, 'datacollection.arc.io/dcp-operator', `e2e-${c.runId}`);
      const skipped = new SkippedObjects({ registry, record: (e) => recorder.record(e) });
      const s = spec({ hostErrors: { enabled: false }, linuxVm: { enabled: false }, security: { certificateNamespaces: [ns], expiryWarningDays: 30 } });
      const sink = { events: [] as DcpEvent[] };
      run(new SecurityCollector({ ...common(s, sink), checkIntervalMs: 1_000, registry, skipped }));
      const count = async (resource: string): Promise<number> => (await registry.getSingleMetric('dcp_objects_skipped_total')?.get())?.values.find((v) => v.labels['resource'] === resource)?.value ?? 0;
      await until('the good certificate reported', () => sink.events.some((e) => e.name === 'CertificateStatus' && e.data['fingerprintSha256'] === fingerprintOf(good.certPem)));
      await until('three Secrets counted', async () => (await count('secrets')) === 3);
      const warnings = async (namespace: string, kind: string): Promise<string[]> => {
        const list = (await client.json({ path: `/apis/events.k8s.io/v1/namespaces/${namespace}/events`, query: { fieldSelector: `reason=UnreadableCertificate,regarding.kind=${kind}` } })) as { items: { type: string; regarding: { name: string } }[] };
        return list.items.filter((e) => e.type === 'Warning').map((e) => e.regarding.name).sort();
      };
      await until('a Warning Event on each unreadable Secret', async () => (await warnings(ns, 'Secret')).length === 3);
      expect(await warnings(ns, 'Secret')).to.deep.equal(Object.keys(broken).sort());
      // The watch metrics name the configured namespace (an admin's setting); no object is named anywhere.
      const exported = JSON.stringify(sink.events) + (await registry.metrics());
      for (const name of Object.keys(broken)) expect(exported, name).to.not.contain(name);
      expect(JSON.stringify(sink.events)).to.not.contain(ns);
    } finally {
      await c.kubectl(['delete', 'namespace', ns, '--wait=false']);
    }
  });
});
