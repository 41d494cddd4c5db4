// `dcp run` flags, all checked before anything starts: a mistake is one UsageError line and exit 2, not a stack trace later.
import { randomBytes } from 'node:crypto';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { WireFormat } from '../kube/client.js';
import type { LoadedKubeconfig } from '../kube/kubeconfig.js';
import type { LogLevel } from '../observability/logger.js';
import { lockHolder } from '../store/lock.js';
import { addressFlag, durationFlag, errorText, logLevelFlag, stringFlag, UsageError } from './flags.js';
import { loadKubeconfig } from './kubeconfig.js';
import { DEFAULT_HEALTH_ADDR, DEFAULT_METRICS_ADDR, loadCertDir, type ServingCertificate } from './metrics-endpoint.js';

export interface RunFlags {
  readonly kc: LoadedKubeconfig;
  readonly dataDir: string;
  readonly metricsAddr: string;
  /** --metrics-secure: /metrics over HTTPS, each scrape authorized by the API server. */
  readonly metricsSecure: boolean;
  /** --metrics-cert-dir: where tls.crt and tls.key are read from (loaded by parseRunFlags). */
  readonly metricsCertDir?: string;
  readonly metricsCertificate?: ServingCertificate;
  readonly healthAddr: string;
  readonly leaderElect: boolean;
  readonly namespace: string;
  readonly logLevel: LogLevel;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly shutdownTimeoutMs: number;
  readonly apiServerStallMs: number;
  readonly identity: string;
  /** The image of the audit-export extension's Pods; undefined: the operator's own. */
  readonly auditExporterImage?: string;
  /** How Pods, Nodes, Namespaces, Events and Secrets are read from the API server. */
  readonly wire: WireFormat;
}

/** The values that need no I/O; everything a typo can break. Pure but for the environment defaults. */
export function parseRunValues(values: Record<string, unknown>, positionals: readonly string[], env: NodeJS.ProcessEnv = process.env): Omit<RunFlags, 'kc' | 'dataDir'> & { dataDir: string } {
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, 'dcp run takes flags only');
  const logLevel = logLevelFlag(stringFlag(values, 'log-level') ?? 'info');
  const metricsSecure = values['metrics-secure'] === true;
  const metricsCertDir = stringFlag(values, 'metrics-cert-dir');
  if (metricsCertDir !== undefined && !metricsSecure) throw new UsageError(`--metrics-cert-dir ${metricsCertDir} is given without --metrics-secure`, 'a certificate is for HTTPS; add --metrics-secure');
  // NOTE: plain /metrics answers anyone who can connect, so it listens on loopback unless told otherwise.
  const metricsAddr = stringFlag(values, 'metrics-addr') ?? (metricsSecure ? DEFAULT_METRICS_ADDR.secure : DEFAULT_METRICS_ADDR.plain);
  const healthAddr = stringFlag(values, 'health-addr') ?? DEFAULT_HEALTH_ADDR;
  const metrics = addressFlag('metrics-addr', metricsAddr);
  const health = addressFlag('health-addr', healthAddr);
  if (metrics.port !== 0 && metrics.port === health.port && (metrics.host ?? '') === (health.host ?? '')) {
    throw new UsageError(`--health-addr ${healthAddr} is the same as --metrics-addr`, 'each endpoint needs its own port');
  }
  const leaseDurationMs = durationFlag('lease-duration', stringFlag(values, 'lease-duration') ?? '15s');
  const renewDeadlineMs = durationFlag('renew-deadline', stringFlag(values, 'renew-deadline') ?? '10s');
  const retryPeriodMs = durationFlag('retry-period', stringFlag(values, 'retry-period') ?? '2s');
  const shutdownTimeoutMs = durationFlag('shutdown-timeout', stringFlag(values, 'shutdown-timeout') ?? '12s');
  const apiServerStallMs = durationFlag('apiserver-stall-timeout', stringFlag(values, 'apiserver-stall-timeout') ?? '30s');
  if (apiServerStallMs < 1000) throw new UsageError(`--apiserver-stall-timeout ${stringFlag(values, 'apiserver-stall-timeout') ?? ''} is too short`, 'a healthy API server may take a second to answer; use 1s or more');
  // client-go's rules: a leader must be able to renew before the lease runs out, and retry before the deadline.
  if (renewDeadlineMs >= leaseDurationMs) {
    throw new UsageError(`--renew-deadline ${stringFlag(values, 'renew-deadline') ?? '10s'} is not shorter than --lease-duration ${stringFlag(values, 'lease-duration') ?? '15s'}`, 'a leader must renew before its lease expires');
  }
  if (retryPeriodMs * 1.2 >= renewDeadlineMs) {
    throw new UsageError(`--retry-period ${stringFlag(values, 'retry-period') ?? '2s'} is too long for --renew-deadline ${stringFlag(values, 'renew-deadline') ?? '10s'}`, 'the retry period plus 20% jitter must fit in the renew deadline');
  }
  const namespace = stringFlag(values, 'namespace') ?? env.POD_NAMESPACE ?? 'dcp-system';
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
    throw new UsageError(`--namespace "${namespace}" is not a namespace name`, 'lowercase letters, digits and "-", at most 63 characters');
  }
  const wireText = stringFlag(values, 'wire') ?? 'protobuf';
  if (wireText !== 'protobuf' && wireText !== 'json') throw new UsageError(`--wire "${wireText}" is not a wire format`, 'use protobuf or json');
  const wire: WireFormat = wireText;
  const identity = stringFlag(values, 'identity') ?? `${hostname()}_${randomBytes(4).toString('hex')}`;
  if (identity.trim() === '' || identity.length > 253) throw new UsageError(`--identity "${identity}" is not usable`, 'it must be 1 to 253 characters');
  return {
    dataDir: resolve(stringFlag(values, 'data-dir') ?? './data'),
    metricsAddr,
    metricsSecure,
    ...(metricsCertDir !== undefined ? { metricsCertDir: resolve(metricsCertDir) } : {}),
    healthAddr,
    leaderElect: values['leader-elect'] === true,
    namespace,
    logLevel,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    shutdownTimeoutMs,
    apiServerStallMs,
    identity,
    ...(stringFlag(values, 'audit-exporter-image') ? { auditExporterImage: stringFlag(values, 'audit-exporter-image') } : {}),
    wire,
  };
}


