// The per-cluster key of the device-ID hash: a Secret in the operator namespace, created once, read by every replica.
import { randomBytes } from 'node:crypto';
import { Conflict, NotFound } from '../kube/errors.js';
import type { KubeTransport } from '../kube/client.js';
import { asRecord, asString } from '../kube/resource.js';

export const DEVICE_KEY_SECRET = 'dcp-device-key';
/** The Secret's data key holding the key bytes (base64, as all Secret data). */
export const DEVICE_KEY_FIELD = 'key';
const KEY_BYTES = 32;
// Shorter keys weaken the hash; a Secret holding one was not made by this code.
const MIN_KEY_BYTES = 16;

/** The Secret exists but holds no usable key: someone replaced it by hand. */
export class MalformedDeviceKey extends Error {
  override readonly name = 'MalformedDeviceKey';
}

export interface DeviceKeyOptions {
  readonly transport: KubeTransport;
  /** The operator namespace (`--namespace`, dcp-system in cluster). */
  readonly namespace: string;
  readonly signal?: AbortSignal;
  /** @default node:crypto randomBytes */
  readonly random?: (bytes: number) => Buffer;
}

function secretPath(namespace: string, name?: string): string {
  const base = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

/** The key bytes of a Secret object; throws MalformedDeviceKey when it has none. */
export function keyOfSecret(secret: unknown): Buffer {
  const data = asRecord(asRecord(secret)?.['data']);
  const encoded = asString(data?.[DEVICE_KEY_FIELD]);
  if (encoded === undefined) throw new MalformedDeviceKey(`Secret ${DEVICE_KEY_SECRET} has no data.${DEVICE_KEY_FIELD}`);
  const key = Buffer.from(encoded, 'base64');
  if (key.length < MIN_KEY_BYTES) throw new MalformedDeviceKey(`Secret ${DEVICE_KEY_SECRET} holds a key shorter than ${MIN_KEY_BYTES} bytes`);
  return key;
}

/** The Secret the operator creates. Immutable, because a changed key changes every device ID. */
export function deviceKeySecret(namespace: string, key: Buffer): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: DEVICE_KEY_SECRET,
      namespace,
      labels: { 'app.kubernetes.io/name': 'dcp-operator', 'app.kubernetes.io/component': 'device-key' },
    },
    type: 'Opaque',
    immutable: true,
    data: { [DEVICE_KEY_FIELD]: key.toString('base64') },
  };
}

/**
 * Reads the device key, creating it on first use: GET; on 404 POST 32 random bytes; on 409 (another
 * replica created it first) GET again and use theirs.
 * NOTE: the key must be the same for every replica and every restart, or each Node would appear
 * under a new device ID; that is why it lives in the cluster and is never regenerated when it exists.
 */
export async function getOrCreateDeviceKey(options: DeviceKeyOptions): Promise<Buffer> {
  const { transport, namespace, signal } = options;
  const read = async (): Promise<Buffer> => keyOfSecret(await transport.json({ path: secretPath(namespace, DEVICE_KEY_SECRET), signal }));
  try {
    return await read();
  } catch (err) {
    if (!(err instanceof NotFound)) throw err;
  }
  const key = (options.random ?? randomBytes)(KEY_BYTES);
  try {
    const created = await transport.json({ method: 'POST', path: secretPath(namespace), body: deviceKeySecret(namespace, key), signal });
    return keyOfSecret(created);
  } catch (err) {
    if (err instanceof Conflict) return read();
    throw err;
  }
}
