// Hashes the envelope and collectors use: deterministic event ids and keyed hashes that stand in for machine identifiers.
import { createHash, createHmac } from 'node:crypto';

export function sha256Hex(...parts: readonly string[]): string {
  const h = createHash('sha256');
  // A separator that cannot occur in the parts keeps ("ab","c") and ("a","bc") apart.
  for (const p of parts) h.update(p).update('\u0000');
  return h.digest('hex');
}

/**
 * HMAC-SHA256 of `value` under `key`, hex. Use it for identifiers that must not leave the cluster raw
 * (a Node's systemUUID → deviceId, a KMS key ID → keyIdHash): stable per key, not reversible.
 */
export function keyedHash(key: string, value: string): string {
  return createHmac('sha256', key).update(value).digest('hex');
}
