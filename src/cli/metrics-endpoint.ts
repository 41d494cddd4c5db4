// The /metrics server of `dcp run`: plain HTTP, or with --metrics-secure HTTPS where the API server authorizes every scrape.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { selfSignedCertificate } from '../audit/x509.js';
import type { KubeTransport } from '../kube/client.js';
import { DelegatedAuth } from '../kube/delegated-auth.js';
import type { Log } from '../observability/log.js';
import { ProbeServer } from '../observability/http.js';

/** Where /metrics listens when --metrics-addr is not given: loopback over HTTP, all interfaces only when protected. */
export const DEFAULT_METRICS_ADDR = { plain: '127.0.0.1:8080', secure: ':8443' } as const;
/** The health endpoint stays plain HTTP on all interfaces: the kubelet probes the Pod IP without credentials. */
export const DEFAULT_HEALTH_ADDR = ':8081';

export interface MetricsEndpointOptions {
  readonly registry: Registry;
  /** HTTPS, and a TokenReview and SubjectAccessReview (get on the path) for every request. */
  readonly secure: boolean;
  /** A directory holding tls.crt and tls.key (a mounted kubernetes.io/tls Secret); without it a self-signed pair is made at start. */
  readonly certDir?: string;
  /** The API server that authenticates and authorizes scrapers. */
  readonly transport: KubeTransport;
  readonly log: Log;
}

/** The serving certificate: from `certDir`, or self-signed for a year (Prometheus then scrapes with insecureSkipVerify, as with controller-runtime's). */
async function servingCertificate(certDir: string | undefined, log: Log): Promise<{ cert: string; key: string }> {
  if (certDir !== undefined) {
    const [cert, key] = await Promise.all([readFile(join(certDir, 'tls.crt'), 'utf8'), readFile(join(certDir, 'tls.key'), 'utf8')]);
    return { cert, key };
  }
  const now = Date.now();
  const { certPem, keyPem } = selfSignedCertificate({ commonName: 'dcp-operator-metrics', dnsNames: ['localhost'], notBefore: new Date(now - 60_000), notAfter: new Date(now + 365 * 86_400_000) });
  log.info('serving /metrics with a self-signed certificate; give --metrics-cert-dir to use your own');
  return { cert: certPem, key: keyPem };
}

/** The ProbeServer for /metrics, not yet listening. */
export async function metricsEndpoint(options: MetricsEndpointOptions): Promise<ProbeServer> {
  if (!options.secure) return new ProbeServer({ registry: options.registry });
  const auth = new DelegatedAuth({ transport: options.transport });
  return new ProbeServer({
    registry: options.registry,
    tls: await servingCertificate(options.certDir, options.log),
    authorize: (authorization, path) => auth.authorize(authorization, path, 'get'),
  });
}
