// A local cluster for benchmarks (hack/cluster/cluster.sh), always deleted by the caller.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLUSTER_SH = join(ROOT, 'hack/cluster/cluster.sh');

export interface BenchCluster {
  name: string;
  kubeconfig: string;
  kubectl(args: string[]): string;
  /** Waits until kwok has made every bound Pod Running and the count stops moving. */
  settle(pods: number): Promise<void>;
  delete(): void;
}

export async function startBenchCluster(): Promise<BenchCluster> {
  const name = `dcp-bench-${process.pid}`;
  mkdirSync(join(ROOT, '.dev'), { recursive: true });
  const kubeconfig = join(ROOT, '.dev', `${name}.kubeconfig`);
  execFileSync(CLUSTER_SH, ['up', name, kubeconfig], { stdio: 'ignore' });
  const kubectl = (args: string[]): string => execFileSync(join(ROOT, 'bin/kubectl'), ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  let deleted = false;
  return {
    name,
    kubeconfig,
    kubectl,
    async settle(pods: number) {
      // Done when all are Running, or when the count has not moved for 10 s (kwok gave up on some).
      let last = -1;
      let unchanged = 0;
      while (!(last >= pods && unchanged >= 2) && unchanged < 10) {
        await new Promise((r) => setTimeout(r, 1000));
        const out = kubectl(['get', '--raw', '/api/v1/pods?fieldSelector=status.phase%3DRunning&limit=1']);
        const page = JSON.parse(out) as { items: unknown[]; metadata: { remainingItemCount?: number } };
        const running = page.items.length + (page.metadata.remainingItemCount ?? 0);
        unchanged = running === last ? unchanged + 1 : 0;
        last = running;
      }
    },
    delete() {
      if (deleted) return;
      deleted = true;
      try {
        execFileSync(CLUSTER_SH, ['down', name], { stdio: 'ignore' });
      } catch {
        console.error(`could not delete ${name}: hack/cluster/cluster.sh down ${name}`);
      }
    },
  };
}
