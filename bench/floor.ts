// Floor for `make bench`: paged LIST (limit 500) + watch over https with JSON.parse, keeping counts only.
// Prints "synced <ms>" on stdout once Pods and Nodes are listed; then watches until killed.
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../src/kube/client.js';

const kc = new KubeConfig();
kc.loadFromFile(process.argv[2] ?? '');
const client = new KubeClient(kc);
const started = performance.now();

async function listCount(path: string): Promise<{ count: number; rv: string }> {
  let count = 0;
  let cont: string | undefined;
  let rv: string;
  do {
    const page = (await client.json({ path, query: { limit: 500, continue: cont } })) as { items: unknown[]; metadata: { continue?: string; resourceVersion: string } };
    count += page.items.length;
    cont = page.metadata.continue || undefined;
    rv = page.metadata.resourceVersion;
  } while (cont);
  return { count, rv };
}

const counts: Record<string, number> = {};

async function watchCount(path: string, rv: string, initial: number): Promise<void> {
  counts[path] = initial;
  const res = await client.stream({ path, query: { watch: 1, resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: 600 }, idleTimeoutMs: 700_000 });
  let buf = '';
  for await (const chunk of res) {
    buf += chunk.toString('utf8');
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const e = JSON.parse(buf.slice(0, nl)) as { type: string };
      buf = buf.slice(nl + 1);
      if (e.type === 'ADDED') counts[path] = (counts[path] ?? 0) + 1;
      else if (e.type === 'DELETED') counts[path] = (counts[path] ?? 0) - 1;
    }
  }
}

const [pods, nodes] = await Promise.all([listCount('/api/v1/pods'), listCount('/api/v1/nodes')]);
console.log(`synced ${Math.round(performance.now() - started)} pods=${pods.count} nodes=${nodes.count}`);
process.once('SIGTERM', () => {
  console.log(`counts ${JSON.stringify(counts)}`);
  process.exit(0);
});
void watchCount('/api/v1/pods', pods.rv, pods.count);
void watchCount('/api/v1/nodes', nodes.rv, nodes.count);
