// A paused kube-apiserver (SIGSTOP): /readyz and APIServerResponsive say so within seconds; after SIGCONT the watches deliver again at once.
import { expect } from 'chai';
import { cluster, RUN_LABEL, type TestCluster } from './harness.js';
import { killAllOperators, OperatorProcess, waitFor } from './operator-process.js';
import { policyCondition, policyYaml } from './pipeline-helpers.js';

const POLICY = policyYaml({});

const STALL_TIMEOUT_S = 4;

describe('dcp run with a paused API server', function () {
  this.timeout(180_000);
  let c: TestCluster;
  let pid = 0;
  let stopped = false;

  before(async function () {
    c = cluster();
    if (!c.name) {
      console.log('      needs a cluster the harness started (its kube-apiserver pid), not E2E_KUBECONFIG: skipped');
      this.skip();
    }
    pid = c.apiServerPid();
    await c.resetPolicy();
    expect((await c.apply(POLICY)).code).to.equal(0);
  });

  after(async function () {
    // Never leave the shared control plane paused, whatever failed.
    if (stopped) process.kill(pid, 'SIGCONT');
    killAllOperators();
    if (c.name) {
      await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
      await c.kubectl(['delete', 'nodes', '-l', `${RUN_LABEL}=${c.runId}`, '--wait=false']);
    }
  });

  it('fails /readyz and sets APIServerResponsive False within seconds, and the watches deliver again after SIGCONT', async function () {
    const op = new OperatorProcess(c.kubeconfigPath, ['--apiserver-stall-timeout', `${STALL_TIMEOUT_S}s`]);
    await op.started();
    await waitFor(async () => (await policyCondition(c, 'APIServerResponsive'))?.status === 'True', 60_000, 'APIServerResponsive True', 500);
    await waitFor(() => op.ready(), 30_000, '/readyz 200');

    process.kill(pid, 'SIGSTOP');
    stopped = true;
    const pausedAt = Date.now();
    await waitFor(async () => (await op.get('health', '/readyz?verbose')).status === 503, 60_000, '/readyz 503 while the API server is paused', 200);
    const detectedMs = Date.now() - pausedAt;
    console.log(`      stall noticed ${(detectedMs / 1000).toFixed(1)} s after SIGSTOP (threshold ${STALL_TIMEOUT_S} s)`);
    const readyz = await op.get('health', '/readyz?verbose');
    expect(readyz.text).to.match(new RegExp(`\\[-\\]apiserver failed: no answer from the API server for more than ${STALL_TIMEOUT_S}s`));
    expect(await op.metric('dcp_apiserver_responsive')).to.equal(0);
    expect(op.hasLog('API server stalled: no answer')).to.equal(true);
    // Paused well past the threshold, as the report's 90 s outage, shortened.
    await new Promise((r) => setTimeout(r, 3 * STALL_TIMEOUT_S * 1000));
    process.kill(pid, 'SIGCONT');
    stopped = false;

    await waitFor(() => op.ready(), 60_000, '/readyz 200 after SIGCONT', 200);
    expect(await op.metric('dcp_apiserver_responsive')).to.equal(1);
    // The status could not be written while the server slept; the transition is in its Events.
    await waitFor(async () => (await policyCondition(c, 'APIServerResponsive'))?.status === 'True', 60_000, 'APIServerResponsive True again', 500);
    await waitFor(
      async () => (await c.kubectlOk(['get', 'events', '-A', '--field-selector', 'reason=APIServerResponsiveFalse', '-o', 'name'])).trim() !== '',
      60_000,
      'a Warning Event for APIServerResponsive False',
      500,
    );
    // Watches deliver at once after the pause (not after the 5-10 minute watch stall timeout).
    const before = (await op.metric('dcp_watch_cache_objects', 'resource="nodes"')) ?? 0;
    await c.createNodes([{ name: `stall-${c.runId}`, cpu: '2' }]);
    await waitFor(async () => ((await op.metric('dcp_watch_cache_objects', 'resource="nodes"')) ?? 0) === before + 1, 30_000, 'the new Node in the cache', 200);
    expect(op.exitCode).to.equal(undefined);
    const { code } = await op.stop();
    expect(code).to.equal(0);
    expect(op.logs.filter((l) => l.level === 'raw')).to.deep.equal([]);
  });
});
