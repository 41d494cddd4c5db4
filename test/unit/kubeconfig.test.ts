// The kubeconfig loader that keeps client-node out of `dcp run`: same requests options as client-node's KubeConfig for the files it serves, client-node itself for the rest.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type * as https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { stringify } from 'yaml';
import { inClusterKubeconfig, Kubeconfig, loadKubeconfig, parseKubeconfig, readKubeconfigFile } from '../../src/kube/kubeconfig.js';

const CA = '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n';
const CERT = '-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n';
const b64 = (s: string): string => Buffer.from(s).toString('base64');

function config(cluster: Record<string, unknown>, user: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', ...cluster } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'ctx',
    ...extra,
  });
}

/** What a request gets from a kubeconfig, in a form both loaders can be compared by. */
async function applied(kc: { applyToHTTPSOptions(o: https.RequestOptions): Promise<void> }): Promise<Record<string, unknown>> {
  const opts: https.RequestOptions = { headers: {} };
  await kc.applyToHTTPSOptions(opts);
  const text = (v: unknown): string | undefined => (v === undefined ? undefined : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
  return {
    ca: text(opts.ca),
    cert: text(opts.cert),
    key: text(opts.key),
    rejectUnauthorized: opts.rejectUnauthorized,
    servername: opts.servername,
    auth: opts.auth,
    authorization: (opts.headers as Record<string, unknown>)['Authorization'],
    impersonate: (opts.headers as Record<string, unknown>)['Impersonate-User'],
  };
}

describe('kubeconfig loader', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'dcp-kubeconfig-'));
    mkdirSync(join(dir, 'pki'));
    writeFileSync(join(dir, 'pki', 'ca.crt'), CA);
    writeFileSync(join(dir, 'pki', 'admin.crt'), CERT);
    writeFileSync(join(dir, 'pki', 'admin.key'), KEY);
    writeFileSync(join(dir, 'token'), 'file-token\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  // Each file is read by both loaders; every option a request gets must be the same.
  const cases: Record<string, () => string> = {
    'client certificate and CA as files (what kwokctl writes)': () =>
      config({ 'certificate-authority': join(dir, 'pki/ca.crt') }, { 'client-certificate': join(dir, 'pki/admin.crt'), 'client-key': join(dir, 'pki/admin.key') }),
    'relative file names, taken from the kubeconfig directory': () => config({ 'certificate-authority': 'pki/ca.crt' }, { 'client-certificate': 'pki/admin.crt', 'client-key': 'pki/admin.key' }),
    'client certificate and CA as data': () => config({ 'certificate-authority-data': b64(CA) }, { 'client-certificate-data': b64(CERT), 'client-key-data': b64(KEY) }),
    'a bearer token with CA data (what the e2e harness writes for a ServiceAccount)': () => config({ 'certificate-authority-data': b64(CA) }, { token: 'sa-token' }),
    'insecure-skip-tls-verify and tls-server-name': () => config({ 'insecure-skip-tls-verify': true, 'tls-server-name': 'kubernetes.default' }, { token: 't' }),
    'basic auth and impersonation': () => config({}, { username: 'admin', password: 'secret', as: 'jane' }),
    'a user without credentials': () => config({ 'certificate-authority-data': b64(CA) }, {}),
  };
  for (const [name, text] of Object.entries(cases)) {
    it(`reads ${name} as client-node does`, async () => {
      const file = join(dir, 'kubeconfig');
      writeFileSync(file, text());
      const theirs = new KubeConfig();
      theirs.loadFromFile(file);
      const ours = readKubeconfigFile(file);
      expect(ours.getCurrentCluster()?.server).to.equal(theirs.getCurrentCluster()?.server);
      expect(ours.getCurrentContext()).to.equal(theirs.getCurrentContext());
      expect(await applied(ours)).to.deep.equal(await applied(theirs));
    });
  }

  it('reads a token file at load, trims it and reads it again once the re-read interval has passed', async () => {
    const file = join(dir, 'token-file.kubeconfig');
    writeFileSync(join(dir, 'rotating'), 'first\n');
    writeFileSync(file, config({}, { 'token-file': 'rotating' }));
    let now = 1_000_000;
    const kc = readKubeconfigFile(file, { now: () => now });
    expect((await applied(kc)).authorization).to.equal('Bearer first');
    writeFileSync(join(dir, 'rotating'), 'second\n');
    now += 59_000;
    expect((await applied(kc)).authorization).to.equal('Bearer first');
    now += 2_000;
    expect((await applied(kc)).authorization).to.equal('Bearer second');
  });

  it('fails to load when the token file cannot be read', () => {
    expect(() => parseKubeconfig(config({}, { 'token-file': join(dir, 'missing') }))).to.throw(/ENOENT/);
  });

  it('selects the context it is told to instead of current-context', () => {
    const text = stringify({
      clusters: [
        { name: 'a', cluster: { server: 'https://a:6443/' } },
        { name: 'b', cluster: { server: 'https://b:6443' } },
      ],
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: [
        { name: 'ctx-a', context: { cluster: 'a', user: 'u' } },
        { name: 'ctx-b', context: { cluster: 'b', user: 'u' } },
      ],
      'current-context': 'ctx-a',
    });
    expect(parseKubeconfig(text).getCurrentCluster()?.server).to.equal('https://a:6443');
    expect(parseKubeconfig(text, undefined, { context: 'ctx-b' }).getCurrentCluster()?.server).to.equal('https://b:6443');
  });

  it('rejects entries missing a required field with the messages client-node gives', () => {
    const bad: string[] = [
      stringify({ clusters: [{ cluster: { server: 'https://x' } }] }),
      stringify({ clusters: [{ name: 'c' }] }),
      stringify({ clusters: [{ name: 'c', cluster: {} }] }),
      stringify({ users: [{ user: {} }] }),
      stringify({ contexts: [{ name: 'x' }] }),
      stringify({ contexts: [{ name: 'x', context: { user: 'u' } }] }),
    ];
    for (const text of bad) {
      let theirs = '';
      try {
        new KubeConfig().loadFromString(text);
      } catch (err) {
        theirs = (err as Error).message;
      }
      expect(theirs, text).to.not.equal('');
      expect(() => parseKubeconfig(text), text).to.throw(theirs);
    }
  });

  it('has no current cluster when current-context is missing or names nothing, as client-node', () => {
    for (const text of ['just: some\nyaml: [1, 2]\n', 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\ncurrent-context: gone\n']) {
      const theirs = new KubeConfig();
      theirs.loadFromString(text);
      const ours = parseKubeconfig(text);
      expect(ours.getCurrentCluster()).to.equal(null);
      expect(ours.getCurrentContext()).to.equal(theirs.getCurrentContext());
    }
  });

  it('refuses plain http unless TLS verification is skipped, as client-node does', async () => {
    const kc = parseKubeconfig(config({ server: 'http://127.0.0.1:8080' }, { token: 't' }));
    let err: unknown;
    await kc.applyToHTTPSOptions({}).catch((e: unknown) => (err = e));
    expect(String(err)).to.contain('HTTP protocol is not allowed');
    await parseKubeconfig(config({ server: 'http://127.0.0.1:8080', 'insecure-skip-tls-verify': true }, { token: 't' })).applyToHTTPSOptions({});
  });

  it('hands files with plugins, proxies or several files to client-node and keeps the rest', async () => {
    const own = join(dir, 'own.kubeconfig');
    writeFileSync(own, config({}, { token: 't' }));
    expect(await loadKubeconfig({ files: [own] })).to.be.instanceOf(Kubeconfig);
    const plugins: Record<string, string> = {
      exec: config({}, { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'true' } }),
      'auth-provider': config({}, { 'auth-provider': { name: 'oidc', config: { 'id-token': 'x' } } }),
      proxy: config({ 'proxy-url': 'http://proxy:3128' }, { token: 't' }),
    };
    for (const [name, text] of Object.entries(plugins)) {
      const file = join(dir, `${name}.kubeconfig`);
      writeFileSync(file, text);
      expect(parseKubeconfig(text).needsClientNode(), name).to.be.a('string');
      expect(await loadKubeconfig({ files: [file] }), name).to.be.instanceOf(KubeConfig);
    }
    const second = join(dir, 'second.kubeconfig');
    writeFileSync(second, stringify({ clusters: [{ name: 'd', cluster: { server: 'https://d:6443' } }], contexts: [{ name: 'dd', context: { cluster: 'd' } }], 'current-context': 'dd' }));
    const merged = await loadKubeconfig({ files: [own, second] });
    expect(merged).to.be.instanceOf(KubeConfig);
    expect(merged.getCurrentCluster()?.server).to.equal('https://d:6443');
  });

  it('builds the in-cluster config from the service account directory and the environment, as client-node does', async () => {
    const sa = join(dir, 'sa');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'sa-token');
    writeFileSync(join(sa, 'ca.crt'), CA);
    writeFileSync(join(sa, 'namespace'), 'dcp-system');
    for (const [host, port, server] of [
      ['10.0.0.1', '443', 'https://10.0.0.1:443'],
      ['fd00::1', '443', 'https://[fd00::1]:443'],
      ['10.0.0.1', '8080', 'http://10.0.0.1:8080'],
    ] as const) {
      const kc = inClusterKubeconfig({ KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port }, sa);
      expect(kc.getCurrentCluster()?.server).to.equal(server);
    }
    const kc = inClusterKubeconfig({ KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }, sa);
    expect(await applied(kc)).to.deep.include({ ca: CA, authorization: 'Bearer sa-token' });
    expect(kc.getCurrentCluster()?.caFile).to.equal(join(sa, 'ca.crt'));
  });

  it('says when the document is not a mapping', () => {
    expect(() => parseKubeconfig('- a\n- b\n')).to.throw('it is not a YAML mapping');
    expect(() => parseKubeconfig('')).to.throw('it is not a YAML mapping');
  });
});
