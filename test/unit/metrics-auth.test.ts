// Protected metrics: a bearer token is authenticated (TokenReview) and authorized (SubjectAccessReview) by the API server; HTTPS serves it.
import { request } from 'node:https';
import { expect } from 'chai';
import { Counter, Registry } from 'prom-client';
import { selfSignedCertificate } from '../../src/audit/x509.js';
import type { KubeRequest, KubeTransport } from '../../src/kube/client.js';
import { bearerToken, DelegatedAuth } from '../../src/kube/delegated-auth.js';
import { ServerError } from '../../src/kube/errors.js';
import { ProbeServer } from '../../src/observability/http.js';

/** An API server that knows two tokens: one whose user may get /metrics, one whose user may not. */
class FakeAuthApi implements KubeTransport {
  readonly calls: string[] = [];
  down = false;
  stream(): never {
    throw new Error('not used');
  }
  json(req: KubeRequest): Promise<unknown> {
    this.calls.push(req.path);
    if (this.down) return Promise.reject(new ServerError(500, 'InternalError', 'etcdserver: request timed out'));
    const spec = (req.body as { spec: Record<string, unknown> }).spec;
    if (req.path.endsWith('/tokenreviews')) {
      const users: Record<string, unknown> = {
        'prom-token': { username: 'system:serviceaccount:monitoring:prometheus', groups: ['system:serviceaccounts'], uid: 'u1' },
        'other-token': { username: 'system:serviceaccount:apps:web', groups: ['system:serviceaccounts'] },
      };
      const user = users[String(spec['token'])];
      return Promise.resolve({ status: user === undefined ? { authenticated: false } : { authenticated: true, user } });
    }
    const attrs = spec['nonResourceAttributes'] as { path: string; verb: string };
    const allowed = spec['user'] === 'system:serviceaccount:monitoring:prometheus' && attrs.path === '/metrics' && attrs.verb === 'get';
    return Promise.resolve({ status: { allowed } });
  }
}

describe('metrics: delegated authentication and authorization', function () {
  it('reads only a Bearer token from the Authorization header', function () {
    expect(bearerToken('Bearer abc.def')).to.equal('abc.def');
    expect(bearerToken('bearer   xyz ')).to.equal('xyz');
    expect(bearerToken('Basic dXNlcjpwdw==')).to.equal(undefined);
    expect(bearerToken('Bearer ')).to.equal(undefined);
    expect(bearerToken(undefined)).to.equal(undefined);
  });

  it('answers 401 without a token or with one the API server does not know, 403 when RBAC says no, and allows the rest', async function () {
    const api = new FakeAuthApi();
    const auth = new DelegatedAuth({ transport: api });
    expect(await auth.authorize(undefined, '/metrics')).to.deep.include({ allowed: false, status: 401 });
    expect(api.calls).to.deep.equal([]);
    expect(await auth.authorize('Bearer stolen', '/metrics')).to.deep.include({ allowed: false, status: 401 });
    expect(await auth.authorize('Bearer other-token', '/metrics')).to.deep.include({ allowed: false, status: 403 });
    expect(await auth.authorize('Bearer prom-token', '/metrics')).to.deep.equal({ allowed: true, user: 'system:serviceaccount:monitoring:prometheus' });
    expect(await auth.authorize('Bearer prom-token', '/debug')).to.deep.include({ allowed: false, status: 403 });
  });

  it('asks the API server once per token and path within the cache time, and again after it', async function () {
    let now = 0;
    const api = new FakeAuthApi();
    const auth = new DelegatedAuth({ transport: api, now: () => now, cacheTtlMs: 10_000 });
    for (let i = 0; i < 5; i++) await auth.authorize('Bearer prom-token', '/metrics');
    expect(api.calls).to.have.length(2);
    now += 10_000;
    await auth.authorize('Bearer prom-token', '/metrics');
    expect(api.calls).to.have.length(4);
  });

  it('answers 500 while the API server cannot be asked, and does not remember it', async function () {
    const api = new FakeAuthApi();
    const auth = new DelegatedAuth({ transport: api });
    api.down = true;
    expect(await auth.authorize('Bearer prom-token', '/metrics')).to.deep.include({ allowed: false, status: 500 });
    api.down = false;
    expect(await auth.authorize('Bearer prom-token', '/metrics')).to.deep.include({ allowed: true });
  });
});

describe('metrics: the HTTPS endpoint', function () {
  const get = (port: number, path: string, token?: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, rejectUnauthorized: false, headers: token !== undefined ? { authorization: `Bearer ${token}` } : {} }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('serves /metrics over TLS to an authorized scraper only', async function () {
    const registry = new Registry();
    new Counter({ name: 'dcp_probe_test_total', help: 'x', registers: [registry] }).inc();
    const now = new Date();
    const { certPem, keyPem } = selfSignedCertificate({ commonName: 'dcp-operator-metrics', notBefore: now, notAfter: new Date(now.getTime() + 86_400_000) });
    const auth = new DelegatedAuth({ transport: new FakeAuthApi() });
    const server = new ProbeServer({ registry, tls: { cert: certPem, key: keyPem }, authorize: (h, p) => auth.authorize(h, p) });
    const { port } = await server.listen('127.0.0.1:0');
    try {
      expect((await get(port, '/metrics')).status).to.equal(401);
      expect((await get(port, '/metrics', 'other-token')).status).to.equal(403);
      const ok = await get(port, '/metrics', 'prom-token');
      expect(ok.status).to.equal(200);
      expect(ok.body).to.contain('dcp_probe_test_total 1');
    } finally {
      await server.close();
    }
  });
});
