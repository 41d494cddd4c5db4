// `dcp run`: the operator process. Flags → dependencies → Operator; SIGTERM stops watches, flushes the store, releases the Lease.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { Operator } from '../controllers/operator.js';
import { ProbeServer } from '../observability/http.js';
import { createLogger } from '../observability/logger.js';
import type { Command } from './command.js';
import { parseDuration, parseLogLevel, stringFlag } from './flags.js';

const USAGE = `usage: dcp run [flags]

Runs the operator: watches the cluster, applies the DataCollectionPolicy, collects, stores and exports.

flags:
  --kubeconfig F        kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)
  --data-dir D          event store directory (default ./data)
  --metrics-addr A      /metrics listen address, host:port or :port (default :8080)
  --health-addr A       /healthz and /readyz listen address (default :8081)
  --leader-elect        elect one leader through a Lease (run several replicas)
  --namespace N         operator namespace: Lease, device key, billing state (default $POD_NAMESPACE or dcp-system)
  --log-level L         error, warn, info or debug (default info)
  --lease-duration D    leader election lease duration (default 15s)
  --renew-deadline D    a leader that cannot renew within this stops (default 10s)
  --retry-period D      between lease attempts (default 2s)
  --identity S          this replica's identity in the Lease (default hostname plus a random suffix)
  --shutdown-timeout D  exit 1 if stopping takes longer (default 12s)`;

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
    'metrics-addr': { type: 'string', default: ':8080' },
    'health-addr': { type: 'string', default: ':8081' },
    'leader-elect': { type: 'boolean', default: false },
    namespace: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    'lease-duration': { type: 'string', default: '15s' },
    'renew-deadline': { type: 'string', default: '10s' },
    'retry-period': { type: 'string', default: '2s' },
    identity: { type: 'string' },
    'shutdown-timeout': { type: 'string', default: '12s' },
  },
  async run(values) {
    const log = createLogger(parseLogLevel(stringFlag(values, 'log-level') ?? 'info'), 'dcp-operator');
    const kc = new KubeConfig();
    const kubeconfig = stringFlag(values, 'kubeconfig');
    if (kubeconfig) kc.loadFromFile(kubeconfig);
    else kc.loadFromDefault();
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const identity = stringFlag(values, 'identity') ?? `${hostname()}_${randomBytes(4).toString('hex')}`;
    const operator = new Operator({
      kc,
      dataDir: resolve(stringFlag(values, 'data-dir') ?? './data'),
      namespace: stringFlag(values, 'namespace') ?? process.env.POD_NAMESPACE ?? 'dcp-system',
      leaderElect: values['leader-elect'] === true,
      identity,
      log,
      registry,
      leaseDurationMs: parseDuration(stringFlag(values, 'lease-duration') ?? '15s'),
      renewDeadlineMs: parseDuration(stringFlag(values, 'renew-deadline') ?? '10s'),
      retryPeriodMs: parseDuration(stringFlag(values, 'retry-period') ?? '2s'),
    });
    const checks = operator.checks();
    const metricsServer = new ProbeServer({ registry });
    const healthServer = new ProbeServer(checks);
    const metricsAt = await metricsServer.listen(stringFlag(values, 'metrics-addr') ?? ':8080');
    const healthAt = await healthServer.listen(stringFlag(values, 'health-addr') ?? ':8081');
    log.info('dcp run started', { identity, metrics: `${metricsAt.address}:${metricsAt.port}`, health: `${healthAt.address}:${healthAt.port}`, server: kc.getCurrentCluster()?.server });

    const abort = new AbortController();
    const shutdownTimeout = parseDuration(stringFlag(values, 'shutdown-timeout') ?? '12s');
    const removeHandlers = onStopSignals((sig) => {
      log.info('stopping', { signal: sig });
      abort.abort(new Error(`received ${sig}`));
      setTimeout(() => {
        log.error('shutdown took too long; exiting');
        process.exit(1);
      }, shutdownTimeout).unref();
    });
    try {
      await operator.run(abort.signal);
    } finally {
      removeHandlers();
      await Promise.allSettled([metricsServer.close(), healthServer.close()]);
    }
    log.info('stopped cleanly');
    return 0;
  },
};
