// Who may read /metrics: the API server decides, with a TokenReview and a SubjectAccessReview per bearer token (as controller-runtime's metrics filter does).
import { createHash } from 'node:crypto';
import type { KubeTransport } from './client.js';
import { asRecord, asString } from './resource.js';

export type AuthDecision =
  | { readonly allowed: true; readonly user: string }
  /** 401: no token, or the API server does not know it. 403: known, but RBAC does not allow the request. 500: the API server could not be asked. */
  | { readonly allowed: false; readonly status: 401 | 403 | 500; readonly message: string };

export interface DelegatedAuthOptions {
  readonly transport: KubeTransport;
  /** How long an answer is reused for the same token, path and verb. @default 10000 (the API server's own delegating caches) */
  readonly cacheTtlMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
  /** Each call to the API server gives up after this long. @default 10000 */
  readonly timeoutMs?: number;
}

interface Cached {
  readonly decision: AuthDecision;
  readonly until: number;
}

const MAX_CACHED = 1000;

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return m?.[1];
}

/**
 * Authenticates a bearer token with a TokenReview, then authorizes the user for a non-resource
 * request (`get /metrics`) with a SubjectAccessReview. Answers are cached briefly by a hash of the
 * token, so a scrape every few seconds costs the API server little; errors are never cached.
 * NOTE: the token itself is never logged, kept or used as a key, only its SHA-256.
 */
export class DelegatedAuth {
  private readonly cache = new Map<string, Cached>();
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly timeoutMs: number;

  constructor(private readonly options: DelegatedAuthOptions) {
    this.ttlMs = options.cacheTtlMs ?? 10_000;
    this.now = options.now ?? Date.now;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  async authorize(authorization: string | undefined, path: string, verb = 'get'): Promise<AuthDecision> {
    const token = bearerToken(authorization);
    if (token === undefined) return { allowed: false, status: 401, message: 'Unauthorized: a bearer token is required' };
    const key = `${createHash('sha256').update(token).digest('hex')} ${verb} ${path}`;
    const hit = this.cache.get(key);
    if (hit !== undefined && hit.until > this.now()) return hit.decision;
    let decision: AuthDecision;
    try {
      decision = await this.review(token, path, verb);
    } catch (err) {
      return { allowed: false, status: 500, message: `Internal Server Error: cannot authorize the request: ${err instanceof Error ? err.message : String(err)}` };
    }
    this.cache.delete(key);
    this.cache.set(key, { decision, until: this.now() + this.ttlMs });
    if (this.cache.size > MAX_CACHED) {
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
    return decision;
  }

  private async review(token: string, path: string, verb: string): Promise<AuthDecision> {
    const { transport } = this.options;
    const signal = AbortSignal.timeout(this.timeoutMs);
    const tokenReview = asRecord(
      await transport.json({
        method: 'POST',
        path: '/apis/authentication.k8s.io/v1/tokenreviews',
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
        signal,
      }),
    );
    const status = asRecord(tokenReview?.['status']);
    const user = asRecord(status?.['user']);
    const username = asString(user?.['username']);
    if (status?.['authenticated'] !== true || username === undefined) return { allowed: false, status: 401, message: 'Unauthorized' };
    const groups = Array.isArray(user?.['groups']) ? (user['groups'] as unknown[]).filter((g): g is string => typeof g === 'string') : [];
    const uid = asString(user?.['uid']);
    const extra = asRecord(user?.['extra']);
    const sar = asRecord(
      await transport.json({
        method: 'POST',
        path: '/apis/authorization.k8s.io/v1/subjectaccessreviews',
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: { user: username, groups, ...(uid !== undefined ? { uid } : {}), ...(extra !== undefined ? { extra } : {}), nonResourceAttributes: { path, verb } },
        },
        signal,
      }),
    );
    if (asRecord(sar?.['status'])?.['allowed'] === true) return { allowed: true, user: username };
    return { allowed: false, status: 403, message: `Forbidden: user "${username}" may not ${verb} ${path}` };
  }
}
