// What the caches keep of Nodes, Pods and Namespaces: small typed projections of raw Kubernetes JSON, by allow-list.
import { field, fields, map, objectFields, objectMeta, repeated, type FieldSet } from '../kube/protobuf.js';
import { asRecord, asString, metadataOf, StringPool } from '../kube/resource.js';

/** The host facts of a Node as the kubelet reports them in `status.nodeInfo`. */
export interface NodeInfoFacts {
  readonly osImage: string;
  readonly kernelVersion: string;
  readonly operatingSystem: string;
  readonly architecture: string;
  readonly containerRuntimeVersion: string;
  readonly kubeletVersion: string;
  /**
   * Kept only to compute the device hash (host-os.ts) and to deny it in the PII guard.
   * NOTE: never emitted; an event carrying it would leak a hardware identifier.
   */
  readonly systemUUID: string;
}

/**
 * A Node as the collectors need it. Heartbeat fields (condition timestamps, images, volumes) are left
 * out on purpose: the cache then sees a kubelet heartbeat as no change at all, so nothing downstream
 * runs on it.
 */
export interface NodeProjection {
  readonly uid: string;
  /** `status.capacity.cpu` in cores, at millicore precision; 0 when missing or malformed. */
  readonly cpuCapacity: number;
  /** `status.allocatable.cpu` in cores; the capacity when the kubelet reports none (as Kubernetes defaults it). */
  readonly cpuAllocatable: number;
  readonly nodeInfo: NodeInfoFacts;
  /** `node.kubernetes.io/instance-type`, else `beta.kubernetes.io/instance-type`: the only label value ever emitted. */
  readonly instanceType: string | undefined;
  /**
   * The `kubernetes.io/hostname` label and `Hostname` addresses. Kept only so the PII guard can deny
   * them; never emitted.
   */
  readonly hostnames: readonly string[];
  readonly ready: boolean;
  readonly unschedulable: boolean;
  readonly memoryPressure: boolean;
  readonly diskPressure: boolean;
  readonly pidPressure: boolean;
}

export const POD_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'] as const;
export type PodPhase = (typeof POD_PHASES)[number];

/** A Pod as the inventory counts it (the cache key, namespace/name, is kept by the cache). */
export interface PodProjection {
  /** `spec.nodeName`, or '' while the Pod is not scheduled. */
  readonly nodeName: string;
  /** `status.phase`; a missing or unrecognised phase counts as Unknown. */
  readonly phase: PodPhase;
}

/** The kube-system Namespace: its UID identifies the cluster, its creation time is the cluster's. */
export interface NamespaceProjection {
  readonly uid: string;
  /** RFC 3339, as the API server wrote it. */
  readonly creationTimestamp: string;
}

const DECIMAL_SUFFIX: Readonly<Record<string, number>> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_SUFFIX: Readonly<Record<string, number>> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
// <sign><digits>[.<digits>] or <sign>.<digits>, then a binary or decimal SI suffix or an e/E exponent.
const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d{1,3}))?$/;

/**
 * A Kubernetes quantity ("4", "3500m", "1.5", "2k", "1Ki", "5e-3") in thousandths of its unit,
 * rounded up as Kubernetes' `MilliValue()` does. Exact: the arithmetic is on integers, so "0.1"
 * is 100, not 100.00000000000001. Undefined for anything that is not a quantity or does not fit
 * in a safe integer.
 */
