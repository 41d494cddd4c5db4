// A TCP proxy between the operator and the API server that counts, on the server's side, every connection the operator opens and the bytes it sends.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

interface KubeconfigFile {
  clusters?: Array<{ cluster?: { server?: string } }>;
}

/**
 * NOTE: TLS passes through untouched (the operator still verifies the API server's certificate,
 * which names 127.0.0.1), so the proxy sees connections and bytes, not requests. While the API
 * server is down every request opens a connection of its own (nothing is there to keep alive), so
 * connections are the number of requests the server would have had to refuse.
 */
export class CountingProxy {
  /** When each connection from the operator was accepted (ms since the epoch). */
  readonly accepted: number[] = [];
  /** Bytes from the operator, per accepted connection in the same order. */
  private readonly sent: number[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Listens on 127.0.0.1 (a free port) and forwards every connection to the server of `kubeconfigPath`. */
  static async start(kubeconfigPath: string): Promise<{ proxy: CountingProxy; kubeconfig: string }> {
    const config = parse(readFileSync(kubeconfigPath, 'utf8')) as KubeconfigFile;
    const cluster = config.clusters?.[0]?.cluster;
    if (cluster?.server === undefined) throw new Error(`${kubeconfigPath}: no cluster server`);
    const upstream = new URL(cluster.server);
    const server = createServer();
    const proxy = await new Promise<CountingProxy>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        resolve(new CountingProxy(server, typeof address === 'object' && address !== null ? address.port : 0));
      });
    });
    server.on('connection', (client) => proxy.forward(client, upstream.hostname, Number(upstream.port || 443)));
    cluster.server = `https://127.0.0.1:${proxy.port}`;
    const kubeconfig = join(mkdtempSync(join(tmpdir(), 'dcp-proxy-')), 'kubeconfig');
    writeFileSync(kubeconfig, stringify(config));
    return { proxy, kubeconfig };
  }

  private forward(client: Socket, host: string, port: number): void {
    const i = this.accepted.push(Date.now()) - 1;
    this.sent[i] = 0;
    const server = connect({ host, port });
    this.sockets.add(client).add(server);
    client.on('data', (chunk: Buffer) => (this.sent[i] = (this.sent[i] ?? 0) + chunk.length));
    client.pipe(server).pipe(client);
    const end = (): void => {
      client.destroy();
      server.destroy();
      this.sockets.delete(client);
      this.sockets.delete(server);
    };
    for (const s of [client, server]) {
      s.on('error', end);
      s.on('close', end);
    }
  }

  /** Connections accepted and bytes received in [from, to), and the most connections in any one second of it. */
  between(from: number, to: number): { connections: number; bytes: number; peakPerSecond: number } {
    let connections = 0;
    let bytes = 0;
    const perSecond = new Map<number, number>();
    this.accepted.forEach((at, i) => {
      if (at < from || at >= to) return;
      connections++;
      bytes += this.sent[i] ?? 0;
      const s = Math.floor((at - from) / 1000);
      perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
    });
    return { connections, bytes, peakPerSecond: Math.max(0, ...perSecond.values()) };
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * The most connections the operator may open while the API server is down for `downMs`, from its own settings: each
 * cache retries on a backoff whose shortest delays are 0.8, 1.6, 3.2 ... s (at most 30 s apart once capped), plus
 * two for the watch that closed and the request in flight; the reconnect probe asks once a second; `others` (the
 * stall watchdog, status and billing writes, Events, each with its own backoff) at most once a second in all.
 */
export function connectionBound(caches: number, downMs: number): number {
  let perCache = 2;
  for (let elapsed = 0, delay = 800; elapsed <= downMs; elapsed += delay, delay = Math.min(30_000, delay * 2)) perCache++;
  const probe = Math.floor(downMs / 1000) + 1;
  const others = Math.floor(downMs / 1000) + 1;
  return caches * perCache + probe + others;
}
