// Baseline for `make bench`: @kubernetes/client-node's makeInformer for Pods and Nodes (whole objects cached).
// Prints "synced <ms>" on stdout once both informers have listed; then keeps watching until killed.
import * as k8s from '@kubernetes/client-node';

const kc = new k8s.KubeConfig();
kc.loadFromFile(process.argv[2] ?? '');
const core = kc.makeApiClient(k8s.CoreV1Api);
const started = performance.now();
const pods = k8s.makeInformer(kc, '/api/v1/pods', () => core.listPodForAllNamespaces());
const nodes = k8s.makeInformer(kc, '/api/v1/nodes', () => core.listNode());
pods.on('error', (err: unknown) => console.error('pods informer error', err));
nodes.on('error', (err: unknown) => console.error('nodes informer error', err));
await Promise.all([pods.start(), nodes.start()]);
console.log(`synced ${Math.round(performance.now() - started)} pods=${pods.list().length} nodes=${nodes.list().length}`);
setInterval(() => undefined, 1 << 30);
