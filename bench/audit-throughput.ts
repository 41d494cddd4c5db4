// Audit exporter benchmark: events/s through the HTTPS webhook to the file and azureBlob (Azurite) destinations,
// and how fast a buffered backlog drains once the destination is back.
// Usage: node dist/bench/audit-throughput.js [--batches 200] [--batch-size 100]   (about 30 s)
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { toRecord } from '../src/audit/audit-event.js';
import { AzureBlobDestination, FileDestination, type AuditDestination } from '../src/audit/destinations/index.js';
import { Exporter } from '../src/audit/exporter.js';
import { auditMetrics } from '../src/audit/metrics.js';
import { WebhookReceiver } from '../src/audit/receiver.js';
import { selfSignedCertificate } from '../src/audit/x509.js';
import { silentLog } from '../src/observability/log.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { values } = parseArgs({ options: { batches: { type: 'string', default: '200' }, 'batch-size': { type: 'string', default: '100' } } });
const BATCHES = Number(values.batches);
const SIZE = Number(values['batch-size']);
let seq = 0;

/** An audit event of typical size (~1 kB at level Metadata). */
function event(): Record<string, unknown> {
  const i = seq++;
  const now = new Date().toISOString();
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    stage: 'ResponseComplete',
    requestURI: `/api/v1/namespaces/team-${i % 20}/configmaps/settings-${i}?fieldManager=kubectl-client-side-apply`,
    verb: i % 3 === 0 ? 'create' : i % 3 === 1 ? 'update' : 'delete',
    user: { username: 'system:serviceaccount:ci:deployer', uid: 'b0c2a7e2-7a1e-4f1d-9b7e-0c5f6f2f9d11', groups: ['system:serviceaccounts', 'system:serviceaccounts:ci', 'system:authenticated'] },
    sourceIPs: ['10.244.1.17'],
    userAgent: 'kubectl/v1.34.4 (linux/amd64) kubernetes/abcdef0',
    objectRef: { resource: 'configmaps', namespace: `team-${i % 20}`, name: `settings-${i}`, apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: 201 },
    requestReceivedTimestamp: now,
    stageTimestamp: now,
    annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': 'RBAC: allowed by RoleBinding "deployer/ci"' },
  };
}

async function startAzurite(dir: string): Promise<{ port: number; stop: () => void }> {
  const child = spawn(join(ROOT, 'node_modules/.bin/azurite-blob'), ['--blobHost', '127.0.0.1', '--blobPort', '0', '--location', dir, '--skipApiVersionCheck', '--disableTelemetry', '--silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise<number>((res, rej) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) res(Number(m[1]));
    });
    child.once('exit', () => rej(new Error(`azurite exited: ${out}`)));
  });
  return { port, stop: () => child.kill('SIGTERM') };
}

async function run(name: string, destination: AuditDestination, bodies: string[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dcp-audit-bench-'));
  const { certPem, keyPem } = selfSignedCertificate({ commonName: 'bench', dnsNames: ['localhost'], notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000) });
  const metrics = auditMetrics(new Registry());
  const exporter = await Exporter.open({ config: { profile: 'kube-audit', destination: { type: 'file', path: dir }, intermediateRetentionHours: 48, bufferMaxBytes: 1 << 30 }, destination, stateDir: dir, metrics, log: silentLog });
  const receiver = new WebhookReceiver({ cert: certPem, key: keyPem, token: () => 't', maxBodyBytes: 64 << 20, onBatch: (r) => exporter.accept(r, 'webhook'), metrics, log: silentLog });
  const { port } = await receiver.listen('127.0.0.1:0');
  const agent = new https.Agent({ keepAlive: true, ca: certPem, servername: 'localhost' });
  const post = (body: string) =>
    new Promise<void>((res, rej) => {
      const req = https.request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent, headers: { authorization: 'Bearer t' } }, (r) => {
        r.resume();
        r.on('end', () => (r.statusCode === 200 ? res() : rej(new Error(`status ${r.statusCode}`))));
      });
      req.on('error', rej);
      req.end(body);
    });
  const started = performance.now();
  for (const b of bodies) await post(b); // the API server sends one batch at a time per webhook
  const seconds = (performance.now() - started) / 1000;
  const events = BATCHES * SIZE;
  console.log(`  ${name.padEnd(34)} ${events} events in ${seconds.toFixed(2)} s = ${Math.round(events / seconds)} events/s (${Math.round(bodies.reduce((n, b) => n + b.length, 0) / seconds / 1024 / 1024)} MiB/s)`);
  agent.destroy();
  await receiver.close();
  await exporter.close();
  await rm(dir, { recursive: true, force: true });
}

async function drain(name: string, destination: AuditDestination, records: ReturnType<typeof toRecord>[][]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dcp-audit-bench-'));
  let down = true;
  const gate: AuditDestination = { type: destination.type, write: (r) => (down ? Promise.reject(new Error('down')) : destination.write(r)), close: () => destination.close() };
  const exporter = await Exporter.open({ config: { profile: 'kube-audit', destination: { type: 'file', path: dir }, intermediateRetentionHours: 48, bufferMaxBytes: 1 << 30 }, destination: gate, stateDir: dir, metrics: auditMetrics(new Registry()), log: silentLog });
  let started = performance.now();
  for (const batch of records) await exporter.accept(batch, 'webhook');
  const buffered = (performance.now() - started) / 1000;
  const backlog = exporter.status().backlogBytes;
  down = false;
  started = performance.now();
  await exporter.drain();
  const seconds = (performance.now() - started) / 1000;
  const events = BATCHES * SIZE;
  console.log(`  ${name.padEnd(34)} buffered ${events} events (${(backlog / 1024 / 1024).toFixed(1)} MiB) in ${buffered.toFixed(2)} s; drained in ${seconds.toFixed(2)} s = ${Math.round(events / seconds)} events/s`);
  await exporter.close();
  await rm(dir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const batch = () => Array.from({ length: SIZE }, event);
  const bodies = (): string[] => Array.from({ length: BATCHES }, () => JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: batch() }));
  const out = await mkdtemp(join(tmpdir(), 'dcp-audit-bench-out-'));
  const azuriteDir = await mkdtemp(join(tmpdir(), 'dcp-audit-bench-azurite-'));
  const azurite = await startAzurite(azuriteDir);
  const credential = () => Promise.resolve(`DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:${azurite.port}/devstoreaccount1;`);
  try {
    console.log(`audit exporter: ${BATCHES} webhook batches of ${SIZE} events (~1 kB each), one at a time`);
    await run('webhook → file (fsync per batch)', new FileDestination(join(out, 'file')), bodies());
    await run('webhook → azureBlob (Azurite)', new AzureBlobDestination({ profile: 'kube-audit', resourceId: '/subscriptions/bench/x', credential }), bodies());
    const records = () => Array.from({ length: BATCHES }, () => batch().map(toRecord));
    await drain('outage → file', new FileDestination(join(out, 'drain')), records());
    await drain('outage → azureBlob (Azurite)', new AzureBlobDestination({ profile: 'kube-audit', resourceId: '/subscriptions/bench/drain', credential }), records());
  } finally {
    azurite.stop();
    await rm(out, { recursive: true, force: true });
    await new Promise((r) => setTimeout(r, 500));
    await rm(azuriteDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
