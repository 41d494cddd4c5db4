// Fault scenario: the data directory full (a size-limited tmpfs), read-only (a read-only bind mount over it) and deleted under the running operator; each shows in logs, status and metrics, collection resumes, nothing acknowledged is lost.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { cluster, needsLocalControlPlane, type TestCluster } from '../e2e/harness.js';
import { type OperatorProcess, waitFor } from '../e2e/operator-process.js';
import { condition, fill, getPolicy, policyCondition, type PolicyCondition, Receiver, storeIds } from '../e2e/pipeline-helpers.js';
import { between, drainToSink, FaultScene, Peaks, reportDrained, ROUNDS, SEED, seeded, sleep } from './campaign.js';

export type DiskFault = 'full' | 'readOnly' | 'deleted';
const FAULTS: readonly DiskFault[] = ['full', 'readOnly', 'deleted'];

/** What each fault must show: the StoreWritable reason, the failure metric's reason label and what a warning or error log says. */
const SIGNS: Readonly<Record<DiskFault, { reason: string; errno: string; log: RegExp }>> = {
  // An append or a cursor write (whichever needs a new page first) fails.
  full: { reason: 'NoSpace', errno: 'ENOSPC', log: /ENOSPC: no space left on device/ },
  // Cursor writes (a new file each) fail; the open partition still takes appends through its descriptor.
  readOnly: { reason: 'ReadOnlyFilesystem', errno: 'EROFS', log: /EROFS: read-only file system/ },
  deleted: { reason: 'DataDirectoryMissing', errno: 'ENOENT', log: /the data directory was deleted under the running operator/ },
};

const run = (cmd: string, args: string[]): void => void execFileSync(cmd, args, { stdio: 'pipe' });

/** Injects a fault into the data directory and returns how to undo it (nothing to undo for a deletion: the operator recreates it). */
function inject(fault: DiskFault, dir: string): () => void {
  switch (fault) {
    case 'full': {
      const filler = join(dir, 'filler');
      fill(filler);
      return () => rmSync(filler);
    }
    case 'readOnly':
      // NOTE: `mount -o remount,ro` is refused (EBUSY) while the operator holds its partition open for writing;
      // a read-only bind mount laid over the directory fails every new file and rename with EROFS instead.
      run('mount', ['--bind', dir, dir]);
      run('mount', ['-o', 'remount,bind,ro', dir]);
      // Lazily: a read the operator has open through the bind mount (a delivery reading a partition) would make a
      // plain umount fail with EBUSY; detached, that read finishes on its descriptor.
      return () => run('umount', ['--lazy', dir]);
    case 'deleted':
      // The mount point itself stays (it cannot go while mounted); everything in it goes, as with `rm -rf <dir>/*`.
      for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true, force: true });
      return () => undefined;
  }
}

