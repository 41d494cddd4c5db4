// The Helm chart and deploy/ are one source: helm lint passes, default values render exactly what
// `kubectl kustomize` renders, values reach the objects, bad values fail with a message, and the API
// server accepts the rendered objects (kubectl apply --dry-run=server).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { CHART_DIR } from '../../hack/chart.js';
import { cluster, CRD_DIR, KUBECTL, ROOT, run, type TestCluster } from './harness.js';

const HELM = join(ROOT, 'bin/helm');
const CHART = join(ROOT, CHART_DIR);

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}

function objects(yamlText: string): K8sObject[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJSON() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

const key = (o: K8sObject): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const byKey = (list: K8sObject[]): Record<string, K8sObject> => Object.fromEntries(list.map((o) => [key(o), o]));

async function ok(file: string, args: string[], input?: string): Promise<string> {
  const r = await run(file, args, input);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

const template = (...set: string[]): Promise<string> => ok(HELM, ['template', 'dcp', CHART, '--include-crds', ...set.flatMap((s) => ['--set', s])]);

describe('Helm chart deploy/chart/dcp-operator', function () {
  this.timeout(120_000);
  let c: TestCluster;

  before(async function () {
    c = cluster();
  });

  it('passes helm lint, with monitoring off and on', async function () {
    await ok(HELM, ['lint', '--strict', CHART]);
    await ok(HELM, ['lint', '--strict', CHART, '--set', 'monitoring.enabled=true']);
  });

  it('renders with default values exactly the objects kubectl kustomize renders from deploy/ and crds/', async function () {
    const crds = readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml')).flatMap((f) => objects(readFileSync(join(CRD_DIR, f), 'utf8')));
    const expected = byKey([...objects(await ok(KUBECTL, ['kustomize', join(ROOT, 'deploy')])), ...crds]);
    expect(Object.keys(expected)).to.include('StatefulSet/dcp-system/dcp-operator');
    expect(byKey(objects(await template()))).to.deep.equal(expected);
  });

  it('renders deploy/monitoring when monitoring is enabled, and nothing of it otherwise', async function () {
    const monitoring = byKey(objects(await ok(KUBECTL, ['kustomize', join(ROOT, 'deploy/monitoring')])));
    const on = byKey(objects(await template('monitoring.enabled=true')));
    const off = byKey(objects(await template()));
    for (const [k, o] of Object.entries(monitoring)) {
      expect(on[k], k).to.deep.equal(o);
      expect(off[k], k).to.equal(undefined);
    }
  });

  it('puts image, replicas, resources, storage, namespace and certificate namespaces where they belong', async function () {
    const out = byKey(objects(await template('image.repository=example.azurecr.io/dcp', 'image.tag=1.2.3', 'replicas=3', 'namespace=ops',
      'resources.limits.memory=1Gi', 'storage.size=5Gi', 'storage.storageClassName=managed-csi', 'certificateNamespaces={ingress,kube-system}')));
    const sts = out['StatefulSet/ops/dcp-operator'] as unknown as {
      spec: { replicas: number; template: { spec: { containers: { image: string; resources: unknown }[] } }; volumeClaimTemplates: { spec: { storageClassName: string; resources: { requests: { storage: string } } } }[] };
    };
    expect(sts.spec.replicas).to.equal(3);
    expect(sts.spec.template.spec.containers[0]?.image).to.equal('example.azurecr.io/dcp:1.2.3');
    expect(sts.spec.template.spec.containers[0]?.resources).to.deep.equal({ requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } });
    expect(sts.spec.volumeClaimTemplates[0]?.spec.resources.requests.storage).to.equal('5Gi');
    expect(sts.spec.volumeClaimTemplates[0]?.spec.storageClassName).to.equal('managed-csi');
    expect(Object.keys(out).filter((k) => k.startsWith('RoleBinding/') && k.endsWith('/dcp-operator-tls-reader')).sort())
      .to.deep.equal(['RoleBinding/ingress/dcp-operator-tls-reader', 'RoleBinding/kube-system/dcp-operator-tls-reader']);
    expect(out['Namespace//ops']).to.not.equal(undefined);
    expect(out['PodDisruptionBudget/ops/dcp-operator']).to.not.equal(undefined);
  });

  it('refuses values out of range with a message naming the value', async function () {
    for (const [set, field] of [['replicas=0', 'replicas'], ['storage.size=lots', 'size'], ['namespace=Not_A_Name', 'namespace'], ['image.pullPolicy=Sometimes', 'pullPolicy'], ['replica=2', 'replica']]) {
      const r = await run(HELM, ['template', 'dcp', CHART, '--set', set as string]);
      expect(r.code, set).to.not.equal(0);
      expect(r.stderr, set).to.match(/values don't meet the specifications of the schema/).and.to.contain(field);
    }
  });

  it('is accepted by the API server (helm template | kubectl apply --dry-run=server)', async function () {
    await c.ensureCrd();
    await c.ensureNamespace('dcp-system');
    const r = await c.kubectl(['apply', '--dry-run=server', '-f', '-'], await template());
    // (kubectl warns that an existing dcp-system lacks its last-applied annotation: not an error.)
    expect(r.stderr).to.not.match(/error|invalid|denied/i);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.contain('statefulset.apps/dcp-operator created (server dry run)').and.to.contain('poddisruptionbudget.policy/dcp-operator created (server dry run)');
  });
});
