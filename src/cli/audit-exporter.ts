// `dcp audit-exporter`: the audit-export extension's process. Flags → sources, exporter, destination; SIGTERM flushes and exits 0.
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { parseExporterConfig, readExporterConfig, InvalidExporterConfig, type ExporterConfig } from '../audit/config.js';
import { createDestination } from '../audit/destinations/index.js';
import { Exporter } from '../audit/exporter.js';
import { auditMetrics } from '../audit/metrics.js';
import { WebhookReceiver } from '../audit/receiver.js';
import { StatusReporter, toReported } from '../audit/status-report.js';
import { LogTailer } from '../audit/tailer.js';
import { KubeClient } from '../kube/client.js';
import { loadKubeconfig, type LoadedKubeconfig } from '../kube/kubeconfig.js';
import { EventRecorder } from '../kube/recorder.js';
import { ProbeServer } from '../observability/http.js';
import { createLogger } from '../observability/logger.js';
import type { Command } from './command.js';
import { parseDuration, parseLogLevel, stringFlag } from './flags.js';

const USAGE = `usage: dcp audit-exporter --config F [flags]

Receives Kubernetes audit events (API server webhook and/or audit log file), applies the profile and writes
them to the customer's destination, buffering on disk only while the destination is unavailable.

flags:
  --config F            exporter.json written by the operator (profile, destination, retention)
  --destination D       override the destination: file:/dir or an http(s):// URL
  --listen A            webhook HTTPS address, host:port or :port (default :9443; "" to disable)
  --tls-cert F          serving certificate (PEM) for the webhook
  --tls-key F           its key (PEM)
  --token-file F        the bearer token the API server must present
  --max-body-bytes N    larger webhook bodies are refused with 413 (default 16777216)
  --audit-log F         also tail this API server audit log (--audit-log-path, JSON lines)
  --state-dir D         buffer, delivered set, log position (default /var/lib/dcp-audit)
  --credentials-dir D   the destination Secret's keys as files (default /etc/dcp-audit/credentials)
  --metrics-addr A      /metrics (default :8080)
  --health-addr A       /healthz and /readyz (default :8081)
  --kubeconfig F        report status to the cluster with this kubeconfig (default: in-cluster, when there)
  --namespace N         where the status ConfigMap and Events go (default $POD_NAMESPACE or dcp-system)
  --log-level L         error, warn, info or debug (default info)
  --shutdown-timeout D  exit 1 if flushing takes longer (default 20s)`;

