// The event schema, the envelope builder and the validation stage: what is stored is exactly what the contract allows.
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { CATEGORY_NAMES } from '../../src/api/policy.js';
import { AZURE_REGIONS } from '../../src/api/regions.js';
import { buildEvent, eventId, timeBucket } from '../../src/api/envelope.js';
import { EVENT_CATALOG, EVENT_NAMES, type CollectedEventName, type DcpEvent } from '../../src/api/event.js';
import { EXAMPLE_CLUSTER, EXAMPLE_DATA, exampleEvent } from '../../src/pipeline/examples.js';
import { eventSchema } from '../../src/pipeline/schema.js';
import { EventValidator, validateEvent } from '../../src/pipeline/validate.js';
import { aggregateDay } from '../../src/store/aggregate.js';

const T = new Date('2026-11-24T21:00:00.000Z');
const NAMES = Object.keys(EVENT_CATALOG) as CollectedEventName[];

interface SchemaShape {
  properties: { category: { $ref: string }; name: { enum: string[] }; cluster: { properties: { region: { enum: string[] } } } };
  $defs: Record<string, { enum?: string[]; required?: string[]; properties?: Record<string, unknown> }>;
  allOf: { if: { properties: { name: { const: string } } }; then: { properties: { category?: { const: string }; classification: { const: string } } } }[];
}

const schema = eventSchema() as unknown as SchemaShape;

/** A copy of `e` with `data` replaced: tests build wrong events on purpose. */
const withData = (e: DcpEvent, data: Record<string, unknown>): unknown => ({ ...e, data });

