// Security events: certificate states at their boundaries, renewals, revoked CSRs, KMS health from readyz and metrics text, never names or key material.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { selfSignedCertificate } from '../../hack/certs.js';
import type { PolicySpec } from '../../src/api/policy.js';
import { parsePolicy } from '../../src/api/validation.js';
import { clusterRef } from '../../src/collectors/collector.js';
import type { NamespaceProjection } from '../../src/collectors/projections.js';
import { certificateEvent, certificateState, certificateStatusData, csrStatusData } from '../../src/collectors/certificates.js';
import { kmsEvent, kmsStatusOf } from '../../src/collectors/kms.js';
import { CSR_PATH, SecurityCollector, securitySnapshot } from '../../src/collectors/security.js';
import type { KubeRequest, KubeTransport, ResponseStream, TextResponse } from '../../src/kube/client.js';
import { KubeClient, readJson } from '../../src/kube/client.js';
import { ServerError } from '../../src/kube/errors.js';
import { parseCertificates, projectCsr, type CertificateInfo } from '../../src/kube/projections.js';
import type { CertificateStatusData, ClusterRef, DcpEvent, KmsStatusData } from '../../src/api/event.js';
import type { Log } from '../../src/observability/log.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import type { RecordedEvent } from '../../src/kube/recorder.js';
import { SkippedObjects } from '../../src/runtime/skipped-objects.js';
import { ManualClock } from '../../src/runtime/clock.js';

const DAY = 86_400_000;
const KUBE_SYSTEM: NamespaceProjection = { uid: '0b9c8d7e-0000-4000-8000-000000000001', creationTimestamp: '2025-12-01T08:00:00Z' };

function spec(security: { enabled?: boolean; certificateNamespaces?: string[]; expiryWarningDays?: number } = {}): PolicySpec {
  return parsePolicy({
    apiVersion: 'datacollection.arc.io/v1alpha1',
    kind: 'DataCollectionPolicy',
    metadata: { name: 'default' },
    spec: { subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001', region: 'westeurope', categories: { security } },
  }).spec;
}

const CLUSTER: ClusterRef = clusterRef(KUBE_SYSTEM, spec());

// ---- readyz and metrics text, shaped as kube-apiserver v1.34 writes it ----

const READYZ_HEAD = ['[+]ping ok', '[+]log ok', '[+]etcd ok', '[+]etcd-readiness ok', '[+]informer-sync ok'];
const READYZ_TAIL = ['[+]poststarthook/start-apiserver-admission-initializer ok', '[+]poststarthook/rbac/bootstrap-roles ok', '[+]shutdown ok'];
const readyz = (...kms: string[]): string => {
  const failed = kms.some((l) => l.startsWith('[-]'));
  return [...READYZ_HEAD, ...kms, ...READYZ_TAIL, failed ? 'readyz check failed' : 'readyz check passed', ''].join('\n');
};

const KEY_OLD = 'sha256:6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b';
const KEY_NEW = 'sha256:d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35';
const APISERVER_ID = 'sha256:3c607df3b2bf22c9d9f01d5314b4bbf411c48ef43ff44ff29b1d55b41367c795';
const sample = (key: string, provider: string, type: string, value: string): string =>
  `apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds{apiserver_id_hash="${APISERVER_ID}",key_id_hash="${key}",provider_name="${provider}",transformation_type="${type}"} ${value}`;
const METRICS = [
  '# HELP apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds [ALPHA] The last time in seconds when a keyID was used.',
  '# TYPE apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds gauge',
  sample(KEY_OLD, 'kms-a', 'from_storage', '1.7408e+09'),
  sample(KEY_NEW, 'kms-a', 'to_storage', '1.741000001e+09'),
  sample(KEY_OLD, 'kms-b', 'from_storage', '1.7409e+09'),
  // Another metric whose name starts the same: a key the plugin reported, not one in use; ignored.
  `apiserver_envelope_encryption_key_id_hash_status_last_timestamp_seconds{apiserver_id_hash="${APISERVER_ID}",key_id_hash="sha256:${'e'.repeat(64)}",provider_name="kms-a"} 1.9e+09`,
  'apiserver_envelope_encryption_dek_cache_fill_percent 0',
  '',
].join('\n');

// ---- real certificates, made once (hack/certs.ts signs them with node:crypto) ----

/** Two unrelated leaves and a long-lived third certificate, PEM; made at load time, valid from a day ago. */
const PKI = (() => {
  const now = Date.now();
  const make = (cn: string, days: number): string => selfSignedCertificate({ commonName: cn, notBefore: new Date(now - DAY), notAfter: new Date(now + days * DAY) }).certPem;
  return { a: make('alice-laptop.corp.example', 90), b: make('alice-laptop.corp.example', 90), ca: make('dcp test CA', 3650) };
})();

/** Noon UTC two days after `ms`: far from a day boundary, so one test step never crosses into a new daily bucket. */
const noonAfter = (ms: number): number => Math.floor(ms / DAY) * DAY + 2 * DAY + DAY / 2;

function certs(): typeof PKI {
  return PKI;
}

const leafOf = (pem: string): CertificateInfo => {
  const c = parseCertificates(pem)[0];
  if (c === undefined) throw new Error('no certificate');
  return c;
};

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

function tlsSecret(ns: string, name: string, crt: string | undefined, rv = '1'): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns, uid: `uid-${ns}-${name}`, resourceVersion: rv, annotations: { owner: 'alice@corp.example' } },
    type: 'kubernetes.io/tls',
    data: { ...(crt !== undefined ? { 'tls.crt': b64(crt) } : {}), 'tls.key': b64('-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n') },
  };
}