function destinationOverride(config: ExporterConfig, text: string): ExporterConfig {
  if (text.startsWith('file:')) return parseExporterConfig({ ...config, destination: { type: 'file', path: text.slice(5) } });
  if (/^https?:\/\//.test(text)) return parseExporterConfig({ ...config, destination: { type: 'http', url: text } });
  throw new InvalidExporterConfig(`--destination must be file:/dir or an http(s):// URL, not "${text}"`);
}

/** The API server for status reports: --kubeconfig (must load), else in-cluster when there (a missing token only disables the reports). */
async function kubeConfigFor(flag: string | undefined, warn: (message: string) => void): Promise<LoadedKubeconfig | undefined> {
  if (flag) return loadKubeconfig({ files: [flag] });
  if (process.env.KUBERNETES_SERVICE_HOST === undefined) return undefined;
  try {
    return await loadKubeconfig({ inCluster: true });
  } catch (err) {
    warn(`no status reports to the cluster: the service account cannot be read (${err instanceof Error ? err.message : String(err)})`);
    return undefined;
  }
}

function readOnce(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidExporterConfig(`${what} ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export const auditExporterCommand: Command = {
  summary: 'run the audit-export extension (webhook / log file → customer storage)',
  usage: USAGE,
  options: {
    config: { type: 'string' },
    destination: { type: 'string' },
    listen: { type: 'string', default: ':9443' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'token-file': { type: 'string' },
    'max-body-bytes': { type: 'string', default: String(16 * 1024 * 1024) },
    'audit-log': { type: 'string' },
    'state-dir': { type: 'string', default: '/var/lib/dcp-audit' },
    'credentials-dir': { type: 'string', default: '/etc/dcp-audit/credentials' },
    'metrics-addr': { type: 'string', default: ':8080' },
    'health-addr': { type: 'string', default: ':8081' },
    kubeconfig: { type: 'string' },
    namespace: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    'shutdown-timeout': { type: 'string', default: '20s' },
  },
  async run(values) {
    const log = createLogger(parseLogLevel(stringFlag(values, 'log-level') ?? 'info'), 'dcp-audit-exporter');
    let config: ExporterConfig;
    let tls: { cert: string; key: string; tokenFile: string } | undefined;
    const listen = stringFlag(values, 'listen') ?? ':9443';
    const auditLog = stringFlag(values, 'audit-log');
    const maxBodyBytes = Number(stringFlag(values, 'max-body-bytes'));
    try {
      const configFile = stringFlag(values, 'config');
      if (!configFile) throw new InvalidExporterConfig('--config is required');
      config = await readExporterConfig(configFile);
      const override = stringFlag(values, 'destination');
      if (override) config = destinationOverride(config, override);
      if (listen !== '') {
        const cert = stringFlag(values, 'tls-cert');
        const key = stringFlag(values, 'tls-key');
        const tokenFile = stringFlag(values, 'token-file');
        if (!cert || !key || !tokenFile) throw new InvalidExporterConfig('the webhook needs --tls-cert, --tls-key and --token-file (or --listen "" with --audit-log)');
        tls = { cert: readOnce(cert, '--tls-cert'), key: readOnce(key, '--tls-key'), tokenFile };
        readOnce(tokenFile, '--token-file');
      } else if (!auditLog) {
        throw new InvalidExporterConfig('nothing to receive: give --listen (webhook) or --audit-log');
      }
      if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1024) throw new InvalidExporterConfig('--max-body-bytes must be an integer of at least 1024');
    } catch (err) {
      if (!(err instanceof InvalidExporterConfig)) throw err;
      console.error(`dcp audit-exporter: ${err.message}`);
      return 2;
    }

    const stateDir = resolve(stringFlag(values, 'state-dir') ?? '/var/lib/dcp-audit');
    await mkdir(stateDir, { recursive: true });
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const metrics = auditMetrics(registry);
    const namespace = stringFlag(values, 'namespace') ?? process.env.POD_NAMESPACE ?? 'dcp-system';
    const kc = await kubeConfigFor(stringFlag(values, 'kubeconfig'), (message) => log.warn(message));
    const kube = kc ? new KubeClient(kc, { userAgent: 'dcp-audit-exporter' }) : undefined;
    const reporter = kube
      ? new StatusReporter(kube, namespace, new EventRecorder(kube, 'datacollection.arc.io/dcp-audit-exporter', process.env.POD_NAME ?? 'local', undefined, (err) => log.warn('could not record an Event', { error: String(err) })))
      : undefined;

    const destination = createDestination(config.destination, config.profile, resolve(stringFlag(values, 'credentials-dir') ?? '/etc/dcp-audit/credentials'));
    const exporter = await Exporter.open({
      config,
      destination,
      stateDir,
      metrics,
      log,
      onWarning: (reason, message) => reporter?.warn(reason, message),
    });
    const abort = new AbortController();
    const tasks: Promise<unknown>[] = [exporter.run(abort.signal)];

    let receiver: WebhookReceiver | undefined;
    let webhookAt: string | undefined;
    if (tls) {
      const tokenFile = tls.tokenFile;
      receiver = new WebhookReceiver({
        cert: tls.cert,
        key: tls.key,
        token: () => readFileSync(tokenFile, 'utf8').trim(),
        maxBodyBytes,
        onBatch: (records) => exporter.accept(records, 'webhook'),
        metrics,
        log,
      });
      const at = await receiver.listen(listen);
      webhookAt = `${at.address}:${at.port}`;
    }
    if (auditLog) {
      const tailer = new LogTailer({ path: resolve(auditLog), stateFile: join(stateDir, 'audit-log.position'), onRecords: (r) => exporter.accept(r, 'log'), metrics, log });
      tasks.push(tailer.run(abort.signal));
    }

    const reportLoop = async (): Promise<void> => {
      while (!abort.signal.aborted) {
        try {
          await reporter?.report(toReported(exporter.status(), Date.now()));
        } catch (err) {
          log.warn('could not report status', { error: String(err) });
        }
        await new Promise((r) => setTimeout(r, 2000).unref());
      }
    };
    if (reporter) tasks.push(reportLoop());

    const probes = new ProbeServer({
      registry,
      healthz: { ping: () => undefined },
      // Ready means able to take batches: a destination that is down is buffered for, not a reason to refuse traffic.
      readyz: { receiving: () => (tls && !receiver ? 'webhook not listening' : undefined) },
    });
    const metricsServer = new ProbeServer({ registry });
    const metricsAt = await metricsServer.listen(stringFlag(values, 'metrics-addr') ?? ':8080');
    const healthAt = await probes.listen(stringFlag(values, 'health-addr') ?? ':8081');
    log.info('dcp audit-exporter started', {
      profile: config.profile,
      destination: config.destination.type,
      webhook: webhookAt,
      auditLog,
      metrics: `${metricsAt.address}:${metricsAt.port}`,
      health: `${healthAt.address}:${healthAt.port}`,
    });

    const shutdownMs = parseDuration(stringFlag(values, 'shutdown-timeout') ?? '20s');
    await new Promise<void>((resolveStop) => {
      const stop = (sig: NodeJS.Signals): void => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        log.info('stopping: flushing', { signal: sig });
        setTimeout(() => {
          log.error('flushing took too long; exiting');
          process.exit(1);
        }, shutdownMs).unref();
        resolveStop();
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    // Stop taking batches first, so everything accepted is flushed below.
    await receiver?.close();
    abort.abort();
    await Promise.allSettled(tasks);
    await exporter.close();
    try {
      await reporter?.report(toReported(exporter.status(), Date.now()));
    } catch {
      // best effort at shutdown
    }
    kube?.destroy();
    await Promise.allSettled([metricsServer.close(), probes.close()]);
    log.info('stopped cleanly', { backlogBytes: exporter.status().backlogBytes });
    return 0;
  },
};