/**
 * mkdir -p one level at a time. NOTE: not mkdir({ recursive: true }): on Node 20 it never settles
 * where the kernel answers ENOENT for an existing parent (under /proc), and a flag check must end.
 */
async function mkdirs(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    try {
      await stat(d);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(d) === d) throw err;
      missing.unshift(d);
    }
  }
  for (const d of missing) {
    try {
      await mkdir(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * The data directory: exists or can be created, is a directory, can be written, and no other
 * live process holds its lock. Creates it when missing (as the store would).
 */
export async function checkDataDir(dataDir: string): Promise<void> {
  const flag = `--data-dir ${dataDir}`;
  try {
    const s = await stat(dataDir);
    if (!s.isDirectory()) throw new UsageError(`${flag} is not a directory`, 'it names a file; give a directory the operator may own');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new UsageError(`${flag} is not a directory`, 'a part of the path is a file');
    if (code !== 'ENOENT') throw new UsageError(`${flag} cannot be inspected`, errorText(err));
    try {
      await mkdirs(dataDir);
    } catch (mkdirErr) {
      throw new UsageError(`${flag} cannot be created`, errorText(mkdirErr));
    }
  }
  // A real write, not access(2): root passes access checks on a read-only mount.
  const probe = join(dataDir, `.write-check-${process.pid}`);
  try {
    await writeFile(probe, '');
    await rm(probe, { force: true });
  } catch (err) {
    throw new UsageError(`${flag} is not writable`, errorText(err));
  }
  const holder = await lockHolder(dataDir);
  if (holder !== undefined) throw new UsageError(`${flag} is in use by process ${holder}`, 'one dcp run writes a data directory; give each its own');
}

/** Every flag, parsed and checked; throws a UsageError for the first that cannot work. */
export async function parseRunFlags(values: Record<string, unknown>, positionals: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<RunFlags> {
  const parsed = parseRunValues(values, positionals, env);
  const kc = await loadKubeconfig(stringFlag(values, 'kubeconfig'), env);
  await checkDataDir(parsed.dataDir);
  if (parsed.metricsCertDir === undefined) return { ...parsed, kc };
  let metricsCertificate: ServingCertificate;
  try {
    metricsCertificate = await loadCertDir(parsed.metricsCertDir);
  } catch (err) {
    throw new UsageError(`--metrics-cert-dir ${parsed.metricsCertDir} holds no usable certificate`, errorText(err));
  }
  return { ...parsed, kc, metricsCertificate };
}