describe('faults: the data directory full, read-only and deleted', function () {
  this.timeout(120_000 + ROUNDS * 150_000);
  const random = seeded(SEED + 5);
  let c: TestCluster;
  let op: OperatorProcess | undefined;
  let receiver: Receiver | undefined;
  let scene: FaultScene;
  let mount = '';
  let mounted = false;

  before(async function () {
    c = cluster();
    needsLocalControlPlane(this, 'kwok Nodes come and go under churn');
    mount = mkdtempSync(join(tmpdir(), 'dcp-faults-disk-'));
    try {
      run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mount]);
      mounted = true;
    } catch (err) {
      // NOTE: mounting needs CAP_SYS_ADMIN; without it there is no honest full or read-only disk to test with.
      console.log(`      cannot mount a tmpfs here (${String(err).split('\n')[0]}): skipped`);
      this.skip();
    }
    scene = new FaultScene(c, `faults-disk-${c.runId}`, 105);
    await scene.create();
    receiver = await Receiver.start();
    op = await scene.collectInto(receiver.url(), { dataDir: mount });
  });

  after(async function () {
    await scene?.cleanup([op], receiver);
    // A bind mount left by a failed round lies over the tmpfs: take both off.
    while (mounted) {
      try {
        run('umount', [mount]);
      } catch {
        mounted = false;
      }
    }
    if (mount) rmdirSync(mount);
  });

  it(`shows each of ${ROUNDS} disk faults in logs, StoreWritable and metrics, resumes, and loses nothing acknowledged (seed ${SEED})`, async function () {
    const operator = op as OperatorProcess;
    const { churn } = scene;
    const peaks = new Peaks();
    const injected: DiskFault[] = [];
    const offset = Math.floor(random() * FAULTS.length);
    const storeWritable = (): Promise<PolicyCondition | undefined> => policyCondition(c, 'StoreWritable');
    churn.start();
    for (let round = 1; round <= ROUNDS; round++) {
      await sleep(between(random, 500, 3000));
      // Every kind comes up once before any repeats, so even the 2-round smoke sees two kinds.
      const fault = FAULTS[(round - 1 + offset) % FAULTS.length] ?? 'full';
      const sign = SIGNS[fault];
      injected.push(fault);
      const acknowledged = await storeIds(mount);
      const failuresBefore = (await operator.metric('dcp_store_write_failures_total', `reason="${sign.errno}"`)) ?? 0;
      const logsBefore = operator.logs.length;
      const undo = inject(fault, mount);
      let seen: PolicyCondition | undefined;
      try {
        // Read together: Ready must say ConditionsFailing while StoreWritable is False.
        await waitFor(
          async () => {
            const policy = await getPolicy(c);
            seen = condition(policy, 'StoreWritable');
            return seen?.status === 'False' && seen.reason === sign.reason && condition(policy, 'Ready')?.reason === 'ConditionsFailing';
          },
          90_000,
          `StoreWritable False (${sign.reason}) and Ready False (ConditionsFailing) after ${fault}`,
          250,
        ).catch((err: unknown) => {
          throw new Error(`${String(err)}; last StoreWritable: ${JSON.stringify(seen)}; operator logs since: ${JSON.stringify(operator.logs.slice(logsBefore).filter((l) => l.level !== 'debug').slice(-8))}`);
        });
        expect(await operator.metric('dcp_store_write_failures_total', `reason="${sign.errno}"`)).to.be.greaterThan(failuresBefore);
        // NOTE: the metric and the status can be read before the log line has come through the operator's stdout (a
        // failed cursor write is logged after the sink's backlog is measured): wait for it rather than look once.
        const logged = (): boolean => operator.logs.slice(logsBefore).some((l) => (l.level === 'warn' || l.level === 'error') && sign.log.test(JSON.stringify(l)));
        await waitFor(logged, 15_000, `a warning or error log matching ${String(sign.log)} after ${fault}`, 100);
        expect(operator.exitCode, `the operator survives ${fault}`).to.equal(undefined);
      } finally {
        undo();
      }
      const healedAt = Date.now();
      // Resumed: StoreWritable True again, something new stored, and everything acknowledged before the fault kept and delivered.
      await waitFor(async () => (await storeWritable())?.status === 'True', 90_000, `StoreWritable True after ${fault}`, 250);
      const atHeal = await storeIds(mount);
      await waitFor(async () => [...(await storeIds(mount))].some((id) => !atHeal.has(id)), 60_000, `a new event stored after ${fault}`, 500);
      const stored = await storeIds(mount);
      const gone = [...acknowledged].filter((id) => !stored.has(id));
      expect(gone, `events acknowledged before ${fault} and no longer in the store`).to.deep.equal([]);
      await waitFor(() => [...acknowledged].every((id) => receiver?.ids().has(id)), 60_000, `every event acknowledged before ${fault} delivered`, 250);
      peaks.recovered(Date.now() - healedAt);
      peaks.observe(operator.child.pid ?? 0);
      console.log(`      round ${round}: ${fault}: StoreWritable ${seen?.reason}: ${seen?.message?.slice(0, 160) ?? ''}`);
    }
    await churn.stop();
    const accepted = () => ({ deliveries: receiver?.events().length ?? 0, ids: receiver?.ids() ?? new Set<string>() });
    const drained = await drainToSink(mount, accepted);
    reportDrained('disk', injected.length, churn, drained, accepted(), peaks);
    const unknown = (receiver?.events() ?? []).filter((e) => !drained.stored.has(e.id));
    console.log(`      faults injected: ${injected.join(', ')}; delivered but not in the store: ${new Set(unknown.map((e) => e.id)).size} ${JSON.stringify(unknown.slice(0, 5).map((e) => [e.name, e.time, e.id]))}`);
    expect(drained.lost, 'stored events the sink never accepted').to.deep.equal([]);
  });
});
