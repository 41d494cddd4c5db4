// The audit-export controller's pure parts: the objects planned for a spec, drift detection, and what status says.
import { expect } from 'chai';
import { parse } from 'yaml';
import type { AuditExportSpec } from '../../src/api/policy.js';
import { CONFIG_HASH_ANNOTATION, exporterConfig, isSubset, planAuditExport, type DesiredObject } from '../../src/controllers/audit-export-plan.js';
import { auditExportStatus, NOT_READY_GRACE_MS } from '../../src/controllers/audit-export-state.js';
import type { ReportedStatus } from '../../src/audit/status-report.js';

const spec = (over: Partial<AuditExportSpec> = {}): AuditExportSpec => ({
  enabled: true,
  profile: 'kube-audit-admin',
  destination: { type: 'file', path: '/var/lib/dcp/audit' },
  intermediateRetentionHours: 48,
  bufferMaxMiB: 256,
  ...over,
});
const tls = { certPem: 'CERT', keyPem: 'KEY', token: 'TOKEN' };
const plan = (s: AuditExportSpec, clusterIP?: string): DesiredObject[] =>
  planAuditExport({ spec: s, namespace: 'dcp-system', policyUid: 'uid-1', tls, clusterIP, image: 'dcp-operator:0.1.0' });
const byKind = (objs: DesiredObject[], kind: string): DesiredObject => objs.find((o) => o.kind === kind)!;
const podTemplate = (d: DesiredObject) => (d.spec as { template: { metadata: { annotations: Record<string, string> }; spec: { volumes: { name: string }[]; containers: { args: string[] }[] } } }).template;

