// The one HTTP path to the API server: auth and TLS from a kubeconfig, typed errors, per-request abort and idle timeout.
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { errorFromStatus, MalformedResponse, parseStatus, RequestStalled, TransportError } from './errors.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export type QueryValue = string | number | boolean | undefined;

export interface KubeRequest {
  /** @default 'GET' */
  readonly method?: HttpMethod;
  /** Absolute API path, e.g. `/api/v1/pods`; the kubeconfig server's own path prefix is prepended. */
  readonly path: string;
  /** Query parameters; `undefined` values are left out. */
  readonly query?: Readonly<Record<string, QueryValue>>;
  /** JSON-encoded as the request body. */
  readonly body?: unknown;
  /** @default 'application/json' (or the merge-patch type for PATCH) */
  readonly contentType?: string;
  /** The Accept header; the response's Content-Type says what the server chose. @default 'application/json' */
  readonly accept?: string;
  /** Aborting it destroys the connection at once; the request then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /**
   * Abort when no bytes arrive for this long (headers or body); the request rejects with what
   * `idleError` makes, by default a RequestStalled. @default 60000
   */
  readonly idleTimeoutMs?: number;
  readonly idleError?: (idleMs: number) => Error;
}

/**
 * An open response body. Iterating it yields chunks and throws typed errors; `close()` destroys
 * the connection (a no-op once the body was read to its end).
 */
export interface ResponseStream extends AsyncIterable<Buffer> {
  readonly statusCode: number;
  /** The Content-Type header; undefined is read as JSON. */
  readonly contentType?: string;
  close(): void;
}

/** A whole text body and its status code. */
export interface TextResponse {
  readonly statusCode: number;
  readonly body: string;
}

/** What a cache or the leader elector needs from the API server: a stream and a JSON call (and, optionally, a text call). */
export interface KubeTransport {
  stream(req: KubeRequest): Promise<ResponseStream>;
  json(req: KubeRequest): Promise<unknown>;
  /**
   * A small text body (health checks) whatever the status code: `/readyz?verbose` answers 500 with
   * the very lines that say which check failed. Optional, so transports that wrap or fake the two
   * calls above need not grow; without it callers fall back to `stream` (2xx bodies only).
   */
  text?(req: KubeRequest): Promise<TextResponse>;
  /**
   * How caches that can read protobuf should ask (client-go keeps this in its rest.Config too):
   * 'json' turns protobuf off for everything using this transport. @default 'protobuf'
   */
  readonly wire?: WireFormat;
}

export type WireFormat = 'protobuf' | 'json';

/**
 * Where the API server is and how to authenticate to it: what KubeClient needs of a kubeconfig. Both
 * this project's loader (src/kube/kubeconfig.ts) and client-node's KubeConfig provide it.
 */
export interface ApiServerAccess {
  getCurrentCluster(): { readonly name: string; readonly server: string; readonly proxyUrl?: string } | null;
  /** Sets TLS material, headers (Authorization) and, for a proxy, an agent; called before every request. */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

export interface KubeClientOptions {
  /** @default 'dcp-operator' */
  readonly userAgent?: string;
  /** @default 'protobuf' (see KubeTransport.wire) */
  readonly wire?: WireFormat;
}

const DEFAULT_IDLE_MS = 60_000;
// Error bodies are Status objects of a few hundred bytes; anything much larger is not worth keeping.
const MAX_ERROR_BODY = 64 * 1024;
const MAX_TEXT_BODY = 1024 * 1024;

export function buildQuery(query: Readonly<Record<string, QueryValue>> | undefined): string {
  if (query === undefined) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined) params.append(k, String(v));
  }
  const s = params.toString();
  return s === '' ? '' : `?${s}`;
}

/**
 * Talks HTTP/1.1 to the API server with node's http/https, taking credentials from a kubeconfig.
 * Creating one does no I/O; each request reads the kubeconfig's auth again, so rotated tokens
 * (exec plugins, projected service-account tokens) are picked up.
 */
