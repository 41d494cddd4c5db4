// deploy/'s RBAC is enough and no more: `dcp run` authenticated as its ServiceAccount collects every category.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { selfSignedCertificate } from '../../hack/certs.js';
import { CATEGORY_NAMES } from '../../src/api/policy.js';
import { cluster, ROOT, type TestCluster } from './harness.js';
import { killAllOperators, OperatorProcess, waitFor } from './operator-process.js';
import { applyOk, getPolicy, policyYaml, readyAtGeneration } from './pipeline-helpers.js';

const SA = 'system:serviceaccount:dcp-system:dcp-operator';
const MANIFESTS = ['deploy/base/namespace.yaml', 'deploy/base/rbac.yaml'].map((f) => join(ROOT, f));

describe('RBAC: dcp run as the ServiceAccount deploy/ installs', function () {
  this.timeout(240_000);
  let c: TestCluster;
  let dir: string;
  let op: OperatorProcess | undefined;
  const names = { secret: '', event: '' };

  before(async function () {
    c = cluster();
    killAllOperators();
    await c.ensureCrd();
    await c.resetPolicy();
    dir = mkdtempSync(join(tmpdir(), 'dcp-e2e-rbac-'));
    await c.kubectlOk(['apply', ...MANIFESTS.flatMap((f) => ['-f', f])]);
    await c.createNodes([{ name: `rbac-${c.runId}`, cpu: '4', instanceType: 'Standard_D4s_v5' }]);
    names.secret = `rbac-${c.runId}-tls`;
    names.event = `rbac-${c.runId}.oops`;
    const now = Date.now();
    const tls = selfSignedCertificate({ commonName: 'rbac.example', notBefore: new Date(now - 86_400_000), notAfter: new Date(now + 90 * 86_400_000) });
    await c.kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: names.secret, namespace: 'kube-system' }, stringData: { 'tls.crt': tls.certPem, 'tls.key': tls.keyPem } }));
    const stamp = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
    await c.kubectlOk(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: names.event, namespace: 'default' },
      involvedObject: { apiVersion: 'v1', kind: 'Node', name: `rbac-${c.runId}` },
      type: 'Warning',
      reason: 'KernelOops',
      message: 'kernel: BUG: unable to handle page fault',
      source: { component: 'kernel-monitor' },
      firstTimestamp: stamp,
      lastTimestamp: stamp,
      count: 1,
    }));
  });

  after(async function () {
    await op?.stop();
    op?.cleanup();
    killAllOperators();
    await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
    await c.kubectl(['-n', 'kube-system', 'delete', 'secret', names.secret, '--ignore-not-found']);
    await c.kubectl(['-n', 'default', 'delete', 'event', names.event, '--ignore-not-found']);
    await c.kubectl(['delete', 'node', `rbac-${c.runId}`, '--ignore-not-found', '--wait=false']);
    // The RBAC objects only: dcp-system stays, other tests run operators there.
    await c.kubectl(['delete', '-f', join(ROOT, 'deploy/base/rbac.yaml'), '--ignore-not-found']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('grants Secrets only in the certificate namespaces, read-only, and nothing it does not use', async function () {
    const can = async (...args: string[]): Promise<string> => (await c.kubectl(['auth', 'can-i', ...args, `--as=${SA}`])).stdout.trim();
    expect(await can('list', 'secrets', '-n', 'kube-system')).to.equal('yes');
    expect(await can('get', 'secrets', '-n', 'kube-system'), 'a named Secret in kube-system').to.equal('no');
    expect(await can('list', 'secrets', '-n', 'default')).to.equal('no');
    expect(await can('list', 'secrets', '--all-namespaces')).to.equal('no');
    expect(await can('create', 'secrets', '-n', 'dcp-system'), 'its own device key').to.equal('yes');
    expect(await can('create', 'pods', '-n', 'default')).to.equal('no');
    expect(await can('update', 'nodes')).to.equal('no');
    expect(await can('update', 'datacollectionpolicies.datacollection.arc.io')).to.equal('no');
    expect(await can('patch', 'datacollectionpolicies.datacollection.arc.io', '--subresource=status')).to.equal('yes');
  });

  it('collects every category, writes its status, Lease, key and billing state, and is never refused', async function () {
    const kubeconfig = await c.tokenKubeconfig('dcp-system', 'dcp-operator', join(dir, 'sa.kubeconfig'));
    op = new OperatorProcess(kubeconfig, ['--leader-elect']);
    await op.started();
    await applyOk(c, policyYaml({ categories: { controlPlane: { intervalSeconds: 10 }, billing: { intervalSeconds: 10 } } }));
    await readyAtGeneration(c, 90_000);
    const collecting = CATEGORY_NAMES.filter((n) => n !== 'diagnostics');
    let emitted: Record<string, number> = {};
    await waitFor(
      async () => {
        const categories = (await getPolicy(c))?.status?.categories ?? {};
        emitted = Object.fromEntries(collecting.map((n) => [n, categories[n]?.eventsEmitted ?? 0]));
        return collecting.every((n) => (emitted[n] ?? 0) > 0);
      },
      90_000,
      'events in every category',
      500,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; emitted so far: ${JSON.stringify(emitted)}`);
    });
    expect(await c.kubectlOk(['-n', 'dcp-system', 'get', 'lease', 'dcp-operator', '-o', 'jsonpath={.spec.holderIdentity}'])).to.equal(op.identity);
    expect(await c.kubectlOk(['-n', 'dcp-system', 'get', 'secret', 'dcp-device-key', '-o', 'name'])).to.contain('dcp-device-key');
    expect(await c.kubectlOk(['-n', 'dcp-system', 'get', 'configmap', 'dcp-billing', '-o', 'name'])).to.contain('dcp-billing');
    const refused = op.logs.filter((l) => /forbidden|unauthorized|\b403\b|\b401\b/i.test(JSON.stringify(l)));
    expect(refused.slice(0, 5), 'requests the API server refused').to.deep.equal([]);
  });
});
