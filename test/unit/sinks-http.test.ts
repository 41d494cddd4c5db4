// The http, otlp and file sinks against real receivers on 127.0.0.1: bodies, headers, retries, TLS, OTLP shape.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { DcpEvent } from '../../src/api/event.js';
import { exampleEvent } from '../../src/pipeline/examples.js';
import { FileSink } from '../../src/sinks/file-sink.js';
import { HttpSink } from '../../src/sinks/http-sink.js';
import { OtlpSink, otlpLogsUrl } from '../../src/sinks/otlp-sink.js';
import { SinkError } from '../../src/sinks/sink.js';

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  url: string;
  requests: Received[];
  close(): Promise<void>;
}

type Reply = (req: Received, n: number) => { status: number; body?: string; headers?: Record<string, string> } | 'hang';

/** A real HTTP(S) server on 127.0.0.1 that records each request and answers as `reply` says. */
async function receiver(reply: Reply, tls?: { key: string; cert: string }): Promise<Receiver> {
  const requests: Received[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
      requests.push(r);
      const answer = reply(r, requests.length);
      if (answer === 'hang') return;
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body ?? '{}');
    });
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const T = new Date('2026-11-24T21:00:00.000Z');
const EVENTS: DcpEvent[] = [exampleEvent('HostError', T, 'a'), exampleEvent('CoreUsage', T, 'b')];
const fast = { attempts: 3, baseMs: 1, maxMs: 5 };
const signal = (): AbortSignal => new AbortController().signal;

async function failure(p: Promise<unknown>): Promise<SinkError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SinkError) return err;
    throw err;
  }
  throw new Error('expected a SinkError');
}

