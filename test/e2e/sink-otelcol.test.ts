// The otlp sink hands off to a real OpenTelemetry Collector (bin/otelcol, pinned in hack/otelcol):
// an edge collector (OTLP/HTTP over TLS with bearer-token auth) forwards to a gateway collector that
// writes what it gets with the file exporter. While the gateway is down the edge answers 503; dcp
// keeps the events in its store, also across its own restart, and delivers each one intact once
// the gateway is up. docs/fleet.md's example configuration passes `otelcol validate`.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { selfSignedCertificate } from '../../hack/certs.js';
import type { DcpEvent } from '../../src/api/event.js';
import { CursorStore } from '../../src/sinks/cursor.js';
import { EventStore } from '../../src/store/event-store.js';
import { cluster, ROOT, run, type TestCluster } from './harness.js';
import { Collector, fileExporterRequests, freePort, OTELCOL, QUIET_TELEMETRY } from './otelcol.js';
import { killAllOperators, OperatorProcess, waitFor } from './operator-process.js';
import { applyOk, policyYaml, readyAtGeneration, REGION } from './pipeline-helpers.js';

const TOKEN = 'fleet-token-0123456789abcdef';
const SINK = 'fleet';

interface LogRecord {
  timeUnixNano: string;
  body: { stringValue: string };
  attributes: { key: string; value: { stringValue?: string } }[];
}
interface LogsRequest {
  resourceLogs: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeLogs: { logRecords: LogRecord[] }[] }[];
}

const records = (requests: unknown[]): LogRecord[] =>
  (requests as LogsRequest[]).flatMap((r) => r.resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords)));
const attribute = (r: LogRecord, key: string): string | undefined => r.attributes.find((a) => a.key === key)?.value.stringValue;

