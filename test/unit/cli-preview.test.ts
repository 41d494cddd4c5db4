// `dcp preview` without a cluster: events built like the collectors, admitted and routed like the operator, bodies made by the sinks.
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { PolicySpec, Sink } from '../../src/api/policy.js';
import { parsePolicy } from '../../src/api/validation.js';
import { admit, denySetOf, snapshotEvents } from '../../src/cli/preview/admit.js';
import { displayBody, renderPreviewJson, renderPreviewTable } from '../../src/cli/preview/render.js';
import { buildReport } from '../../src/cli/preview/report.js';
import { planSinks, renderSinkBody } from '../../src/cli/preview/sinks.js';
import type { ClusterSnapshot, DeviceKeyInfo } from '../../src/cli/preview/snapshot.js';
import { deviceIdOf } from '../../src/collectors/host-os.js';
import { InventoryCounter } from '../../src/collectors/inventory.js';
import { projectNode, type NodeProjection } from '../../src/collectors/projections.js';
import type { DcpEvent } from '../../src/api/event.js';
import { EXAMPLE_CLUSTER, exampleEvent } from '../../src/pipeline/examples.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import { batchKey } from '../../src/sinks/http-sink.js';
import { toOtlpLogs } from '../../src/sinks/otlp.js';
import { aggregateDay } from '../../src/store/aggregate.js';

const NOW = Date.parse('2026-11-25T20:03:04.000Z');
const KEY = Buffer.alloc(32, 7);

function node(name: string, systemUUID: string, osImage = 'Ubuntu 24.04.2 LTS'): NodeProjection {
  const p = projectNode({
    metadata: { name, uid: `uid-${name}`, labels: { 'kubernetes.io/hostname': `${name}.corp.example`, 'node.kubernetes.io/instance-type': 'Standard_D4s_v5' } },
    status: {
      capacity: { cpu: '4' },
      addresses: [{ type: 'Hostname', address: `${name}.corp.example` }],
      conditions: [{ type: 'Ready', status: 'True' }],
      nodeInfo: { osImage, kernelVersion: '6.8.0-1021-azure', operatingSystem: 'linux', architecture: 'amd64', containerRuntimeVersion: 'containerd://1.7.27', kubeletVersion: 'v1.34.4', systemUUID },
    },
  });
  if (!p) throw new Error('projectNode refused the fixture');
  return p;
}

const NODES: [string, NodeProjection][] = [
  ['aks-pool-0', node('aks-pool-0', '4c4c4544-0042-3510-8052-b4c04f380001')],
  ['aks-pool-1', node('aks-pool-1', '4c4c4544-0042-3510-8052-b4c04f380002')],
];
/** Every identifying string of the fixture Nodes: none may appear in any output. */
const SECRETS = ['aks-pool-0', 'aks-pool-1', 'aks-pool-0.corp.example', '4c4c4544-0042-3510-8052-b4c04f380001', '4c4c4544-0042-3510-8052-b4c04f380002', 'leaky-7'];

function snapshot(nodes: [string, NodeProjection][] = NODES, deviceKey: DeviceKeyInfo = { source: 'secret', secret: 'dcp-system/dcp-device-key', key: KEY }): ClusterSnapshot {
  const counter = new InventoryCounter();
  for (const [name, n] of nodes) counter.onNode('added', name, n, undefined);
  counter.onPod('added', 'default/a', { nodeName: 'aks-pool-0', phase: 'Running' }, undefined);
  counter.onPod('added', 'default/b', { nodeName: '', phase: 'Pending' }, undefined);
  return { kubeSystem: { uid: EXAMPLE_CLUSTER.id, creationTimestamp: '2026-01-05T08:00:00Z' }, nodes: new Map(nodes), inventory: counter.snapshot(), deviceKey };
}

function spec(extra: Record<string, unknown> = {}): PolicySpec {
  return parsePolicy({ metadata: { name: 'default' }, spec: { subscriptionId: EXAMPLE_CLUSTER.subscriptionId, region: 'eastus', ...extra } }).spec;
}

