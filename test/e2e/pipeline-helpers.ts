// Helpers for the pipeline e2e tests: recording HTTP receivers, policy status, store reads, and a leak scanner.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeSync, openSync, writeSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { DcpEvent } from '../../src/api/event.js';
import { CursorStore } from '../../src/sinks/cursor.js';
import { listDays, partitionFile } from '../../src/store/days.js';
import { EventStore, type ReadQuery, type StorePosition } from '../../src/store/event-store.js';
import type { TestCluster } from './harness.js';
import { waitFor } from './operator-process.js';

export const SUBSCRIPTION = '3f2c1a9e-0000-4000-8000-000000000001';
export const REGION = 'eastus';

/** Runs `work` over `items`, at most `concurrency` at a time; rejects with the first failure. */
export async function pool<T>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      await work(items[i] as T, i);
    }
  });
  await Promise.all(workers);
}

// ---------------------------------------------------------------------------------------------
// Receivers

export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** What the receiver answered. */
  readonly status: number;
  readonly at: number;
  /** Who sent it, as `Receiver.from` named the client's port while the connection was open. */
  readonly from?: string;
}

/** The events in one request body: an http sink's JSON array, or an OTLP logs request whose bodies are events. */
export function eventsOfBody(body: string): DcpEvent[] {
  const parsed = JSON.parse(body) as unknown;
  if (Array.isArray(parsed)) return parsed as DcpEvent[];
  const logs = parsed as { resourceLogs?: { scopeLogs?: { logRecords?: { body?: { stringValue?: string } }[] }[] }[] };
  const out: DcpEvent[] = [];
  for (const rl of logs.resourceLogs ?? []) {
    for (const sl of rl.scopeLogs ?? []) {
      for (const r of sl.logRecords ?? []) {
        if (r.body?.stringValue !== undefined) out.push(JSON.parse(r.body.stringValue) as DcpEvent);
      }
    }
  }
  return out;
}

/**
 * A real HTTP server on 127.0.0.1 that records every request. It answers `status` (200 unless a
 * test makes it fail), with `{}` so an OTLP sink reads no partial success.
 */
