// --metrics-secure against the real API server: /metrics over HTTPS for a token whose user RBAC allows, 403 for others, 401 without one; health stays plain.
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { expect } from 'chai';
import { cluster, ROOT, type TestCluster } from './harness.js';
import { killAllOperators, OperatorProcess } from './operator-process.js';

const MANIFESTS = ['deploy/base/namespace.yaml', 'deploy/base/rbac.yaml'].map((f) => join(ROOT, f));

/** GET over TLS; the certificate is self-signed (no --metrics-cert-dir), so it is not verified here. */
function httpsGet(port: number, path: string, token?: string): Promise<{ status: number; body: string; protocol: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, rejectUnauthorized: false, headers: token !== undefined ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = '';
      // Read now: the socket is detached from the response once it ends.
      const protocol = String((res.socket as TLSSocket).getProtocol());
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, protocol }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('metrics: --metrics-secure, authorized by the API server', function () {
  this.timeout(180_000);
  let c: TestCluster;
  let dir: string;
  let ns: string;
  let op: OperatorProcess;

  before(async function () {
    c = cluster();
    await c.ensureCrd();
    dir = mkdtempSync(join(tmpdir(), 'dcp-e2e-metrics-'));
    ns = `dcp-metrics-${c.runId}`;
    await c.kubectlOk(['apply', ...MANIFESTS.flatMap((f) => ['-f', f])]);
    await c.ensureNamespace(ns);
    await c.kubectlOk(['-n', ns, 'create', 'serviceaccount', 'prometheus']);
    await c.kubectlOk(['-n', ns, 'create', 'serviceaccount', 'stranger']);
    // What deploy/monitoring does for the Prometheus Operator's account, here for the test's own.
    await c.kubectlOk(['create', 'clusterrolebinding', `dcp-metrics-reader-${c.runId}`, '--clusterrole=dcp-operator-metrics-reader', `--serviceaccount=${ns}:prometheus`]);
    // The operator runs as deploy/'s ServiceAccount, so its RBAC for TokenReview and SubjectAccessReview is tested too.
    const kubeconfig = await c.tokenKubeconfig('dcp-system', 'dcp-operator', join(dir, 'sa.kubeconfig'));
    op = new OperatorProcess(kubeconfig, ['--metrics-secure']);
    await op.started();
  });

  after(async function () {
    await op.stop();
    op.cleanup();
    killAllOperators();
    await c.kubectl(['delete', 'clusterrolebinding', `dcp-metrics-reader-${c.runId}`, '--ignore-not-found']);
    await c.kubectl(['delete', 'namespace', ns, '--wait=false']);
    await c.kubectl(['delete', '-f', join(ROOT, 'deploy/base/rbac.yaml'), '--ignore-not-found']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves /metrics over TLS: 200 to a token RBAC allows, 403 to one it does not, 401 without or with a bad token', async function () {
    const token = async (sa: string): Promise<string> => (await c.kubectlOk(['-n', ns, 'create', 'token', sa, '--duration=10m'])).trim();
    const allowed = await httpsGet(op.metricsPort, '/metrics', await token('prometheus'));
    expect(allowed.status, allowed.body).to.equal(200);
    expect(allowed.protocol).to.match(/^TLSv1\.[23]$/);
    expect(allowed.body).to.contain('dcp_watch_synced');
    const forbidden = await httpsGet(op.metricsPort, '/metrics', await token('stranger'));
    expect(forbidden.status, forbidden.body).to.equal(403);
    expect(forbidden.body).to.not.contain('dcp_');
    expect((await httpsGet(op.metricsPort, '/metrics')).status).to.equal(401);
    expect((await httpsGet(op.metricsPort, '/metrics', 'not-a-token')).status).to.equal(401);
    // Plain HTTP is not served on the secure port.
    const plain = await fetch(`http://127.0.0.1:${op.metricsPort}/metrics`).then(
      (res) => res.status,
      () => 'refused',
    );
    expect(plain).to.equal('refused');
  });

  it('keeps /healthz and /readyz plain HTTP without credentials, for kubelet probes', async function () {
    expect((await op.get('health', '/healthz')).status).to.equal(200);
    const ready = await op.get('health', '/readyz');
    expect([200, 503]).to.include(ready.status);
  });
});
