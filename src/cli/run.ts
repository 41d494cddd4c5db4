// `dcp run`: the operator process. Flags → dependencies → Operator; SIGTERM stops watches, flushes the store, releases the Lease.
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { Operator, operatorStop } from '../controllers/operator.js';
import { KubeClient } from '../kube/client.js';
import { ProbeServer } from '../observability/http.js';
import { createLogger } from '../observability/logger.js';
import type { Command } from './command.js';
import { UsageError } from './flags.js';
import { metricsEndpoint } from './metrics-endpoint.js';
import { parseRunFlags, type RunFlags } from './run-flags.js';

const USAGE = `usage: dcp run [flags]

Runs the operator: watches the cluster, applies the DataCollectionPolicy, collects, stores and exports.

flags:
  --kubeconfig F        kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)
  --data-dir D          event store directory (default ./data)
  --metrics-addr A      /metrics listen address, host:port or :port
                        (default 127.0.0.1:8080; :8443 with --metrics-secure)
  --metrics-secure      serve /metrics over HTTPS and let through only a bearer token whose user
                        may get /metrics (TokenReview and SubjectAccessReview, as controller-runtime)
  --metrics-cert-dir D  tls.crt and tls.key for --metrics-secure (default: a self-signed pair made at start)
  --health-addr A       /healthz and /readyz listen address, plain HTTP for kubelet probes (default :8081)
  --leader-elect        elect one leader through a Lease (run several replicas)
  --namespace N         operator namespace: Lease, device key, billing state (default $POD_NAMESPACE or dcp-system)
  --log-level L         error, warn, info or debug (default info)
  --lease-duration D    leader election lease duration (default 15s)
  --renew-deadline D    a leader that cannot renew within this stops (default 10s)
  --retry-period D      between lease attempts (default 2s)
  --identity S          this replica's identity in the Lease (default hostname plus a random suffix)
  --shutdown-timeout D  exit 1 if stopping takes longer (default 12s)
  --apiserver-stall-timeout D
                        an API server that answers nothing for this long is stalled: /readyz
                        fails and the policy's APIServerResponsive turns False (default 30s)
  --audit-exporter-image I  image of the audit-export extension's Pods (default the operator's own, dcp-operator:0.1.0)
  --wire F              protobuf or json: how Pods, Nodes, Namespaces, Events and Secrets are read
                        (default protobuf: only the fields kept are decoded; custom resources are JSON)

Every flag is checked before anything starts: a mistake exits 2 with one line naming it. A
failure after the start is one JSON log line with its cause, and exit 1.`;

/** What a runtime failure says: the message, and the stack only at debug level. */
function cause(err: unknown, level: string): Record<string, unknown> {
  const e = err instanceof Error ? err : new Error(String(err));
  return { error: e.message, ...(e.name !== 'Error' ? { errorType: e.name } : {}), ...(level === 'debug' && e.stack ? { stack: e.stack } : {}) };
}

/** Graceful stop on SIGTERM/SIGINT: a second signal exits at once. */
function onStopSignals(stop: (signal: string) => void): () => void {
  let stopping = false;
  const handler = (sig: NodeJS.Signals): void => {
    if (stopping) process.exit(130);
    stopping = true;
    stop(sig);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}

export const runCommand: Command = {
  summary: 'run the operator',
  usage: USAGE,
  options: {
    kubeconfig: { type: 'string' },
    'data-dir': { type: 'string', default: './data' },
    // No default here: it depends on --metrics-secure (parseRunValues).
    'metrics-addr': { type: 'string' },
    'metrics-secure': { type: 'boolean', default: false },
    'metrics-cert-dir': { type: 'string' },
    'health-addr': { type: 'string', default: ':8081' },
    'leader-elect': { type: 'boolean', default: false },
    namespace: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    'lease-duration': { type: 'string', default: '15s' },
    'renew-deadline': { type: 'string', default: '10s' },
    'retry-period': { type: 'string', default: '2s' },
    identity: { type: 'string' },
    'shutdown-timeout': { type: 'string', default: '12s' },
    'apiserver-stall-timeout': { type: 'string', default: '30s' },
    'audit-exporter-image': { type: 'string' },
    wire: { type: 'string', default: 'protobuf' },
  },
  async run(values, positionals) {
    let flags: RunFlags;
    try {
      flags = await parseRunFlags(values, positionals);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      console.error(`dcp run: ${err.message}\n\nrun 'dcp run --help' for the flags`);
      return 2;
    }
    const log = createLogger(flags.logLevel, 'dcp-operator');
    routeWarningsToLog(log);
    try {
      return await runOperator(flags, log);
    } catch (err) {
      log.error('dcp run failed', cause(err, flags.logLevel));
      return 1;
    }
  },
};

async function runOperator(flags: RunFlags, log: ReturnType<typeof createLogger>): Promise<number> {
  const { kc, identity } = flags;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const operator = new Operator({
    kc,
    dataDir: flags.dataDir,
    namespace: flags.namespace,
    leaderElect: flags.leaderElect,
    identity,
    log,
    registry,
    leaseDurationMs: flags.leaseDurationMs,
    renewDeadlineMs: flags.renewDeadlineMs,
    retryPeriodMs: flags.retryPeriodMs,
    apiServerStallMs: flags.apiServerStallMs,
    ...(flags.auditExporterImage ? { auditExporterImage: flags.auditExporterImage } : {}),
    wire: flags.wire,
  });
  const checks = operator.checks();
  const metricsServer = metricsEndpoint({
    registry,
    secure: flags.metricsSecure,
    ...(flags.metricsCertificate !== undefined ? { certificate: flags.metricsCertificate } : {}),
    transport: new KubeClient(kc),
    log,
  });
  const healthServer = new ProbeServer(checks);
  try {
    const metricsAt = await listenOn(metricsServer, flags.metricsAddr, '--metrics-addr');
    const healthAt = await listenOn(healthServer, flags.healthAddr, '--health-addr');
    log.info('dcp run started', { identity, metrics: `${metricsAt.address}:${metricsAt.port}`, metricsScheme: flags.metricsSecure ? 'https' : 'http', health: `${healthAt.address}:${healthAt.port}`, server: kc.getCurrentCluster()?.server });

    const abort = operatorStop();
    const removeHandlers = onStopSignals((sig) => {
      log.info('stopping', { signal: sig });
      abort.abort(new Error(`received ${sig}`));
      setTimeout(() => {
        log.error('shutdown took too long; exiting');
        process.exit(1);
      }, flags.shutdownTimeoutMs).unref();
    });
    try {
      await operator.run(abort.signal);
    } finally {
      removeHandlers();
    }
  } finally {
    await Promise.allSettled([metricsServer.close(), healthServer.close()]);
  }
  log.info('stopped cleanly');
  return 0;
}

/**
 * Node prints process warnings (deprecations, listener limits) as plain text on stderr; the logs
 * are JSON there, so a warning becomes a JSON log line instead of breaking a log pipeline.
 */
function routeWarningsToLog(log: ReturnType<typeof createLogger>): void {
  process.removeAllListeners('warning');
  process.on('warning', (w) => log.warn('node warning', { warning: w.name, error: w.message, ...('code' in w && typeof w.code === 'string' ? { code: w.code } : {}) }));
}

/** Listens, or fails with the flag and the address in the message (EADDRINUSE is common). */
async function listenOn(server: ProbeServer, address: string, flag: string): Promise<AddressInfo> {
  try {
    return await server.listen(address);
  } catch (err) {
    throw new Error(`cannot listen on ${flag} ${address}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