interface CsrOptions {
  conditions?: Array<{ type: string; status?: string }>;
  certificate?: string;
}

/** A CSR as the API server returns it, with the personal fields a projection must drop. */
function rawCsr(name: string, o: CsrOptions = {}): unknown {
  return {
    apiVersion: 'certificates.k8s.io/v1',
    kind: 'CertificateSigningRequest',
    metadata: { name, uid: `uid-${name}`, resourceVersion: '7', creationTimestamp: '2026-02-27T10:00:00Z' },
    spec: {
      request: b64('-----BEGIN CERTIFICATE REQUEST-----\nMIIBMzCB2gIBADBMMRUwEwYDVQQKEwxzeXN0ZW06bm9kZXM\n-----END CERTIFICATE REQUEST-----\n'),
      signerName: 'kubernetes.io/kube-apiserver-client-kubelet',
      username: 'system:node:alice-laptop',
      uid: 'f00dfeed-0000-4000-8000-00000000cafe',
      groups: ['system:nodes', 'system:authenticated'],
      extra: { 'authentication.kubernetes.io/credential-id': ['X509SHA256=abcdef'] },
      usages: ['digital signature', 'client auth'],
    },
    status: {
      ...(o.conditions !== undefined
        ? {
            conditions: o.conditions.map((c) => ({
              type: c.type,
              ...(c.status !== undefined ? { status: c.status } : {}),
              reason: `${c.type}ByAdmin`,
              message: 'handled by bob',
              lastUpdateTime: '2026-02-27T10:00:01Z',
            })),
          }
        : {}),
      ...(o.certificate !== undefined ? { certificate: b64(o.certificate) } : {}),
    },
  };
}

// ---- a scripted API server ----

interface OpenWatch {
  readonly path: string;
  push(type: string, object: unknown): void;
}

/** Lists what `objects` holds per collection path, keeps watches open for `push`, answers readyz and metrics from fields. */
class FakeApi implements KubeTransport {
  readonly objects = new Map<string, unknown[]>();
  readonly watches: OpenWatch[] = [];
  readonly requests: string[] = [];
  readyz: TextResponse = { statusCode: 200, body: readyz() };
  metrics = METRICS;
  failReadyz = false;

  async stream(req: KubeRequest): Promise<ResponseStream> {
    const q = req.query ?? {};
    this.requests.push(`${req.path}${q['watch'] !== undefined ? '?watch' : ''}`);
    if (req.path === '/metrics') return body(this.metrics);
    if (req.path === '/readyz') {
      if (this.failReadyz || this.readyz.statusCode !== 200) throw new ServerError(500, '', 'HTTP 500');
      return body(this.readyz.body);
    }
    if (q['watch'] !== undefined) return this.openWatch(req);
    const items = this.objects.get(req.path) ?? [];
    return body(JSON.stringify({ kind: 'List', metadata: { resourceVersion: '10' }, items }));
  }

  async json(req: KubeRequest): Promise<unknown> {
    return readJson(await this.stream(req));
  }

  async text(req: KubeRequest): Promise<TextResponse> {
    this.requests.push(req.path);
    if (this.failReadyz) throw new ServerError(503, '', 'HTTP 503');
    return this.readyz;
  }

  /** Watches still open on `path`. */
  open(path: string): OpenWatch[] {
    return this.watches.filter((w) => w.path === path);
  }

  private openWatch(req: KubeRequest): ResponseStream {
    const queue: string[] = [];
    let wake: (() => void) | undefined;
    const signal = req.signal;
    const watch: OpenWatch = {
      path: req.path,
      push: (type, object) => {
        queue.push(`${JSON.stringify({ type, object })}\n`);
        wake?.();
      },
    };
    this.watches.push(watch);
    const remove = (): void => {
      const i = this.watches.indexOf(watch);
      if (i >= 0) this.watches.splice(i, 1);
    };
    return {
      statusCode: 200,
      close: remove,
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            const next = queue.shift();
            if (next !== undefined) {
              yield Buffer.from(next);
              continue;
            }
            if (signal?.aborted === true) throw new Error('aborted');
            await new Promise<void>((resolve) => {
              wake = resolve;
              signal?.addEventListener('abort', () => resolve(), { once: true });
            });
            wake = undefined;
          }
        } finally {
          remove();
        }
      },
    };
  }
}