/** POST to the edge collector over TLS: the status it answers. */
function post(port: number, ca: string, body: string, token?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/v1/logs', method: 'POST', ca, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Stored raw events up to the sink's persisted cursor: what dcp says it delivered. */
async function deliveredFromStore(dataDir: string): Promise<DcpEvent[]> {
  const cursor = (await new CursorStore(dataDir).load(SINK)).raw;
  if (!cursor) return [];
  const store = await EventStore.open({ dataDir, readOnly: true });
  try {
    const { records: all } = await store.readAfter('raw', undefined, 1_000_000);
    return all
      .filter((r) => r.position.partition < cursor.partition || (r.position.partition === cursor.partition && r.position.offset <= cursor.offset))
      .map((r) => r.event);
  } finally {
    await store.close();
  }
}

describe('otlp sink → a real OpenTelemetry Collector', function () {
  this.timeout(240_000);
  let c: TestCluster;
  let dir: string;
  let edge: Collector;
  let gateway: Collector;
  let ca: string;
  let op: OperatorProcess | undefined;
  const output = (): string => join(dir, 'gateway-logs.jsonl');

  before(async function () {
    c = cluster();
    killAllOperators();
    await c.resetPolicy();
    dir = mkdtempSync(join(tmpdir(), 'dcp-e2e-otelcol-'));
    const now = Date.now();
    const tls = selfSignedCertificate({ commonName: 'otelcol.local', ipv4: ['127.0.0.1'], dnsNames: ['localhost'], notBefore: new Date(now - 3_600_000), notAfter: new Date(now + 86_400_000) });
    ca = tls.certPem;
    writeFileSync(join(dir, 'tls.crt'), tls.certPem);
    writeFileSync(join(dir, 'tls.key'), tls.keyPem, { mode: 0o600 });
    const [edgePort, gatewayPort] = [await freePort(), await freePort()];
    edge = new Collector(dir, 'edge', {
      extensions: { bearertokenauth: { token: '${env:FLEET_TOKEN}' } },
      receivers: { otlp: { protocols: { http: { endpoint: `127.0.0.1:${edgePort}`, tls: { cert_file: join(dir, 'tls.crt'), key_file: join(dir, 'tls.key') }, auth: { authenticator: 'bearertokenauth' } } } } },
      // No queue, no retries: the gateway's refusal reaches the sender as 503 and dcp keeps the events.
      exporters: { otlphttp: { endpoint: `http://127.0.0.1:${gatewayPort}`, sending_queue: { enabled: false }, retry_on_failure: { enabled: false } } },
      service: { extensions: ['bearertokenauth'], ...QUIET_TELEMETRY, pipelines: { logs: { receivers: ['otlp'], exporters: ['otlphttp'] } } },
    }, edgePort);
    gateway = new Collector(dir, 'gateway', {
      receivers: { otlp: { protocols: { http: { endpoint: `127.0.0.1:${gatewayPort}` } } } },
      exporters: { file: { path: output(), format: 'json', flush_interval: '100ms' } },
      service: { ...QUIET_TELEMETRY, pipelines: { logs: { receivers: ['otlp'], exporters: ['file'] } } },
    }, gatewayPort);
    await edge.start({ FLEET_TOKEN: TOKEN });
    await c.kubectlOk(['-n', 'dcp-system', 'create', 'secret', 'generic', 'fleet-token', `--from-literal=token=${TOKEN}`, '--dry-run=client', '-o', 'yaml'])
      .then((yaml) => c.kubectlOk(['apply', '-f', '-'], yaml));
    await c.createNodes([{ name: `otel-${c.runId}-a`, cpu: '4', instanceType: 'Standard_D4s_v5' }, { name: `otel-${c.runId}-b`, cpu: '8', instanceType: 'Standard_D8s_v5' }]);
  });

  after(async function () {
    await op?.stop();
    killAllOperators();
    await edge?.stop();
    await gateway?.stop();
    await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
    await c.kubectl(['-n', 'dcp-system', 'delete', 'secret', 'fleet-token', '--ignore-not-found']);
    await c.kubectl(['delete', 'node', `otel-${c.runId}-a`, `otel-${c.runId}-b`, '--ignore-not-found', '--wait=false']);
    op?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a request without the bearer token (401) and answers 503 while its next hop is down', async function () {
    const body = JSON.stringify({ resourceLogs: [{ resource: { attributes: [] }, scopeLogs: [{ scope: {}, logRecords: [{ body: { stringValue: 'probe' } }] }] }] });
    expect(await post(edge.port, ca, body)).to.equal(401);
    expect(await post(edge.port, ca, body, 'wrong-token')).to.equal(401);
    expect(await post(edge.port, ca, body, TOKEN)).to.equal(503);
  });

  it('keeps what the collector refuses, across a restart, and delivers every stored event intact', async function () {
    const env = { NODE_EXTRA_CA_CERTS: join(dir, 'tls.crt') };
    const sinks = [{ name: SINK, type: 'otlp', url: `https://127.0.0.1:${edge.port}`, region: REGION, secretRef: { name: 'fleet-token', key: 'token' } }];
    op = new OperatorProcess(c.kubeconfigPath, [], undefined, env);
    await op.started();
    await applyOk(c, policyYaml({ categories: { controlPlane: { intervalSeconds: 10 }, billing: { intervalSeconds: 10 } }, export: { sinks } }));
    await readyAtGeneration(c, 90_000);
    const dataDir = op.dataDir;
    // The edge answers 503 (the gateway is down): failures count up, nothing is delivered, the store keeps it all.
    await waitFor(async () => /dcp_sink_send_failures_total\{sink="fleet"\} [1-9]/.test(await op!.metrics()), 60_000, 'a refused batch', 500);
    expect(await deliveredFromStore(dataDir)).to.deep.equal([]);
    await op.stop();
    const storedBefore = await deliveredFromStoreAll(dataDir);
    expect(storedBefore.length, 'events stored while the collector refused').to.be.greaterThan(0);

    // The gateway comes up and dcp restarts on the same data directory (as a Pod on its claim).
    await gateway.start();
    op = new OperatorProcess(c.kubeconfigPath, [], dataDir, env);
    await op.started();
    await waitFor(async () => {
      const delivered = new Set((await deliveredFromStore(dataDir)).map((e) => e.id));
      return storedBefore.every((e) => delivered.has(e.id));
    }, 90_000, 'the events stored before the restart to be delivered', 500);
    await op.stop();
    await edge.stop();
    await gateway.stop();

    const delivered = await deliveredFromStore(dataDir);
    const got = records(fileExporterRequests(output()));
    const byId = new Map(got.map((r) => [attribute(r, 'dcp.id'), r]));
    expect(delivered.length).to.be.at.least(storedBefore.length);
    for (const e of delivered) {
      const r = byId.get(e.id);
      expect(r, `event ${e.id} (${e.category}/${e.name}) at the collector`).to.not.equal(undefined);
      if (!r) continue;
      expect(JSON.parse(r.body.stringValue), `body of ${e.id}`).to.deep.equal(e);
      expect([attribute(r, 'dcp.category'), attribute(r, 'dcp.name')]).to.deep.equal([e.category, e.name]);
      expect(r.timeUnixNano).to.equal((BigInt(Date.parse(e.time)) * 1_000_000n).toString());
    }
    const cats = new Set(delivered.map((e) => e.category));
    expect(cats.size, `categories delivered: ${[...cats].join(', ')}`).to.be.greaterThan(1);
  });

  it('validates the example collector configuration in docs/fleet.md (otelcol validate)', async function () {
    const doc = readFileSync(join(ROOT, 'docs/fleet.md'), 'utf8');
    const config = /```yaml\n# otelcol-gateway\.yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(config, 'a ```yaml block starting "# otelcol-gateway.yaml" in docs/fleet.md').to.be.a('string');
    const file = join(dir, 'fleet-gateway.yaml');
    writeFileSync(file, config ?? '');
    const r = await run(OTELCOL, ['validate', '--config', file], undefined, { ...process.env, FLEET_TOKEN: TOKEN, KAFKA_BROKERS: 'kafka-0.kafka:9092' });
    expect(r.stderr + r.stdout).to.not.match(/error/i);
    expect(r.code).to.equal(0);
  });
});

async function deliveredFromStoreAll(dataDir: string): Promise<DcpEvent[]> {
  const store = await EventStore.open({ dataDir, readOnly: true });
  try {
    return (await store.readAfter('raw', undefined, 1_000_000)).records.map((r) => r.event);
  } finally {
    await store.close();
  }
}
