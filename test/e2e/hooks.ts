// Mocha root hooks for the e2e suite: one cluster for the whole run, always deleted (also on failure or Ctrl-C).
import { cluster, deleteTestClusterSync, startTestCluster } from './harness.js';

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    deleteTestClusterSync();
    process.exit(130);
  });
}
process.once('exit', deleteTestClusterSync);

export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(180_000);
    const c = await startTestCluster();
    console.log(`    e2e cluster: ${c.name ?? 'E2E_KUBECONFIG'} (${c.kubeconfigPath})`);
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(120_000);
    const c = cluster();
    if (!c.owned) await c.cleanupShared();
    deleteTestClusterSync();
  },
};
