// The audit-webhook receiver: HTTPS, a bearer token the API server presents, a body size limit, EventList batches.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseAddress } from '../observability/http.js';
import type { Log } from '../observability/log.js';
import { MalformedAudit, parseEventList, type AuditRecord } from './audit-event.js';
import type { AuditMetrics } from './metrics.js';

export interface ReceiverOptions {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** The token the API server must present (read at each request, so a rotated Secret applies at once). */
  readonly token: () => string;
  /** Bodies larger than this are refused with 413. */
  readonly maxBodyBytes: number;
  /** Resolves once the batch is written or buffered; a rejection answers 503 so the API server retries. */
  readonly onBatch: (records: AuditRecord[]) => Promise<void>;
  readonly metrics: AuditMetrics;
  readonly log: Log;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

type Refusal = 'unauthenticated' | 'forbidden' | 'too_large' | 'malformed';

export class WebhookReceiver {
  private server: Server | undefined;
  private closing = false;

  constructor(private readonly options: ReceiverOptions) {}

  async listen(address: string): Promise<AddressInfo> {
    const { host, port } = parseAddress(address);
    const server = createServer({ cert: this.options.cert, key: this.options.key, minVersion: 'TLSv1.2' }, (req, res) => {
      void this.handle(req, res);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    // In-flight batches finish (close waits for them); idle keep-alive connections go now, and a busy one
    // after its response (Connection: close). A client that keeps one open past the grace is cut.
    this.closing = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const cut = setTimeout(() => server.closeAllConnections(), 5000);
    await closed;
    clearTimeout(cut);
  }

  private refuse(res: ServerResponse, status: number, reason: Refusal, message: string): void {
    this.options.metrics.refused.inc({ reason });
    this.options.log.warn('audit webhook request refused', { status, reason, message });
    res.writeHead(status, { 'content-type': 'text/plain', connection: 'close' });
    res.end(`${message}\n`);
  }

  private authorize(req: IncomingMessage): { status: number; reason: Refusal; message: string } | undefined {
    const header = req.headers.authorization;
    const m = header === undefined ? null : /^Bearer\s+(\S+)$/i.exec(header);
    if (!m?.[1]) return { status: 401, reason: 'unauthenticated', message: 'a bearer token is required' };
    // Compared as digests: constant time, whatever the lengths.
    if (!timingSafeEqual(digest(m[1]), digest(this.options.token()))) return { status: 403, reason: 'forbidden', message: 'the token is not the one this exporter expects' };
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.closing) res.setHeader('connection', 'close');
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' });
      res.end();
      return;
    }
    const denied = this.authorize(req);
    if (denied) {
      req.resume();
      this.refuse(res, denied.status, denied.reason, denied.message);
      return;
    }
    const max = this.options.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > max) {
      req.resume();
      this.refuse(res, 413, 'too_large', `body over ${max} bytes`);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > max) {
          this.refuse(res, 413, 'too_large', `body over ${max} bytes`);
          req.destroy();
          return;
        }
        chunks.push(chunk as Buffer);
      }
    } catch {
      return; // the client went away
    }
    let records: AuditRecord[];
    try {
      records = parseEventList(Buffer.concat(chunks, size));
    } catch (err) {
      if (!(err instanceof MalformedAudit)) throw err;
      this.refuse(res, 400, 'malformed', err.message);
      return;
    }
    try {
      await this.options.onBatch(records);
    } catch (err) {
      this.options.log.error('audit batch could not be written nor buffered', { error: String(err), events: records.length });
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '5' });
      res.end('the exporter cannot store this batch now; retry\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  }
}
