// `dcp events`: flag parsing, the one-line summary of each event name, the table, and the byte-exact JSON output.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { CATEGORY_NAMES } from '../../src/api/policy.js';
import { parseCategory, parseEventsFlags, parseLimit, parseOutput, parseSince, renderEventsJson, renderEventsTable, summarize, UsageError } from '../../src/cli/events.js';
import { buildEvent } from '../../src/api/envelope.js';
import { EVENT_CATALOG, type CollectedEventName, type DcpEvent } from '../../src/api/event.js';
import { EXAMPLE_CLUSTER, EXAMPLE_DATA, exampleEvent } from '../../src/pipeline/examples.js';
import { aggregateDay } from '../../src/store/aggregate.js';
import { EventStore } from '../../src/store/event-store.js';

const T = new Date('2026-11-24T21:00:00.000Z');
const NAMES = Object.keys(EVENT_CATALOG) as CollectedEventName[];
const CET = 60;

describe('dcp events flags', function () {
  const now = Date.parse('2026-11-25T12:00:00.000Z');

  it('names every valid category when one is unknown', function () {
    expect(() => parseCategory('hostos-typo')).to.throw(UsageError, `valid categories: ${CATEGORY_NAMES.join(', ')}`);
  });

  it('accepts category names in any case but returns the policy spelling', function () {
    expect(parseCategory('hostOs')).to.equal('hostOs');
    expect(parseCategory('controlplane')).to.equal('controlPlane');
  });

  it('reads --since as a duration ago or as an RFC 3339 time', function () {
    expect(parseSince('1h', now).toISOString()).to.equal('2026-11-25T11:00:00.000Z');
    expect(parseSince('2026-11-24T00:00:00Z', now).toISOString()).to.equal('2026-11-24T00:00:00.000Z');
    expect(() => parseSince('yesterday', now)).to.throw(UsageError, 'not a duration');
    expect(() => parseSince('2026-13-45', now)).to.throw(UsageError, 'RFC 3339');
  });

  it('takes only positive whole numbers for --limit and json or table for --output', function () {
    expect(parseLimit('20')).to.equal(20);
    for (const bad of ['0', '-1', '2.5', 'ten']) expect(() => parseLimit(bad), bad).to.throw(UsageError);
    expect(parseOutput(undefined)).to.equal('table');
    expect(parseOutput('json')).to.equal('json');
    expect(() => parseOutput('yaml')).to.throw(UsageError, 'json, table');
  });

  it('reads the aggregates stream with --aggregates and defaults the data dir to ./data', function () {
    const flags = parseEventsFlags({ aggregates: true, category: 'billing' }, now);
    expect(flags.stream).to.equal('aggregates');
    expect(flags.category).to.equal('billing');
    expect(flags.dataDir.endsWith('/data')).to.equal(true);
    expect(parseEventsFlags({}, now).stream).to.equal('raw');
  });
});

describe('event summaries', function () {
  it('gives the inventory figures and the pod phases worth a look', function () {
    expect(summarize(exampleEvent('ControlPlaneInventory', T))).to.equal('nodes=3 pods=41 vCores=12 pending=1 succeeded=2');
  });

  it('quotes an OS image with spaces and shortens the device id', function () {
    expect(summarize(exampleEvent('HostOsInfo', T))).to.equal('osImage="Ubuntu 22.04.4 LTS" cpu=4 ready=true model=Standard_D4s_v5 arch=amd64 device=a3f1c9d2');
  });

  it('names the pressure flags a node reports', function () {
    const e = buildEvent({ name: 'HostOsInfo', cluster: EXAMPLE_CLUSTER, time: T, sourceKey: 'x', data: { ...EXAMPLE_DATA.HostOsInfo, ready: false, diskPressure: true } });
    expect(summarize(e)).to.match(/^osImage="Ubuntu 22.04.4 LTS" cpu=4 ready=false diskPressure model=/);
  });

  it('shows a billing interval as a half-open range of local times', function () {
    expect(summarize(exampleEvent('CoreUsage', T), CET)).to.equal('[21:00:00, 22:00:00) quantity=11.75');
    expect(summarize(exampleEvent('CoreUsage', T), 0)).to.equal('[20:00:00, 21:00:00) quantity=11.75');
  });

  it('adds dates to an interval that does not fall within one local day', function () {
    const e = buildEvent({ name: 'CoreUsage', cluster: EXAMPLE_CLUSTER, time: T, sourceKey: 'x', data: { intervalStart: '2026-11-24T22:30:00.000Z', intervalEnd: '2026-11-24T23:30:00.000Z', quantity: 8, unit: 'vCore' } });
    expect(summarize(e, CET)).to.equal('[2026-11-24 23:30:00, 2026-11-25 00:30:00) quantity=8');
  });

  it('summarises every event name in one line, without newlines', function () {
    for (const name of NAMES) {
      const s = summarize(exampleEvent(name, T), 0);
      expect(s, name).to.not.equal('');
      expect(s, name).to.not.include('\n');
    }
  });

  it('summarises a daily aggregate by what it counts and its first numeric fields', function () {
    const agg = aggregateDay([exampleEvent('HostOsInfo', T, 'a'), exampleEvent('HostOsInfo', T, 'b')], '2026-11-24')[0];
    expect(agg).to.not.equal(undefined);
    if (!agg) return;
    expect(summarize(agg)).to.match(/^of=HostOsInfo day=2026-11-24 count=2 cpuCount=4 diskPressure=0 memoryPressure=0 \+3 more$/);
    const inventories = [2, 4].map((nodes, i) => buildEvent({ name: 'ControlPlaneInventory', cluster: EXAMPLE_CLUSTER, time: T, sourceKey: `i${i}`, data: { ...EXAMPLE_DATA.ControlPlaneInventory, nodes } }));
    const inventoryAgg = aggregateDay(inventories, '2026-11-24')[0];
    expect(inventoryAgg && summarize(inventoryAgg)).to.include('nodes=2..4(avg 3)');
  });

  it('cuts long messages so one row stays one line', function () {
    const e = buildEvent({ name: 'HostError', cluster: EXAMPLE_CLUSTER, time: T, sourceKey: 'x', data: { ...EXAMPLE_DATA.HostError, message: 'x'.repeat(500) } });
    expect(summarize(e).length).to.be.lessThan(140);
  });
});

