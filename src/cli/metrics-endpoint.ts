// The /metrics server of `dcp run`: plain HTTP, or with --metrics-secure HTTPS where the API server authorizes every scrape.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
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

export interface ServingCertificate {
  /** PEM. */
  readonly cert: string;
  readonly key: string;
}

export interface MetricsEndpointOptions {
  readonly registry: Registry;
  /** HTTPS, and a TokenReview and SubjectAccessReview (get on the path) for every request. */
  readonly secure: boolean;
  /** The pair from --metrics-cert-dir; without it a self-signed pair is made at start. */
  readonly certificate?: ServingCertificate;
  /** The API server that authenticates and authorizes scrapers. */
  readonly transport: KubeTransport;
  readonly log: Log;
}

/**
 * tls.crt and tls.key of a directory (a mounted kubernetes.io/tls Secret), checked to make a TLS
 * context together; throws an Error saying which file or why not.
 */
export async function loadCertDir(dir: string): Promise<ServingCertificate> {
  const read = async (file: string): Promise<string> => {
    try {
      return await readFile(join(dir, file), 'utf8');
    } catch (err) {
      throw new Error(`${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
    }
  };
  const [cert, key] = await Promise.all([read('tls.crt'), read('tls.key')]);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new Error(`tls.crt and tls.key are not a certificate and its key (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  return { cert, key };
}

/** Self-signed for a year: Prometheus then scrapes with insecureSkipVerify, as with controller-runtime's generated certificate. */
function selfSigned(log: Log): ServingCertificate {
  const now = Date.now();
  const { certPem, keyPem } = selfSignedCertificate({ commonName: 'dcp-operator-metrics', dnsNames: ['localhost'], notBefore: new Date(now - 60_000), notAfter: new Date(now + 365 * 86_400_000) });
  log.info('serving /metrics with a self-signed certificate; give --metrics-cert-dir to use your own');
  return { cert: certPem, key: keyPem };
}

/** The ProbeServer for /metrics, not yet listening. */
export function metricsEndpoint(options: MetricsEndpointOptions): ProbeServer {
  if (!options.secure) return new ProbeServer({ registry: options.registry });
  const auth = new DelegatedAuth({ transport: options.transport });
  return new ProbeServer({
    registry: options.registry,
    tls: options.certificate ?? selfSigned(options.log),
    authorize: (authorization, path) => auth.authorize(authorization, path, 'get'),
  });
}
