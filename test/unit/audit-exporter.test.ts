// The audit exporter's pure parts and its buffer: profiles, parsing, the bounded spool, outage and purge on an injected clock, dedup.
import { expect } from 'chai';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { MalformedAudit, parseEventList, toRecord, type AuditRecord } from '../../src/audit/audit-event.js';
import { parseExporterConfig, InvalidExporterConfig } from '../../src/audit/config.js';
import { blobNameFor, DestinationError, FileDestination, type AuditDestination } from '../../src/audit/destinations/index.js';
import { Exporter } from '../../src/audit/exporter.js';
import { auditMetrics } from '../../src/audit/metrics.js';
import { auditPolicy, profileKeeps } from '../../src/audit/profile.js';
import { Spool } from '../../src/audit/spool.js';
import { silentLog } from '../../src/observability/log.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { auditEvent, T0 } from './audit-fixtures.js';

const records = (ids: string[], verb = 'create', time = T0): AuditRecord[] => ids.map((id) => toRecord(auditEvent(id, verb, time)));

/** A destination that fails while `down` is true, and keeps what it took. */
class Flaky implements AuditDestination {
  readonly type = 'file' as const;
  down = false;
  readonly taken: AuditRecord[] = [];
  write(rs: readonly AuditRecord[]): Promise<void> {
    if (this.down) return Promise.reject(new DestinationError('connection refused', false));
    this.taken.push(...rs);
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('audit export: profiles and parsing', () => {
  it('kube-audit-admin leaves out get, list and watch; kube-audit keeps everything', () => {
    for (const verb of ['get', 'list', 'watch']) {
      expect(profileKeeps('kube-audit-admin', verb)).to.equal(false);
      expect(profileKeeps('kube-audit', verb)).to.equal(true);
    }
    for (const verb of ['create', 'update', 'patch', 'delete', 'deletecollection']) expect(profileKeeps('kube-audit-admin', verb)).to.equal(true);
  });

  it('the audit Policy of kube-audit-admin drops reads at the source and sends one stage per request', () => {
    const p = auditPolicy('kube-audit-admin');
    expect(p.omitStages).to.deep.equal(['RequestReceived', 'ResponseStarted']);
    expect(p.rules).to.deep.equal([{ level: 'None', verbs: ['get', 'list', 'watch'] }, { level: 'Metadata' }]);
    expect(auditPolicy('kube-audit').rules).to.deep.equal([{ level: 'Metadata' }]);
  });

  it('an EventList parses into records that keep the event exactly', () => {
    const body = Buffer.from(JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: [auditEvent('a'), auditEvent('b', 'get')] }));
    const rs = parseEventList(body);
    expect(rs.map((r) => [r.auditID, r.verb, r.time])).to.deep.equal([
      ['a', 'create', T0],
      ['b', 'get', T0],
    ]);
    expect(JSON.parse(rs[0]!.json)).to.deep.equal(auditEvent('a'));
  });

  it('bodies that are not an EventList of events are MalformedAudit, with the reason', () => {
    expect(() => parseEventList(Buffer.from('{not json'))).to.throw(MalformedAudit, /not JSON/);
    expect(() => parseEventList(Buffer.from('{"kind":"Pod"}'))).to.throw(MalformedAudit, /EventList/);
    expect(() => parseEventList(Buffer.from('{"kind":"EventList","items":[{"verb":"get"}]}'))).to.throw(MalformedAudit, /auditID/);
  });

  it('a configuration is checked field by field', () => {
    expect(parseExporterConfig({ destination: { type: 'file', path: '/x' } })).to.deep.equal({
      profile: 'kube-audit-admin',
      destination: { type: 'file', path: '/x' },
      intermediateRetentionHours: 48,
      bufferMaxBytes: 256 * 1024 * 1024,
    });
    expect(() => parseExporterConfig({ destination: { type: 'file', path: '/x' }, intermediateRetentionHours: 49 })).to.throw(InvalidExporterConfig, /1 to 48/);
    expect(() => parseExporterConfig({ destination: { type: 's3' } })).to.throw(InvalidExporterConfig, /file, http or azureBlob/);
    expect(() => parseExporterConfig({ destination: { type: 'azureBlob', resourceId: '/subscriptions/x' } })).to.throw(InvalidExporterConfig, /credentialKey/);
  });

  it('blob names follow Azure diagnostic settings: resourceId upper-cased, hourly PT1H.json', () => {
    expect(blobNameFor('/subscriptions/abc/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c1', T0)).to.equal(
      'resourceId=/SUBSCRIPTIONS/ABC/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KUBERNETES/CONNECTEDCLUSTERS/C1/y=2026/m=12/d=02/h=10/m=00/PT1H.json',
    );
  });
});

