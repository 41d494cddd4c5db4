// A full data directory (a real size-limited tmpfs): StoreWritable False, /readyz failing `store`, a failure count; all recovers when space returns.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { cluster, type TestCluster } from './harness.js';
import { killAllOperators, OperatorProcess, waitFor } from './operator-process.js';
import { fill, policyCondition, type PolicyCondition, policyYaml } from './pipeline-helpers.js';

const POLICY = policyYaml({ categories: { controlPlane: { intervalSeconds: 10 } } });

describe('dcp run on a full data directory', function () {
  this.timeout(240_000);
  let c: TestCluster;
  let mount: string;
  let mounted = false;
  let op: OperatorProcess | undefined;

  before(async function () {
    mount = mkdtempSync(join(tmpdir(), 'dcp-e2e-full-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mount], { stdio: 'pipe' });
      mounted = true;
    } catch (err) {
      // NOTE: mounting needs CAP_SYS_ADMIN; on a machine without it there is no honest full disk to test with.
      console.log(`      cannot mount a tmpfs here (${String(err).split('\n')[0]}): skipped`);
      this.skip();
    }
    c = cluster();
    await c.resetPolicy();
    expect((await c.apply(POLICY)).code).to.equal(0);
  });

  after(async function () {
    // The operator must be gone (its files closed) before the tmpfs can be unmounted.
    await op?.stop('SIGKILL');
    killAllOperators();
    if (mounted) execFileSync('umount', [mount]);
    rmdirSync(mount);
    await c?.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
  });

  it('says so in StoreWritable, /readyz and dcp_store_write_failures_total, and recovers by itself when space returns', async function () {
    const operator = new OperatorProcess(c.kubeconfigPath, [], mount);
    op = operator;
    await operator.started();
    const storeWritable = (): Promise<PolicyCondition | undefined> => policyCondition(c, 'StoreWritable');
    await waitFor(async () => (await storeWritable())?.status === 'True', 60_000, 'StoreWritable True', 500);
    expect(await operator.ready()).to.equal(true);

    const filler = join(mount, 'filler');
    fill(filler);
    let seen: PolicyCondition | undefined;
    // The inventory collector appends every 10 s; once the partition's last tmpfs page is used up, an append hits ENOSPC.
    await waitFor(async () => (seen = await storeWritable())?.status === 'False', 90_000, 'StoreWritable False', 500);
    expect(seen?.reason).to.equal('NoSpace');
    expect(seen?.message).to.match(/^writes to the data directory fail since \S+Z: ENOSPC: no space left on device/);
    expect((await policyCondition(c, 'Ready'))).to.include({ status: 'False', reason: 'ConditionsFailing' });
    const readyz = await operator.get('health', '/readyz?verbose');
    expect(readyz.status).to.equal(503);
    expect(readyz.text).to.match(/\[-\]store failed: writes fail \(ENOSPC\): ENOSPC: no space left on device/);
    expect(await operator.metric('dcp_store_write_failures_total', 'reason="ENOSPC"')).to.be.at.least(1);
    expect(operator.exitCode, 'a full disk does not stop the operator').to.equal(undefined);

    rmSync(filler);
    await waitFor(async () => (seen = await storeWritable())?.status === 'True', 60_000, 'StoreWritable True again', 500);
    await waitFor(() => operator.ready(), 30_000, '/readyz 200 again');
    expect((await policyCondition(c, 'Ready'))?.status).to.equal('True');
    expect(operator.hasLog('store: write failed')).to.equal(true);
    const { code } = await operator.stop();
    expect(code).to.equal(0);
    expect(operator.logs.filter((l) => l.level === 'raw')).to.deep.equal([]);
  });
});
