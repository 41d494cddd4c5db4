// Fault scenario: the leader of two, then three, replicas SIGKILLed, or SIGSTOPped past its lease and resumed. One leader after each handover; a resumed ex-leader writes nothing once its lease is taken; billing contiguous across every replica's store; nothing acknowledged lost.
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { expect } from 'chai';
import type { DcpEvent } from '../../src/api/event.js';
import { KubeClient } from '../../src/kube/client.js';
import { LeaseClient } from '../../src/kube/lease.js';
import { CursorStore } from '../../src/sinks/cursor.js';
import { EventStore, type StorePosition, type Stream } from '../../src/store/event-store.js';
import { cluster, needsLocalControlPlane, type TestCluster } from '../e2e/harness.js';
import { OperatorProcess, waitFor } from '../e2e/operator-process.js';
import { applyOk, policyYaml, readStore, readyAtGeneration, Receiver, REGION, storeIds } from '../e2e/pipeline-helpers.js';
import { between, billingFaults, FaultScene, Peaks, reportDrained, ROUNDS, SEED, seeded, sleep } from './campaign.js';

/** Short, so a handover takes seconds; the ratios are the defaults' (15/10/2). */
const LEASE_FLAGS = ['--leader-elect', '--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '1s'];
const SINK = 'regional';
const NAMESPACE = 'dcp-system';
const LEASE = 'dcp-operator';

/** One replica slot: its own data directory (a StatefulSet's volume), and the process running on it now. */
class Replica {
  generation = 0;
  process: OperatorProcess;
  paused = false;

  constructor(
    readonly slot: number,
    private readonly kubeconfig: string,
  ) {
    this.dataDir = mkdtempSync(join(tmpdir(), `dcp-faults-leader-r${slot}-`));
    this.process = this.spawn();
  }

  readonly dataDir: string;

  get identity(): string {
    return `leader-r${this.slot}-g${this.generation}`;
  }

  get pid(): number {
    return this.process.child.pid ?? 0;
  }

  /** A new process on the same data directory, as a StatefulSet restarts a killed Pod. */
  replace(): void {
    this.generation++;
    this.process = this.spawn();
  }

  private spawn(): OperatorProcess {
    return new OperatorProcess(this.kubeconfig, [...LEASE_FLAGS, '--identity', `leader-r${this.slot}-g${this.generation}`], this.dataDir);
  }

  async leads(): Promise<boolean> {
    return !this.paused && this.process.exitCode === undefined && this.process.metricsPort > 0 && (await this.process.metric('dcp_leader_is_leader')) === 1;
  }
}

/** Which of `pids` owns the TCP connection whose local port is `port` (Linux /proc), looked up while it is open. */
function portOwner(port: number, pids: ReadonlyMap<number, string>): string | undefined {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let inode: string | undefined;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(hex) === true) inode = cols[9];
    }
    if (inode !== undefined) break;
  }
  if (inode === undefined) return undefined;
  for (const [pid, name] of pids) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return name;
        } catch {
          // closed between readdir and readlink
        }
      }
    } catch {
      // the process is gone
    }
  }
  return undefined;
}

/**
 * Every file under a data directory with its size and modification time: any append, cursor move
 * or sweep changes it. Left out: the store's LOCK file (a term that ends closes its store and
 * removes it, which writes no data) and `.tmp` scratch files (never read: a save paused after
 * writing one is refused by the fence before it replaces anything).
 */
