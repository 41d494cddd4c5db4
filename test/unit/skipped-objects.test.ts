// Skipped objects: every one counted by resource, a Warning Event on the object within a per-object and a global limit, the name nowhere else.
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { RecordedEvent } from '../../src/kube/recorder.js';
import type { Log } from '../../src/observability/log.js';
import { SkippedObjects, type SkippedObject } from '../../src/runtime/skipped-objects.js';

const MIN = 60_000;

function world(options: { canRecord?: () => boolean } = {}) {
  let now = 1_000_000;
  const registry = new Registry();
  const recorded: RecordedEvent[] = [];
  const logged: unknown[] = [];
  const log: Log = { debug: () => undefined, info: () => undefined, warn: (m, meta) => void logged.push([m, meta]), error: () => undefined };
  const skipped = new SkippedObjects({
    registry,
    log,
    now: () => now,
    record: (e) => {
      recorded.push(e);
      return Promise.resolve();
    },
    perObjectIntervalMs: 10 * MIN,
    burst: 5,
    eventsPerMinute: 2,
    ...options,
  });
  const count = async (resource: string): Promise<number> => (await registry.getSingleMetric('dcp_objects_skipped_total')?.get())?.values.find((v) => v.labels['resource'] === resource)?.value ?? 0;
  return { skipped, recorded, logged, registry, count, advance: (ms: number) => void (now += ms) };
}

const secret = (name: string, uid = `${name.length}0000000-0000-4000-8000-000000000000`): SkippedObject => ({
  resource: 'secrets',
  kind: 'Secret',
  apiVersion: 'v1',
  // A list item: no kind, no apiVersion.
  object: { metadata: { name, namespace: 'kube-system', uid } },
  reason: 'UnreadableCertificate',
  note: 'tls.crt holds no PEM certificate',
});

describe('skipped objects', function () {
  it('counts every skip by resource and records a Warning Event on the object, by kind, namespace, name and UID', async function () {
    const w = world();
    w.skipped.report(secret('web-tls'));
    w.skipped.report({ resource: 'certificatesigningrequests', kind: 'CertificateSigningRequest', apiVersion: 'certificates.k8s.io/v1', key: 'csr-42', uid: 'u-42', reason: 'UnreadableCertificate', note: 'bad' });
    expect(await w.count('secrets')).to.equal(1);
    expect(await w.count('certificatesigningrequests')).to.equal(1);
    expect(w.recorded).to.deep.equal([
      {
        regarding: { apiVersion: 'v1', kind: 'Secret', name: 'web-tls', namespace: 'kube-system', uid: '70000000-0000-4000-8000-000000000000' },
        type: 'Warning',
        reason: 'UnreadableCertificate',
        action: 'Collect',
        note: 'dcp-operator skipped this object: tls.crt holds no PEM certificate',
      },
      {
        regarding: { apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', name: 'csr-42', uid: 'u-42' },
        type: 'Warning',
        reason: 'UnreadableCertificate',
        action: 'Collect',
        note: 'dcp-operator skipped this object: bad',
      },
    ]);
  });

  it('names the object only in the Event: the metric has the resource, the log line the UID', async function () {
    const w = world();
    w.skipped.report(secret('payroll-db-tls'));
    expect(await w.registry.metrics()).to.not.contain('payroll');
    expect(JSON.stringify(w.logged)).to.not.contain('payroll');
    expect(JSON.stringify(w.logged)).to.contain('0000-4000-8000');
  });

  it('records one Event per object and reason per interval, however often the object is seen, and counts each sighting', async function () {
    const w = world();
    for (let i = 0; i < 10; i++) w.skipped.report(secret('web-tls'));
    expect(w.recorded).to.have.length(1);
    expect(await w.count('secrets')).to.equal(10);
    w.advance(10 * MIN);
    w.skipped.report(secret('web-tls'));
    expect(w.recorded).to.have.length(2);
  });

  it('records at most a burst of Events for a flood of bad objects, then a few a minute', function () {
    const w = world();
    for (let i = 0; i < 100; i++) w.skipped.report(secret(`bad-${i}`, `uid-${i}`));
    expect(w.recorded).to.have.length(5);
    expect(w.skipped.suppressed).to.equal(95);
    w.advance(MIN);
    for (let i = 100; i < 200; i++) w.skipped.report(secret(`bad-${i}`, `uid-${i}`));
    expect(w.recorded).to.have.length(7);
  });

  it('only counts and logs on a replica that may not write (a standby)', async function () {
    const w = world({ canRecord: () => false });
    w.skipped.report(secret('web-tls'));
    expect(w.recorded).to.deep.equal([]);
    expect(await w.count('secrets')).to.equal(1);
    expect(w.logged).to.have.length(1);
  });

  it('takes the name from the cache key when the object has none, and records nothing for an object with no name at all', function () {
    const w = world();
    w.skipped.report({ resource: 'pods', kind: 'Pod', apiVersion: 'v1', object: { metadata: {} }, key: 'apps/web-0', reason: 'MalformedObject', note: 'no uid' });
    w.skipped.report({ resource: 'pods', kind: 'Pod', apiVersion: 'v1', object: 'garbage', reason: 'MalformedObject', note: 'no uid' });
    expect(w.recorded.map((e) => e.regarding)).to.deep.equal([{ apiVersion: 'v1', kind: 'Pod', name: 'web-0', namespace: 'apps' }]);
  });

  it('shares one counter between reporters on one registry', async function () {
    const registry = new Registry();
    new SkippedObjects({ registry }).report(secret('a'));
    new SkippedObjects({ registry }).report(secret('b'));
    const metric = await registry.getSingleMetric('dcp_objects_skipped_total')?.get();
    expect(metric?.values.map((v) => v.value)).to.deep.equal([2]);
  });
});