describe('audit export controller: the plan', () => {
  it('plans a ServiceAccount, Service, TLS Secret, ConfigMap and Deployment, all labelled and owned by the policy', () => {
    const objs = plan(spec());
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`)).to.deep.equal([
      'ServiceAccount/dcp-audit-exporter',
      'Service/dcp-audit-exporter',
      'Secret/dcp-audit-exporter-tls',
      'ConfigMap/dcp-audit-exporter-config',
      'Deployment/dcp-audit-exporter',
    ]);
    for (const o of objs) {
      expect(o.metadata.namespace).to.equal('dcp-system');
      expect(o.metadata.labels['datacollection.arc.io/extension']).to.equal('audit-export');
      expect(o.metadata.ownerReferences).to.deep.equal([
        { apiVersion: 'datacollection.arc.io/v1alpha1', kind: 'DataCollectionPolicy', name: 'default', uid: 'uid-1', controller: true, blockOwnerDeletion: false },
      ]);
    }
  });

  it('the ConfigMap carries the audit Policy of the profile and the exporter configuration', () => {
    const cm = byKind(plan(spec({ profile: 'kube-audit' })), 'ConfigMap').data as Record<string, string>;
    expect(parse(cm['audit-policy.yaml']!)).to.deep.include({ apiVersion: 'audit.k8s.io/v1', kind: 'Policy', rules: [{ level: 'Metadata' }] });
    expect(JSON.parse(cm['exporter.json']!)).to.deep.equal({
      profile: 'kube-audit',
      destination: { type: 'file', path: '/var/lib/dcp/audit' },
      intermediateRetentionHours: 48,
      bufferMaxBytes: 256 * 1024 * 1024,
    });
  });

  it('the webhook kubeconfig in the Secret names the Service by ClusterIP, pins its CA and server name, and carries the token', () => {
    const data = byKind(plan(spec(), '10.96.0.42'), 'Secret').data as Record<string, string>;
    const kubeconfig = parse(Buffer.from(data['webhook-kubeconfig.yaml']!, 'base64').toString()) as {
      clusters: { cluster: Record<string, string> }[];
      users: { user: { token: string } }[];
    };
    expect(kubeconfig.clusters[0]!.cluster).to.deep.equal({
      server: 'https://10.96.0.42:443/audit',
      'certificate-authority-data': Buffer.from('CERT').toString('base64'),
      'tls-server-name': 'dcp-audit-exporter.dcp-system.svc',
    });
    expect(kubeconfig.users[0]!.user.token).to.equal('TOKEN');
  });

  it('an azureBlob destination mounts only the named Secret key and names it in the configuration', () => {
    const s = spec({ destination: { type: 'azureBlob', resourceId: '/subscriptions/s/x', secretRef: { name: 'storage', key: 'connectionString' } } });
    expect(exporterConfig(s).destination).to.deep.equal({ type: 'azureBlob', resourceId: '/subscriptions/s/x', credentialKey: 'connectionString' });
    const volumes = podTemplate(byKind(plan(s), 'Deployment')).spec.volumes;
    expect(volumes.find((v) => v.name === 'credentials')).to.deep.equal({ name: 'credentials', secret: { secretName: 'storage', items: [{ key: 'connectionString', path: 'connectionString' }] } });
  });

  it('a profile or destination change changes the Pod template hash (the Deployment rolls); the same spec does not', () => {
    const hash = (s: AuditExportSpec) => podTemplate(byKind(plan(s), 'Deployment')).metadata.annotations[CONFIG_HASH_ANNOTATION];
    expect(hash(spec())).to.equal(hash(spec()));
    expect(hash(spec({ profile: 'kube-audit' }))).to.not.equal(hash(spec()));
    expect(hash(spec({ destination: { type: 'http', url: 'https://siem.example/audit' } }))).to.not.equal(hash(spec()));
  });

  it('drift: fields the API server adds are ignored, a changed or missing planned field is not', () => {
    const desired = { data: { a: '1' }, spec: { ports: [{ port: 443 }] } };
    expect(isSubset(desired, { data: { a: '1' }, spec: { ports: [{ port: 443, protocol: 'TCP' }], clusterIP: '10.0.0.1' }, status: {} })).to.equal(true);
    expect(isSubset(desired, { data: { a: '2' }, spec: { ports: [{ port: 443 }] } })).to.equal(false);
    expect(isSubset(desired, { data: {}, spec: { ports: [{ port: 443 }] } })).to.equal(false);
    expect(isSubset(desired, { data: { a: '1' }, spec: { ports: [{ port: 443 }, { port: 80 }] } })).to.equal(false);
  });
});

describe('audit export controller: the state it reports', () => {
  const now = Date.parse('2026-12-02T10:00:00Z');
  const deployment = (ready: number, availableSince?: number) => ({
    metadata: { generation: 2 },
    spec: { replicas: 1 },
    status: {
      observedGeneration: 2,
      updatedReplicas: 1,
      readyReplicas: ready,
      conditions: [{ type: 'Available', status: ready > 0 ? 'True' : 'False', lastTransitionTime: new Date(availableSince ?? now).toISOString() }],
    },
  });
  const report = (over: Partial<ReportedStatus> = {}): ReportedStatus => ({
    destinationUp: true,
    destinationRefused: false,
    backlogBytes: 0,
    backlogEvents: 0,
    reportedAt: new Date(now - 5000).toISOString(),
    ...over,
  });

  it('Disabled when off; Progressing while installing, rolling out, or before the exporter reports', () => {
    expect(auditExportStatus({ enabled: false, now }).state).to.equal('Disabled');
    expect(auditExportStatus({ enabled: true, now })).to.include({ state: 'Progressing', reason: 'Installing' });
    expect(auditExportStatus({ enabled: true, now, deployment: { ...deployment(1), status: { observedGeneration: 1 } } })).to.include({ state: 'Progressing', reason: 'RollingOut' });
    expect(auditExportStatus({ enabled: true, now, deployment: deployment(1) })).to.include({ state: 'Progressing', reason: 'AwaitingExporter' });
  });

  it('Pods not ready: Progressing for a grace period, then Failed', () => {
    expect(auditExportStatus({ enabled: true, now, deployment: deployment(0, now - 1000) })).to.include({ state: 'Progressing', reason: 'ExporterNotReady' });
    expect(auditExportStatus({ enabled: true, now, deployment: deployment(0, now - NOT_READY_GRACE_MS - 1000) })).to.include({ state: 'Failed', reason: 'ExporterNotReady' });
  });

  it('Enabled once ready and reporting; Failed with the reason when the destination refuses or is down, with the backlog', () => {
    expect(auditExportStatus({ enabled: true, now, deployment: deployment(1), report: report() })).to.include({ state: 'Enabled', reason: 'Exporting', backlogBytes: 0 });
    const down = auditExportStatus({
      enabled: true,
      now,
      deployment: deployment(1),
      report: report({ destinationUp: false, destinationRefused: true, lastError: 'answered 403', backlogBytes: 900, backlogEvents: 3, backlogOldestTime: '2026-12-02T09:50:00.000Z' }),
    });
    expect(down).to.include({ state: 'Failed', reason: 'DestinationRefused', backlogBytes: 900, backlogOldestTime: '2026-12-02T09:50:00.000Z' });
    expect(down.message).to.contain('answered 403').and.contain('3 events');
    expect(auditExportStatus({ enabled: true, now, deployment: deployment(1), report: report({ destinationUp: false }) })).to.include({ reason: 'DestinationUnavailable' });
  });

  it('a missing Secret is Failed with its own reason, whatever the Pods do', () => {
    expect(auditExportStatus({ enabled: true, now, deployment: deployment(1), report: report(), problem: { reason: 'SecretNotFound', message: 'no Secret' } })).to.include({
      state: 'Failed',
      reason: 'SecretNotFound',
    });
  });
});