export function parseQuantityMillis(quantity: string): number | undefined {
  const m = QUANTITY.exec(quantity.trim());
  if (m === null) return undefined;
  const [, sign = '', number = '', suffix, exponent] = m;
  const dot = number.indexOf('.');
  const intPart = dot === -1 ? number : number.slice(0, dot);
  const fracPart = dot === -1 ? '' : number.slice(dot + 1);
  const mantissa = BigInt(`${intPart}${fracPart}` || '0');
  let pow10 = 3 - fracPart.length;
  let pow2 = 0;
  if (exponent !== undefined) pow10 += Number(exponent);
  else if (suffix !== undefined && suffix in BINARY_SUFFIX) pow2 = BINARY_SUFFIX[suffix] ?? 0;
  else pow10 += DECIMAL_SUFFIX[suffix ?? ''] ?? 0;
  let numerator = mantissa * 2n ** BigInt(pow2);
  let denominator = 1n;
  if (pow10 >= 0) numerator *= 10n ** BigInt(pow10);
  else denominator = 10n ** BigInt(-pow10);
  // Round up (towards +infinity for the magnitude) like MilliValue: 1u of CPU is still 1m.
  const magnitude = (numerator + denominator - 1n) / denominator;
  if (magnitude > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const millis = Number(magnitude);
  return sign === '-' ? -millis : millis;
}

/**
 * A CPU quantity in cores, at millicore precision (the finest Kubernetes schedules): "4" → 4,
 * "3500m" → 3.5, "1.5" → 1.5, "250u" → 0.001. Undefined when malformed or negative.
 */
export function parseCpuQuantity(quantity: unknown): number | undefined {
  const text = typeof quantity === 'number' && Number.isFinite(quantity) ? String(quantity) : quantity;
  if (typeof text !== 'string') return undefined;
  const millis = parseQuantityMillis(text);
  return millis === undefined || millis < 0 ? undefined : millis / 1000;
}

/** Cores → integer millicores, for sums that must not drift (cores from parseCpuQuantity are exact thousandths). */
export function toMillicores(cores: number): number {
  return Math.round(cores * 1000);
}

function stringField(obj: Record<string, unknown> | undefined, key: string): string {
  const v = obj?.[key];
  return typeof v === 'string' ? v : '';
}

function conditionIsTrue(conditions: unknown, type: string): boolean {
  if (!Array.isArray(conditions)) return false;
  for (const c of conditions) {
    const r = asRecord(c);
    if (r?.['type'] === type) return r['status'] === 'True';
  }
  return false;
}

/** The projection of a Node, or undefined when the object has no UID (not a Node the API server made). */
export function projectNode(obj: unknown): NodeProjection | undefined {
  const meta = metadataOf(obj);
  const uid = asString(meta?.['uid']);
  if (uid === undefined) return undefined;
  const root = asRecord(obj);
  const spec = asRecord(root?.['spec']);
  const status = asRecord(root?.['status']);
  const info = asRecord(status?.['nodeInfo']);
  const labels = asRecord(meta?.['labels']);
  // A Node without a parseable capacity still counts as a Node; it just adds no cores.
  const cpuCapacity = parseCpuQuantity(asRecord(status?.['capacity'])?.['cpu']) ?? 0;
  const cpuAllocatable = parseCpuQuantity(asRecord(status?.['allocatable'])?.['cpu']) ?? cpuCapacity;
  const hostnames = new Set<string>();
  const hostnameLabel = asString(labels?.['kubernetes.io/hostname']);
  if (hostnameLabel !== undefined) hostnames.add(hostnameLabel);
  const addresses = status?.['addresses'];
  if (Array.isArray(addresses)) {
    for (const a of addresses) {
      const r = asRecord(a);
      const address = asString(r?.['address']);
      if (r?.['type'] === 'Hostname' && address !== undefined) hostnames.add(address);
    }
  }
  const conditions = status?.['conditions'];
  return {
    uid,
    cpuCapacity,
    cpuAllocatable,
    nodeInfo: {
      osImage: stringField(info, 'osImage'),
      kernelVersion: stringField(info, 'kernelVersion'),
      operatingSystem: stringField(info, 'operatingSystem'),
      architecture: stringField(info, 'architecture'),
      containerRuntimeVersion: stringField(info, 'containerRuntimeVersion'),
      kubeletVersion: stringField(info, 'kubeletVersion'),
      systemUUID: stringField(info, 'systemUUID'),
    },
    instanceType: asString(labels?.['node.kubernetes.io/instance-type']) ?? asString(labels?.['beta.kubernetes.io/instance-type']),
    // Sorted, so the same hostnames in another order are not a change.
    hostnames: [...hostnames].sort(),
    ready: conditionIsTrue(conditions, 'Ready'),
    unschedulable: spec?.['unschedulable'] === true,
    memoryPressure: conditionIsTrue(conditions, 'MemoryPressure'),
    diskPressure: conditionIsTrue(conditions, 'DiskPressure'),
    pidPressure: conditionIsTrue(conditions, 'PIDPressure'),
  };
}

/** Node names repeat on every Pod of the Node: each cached Pod points at one shared copy (~30 bytes less per Pod). */
const NODE_NAMES = new StringPool();

/** The projection of a Pod, or undefined when `obj` is not an object with metadata. */
export function projectPod(obj: unknown): PodProjection | undefined {
  const root = asRecord(obj);
  if (root === undefined || metadataOf(obj) === undefined) return undefined;
  const phase = asRecord(root['status'])?.['phase'];
  return {
    nodeName: NODE_NAMES.intern(stringField(asRecord(root['spec']), 'nodeName')),
    phase: POD_PHASES.find((p) => p === phase) ?? 'Unknown',
  };
}

/** The projection of a Namespace, or undefined without a UID or creation time. */
export function projectNamespace(obj: unknown): NamespaceProjection | undefined {
  const meta = metadataOf(obj);
  const uid = asString(meta?.['uid']);
  const creationTimestamp = asString(meta?.['creationTimestamp']);
  if (uid === undefined || creationTimestamp === undefined) return undefined;
  return { uid, creationTimestamp };
}

/*
 * The protobuf fields each projection reads (numbers from k8s.io/api core/v1 generated.proto), so a
 * protobuf list or watch decodes only these. Keep them in step with the functions above: the unit
 * test watch-protobuf compares both paths on objects captured from a real API server.
 */

const HOSTNAME_LABELS = ['kubernetes.io/hostname', 'node.kubernetes.io/instance-type', 'beta.kubernetes.io/instance-type'];

export const NODE_FIELDS: FieldSet = objectFields(objectMeta([[11, map('labels', 'string', HOSTNAME_LABELS)]]), [
  [2, field('spec', fields([[4, field('unschedulable', 'bool')]]))],
  [
    3,
    field(
      'status',
      fields([
        [1, map('capacity', 'quantity', ['cpu'])],
        [2, map('allocatable', 'quantity', ['cpu'])],
        [
          4,
          repeated(
            'conditions',
            fields([
              [1, field('type', 'string')],
              [2, field('status', 'string')],
            ]),
          ),
        ],
        [
          5,
          repeated(
            'addresses',
            fields([
              [1, field('type', 'string')],
              [2, field('address', 'string')],
            ]),
          ),
        ],
        [
          7,
          field(
            'nodeInfo',
            fields([
              [2, field('systemUUID', 'string')],
              [4, field('kernelVersion', 'string')],
              [5, field('osImage', 'string')],
              [6, field('containerRuntimeVersion', 'string')],
              [7, field('kubeletVersion', 'string')],
              [9, field('operatingSystem', 'string')],
              [10, field('architecture', 'string')],
            ]),
          ),
        ],
      ]),
    ),
  ],
]);

export const POD_FIELDS: FieldSet = objectFields(objectMeta(), [
  [2, field('spec', fields([[10, field('nodeName', 'string')]]))],
  [3, field('status', fields([[1, field('phase', 'string')]]))],
]);

export const NAMESPACE_FIELDS: FieldSet = objectFields(objectMeta([[8, field('creationTimestamp', 'time')]]));
