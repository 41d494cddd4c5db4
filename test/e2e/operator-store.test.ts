// The leader cannot open its event store: the policy says why (Ready False, StoreUnavailable), a metric counts it, and it recovers by itself.
import { mkdirSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { cluster, type TestCluster } from './harness.js';
import { killAllOperators, OperatorProcess, waitFor } from './operator-process.js';
import { policyCondition, type PolicyCondition, policyYaml } from './pipeline-helpers.js';

const POLICY = policyYaml({});

describe('dcp run when the store cannot be opened while leading', function () {
  this.timeout(120_000);
  let c: TestCluster;
  let dataDir: string;

  before(async function () {
    c = cluster();
    await c.resetPolicy();
    expect((await c.apply(POLICY)).code).to.equal(0);
    dataDir = mkdtempSync(join(tmpdir(), 'dcp-e2e-store-'));
  });

  after(async function () {
    killAllOperators();
    await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('sets Ready False with the reason, counts dcp_store_open_failures_total, and collects once the directory is fixed', async function () {
    // The directory passes the start-up checks (it exists and is writable), but raw/ is a file: mkdir fails at open.
    writeFileSync(join(dataDir, 'raw'), 'in the way\n');
    const op = new OperatorProcess(c.kubeconfigPath, [], dataDir);
    await op.started();
    let seen: PolicyCondition | undefined;
    await waitFor(async () => (seen = await policyCondition(c, 'Ready'))?.reason === 'StoreUnavailable', 30_000, 'Ready False with reason StoreUnavailable');
    expect(seen?.status).to.equal('False');
    expect(seen?.message).to.match(/^the event store at .* cannot be opened: EEXIST: file already exists, mkdir '.*\/raw' \(EEXIST\); retrying$/);
    expect(await op.metric('dcp_store_open_failures_total', 'reason="EEXIST"')).to.be.at.least(1);
    expect(op.hasLog('store cannot be opened; retrying')).to.equal(true);
    expect(op.exitCode, 'the leader retries instead of exiting').to.equal(undefined);

    rmSync(join(dataDir, 'raw'));
    mkdirSync(join(dataDir, 'raw'));
    await waitFor(async () => (seen = await policyCondition(c, 'Ready'))?.status === 'True', 90_000, 'Ready True once the store opens', 500);
    expect(op.hasLog('collection started')).to.equal(true);
    const { code } = await op.stop();
    expect(code).to.equal(0);
    // Nothing but JSON on stderr, start to stop.
    expect(op.logs.filter((l) => l.level === 'raw')).to.deep.equal([]);
  });
});
