// The exporter's two sources on real sockets and files: the HTTPS webhook (401/403/413/400, counted) and the log tailer.
import { expect } from 'chai';
import { appendFile, mkdtemp, rename, rm, truncate, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { AuditRecord } from '../../src/audit/audit-event.js';
import { auditMetrics } from '../../src/audit/metrics.js';
import { WebhookReceiver } from '../../src/audit/receiver.js';
import { LogTailer } from '../../src/audit/tailer.js';
import { selfSignedCertificate } from '../../src/audit/x509.js';
import { silentLog } from '../../src/observability/log.js';
import { auditEvent } from './audit-fixtures.js';

const metric = async (registry: Registry, name: string, labels: Record<string, string>): Promise<number> =>
  (await registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;

describe('audit export: the webhook receiver', () => {
  const { certPem, keyPem } = selfSignedCertificate({ commonName: 'dcp-audit-exporter', dnsNames: ['localhost'], notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000) });
  let receiver: WebhookReceiver;
  let port: number;
  let registry: Registry;
  const batches: AuditRecord[][] = [];
  let diskFull = false;

  before(async () => {
    registry = new Registry();
    receiver = new WebhookReceiver({
      cert: certPem,
      key: keyPem,
      token: () => 's3cret',
      maxBodyBytes: 4096,
      onBatch: (rs) => {
        if (diskFull) return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
        batches.push(rs);
        return Promise.resolve();
      },
      metrics: auditMetrics(registry),
      log: silentLog,
    });
    port = (await receiver.listen('127.0.0.1:0')).port;
  });
  after(() => receiver.close());

  function post(body: string, token?: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port, method: 'POST', path: '/audit', ca: certPem, servername: 'localhost', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
  const list = (ids: string[]): string => JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: ids.map((id) => auditEvent(id)) });

  it('takes an EventList over TLS from a client with the token', async () => {
    expect(await post(list(['w1', 'w2']), 's3cret')).to.equal(200);
    expect(batches.at(-1)?.map((r) => r.auditID)).to.deep.equal(['w1', 'w2']);
  });

  it('refuses and counts: no token 401, a wrong token 403, too large 413, malformed 400; nothing reaches the exporter', async () => {
    const before = batches.length;
    expect(await post(list(['x']))).to.equal(401);
    expect(await post(list(['x']), 'guess')).to.equal(403);
    expect(await post(list(Array.from({ length: 20 }, (_, i) => `big${i}`)), 's3cret')).to.equal(413);
    expect(await post('{"kind":"EventList","items":[', 's3cret')).to.equal(400);
    expect(await post('{"kind":"EventList","items":[{"no":"id"}]}', 's3cret')).to.equal(400);
    expect(batches.length).to.equal(before);
    for (const [reason, n] of [['unauthenticated', 1], ['forbidden', 1], ['too_large', 1], ['malformed', 2]] as const) {
      expect(await metric(registry, 'dcp_audit_requests_refused_total', { reason }), reason).to.equal(n);
    }
    // still serving
    expect(await post(list(['after']), 's3cret')).to.equal(200);
  });

  it('a batch that can be neither written nor buffered (a full disk) gets 503, so the API server retries it', async () => {
    diskFull = true;
    try {
      expect(await post(list(['full']), 's3cret')).to.equal(503);
    } finally {
      diskFull = false;
    }
    expect(await post(list(['full']), 's3cret')).to.equal(200);
    expect(batches.at(-1)?.map((r) => r.auditID)).to.deep.equal(['full']);
  });
});

describe('audit export: the audit log tailer', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcp-audit-tail-'));
  });
  // Every tailer a test drove by poll() holds its file open until closed.
  const opened: LogTailer[] = [];
  afterEach(async () => {
    for (const t of opened.splice(0)) await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  function tailer(seen: string[], fail?: () => boolean): LogTailer {
    const t = new LogTailer({
      path: join(dir, 'audit.log'),
      stateFile: join(dir, 'position'),
      onRecords: (rs) => {
        if (fail?.()) return Promise.reject(new Error('buffer refused'));
        seen.push(...rs.map((r) => r.auditID));
        return Promise.resolve();
      },
      metrics: auditMetrics(new Registry()),
      log: silentLog,
    });
    opened.push(t);
    return t;
  }
  const lines = (ids: string[]): string => ids.map((id) => `${JSON.stringify(auditEvent(id))}\n`).join('');

  it('reads whole lines only, and a partial line once it is complete', async () => {
    const seen: string[] = [];
    const t = tailer(seen);
    const full = lines(['a', 'b']);
    await writeFile(join(dir, 'audit.log'), full.slice(0, full.length - 10));
    await t.poll();
    expect(seen).to.deep.equal(['a']);
    await appendFile(join(dir, 'audit.log'), full.slice(full.length - 10));
    await t.poll();
    expect(seen).to.deep.equal(['a', 'b']);
  });

  it('follows rotation (finishing the old file) and truncation', async () => {
    const seen: string[] = [];
    const t = tailer(seen);
    await writeFile(join(dir, 'audit.log'), lines(['r1']));
    await t.poll();
    await appendFile(join(dir, 'audit.log'), lines(['r2']));
    await rename(join(dir, 'audit.log'), join(dir, 'audit-2026-12-02T10-00-00.000.log'));
    await writeFile(join(dir, 'audit.log'), lines(['r3']));
    await t.poll();
    expect(seen).to.deep.equal(['r1', 'r2', 'r3']);
    await truncate(join(dir, 'audit.log'), 0);
    await t.poll();
    await appendFile(join(dir, 'audit.log'), lines(['r4']));
    await t.poll();
    expect(seen).to.deep.equal(['r1', 'r2', 'r3', 'r4']);
  });

  it('a restart resumes at the persisted offset: nothing lost, nothing repeated, also across a rotation while down', async () => {
    const seen: string[] = [];
    await writeFile(join(dir, 'audit.log'), lines(['s1', 's2']));
    await tailer(seen).poll();
    await appendFile(join(dir, 'audit.log'), lines(['s3']));
    await rename(join(dir, 'audit.log'), join(dir, 'audit-1.log'));
    await writeFile(join(dir, 'audit.log'), lines(['s4']));
    await tailer(seen).poll(); // a new process
    expect(seen).to.deep.equal(['s1', 's2', 's3', 's4']);
  });

  it('lines whose events were not accepted are read again', async () => {
    const seen: string[] = [];
    let failing = true;
    const t = tailer(seen, () => failing);
    await writeFile(join(dir, 'audit.log'), lines(['f1']));
    await t.poll().catch(() => undefined);
    failing = false;
    await tailer(seen).poll();
    expect(seen).to.deep.equal(['f1']);
  });
});