describe('audit export: the buffer and delivery', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcp-audit-unit-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function open(destination: AuditDestination, now: () => number, extra: { bufferMaxBytes?: number; registry?: Registry } = {}) {
    const registry = extra.registry ?? new Registry();
    const metrics = auditMetrics(registry);
    const warnings: string[] = [];
    const exporter = await Exporter.open({
      config: { profile: 'kube-audit-admin', destination: { type: 'file', path: '/unused' }, intermediateRetentionHours: 48, bufferMaxBytes: extra.bufferMaxBytes ?? 1 << 20 },
      destination,
      stateDir: dir,
      metrics,
      log: silentLog,
      now,
      clock: new ManualClock(),
      onWarning: (reason) => warnings.push(reason),
    });
    return { exporter, registry, warnings };
  }

  const metric = async (registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> => {
    const m = (await registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
    return m?.value ?? 0;
  };

  it('writes straight through while the destination is up, and the buffer stays empty', async () => {
    const dest = new Flaky();
    const { exporter } = await open(dest, () => T0);
    await exporter.accept(records(['a', 'b']), 'webhook');
    expect(dest.taken.map((r) => r.auditID)).to.deep.equal(['a', 'b']);
    expect(exporter.status().backlogBytes).to.equal(0);
    expect(await readdir(join(dir, 'buffer'))).to.deep.equal([]);
  });

  it('a batch sent twice (and a repeat within a batch) is written once', async () => {
    const dest = new Flaky();
    const { exporter, registry } = await open(dest, () => T0);
    await exporter.accept(records(['a', 'b', 'a']), 'webhook');
    await exporter.accept(records(['a', 'b', 'c']), 'log');
    expect(dest.taken.map((r) => r.auditID)).to.deep.equal(['a', 'b', 'c']);
    expect(await metric(registry, 'dcp_audit_events_dropped_total', { reason: 'duplicate' })).to.equal(3);
  });

  it('reads are left out under kube-audit-admin and counted as dropped by profile', async () => {
    const dest = new Flaky();
    const { exporter, registry } = await open(dest, () => T0);
    await exporter.accept([...records(['r1', 'r2'], 'get'), ...records(['w1'], 'delete')], 'webhook');
    expect(dest.taken.map((r) => r.auditID)).to.deep.equal(['w1']);
    expect(await metric(registry, 'dcp_audit_events_dropped_total', { reason: 'profile' })).to.equal(2);
    expect(await metric(registry, 'dcp_audit_events_received_total', { source: 'webhook' })).to.equal(3);
  });

  it('a 10-minute outage loses nothing: batches wait on disk in order, then drain, each event once', async () => {
    const dest = new Flaky();
    let now = T0;
    const { exporter, registry } = await open(dest, () => now);
    await exporter.accept(records(['e0']), 'webhook');
    dest.down = true;
    for (let minute = 1; minute <= 10; minute++) {
      now = T0 + minute * 60_000;
      await exporter.accept(records([`e${minute}`]), 'webhook');
      // the API server resends one batch: it must not arrive twice
      if (minute === 5) await exporter.accept(records(['e5']), 'webhook');
      expect(await exporter.drain()).to.equal(false);
    }
    expect(exporter.status()).to.include({ destinationUp: false, backlogEvents: 11 });
    expect(exporter.status().backlogOldest).to.equal(T0 + 60_000);
    expect(await metric(registry, 'dcp_audit_backlog_oldest_seconds')).to.equal(540);
    expect(await metric(registry, 'dcp_audit_destination_up')).to.equal(0);
    dest.down = false;
    expect(await exporter.drain()).to.equal(true);
    expect(dest.taken.map((r) => r.auditID)).to.deep.equal(['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9', 'e10']);
    expect(exporter.status()).to.include({ destinationUp: true, backlogBytes: 0 });
    expect(await metric(registry, 'dcp_audit_backlog_bytes')).to.equal(0);
  });

  it('anything older than intermediateRetentionHours is deleted even if never delivered, counted, with a warning', async () => {
    const dest = new Flaky();
    dest.down = true;
    let now = T0;
    const { exporter, registry, warnings } = await open(dest, () => now);
    await exporter.accept(records(['old1', 'old2']), 'webhook');
    now = T0 + 47 * 3_600_000;
    await exporter.accept(records(['young']), 'webhook');
    await exporter.drain();
    expect(exporter.status().backlogEvents).to.equal(3);
    now = T0 + 48 * 3_600_000;
    await exporter.drain();
    expect(exporter.status().backlogEvents).to.equal(1);
    expect(await metric(registry, 'dcp_audit_events_dropped_total', { reason: 'retention_expired' })).to.equal(2);
    expect(warnings).to.deep.equal(['RetentionExpired']);
    const left = await readdir(join(dir, 'buffer'));
    expect(left).to.have.length(1);
    expect(await readFile(join(dir, 'buffer', left[0]!), 'utf8')).to.contain('"young"');
  });

  it('the buffer is bounded in bytes: the oldest batches go first, counted, with a warning', async () => {
    const dest = new Flaky();
    dest.down = true;
    const size = Buffer.byteLength(records(['x00'])[0]!.json) + 1;
    let now = T0;
    const { exporter, registry, warnings } = await open(dest, () => now, { bufferMaxBytes: size * 3 + 10 });
    for (let i = 0; i < 5; i++) {
      now += 1000;
      await exporter.accept(records([`x0${i}`]), 'webhook');
    }
    expect(exporter.status().backlogEvents).to.equal(3);
    expect(await metric(registry, 'dcp_audit_events_dropped_total', { reason: 'buffer_full' })).to.equal(2);
    expect(warnings).to.deep.equal(['BufferFull', 'BufferFull']);
    dest.down = false;
    await exporter.drain();
    expect(dest.taken.map((r) => r.auditID)).to.deep.equal(['x02', 'x03', 'x04']);
  });

  it('a restart keeps the buffer and remembers what was delivered', async () => {
    const dest = new Flaky();
    const first = await open(dest, () => T0);
    await first.exporter.accept(records(['a']), 'webhook');
    dest.down = true;
    await first.exporter.accept(records(['b']), 'webhook');
    await first.exporter.close();
    dest.down = false;
    const second = await open(dest, () => T0);
    expect(second.exporter.status().backlogEvents).to.equal(1);
    await second.exporter.accept(records(['a']), 'webhook'); // resent after the restart
    await second.exporter.drain();
    expect(dest.taken.map((r) => r.auditID)).to.deep.equal(['a', 'b']);
  });

  it('the spool reopens what is on disk, oldest first', async () => {
    const spool = await Spool.open({ dir, maxBytes: 1 << 20, retentionMs: 3_600_000, now: () => T0 });
    await spool.append(records(['p', 'q']));
    const again = await Spool.open({ dir, maxBytes: 1 << 20, retentionMs: 3_600_000, now: () => T0 });
    expect(again.events).to.equal(2);
    expect((await again.peek())?.records.map((r) => r.auditID)).to.deep.equal(['p', 'q']);
  });

  it('the file destination partitions by the event hour and appends JSON lines', async () => {
    const dest = new FileDestination(join(dir, 'out'));
    await dest.write([...records(['h10']), ...records(['h11'], 'create', T0 + 3_600_000)]);
    await dest.write(records(['h10b']));
    const ten = (await readFile(join(dir, 'out', '2026-12-02', '10.jsonl'), 'utf8')).trim().split('\n');
    expect(ten.map((l) => (JSON.parse(l) as { auditID: string }).auditID)).to.deep.equal(['h10', 'h10b']);
    expect(await readFile(join(dir, 'out', '2026-12-02', '11.jsonl'), 'utf8')).to.contain('"h11"');
  });
});