export class KubeClient implements KubeTransport {
  private agent: http.Agent | undefined;
  private readonly userAgent: string;
  readonly wire: WireFormat;

  constructor(
    private readonly kc: ApiServerAccess,
    options: KubeClientOptions = {},
  ) {
    this.userAgent = options.userAgent ?? 'dcp-operator';
    this.wire = options.wire ?? 'protobuf';
  }

  async stream(req: KubeRequest): Promise<ResponseStream> {
    const { server, opts } = await this.requestOptions(req);
    return openStream(server, opts, req);
  }

  async json(req: KubeRequest): Promise<unknown> {
    const res = await this.stream(req);
    return readJson(res);
  }

  async text(req: KubeRequest): Promise<TextResponse> {
    const { server, opts } = await this.requestOptions(req);
    opts.headers = { ...opts.headers, Accept: 'text/plain, */*' };
    const res = await openStream(server, opts, req, true);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res) {
      size += chunk.length;
      // A health check answers in a few kB; a runaway body is cut rather than held.
      if (size > MAX_TEXT_BODY) {
        res.close();
        throw new MalformedResponse(`${req.path}: text body larger than ${MAX_TEXT_BODY} bytes`);
      }
      chunks.push(chunk);
    }
    return { statusCode: res.statusCode, body: Buffer.concat(chunks, size).toString('utf8') };
  }

  /** Closes the pooled idle connections (at shutdown, after every request has ended). */
  destroy(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }

  private async requestOptions(req: KubeRequest): Promise<{ server: URL; opts: https.RequestOptions }> {
    const cluster = this.kc.getCurrentCluster();
    if (cluster === null) throw new TransportError('the kubeconfig has no current cluster');
    const server = new URL(cluster.server);
    const opts: https.RequestOptions = { headers: {} };
    await this.kc.applyToHTTPSOptions(opts);
    // applyToHTTPSOptions makes a fresh Agent on every call; keep one keep-alive agent instead,
    // so the pages of a list and the watches share TLS sessions. A proxy agent is kept as made.
    if (this.agent === undefined) {
      if (cluster.proxyUrl !== undefined && opts.agent instanceof http.Agent) {
        this.agent = opts.agent;
      } else if (server.protocol === 'http:') {
        this.agent = new http.Agent({ keepAlive: true });
      } else {
        this.agent = new https.Agent({
          keepAlive: true,
          // One TLS context for every connection: given ca/cert/key instead, each new connection (every watch is
          // one) parses them again, about 20 ms of CPU each, a fifth of what starting up costs.
          secureContext: tls.createSecureContext({ ca: opts.ca, cert: opts.cert, key: opts.key, pfx: opts.pfx, passphrase: opts.passphrase }),
          servername: opts.servername,
          ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
        });
      }
    }
    const method = req.method ?? 'GET';
    const headers: http.OutgoingHttpHeaders = {
      ...(opts.headers as http.OutgoingHttpHeaders),
      Accept: req.accept ?? 'application/json',
      'User-Agent': this.userAgent,
    };
    if (req.body !== undefined) {
      headers['Content-Type'] = req.contentType ?? (method === 'PATCH' ? 'application/merge-patch+json' : 'application/json');
    }
    const prefix = server.pathname.replace(/\/+$/, '');
    return {
      server,
      opts: {
        protocol: server.protocol,
        hostname: server.hostname.replace(/^\[|\]$/g, ''),
        port: server.port === '' ? undefined : Number(server.port),
        path: `${prefix}${req.path}${buildQuery(req.query)}`,
        method,
        headers,
        agent: this.agent,
        auth: opts.auth,
      },
    };
  }
}