const SINKS: Sink[] = [
  { name: 'regional', type: 'http', url: 'https://ingest.eastus.example/v1/events', region: 'eastus' },
  { name: 'central', type: 'otlp', url: 'https://otel.central.example', region: 'central' },
  { name: 'archive', type: 'file', path: '/var/lib/dcp/out', region: 'eastus' },
];

describe('preview: the snapshot events', function () {
  it('builds one ControlPlaneInventory and one HostOsInfo per Node, all schema-valid', function () {
    const events = snapshotEvents(spec(), snapshot(), NOW);
    expect(events.map((e) => e.name)).to.deep.equal(['ControlPlaneInventory', 'HostOsInfo', 'HostOsInfo']);
    for (const e of events) expect(validateEvent(e).ok, e.name).to.equal(true);
    expect(events[0]?.data).to.include({ nodes: 2, pods: 2, vCores: 8 });
  });

  it('hashes each systemUUID under the device key exactly as the host OS collector does', function () {
    const events = snapshotEvents(spec(), snapshot(), NOW);
    expect(events.slice(1).map((e) => e.data['deviceId'])).to.deep.equal(NODES.map(([, n]) => deviceIdOf(KEY, n)));
  });

  it('is deterministic, so its ids match what the operator stores for the same facts', function () {
    expect(snapshotEvents(spec(), snapshot(), NOW).map((e) => e.id)).to.deep.equal(snapshotEvents(spec(), snapshot(), NOW).map((e) => e.id));
  });

  it('builds nothing for a disabled category', function () {
    const events = snapshotEvents(spec({ categories: { hostOs: { enabled: false }, controlPlane: { enabled: false } } }), snapshot(), NOW);
    expect(events).to.deep.equal([]);
  });
});

describe('preview: admission through the operator’s validator and guard', function () {
  it('drops an event that carries a node name and describes it without the value', async function () {
    const nodes: [string, NodeProjection][] = [...NODES, ['leaky-7', node('leaky-7', '', 'image built on leaky-7')]];
    const events = snapshotEvents(spec(), snapshot(nodes), NOW);
    const { stored, dropped } = await admit(events, denySetOf(new Map(nodes)));
    expect(stored).to.have.length(3);
    expect(dropped).to.have.length(1);
    expect(dropped[0]).to.deep.include({ stage: 'pii', name: 'HostOsInfo', problems: ['data.osImage: denied'] });
    expect(JSON.stringify(dropped)).to.not.include('leaky-7');
  });

  it('drops a schema-invalid event with the schema’s problems', async function () {
    const bad = { ...exampleEvent('HostOsInfo', new Date(NOW)), data: { osName: 'linux' } } as DcpEvent;
    const { stored, dropped } = await admit([bad], denySetOf(new Map()));
    expect(stored).to.deep.equal([]);
    expect(dropped[0]?.stage).to.equal('schema');
    expect(dropped[0]?.problems.length).to.be.greaterThan(0);
  });
});

describe('preview: routing per sink', function () {
  const policy = { region: 'eastus' as const, export: { forwardAggregatesToCentral: true } };
  const raw = [exampleEvent('ControlPlaneInventory', new Date(NOW)), exampleEvent('CoreUsage', new Date(NOW))];

  it('gives a regional sink every event and a central sink no raw event, saying why', function () {
    const [regional, central] = planSinks(SINKS.slice(0, 2), raw, policy);
    expect(regional?.events).to.deep.equal(raw);
    expect(central?.events).to.deep.equal([]);
    expect([...(central?.withheld.keys() ?? [])]).to.deep.equal(['central sinks receive de-identified aggregates only']);
  });

  it('gives a central sink the non-billing daily aggregates when forwarding is on, and nothing when it is off', function () {
    const aggregates = aggregateDay(raw, '2026-11-25');
    const [, central] = planSinks(SINKS.slice(0, 2), [...raw, ...aggregates], policy);
    expect(central?.events.map((e) => `${e.name}/${e.category}`)).to.deep.equal(['DailyAggregate/controlPlane']);
    const [, off] = planSinks(SINKS.slice(0, 2), [...raw, ...aggregates], { ...policy, export: { forwardAggregatesToCentral: false } });
    expect(off?.events).to.deep.equal([]);
    expect([...(off?.withheld.keys() ?? [])]).to.deep.equal(['forwardAggregatesToCentral is false']);
  });
});

