// KMS health: parsed from the API server's `/readyz?verbose` and envelope-encryption metrics, read once, and its KmsStatus event.
import { buildEvent } from '../api/envelope.js';
import type { ClusterRef, EventOf, KmsStatusData } from '../api/event.js';
import type { KubeRequest, KubeTransport } from '../kube/client.js';
import { errorFromStatus, parseStatus } from '../kube/errors.js';
import { silentLog, type Log } from '../observability/log.js';

/** The same status is reported once a day (and at once when it changes). */
const DAY_SECONDS = 86_400;

export const KEY_ID_HASH_METRIC = 'apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds';

interface KmsCheck {
  readonly name: string;
  readonly ok: boolean;
}

/** The kms-providers (KMS v2, or with config reload) or kms-provider-N (older servers) lines of `/readyz?verbose`. */
function kmsChecks(readyzVerbose: string): KmsCheck[] {
  const out: KmsCheck[] = [];
  for (const raw of readyzVerbose.split('\n')) {
    const m = /^\[([+-])\](kms-providers?(?:-[^\s]+)?)\s/.exec(raw.trim() + ' ');
    if (m?.[1] !== undefined && m[2] !== undefined) out.push({ name: m[2], ok: m[1] === '+' });
  }
  return out;
}

/** Labels of one exposition-format sample, unescaped. */
function labelsOf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
    if (m[1] !== undefined && m[2] !== undefined) out.set(m[1], m[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)));
  }
  return out;
}

interface KeyIdSample {
  readonly provider: string;
  readonly keyIdHash: string;
  readonly at: number;
}

/** The key_id_hash samples of the envelope-encryption metric; hashes not shaped like hex are skipped. */
function keyIdSamples(metrics: string): KeyIdSample[] {
  const out: KeyIdSample[] = [];
  for (const raw of metrics.split('\n')) {
    const line = raw.trim();
    // The exact name followed by '{': ..._key_id_hash_status_last_timestamp_seconds is another metric.
    if (!line.startsWith(`${KEY_ID_HASH_METRIC}{`)) continue;
    const close = line.lastIndexOf('}');
    if (close === -1) continue;
    const labels = labelsOf(line.slice(KEY_ID_HASH_METRIC.length + 1, close));
    const at = Number(line.slice(close + 1).trim().split(/\s+/)[0]);
    const hash = (labels.get('key_id_hash') ?? '').replace(/^sha256:/i, '').toLowerCase();
    if (!/^[0-9a-f]{32,64}$/.test(hash) || !Number.isFinite(at)) continue;
    out.push({ provider: labels.get('provider_name') ?? '', keyIdHash: hash, at });
  }
  return out;
}

/**
 * KMS health from the text of `/readyz?verbose` and, optionally, `/metrics` (only the envelope
 * key-ID lines are needed). No kms check: no KMS configured, which is healthy. The aggregate
 * `kms-providers` check does not say which provider failed, so a failing one counts none healthy.
 * keyIdHash is the API server's own hash of the newest key ID in use: a hash, never the key ID.
 */
export function kmsStatusOf(readyzVerbose: string, metrics?: string): KmsStatusData {
  const checks = kmsChecks(readyzVerbose);
  if (checks.length === 0) return { providers: 0, healthyProviders: 0, healthy: true };
  const samples = metrics === undefined ? [] : keyIdSamples(metrics);
  const aggregate = checks.some((c) => c.name === 'kms-providers');
  const perProvider = checks.filter((c) => c.name !== 'kms-providers');
  const healthy = checks.every((c) => c.ok);
  const named = new Set(samples.map((s) => s.provider).filter((p) => p !== '')).size;
  const providers = Math.max(aggregate ? 1 : 0, perProvider.length, named);
  const healthyProviders = healthy ? providers : aggregate ? 0 : perProvider.filter((c) => c.ok).length;
  const data: KmsStatusData = { providers, healthyProviders, healthy };
  let newest: KeyIdSample | undefined;
  for (const s of samples) if (newest === undefined || s.at > newest.at) newest = s;
  if (newest !== undefined) data.keyIdHash = newest.keyIdHash;
  return data;
}

/** The KmsStatus event: its data is its source key, so a change is a new event at once, and the same data one a day. */
export function kmsEvent(cluster: ClusterRef, nowMs: number, data: KmsStatusData): EventOf<'KmsStatus'> {
  return buildEvent({ name: 'KmsStatus', cluster, time: new Date(nowMs), sourceKey: `kms:${JSON.stringify(data)}`, bucketSeconds: DAY_SECONDS, data });
}

/** `/readyz?verbose` as text, 500 included (its body lists the failing checks). */
async function readReadyz(transport: KubeTransport, signal: AbortSignal | undefined): Promise<string> {
  const req: KubeRequest = { path: '/readyz', query: { verbose: true }, signal, idleTimeoutMs: 30_000 };
  if (transport.text === undefined) return (await readLines(transport, req, () => true)).join('\n');
  const res = await transport.text(req);
  // Not ready (500) still lists every check; anything else (401, 403, 404 …) is an error of the call.
  if (res.statusCode === 200 || (res.statusCode === 500 && /^\[[+-]\]/m.test(res.body))) return res.body;
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    body = undefined;
  }
  throw errorFromStatus(parseStatus(body, res.statusCode));
}

/** The lines of a 2xx text body that `keep` accepts, read as they stream (the API server's /metrics is megabytes). */
async function readLines(transport: KubeTransport, req: KubeRequest, keep: (line: string) => boolean): Promise<string[]> {
  const res = await transport.stream(req);
  const out: string[] = [];
  let tail = '';
  for await (const chunk of res) {
    const lines = (tail + chunk.toString('utf8')).split('\n');
    tail = lines.pop() ?? '';
    for (const line of lines) if (keep(line)) out.push(line);
  }
  if (tail !== '' && keep(tail)) out.push(tail);
  return out;
}

/**
 * Reads KMS health once: `/readyz?verbose`, then, only when a kms check exists, the key-ID lines of
 * `/metrics`. A metrics read that fails is logged and the status is reported without keyIdHash.
 */
export async function readKmsStatus(transport: KubeTransport, signal?: AbortSignal, log: Log = silentLog): Promise<KmsStatusData> {
  const readyz = await readReadyz(transport, signal);
  if (kmsChecks(readyz).length === 0) return kmsStatusOf(readyz);
  let metrics: string | undefined;
  try {
    const lines = await readLines(transport, { path: '/metrics', signal, idleTimeoutMs: 30_000 }, (l) => l.startsWith(`${KEY_ID_HASH_METRIC}{`));
    metrics = lines.join('\n');
  } catch (err) {
    if (signal?.aborted === true) throw err;
    log.warn('cannot read the API server metrics; KMS status without key ID', { error: String(err) });
  }
  return kmsStatusOf(readyz, metrics);
}
