// What `dcp preview` reads of the cluster, once and read-only: the kube-system Namespace, the Nodes, a Pod count and the device key.
import { randomBytes } from 'node:crypto';
import type { DcpEvent } from '../../api/event.js';
import { DEVICE_KEY_SECRET, keyOfSecret, MalformedDeviceKey } from '../../collectors/device-key.js';
import { InventoryCounter, type InventorySnapshot } from '../../collectors/inventory.js';
import { projectNamespace, projectNode, projectPod, type NamespaceProjection, type NodeProjection } from '../../collectors/projections.js';
import type { KubeTransport } from '../../kube/client.js';
import { Forbidden, NotFound } from '../../kube/errors.js';
import { listAll } from '../../kube/pager.js';
import { objectKey } from '../../kube/resource.js';

export type DeviceKeyInfo =
  | { readonly source: 'secret'; readonly secret: string; readonly key: Buffer }
  | { readonly source: 'placeholder'; readonly secret: string; readonly key: Buffer; readonly why: string };

export interface ClusterSnapshot {
  readonly kubeSystem: NamespaceProjection;
  /** CertificateStatus and KmsStatus events as the security collector would report them now (empty when it is disabled). */
  readonly security?: readonly DcpEvent[];
  /** Node name → projection, sorted by name. */
  readonly nodes: ReadonlyMap<string, NodeProjection>;
  readonly inventory: InventorySnapshot;
  readonly deviceKey: DeviceKeyInfo;
}

/** The device key as the operator would use it; a random placeholder when it cannot be read (never created here). */
export async function readDeviceKey(transport: KubeTransport, namespace: string): Promise<DeviceKeyInfo> {
  const secret = `${namespace}/${DEVICE_KEY_SECRET}`;
  // A throwaway key: device IDs made with it match nothing, which is the honest thing for a placeholder.
  const placeholder = (why: string): DeviceKeyInfo => ({ source: 'placeholder', secret, key: randomBytes(32), why });
  try {
    const obj = await transport.json({ path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${DEVICE_KEY_SECRET}` });
    return { source: 'secret', secret, key: keyOfSecret(obj) };
  } catch (err) {
    if (err instanceof NotFound) return placeholder(`Secret ${secret} does not exist yet (dcp run creates it when it first collects host OS facts)`);
    if (err instanceof Forbidden) return placeholder(`you may not read Secret ${secret}`);
    if (err instanceof MalformedDeviceKey) return placeholder(err.message);
    throw err;
  }
}

/** The cluster read once: kube-system (the cluster id), every Node, the Pods counted page by page, and the device key. */
export async function readClusterSnapshot(transport: KubeTransport, namespace: string): Promise<ClusterSnapshot> {
  let kubeSystem: NamespaceProjection | undefined;
  try {
    kubeSystem = projectNamespace(await transport.json({ path: '/api/v1/namespaces/kube-system' }));
  } catch (err) {
    if (!(err instanceof NotFound)) throw err;
  }
  if (!kubeSystem) throw new Error('the kube-system namespace is missing: the cluster has no id');
  const counter = new InventoryCounter();
  const nodes = new Map<string, NodeProjection>();
  for await (const obj of listAll(transport, '/api/v1/nodes')) {
    const key = objectKey(obj);
    const node = projectNode(obj);
    if (key === undefined || node === undefined) continue;
    nodes.set(key, node);
    counter.onNode('added', key, node, undefined);
  }
  // Pods are only counted: each page is projected and dropped.
  for await (const obj of listAll(transport, '/api/v1/pods')) {
    const key = objectKey(obj);
    const pod = projectPod(obj);
    if (key !== undefined && pod !== undefined) counter.onPod('added', key, pod, undefined);
  }
  const sorted = new Map([...nodes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { kubeSystem, nodes: sorted, inventory: counter.snapshot(), deviceKey: await readDeviceKey(transport, namespace) };
}