describe('the events table', function () {
  const events: DcpEvent[] = [
    exampleEvent('ControlPlaneInventory', new Date('2026-11-25T20:03:04.000Z')),
    exampleEvent('HostOsInfo', new Date('2026-11-25T20:03:05.000Z'), 'n1'),
    exampleEvent('HostOsInfo', new Date('2026-11-25T20:03:05.000Z'), 'n2'),
    exampleEvent('CoreUsage', new Date('2026-11-25T21:00:00.000Z')),
  ];

  it('has the columns TIME, CATEGORY, NAME, ID, SUMMARY, aligned, with local times', function () {
    const lines = renderEventsTable(events, { offsetMinutes: CET }).split('\n');
    expect(lines[0]?.split(/\s{2,}/)).to.deep.equal(['TIME', 'CATEGORY', 'NAME', 'ID', 'SUMMARY']);
    const at = ['CATEGORY', 'NAME', 'ID', 'SUMMARY'].map((h) => lines[0]?.indexOf(h) ?? -1);
    for (const line of lines.slice(1, 5)) {
      for (const col of at) {
        expect(line[col - 1], line).to.equal(' ');
        expect(line[col], line).to.not.equal(' ');
      }
    }
    expect(lines[1]?.startsWith('2026-11-25 21:03:04  controlPlane  ControlPlaneInventory  ')).to.equal(true);
    expect(lines[1]).to.include(events[0]?.id.slice(0, 12));
  });

  it('ends with the count per category, in the policy order, and the time zone', function () {
    const out = renderEventsTable(events, { offsetMinutes: CET });
    const footer = out.trimEnd().split('\n').at(-1);
    expect(footer).to.equal('4 events · hostOs 2 · controlPlane 1 · billing 1 · times in UTC+01:00');
  });

  it('says when --limit left older events out', function () {
    const footer = renderEventsTable(events.slice(-2), { offsetMinutes: 0, truncatedAt: 2 }).trimEnd().split('\n').at(-1);
    expect(footer).to.match(/^newest 2 events shown \(--limit 2\); older ones match too · /);
  });

  it('says so in words when nothing matches', function () {
    expect(renderEventsTable([], { filters: 'category hostOs, the last 1h', storeEvents: 12 })).to.equal('No events match category hostOs, the last 1h (the store holds 12 events).\n');
  });

  it('says when there are no daily aggregates yet and why', function () {
    expect(renderEventsTable([], { aggregates: true })).to.match(/^No daily aggregates yet: the store writes them after each finished UTC day/);
  });

  it('fits a narrow terminal by cutting the summary', function () {
    for (const line of renderEventsTable(events, { offsetMinutes: 0, maxWidth: 100 }).split('\n')) expect([...line].length).to.be.at.most(100);
  });
});

describe('the events JSON', function () {
  let dir: string;

  beforeEach(async function () {
    dir = await mkdtemp(join(tmpdir(), 'dcp-cli-events-'));
  });

  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('is one JSON array whose lines are the stored records byte for byte', async function () {
    const now = Date.now();
    const events = NAMES.map((n, i) => exampleEvent(n, new Date(now - (NAMES.length - i) * 1000)));
    const writer = await EventStore.open({ dataDir: dir });
    await writer.append(events);
    await writer.close();

    const reader = await EventStore.open({ dataDir: dir, readOnly: true });
    const out = renderEventsJson(await reader.read());
    await reader.close();

    expect(JSON.parse(out)).to.deep.equal(events);
    const stored: string[] = [];
    for (const f of await readdir(join(dir, 'raw'))) {
      // A record is "<crc32> <json>\n": the JSON is everything after the first space.
      for (const line of (await readFile(join(dir, 'raw', f), 'utf8')).split('\n')) if (line) stored.push(line.slice(line.indexOf(' ') + 1));
    }
    const lines = out.split('\n');
    expect(lines[0]).to.equal('[');
    expect(lines.slice(1, -2).map((l) => l.replace(/,$/, ''))).to.deep.equal(stored);
    expect(lines.at(-2)).to.equal(']');
  });

  it('is an empty array when nothing matches', function () {
    expect(renderEventsJson([])).to.equal('[]\n');
  });
});
