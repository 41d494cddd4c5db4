// Fault scenario: the kube-apiserver SIGSTOPped under churn (a stalled watch: connections open, nothing answers) for FAULT_STALL_S; the stall is noticed, and after SIGCONT /metrics and the policy status equal a fresh list and APIServerResponsive names the stall, the connections opened meanwhile and the open sockets stay bounded, nothing stored is lost.
import { expect } from 'chai';
import { cluster, needsLocalControlPlane, type TestCluster } from '../e2e/harness.js';
import { OperatorProcess, waitFor } from '../e2e/operator-process.js';
import { policyCondition, Receiver } from '../e2e/pipeline-helpers.js';
import { between, drainToSink, expectRecoveredInTime, FaultScene, Peaks, recovery, reportDrained, reportRound, ROUNDS, SEED, seeded, sleep, warmUp } from './campaign.js';
import { connectionBound, CountingProxy } from './counting-proxy.js';

/** How long each stall lasts: 2 minutes in `make faults`, seconds in the smoke. */
const STALL_S = Math.max(2, Number(process.env.FAULT_STALL_S ?? 8));
/** The operator's --apiserver-stall-timeout: its default 30 s, shorter when the stall itself is short. */
const STALL_TIMEOUT_S = Math.min(30, Math.max(2, Math.floor(STALL_S / 2)));

describe('faults: the API server paused (SIGSTOP) with watches open', function () {
  this.timeout(120_000 + ROUNDS * (STALL_S * 1000 + 120_000));
  const random = seeded(SEED + 5);
  let c: TestCluster;
  let op: OperatorProcess;
  let receiver: Receiver;
  let scene: FaultScene;
  let proxy: CountingProxy | undefined;
  let apiServerPid = 0;
  let paused = false;

  before(async function () {
    c = cluster();
    needsLocalControlPlane(this, 'it pauses the kube-apiserver');
    apiServerPid = c.apiServerPid();
    scene = new FaultScene(c, `faults-stall-${c.runId}`, 105);
    await scene.create();
    receiver = await Receiver.start();
    const proxied = await CountingProxy.start(c.kubeconfigPath);
    proxy = proxied.proxy;
    op = await scene.collectInto(receiver.url(), { kubeconfig: proxied.kubeconfig, args: ['--apiserver-stall-timeout', `${STALL_TIMEOUT_S}s`] });
  });

  after(async function () {
    // Never leave the control plane paused, whatever failed.
    if (paused) process.kill(apiServerPid, 'SIGCONT');
    await scene?.cleanup([op], receiver);
    await proxy?.close();
  });

  it(`notices each of ${ROUNDS} stalls of ${STALL_S} s and equals a fresh list after each (seed ${SEED})`, async function () {
    const { churn } = scene;
    const pid = op.child.pid ?? 0;
    const peaks = new Peaks();
    const counted = proxy;
    if (counted === undefined) throw new Error('no proxy');
    const { baseline, caches } = await warmUp(c, op, churn, peaks);
    for (let round = 1; round <= ROUNDS; round++) {
      await sleep(between(random, 500, 5000));
      process.kill(apiServerPid, 'SIGSTOP');
      paused = true;
      const pausedAt = Date.now();
      // Noticed: /readyz fails with the reason, and the gauge says so (the status cannot be written meanwhile).
      await waitFor(async () => (await op.get('health', '/readyz?verbose')).status === 503, STALL_S * 1000, `the stall noticed within the ${STALL_S} s pause of round ${round}`, 200);
      const detectedMs = Date.now() - pausedAt;
      expect((await op.get('health', '/readyz?verbose')).text).to.match(new RegExp(`\\[-\\]apiserver failed: no answer from the API server for more than ${STALL_TIMEOUT_S}s`));
      expect(await op.metric('dcp_apiserver_responsive')).to.equal(0);
      await sleep(Math.max(0, pausedAt + STALL_S * 1000 - Date.now()));
      const during = counted.between(pausedAt, Date.now());
      const stallMs = Date.now() - pausedAt;
      process.kill(apiServerPid, 'SIGCONT');
      const resumedAt = Date.now();
      paused = false;
      await churn.pause();
      await recovery(c, op, 60_000, { status: true });
      // The status could not be written during the pause; afterwards its condition names this stall.
      let message = '';
      await waitFor(
        async () => {
          message = (await policyCondition(c, 'APIServerResponsive'))?.message ?? '';
          const since = /it last stalled at (\S+): no answer for (\d+)s/.exec(message);
          return since !== null && Date.parse(since[1] ?? '') >= pausedAt - 5000 && Number(since[2]) >= STALL_TIMEOUT_S;
        },
        30_000,
        `APIServerResponsive to name the stall of round ${round}`,
        200,
      ).catch((err: unknown) => {
        throw new Error(`${String(err)} (message: ${message})`);
      });
      const recoveryMs = Date.now() - resumedAt;
      peaks.recovered(recoveryMs);
      const v = peaks.observe(pid);
      const bound = connectionBound(caches, stallMs);
      reportRound('api-server-stall', round, { stallMs, detectedMs, recoveryMs, connectionsWhileStalled: during.connections, bytesWhileStalled: during.bytes, bound, sockets: v.sockets, rssMb: v.rssMb });
      console.log(`      round ${round}: paused ${stallMs} ms, noticed after ${detectedMs} ms, ${during.connections} connections (${during.bytes} bytes; bound ${bound}), status and /metrics true ${recoveryMs} ms after SIGCONT, ${v.sockets} sockets`);
      expect(during.connections, `connections opened while the server was paused in round ${round}`).to.be.at.most(bound);
      expectRecoveredInTime(recoveryMs, round);
      expect(v.sockets, `open sockets after round ${round} (baseline ${baseline.sockets})`).to.be.at.most(baseline.sockets + 6);
      churn.resume();
    }
    await churn.stop();
    const accepted = () => ({ deliveries: receiver.events().length, ids: receiver.ids() });
    const drained = await drainToSink(op.dataDir, accepted);
    reportDrained('api-server-stall', ROUNDS, churn, drained, accepted(), peaks);
    expect(op.logs.filter((l) => l.message === 'API server stalled: no answer'), 'one stall logged per pause').to.have.length(ROUNDS);
    expect(drained.lost, 'stored events the sink never accepted').to.deep.equal([]);
    expect(drained.stored.size).to.be.greaterThan(0);
  });
});
