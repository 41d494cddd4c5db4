// The per-sink delivery state machine, the Delivering condition, and the gauges against a real failing receiver.
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { DataCollectionPolicy } from '../../src/api/policy.js';
import { deliveringCondition, planStatus } from '../../src/controllers/policy-status.js';
import { exampleEvent } from '../../src/pipeline/examples.js';
import { CursorStore } from '../../src/sinks/cursor.js';
import { DeliveryTracker, classifyError } from '../../src/sinks/delivery-state.js';
import { Dispatcher } from '../../src/sinks/dispatcher.js';
import { createSink } from '../../src/sinks/factory.js';
import { SinkError } from '../../src/sinks/sink.js';
import { EventStore } from '../../src/store/event-store.js';

const T0 = Date.parse('2026-03-01T12:00:00.000Z');

describe('sink delivery state', function () {
  it('classifies failures: 401/403 Refused, 429 Throttled, 5xx ServerError, other 4xx Rejected, timeouts, network', function () {
    expect(classifyError(new SinkError('x', false, 401))).to.equal('Refused');
    expect(classifyError(new SinkError('x', false, 403))).to.equal('Refused');
    expect(classifyError(new SinkError('x', true, 429))).to.equal('Throttled');
    expect(classifyError(new SinkError('x', true, 503))).to.equal('ServerError');
    expect(classifyError(new SinkError('x', false, 400))).to.equal('Rejected');
    expect(classifyError(new SinkError('POST x: no response within 100 ms', true))).to.equal('Timeout');
    expect(classifyError(new SinkError('POST x: connect ECONNREFUSED', true))).to.equal('Network');
    expect(classifyError(new Error('disk'))).to.equal('Unknown');
  });

  it('moves Delivering → Failing (since the first failure) → Backlogged → Delivering', function () {
    let now = T0;
    const t = new DeliveryTracker(() => now);
    t.succeeded('a');
    t.measured('a', 0, undefined);
    expect(t.snapshot()).to.deep.equal([{ name: 'a', state: 'Delivering', backlogEvents: 0, lastSuccessTime: '2026-03-01T12:00:00.000Z' }]);
    now += 1000;
    t.failed('a', new SinkError('HTTP 500', true, 500));
    t.measured('a', 7, T0 - 60_000);
    now += 1000;
    t.failed('a', new SinkError('HTTP 401', false, 401));
    const failing = t.snapshot()[0];
    expect(failing).to.include({ state: 'Failing', backlogEvents: 7, failingSince: '2026-03-01T12:00:01.000Z', lastErrorClass: 'Refused', oldestUndeliveredTime: '2026-03-01T11:59:00.000Z' });
    expect(t.oldestUndeliveredSeconds('a')).to.equal(62);
    t.succeeded('a');
    t.measured('a', 3, T0);
    expect(t.snapshot()[0]).to.include({ state: 'Backlogged', backlogEvents: 3 }).and.not.have.property('failingSince');
    t.measured('a', 0, undefined);
    expect(t.snapshot()[0]).to.include({ state: 'Delivering' }).and.not.have.property('oldestUndeliveredTime');
    expect(t.oldestUndeliveredSeconds('a')).to.equal(0);
  });

  it('Delivering turns False for a refusal at once and for other failures only past the threshold; Ready ignores it', function () {
    const failing = (cls: 'Refused' | 'ServerError', since: number) => ({
      delivery: { failingThresholdMs: 60_000, sinks: [{ name: 'a', state: 'Failing' as const, backlogEvents: 5, failingSince: new Date(since).toISOString(), lastErrorClass: cls, lastError: 'HTTP' }] },
      leading: true,
      unsyncedCaches: [],
    });
    const now = new Date(T0);
    expect(deliveringCondition(failing('ServerError', T0 - 30_000), now)).to.include({ status: 'True', reason: 'Delivering' });
    expect(deliveringCondition(failing('ServerError', T0 - 90_000), now)).to.include({ status: 'False', reason: 'SinkFailing' });
    expect(deliveringCondition(failing('Refused', T0 - 1000), now)).to.include({ status: 'False', reason: 'SinkRefused' });
    expect(deliveringCondition({ leading: true, unsyncedCaches: [] }, now)).to.equal(undefined);
    const policy = {
      metadata: { name: 'default', generation: 1 },
      spec: { region: 'eastus', retention: { rawDays: 28, aggregateDays: 365 }, export: { sinks: [] }, diagnostics: { auditExport: { enabled: false } } },
    } as unknown as DataCollectionPolicy;
    const status = planStatus(policy, { ...failing('Refused', T0), store: { events: 0, bytes: 0, rawDaysApplied: 28 } }, now);
    expect(status.sinks).to.have.length(1);
    expect(status.conditions?.find((c) => c.type === 'Delivering')).to.include({ status: 'False', reason: 'SinkRefused' });
    expect(status.conditions?.find((c) => c.type === 'Ready')).to.include({ status: 'True' });
  });

  describe('against a real receiver', function () {
    this.timeout(20_000);
    let dir: string;
    let store: EventStore;
    let server: http.Server;
    let answer = 500;
    let url = '';
    const stop = new AbortController();

    before(async function () {
      dir = await mkdtemp(join(tmpdir(), 'dcp-delivery-state-'));
      store = await EventStore.open({ dataDir: dir, registry: new Registry() });
      server = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => res.writeHead(answer).end());
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
    });
    after(async function () {
      stop.abort();
      await store.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await rm(dir, { recursive: true, force: true });
    });

    it('shows Failing with the error class, the backlog and its age in status and gauges, then Delivering', async function () {
      const registry = new Registry();
      let changes = 0;
      const d = new Dispatcher({
        store,
        cursors: new CursorStore(dir),
        policy: () => ({ region: 'eastus', export: { forwardAggregatesToCentral: false } }),
        idleMs: 50,
        backoff: { baseMs: 5, maxMs: 20 },
        registry,
        onStateChange: () => changes++,
      });
      const config = { name: 'regional', type: 'http' as const, url, region: 'eastus' as const };
      await d.setTargets([{ config, sink: createSink(config, { retry: { attempts: 1 } }) }]);
      const eventTime = Date.now() - 120_000;
      await store.append([exampleEvent('HostOsInfo', new Date(eventTime), 'a'), exampleEvent('HostOsInfo', new Date(eventTime + 1000), 'b')]);
      const done = d.start(stop.signal);
      const waitFor = async (check: () => boolean): Promise<void> => {
        while (!check()) await new Promise((r) => setTimeout(r, 10));
      };
      await waitFor(() => d.deliveries()[0]?.state === 'Failing' && d.deliveries()[0]?.backlogEvents === 2);
      expect(d.deliveries()[0]).to.include({ lastErrorClass: 'ServerError', oldestUndeliveredTime: new Date(eventTime).toISOString() });
      const metrics = await registry.metrics();
      expect(metrics).to.match(/^dcp_sink_backlog_events\{sink="regional"\} 2$/m);
      const age = Number(/^dcp_sink_oldest_undelivered_seconds\{sink="regional"\} (\S+)$/m.exec(metrics)?.[1]);
      expect(age).to.be.within(119, 200);
      answer = 401;
      await waitFor(() => d.deliveries()[0]?.lastErrorClass === 'Refused');
      answer = 200;
      await waitFor(() => d.deliveries()[0]?.state === 'Delivering');
      expect(d.deliveries()[0]).to.include({ backlogEvents: 0 }).and.have.property('lastSuccessTime');
      expect(await registry.metrics()).to.match(/^dcp_sink_backlog_events\{sink="regional"\} 0$/m).and.match(/^dcp_sink_oldest_undelivered_seconds\{sink="regional"\} 0$/m);
      expect(changes).to.be.greaterThanOrEqual(3);
      stop.abort();
      await done;
    });
  });
});