function body(text: string): ResponseStream {
  return {
    statusCode: 200,
    close: () => undefined,
    async *[Symbol.asyncIterator]() {
      // Split mid-line, as a socket would.
      const buf = Buffer.from(text);
      const half = Math.floor(buf.length / 2);
      yield buf.subarray(0, half);
      yield buf.subarray(half);
    },
  };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

const SECRETS_KS = '/api/v1/namespaces/kube-system/secrets';
const SECRETS_DCP = '/api/v1/namespaces/dcp-system/secrets';
const SECRETS_APPS = '/api/v1/namespaces/apps/secrets';

interface Warned {
  message: string;
  meta: Record<string, unknown> | undefined;
}

function harness(initial: PolicySpec, start: number) {
  const clock = new ManualClock(start);
  const registry = new Registry();
  const recorded: RecordedEvent[] = [];
  const api = new FakeApi();
  const emitted: DcpEvent[] = [];
  const warnings: Warned[] = [];
  let failEmits = 0;
  const log: Log = {
    debug: () => undefined,
    info: () => undefined,
    warn: (message, meta) => warnings.push({ message, meta }),
    error: () => undefined,
  };
  const skipped = new SkippedObjects({
    registry,
    log,
    now: () => clock.now(),
    record: (e) => {
      recorded.push(e);
      return Promise.resolve();
    },
  });
  const collector = new SecurityCollector({
    transport: api,
    kubeSystem: KUBE_SYSTEM,
    spec: initial,
    clock,
    log,
    checkIntervalMs: 300_000,
    batchDelayMs: 1000,
    skipped,
    emit: async (events) => {
      if (failEmits > 0) {
        failEmits -= 1;
        throw new Error('store unavailable');
      }
      for (const e of events) {
        const v = validateEvent(e);
        if (!v.ok) throw new Error(`invalid event: ${v.problems.join('; ')}`);
        emitted.push(e);
      }
    },
  });
  const ctl = new AbortController();
  let done: Promise<void> | undefined;
  return {
    clock,
    api,
    emitted,
    warnings,
    collector,
    ctl,
    registry,
    recorded,
    failNextEmits: (n: number) => void (failEmits = n),
    start: () => void (done = collector.run(ctl.signal)),
    /** Lets I/O settle, moves the clock, lets it settle again. */
    step: async (ms: number) => {
      await settle();
      clock.advance(ms);
      await settle();
      // What the step set off (a check's re-evaluation) is due at once.
      clock.advance(0);
      await settle();
    },
    stop: async () => {
      ctl.abort();
      await done;
    },
    certs: () => emitted.filter((e) => e.name === 'CertificateStatus').map((e) => e.data as CertificateStatusData),
    kms: () => emitted.filter((e) => e.name === 'KmsStatus').map((e) => e.data as KmsStatusData),
  };
}

// ---- the tests ----

describe('security collector', function () {

  describe('certificateState', function () {
    const cert = { notBefore: '2026-01-01T00:00:00.000Z', notAfter: '2026-04-01T00:00:00.000Z' };
    const notBefore = Date.parse(cert.notBefore);
    const notAfter = Date.parse(cert.notAfter);

    it('is notYetValid before notBefore and valid from notBefore on (both ends inclusive)', function () {
      expect(certificateState(cert, notBefore - 1, 30)).to.equal('notYetValid');
      expect(certificateState(cert, notBefore, 30)).to.equal('valid');
    });

    it('is expiring from exactly expiryWarningDays before notAfter', function () {
      expect(certificateState(cert, notAfter - 30 * DAY - 1, 30)).to.equal('valid');
      expect(certificateState(cert, notAfter - 30 * DAY, 30)).to.equal('expiring');
      expect(certificateState(cert, notAfter - 7 * DAY - 1, 7)).to.equal('valid');
      expect(certificateState(cert, notAfter - 7 * DAY, 7)).to.equal('expiring');
    });

    it('is expired only after notAfter', function () {
      expect(certificateState(cert, notAfter, 30)).to.equal('expiring');
      expect(certificateState(cert, notAfter + 1, 30)).to.equal('expired');
    });

    it('is expiring all its life when the warning window is longer than its validity', function () {
      expect(certificateState(cert, notBefore, 365)).to.equal('expiring');
    });
  });

  describe('certificateStatusData', function () {
    const info: CertificateInfo = {
      notBefore: '2026-01-01T00:00:00.000Z',
      notAfter: '2026-04-01T00:00:00.000Z',
      fingerprintSha256: 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89',
      serialNumber: '4F2A99',
      isCa: false,
    };
    const notAfter = Date.parse(info.notAfter);

    it('gives the fingerprint as lower-case hex without colons, whole days to expiry, and nothing else of the certificate', function () {
      const data = certificateStatusData(info, notAfter - 10 * DAY - 1, 30, 'secret');
      expect(data).to.deep.equal({
        notBefore: '2026-01-01T00:00:00.000Z',
        notAfter: '2026-04-01T00:00:00.000Z',
        daysToExpiry: 10,
        fingerprintSha256: 'abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789',
        state: 'expiring',
        source: 'secret',
      });
      expect(JSON.stringify(data)).not.to.contain('4F2A99');
    });

    it('counts days to expiry down through zero to negative', function () {
      expect(certificateStatusData(info, notAfter - DAY, 30, 'csr').daysToExpiry).to.equal(1);
      expect(certificateStatusData(info, notAfter - 1, 30, 'csr').daysToExpiry).to.equal(0);
      expect(certificateStatusData(info, notAfter + 1, 30, 'csr')).to.include({ daysToExpiry: -1, state: 'expired', source: 'csr' });
      expect(certificateStatusData(info, notAfter + 3 * DAY, 30, 'csr').daysToExpiry).to.equal(-3);
    });

    it('says renewed when asked, whatever the validity', function () {
      expect(certificateStatusData(info, notAfter + DAY, 30, 'secret', true).state).to.equal('renewed');
    });

    it('makes schema-valid events, one id per fingerprint, state and day', function () {
      const at = notAfter - 40 * DAY;
      const morning = certificateEvent(CLUSTER, at, certificateStatusData(info, at, 30, 'secret'));
      expect(validateEvent(morning)).to.deep.include({ ok: true });
      expect(morning).to.include({ category: 'security', name: 'CertificateStatus', classification: 'non-personal' });
      const evening = certificateEvent(CLUSTER, at + 3_600_000, certificateStatusData(info, at + 3_600_000, 30, 'secret'));
      expect(evening.id).to.equal(morning.id);
      const renewed = certificateEvent(CLUSTER, at, certificateStatusData(info, at, 30, 'secret', true));
      expect(renewed.id).not.to.equal(morning.id);
      const nextDay = certificateEvent(CLUSTER, at + DAY, certificateStatusData(info, at + DAY, 30, 'secret'));
      expect(nextDay.id).not.to.equal(morning.id);
    });

    it('is schema-valid for a real certificate', function () {
      const leaf = leafOf(certs().a);
      expect(leaf.fingerprintSha256).to.match(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      const now = Date.parse(leaf.notBefore) + DAY;
      const data = certificateStatusData(leaf, now, 30, 'secret');
      expect(data.fingerprintSha256).to.equal(leaf.fingerprintSha256.replace(/:/g, '').toLowerCase());
      expect(data).to.include({ state: 'valid', daysToExpiry: 90 });
      expect(validateEvent(certificateEvent(CLUSTER, now, data))).to.deep.include({ ok: true });
    });
  });

  describe('projectCsr', function () {
    it('keeps a pending CSR as neither approved nor issued, and none of its personal fields', function () {
      const csr = projectCsr(rawCsr('csr-pending'));
      expect(csr).to.deep.equal({
        uid: 'uid-csr-pending',
        signerName: 'kubernetes.io/kube-apiserver-client-kubelet',
        approved: false,
        denied: false,
        failed: false,
        certificates: [],
        error: '',
      });
      const json = JSON.stringify(csr);
      for (const personal of ['alice', 'system:node', 'system:nodes', 'f00dfeed', 'CERTIFICATE REQUEST', 'X509SHA256', 'bob']) {
        expect(json).not.to.contain(personal);
      }
    });

    it('reads the issued chain, leaf first, of an approved CSR', function () {
      const csr = projectCsr(rawCsr('csr-issued', { conditions: [{ type: 'Approved', status: 'True' }], certificate: certs().a + certs().ca }));
      expect(csr).to.include({ approved: true, denied: false, failed: false, error: '' });
      expect(csr?.certificates.map((c) => c.fingerprintSha256)).to.deep.equal([leafOf(certs().a).fingerprintSha256, leafOf(certs().ca).fingerprintSha256]);
    });

    it('reads Denied and Failed conditions; a condition with status False does not count, one without status does', function () {
      expect(projectCsr(rawCsr('d', { conditions: [{ type: 'Denied', status: 'True' }] }))).to.include({ approved: false, denied: true });
      expect(projectCsr(rawCsr('f', { conditions: [{ type: 'Approved', status: 'True' }, { type: 'Failed', status: 'False' }] }))).to.include({ approved: true, failed: false });
      expect(projectCsr(rawCsr('old', { conditions: [{ type: 'Approved' }] }))).to.include({ approved: true });
    });

    it('reports an unreadable status.certificate as an error, and an object without uid as malformed', function () {
      const csr = projectCsr(rawCsr('bad', { conditions: [{ type: 'Approved', status: 'True' }], certificate: '-----BEGIN CERTIFICATE-----\nnot base64 der\n-----END CERTIFICATE-----\n' }));
      expect(csr?.certificates).to.deep.equal([]);
      expect(csr?.error).to.match(/^status\.certificate/);
      expect(projectCsr({ metadata: { name: 'x' } })).to.equal(undefined);
    });

    it('says revoked for an issued CSR that later failed, and nothing for one never issued', function () {
      const leaf = leafOf(certs().a);
      const now = Date.parse(leaf.notBefore) + DAY;
      const issued = projectCsr(rawCsr('i', { conditions: [{ type: 'Approved', status: 'True' }], certificate: certs().a }));
      const failed = projectCsr(rawCsr('f', { conditions: [{ type: 'Approved', status: 'True' }, { type: 'Failed', status: 'True' }], certificate: certs().a }));
      const denied = projectCsr(rawCsr('d', { conditions: [{ type: 'Denied', status: 'True' }] }));
      if (issued === undefined || failed === undefined || denied === undefined) throw new Error('projection failed');
      expect(csrStatusData(issued, now, 30)).to.include({ state: 'valid', source: 'csr' });
      expect(csrStatusData(failed, now, 30)).to.include({ state: 'revoked', source: 'csr' });
      expect(csrStatusData(denied, now, 30)).to.equal(undefined);
    });
  });

  describe('kmsStatusOf', function () {
    it('reads a server without KMS (no kms line) as zero providers, healthy', function () {
      expect(kmsStatusOf(readyz())).to.deep.equal({ providers: 0, healthyProviders: 0, healthy: true });
      // Metrics do not invent a provider the health checks do not have.
      expect(kmsStatusOf(readyz(), METRICS)).to.deep.equal({ providers: 0, healthyProviders: 0, healthy: true });
    });

    it('reads a passing kms-providers check, with providers and the newest key from the metrics', function () {
      expect(kmsStatusOf(readyz('[+]kms-providers ok'))).to.deep.equal({ providers: 1, healthyProviders: 1, healthy: true });
      expect(kmsStatusOf(readyz('[+]kms-providers ok'), METRICS)).to.deep.equal({
        providers: 2,
        healthyProviders: 2,
        healthy: true,
        keyIdHash: KEY_NEW.slice('sha256:'.length),
      });
    });

    it('reads a failing kms-providers check as no healthy provider (the aggregate does not say which)', function () {
      expect(kmsStatusOf(readyz('[-]kms-providers failed: reason withheld'), METRICS)).to.deep.include({ providers: 2, healthyProviders: 0, healthy: false });
    });

    it('reads the per-provider lines of older servers', function () {
      const text = readyz('[+]kms-provider-0 ok', '[-]kms-provider-1 failed: reason withheld', '[+]kms-provider-2 ok');
      expect(kmsStatusOf(text)).to.deep.equal({ providers: 3, healthyProviders: 2, healthy: false });
      expect(kmsStatusOf(readyz('[+]kms-provider-0 ok', '[+]kms-provider-1 ok'))).to.deep.equal({ providers: 2, healthyProviders: 2, healthy: true });
    });

    it('takes a bare hex key_id_hash, skips hashes that are not hex, and ignores samples of other metrics', function () {
      const hex = 'a'.repeat(64);
      const metrics = [sample(hex, 'kms', 'to_storage', '100'), sample('sha256:not-hex', 'kms', 'to_storage', '200'), sample('plain-key-name', 'kms', 'to_storage', '300')].join('\n');
      expect(kmsStatusOf(readyz('[+]kms-providers ok'), metrics)).to.deep.equal({ providers: 1, healthyProviders: 1, healthy: true, keyIdHash: hex });
      const only = METRICS.split('\n').filter((l) => l.includes('status_last')).join('\n');
      expect(kmsStatusOf(readyz('[+]kms-providers ok'), only)).not.to.have.property('keyIdHash');
    });

    it('makes schema-valid KmsStatus events whose id changes with the data', function () {
      const at = Date.parse('2026-03-01T12:00:00.000Z');
      const ok = kmsEvent(CLUSTER, at, kmsStatusOf(readyz('[+]kms-providers ok'), METRICS));
      const failing = kmsEvent(CLUSTER, at, kmsStatusOf(readyz('[-]kms-providers failed: reason withheld'), METRICS));
      const none = kmsEvent(CLUSTER, at, kmsStatusOf(readyz()));
      for (const e of [ok, failing, none]) expect(validateEvent(e)).to.deep.include({ ok: true });
      expect(new Set([ok.id, failing.id, none.id]).size).to.equal(3);
      expect(kmsEvent(CLUSTER, at + 3_600_000, kmsStatusOf(readyz('[+]kms-providers ok'), METRICS)).id).to.equal(ok.id);
    });
  });

  describe('SecurityCollector', function () {
    beforeEach(function () {
    });

    it('reports each TLS Secret leaf and issued CSR once, and KMS, with no name, namespace, subject or serial', async function () {
      const a = leafOf(certs().a);
      const t = harness(spec(), noonAfter(Date.parse(a.notBefore)));
      t.api.objects.set(SECRETS_KS, [tlsSecret('kube-system', 'apiserver-tls', certs().a + certs().ca)]);
      t.api.objects.set(SECRETS_DCP, [tlsSecret('dcp-system', 'webhook-tls', certs().b), tlsSecret('dcp-system', 'same-cert-tls', certs().b)]);
      t.api.objects.set(SECRETS_APPS, [tlsSecret('apps', 'not-watched', certs().ca)]);
      t.api.objects.set(CSR_PATH, [
        rawCsr('csr-issued', { conditions: [{ type: 'Approved', status: 'True' }], certificate: certs().ca }),
        rawCsr('csr-pending'),
      ]);
      t.start();
      await t.step(1000);
      const fps = t.certs().map((c) => `${c.fingerprintSha256}:${c.state}:${c.source ?? ''}`);
      const hex = (pem: string): string => leafOf(pem).fingerprintSha256.replace(/:/g, '').toLowerCase();
      expect(fps).to.have.members([`${hex(certs().a)}:valid:secret`, `${hex(certs().b)}:valid:secret`, `${hex(certs().ca)}:valid:csr`]);
      expect(t.kms()).to.deep.equal([{ providers: 0, healthyProviders: 0, healthy: true }]);
      const json = JSON.stringify(t.emitted);
      for (const secret of ['apiserver-tls', 'webhook-tls', 'kube-system', 'dcp-system', 'alice', 'csr-issued', 'system:node', a.serialNumber]) {
        expect(json).not.to.contain(secret);
      }
      expect(t.api.requests).not.to.include(SECRETS_APPS);
      // The next checks the same day change nothing.
      await t.step(300_000);
      await t.step(300_000);
      expect(t.emitted).to.have.length(4);
      await t.stop();
      expect(t.clock.pending).to.equal(0);
      expect(t.api.watches).to.have.length(0);
    });

    it('reports a renewal seen while running, then the new certificate\'s state; a new Secret is not a renewal', async function () {
      const t = harness(spec(), noonAfter(Date.parse(leafOf(certs().a).notBefore)));
      t.api.objects.set(SECRETS_KS, [tlsSecret('kube-system', 'apiserver-tls', certs().a)]);
      t.start();
      await t.step(1000);
      expect(t.certs().map((c) => c.state)).to.deep.equal(['valid']);
      const [watch] = t.api.open(SECRETS_KS);
      watch?.push('MODIFIED', tlsSecret('kube-system', 'apiserver-tls', certs().b, '11'));
      await t.step(1000);
      const b = leafOf(certs().b).fingerprintSha256.replace(/:/g, '').toLowerCase();
      expect(t.certs().slice(1).map((c) => `${c.fingerprintSha256}:${c.state}`)).to.deep.equal([`${b}:renewed`, `${b}:valid`]);
      // An annotation-only change is no renewal; a Secret added later is reported as it is.
      watch?.push('MODIFIED', tlsSecret('kube-system', 'apiserver-tls', certs().b, '12'));
      watch?.push('ADDED', tlsSecret('kube-system', 'other-tls', certs().a, '13'));
      await t.step(1000);
      await t.step(300_000);
      expect(t.certs().slice(3).map((c) => c.state)).to.deep.equal(['valid']);
      await t.stop();
    });

    it('moves a certificate from valid to expiring to expired as the clock passes the thresholds, and repeats a state once a day', async function () {
      const a = leafOf(certs().a);
      const notAfter = Date.parse(a.notAfter);
      // Start just before the 30-day warning window opens.
      const t = harness(spec({ expiryWarningDays: 30 }), notAfter - 30 * DAY - 60_000);
      t.api.objects.set(SECRETS_KS, [tlsSecret('kube-system', 'apiserver-tls', certs().a)]);
      t.start();
      await t.step(1000);
      expect(t.certs().map((c) => c.state)).to.deep.equal(['valid']);
      await t.step(300_000);
      expect(t.certs().map((c) => c.state)).to.deep.equal(['valid', 'expiring']);
      // Within its UTC day, nothing more; the next day, the same state again (a new id).
      const midnight = Math.ceil(t.clock.now() / DAY) * DAY;
      while (t.clock.now() + 300_000 < midnight) await t.step(300_000);
      expect(t.certs()).to.have.length(2);
      await t.step(300_000);
      expect(t.certs().map((c) => c.state)).to.deep.equal(['valid', 'expiring', 'expiring']);
      expect(new Set(t.emitted.filter((e) => e.name === 'CertificateStatus').map((e) => e.id)).size).to.equal(3);
      await t.stop();

      const late = harness(spec(), notAfter + 1000);
      late.api.objects.set(SECRETS_KS, [tlsSecret('kube-system', 'apiserver-tls', certs().a)]);
      late.start();
      await late.step(1000);
      expect(late.certs()).to.deep.include.members([{ ...certificateStatusData(a, late.clock.now(), 30, 'secret'), state: 'expired', daysToExpiry: -1 }]);
      await late.stop();
    });

    it('counts each TLS Secret and CSR whose certificate cannot be read, warns on the object, names it nowhere else, and goes on', async function () {
      const t = harness(spec(), noonAfter(Date.parse(leafOf(certs().a).notBefore)));
      const badPem = '-----BEGIN CERTIFICATE-----\nMIIBroken\n-----END CERTIFICATE-----\n';
      // UIDs that do not spell the names, so the check below finds a name wherever it went.
      const opaque = (obj: unknown, i: number): unknown => {
        (obj as { metadata: { uid: string } }).metadata.uid = `0000000${i}-0000-4000-8000-000000000000`;
        return obj;
      };
      t.api.objects.set(SECRETS_KS, [
        opaque(tlsSecret('kube-system', 'garbage-tls', 'not a certificate at all'), 1),
        opaque(tlsSecret('kube-system', 'badpem-tls', badPem), 2),
        opaque(tlsSecret('kube-system', 'empty-tls', ''), 3),
        opaque(tlsSecret('kube-system', 'no-crt', undefined), 4),
        tlsSecret('kube-system', 'ok-tls', certs().a),
      ]);
      t.api.objects.set(CSR_PATH, [opaque(rawCsr('garbled-csr', { conditions: [{ type: 'Approved', status: 'True' }], certificate: badPem }), 5)]);
      t.start();
      await t.step(1000);
      expect(t.certs()).to.have.length(1);
      const metric = await t.registry.getSingleMetric('dcp_objects_skipped_total')?.get();
      const count = (resource: string): number => metric?.values.find((v) => v.labels['resource'] === resource)?.value ?? 0;
      expect(count('secrets')).to.equal(4);
      expect(count('certificatesigningrequests')).to.equal(1);
      expect(t.recorded.map((e) => [e.type, e.reason, e.regarding.kind, e.regarding.namespace, e.regarding.name])).to.have.deep.members([
        ['Warning', 'UnreadableCertificate', 'Secret', 'kube-system', 'garbage-tls'],
        ['Warning', 'UnreadableCertificate', 'Secret', 'kube-system', 'badpem-tls'],
        ['Warning', 'UnreadableCertificate', 'Secret', 'kube-system', 'empty-tls'],
        ['Warning', 'UnreadableCertificate', 'Secret', 'kube-system', 'no-crt'],
        ['Warning', 'UnreadableCertificate', 'CertificateSigningRequest', undefined, 'garbled-csr'],
      ]);
      // The names stay in the cluster: not in events, metrics or log lines.
      const out = JSON.stringify(t.emitted) + (await t.registry.metrics()) + JSON.stringify(t.warnings);
      for (const name of ['garbage-tls', 'badpem-tls', 'empty-tls', 'no-crt', 'garbled-csr']) expect(out).to.not.contain(name);
      expect(t.warnings.filter((w) => w.meta?.['reason'] === 'UnreadableCertificate')).to.have.length(5);
      // The next check re-evaluates every certificate: nothing new to count or record.
      await t.step(300_000);
      expect(t.recorded).to.have.length(5);
      await t.stop();
    });

    it('applies a new expiryWarningDays at once and follows a change of namespaces', async function () {
      const a = leafOf(certs().a);
      const t = harness(spec({ certificateNamespaces: ['kube-system'], expiryWarningDays: 30 }), Date.parse(a.notAfter) - 45 * DAY);
      t.api.objects.set(SECRETS_KS, [tlsSecret('kube-system', 'apiserver-tls', certs().a)]);
      t.api.objects.set(SECRETS_APPS, [tlsSecret('apps', 'ingress-tls', certs().b)]);
      t.start();
      await t.step(1000);
      expect(t.certs().map((c) => c.state)).to.deep.equal(['valid']);
      t.collector.reconfigure(spec({ certificateNamespaces: ['kube-system'], expiryWarningDays: 60 }));
      await t.step(0);
      expect(t.certs().map((c) => c.state)).to.deep.equal(['valid', 'expiring']);
      t.collector.reconfigure(spec({ certificateNamespaces: ['apps'], expiryWarningDays: 60 }));
      await t.step(1000);
      expect(t.certs().slice(2).map((c) => c.fingerprintSha256)).to.deep.equal([leafOf(certs().b).fingerprintSha256.replace(/:/g, '').toLowerCase()]);
      expect(t.api.open(SECRETS_KS)).to.have.length(0);
      expect(t.api.open(SECRETS_APPS)).to.have.length(1);
      await t.stop();
    });

    it('stops its watches and timer when disabled and reports what exists again when enabled', async function () {
      const t = harness(spec(), noonAfter(Date.parse(leafOf(certs().a).notBefore)));
      t.api.objects.set(SECRETS_KS, [tlsSecret('kube-system', 'apiserver-tls', certs().a)]);
      t.start();
      await t.step(1000);
      expect(t.emitted).to.have.length(2);
      t.collector.reconfigure(spec({ enabled: false }));
      await settle();
      expect(t.api.watches).to.have.length(0);
      expect(t.clock.pending).to.equal(0);
      await t.step(600_000);
      expect(t.emitted).to.have.length(2);
      t.collector.reconfigure(spec());
      await t.step(1000);
      expect(t.api.open(SECRETS_KS)).to.have.length(1);
      expect(t.api.open(CSR_PATH)).to.have.length(1);
      // The same facts the same day: the same ids again, which the store deduplicates.
      expect(t.emitted).to.have.length(4);
      expect(t.emitted[2]?.id).to.be.oneOf([t.emitted[0]?.id, t.emitted[1]?.id]);
      await t.stop();
      expect(t.clock.pending).to.equal(0);
    });

    it('reports KMS at start and on change; a failed poll is logged and retried at the next check', async function () {
      const t = harness(spec(), noonAfter(Date.parse(leafOf(certs().a).notBefore)));
      t.api.readyz = { statusCode: 200, body: readyz('[+]kms-providers ok') };
      t.start();
      await t.step(1000);
      expect(t.kms()).to.deep.equal([{ providers: 2, healthyProviders: 2, healthy: true, keyIdHash: KEY_NEW.slice(7) }]);
      t.api.failReadyz = true;
      await t.step(300_000);
      expect(t.warnings.map((w) => w.message)).to.include('cannot read KMS health from the API server; retrying at the next check');
      expect(t.kms()).to.have.length(1);
      t.api.failReadyz = false;
      // Not ready answers 500 with the lines that say why.
      t.api.readyz = { statusCode: 500, body: readyz('[-]kms-providers failed: reason withheld') };
      await t.step(300_000);
      expect(t.kms().slice(1)).to.deep.equal([{ providers: 2, healthyProviders: 0, healthy: false, keyIdHash: KEY_NEW.slice(7) }]);
      await t.stop();
    });

    it('retries events the store did not take', async function () {
      const t = harness(spec(), noonAfter(Date.parse(leafOf(certs().a).notBefore)));
      t.api.objects.set(SECRETS_KS, [tlsSecret('kube-system', 'apiserver-tls', certs().a)]);
      t.failNextEmits(1);
      t.start();
      await t.step(1000);
      expect(t.emitted).to.have.length(0);
      await t.step(60_000);
      expect(t.emitted).to.have.length(2);
      await t.stop();
    });
  });

  describe('KubeClient.text', function () {
    it('hands over the body whatever the status, as /readyz?verbose needs when a check fails', async function () {
      const server = http.createServer((req, res) => {
        const failing = req.url === '/readyz?verbose=true';
        res.writeHead(failing ? 500 : 200, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(failing ? readyz('[-]kms-providers failed: reason withheld') : 'ok');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
        users: [{ name: 'u' }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      const client = new KubeClient(kc);
      try {
        const failing = await client.text({ path: '/readyz', query: { verbose: true } });
        expect(failing.statusCode).to.equal(500);
        expect(kmsStatusOf(failing.body)).to.deep.equal({ providers: 1, healthyProviders: 0, healthy: false });
        expect(await client.text({ path: '/readyz/kms-providers' })).to.deep.equal({ statusCode: 200, body: 'ok' });
      } finally {
        client.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  });

  describe('securitySnapshot', function () {
    it('lists the configured namespaces\' TLS Secrets and CSRs once and reads KMS', async function () {
      const api = new FakeApi();
      api.objects.set(SECRETS_KS, [tlsSecret('kube-system', 'apiserver-tls', certs().a)]);
      api.objects.set(SECRETS_APPS, [tlsSecret('apps', 'ingress-tls', certs().b)]);
      api.objects.set(CSR_PATH, [rawCsr('c', { conditions: [{ type: 'Approved', status: 'True' }, { type: 'Failed', status: 'True' }], certificate: certs().ca })]);
      const now = Date.parse(leafOf(certs().a).notBefore) + DAY;
      const events = await securitySnapshot({ transport: api, kubeSystem: KUBE_SYSTEM, spec: spec(), nowMs: now });
      expect(events.map((e) => `${e.name}:${String(e.data['state'] ?? '')}`)).to.have.members(['CertificateStatus:valid', 'CertificateStatus:revoked', 'KmsStatus:']);
      for (const e of events) expect(validateEvent(e)).to.deep.include({ ok: true });
      expect(api.requests).not.to.include(SECRETS_APPS);
    });
  });
});