export class Receiver {
  readonly requests: ReceivedRequest[] = [];
  status = 200;
  /** Answers this late (a slow receiver). */
  delayMs = 0;
  /** When set, a request without `Authorization: Bearer <token>` is answered 401. */
  token: string | undefined;
  port = 0;
  /** Names the sender of a request from its client port (looked up when the request arrives). */
  from: ((clientPort: number) => string | undefined) | undefined;
  private readonly server: Server = createServer((req, res) => {
    const from = this.from?.(req.socket.remotePort ?? 0);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}` ? 401 : this.status;
      this.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status, at: Date.now(), ...(from !== undefined ? { from } : {}) });
      const answer = (): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(status < 300 ? '{}' : '{"error":"unavailable"}');
      };
      if (this.delayMs > 0) setTimeout(answer, this.delayMs);
      else answer();
    });
  });

  private constructor() {}

  /** Listens on 127.0.0.1, on a free port. */
  static async start(): Promise<Receiver> {
    const r = new Receiver();
    await new Promise<void>((resolve, reject) => {
      r.server.once('error', reject);
      r.server.listen(0, '127.0.0.1', () => resolve());
    });
    r.port = (r.server.address() as AddressInfo).port;
    return r;
  }

  url(path = '/ingest'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Requests it accepted (2xx). */
  accepted(): ReceivedRequest[] {
    return this.requests.filter((r) => r.status < 300);
  }

  /** Every event in accepted bodies, duplicates included (delivery is at least once). */
  events(): DcpEvent[] {
    return this.accepted().flatMap((r) => eventsOfBody(r.body));
  }

  ids(): Set<string> {
    return new Set(this.events().map((e) => e.id));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Down: stops listening, so senders get connection refused until up(). */
  down(): Promise<void> {
    return this.close();
  }

  /** Listens again on the same port. */
  async up(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The policy

export interface PolicyCondition {
  type: string;
  status: string;
  reason: string;
  message?: string;
  observedGeneration?: number;
}

export interface PolicyView {
  metadata: { generation: number };
  spec: Record<string, unknown>;
  status?: {
    observedGeneration?: number;
    conditions?: PolicyCondition[];
    inventory?: { nodes: number; pods: number; vCores: number };
    categories?: Record<string, { enabled: boolean; eventsEmitted: number; lastEventTime?: string } | undefined>;
    store?: { events: number; bytes: number; oldestEventTime?: string };
  };
}

export interface SinkSpec {
  name: string;
  type: 'http' | 'otlp' | 'file';
  url?: string;
  path?: string;
  secretRef?: { name: string; key: string };
  region: string;
}

/** The policy YAML: subscription, region eastus, and whatever spec fields the test sets. */
export function policyYaml(spec: Record<string, unknown>): string {
  return stringify({
    apiVersion: 'datacollection.arc.io/v1alpha1',
    kind: 'DataCollectionPolicy',
    metadata: { name: 'default' },
    spec: { subscriptionId: SUBSCRIPTION, region: REGION, ...spec },
  });
}

export async function getPolicy(c: TestCluster): Promise<PolicyView | undefined> {
  const r = await c.kubectl(['get', 'dcp', 'default', '-o', 'json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as PolicyView) : undefined;
}

export const condition = (p: PolicyView | undefined, type: string): PolicyCondition | undefined => p?.status?.conditions?.find((c) => c.type === type);

/** One condition of the policy as the API server has it now (undefined while there is no policy or no such condition). */
/** A sink's entry in status.sinks[] (SinkStatusSchema). */
export interface SinkView {
  name: string;
  state: string;
  backlogEvents: number;
  oldestUndeliveredTime?: string;
  lastSuccessTime?: string;
  failingSince?: string;
  lastErrorClass?: string;
  lastError?: string;
}

export async function sinkStatus(c: TestCluster, name: string): Promise<SinkView | undefined> {
  const p = (await getPolicy(c)) as { status?: { sinks?: SinkView[] } } | undefined;
  return p?.status?.sinks?.find((s) => s.name === name);
}

export async function policyCondition(c: TestCluster, type: string): Promise<PolicyCondition | undefined> {
  return condition(await getPolicy(c), type);
}

/** Waits until the policy's status and its Ready condition are at the current generation and Ready is True. */
export async function readyAtGeneration(c: TestCluster, timeoutMs = 60_000): Promise<PolicyView> {
  let last: PolicyView | undefined;
  await waitFor(
    async () => {
      last = await getPolicy(c);
      const ready = condition(last, 'Ready');
      return last !== undefined && last.status?.observedGeneration === last.metadata.generation && ready?.status === 'True' && ready.observedGeneration === last.metadata.generation;
    },
    timeoutMs,
    'the policy to be Ready at its generation',
    250,
  );
  if (!last) throw new Error('unreachable');
  return last;
}

/** kubectl apply that must succeed. */
export async function applyOk(c: TestCluster, yaml: string): Promise<void> {
  const r = await c.apply(yaml);
  if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
}

// ---------------------------------------------------------------------------------------------
// The store, read beside (or after) the operator

export async function readStore(dataDir: string, query: ReadQuery = {}): Promise<DcpEvent[]> {
  const store = await EventStore.open({ dataDir, readOnly: true });
  try {
    return await store.read(query);
  } finally {
    await store.close();
  }
}

export async function storeStats(dataDir: string): Promise<{ events: number; bytes: number; oldestEventTime?: string }> {
  const store = await EventStore.open({ dataDir, readOnly: true });
  try {
    return store.stats();
  } finally {
    await store.close();
  }
}

/** Fills the file system holding `path` until a write fails with ENOSPC. */
export function fill(path: string): void {
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

/** Every event id in the store, raw and aggregates. */
export async function storeIds(dataDir: string): Promise<Set<string>> {
  const [raw, aggregates] = await Promise.all([readStore(dataDir), readStore(dataDir, { stream: 'aggregates' })]);
  return new Set([...raw, ...aggregates].map((e) => e.id));
}

/** The end of the raw stream as it is on disk now: the newest partition and its size. */
export async function rawEnd(dataDir: string): Promise<StorePosition | undefined> {
  const day = (await listDays(join(dataDir, 'raw'))).at(-1);
  return day === undefined ? undefined : { partition: day, offset: (await stat(join(dataDir, 'raw', partitionFile(day)))).size };
}

/** Whether a sink's persisted cursor has read (and so delivered or filtered out) the raw stream up to `end`. */
export async function cursorPast(dataDir: string, sink: string, end: StorePosition): Promise<boolean> {
  const raw = (await new CursorStore(dataDir).load(sink)).raw;
  return raw !== undefined && (raw.partition > end.partition || (raw.partition === end.partition && raw.offset >= end.offset));
}

/** Pods are refused until the controller-manager has made a new namespace's default ServiceAccount. */
export async function waitForDefaultServiceAccount(c: TestCluster, namespace: string): Promise<void> {
  await waitFor(async () => (await c.kubectl(['-n', namespace, 'get', 'serviceaccount', 'default'])).code === 0, 30_000, `the default ServiceAccount of ${namespace}`, 200);
}

// ---------------------------------------------------------------------------------------------
// The leak scanner

/**
 * A planted value. `glue`: for values without a marker (IP addresses), a match counts only when the
 * characters on either side do not continue it (203.0.113.7 is not in 203.0.113.70).
 */
export interface Needle {
  readonly value: string;
  readonly what: string;
  readonly glue?: RegExp;
}

/** A place something may have leaked to: a file, or a body a receiver got. */
export interface Haystack {
  readonly name: string;
  readonly text: string;
}

export interface Leak {
  readonly needle: Needle;
  readonly where: string;
}

/** Every regular file under `dir` (recursively), as text. */
export async function filesUnder(dir: string): Promise<Haystack[]> {
  const out: Haystack[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) out.push({ name: path, text: await readFile(path, 'utf8') });
    }
  };
  await walk(dir);
  return out;
}

/** Every string (keys too) inside a JSON value, recursing into strings that are JSON themselves (OTLP bodies). */
function jsonStrings(value: unknown, out: string[]): void {
  if (typeof value === 'string') {
    out.push(value);
    const t = value.trimStart();
    if (t.startsWith('{') || t.startsWith('[')) {
      try {
        jsonStrings(JSON.parse(value), out);
      } catch {
        // not JSON after all: the string itself is kept
      }
    }
  } else if (Array.isArray(value)) {
    for (const v of value) jsonStrings(v, out);
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      jsonStrings(v, out);
    }
  }
}

/**
 * The text of a haystack in every form a value could hide in: as stored, and with JSON escaping
 * undone (a planted "a\b" or a PEM's newlines are escaped in JSON), for whole-file JSON and for
 * lines holding JSON after a prefix (the store's "<crc32> <json>" records).
 */
function forms(h: Haystack): string[] {
  const decoded: string[] = [];
  const tryParse = (text: string): boolean => {
    try {
      jsonStrings(JSON.parse(text), decoded);
      return true;
    } catch {
      return false;
    }
  };
  if (!tryParse(h.text)) {
    for (const line of h.text.split('\n')) {
      const start = line.search(/[[{]/);
      if (start >= 0) tryParse(line.slice(start));
    }
  }
  return [h.text, decoded.join('\n')].map((s) => s.toLowerCase());
}

const KEY = 8;

interface Keyed {
  readonly needle: Needle;
  readonly value: string;
  /** Where the key starts in the value. */
  readonly offset: number;
}

/**
 * Which needles occur in which haystacks, case-insensitively. Each needle is indexed by one
 * 8-character window of it (any occurrence of the needle holds that window at a known offset), so
 * the scan is one pass over the text however many needles there are, and each hit is checked in place.
 */
export function findLeaks(haystacks: readonly Haystack[], needles: readonly Needle[]): Leak[] {
  const byKey = new Map<string, Keyed[]>();
  for (const needle of needles) {
    const value = needle.value.toLowerCase();
    if (value.length < KEY) throw new Error(`needle too short to scan for: ${needle.what} ${JSON.stringify(needle.value)}`);
    const offset = Math.floor((value.length - KEY) / 2);
    const key = value.slice(offset, offset + KEY);
    const list = byKey.get(key);
    if (list) list.push({ needle, value, offset });
    else byKey.set(key, [{ needle, value, offset }]);
  }
  const leaks: Leak[] = [];
  for (const h of haystacks) {
    const found = new Set<Needle>();
    for (const text of forms(h)) {
      for (let i = 0; i + KEY <= text.length; i++) {
        const candidates = byKey.get(text.slice(i, i + KEY));
        if (!candidates) continue;
        for (const k of candidates) if (!found.has(k.needle) && occursAt(text, k, i - k.offset)) found.add(k.needle);
      }
    }
    for (const needle of found) leaks.push({ needle, where: h.name });
  }
  return leaks;
}

function occursAt(text: string, k: Keyed, at: number): boolean {
  if (at < 0 || !text.startsWith(k.value, at)) return false;
  const glue = k.needle.glue;
  return glue === undefined || (!glue.test(text.charAt(at - 1)) && !glue.test(text.charAt(at + k.value.length)));
}

/** Which of `markers` occur anywhere in the haystacks (in any form), with where. */
export function findMarkers(haystacks: readonly Haystack[], pattern: RegExp, markers: ReadonlySet<string>): { marker: string; where: string }[] {
  const out: { marker: string; where: string }[] = [];
  for (const h of haystacks) {
    const seen = new Set<string>();
    for (const text of forms(h)) {
      for (const m of text.matchAll(new RegExp(pattern.source, 'g'))) {
        if (markers.has(m[0]) && !seen.has(m[0])) {
          seen.add(m[0]);
          out.push({ marker: m[0], where: h.name });
        }
      }
    }
  }
  return out;
}