/** `anyStatus`: hand over the body of every status instead of turning non-2xx into typed errors. */
function openStream(server: URL, opts: https.RequestOptions, req: KubeRequest, anyStatus = false): Promise<ResponseStream> {
  const idleMs = req.idleTimeoutMs ?? DEFAULT_IDLE_MS;
  const idleError = req.idleError ?? ((ms: number) => new RequestStalled(ms));
  const outer = req.signal;
  if (outer?.aborted === true) return Promise.reject(reasonOf(outer));

  return new Promise<ResponseStream>((resolve, reject) => {
    const mod = server.protocol === 'http:' ? http : https;
    let settled = false;
    let res: http.IncomingMessage | undefined;
    let idleTimer: NodeJS.Timeout | undefined;
    // Why the request was ended on purpose; undefined while it is alive.
    let endedBy: Error | undefined;
    // The body was read to its end: the socket belongs to the keep-alive pool now, not to us.
    let complete = false;

    const cleanup = (): void => {
      if (idleTimer !== undefined) clearTimeout(idleTimer);
      outer?.removeEventListener('abort', onAbort);
    };
    const finish = (): void => {
      complete = true;
      cleanup();
    };
    const destroy = (why: Error): void => {
      if (endedBy !== undefined || complete) return;
      endedBy = why;
      cleanup();
      // NOTE: both halves are destroyed so the socket is closed, not returned to the keep-alive pool
      // with an unread body; this is what keeps replaced watches from leaking connections.
      res?.destroy(why);
      r.destroy(why);
      if (!settled) {
        settled = true;
        reject(why);
      }
    };
    const onAbort = (): void => {
      if (outer !== undefined) destroy(reasonOf(outer));
    };
    const touch = (): void => {
      if (idleTimer !== undefined) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => destroy(idleError(idleMs)), idleMs);
    };

    const r = mod.request(opts);
    outer?.addEventListener('abort', onAbort, { once: true });
    touch();
    r.on('error', (err) => {
      if (endedBy !== undefined) return;
      destroy(new TransportError(`${opts.method ?? 'GET'} ${opts.path ?? ''}: ${err.message}`, { cause: err }));
    });
    r.on('response', (response) => {
      res = response;
      touch();
      const status = response.statusCode ?? 0;
      if (!anyStatus && (status < 200 || status > 299)) {
        void readErrorBody(response).then(
          (body) => {
            if (endedBy !== undefined) return;
            const retryAfter = response.headers['retry-after'];
            destroy(errorFromStatus(parseStatus(body, status), typeof retryAfter === 'string' ? retryAfter : undefined));
          },
          () => undefined,
        );
        return;
      }
      settled = true;
      resolve({
        statusCode: status,
        contentType: response.headers['content-type'],
        close: () => destroy(new TransportError('closed by the client')),
        [Symbol.asyncIterator]: () => iterate(response, { touch, finish, destroy, endedBy: () => endedBy }),
      });
    });
    if (req.body !== undefined) r.end(JSON.stringify(req.body));
    else r.end();
  });
}

interface StreamControl {
  touch(): void;
  finish(): void;
  destroy(why: Error): void;
  endedBy(): Error | undefined;
}

async function* iterate(res: http.IncomingMessage, ctl: StreamControl): AsyncGenerator<Buffer> {
  let complete = false;
  try {
    for await (const chunk of res) {
      ctl.touch();
      yield chunk as Buffer;
    }
    // node reports a body cut short (no final chunk) as an error, handled below: here it is whole.
    complete = true;
  } catch (err) {
    const why = ctl.endedBy();
    if (why !== undefined) throw why;
    const e = new TransportError(`response body: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    ctl.destroy(e);
    throw e;
  } finally {
    // A whole body leaves the socket to the keep-alive pool; a consumer that stopped early
    // (break, return, throw) gets the connection destroyed.
    if (complete) ctl.finish();
    else ctl.destroy(new TransportError('response abandoned by the client'));
  }
}

async function readErrorBody(res: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > MAX_ERROR_BODY) break;
    chunks.push(b);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Reads a whole body and parses it as JSON. */
export async function readJson(res: ResponseStream): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk);
  return parseJsonBody(Buffer.concat(chunks));
}

/** Parses a response body; throws MalformedResponse when it is not JSON. */
export function parseJsonBody(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new MalformedResponse(`response is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function reasonOf(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new Error('aborted');
}
