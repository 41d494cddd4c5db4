// Typed errors for calls to the API server, named after what failed, so callers branch on class, not on strings.

/** The fields of a metav1.Status body that decide what a caller does next. */
export interface KubeStatus {
  readonly code: number;
  readonly reason: string;
  readonly message: string;
  /** details.causes[].reason, e.g. "ResourceVersionTooLarge". */
  readonly causes: readonly string[];
  readonly retryAfterSeconds: number | undefined;
}

/** Any answer of the API server that is not a success. */
export class KubeApiError extends Error {
  override readonly name: string = 'KubeApiError';
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** 410: the resourceVersion or continue token is older than what the server keeps (reason Expired or Gone). */
export class Gone extends KubeApiError {
  override readonly name = 'Gone';
}

/** The server has not yet seen the resourceVersion asked for (504 with cause ResourceVersionTooLarge). */
export class ResourceVersionTooLarge extends KubeApiError {
  override readonly name = 'ResourceVersionTooLarge';
}

export class Unauthorized extends KubeApiError {
  override readonly name = 'Unauthorized';
}

export class Forbidden extends KubeApiError {
  override readonly name = 'Forbidden';
}

export class NotFound extends KubeApiError {
  override readonly name = 'NotFound';
}

/** 409: another writer changed the object first (optimistic concurrency), or it already exists. */
export class Conflict extends KubeApiError {
  override readonly name = 'Conflict';
}

/** 400/422: the request itself is wrong; retrying the same request will not help. */
export class Invalid extends KubeApiError {
  override readonly name = 'Invalid';
}

/** 429: API priority and fairness or a rate limit; `retryAfterMs` is the server's hint. */
export class TooManyRequests extends KubeApiError {
  override readonly name = 'TooManyRequests';
  constructor(
    statusCode: number,
    reason: string,
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(statusCode, reason, message);
  }
}

/** 5xx other than ResourceVersionTooLarge. */
export class ServerError extends KubeApiError {
  override readonly name = 'ServerError';
}

/** The connection failed: refused, reset, TLS, DNS, or the body ended before it was complete. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A response arrived but is not what the API promises (not JSON, no items, ...). */
export class MalformedResponse extends Error {
  override readonly name = 'MalformedResponse';
}

/** No bytes arrived on a request for longer than its idle limit: the connection is presumed dead. */
export class RequestStalled extends Error {
  override readonly name: string = 'RequestStalled';
  constructor(
    readonly idleMs: number,
    message = `no bytes for ${idleMs} ms`,
  ) {
    super(message);
  }
}

/** A watch received no bytes for timeoutSeconds + slack: silent but open, so it was aborted. */
export class WatchStalled extends RequestStalled {
  override readonly name = 'WatchStalled';
}

/** A watch ended normally in under a second without a single event: treated as a failure, not a close. */
export class WatchClosedEarly extends Error {
  override readonly name = 'WatchClosedEarly';
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** Reads a metav1.Status from a parsed body; tolerant, because error bodies are sometimes not Status at all. */
export function parseStatus(body: unknown, httpCode: number): KubeStatus {
  const o = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const details = typeof o['details'] === 'object' && o['details'] !== null ? (o['details'] as Record<string, unknown>) : {};
  const rawCauses = Array.isArray(details['causes']) ? (details['causes'] as unknown[]) : [];
  const causes = rawCauses.map((c) => (typeof c === 'object' && c !== null ? str((c as Record<string, unknown>)['reason']) : ''));
  const code = typeof o['code'] === 'number' ? o['code'] : httpCode;
  const retry = details['retryAfterSeconds'];
  return {
    code,
    reason: str(o['reason']),
    message: str(o['message']) || `HTTP ${httpCode}`,
    causes,
    retryAfterSeconds: typeof retry === 'number' ? retry : undefined,
  };
}

/** Maps a Status to the error class a caller acts on. `retryAfterHeader` is the Retry-After header, if any. */
export function errorFromStatus(status: KubeStatus, retryAfterHeader?: string): KubeApiError {
  const { code, reason, message } = status;
  if (code === 410) return new Gone(code, reason, message);
  // NOTE: checked before the generic 5xx branch: this one means "relist without a resourceVersion", not "retry".
  if (status.causes.includes('ResourceVersionTooLarge') || /too large resource version/i.test(message)) {
    return new ResourceVersionTooLarge(code, reason, message);
  }
  if (code === 401) return new Unauthorized(code, reason, message);
  if (code === 403) return new Forbidden(code, reason, message);
  if (code === 404) return new NotFound(code, reason, message);
  if (code === 409) return new Conflict(code, reason, message);
  if (code === 400 || code === 422) return new Invalid(code, reason, message);
  if (code === 429) {
    const header = retryAfterHeader !== undefined ? Number(retryAfterHeader) : NaN;
    const seconds = status.retryAfterSeconds ?? (Number.isFinite(header) ? header : undefined);
    return new TooManyRequests(code, reason, message, seconds !== undefined ? seconds * 1000 : undefined);
  }
  if (code >= 500) return new ServerError(code, reason, message);
  return new KubeApiError(code, reason, message);
}

/** A short, stable label for an error, used as the `reason` of restart metrics. */
export function errorReason(err: unknown): string {
  if (err instanceof Gone) return 'expired';
  if (err instanceof ResourceVersionTooLarge) return 'too_large_resource_version';
  if (err instanceof WatchStalled) return 'stalled';
  if (err instanceof RequestStalled) return 'request_stalled';
  if (err instanceof WatchClosedEarly) return 'closed_early';
  if (err instanceof Unauthorized) return 'unauthorized';
  if (err instanceof Forbidden) return 'forbidden';
  if (err instanceof NotFound) return 'not_found';
  if (err instanceof TooManyRequests) return 'throttled';
  if (err instanceof ServerError) return 'server_error';
  if (err instanceof TransportError) return 'network';
  if (err instanceof MalformedResponse) return 'malformed_response';
  if (err instanceof KubeApiError) return `http_${err.statusCode}`;
  return 'other';
}
