// Residency routing and the ingest path: where each event may go, and what reaches the store at all.
import { expect } from 'chai';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import type { Sink } from '../../src/api/policy.js';
import { AZURE_REGIONS } from '../../src/api/regions.js';
import { EVENT_CATALOG, type CollectedEventName, type DcpEvent } from '../../src/api/event.js';
import { EXAMPLE_CLUSTER, exampleEvent } from '../../src/pipeline/examples.js';
import { PiiGuard } from '../../src/pipeline/guard.js';
import { Ingest } from '../../src/pipeline/ingest.js';
import { route, sinksFor, type RoutingPolicy } from '../../src/pipeline/routing.js';
import { EventValidator } from '../../src/pipeline/validate.js';
import { aggregateDay } from '../../src/store/aggregate.js';

const T = new Date('2026-11-24T21:00:00.000Z');
const NAMES = Object.keys(EVENT_CATALOG) as CollectedEventName[];
const RAW: DcpEvent[] = NAMES.map((n) => exampleEvent(n, T));
const AGGREGATES: DcpEvent[] = aggregateDay(RAW, '2026-11-24');

const regional: Pick<Sink, 'name' | 'region'> = { name: 'regional', region: 'eastus' };
const central: Pick<Sink, 'name' | 'region'> = { name: 'central', region: 'central' };
const elsewhere: Pick<Sink, 'name' | 'region'> = { name: 'elsewhere', region: 'westeurope' };
const policy = (forwardAggregatesToCentral: boolean): RoutingPolicy => ({ region: 'eastus', export: { forwardAggregatesToCentral } });

describe('routing', function () {
  it('sends every event, billing included, to a sink in the policy region', function () {
    for (const e of [...RAW, ...AGGREGATES]) expect(route(e, regional, policy(true)).deliver, e.name).to.equal(true);
  });

  it('sends a central sink only non-billing daily aggregates, and only when forwarding is on', function () {
    const toCentral = [...RAW, ...AGGREGATES].filter((e) => route(e, central, policy(true)).deliver);
    expect(toCentral.every((e) => e.name === 'DailyAggregate' && e.category !== 'billing')).to.equal(true);
    expect(toCentral).to.have.length(AGGREGATES.length - 1);
    expect([...RAW, ...AGGREGATES].filter((e) => route(e, central, policy(false)).deliver)).to.deep.equal([]);
  });

  it('sends nothing to a sink in another region, and nothing of an event from another region', function () {
    for (const e of [...RAW, ...AGGREGATES]) expect(route(e, elsewhere, policy(true)).deliver).to.equal(false);
    const foreign = exampleEvent('HostError', T, 'x', { ...EXAMPLE_CLUSTER, region: 'westeurope' });
    expect(sinksFor(foreign, [regional, central, elsewhere], policy(true))).to.deep.equal([]);
  });

  it('says why an event is held back', function () {
    expect(route(RAW[0] as DcpEvent, central, policy(true)).reason).to.equal('central sinks receive de-identified aggregates only');
    expect(route(RAW[0] as DcpEvent, central, policy(false)).reason).to.equal('forwardAggregatesToCentral is false');
  });

  it('never lets raw or billing data leave the policy region, whatever the sinks and policy (property)', function () {
    const sinkRegion = fc.constantFrom<Sink['region']>('central', ...AZURE_REGIONS);
    fc.assert(
      fc.property(fc.constantFrom(...RAW, ...AGGREGATES), sinkRegion, fc.constantFrom(...AZURE_REGIONS), fc.boolean(), (event, region, policyRegion, forward) => {
        const e = { ...event, cluster: { ...event.cluster, region: policyRegion } };
        const p: RoutingPolicy = { region: policyRegion, export: { forwardAggregatesToCentral: forward } };
        if (!route(e, { region }, p).deliver) return true;
        if (region === policyRegion) return true;
        return region === 'central' && forward && e.name === 'DailyAggregate' && e.category !== 'billing';
      }),
      { numRuns: 1000 },
    );
  });
});

describe('ingest', function () {
  // Generous: fsync and the first schema compile are slow on a loaded machine; nothing here measures time.
  this.timeout(10_000);
  it('stores valid clean events and drops invalid and personal ones before the store sees them', async function () {
    const registry = new Registry();
    const appended: DcpEvent[] = [];
    const store = {
      append(events: readonly DcpEvent[]) {
        appended.push(...events);
        return Promise.resolve({ stored: events.length, duplicates: 0, expired: 0 });
      },
    };
    const ingest = new Ingest({ validator: new EventValidator({ registry }), guard: new PiiGuard({ registry }), store });
    ingest.guard.denySet.add(['aks-nodepool1-0001']);
    const good = exampleEvent('HostError', T);
    const invalid = { ...good, data: { ...good.data, node: 'x' } };
    const personal = { ...good, data: { ...good.data, message: 'kubelet on aks-nodepool1-0001 restarted' } };
    const result = await ingest.submit([good, invalid, personal]);
    expect(result).to.include({ stored: 1, invalid: 1, rejected: 1 });
    expect(appended).to.deep.equal([good]);
  });
});
