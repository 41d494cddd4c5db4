// Fault scenario: abuse. Generated invalid policies are refused at `kubectl apply` naming the field; objects at the API
// server's size limits, control characters, non-UTF-8 strings and hostile certificates are read without a crash,
// every unreadable one skipped and counted; and thousands of fuzzed objects full of planted personal data leave
// none of it in the store, the sink's bodies, the logs or /metrics. All under churn, with the operator's RSS watched.
import type * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { KubeClient } from '../../src/kube/client.js';
import { cluster, needsLocalControlPlane, RUN_LABEL, type TestCluster } from '../e2e/harness.js';
import { type OperatorProcess, waitFor } from '../e2e/operator-process.js';
import { eventObjects, MARKER, needles, nodeObject, piiCases, podObject, secretObject } from '../e2e/pii-cases.js';
import { filesUnder, findLeaks, findMarkers, getPolicy, pool, readStore, Receiver, waitForDefaultServiceAccount, type Haystack } from '../e2e/pipeline-helpers.js';
import { drainToSink, FaultScene, Peaks, recovery, report, ROUNDS, SEED, seeded } from './campaign.js';
import { hostileObjects, type HostileObject } from './hostile-objects.js';
import { invalidPolicies } from './invalid-policies.js';

/** 20 policies and 500 fuzzed objects in the smoke; 10 policies and 500 objects a round beyond it (200 and 10,000 at `make faults`' 20). */
const POLICIES = 10 * ROUNDS;
const PII_OBJECTS = ROUNDS <= 2 ? 500 : 500 * ROUNDS;
/** The operator's memory limit in the chart (deploy/chart values.yaml): its RSS must stay below it however hostile the input. */
const MEMORY_LIMIT_MB = 512;
/** A case is a Node, a Pod, two Warning Events and a Secret. */
const PII_CASES = Math.ceil(PII_OBJECTS / 5);
const SKIPPED = 'dcp_objects_skipped_total';

