// Reflectors for the resources the operator watches; the caller brings the projection (what the cache keeps).
import type { KubeTransport } from '../kube/client.js';
import { Reflector, type ReflectorOptions } from './reflector.js';

/** Collection paths (cluster-wide; the `namespace` option narrows them). */
export const PATHS = {
  pods: '/api/v1/pods',
  nodes: '/api/v1/nodes',
  namespaces: '/api/v1/namespaces',
  events: '/apis/events.k8s.io/v1/events',
  secrets: '/api/v1/secrets',
} as const;

/** The field selector that narrows Secrets to TLS certificates. */
export const TLS_SECRET_SELECTOR = 'type=kubernetes.io/tls';

/** Everything a reflector takes except what the resource and the projection fix. */
export type CacheOptions<T> = Omit<ReflectorOptions<T>, 'transport' | 'path' | 'project'>;

type Project<T> = (obj: unknown) => T | undefined;

export function podCache<T>(transport: KubeTransport, project: Project<T>, options: CacheOptions<T> = {}): Reflector<T> {
  return new Reflector({ ...options, transport, path: PATHS.pods, project });
}

export function nodeCache<T>(transport: KubeTransport, project: Project<T>, options: CacheOptions<T> = {}): Reflector<T> {
  return new Reflector({ ...options, transport, path: PATHS.nodes, project });
}

export function namespaceCache<T>(transport: KubeTransport, project: Project<T>, options: CacheOptions<T> = {}): Reflector<T> {
  return new Reflector({ ...options, transport, path: PATHS.namespaces, project });
}

/** events.k8s.io/v1 Events (e.g. with `projectEvent`); narrow with `namespace` and `fieldSelector` (`type=Warning`). */
export function eventCache<T>(transport: KubeTransport, project: Project<T>, options: CacheOptions<T> = {}): Reflector<T> {
  return new Reflector({ ...options, transport, path: PATHS.events, project });
}

/**
 * The kubernetes.io/tls Secrets of one namespace (e.g. with `projectTlsSecret`, which keeps
 * validity and fingerprints, never key material). One cache per namespace, because the
 * operator's RBAC grants Secrets per namespace; `options.fieldSelector` is added to the type filter.
 */
export function tlsSecretCache<T>(transport: KubeTransport, namespace: string, project: Project<T>, options: CacheOptions<T> = {}): Reflector<T> {
  const fieldSelector = [TLS_SECRET_SELECTOR, options.fieldSelector].filter((s) => s !== undefined && s !== '').join(',');
  return new Reflector({ ...options, transport, path: PATHS.secrets, namespace, fieldSelector, project });
}