describe('sinks', function () {
  // Generous: fsync and the first schema compile are slow on a loaded machine; nothing here measures time.
  this.timeout(10_000);
  const servers: Receiver[] = [];
  const serve = async (reply: Reply, tls?: { key: string; cert: string }): Promise<Receiver> => {
    const r = await receiver(reply, tls);
    servers.push(r);
    return r;
  };
  afterEach(async function () {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  describe('http', function () {
    it('POSTs the batch as a JSON array with the caller-provided bearer token and a batch key', async function () {
      const r = await serve(() => ({ status: 200 }));
      const sink = new HttpSink({ name: 'regional', url: `${r.url}/ingest`, token: () => 's3cr3t-token', retry: fast });
      await sink.send(EVENTS, signal());
      await sink.close();
      expect(r.requests).to.have.length(1);
      const [req] = r.requests;
      expect(req?.method).to.equal('POST');
      expect(req?.url).to.equal('/ingest');
      expect(req?.headers['authorization']).to.equal('Bearer s3cr3t-token');
      expect(req?.headers['content-type']).to.equal('application/json');
      expect(req?.headers['idempotency-key']).to.match(/^[0-9a-f]{32}$/);
      expect(JSON.parse(req?.body ?? '')).to.deep.equal(EVENTS);
    });

    it('retries 503 and 429 with backoff until the receiver accepts', async function () {
      const r = await serve((_req, n) => (n === 1 ? { status: 503 } : n === 2 ? { status: 429, headers: { 'retry-after': '0' } } : { status: 202 }));
      const sink = new HttpSink({ name: 'regional', url: r.url, retry: fast });
      await sink.send(EVENTS, signal());
      await sink.close();
      expect(r.requests).to.have.length(3);
      expect(new Set(r.requests.map((q) => q.body)).size).to.equal(1);
    });

    it('sends no retry once beforeRequest refuses (a leader paused between tries whose lease lapsed)', async function () {
      const r = await serve(() => ({ status: 503 }));
      let tries = 0;
      const sink = new HttpSink({
        name: 'regional',
        url: r.url,
        retry: fast,
        beforeRequest: () => {
          if (++tries > 1) throw new Error('fenced: sink delivery');
        },
      });
      const refused = await sink.send(EVENTS, signal()).then(
        () => undefined,
        (err: unknown) => err,
      );
      await sink.close();
      expect(String(refused)).to.contain('fenced');
      expect(r.requests).to.have.length(1);
    });

    it('gives up after its attempts with a retryable error, so the dispatcher keeps the backlog', async function () {
      const r = await serve(() => ({ status: 500 }));
      const sink = new HttpSink({ name: 'regional', url: r.url, retry: fast });
      const err = await failure(sink.send(EVENTS, signal()));
      await sink.close();
      expect(err.retryable).to.equal(true);
      expect(err.status).to.equal(500);
      expect(r.requests).to.have.length(3);
    });

    it('does not retry an answer that will not change, such as 401', async function () {
      const r = await serve(() => ({ status: 401 }));
      const sink = new HttpSink({ name: 'regional', url: r.url, retry: fast });
      const err = await failure(sink.send(EVENTS, signal()));
      await sink.close();
      expect(err.retryable).to.equal(false);
      expect(r.requests).to.have.length(1);
    });

    it('fails a request the receiver never answers, instead of hanging', async function () {
      const r = await serve(() => 'hang');
      const sink = new HttpSink({ name: 'regional', url: r.url, timeoutMs: 100, retry: { attempts: 1 } });
      const err = await failure(sink.send(EVENTS, signal()));
      await sink.close();
      expect(err.retryable).to.equal(true);
    });

    it('stops at once, without retrying, when its signal is already aborted', async function () {
      const ac = new AbortController();
      ac.abort();
      const sink = new HttpSink({ name: 'regional', url: 'http://127.0.0.1:9/', retry: fast });
      await failure(sink.send(EVENTS, ac.signal));
      await sink.close();
    });

    describe('over TLS', function () {
      let pki: { dir: string; ca: string; key: string; cert: string } | undefined;

      before(async function () {
        this.timeout(20_000);
        const dir = await mkdtemp(join(tmpdir(), 'dcp-tls-'));
        const run = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
        try {
          run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=dcp test CA', '-days', '2');
          run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
          await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
          run('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.crt', '-days', '2', '-extfile', 'ext.cnf');
        } catch {
          await rm(dir, { recursive: true, force: true });
          this.skip(); // no openssl on this machine
        }
        const read = (f: string): Promise<string> => readFile(join(dir, f), 'utf8');
        pki = { dir, ca: await read('ca.crt'), key: await read('srv.key'), cert: await read('srv.crt') };
      });
      after(async function () {
        if (pki) await rm(pki.dir, { recursive: true, force: true });
      });

      it('trusts a receiver whose certificate the configured CA signed', async function () {
        if (!pki) return this.skip();
        const r = await serve(() => ({ status: 200 }), pki);
        const sink = new HttpSink({ name: 'regional', url: r.url, ca: pki.ca, retry: fast });
        await sink.send(EVENTS, signal());
        await sink.close();
        expect(r.requests).to.have.length(1);
      });

      it('refuses the same receiver without that CA', async function () {
        if (!pki) return this.skip();
        const r = await serve(() => ({ status: 200 }), pki);
        const sink = new HttpSink({ name: 'regional', url: r.url, retry: { attempts: 1 } });
        const err = await failure(sink.send(EVENTS, signal()));
        await sink.close();
        expect(err.message).to.match(/certificate/i);
        expect(r.requests).to.have.length(0);
      });
    });
  });

  describe('otlp', function () {
    // The OTLP/HTTP JSON shape of ExportLogsServiceRequest (opentelemetry-proto logs.proto, JSON mapping).
    const keyValue = {
      type: 'object',
      required: ['key', 'value'],
      properties: {
        key: { type: 'string' },
        value: { type: 'object', minProperties: 1, maxProperties: 1, properties: { stringValue: { type: 'string' }, intValue: { type: 'string', pattern: '^-?\\d+$' }, boolValue: { type: 'boolean' } }, additionalProperties: false },
      },
      additionalProperties: false,
    };
    const otlpSchema = {
      type: 'object',
      required: ['resourceLogs'],
      additionalProperties: false,
      properties: {
        resourceLogs: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            required: ['resource', 'scopeLogs'],
            additionalProperties: false,
            properties: {
              resource: { type: 'object', properties: { attributes: { type: 'array', items: keyValue } }, additionalProperties: false },
              scopeLogs: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['scope', 'logRecords'],
                  additionalProperties: false,
                  properties: {
                    scope: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, version: { type: 'string' } }, additionalProperties: false },
                    logRecords: {
                      type: 'array',
                      items: {
                        type: 'object',
                        required: ['timeUnixNano', 'body', 'attributes'],
                        additionalProperties: false,
                        properties: {
                          timeUnixNano: { type: 'string', pattern: '^\\d+$' },
                          observedTimeUnixNano: { type: 'string', pattern: '^\\d+$' },
                          severityNumber: { type: 'integer', minimum: 1, maximum: 24 },
                          severityText: { type: 'string' },
                          body: { type: 'object', required: ['stringValue'], properties: { stringValue: { type: 'string' } }, additionalProperties: false },
                          attributes: { type: 'array', items: keyValue },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
    };

    it('POSTs valid OTLP/HTTP JSON logs to /v1/logs, one record per event, the event as body', async function () {
      const r = await serve(() => ({ status: 200, body: '{}' }));
      const sink = new OtlpSink({ name: 'otel', url: r.url, retry: fast, now: () => T.getTime() });
      await sink.send(EVENTS, signal());
      await sink.close();
      expect(r.requests).to.have.length(1);
      const [req] = r.requests;
      expect(req?.url).to.equal('/v1/logs');
      expect(req?.headers['content-type']).to.equal('application/json');
      const body = JSON.parse(req?.body ?? '') as {
        resourceLogs: { resource: { attributes: { key: string; value: { stringValue: string } }[] }; scopeLogs: { logRecords: { timeUnixNano: string; body: { stringValue: string }; attributes: { key: string; value: { stringValue: string } }[] }[] }[] }[];
      };
      const validate = new Ajv2020({ strict: false }).compile(otlpSchema);
      expect(validate(body), JSON.stringify(validate.errors)).to.equal(true);
      const resource = Object.fromEntries(body.resourceLogs[0]?.resource.attributes.map((a) => [a.key, a.value.stringValue]) ?? []);
      expect(resource).to.include({ 'service.name': 'dcp-operator', 'cloud.region': 'eastus', 'k8s.cluster.uid': EVENTS[0]?.cluster.id });
      const records = body.resourceLogs[0]?.scopeLogs[0]?.logRecords ?? [];
      expect(records.map((rec) => JSON.parse(rec.body.stringValue) as unknown)).to.deep.equal(EVENTS);
      expect(records[0]?.timeUnixNano).to.equal(`${T.getTime()}000000`);
      const attrs = Object.fromEntries(records[1]?.attributes.map((a) => [a.key, a.value.stringValue]) ?? []);
      expect(attrs).to.deep.include({ 'dcp.category': 'billing', 'dcp.name': 'CoreUsage', 'dcp.id': EVENTS[1]?.id });
    });

    it('derives the logs endpoint from a collector base URL', function () {
      expect(otlpLogsUrl('http://otel:4318')).to.equal('http://otel:4318/v1/logs');
      expect(otlpLogsUrl('http://otel:4318/base/')).to.equal('http://otel:4318/base/v1/logs');
      expect(otlpLogsUrl('https://otel/v1/logs')).to.equal('https://otel/v1/logs');
    });
  });

  describe('file', function () {
    it('appends JSON lines, starting a fresh line after a torn one', async function () {
      const dir = await mkdtemp(join(tmpdir(), 'dcp-filesink-'));
      try {
        const sink = new FileSink({ name: 'archive', path: join(dir, 'out'), now: () => T.getTime() });
        await sink.send(EVENTS.slice(0, 1), signal());
        await writeFile(sink.currentFile(), `${await readFile(sink.currentFile(), 'utf8')}{"half":`);
        await sink.send(EVENTS.slice(1), signal());
        const lines = (await readFile(join(dir, 'out', 'events-2026-11-24.jsonl'), 'utf8')).split('\n');
        expect(lines).to.have.length(4);
        expect(JSON.parse(lines[0] ?? '')).to.deep.equal(EVENTS[0]);
        expect(lines[1]).to.equal('{"half":');
        expect(JSON.parse(lines[2] ?? '')).to.deep.equal(EVENTS[1]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
