// POSTs JSON over node's http/https with an optional CA and bearer token, retrying transient failures with backoff.
import http from 'node:http';
import https from 'node:https';
import { silentLog, type Log } from '../observability/log.js';
import { retry, type BackoffPolicy } from './backoff.js';
import { SinkError } from './sink.js';

export interface HttpTransportOptions {
  readonly url: string;
  /** PEM CA bundle to trust for https (instead of the system roots). */
  readonly ca?: string | Buffer;
  /** Read at every request, so a rotated Secret takes effect without restarting. */
  readonly token?: () => string | undefined | Promise<string | undefined>;
  /**
   * Per request. Generous, because a request that timed out may still succeed at the receiver and is
   * then sent again: a slow receiver would get every batch several times. @default 30000
   */
  readonly timeoutMs?: number;
  /** Tries per send, with backoff between them. @default { attempts: 4, baseMs: 500, maxMs: 10000 } */
  readonly retry?: Partial<BackoffPolicy> & { attempts?: number };
  readonly log?: Log;
  /** @default 'dcp-operator' */
  readonly userAgent?: string;
  /**
   * Checked right before each request goes out (every retry included, after the token is read);
   * throwing ends the send. A leader paused between tries must not send once its lease has lapsed.
   */
  readonly beforeRequest?: () => void;
}

export interface HttpResponse {
  readonly status: number;
  readonly body: string;
}

// 408 and 429 say "later"; 5xx say "not now". Everything else in 4xx will fail the same way again.
const transient = (status: number): boolean => status === 408 || status === 429 || status >= 500;

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (v === undefined) return undefined;
  const seconds = Number(v);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

export class HttpTransport {
  readonly url: URL;
  private readonly agent: http.Agent;
  private readonly options: HttpTransportOptions;
  private readonly log: Log;

  constructor(options: HttpTransportOptions) {
    this.url = new URL(options.url);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new Error(`unsupported URL scheme: ${this.url.protocol}`);
    this.options = options;
    this.log = options.log ?? silentLog;
    // Keep-alive: a catching-up sink sends many batches back to back.
    this.agent = this.url.protocol === 'https:' ? new https.Agent({ keepAlive: true, ca: options.ca }) : new http.Agent({ keepAlive: true });
  }

  /** POSTs `body` (JSON), retrying transient failures; resolves with the 2xx response. */
  async post(body: string, signal: AbortSignal, headers: Record<string, string> = {}): Promise<HttpResponse> {
    const r = this.options.retry ?? {};
    return retry(() => this.once(body, signal, headers), {
      attempts: r.attempts ?? 4,
      baseMs: r.baseMs ?? 500,
      maxMs: r.maxMs ?? 10_000,
      random: r.random,
      signal,
      retryable: (err) => !(err instanceof SinkError) || err.retryable,
      requestedDelay: (err) => (err instanceof SinkError ? err.retryAfterMs : undefined),
      onRetry: (err, attempt, delayMs) => this.log.debug('sink: retrying POST', { url: this.url.origin, attempt, delayMs: Math.round(delayMs), error: String(err) }),
    });
  }

  private async once(body: string, signal: AbortSignal, extra: Record<string, string>): Promise<HttpResponse> {
    const token = await this.options.token?.();
    this.options.beforeRequest?.();
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'user-agent': this.options.userAgent ?? 'dcp-operator',
      ...extra,
    };
    if (token) headers['authorization'] = `Bearer ${token}`;
    const mod = this.url.protocol === 'https:' ? https : http;
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = mod.request(this.url, { method: 'POST', headers, agent: this.agent, signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          if (status >= 200 && status < 300) return resolve({ status, body: text });
          reject(new SinkError(`POST ${this.url.origin}${this.url.pathname}: HTTP ${status}`, transient(status), status, retryAfterMs(res.headers['retry-after'])));
        });
      });
      // A deadline for the whole exchange, not just socket idleness: a trickling receiver must not stall the sink.
      const timeoutMs = this.options.timeoutMs ?? 30_000;
      const timer = setTimeout(() => req.destroy(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
      req.on('close', () => clearTimeout(timer));
      // Network errors, refused connections and timeouts are all worth another try.
      req.on('error', (err) => reject(new SinkError(`POST ${this.url.origin}${this.url.pathname}: ${err.message}`, true)));
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
