// The metrics and health endpoints: /metrics (prom-client), /healthz and /readyz built from small named checks; HTTPS and a per-request authorizer when asked.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** A named check; returns undefined when healthy, or the reason it is not. */
export type Check = () => string | undefined;

/** Whether a request may be served (e.g. a TokenReview and SubjectAccessReview of its bearer token). */
export type Authorize = (authorization: string | undefined, path: string) => Promise<{ allowed: true } | { allowed: false; status: number; message: string }>;

export interface ProbeServerOptions {
  registry?: Registry;
  healthz?: Record<string, Check>;
  readyz?: Record<string, Check>;
  /** Serve HTTPS with this certificate and key (PEM) instead of plain HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Asked before every request is served; a refusal answers its status (401, 403, 500) and message. */
  authorize?: Authorize;
}

/** Parses `host:port` or `:port` (all interfaces). */
export function parseAddress(addr: string): { host: string | undefined; port: number } {
  const i = addr.lastIndexOf(':');
  if (i < 0) throw new Error(`address "${addr}" must be host:port or :port`);
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`address "${addr}" has no valid port`);
  return { host: host === '' ? undefined : host, port };
}

function runChecks(checks: Record<string, Check>, verbose: boolean): { ok: boolean; body: string } {
  const lines: string[] = [];
  let ok = true;
  for (const [name, check] of Object.entries(checks)) {
    let failure: string | undefined;
    try {
      failure = check();
    } catch (err) {
      failure = err instanceof Error ? err.message : String(err);
    }
    if (failure !== undefined) ok = false;
    lines.push(failure === undefined ? `[+]${name} ok` : `[-]${name} failed: ${failure}`);
  }
  const summary = ok ? 'ok' : 'not ok';
  return { ok, body: verbose || !ok ? `${lines.join('\n')}\n${summary}\n` : `${summary}\n` };
}

export class ProbeServer {
  private server: Server | undefined;

  constructor(private readonly options: ProbeServerOptions) {}

  async listen(address: string): Promise<AddressInfo> {
    const { host, port } = parseAddress(address);
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      const authorize = this.options.authorize;
      if (authorize === undefined) {
        this.serve(req, res);
        return;
      }
      authorize(req.headers.authorization, new URL(req.url ?? '/', 'http://probe').pathname).then(
        (decision) => {
          if (decision.allowed) {
            this.serve(req, res);
            return;
          }
          res.writeHead(decision.status, { 'content-type': 'text/plain' });
          res.end(`${decision.message}\n`);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`${String(err)}\n`);
        },
      );
    };
    const tls = this.options.tls;
    // https.Server is an http.Server underneath: close() and closeAllConnections() work the same.
    const server: Server = tls !== undefined ? createTlsServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, handler) : createServer(handler);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return server.address() as AddressInfo;
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://probe');
    const verbose = url.searchParams.has('verbose');
    if (url.pathname === '/metrics' && this.options.registry) {
      const registry = this.options.registry;
      registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        })
        .catch((err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        });
      return;
    }
    const checks = url.pathname === '/healthz' ? this.options.healthz : url.pathname === '/readyz' ? this.options.readyz : undefined;
    if (!checks) {
      res.writeHead(404);
      res.end('not found\n');
      return;
    }
    const { ok, body } = runChecks(checks, verbose);
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
    res.end(body);
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
