// Per configured sink: which events routing sends it, and the exact body the sink itself would make of them.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DcpEvent } from '../../api/event.js';
import type { Sink } from '../../api/policy.js';
import { route, type RoutingPolicy } from '../../pipeline/routing.js';
import { createSink } from '../../sinks/factory.js';
import { FileSink } from '../../sinks/file-sink.js';
import { otlpLogsUrl } from '../../sinks/otlp-sink.js';

export interface SinkPlan {
  readonly sink: Sink;
  /** In dispatch order: raw events, then aggregates. */
  readonly events: DcpEvent[];
  /** Why each withheld event stays out, with counts; from routing's own reasons. */
  readonly withheld: ReadonlyMap<string, number>;
  readonly delivered: ReadonlyMap<string, number>;
}

export function planSinks(sinks: readonly Sink[], events: readonly DcpEvent[], policy: RoutingPolicy): SinkPlan[] {
  return sinks.map((sink) => {
    const routed: DcpEvent[] = [];
    const withheld = new Map<string, number>();
    const delivered = new Map<string, number>();
    for (const e of events) {
      const r = route(e, sink, policy);
      const tally = r.deliver ? delivered : withheld;
      tally.set(r.reason, (tally.get(r.reason) ?? 0) + 1);
      if (r.deliver) routed.push(e);
    }
    return { sink, events: routed, withheld, delivered };
  });
}

export interface SinkBody {
  /** Where the body would go: the URL it is POSTed to, or the file it is appended to. */
  readonly destination: string;
  /** Request headers worth knowing (http, otlp). */
  readonly headers: Readonly<Record<string, string>>;
  /** The exact bytes, as UTF-8; undefined when the sink would receive nothing. */
  readonly body: string | undefined;
}

/** Runs `send` against a one-request HTTP server on 127.0.0.1 and returns what arrived. */
async function capturePost(send: (url: string) => Promise<void>): Promise<{ headers: http.IncomingHttpHeaders; body: string }> {
  let captured: { headers: http.IncomingHttpHeaders; body: string } | undefined;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      captured = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  try {
    await send(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((ok) => server.close(() => ok()));
  }
  if (!captured) throw new Error('the sink sent no request');
  return captured;
}

const SHOWN_HEADERS = ['content-type', 'idempotency-key'];

/**
 * The body a sink would receive for `events`, made by the sink itself: http and otlp sinks POST to
 * a capture server on 127.0.0.1, a file sink appends to a temporary directory. NOTE: this is what
 * makes the preview exact; formatting the events here instead would drift from the sinks.
 */
export async function renderSinkBody(config: Sink, events: readonly DcpEvent[], now: number, operatorNamespace: string): Promise<SinkBody> {
  const signal = new AbortController().signal;
  if (config.type === 'file') {
    const destination = new FileSink({ name: config.name, path: config.path ?? '.', now: () => now }).currentFile();
    if (events.length === 0) return { destination, headers: {}, body: undefined };
    const dir = await mkdtemp(join(tmpdir(), 'dcp-preview-'));
    try {
      const sink = createSink({ ...config, path: dir }, { now: () => now });
      await sink.send(events, signal);
      await sink.close();
      const files = (await readdir(dir)).sort();
      const parts = await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')));
      return { destination, headers: {}, body: parts.join('') };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const url = config.url ?? '';
  const destination = config.type === 'otlp' ? otlpLogsUrl(url) : url;
  const auth: Record<string, string> = config.secretRef ? { authorization: `Bearer <token: Secret ${operatorNamespace}/${config.secretRef.name}, key ${config.secretRef.key}>` } : {};
  if (events.length === 0) return { destination, headers: { 'content-type': 'application/json', ...auth }, body: undefined };
  const got = await capturePost(async (captureUrl) => {
    const sink = createSink({ ...config, url: captureUrl }, { now: () => now, retry: { attempts: 1 }, timeoutMs: 10_000 });
    try {
      await sink.send(events, signal);
    } finally {
      await sink.close();
    }
  });
  const headers: Record<string, string> = {};
  for (const h of SHOWN_HEADERS) {
    const v = got.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  return { destination, headers: { ...headers, ...auth }, body: got.body };
}
