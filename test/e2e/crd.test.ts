// The CRD on a real API server: it establishes, defaults, prints its columns, and refuses bad policies with clear messages.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { cluster, ROOT } from './harness.js';

type Obj = Record<string, unknown>;

const SAMPLE = readFileSync(join(ROOT, 'deploy/samples/default-policy.yaml'), 'utf8');

function policy(spec: Obj, name = 'default'): string {
  return stringify({
    apiVersion: 'datacollection.arc.io/v1alpha1',
    kind: 'DataCollectionPolicy',
    metadata: { name },
    spec: { subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001', region: 'eastus', ...spec },
  });
}

const fileSink = (extra: Obj = {}): Obj => ({ name: 'archive', type: 'file', path: '/var/lib/dcp/out', region: 'eastus', ...extra });
const httpSink = (extra: Obj = {}): Obj => ({ name: 'regional', type: 'http', url: 'https://ingest.example/v1', region: 'eastus', ...extra });

interface Refusal {
  what: string;
  yaml: string;
  message: string | RegExp;
}

/** One bad policy per rule; each must be refused with a message that names the problem. */
const REFUSALS: Refusal[] = [
  { what: 'a name other than default', yaml: policy({}, 'other'), message: "metadata.name must be 'default'" },
  { what: 'a missing subscriptionId', yaml: stringify({ apiVersion: 'datacollection.arc.io/v1alpha1', kind: 'DataCollectionPolicy', metadata: { name: 'default' }, spec: { region: 'eastus' } }), message: 'spec.subscriptionId: Required value' },
  { what: 'a missing region', yaml: stringify({ apiVersion: 'datacollection.arc.io/v1alpha1', kind: 'DataCollectionPolicy', metadata: { name: 'default' }, spec: { subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001' } }), message: 'spec.region: Required value' },
  { what: 'a subscriptionId that is not a GUID', yaml: policy({ subscriptionId: 'not-a-guid' }), message: 'subscriptionId must be a GUID' },
  { what: 'an unknown region', yaml: policy({ region: 'mars' }), message: /spec\.region: Unsupported value: "mars"/ },
  { what: 'rawDays below 1', yaml: policy({ retention: { rawDays: 0 } }), message: 'spec.retention.rawDays in body should be greater than or equal to 1' },
  { what: 'rawDays above 28', yaml: policy({ retention: { rawDays: 29 } }), message: 'spec.retention.rawDays in body should be less than or equal to 28' },
  { what: 'aggregateDays below 28', yaml: policy({ retention: { aggregateDays: 27 } }), message: 'spec.retention.aggregateDays in body should be greater than or equal to 28' },
  { what: 'aggregateDays above 3650', yaml: policy({ retention: { aggregateDays: 3651 } }), message: 'spec.retention.aggregateDays in body should be less than or equal to 3650' },
  { what: 'a controlPlane interval below 10 s', yaml: policy({ categories: { controlPlane: { intervalSeconds: 5 } } }), message: 'spec.categories.controlPlane.intervalSeconds in body should be greater than or equal to 10' },
  { what: 'a billing interval above a day', yaml: policy({ categories: { billing: { intervalSeconds: 86401 } } }), message: 'spec.categories.billing.intervalSeconds in body should be less than or equal to 86400' },
  { what: 'an attempt to switch billing off', yaml: policy({ categories: { billing: { enabled: false } } }), message: 'unknown field "spec.categories.billing.enabled"' },
  { what: 'an unknown field', yaml: policy({ collectEverything: true }), message: 'unknown field "spec.collectEverything"' },
  { what: 'a category flag of the wrong type', yaml: policy({ categories: { hostOs: { enabled: 'always' } } }), message: 'spec.categories.hostOs.enabled in body must be of type boolean' },
  { what: 'an invalid system namespace name', yaml: policy({ categories: { linuxVm: { systemNamespaces: ['Kube_System'] } } }), message: /spec\.categories\.linuxVm\.systemNamespaces\[0\] in body should match/ },
  { what: 'expiryWarningDays below 1', yaml: policy({ categories: { security: { expiryWarningDays: 0 } } }), message: 'spec.categories.security.expiryWarningDays in body should be greater than or equal to 1' },
  { what: 'an unknown audit profile', yaml: policy({ diagnostics: { auditExport: { profile: 'everything' } } }), message: /spec\.diagnostics\.auditExport\.profile: Unsupported value: "everything"/ },
  { what: 'intermediateRetentionHours above 48', yaml: policy({ diagnostics: { auditExport: { intermediateRetentionHours: 49 } } }), message: 'intermediateRetentionHours in body should be less than or equal to 48' },
  { what: 'intermediateRetentionHours below 1', yaml: policy({ diagnostics: { auditExport: { intermediateRetentionHours: 0 } } }), message: 'intermediateRetentionHours in body should be greater than or equal to 1' },
  { what: 'an http audit destination without url', yaml: policy({ diagnostics: { auditExport: { destination: { type: 'http' } } } }), message: 'an http destination needs url' },
  { what: 'a file audit destination with a url', yaml: policy({ diagnostics: { auditExport: { destination: { type: 'file', path: '/a', url: 'https://x' } } } }), message: 'a file destination takes only path, not url or secretRef' },
  { what: 'an azureBlob audit destination without secretRef', yaml: policy({ diagnostics: { auditExport: { destination: { type: 'azureBlob', resourceId: '/subscriptions/x/resourceGroups/rg' } } } }), message: 'an azureBlob destination needs secretRef: a Secret key holding a connection string or a SAS URL' },
  { what: 'an azureBlob audit destination without resourceId', yaml: policy({ diagnostics: { auditExport: { destination: { type: 'azureBlob', secretRef: { name: 's', key: 'k' } } } } }), message: 'an azureBlob destination needs resourceId' },
  { what: 'an azureBlob resourceId that is not a resource ID', yaml: policy({ diagnostics: { auditExport: { destination: { type: 'azureBlob', resourceId: 'mycluster', secretRef: { name: 's', key: 'k' } } } } }), message: 'resourceId must be an Azure resource ID starting with /subscriptions/' },
  { what: 'an azureBlob audit destination with a path', yaml: policy({ diagnostics: { auditExport: { destination: { type: 'azureBlob', path: '/x', resourceId: '/subscriptions/x', secretRef: { name: 's', key: 'k' } } } } }), message: 'an azureBlob destination takes secretRef and resourceId, not path or url' },
  { what: 'a file audit destination with a resourceId', yaml: policy({ diagnostics: { auditExport: { destination: { type: 'file', path: '/a', resourceId: '/subscriptions/x' } } } }), message: 'resourceId belongs to an azureBlob destination only' },
  { what: 'an audit buffer bound of 0', yaml: policy({ diagnostics: { auditExport: { bufferMaxMiB: 0 } } }), message: 'bufferMaxMiB in body should be greater than or equal to 1' },
  { what: 'an unknown sink type', yaml: policy({ export: { sinks: [httpSink({ type: 's3' })] } }), message: /spec\.export\.sinks\[0\]\.type: Unsupported value: "s3"/ },
  { what: 'a file sink without path', yaml: policy({ export: { sinks: [{ name: 'archive', type: 'file', region: 'eastus' }] } }), message: 'a file sink needs path' },
  { what: 'a file sink with a url', yaml: policy({ export: { sinks: [fileSink({ url: 'https://x' })] } }), message: 'a file sink takes only path, not url or secretRef' },
  { what: 'an http sink without url', yaml: policy({ export: { sinks: [{ name: 'regional', type: 'http', region: 'eastus' }] } }), message: 'http and otlp sinks need url' },
  { what: 'an otlp sink with a path', yaml: policy({ export: { sinks: [httpSink({ type: 'otlp', path: '/x' })] } }), message: 'http and otlp sinks take url (and secretRef), not path' },
  { what: 'a sink url that is not http(s)', yaml: policy({ export: { sinks: [httpSink({ url: 'ftp://x' })] } }), message: 'url must start with https:// or http://' },
  { what: 'a sink in another region', yaml: policy({ export: { sinks: [httpSink({ region: 'westus' })] } }), message: "every sink region must equal spec.region (eastus) or be 'central'" },
  { what: 'a sink region that is not a region', yaml: policy({ export: { sinks: [httpSink({ region: 'moon' })] } }), message: /spec\.export\.sinks\[0\]\.region: Unsupported value: "moon"/ },
  { what: 'a central sink without forwarding', yaml: policy({ export: { sinks: [httpSink({ region: 'central' })] } }), message: "a sink with region 'central' needs forwardAggregatesToCentral: true" },
  { what: 'two sinks with one name', yaml: policy({ export: { sinks: [httpSink(), fileSink({ name: 'regional' })] } }), message: /spec\.export\.sinks\[1\]: Duplicate value/ },
];

describe('the DataCollectionPolicy CRD on a real API server', function () {
  before(async function () {
    await cluster().ensureCrd();
  });

  it('is Established after kubectl apply -f crds/', async function () {
    const out = await cluster().kubectlOk(['get', 'crd', 'datacollectionpolicies.datacollection.arc.io', '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}']);
    expect(out).to.equal('True');
  });

  it('applies the sample policy and reads it back with defaults filled in', async function () {
    const applied = await cluster().apply(SAMPLE);
    expect(applied.code, applied.stderr).to.equal(0);
    const got = parse(await cluster().kubectlOk(['get', 'dcp', 'default', '-o', 'yaml'])) as { spec: Obj };
    expect(got.spec).to.deep.include({ subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001', region: 'eastus' });
    expect(got.spec.retention).to.deep.equal({ rawDays: 28, aggregateDays: 365 });
    expect(got.spec.categories).to.deep.equal({
      hostOs: { enabled: true },
      controlPlane: { enabled: true, intervalSeconds: 60 },
      hostErrors: { enabled: true },
      linuxVm: { enabled: true, systemNamespaces: ['kube-system', 'kube-node-lease', 'kube-public', 'dcp-system'] },
      billing: { intervalSeconds: 3600 },
      security: { enabled: true, certificateNamespaces: ['kube-system', 'dcp-system'], expiryWarningDays: 30 },
    });
    expect(got.spec.diagnostics).to.deep.equal({
      auditExport: { enabled: false, profile: 'kube-audit-admin', destination: { type: 'file', path: '/var/lib/dcp/audit' }, intermediateRetentionHours: 48, bufferMaxMiB: 256 },
    });
    expect(got.spec.export).to.deep.equal({ forwardAggregatesToCentral: false });
  });

  for (const resource of ['datacollectionpolicies', 'dcp']) {
    it(`prints Region, Retention, Audit, Nodes, vCores, Ready and Age for kubectl get ${resource}`, async function () {
      const out = await cluster().kubectlOk(['get', resource]);
      const [header, row] = out.trim().split('\n');
      expect(header?.split(/\s+/)).to.deep.equal(['NAME', 'REGION', 'RETENTION', 'AUDIT', 'NODES', 'VCORES', 'READY', 'AGE']);
      expect(row).to.match(/^default\s+eastus\s+28\s+/);
    });
  }

  it('accepts a policy with regional and central sinks when forwarding is allowed', async function () {
    const r = await cluster().apply(
      policy({ export: { forwardAggregatesToCentral: true, sinks: [httpSink(), fileSink(), httpSink({ name: 'central', type: 'otlp', region: 'central' })] } }),
    );
    expect(r.code, r.stderr).to.equal(0);
    await cluster().apply(SAMPLE);
  });

  it('refuses a change of subscriptionId, saying it is immutable', async function () {
    const r = await cluster().apply(policy({ subscriptionId: '3f2c1a9e-0000-4000-8000-000000000002' }));
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.include('subscriptionId is immutable');
  });

  it('refuses a change of region, saying it is immutable', async function () {
    const r = await cluster().apply(policy({ region: 'westeurope' }));
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.include('region is immutable');
  });

  describe('refuses invalid policies with a message that names the problem', function () {
    it(`has at least 25 distinct refusals`, function () {
      expect(new Set(REFUSALS.map((r) => r.what)).size).to.be.at.least(25);
    });
    for (const refusal of REFUSALS) {
      it(`refuses ${refusal.what}`, async function () {
        const r = await cluster().apply(refusal.yaml);
        expect(r.code, `accepted:\n${refusal.yaml}`).to.not.equal(0);
        if (typeof refusal.message === 'string') expect(r.stderr).to.include(refusal.message);
        else expect(r.stderr).to.match(refusal.message);
      });
    }
  });

  it('left the accepted policy unchanged after all refusals', async function () {
    const got = parse(await cluster().kubectlOk(['get', 'dcp', 'default', '-o', 'yaml'])) as { spec: Obj };
    expect(got.spec.region).to.equal('eastus');
    expect(got.spec.retention).to.deep.equal({ rawDays: 28, aggregateDays: 365 });
  });
});