describe('preview: bodies made by the sinks themselves', function () {
  const events = snapshotEvents(spec(), snapshot(), NOW);

  it('http: the JSON batch HttpSink POSTs, with its idempotency key', async function () {
    const body = await renderSinkBody(SINKS[0] as Sink, events, NOW, 'dcp-system');
    expect(body.body).to.equal(JSON.stringify(events));
    expect(body.headers['idempotency-key']).to.equal(batchKey(events));
    expect(body.headers['content-type']).to.equal('application/json');
    expect(body.destination).to.equal('https://ingest.eastus.example/v1/events');
  });

  it('otlp: the OTLP/HTTP logs JSON toOtlpLogs makes, to <url>/v1/logs', async function () {
    const body = await renderSinkBody(SINKS[1] as Sink, events, NOW, 'dcp-system');
    expect(body.body).to.equal(JSON.stringify(toOtlpLogs(events, NOW)));
    expect(body.destination).to.equal('https://otel.central.example/v1/logs');
  });

  it('file: the JSON lines FileSink appends, to the day file under its path', async function () {
    const body = await renderSinkBody(SINKS[2] as Sink, events, NOW, 'dcp-system');
    expect(body.body).to.equal(events.map((e) => `${JSON.stringify(e)}\n`).join(''));
    expect(body.destination).to.equal('/var/lib/dcp/out/events-2026-11-25.jsonl');
  });

  it('names the token Secret of a sink with a secretRef without reading it', async function () {
    const body = await renderSinkBody({ ...(SINKS[0] as Sink), secretRef: { name: 'ingest', key: 'token' } }, events, NOW, 'dcp-system');
    expect(body.headers['authorization']).to.equal('Bearer <token: Secret dcp-system/ingest, key token>');
  });

  it('makes no body for a sink that receives nothing', async function () {
    expect((await renderSinkBody(SINKS[1] as Sink, [], NOW, 'dcp-system')).body).to.equal(undefined);
  });
});