function fingerprint(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if ((d === dir && entry.name === 'LOCK') || entry.name.endsWith('.tmp')) continue;
      if (entry.isDirectory()) walk(p);
      else {
        const s = statSync(p);
        out.push(`${relative(dir, p)} ${s.size} ${s.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out.sort();
}

/** Events stored after the sink's cursor, by id: acknowledged, durable, delivered when this replica leads again. */
async function queuedEvents(dataDir: string): Promise<Map<string, DcpEvent>> {
  const cursor = await new CursorStore(dataDir).load(SINK);
  const store = await EventStore.open({ dataDir, readOnly: true });
  const ids = new Map<string, DcpEvent>();
  try {
    for (const stream of ['raw', 'aggregates'] as const satisfies readonly Stream[]) {
      let at: StorePosition | undefined = cursor[stream];
      for (;;) {
        const { records, next } = await store.readAfter(stream, at, 1000);
        for (const r of records) ids.set(r.event.id, r.event);
        if (records.length === 0) break;
        at = next;
      }
    }
  } finally {
    await store.close();
  }
  return ids;
}

/** A Lease time (RFC 3339 with microseconds) in epoch ms. */
const leaseMs = (t: string | undefined): number => Date.parse((t ?? '').replace(/(\.\d{3})\d*Z$/, '$1Z'));

describe('faults: the leader of two, then three, replicas SIGKILLed and SIGSTOPped past its lease', function () {
  const kills = ROUNDS;
  const pauses = Math.max(1, Math.round(ROUNDS / 4));
  this.timeout(150_000 + (kills + pauses) * 60_000);
  const random = seeded(SEED + 3);
  let c: TestCluster;
  let receiver: Receiver;
  let scene: FaultScene;
  let leases: LeaseClient;
  const replicas: Replica[] = [];

  const holder = async (): Promise<{ identity: string; acquiredAt: number }> => {
    const lease = await leases.get();
    return { identity: lease?.record.holderIdentity ?? '', acquiredAt: leaseMs(lease?.record.acquireTime) };
  };

  /** The one replica that leads: the Lease names it, it says so on /metrics, and no other running replica does. */
  const soleLeader = async (): Promise<Replica | undefined> => {
    const { identity } = await holder();
    const leading = [];
    for (const r of replicas) if (await r.leads()) leading.push(r);
    return leading.length === 1 && leading[0]?.identity === identity ? leading[0] : undefined;
  };

  before(async function () {
    c = cluster();
    needsLocalControlPlane(this, 'kwok Nodes come and go under churn');
    scene = new FaultScene(c, `faults-leader-${c.runId}`, 103);
    await scene.create();
    // A meter state left by an earlier test (hourly intervals) would hold back the 10 s intervals checked here;
    // a Lease held by an earlier test's identity would delay the first leader by its duration.
    await c.kubectl(['-n', NAMESPACE, 'delete', 'configmap', 'dcp-billing', '--ignore-not-found']);
    await c.kubectl(['-n', NAMESPACE, 'delete', 'lease', LEASE, '--ignore-not-found']);
    leases = new LeaseClient(new KubeClient(c.kc), NAMESPACE, LEASE);
    receiver = await Receiver.start();
    receiver.from = (port) => portOwner(port, new Map(replicas.map((r) => [r.pid, r.identity])));
    for (const slot of [1, 2]) replicas.push(new Replica(slot, c.kubeconfigPath));
    await Promise.all(replicas.map((r) => r.process.started()));
    await applyOk(
      c,
      policyYaml({
        categories: { controlPlane: { intervalSeconds: 10 }, billing: { intervalSeconds: 10 } },
        export: { sinks: [{ name: SINK, type: 'http', url: receiver.url(), region: REGION }] },
      }),
    );
    await readyAtGeneration(c);
  });

  after(async function () {
    // A replica left paused by a failed round could not stop.
    for (const r of replicas) if (r.paused && r.pid > 0) process.kill(r.pid, 'SIGCONT');
    await scene?.cleanup(
      replicas.map((r) => r.process),
      receiver,
    );
    for (const r of replicas) rmSync(r.dataDir, { recursive: true, force: true });
    if (c?.owned) await c.kubectl(['-n', NAMESPACE, 'delete', 'lease', LEASE, '--ignore-not-found']);
  });

  it(`hands over to exactly one leader ${kills} times after SIGKILL and ${pauses} after SIGSTOP, and the paused leader writes nothing once its lease is taken (seed ${SEED})`, async function () {
    const { churn } = scene;
    const peaks = new Peaks();
    churn.start();
    // The pauses fall among the kills at seeded places; a third replica joins halfway.
    const plan: ('kill' | 'pause')[] = Array.from({ length: kills }, () => 'kill' as const);
    for (let i = 0; i < pauses; i++) plan.splice(between(random, 0, plan.length), 0, 'pause');
    const handovers: number[] = [];
    const timeline: string[] = [];
    let fencedWrites = 0;
    let exLeaderWrites = 0;
    /** Pauses after which the resumed ex-leader later won the lease again (a new, legitimate term). */
    let reelected = 0;
    for (const [i, fault] of plan.entries()) {
      if (i === Math.floor(plan.length / 2)) {
        const third = new Replica(3, c.kubeconfigPath);
        replicas.push(third);
        await third.process.started();
      }
      await sleep(between(random, 1500, 5000));
      let leader: Replica | undefined;
      await waitFor(async () => (leader = await soleLeader()) !== undefined, 60_000, `one leader before fault ${i + 1}`, 100);
      if (leader === undefined) throw new Error('unreachable');
      peaks.observe(leader.pid);
      const deposed = leader.identity;
      const faultAt = Date.now();
      if (fault === 'kill') {
        await leader.process.stop('SIGKILL');
        leader.replace();
      } else {
        process.kill(leader.pid, 'SIGSTOP');
        leader.paused = true;
      }
      // The handover: another replica holds the Lease and is the only one leading.
      let next: Replica | undefined;
      await waitFor(async () => (next = await soleLeader()) !== undefined && next.identity !== deposed, 60_000, `a new leader after ${fault} ${i + 1}`, 100);
      handovers.push(Date.now() - faultAt);
      peaks.recovered(Date.now() - faultAt);
      const { acquiredAt } = await holder();
      timeline.push(`${fault} ${((Date.now() - faultAt) / 1000).toFixed(1)} s (lease taken at +${((acquiredAt - faultAt) / 1000).toFixed(1)} s, ${replicas.length} replicas)`);
      if (fault === 'kill') {
        await leader.process.started();
        expect(leader.process.logs.filter((l) => l.message === 'dcp run failed'), `the replacement after kill ${i + 1}`).to.deep.equal([]);
        continue;
      }
      // SIGCONT: the resumed ex-leader finds its renew deadline long passed and must write nothing.
      const before = fingerprint(leader.dataDir);
      const stoppedBefore = leader.process.logs.filter((l) => l.message === 'stopped leading: collection closed').length;
      const resumedAt = Date.now();
      process.kill(leader.pid, 'SIGCONT');
      leader.paused = false;
      const ex = leader.process;
      await waitFor(() => ex.logs.filter((l) => l.message === 'stopped leading: collection closed').length > stoppedBefore, 30_000, 'the resumed ex-leader to stop leading');
      await sleep(2000);
      const fencedLog = ex.logs.find((l) => l.message === 'leader election' && String(l['error'] ?? '').includes('writes fenced') && Date.parse(String(l['timestamp'])) >= resumedAt);
      expect(fencedLog, 'the resumed ex-leader ended its term by the fence').to.not.equal(undefined);
      // On a loaded machine the new leader may miss its own renew deadline, and the ex-leader may then win
      // the lease again fairly: its writes from that moment are a new term's, so the checks end there.
      const relead = ex.logs.find((l) => l.message === 'leading: starting collection' && Date.parse(String(l['timestamp'])) >= resumedAt);
      const until = relead === undefined ? Infinity : Date.parse(String(relead['timestamp']));
      if (relead === undefined) expect(fingerprint(leader.dataDir), `files written by the resumed ex-leader (pause ${i + 1})`).to.deep.equal(before);
      else reelected++;
      const sentAfter = receiver.requests.filter((r) => r.from === deposed && r.at >= acquiredAt && r.at < until);
      exLeaderWrites += sentAfter.length;
      expect(sentAfter.map((r) => new Date(r.at).toISOString()), `deliveries by the ex-leader after ${new Date(acquiredAt).toISOString()}`).to.deep.equal([]);
      await waitFor(async () => (await soleLeader()) !== undefined, 60_000, `one leader after pause ${i + 1}`, 100);
      fencedWrites += (await leader.process.metric('dcp_leader_fenced_writes_total')) ?? 0;
    }
    await churn.stop();
    // One more metering interval closes, so billing has something after the last fault.
    await sleep(11_000);
    let last: Replica | undefined;
    await waitFor(async () => (last = await soleLeader()) !== undefined, 60_000, 'one leader at the end', 100);
    // The leader delivers everything in its own store (it keeps collecting: what it stores later is checked as queued below).
    let lastQueued: string[] = [];
    await waitFor(
      async () => {
        const ids = receiver.ids();
        lastQueued = last === undefined ? [] : [...(await queuedEvents(last.dataDir)).keys()].filter((id) => !ids.has(id));
        return lastQueued.length === 0;
      },
      60_000,
      'the leader to deliver its store',
      500,
    ).catch(() => undefined);
    const delivered = receiver.ids();
    const stored = new Set<string>();
    let lost: string[] = [];
    const queued = new Map<string, string>();
    for (const r of replicas) {
      const ids = await storeIds(r.dataDir);
      const waiting = await queuedEvents(r.dataDir);
      for (const id of ids) stored.add(id);
      lost = lost.concat([...ids].filter((id) => !delivered.has(id) && !waiting.has(id)));
      for (const [id, e] of waiting) if (!delivered.has(id)) queued.set(id, `${e.category}/${e.name}`);
    }
    // Billing across every replica's store: one event per interval id (a repeat of an id must be the same interval).
    const usage = new Map<string, DcpEvent>();
    const differing: string[] = [];
    let sharedIds = 0;
    for (const r of replicas) {
      for (const e of await readStore(r.dataDir, { category: 'billing' })) {
        if (e.name !== 'CoreUsage') continue;
        const seen = usage.get(e.id);
        if (seen === undefined) usage.set(e.id, e);
        else {
          sharedIds++;
          if (JSON.stringify(seen.data) !== JSON.stringify(e.data)) differing.push(e.id);
        }
      }
    }
    const billing = billingFaults([...usage.values()]);
    reportDrained('leader-handover', plan.length, churn, { stored, lost }, { deliveries: receiver.events().length, ids: delivered }, peaks);
    console.log(
      `      handover: ${kills} kills, ${pauses} pauses, max ${Math.max(...handovers)} ms, mean ${Math.round(handovers.reduce((a, b) => a + b, 0) / handovers.length)} ms; ` +
        `resumed ex-leaders: ${exLeaderWrites} deliveries after the takeover, ${fencedWrites} writes refused by the fence, ${reelected} re-elected later; ` +
        `billing: ${billing.intervals} intervals, ${billing.gaps.length} gaps, ${billing.overlaps.length} overlaps, ${billing.repeated.length} repeated, ${sharedIds} ids in two stores (${differing.length} differing); ` +
        `queued in standby stores: ${queued.size} (${[...new Set(queued.values())].join(', ') || 'none'})`,
    );
    console.log(`      handovers: ${timeline.join('; ')}`);
    expect(lost, 'stored events neither delivered nor queued in their store').to.deep.equal([]);
    expect(lastQueued, 'events of the last leader not delivered').to.deep.equal([]);
    expect(exLeaderWrites).to.equal(0);
    expect(billing.intervals).to.be.greaterThan(0);
    expect({ gaps: billing.gaps, overlaps: billing.overlaps, repeated: billing.repeated, differing }).to.deep.equal({ gaps: [], overlaps: [], repeated: [], differing: [] });
  });
});
