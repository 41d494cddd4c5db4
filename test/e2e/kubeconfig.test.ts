// The operator's own kubeconfig loader against the real API server: the harness's files (client certificate; ServiceAccount token) and an in-cluster service account directory whose token rotates.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { KubeClient } from '../../src/kube/client.js';
import { inClusterKubeconfig, Kubeconfig, readKubeconfigFile } from '../../src/kube/kubeconfig.js';
import { cluster, type TestCluster } from './harness.js';

/** Who the API server says the caller is (SelfSubjectReview, GA since 1.28). */
async function whoAmI(client: KubeClient): Promise<string> {
  const review = (await client.json({ method: 'POST', path: '/apis/authentication.k8s.io/v1/selfsubjectreviews', body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } })) as {
    status: { userInfo: { username: string } };
  };
  return review.status.userInfo.username;
}

describe('kubeconfig loader on the real API server', function () {
  this.timeout(120_000);
  let c: TestCluster;
  let dir: string;
  const clients: KubeClient[] = [];
  const client = (kc: Kubeconfig): KubeClient => {
    const k = new KubeClient(kc);
    clients.push(k);
    return k;
  };

  before(async function () {
    c = cluster();
    dir = mkdtempSync(join(tmpdir(), 'dcp-e2e-kubeconfig-'));
    await c.ensureNamespace('dcp-system');
    for (const sa of ['kc-first', 'kc-second']) {
      await c.kubectl(['-n', 'dcp-system', 'create', 'serviceaccount', sa]);
    }
  });

  after(async function () {
    for (const k of clients) k.destroy();
    await c.kubectl(['-n', 'dcp-system', 'delete', 'serviceaccount', 'kc-first', 'kc-second', '--ignore-not-found']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('authenticates with the client certificate and CA files of the harness kubeconfig', async () => {
    const kc = readKubeconfigFile(c.kubeconfigPath);
    expect(kc.needsClientNode()).to.equal(undefined);
    expect(await whoAmI(client(kc))).to.not.match(/^system:anonymous/);
    const list = (await client(kc).json({ path: '/api/v1/namespaces/kube-system' })) as { metadata: { name: string } };
    expect(list.metadata.name).to.equal('kube-system');
  });

  it('authenticates with the ServiceAccount token kubeconfig the harness writes', async () => {
    const file = await c.tokenKubeconfig('dcp-system', 'kc-first', join(dir, 'token.kubeconfig'));
    expect(await whoAmI(client(readKubeconfigFile(file)))).to.equal('system:serviceaccount:dcp-system:kc-first');
  });

  it('runs in-cluster from the service account directory and picks up a rotated token', async () => {
    const sa = join(dir, 'serviceaccount');
    mkdirSync(sa);
    const admin = readKubeconfigFile(c.kubeconfigPath);
    const server = new URL(admin.getCurrentCluster()?.server ?? '');
    const caFile = admin.getCurrentCluster()?.caFile;
    writeFileSync(join(sa, 'ca.crt'), caFile ? readFileSync(caFile) : Buffer.from(admin.getCurrentCluster()?.caData ?? '', 'base64'));
    const token = async (name: string): Promise<string> => (await c.kubectlOk(['-n', 'dcp-system', 'create', 'token', name, '--duration=1h'])).trim();
    writeFileSync(join(sa, 'token'), `${await token('kc-first')}\n`);
    writeFileSync(join(sa, 'namespace'), 'dcp-system');
    let now = 0;
    const kc = inClusterKubeconfig({ KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port }, sa, { now: () => now });
    const k = client(kc);
    expect(await whoAmI(k)).to.equal('system:serviceaccount:dcp-system:kc-first');
    // The kubelet replaces the projected token; the next read after the interval sends the new one.
    writeFileSync(join(sa, 'token'), `${await token('kc-second')}\n`);
    expect(await whoAmI(k)).to.equal('system:serviceaccount:dcp-system:kc-first');
    now += 61_000;
    expect(await whoAmI(k)).to.equal('system:serviceaccount:dcp-system:kc-second');
  });
});