describe('preview: the report', function () {
  const noAggregates = { events: [], note: 'none in the store at /data yet' };

  it('shows per sink what it receives and why, with residency respected', async function () {
    const report = await buildReport({ spec: spec({ export: { sinks: SINKS, forwardAggregatesToCentral: true } }), snapshot: snapshot(), aggregates: noAggregates, now: NOW, operatorNamespace: 'dcp-system', dataDir: '/data' });
    expect(report.sinks.map((s) => [s.name, s.receives, s.events.length])).to.deep.equal([
      ['regional', true, 3],
      ['central', false, 0],
      ['archive', true, 3],
    ]);
    const central = report.sinks[1];
    expect(central?.body).to.equal(null);
    expect(central?.reason).to.include('de-identified aggregates only').and.include('none in the store');
    expect(report.sinks[0]?.counts).to.deep.equal({ 'controlPlane/ControlPlaneInventory': 1, 'hostOs/HostOsInfo': 2 });
    expect(report.sinks[0]?.bytes).to.equal(Buffer.byteLength(report.sinks[0]?.body ?? ''));
    expect(report.policy).to.deep.include({ region: 'eastus', country: 'US', forwardAggregatesToCentral: true });
  });

  it('never prints a node name, hostname or systemUUID, in table or JSON', async function () {
    const nodes: [string, NodeProjection][] = [...NODES, ['leaky-7', node('leaky-7', '', 'image built on leaky-7')]];
    const report = await buildReport({ spec: spec({ export: { sinks: SINKS, forwardAggregatesToCentral: true } }), snapshot: snapshot(nodes), aggregates: noAggregates, now: NOW, operatorNamespace: 'dcp-system', dataDir: '/data' });
    const outputs = [renderPreviewJson(report), renderPreviewTable(report, { bodyEvents: Infinity, offsetMinutes: 0 })];
    for (const out of outputs) for (const s of SECRETS) expect(out.toLowerCase()).to.not.include(s.toLowerCase());
    expect(report.dropped).to.have.length(1);
  });

  it('without sinks, shows the events that would be stored and says no sink is configured', async function () {
    const report = await buildReport({ spec: spec(), snapshot: snapshot(), aggregates: noAggregates, now: NOW, operatorNamespace: 'dcp-system', dataDir: '/data' });
    expect(report.sinks).to.deep.equal([]);
    expect(report.stored).to.have.length(3);
    expect(report.notes[0]).to.match(/^no sink is configured/);
    const table = renderPreviewTable(report, { offsetMinutes: 60 });
    expect(table).to.include('No sink is configured.');
    expect(table).to.include('2026-11-25 21:03:04  controlPlane  ControlPlaneInventory');
  });

  it('says device IDs are placeholders when the operator has not created the key', async function () {
    const key: DeviceKeyInfo = { source: 'placeholder', secret: 'dcp-system/dcp-device-key', key: randomBytes(32), why: 'Secret dcp-system/dcp-device-key does not exist yet' };
    const report = await buildReport({ spec: spec(), snapshot: snapshot(NODES, key), aggregates: noAggregates, now: NOW, operatorNamespace: 'dcp-system', dataDir: '/data' });
    expect(report.deviceKey).to.deep.equal({ source: 'placeholder', secret: 'dcp-system/dcp-device-key', reason: 'Secret dcp-system/dcp-device-key does not exist yet' });
    expect(renderPreviewTable(report)).to.match(/Device IDs {2}PLACEHOLDERS/);
  });

  it('lays the sink table out in aligned columns and shows the first events of each body', async function () {
    const report = await buildReport({ spec: spec({ export: { sinks: SINKS, forwardAggregatesToCentral: true } }), snapshot: snapshot(), aggregates: noAggregates, now: NOW, operatorNamespace: 'dcp-system', dataDir: '/data' });
    const lines = renderPreviewTable(report, { bodyEvents: 1, offsetMinutes: 0 }).split('\n');
    const header = lines.findIndex((l) => l.startsWith('SINK'));
    expect(lines[header]?.split(/\s{2,}/)).to.deep.equal(['SINK', 'TYPE', 'REGION', 'EVENTS', 'SIZE', 'DESTINATION']);
    const dest = lines[header]?.indexOf('DESTINATION') ?? -1;
    expect(lines.slice(header + 1, header + 4).map((l) => l.slice(dest))).to.deep.equal([
      'POST https://ingest.eastus.example/v1/events',
      'POST https://otel.central.example/v1/logs',
      '/var/lib/dcp/out/events-2026-11-25.jsonl',
    ]);
    expect(lines.filter((l) => l.includes('first 1 shown'))).to.have.length(2);
  });
});

describe('preview: bodies for reading', function () {
  const events = [exampleEvent('ControlPlaneInventory', new Date(NOW)), exampleEvent('HostOsInfo', new Date(NOW), 'a'), exampleEvent('HostOsInfo', new Date(NOW), 'b')];

  it('keeps the first N events of an http batch, an OTLP request and JSON lines', function () {
    const http = displayBody('http', JSON.stringify(events), 2);
    expect(http).to.deep.include({ shown: 2, total: 3 });
    expect(JSON.parse(http.text)).to.deep.equal(events.slice(0, 2));
    const otlp = displayBody('otlp', JSON.stringify(toOtlpLogs(events, NOW)), 1);
    expect(otlp).to.deep.include({ shown: 1, total: 3 });
    expect(JSON.parse(otlp.text)).to.deep.equal(toOtlpLogs(events.slice(0, 1), NOW));
    const file = displayBody('file', events.map((e) => `${JSON.stringify(e)}\n`).join(''), 5);
    expect(file).to.deep.include({ shown: 3, total: 3 });
  });
});