describe('faults: abuse (invalid policies, hostile objects, planted personal data)', function () {
  // Creating the objects takes most of it: about 0.4 s a case on a busy 2-core machine.
  this.timeout(600_000 + PII_CASES * 1000);
  const random = seeded(SEED + 4);
  let c: TestCluster;
  let scene: FaultScene;
  let receiver: Receiver;
  let op: OperatorProcess;
  const peaks = new Peaks();
  const counts = { policiesRefused: 0, objectsInjected: 0, objectsRefused: 0, skipped: 0, leaks: 0, rssBeforeMb: 0, rssAfterHostileMb: 0, rssAfterMb: 0 };
  const pid = (): number => op.child.pid ?? 0;
  const alive = (): void => {
    expect(op.exitCode, `dcp run exited (last log: ${JSON.stringify(op.logs.at(-1))})`).to.equal(undefined);
  };

  before(async function () {
    c = cluster();
    needsLocalControlPlane(this, 'kwok Nodes, protobuf writes and thousands of objects');
    scene = new FaultScene(c, `faults-abuse-${c.runId}`, 104);
    await scene.create();
    await waitForDefaultServiceAccount(c, scene.namespace);
    receiver = await Receiver.start();
  });

  after(async function () {
    await scene?.cleanup([op], receiver);
    if (c?.owned !== true) return;
    const selector = `${RUN_LABEL}=${c.runId}`;
    for (const ns of ['kube-system', 'default', 'dcp-system']) await c.kubectl(['-n', ns, 'delete', 'secrets,events,pods', '-l', selector, '--wait=false']);
    await c.kubectl(['delete', 'nodes', '-l', selector, '--wait=false']);
  });

  it(`refuses each of ${POLICIES} generated invalid policies at kubectl apply, naming the field (seed ${SEED})`, async function () {
    // No policy exists yet, so each apply is a first one and the API server validates the whole object (an apply onto
    // a live policy merges: a required field left out would stay as the live policy has it).
    expect(await getPolicy(c), 'a live policy').to.equal(undefined);
    const policies = invalidPolicies(random, POLICIES);
    const accepted: string[] = [];
    const unnamed: string[] = [];
    await pool(policies, 4, async (p) => {
      // Dry run: a policy the server wrongly took must not replace the one the operator runs on.
      const r = await c.kubectl(['apply', '--dry-run=server', '-f', '-'], p.yaml);
      if (r.code === 0) return void accepted.push(p.what);
      counts.policiesRefused++;
      const missing = p.mustName.filter((name) => !r.stderr.includes(name));
      if (missing.length > 0) unnamed.push(`${p.what}: refusal does not name ${missing.join(', ')}: ${r.stderr.trim()}`);
    });
    expect(accepted, 'invalid policies the API server took').to.deep.equal([]);
    expect(unnamed, 'refusals that do not name the field').to.deep.equal([]);
  });

  it('takes objects at the size limits, control characters, non-UTF-8 and hostile certificates without a crash, every unreadable certificate skipped and counted', async function () {
    op = await scene.collectInto(receiver.url());
    scene.churn.start();
    counts.rssBeforeMb = peaks.observe(pid()).rssMb;
    const transport = new KubeClient(c.kc);
    const objects = hostileObjects({ transport, kc: c.kc, random, namespace: scene.namespace, secretNamespace: 'kube-system', prefix: scene.namespace, label: { [RUN_LABEL]: c.runId } });
    const skippedBefore = (await op.metric(SKIPPED, 'resource="secrets"')) ?? 0;
    const wrong: string[] = [];
    for (const o of objects) {
      counts.objectsInjected++;
      const refusal = await o.create().then(
        () => undefined,
        (err: unknown) => String(err),
      );
      if (refusal !== undefined) counts.objectsRefused++;
      if (o.refusedNaming === undefined && refusal !== undefined) wrong.push(`${o.what}: refused: ${refusal.slice(0, 300)}`);
      if (o.refusedNaming !== undefined && refusal === undefined) wrong.push(`${o.what}: taken, should have been refused`);
      if (o.refusedNaming !== undefined && refusal !== undefined && !refusal.includes(o.refusedNaming)) wrong.push(`${o.what}: refusal does not name ${o.refusedNaming}: ${refusal.slice(0, 300)}`);
    }
    expect(wrong, 'objects the API server treated otherwise than expected').to.deep.equal([]);

    // Every readable certificate reported, every unreadable one counted once, and nothing else counted.
    const expectSkipped = objects.filter((o) => o.skipped === true).length;
    const fingerprints = objects.flatMap((o: HostileObject) => (o.fingerprint !== undefined ? [o.fingerprint] : []));
    let seen = { skipped: 0, reported: 0 };
    await waitFor(
      async () => {
        const reported = new Set((await readStore(op.dataDir, { name: 'CertificateStatus' })).map((e) => String(e.data.fingerprintSha256)));
        seen = { skipped: ((await op.metric(SKIPPED, 'resource="secrets"')) ?? 0) - skippedBefore, reported: fingerprints.filter((f) => reported.has(f)).length };
        return seen.skipped >= expectSkipped && seen.reported === fingerprints.length;
      },
      120_000,
      `${expectSkipped} unreadable certificates counted and ${fingerprints.length} readable ones reported`,
      500,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)} (skipped ${seen.skipped}, reported ${seen.reported})`);
    });
    counts.skipped = seen.skipped;
    expect(seen.skipped, `${SKIPPED}{resource="secrets"} increase`).to.equal(expectSkipped);
    const events = await readStore(op.dataDir);
    expect(events.filter((e) => JSON.stringify(e).includes('xxxxxxxxxxxxxxxx')), 'events carrying the padding of the big objects').to.deep.equal([]);
    expect((await op.metric('dcp_events_invalid_total')) ?? 0, 'dcp_events_invalid_total').to.equal(0);
    alive();
    counts.rssAfterHostileMb = peaks.observe(pid()).rssMb;
  });

  it(`leaks none of the values planted in ${PII_CASES * 5} fuzzed objects: store, sink bodies, logs and /metrics`, async function () {
    const started = Date.now();
    const cases = piiCases(PII_CASES, SEED);
    const core = c.core();
    const secrets = cases.map((p) => secretObject(c, p, scene.namespace));
    await pool(cases, 16, async (p) => {
      await core.createNode({ body: nodeObject(c, p, cases) });
    });
    await pool(cases, 16, async (p, i) => {
      await core.createNamespacedPod({ namespace: scene.namespace, body: podObject(c, p, scene.namespace) });
      for (const e of eventObjects(c, p, scene.namespace)) await core.createNamespacedEvent({ namespace: e.metadata.namespace ?? 'default', body: e });
      const s = secrets[i] as k8s.V1Secret;
      await core.createNamespacedSecret({ namespace: s.metadata?.namespace ?? scene.namespace, body: s });
    });
    counts.objectsInjected += cases.length * 5;
    peaks.observe(pid());
    console.log(`      created ${cases.length * 5} objects in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    // Waits grow with the cases: a few thousand Nodes take the API server and the caches a while on a busy machine.
    const limitMs = Math.max(180_000, PII_CASES * 200);

    // The caches hold every object, and everything stored reached the sink.
    await scene.churn.stop();
    peaks.recovered(await recovery(c, op, limitMs));
    await waitFor(async () => (await readStore(op.dataDir, { name: 'HostError' })).length >= cases.length, limitMs, 'a HostError per planted Node Event', 1000);
    const accepted = () => ({ deliveries: receiver.events().length, ids: receiver.ids() });
    const drained = await drainToSink(op.dataDir, accepted, limitMs);
    expect(drained.lost, 'stored events the sink never accepted').to.deep.equal([]);
    alive();
    counts.rssAfterMb = peaks.observe(pid()).rssMb;

    const haystacks: Haystack[] = [
      ...(await filesUnder(op.dataDir)),
      ...receiver.requests.map((r, i) => ({ name: `receiver body ${i}`, text: r.body })),
      { name: 'dcp run log', text: op.logs.map((l) => JSON.stringify(l)).join('\n') },
      { name: '/metrics', text: await op.metrics() },
    ];
    const planted = cases.flatMap((p, i) => needles(p, secrets[i] as k8s.V1Secret));
    const leaks = findLeaks(haystacks, planted);
    const markers = findMarkers(haystacks, MARKER, new Set(cases.map((p) => p.marker)));
    counts.leaks = leaks.length + markers.length;
    const stats = { rounds: ROUNDS, faults: counts.objectsInjected + POLICIES, churn: scene.churn.total, churnFailed: scene.churn.counts.failed };
    const delivery = { events: drained.stored.size, delivered: accepted().ids.size, lost: drained.lost.length, duplicated: accepted().deliveries - accepted().ids.size };
    report({ scenario: 'abuse', ...stats, ...delivery, maxRecoveryMs: peaks.maxRecoveryMs, maxRssMb: peaks.maxRssMb, maxSockets: peaks.maxSockets, policies: POLICIES, ...counts });
    expect(leaks.slice(0, 20).map((l) => `${l.needle.what} ${JSON.stringify(l.needle.value)} in ${l.where}`), 'planted values found').to.deep.equal([]);
    expect(markers.slice(0, 20), 'markers of planted values found').to.deep.equal([]);
    expect((await op.metric('dcp_watch_malformed_objects_total')) ?? 0, 'objects dropped by the caches (none lacked a field)').to.equal(0);
    expect(peaks.maxRssMb, 'peak RSS (MB)').to.be.below(MEMORY_LIMIT_MB);
  });
});