describe('event schema and envelope', function () {
  // Generous: fsync and the first schema compile are slow on a loaded machine; nothing here measures time.
  this.timeout(10_000);
  describe('the schema agrees with the TypeScript definitions', function () {
    it('lists exactly the Azure regions a policy may name', function () {
      expect(schema.properties.cluster.properties.region.enum).to.deep.equal([...AZURE_REGIONS]);
    });

    it('lists exactly the policy categories', function () {
      expect(schema.$defs['category']?.enum).to.deep.equal([...CATEGORY_NAMES]);
    });

    it('lists exactly the event names, and binds each to its category and classification', function () {
      expect(schema.properties.name.enum).to.have.members([...EVENT_NAMES]);
      for (const name of NAMES) {
        const rule = schema.allOf.find((r) => r.if.properties.name.const === name);
        expect(rule, name).to.not.equal(undefined);
        expect(rule?.then.properties.category?.const, name).to.equal(EVENT_CATALOG[name].category);
        expect(rule?.then.properties.classification.const, name).to.equal(EVENT_CATALOG[name].classification);
      }
    });

    it('requires the same data fields the TypeScript types make required', function () {
      // The example sets every field; optional ones are those a type marks with '?'.
      const optional: Record<string, string[]> = {
        HostOsInfo: ['containerRuntimeVersion'],
        HostError: ['stackTrace'],
        CertificateStatus: ['source'],
        KmsStatus: ['keyIdHash'],
        AuditExportStatus: ['destinationType', 'eventsReceived', 'eventsExported', 'intermediateRetentionHours'],
      };
      for (const name of NAMES) {
        const def = schema.$defs[name];
        const fields = Object.keys(EXAMPLE_DATA[name]);
        expect(Object.keys(def?.properties ?? {}), name).to.include.members(fields);
        expect(def?.required, name).to.have.members(fields.filter((f) => !(optional[name] ?? []).includes(f)));
      }
    });
  });

  describe('validation', function () {
    it('accepts a built event of every name', function () {
      for (const name of NAMES) {
        const result = validateEvent(exampleEvent(name, T));
        expect(result.ok, `${name}: ${JSON.stringify(result)}`).to.equal(true);
      }
    });

    it('accepts the daily aggregates the store computes', function () {
      const events = NAMES.map((n) => exampleEvent(n, T));
      const aggregates = aggregateDay(events, '2026-11-24');
      expect(aggregates).to.have.length(NAMES.length);
      for (const a of aggregates) expect(validateEvent(a).ok, JSON.stringify(validateEvent(a))).to.equal(true);
    });

    it('refuses a field the schema does not list, for every name', function () {
      for (const name of NAMES) {
        const e = exampleEvent(name, T);
        const result = validateEvent(withData(e, { ...e.data, nodeName: 'aks-nodepool1-123' }));
        expect(result.ok, name).to.equal(false);
        if (!result.ok) expect(result.problems.join()).to.contain("'nodeName'");
      }
    });

    it('refuses an event missing a required data field', function () {
      const e = exampleEvent('CoreUsage', T);
      const { quantity: _quantity, ...rest } = EXAMPLE_DATA.CoreUsage;
      expect(validateEvent(withData(e, rest)).ok).to.equal(false);
    });

    it('refuses an event filed under the wrong category or classification', function () {
      const e = exampleEvent('CoreUsage', T);
      expect(validateEvent({ ...e, category: 'controlPlane' }).ok).to.equal(false);
      expect(validateEvent({ ...e, classification: 'non-personal' }).ok).to.equal(false);
    });

    it('refuses values of the wrong type: a string count, a non-finite quantity, a time without offset', function () {
      const inv = exampleEvent('ControlPlaneInventory', T);
      expect(validateEvent(withData(inv, { ...inv.data, nodes: '3' })).ok).to.equal(false);
      expect(validateEvent(withData(inv, { ...inv.data, nodes: 2.5 })).ok).to.equal(false);
      const usage = exampleEvent('CoreUsage', T);
      // JSON turns NaN into null: what a store would read back.
      expect(validateEvent(JSON.parse(JSON.stringify(withData(usage, { ...usage.data, quantity: NaN })))).ok).to.equal(false);
      expect(validateEvent({ ...usage, time: '2026-11-24 21:00:00' }).ok).to.equal(false);
      expect(validateEvent(withData(usage, { ...usage.data, unit: 'cores' })).ok).to.equal(false);
    });

    it('refuses unknown names, envelope fields and schema versions', function () {
      const e = exampleEvent('HostError', T);
      expect(validateEvent({ ...e, name: 'NodeDump' }).ok).to.equal(false);
      expect(validateEvent({ ...e, extra: 1 }).ok).to.equal(false);
      expect(validateEvent({ ...e, schemaVersion: '2.0' }).ok).to.equal(false);
      expect(validateEvent({ ...e, cluster: { ...e.cluster, region: 'mars' } }).ok).to.equal(false);
      expect(validateEvent({ ...e, id: 'not-a-hash' }).ok).to.equal(false);
    });

    it('refuses an aggregate that smuggles a string or disagrees with its category', function () {
      const [agg] = aggregateDay([exampleEvent('ControlPlaneInventory', T)], '2026-11-24');
      if (!agg) throw new Error('no aggregate');
      expect(validateEvent(withData(agg, { ...agg.data, numeric: { nodes: { min: 'a', max: 1, avg: 1, sum: 1 } } })).ok).to.equal(false);
      expect(validateEvent(withData(agg, { ...agg.data, hostName: 'x' })).ok).to.equal(false);
      expect(validateEvent({ ...agg, category: 'hostOs' }).ok).to.equal(false);
    });

    it('counts a dropped event in dcp_events_invalid_total and logs no values', async function () {
      const registry = new Registry();
      const logged: unknown[] = [];
      const log = { debug() {}, info() {}, error() {}, warn: (_m: string, meta?: Record<string, unknown>) => logged.push(meta) };
      const validator = new EventValidator({ registry, log });
      const e = exampleEvent('HostError', T);
      expect(validator.admit(e)).to.equal(e);
      expect(validator.admit(withData(e, { ...e.data, secret: 'hunter2-value' }))).to.equal(undefined);
      expect(validator.admit('garbage')).to.equal(undefined);
      const metric = await registry.getSingleMetricAsString('dcp_events_invalid_total');
      expect(metric).to.contain('dcp_events_invalid_total{category="hostErrors"} 1');
      expect(metric).to.contain('dcp_events_invalid_total{category="unknown"} 1');
      expect(JSON.stringify(logged)).to.not.contain('hunter2-value');
    });
  });

  describe('the envelope', function () {
    it('gives the same fact the same id, whenever and however often it is built', function () {
      const a = buildEvent({ name: 'CoreUsage', cluster: EXAMPLE_CLUSTER, time: T, sourceKey: 'meter', bucketSeconds: 3600, data: EXAMPLE_DATA.CoreUsage });
      const b = buildEvent({ name: 'CoreUsage', cluster: EXAMPLE_CLUSTER, time: new Date(T.getTime() + 1234), sourceKey: 'meter', bucketSeconds: 3600, data: EXAMPLE_DATA.CoreUsage });
      expect(a.id).to.equal(b.id);
      expect(a.id).to.match(/^[0-9a-f]{32}$/);
    });

    it('gives different facts different ids: another bucket, source, name or cluster', function () {
      const base = { clusterId: EXAMPLE_CLUSTER.id, category: 'hostOs' as const, name: 'HostOsInfo', sourceKey: 'n1', bucket: timeBucket(T, 60) };
      const ids = new Set([
        eventId(base),
        eventId({ ...base, bucket: timeBucket(new Date(T.getTime() + 60_000), 60) }),
        eventId({ ...base, sourceKey: 'n2' }),
        eventId({ ...base, name: 'HostError' }),
        eventId({ ...base, clusterId: '00000000-0000-4000-8000-000000000000' }),
        // The separator keeps shifted boundaries apart.
        eventId({ ...base, sourceKey: 'n', bucket: `1${base.bucket}` }),
      ]);
      expect(ids.size).to.equal(6);
    });

    it('fills category and classification from the name, so a collector cannot mislabel', function () {
      const e = buildEvent({ name: 'CoreUsage', cluster: EXAMPLE_CLUSTER, time: T, sourceKey: 'meter', data: EXAMPLE_DATA.CoreUsage });
      expect(e.category).to.equal('billing');
      expect(e.classification).to.equal('billing');
      expect(e.schemaVersion).to.equal('1.0');
      expect(e.time).to.equal('2026-11-24T21:00:00.000Z');
    });

    it('floors times to their bucket', function () {
      expect(timeBucket(new Date('2026-11-24T21:59:59.999Z'), 3600)).to.equal('2026-11-24T21:00:00.000Z');
      expect(timeBucket(new Date('2026-11-24T21:00:00.500Z'), 1)).to.equal('2026-11-24T21:00:00.000Z');
    });
  });
});
