// The operator's stop signal through an API-server outage: abort listeners stay flat (no leak) and Node never warns.
import { getEventListeners } from 'node:events';
import { createServer } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { Operator, operatorStop, ROOT_SIGNAL_LISTENERS } from '../../src/controllers/operator.js';
import { silentLogger } from '../../src/observability/logger.js';

/** A port nothing listens on: every request is refused, as while the API server is down. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 1;
}

function kubeconfig(port: number): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'down', server: `https://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'down', cluster: 'down', user: 'u' }],
    currentContext: 'down',
  });
  return kc;
}

async function sumOf(registry: Registry, name: string): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  return (metric?.values ?? []).reduce((sum, v) => sum + Number(v.value), 0);
}

/**
 * Runs an operator against a refused port for `ms` with retry delays of a few ms: hundreds of watch
 * restarts (over 100 per cache), which at the real 30 s cap is about an hour of outage. Returns the listener counts sampled.
 */
async function outage(leaderElect: boolean, ms: number): Promise<{ samples: number[]; restarts: number; warnings: string[] }> {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  const registry = new Registry();
  const operator = new Operator({
    kc: kubeconfig(await deadPort()),
    dataDir: '/nonexistent-never-opened',
    namespace: 'dcp-system',
    leaderElect,
    identity: 'listener-test',
    log: silentLogger(),
    registry,
    leaseDurationMs: 150,
    renewDeadlineMs: 100,
    retryPeriodMs: 20,
    watchBackoff: { initialMs: 1, maxMs: 5, jitter: 0 },
  });
  const stop = operatorStop();
  const run = operator.run(stop.signal);
  const samples: number[] = [];
  const sampler = setInterval(() => samples.push(getEventListeners(stop.signal, 'abort').length), 10);
  await new Promise((r) => setTimeout(r, ms));
  clearInterval(sampler);
  const restarts = await sumOf(registry, 'dcp_watch_restarts_total');
  stop.abort(new Error('test over'));
  await run;
  // Let a warning emitted on the last tick arrive before looking.
  await new Promise((r) => setImmediate(r));
  process.off('warning', onWarning);
  return { samples, restarts, warnings };
}

describe('operator abort listeners through an API-server outage', function () {
  this.timeout(20_000);

  for (const leaderElect of [false, true]) {
    it(`stay flat over thousands of retries (${leaderElect ? 'with' : 'without'} leader election), far below the raised limit`, async function () {
      const { samples, restarts, warnings } = await outage(leaderElect, 3000);
      expect(restarts, 'watch restarts during the outage').to.be.greaterThan(100);
      const firstSecond = samples.slice(0, Math.floor(samples.length / 3));
      const lastSecond = samples.slice(-Math.floor(samples.length / 3));
      // Flat: the most listeners seen late in the outage is no more than early in it.
      expect(Math.max(...lastSecond)).to.be.at.most(Math.max(...firstSecond));
      expect(Math.max(...samples)).to.be.below(ROOT_SIGNAL_LISTENERS / 2);
      expect(warnings).to.deep.equal([]);
      console.log(`      ${restarts} watch restarts; abort listeners min ${Math.min(...samples)}, max ${Math.max(...samples)}`);
    });
  }
});
