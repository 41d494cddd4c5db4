// Reading Kubernetes objects without trusting their shape: keys, versions, paths, and safe field access.

/** The object, if `v` is a non-null, non-array object. */
export function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** The string, if `v` is a non-empty string. */
export function asString(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function metadataOf(obj: unknown): Record<string, unknown> | undefined {
  return asRecord(asRecord(obj)?.['metadata']);
}

/**
 * The cache key: `namespace/name`, or `name` for cluster-scoped objects (client-go's
 * MetaNamespaceKeyFunc). Undefined when the object has no name.
 */
export function objectKey(obj: unknown): string | undefined {
  const meta = metadataOf(obj);
  const name = asString(meta?.['name']);
  if (name === undefined) return undefined;
  const ns = asString(meta?.['namespace']);
  // NOTE: join, not a template: V8 keeps `${ns}/${name}` as a rope of three strings (and the object's own
  // namespace string) for as long as the cache holds the key; join builds one flat string (~50 bytes less per Pod).
  return ns === undefined ? name : [ns, name].join('/');
}

/**
 * Returns one shared copy of strings that repeat across many cached objects (a Pod's nodeName), so 30k
 * Pods on 1k Nodes hold 1k strings, not 30k. The pool starts over past `limit` entries: it stays small
 * when names churn (Nodes replaced by an autoscaler), and a string not shared is only a copy.
 */
export class StringPool {
  private pool = new Map<string, string>();

  constructor(private readonly limit = 16_384) {}

  intern(s: string): string {
    const shared = this.pool.get(s);
    if (shared !== undefined) return shared;
    if (this.pool.size >= this.limit) this.pool = new Map();
    this.pool.set(s, s);
    return s;
  }
}

/** Splits a key made by objectKey. */
export function splitKey(key: string): { readonly namespace: string | undefined; readonly name: string } {
  const slash = key.indexOf('/');
  return slash === -1 ? { namespace: undefined, name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export function resourceVersionOf(obj: unknown): string | undefined {
  return asString(metadataOf(obj)?.['resourceVersion']);
}

/**
 * The collection path for a resource, optionally in one namespace:
 * `/api/v1/secrets` + `kube-system` → `/api/v1/namespaces/kube-system/secrets`.
 */
export function collectionPath(path: string, namespace?: string): string {
  const trimmed = path.replace(/\/+$/, '');
  if (namespace === undefined || namespace === '') return trimmed;
  const slash = trimmed.lastIndexOf('/');
  return `${trimmed.slice(0, slash)}/namespaces/${encodeURIComponent(namespace)}${trimmed.slice(slash)}`;
}
