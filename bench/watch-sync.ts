// Measures the initial sync of all Pods and Nodes: the operator's reflectors, the makeInformer baseline, or a counts-only floor.
//   node --expose-gc dist/bench/watch-sync.js --kubeconfig F [--mode reflector|informer|floor] [--wire protobuf|json] [--page-size 500]
// Prints one JSON line: sync seconds, CPU seconds to sync, RSS and live heap after sync (after a GC).
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { KubeClient, readJson } from '../src/kube/client.js';
import { asRecord, asString } from '../src/kube/resource.js';
import { NODE_FIELDS, POD_FIELDS, projectNode, projectPod } from '../src/collectors/projections.js';
import { nodeCache, podCache } from '../src/runtime/caches.js';
import { Tally } from '../src/runtime/aggregate.js';

interface Result {
  mode: string;
  pods: number;
  nodes: number;
  syncSeconds: number;
  cpuSeconds: number;
  rssMB: number;
  heapUsedMB: number;
  detail?: Record<string, number>;
}

const { values } = parseArgs({
  options: {
    kubeconfig: { type: 'string' },
    mode: { type: 'string', default: 'reflector' },
    'page-size': { type: 'string', default: '500' },
    wire: { type: 'string', default: 'protobuf' },
    settle: { type: 'string', default: '2000' },
  },
});

const kc = new k8s.KubeConfig();
if (values.kubeconfig !== undefined) kc.loadFromFile(values.kubeconfig);
else kc.loadFromDefault();
const pageSize = Number(values['page-size']);

const gc = (globalThis as { gc?: () => void }).gc;
const mb = (n: number): number => Math.round((n / 1024 / 1024) * 10) / 10;

async function measure(mode: string, sync: () => Promise<{ pods: number; nodes: number; detail?: Record<string, number> }>): Promise<Result> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const counts = await sync();
  const syncSeconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await new Promise((r) => setTimeout(r, Number(values.settle)));
  gc?.();
  const mem = process.memoryUsage();
  return {
    mode,
    ...counts,
    syncSeconds: Math.round(syncSeconds * 100) / 100,
    cpuSeconds: Math.round(((cpu.user + cpu.system) / 1e6) * 100) / 100,
    rssMB: mb(mem.rss),
    heapUsedMB: mb(mem.heapUsed),
  };
}

/** The operator's way: paged lists into projections, then watches; counts kept by tallies. */
async function reflector(signal: AbortSignal): Promise<Result> {
  const client = new KubeClient(kc, { wire: values.wire === 'json' ? 'json' : 'protobuf' });
  const pods = podCache(client, projectPod, { pageSize, fields: POD_FIELDS });
  const nodes = nodeCache(client, projectNode, { pageSize, fields: NODE_FIELDS });
  const phases = new Tally<{ phase: string }>((p) => p.phase);
  phases.attach(pods.store);
  return measure(`reflector-${client.wire}`, async () => {
    void pods.start(signal);
    void nodes.start(signal);
    await Promise.all([pods.store.waitUntilSynced(signal), nodes.store.waitUntilSynced(signal)]);
    return { pods: pods.store.size, nodes: nodes.store.size, detail: Object.fromEntries(phases.groups()) };
  });
}

/** client-node 1.4's informer: whole objects cached, one unpaged list. */
async function informer(): Promise<Result> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const podInf = k8s.makeInformer(kc, '/api/v1/pods', () => core.listPodForAllNamespaces());
  const nodeInf = k8s.makeInformer(kc, '/api/v1/nodes', () => core.listNode());
  const result = await measure('informer', async () => {
    const ready = (inf: k8s.Informer<k8s.KubernetesObject>) =>
      new Promise<void>((resolve, reject) => {
        inf.on('connect', () => resolve());
        inf.on('error', (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))));
      });
    const both = Promise.all([ready(podInf), ready(nodeInf)]);
    await Promise.all([podInf.start(), nodeInf.start()]);
    await both;
    return { pods: podInf.list().length, nodes: nodeInf.list().length };
  });
  await Promise.all([podInf.stop(), nodeInf.stop()]);
  return result;
}

/** The floor: paged lists parsed and counted, nothing kept, then a watch each. */
async function floor(signal: AbortSignal): Promise<Result> {
  const client = new KubeClient(kc);
  const listCount = async (path: string): Promise<{ n: number; rv: string }> => {
    let n = 0;
    let cont: string | undefined;
    let rv = '';
    do {
      const page = asRecord(await readJson(await client.stream({ path, query: { limit: pageSize, continue: cont }, signal })));
      const items = page?.['items'];
      n += Array.isArray(items) ? items.length : 0;
      const meta = asRecord(page?.['metadata']);
      cont = asString(meta?.['continue']);
      rv = asString(meta?.['resourceVersion']) ?? rv;
    } while (cont !== undefined);
    return { n, rv };
  };
  return measure('floor', async () => {
    const [pods, nodes] = await Promise.all([listCount('/api/v1/pods'), listCount('/api/v1/nodes')]);
    for (const [path, rv] of [['/api/v1/pods', pods.rv], ['/api/v1/nodes', nodes.rv]] as const) {
      void client.stream({ path, query: { watch: 1, resourceVersion: rv, allowWatchBookmarks: true }, signal, idleTimeoutMs: 3_600_000 }).then(
        async (s) => {
          for await (const _ of s) {
            // counts only
          }
        },
        () => undefined,
      );
    }
    return { pods: pods.n, nodes: nodes.n };
  });
}

async function main(): Promise<void> {
  const ctl = new AbortController();
  let result: Result;
  if (values.mode === 'informer') result = await informer();
  else if (values.mode === 'floor') result = await floor(ctl.signal);
  else result = await reflector(ctl.signal);
  ctl.abort();
  console.log(JSON.stringify(result));
  process.exit(0);
}

void main();
