// `dcp preview`: per configured sink, the exact JSON that would leave the cluster now, built and guarded as the operator does.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CATEGORY_NAMES, GROUP, PLURAL, POLICY_NAME, VERSION, type CategoryName, type PolicySpec, type Sink } from '../api/policy.js';
import { countryOf } from '../api/regions.js';
import { InvalidPolicyError, parsePolicy } from '../api/validation.js';
import { clusterRef } from '../collectors/collector.js';
import { DEVICE_KEY_SECRET, keyOfSecret, MalformedDeviceKey } from '../collectors/device-key.js';
import { deviceIdOf, hostOsData, hostOsEvent, nodeIdentifiers } from '../collectors/host-os.js';
import { InventoryCounter, inventoryEvent, type InventorySnapshot } from '../collectors/inventory.js';
import { securitySnapshot } from '../collectors/security.js';
import { projectNamespace, projectNode, projectPod, type NamespaceProjection, type NodeProjection } from '../collectors/projections.js';
import { categoryEnabled } from '../api/categories.js';
import { KubeClient, type KubeTransport } from '../kube/client.js';
import { Forbidden, NotFound } from '../kube/errors.js';
import type { LoadedKubeconfig } from '../kube/kubeconfig.js';
import { asRecord, asString, objectKey } from '../kube/resource.js';
import type { DcpEvent } from '../api/event.js';
import { DenySet, PiiGuard } from '../pipeline/guard.js';
import { cleanStrings } from '../pipeline/clean-text.js';
import { Ingest } from '../pipeline/ingest.js';
import { route, type RoutingPolicy } from '../pipeline/routing.js';
import { EventValidator, validateEvent } from '../pipeline/validate.js';
import { createSink } from '../sinks/factory.js';
import { FileSink } from '../sinks/file-sink.js';
import { otlpLogsUrl } from '../sinks/otlp-sink.js';
import { EventStore } from '../store/event-store.js';
import { parseOutput, renderEventsTable, type OutputFormat } from './events.js';
import { stringFlag, UsageError } from './flags.js';
import { loadKubeconfig } from './kubeconfig.js';
import type { Command } from './command.js';
import { countBy, formatBytes, formatTable, localIsoTime, localOffsetMinutes, plural, prettyJson, shortId, utcOffsetLabel } from './table.js';

const USAGE = `usage: dcp preview [flags]

Shows, per sink configured in the cluster's DataCollectionPolicy, the exact JSON that would leave
the cluster now: the current control-plane inventory and host OS facts, built and passed through
the same schema validation, PII guard and residency routing as 'dcp run'. Reads only; it creates
nothing (not even the device key).

flags:
  --kubeconfig F     kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)
  --namespace N      operator namespace holding the device key (default $POD_NAMESPACE or dcp-system)
  --data-dir D       the operator's event store, for the daily aggregates central sinks get (default ./data)
  --output O         table (default): a summary per sink, then each body pretty-printed
                     json: {policy, cluster, deviceKey, sinks: [{name, type, region, destination,
                     receives, reason, events, bytes, requests, headers, body}], stored, dropped,
                     notes}; body is the exact string the sink would receive
  --body-events N    table output: events shown of each body (default 3; 'all', or 0 for none)`;

/** The operator's dispatcher reads at most this many records per batch (its default batchSize). */
const DISPATCH_BATCH = 500;
/** Items per LIST page: a large cluster is read in pages, never as one huge response. */
const LIST_PAGE = 500;

// ---- reading the cluster: one-shot, read-only ----

export type DeviceKeyInfo =
  | { readonly source: 'secret'; readonly secret: string; readonly key: Buffer }
  | { readonly source: 'placeholder'; readonly secret: string; readonly key: Buffer; readonly why: string };

export interface ClusterSnapshot {
  readonly kubeSystem: NamespaceProjection;
  /** CertificateStatus and KmsStatus events as the security collector would report them now (empty when it is disabled). */
  readonly security?: readonly DcpEvent[];
  /** Node name → projection, sorted by name. */
  readonly nodes: ReadonlyMap<string, NodeProjection>;
  readonly inventory: InventorySnapshot;
  readonly deviceKey: DeviceKeyInfo;
}

/** Every item of a LIST, page by page. */
async function* listAll(transport: KubeTransport, path: string): AsyncGenerator<unknown> {
  let token: string | undefined;
  do {
    const page = asRecord(await transport.json({ path, query: { limit: LIST_PAGE, continue: token } }));
    const items = page?.['items'];
    if (Array.isArray(items)) yield* items;
    token = asString(asRecord(page?.['metadata'])?.['continue']);
  } while (token !== undefined);
}

/** The device key as the operator would use it; a random placeholder when it cannot be read (never created here). */
export async function readDeviceKey(transport: KubeTransport, namespace: string): Promise<DeviceKeyInfo> {
  const secret = `${namespace}/${DEVICE_KEY_SECRET}`;
  // A throwaway key: device IDs made with it match nothing, which is the honest thing for a placeholder.
  const placeholder = (why: string): DeviceKeyInfo => ({ source: 'placeholder', secret, key: randomBytes(32), why });
  try {
    const obj = await transport.json({ path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${DEVICE_KEY_SECRET}` });
    return { source: 'secret', secret, key: keyOfSecret(obj) };
  } catch (err) {
    if (err instanceof NotFound) return placeholder(`Secret ${secret} does not exist yet (dcp run creates it when it first collects host OS facts)`);
    if (err instanceof Forbidden) return placeholder(`you may not read Secret ${secret}`);
    if (err instanceof MalformedDeviceKey) return placeholder(err.message);
    throw err;
  }
}

export async function readClusterSnapshot(transport: KubeTransport, namespace: string): Promise<ClusterSnapshot> {
  let kubeSystem: NamespaceProjection | undefined;
  try {
    kubeSystem = projectNamespace(await transport.json({ path: '/api/v1/namespaces/kube-system' }));
  } catch (err) {
    if (!(err instanceof NotFound)) throw err;
  }
  if (!kubeSystem) throw new Error('the kube-system namespace is missing: the cluster has no id');
  const counter = new InventoryCounter();
  const nodes = new Map<string, NodeProjection>();
  for await (const obj of listAll(transport, '/api/v1/nodes')) {
    const key = objectKey(obj);
    const node = projectNode(obj);
    if (key === undefined || node === undefined) continue;
    nodes.set(key, node);
    counter.onNode('added', key, node, undefined);
  }
  // Pods are only counted: each page is projected and dropped.
  for await (const obj of listAll(transport, '/api/v1/pods')) {
    const key = objectKey(obj);
    const pod = projectPod(obj);
    if (key !== undefined && pod !== undefined) counter.onPod('added', key, pod, undefined);
  }
  const sorted = new Map([...nodes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { kubeSystem, nodes: sorted, inventory: counter.snapshot(), deviceKey: await readDeviceKey(transport, namespace) };
}

// ---- the events, built and admitted as the operator does ----

/**
 * ControlPlaneInventory, one HostOsInfo per Node and the security snapshot, built with the collectors'
 * own data functions, source keys and buckets, for the categories the policy enables.
 */
export function snapshotEvents(spec: PolicySpec, snapshot: ClusterSnapshot, now: number): DcpEvent[] {
  const cluster = clusterRef(snapshot.kubeSystem, spec);
  const time = new Date(now);
  const events: DcpEvent[] = [];
  if (spec.categories.controlPlane.enabled) {
    events.push(inventoryEvent(snapshot.inventory, snapshot.kubeSystem, spec, now));
  }
  if (spec.categories.hostOs.enabled) {
    const country = countryOf(spec.region);
    for (const node of snapshot.nodes.values()) {
      const deviceId = deviceIdOf(snapshot.deviceKey.key, node);
      events.push(hostOsEvent(cluster, time, deviceId, hostOsData(node, deviceId, country)));
    }
  }
  if (spec.categories.security.enabled) events.push(...(snapshot.security ?? []));
  return events;
}

/** An event the pipeline refused, described without its values (they may be what the guard stopped). */
export interface DroppedEvent {
  readonly id: string;
  readonly category: string;
  readonly name: string;
  readonly stage: 'schema' | 'pii';
  /** Schema problems (paths and rules) or guard findings (`path: kind`). */
  readonly problems: readonly string[];
}

/** The guard's deny set as the operator keeps it: every Node's name, hostnames and systemUUID. */
export function denySetOf(nodes: ReadonlyMap<string, NodeProjection>): DenySet {
  const denySet = new DenySet();
  for (const [name, node] of nodes) denySet.add(nodeIdentifiers(name, node));
  return denySet;
}

/** Runs `candidates` through the operator's Ingest (validator, then guard) into an in-memory store. */
export async function admit(candidates: readonly DcpEvent[], denySet: DenySet): Promise<{ stored: DcpEvent[]; dropped: DroppedEvent[] }> {
  const guard = new PiiGuard({ denySet });
  const stored: DcpEvent[] = [];
  const ingest = new Ingest({
    validator: new EventValidator(),
    guard,
    store: {
      append(events) {
        stored.push(...events);
        return Promise.resolve({ stored: events.length, duplicates: 0, expired: 0 });
      },
    },
  });
  const result = await ingest.submit(candidates);
  const accepted = new Set(result.accepted.map((e) => e.id));
  const dropped = candidates
    .filter((c) => !accepted.has(c.id))
    .map((c): DroppedEvent => {
      // What the ingest judged: the event with its strings cleaned.
      const cleaned = cleanStrings(c) as DcpEvent;
      const v = validateEvent(cleaned);
      const base = { id: c.id, category: c.category, name: c.name };
      if (!v.ok) return { ...base, stage: 'schema', problems: v.problems };
      return { ...base, stage: 'pii', problems: guard.inspect(cleaned).map((f) => `${f.path}: ${f.kind}`) };
    });
  return { stored, dropped };
}

// ---- routing and bodies ----

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

// ---- the daily aggregates central sinks get ----

export interface StoredAggregates {
  readonly events: DcpEvent[];
  /** Why there are none, or which day they are of. */
  readonly note: string;
}

/** The newest day's DailyAggregates in the operator's store (read-only), the only thing a central sink ever gets. */
export async function latestAggregates(dataDir: string): Promise<StoredAggregates> {
  try {
    if (!(await stat(join(dataDir, 'aggregates'))).isDirectory()) throw new Error('not a directory');
  } catch {
    return { events: [], note: `not read (no event store at ${dataDir}; pass the operator's --data-dir)` };
  }
  const store = await EventStore.open({ dataDir, readOnly: true });
  try {
    const all = await store.read({ stream: 'aggregates' });
    const day = all.reduce<string | undefined>((max, e) => (max === undefined || e.time > max ? e.time : max), undefined);
    if (day === undefined) return { events: [], note: `none in the store at ${dataDir} yet (one per category is written after each finished UTC day)` };
    const events = all.filter((e) => e.time === day);
    return { events, note: `those of ${day.slice(0, 10)} from the store at ${dataDir} (${plural(events.length, 'event')}) are included` };
  } finally {
    await store.close();
  }
}

// ---- the report ----

export interface SinkPreview {
  readonly name: string;
  readonly type: Sink['type'];
  readonly region: Sink['region'];
  /** The URL the body is POSTed to (http, otlp), or the file it is appended to (file). */
  readonly destination: string;
  readonly receives: boolean;
  /** Why it receives what it does, or why nothing. */
  readonly reason: string;
  readonly events: readonly DcpEvent[];
  /** `category/name` → count. */
  readonly counts: Readonly<Record<string, number>>;
  readonly bytes: number;
  /** POSTs (or appends) the dispatcher would make, at most 500 events each. */
  readonly requests: number;
  readonly headers: Readonly<Record<string, string>>;
  /** The exact body, or null when the sink would receive nothing now. */
  readonly body: string | null;
  /** The sink cannot be built (the operator skips it the same way). */
  readonly error?: string;
}

export interface PreviewReport {
  readonly generatedAt: string;
  readonly policy: {
    readonly name: string;
    readonly region: PolicySpec['region'];
    readonly country: string;
    readonly subscriptionId: string;
    readonly forwardAggregatesToCentral: boolean;
    readonly retention: PolicySpec['retention'];
    readonly categories: Readonly<Record<CategoryName, boolean>>;
  };
  readonly cluster: { readonly id: string; readonly nodes: number; readonly pods: number; readonly vCores: number };
  /** Where device IDs come from; `reason` says why they are placeholders. */
  readonly deviceKey: { readonly source: 'secret' | 'placeholder'; readonly secret: string; readonly reason?: string };
  readonly sinks: readonly SinkPreview[];
  /** What the store would hold: every event of the snapshot that passed validation and the guard. */
  readonly stored: readonly DcpEvent[];
  readonly dropped: readonly DroppedEvent[];
  readonly notes: readonly string[];
}

const countsOf = (events: readonly DcpEvent[]): Record<string, number> => Object.fromEntries(countBy(events, (e) => `${e.category}/${e.name}`));

function reasonFor(plan: SinkPlan, aggregates: StoredAggregates, total: number): string {
  if (plan.events.length > 0) return [...plan.delivered.keys()].join('; ');
  if (total === 0) return 'nothing is collected now: controlPlane and hostOs are both disabled';
  const why = [...plan.withheld].map(([reason, n]) => `${reason} (${plural(n, 'event')} withheld)`).join('; ');
  return plan.sink.region === 'central' && aggregates.events.length === 0 ? `${why}; daily aggregates: ${aggregates.note}` : why;
}

/** Notes on what this snapshot does not show, so an empty category is not mistaken for an idle one. */
function notesFor(spec: PolicySpec, sinks: readonly Sink[], dataDir: string): string[] {
  const notes: string[] = [];
  if (sinks.length === 0) {
    notes.push(`no sink is configured: events stay in the operator's local store (its --data-dir, e.g. ${dataDir}) for ${plural(spec.retention.rawDays, 'day')}; nothing leaves the cluster`);
  }
  if (!spec.categories.controlPlane.enabled) notes.push('controlPlane is disabled: no ControlPlaneInventory');
  if (!spec.categories.hostOs.enabled) notes.push('hostOs is disabled: no HostOsInfo');
  notes.push(`billing: CoreUsage is emitted at the end of each ${spec.categories.billing.intervalSeconds} s metering interval and goes to regional sinks only; not part of this snapshot`);
  if (!spec.categories.security.enabled) notes.push('security is disabled: no CertificateStatus or KmsStatus');
  const asTheyHappen = (['hostErrors', 'linuxVm'] as const).filter((c) => spec.categories[c].enabled);
  if (asTheyHappen.length > 0) notes.push(`${asTheyHappen.join(', ')}: emitted as Warning and system Events happen (scrubbed to known words); not part of this snapshot`);
  return notes;
}

export interface BuildReportInput {
  readonly spec: PolicySpec;
  readonly snapshot: ClusterSnapshot;
  readonly aggregates: StoredAggregates;
  readonly now: number;
  readonly operatorNamespace: string;
  readonly dataDir: string;
}

/** The whole preview: events built, admitted, routed and serialized by the sinks. */
export async function buildReport(input: BuildReportInput): Promise<PreviewReport> {
  const { spec, snapshot, aggregates, now } = input;
  const candidates = snapshotEvents(spec, snapshot, now);
  const { stored, dropped } = await admit(candidates, denySetOf(snapshot.nodes));
  const sinks = spec.export.sinks ?? [];
  const policy: RoutingPolicy = { region: spec.region, export: { forwardAggregatesToCentral: spec.export.forwardAggregatesToCentral } };
  // The dispatcher sends each sink the raw stream, then the aggregates stream.
  const plans = planSinks(sinks, [...stored, ...aggregates.events], policy);
  const previews: SinkPreview[] = [];
  for (const plan of plans) {
    const { sink } = plan;
    const base = { name: sink.name, type: sink.type, region: sink.region };
    let rendered: SinkBody;
    try {
      rendered = await renderSinkBody(sink, plan.events, now, input.operatorNamespace);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      previews.push({ ...base, destination: sink.url ?? sink.path ?? '', receives: false, reason: `the sink is not usable, so the operator skips it: ${error}`, events: [], counts: {}, bytes: 0, requests: 0, headers: {}, body: null, error });
      continue;
    }
    const body = rendered.body ?? null;
    previews.push({
      ...base,
      destination: rendered.destination,
      receives: plan.events.length > 0,
      reason: reasonFor(plan, aggregates, stored.length + aggregates.events.length),
      events: plan.events,
      counts: countsOf(plan.events),
      bytes: body === null ? 0 : Buffer.byteLength(body),
      requests: Math.ceil(plan.events.length / DISPATCH_BATCH),
      headers: rendered.headers,
      body,
    });
  }
  const notes = notesFor(spec, sinks, input.dataDir);
  if (aggregates.events.length > 0) notes.push(`daily aggregates: ${aggregates.note}`);
  const categories = Object.fromEntries(CATEGORY_NAMES.map((c) => [c, categoryEnabled(spec, c)])) as Record<CategoryName, boolean>;
  const key = snapshot.deviceKey;
  return {
    generatedAt: new Date(now).toISOString(),
    policy: {
      name: POLICY_NAME,
      region: spec.region,
      country: countryOf(spec.region),
      subscriptionId: spec.subscriptionId,
      forwardAggregatesToCentral: spec.export.forwardAggregatesToCentral,
      retention: spec.retention,
      categories,
    },
    cluster: { id: snapshot.kubeSystem.uid, nodes: snapshot.inventory.nodes, pods: snapshot.inventory.pods, vCores: snapshot.inventory.vCores },
    deviceKey:
      key.source === 'secret'
        ? { source: 'secret', secret: key.secret }
        : { source: 'placeholder', secret: key.secret, reason: key.why },
    sinks: previews,
    stored,
    dropped,
    notes,
  };
}

// ---- rendering for people ----

export interface PreviewTableOptions {
  /** Events shown of each body; Infinity for all, 0 for no bodies. @default 3 */
  readonly bodyEvents?: number;
  /** Minutes east of UTC for the times shown; this machine's zone when undefined. */
  readonly offsetMinutes?: number;
  /** A terminal's width: the table's last column is cut to fit. */
  readonly maxWidth?: number;
}

const EVENT_COMPACT = new Set(['cluster', 'data']);
const OTLP_COMPACT = new Set(['attributes', 'body', 'scope']);

/** A body for reading: pretty-printed, the first `max` events of it. */
export function displayBody(type: Sink['type'], body: string, max: number): { text: string; shown: number; total: number } {
  if (type === 'file') {
    const lines = body.split('\n').filter((l) => l !== '');
    const shown = lines.slice(0, max).map((l) => prettyJson(JSON.parse(l) as unknown, { compact: EVENT_COMPACT }));
    return { text: shown.join('\n'), shown: shown.length, total: lines.length };
  }
  const parsed = JSON.parse(body) as unknown;
  if (type === 'http' && Array.isArray(parsed)) {
    const shown = parsed.slice(0, max);
    return { text: prettyJson(shown, { compact: EVENT_COMPACT }), shown: shown.length, total: parsed.length };
  }
  // OTLP: keep the first `max` log records across the request, in order.
  let budget = max;
  let total = 0;
  const trimmed = JSON.parse(body, (key, value: unknown) => {
    if (key !== 'logRecords' || !Array.isArray(value)) return value;
    total += value.length;
    const keep = value.slice(0, Math.max(0, budget));
    budget -= keep.length;
    return keep;
  }) as unknown;
  return { text: prettyJson(trimmed, { compact: OTLP_COMPACT }), shown: Math.min(max, total), total };
}

function countsLine(counts: Readonly<Record<string, number>>): string {
  return Object.entries(counts)
    .map(([k, n]) => `${k.replace('/', ' ')} ${n}`)
    .join(' · ');
}

const where = (s: SinkPreview): string => (s.type === 'file' ? s.destination : `POST ${s.destination}`);

export function renderPreviewTable(report: PreviewReport, options: PreviewTableOptions = {}): string {
  const out: string[] = [];
  const bodyEvents = options.bodyEvents ?? 3;
  const at = Date.parse(report.generatedAt);
  const offset = options.offsetMinutes ?? localOffsetMinutes(at);
  const p = report.policy;
  // What was built, dropped ones included: the Checked line says what became of them.
  const snapshotCounts = countBy([...report.stored, ...report.dropped], (e) => `${e.category} ${e.name}`);
  const label = (l: string): string => l.padEnd(12);

  out.push(`${label('Policy')}${p.name} · region ${p.region} (${p.country}) · subscription ${p.subscriptionId}`);
  out.push(`${label('Cluster')}${shortId(report.cluster.id, 8)}… (kube-system uid) · ${plural(report.cluster.nodes, 'node')} · ${plural(report.cluster.pods, 'pod')} · ${report.cluster.vCores} vCores`);
  const collected = [...snapshotCounts].map(([k, n]) => `${k} ${n}`).join(' · ') || 'nothing';
  out.push(`${label('Snapshot')}${localIsoTime(at, offset)} (${utcOffsetLabel(offset)}): ${collected}`);
  const passed = report.dropped.length === 0 ? `all ${plural(report.stored.length, 'event')} pass the schema and the PII guard` : `${report.stored.length} pass the schema and the PII guard, ${report.dropped.length} dropped`;
  out.push(`${label('Checked')}${passed}`);
  out.push(
    `${label('Device IDs')}${report.deviceKey.source === 'secret' ? `keyed hashes under Secret ${report.deviceKey.secret}` : `PLACEHOLDERS, the real ones will differ: ${report.deviceKey.reason ?? ''}`}`,
  );
  out.push('');

  if (report.sinks.length === 0) {
    out.push('No sink is configured. The operator would store these events locally only:', '');
    out.push(renderEventsTable(report.stored, { offsetMinutes: options.offsetMinutes, maxWidth: options.maxWidth }).trimEnd());
  } else {
    const rows = report.sinks.map((s) => [s.name, s.type, s.region, s.receives ? String(s.events.length) : '—', s.receives ? formatBytes(s.bytes) : '—', where(s)]);
    out.push(...formatTable(['SINK', 'TYPE', 'REGION', 'EVENTS', 'SIZE', 'DESTINATION'], rows, { align: ['left', 'left', 'left', 'right', 'right', 'left'], maxWidth: options.maxWidth }));
    out.push('');
    const width = Math.max(...report.sinks.map((s) => s.name.length));
    for (const s of report.sinks) {
      const what = s.error ? `NOT USABLE: ${s.reason}` : s.receives ? `${plural(s.events.length, 'event')}: ${countsLine(s.counts)}${s.requests > 1 ? ` (in ${s.requests} requests of ≤${DISPATCH_BATCH})` : ''}` : `nothing now: ${s.reason}`;
      out.push(`${s.name.padEnd(width)}  ${what}`);
    }
  }

  if (report.dropped.length > 0) {
    out.push('', 'Dropped before storage (never stored, never sent):');
    for (const d of report.dropped) out.push(`  ${d.category} ${d.name} ${shortId(d.id)}: ${d.stage === 'pii' ? 'PII guard' : 'schema'}: ${d.problems.join('; ')}`);
  }
  out.push('', 'Notes:', ...report.notes.map((n) => `  - ${n}`));

  if (bodyEvents > 0) {
    for (const s of report.sinks) {
      if (s.body === null) continue;
      const shown = displayBody(s.type, s.body, bodyEvents);
      const part = shown.shown < shown.total ? ` · first ${shown.shown} shown (--body-events all for every one, --output json for the exact bytes)` : '';
      const kind = s.type === 'file' ? 'JSON lines (one record per line; shown pretty)' : s.type === 'otlp' ? 'OTLP/HTTP logs JSON' : 'JSON batch';
      out.push('', `── ${s.name} · ${where(s)}`, `   ${kind} · ${plural(s.events.length, 'event')} · ${formatBytes(s.bytes)}${part}`);
      for (const [k, v] of Object.entries(s.headers)) out.push(`${k}: ${v}`);
      out.push(shown.text);
    }
  }
  return `${out.join('\n')}\n`;
}

export function renderPreviewJson(report: PreviewReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

// ---- the command ----

function parseBodyEvents(text: string | undefined): number {
  if (text === undefined) return 3;
  if (text === 'all') return Infinity;
  if (!/^\d+$/.test(text)) throw new UsageError(`--body-events "${text}" is not a whole number or 'all'`);
  return Number(text);
}

/** Reads the policy; undefined when there is none (or the API is not installed). */
async function readPolicy(transport: KubeTransport): Promise<PolicySpec | undefined> {
  try {
    return parsePolicy(await transport.json({ path: `/apis/${GROUP}/${VERSION}/${PLURAL}/${POLICY_NAME}` })).spec;
  } catch (err) {
    if (err instanceof NotFound) return undefined;
    throw err;
  }
}

export const previewCommand: Command = {
  summary: 'show the exact JSON each sink would receive now',
  usage: USAGE,
  options: {
    kubeconfig: { type: 'string' },
    namespace: { type: 'string' },
    'data-dir': { type: 'string' },
    output: { type: 'string', default: 'table' },
    'body-events': { type: 'string' },
  },
  async run(values, positionals) {
    let output: OutputFormat;
    let bodyEvents: number;
    let kc: LoadedKubeconfig;
    try {
      if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, 'dcp preview takes flags only');
      output = parseOutput(stringFlag(values, 'output'));
      bodyEvents = parseBodyEvents(stringFlag(values, 'body-events'));
      kc = await loadKubeconfig(stringFlag(values, 'kubeconfig'));
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      console.error(`dcp preview: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    const client = new KubeClient(kc, { userAgent: 'dcp-preview' });
    const namespace = stringFlag(values, 'namespace') ?? process.env.POD_NAMESPACE ?? 'dcp-system';
    const dataDir = resolve(stringFlag(values, 'data-dir') ?? './data');
    try {
      let spec: PolicySpec | undefined;
      try {
        spec = await readPolicy(client);
      } catch (err) {
        const why = err instanceof InvalidPolicyError ? err.problems.join('; ') : err instanceof Error ? err.message : String(err);
        console.error(`dcp preview: cannot read DataCollectionPolicy "${POLICY_NAME}": ${why}`);
        return 1;
      }
      if (!spec) {
        console.error(`dcp preview: there is no DataCollectionPolicy "${POLICY_NAME}" (or its CRD is not installed): the operator collects nothing, so nothing would leave the cluster`);
        return 1;
      }
      const now = Date.now();
      let snapshot: ClusterSnapshot;
      try {
        snapshot = await readClusterSnapshot(client, namespace);
      } catch (err) {
        console.error(`dcp preview: cannot read the cluster: ${err instanceof Error ? err.message : String(err)}`);
        return 1;
      }
      // The security snapshot reads what the policy names (certificate namespaces); without the rights
      // to read it, the rest of the preview is still true, so it says so and goes on.
      if (spec.categories.security.enabled) {
        try {
          snapshot = { ...snapshot, security: await securitySnapshot({ transport: client, kubeSystem: snapshot.kubeSystem, spec, nowMs: now }) };
        } catch (err) {
          console.error(`dcp preview: the security snapshot is left out: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      const aggregates = await latestAggregates(dataDir);
      const report = await buildReport({ spec, snapshot, aggregates, now, operatorNamespace: namespace, dataDir });
      if (output === 'json') process.stdout.write(renderPreviewJson(report));
      else process.stdout.write(renderPreviewTable(report, { bodyEvents, maxWidth: process.stdout.isTTY ? process.stdout.columns : undefined }));
      return 0;
    } finally {
      client.destroy();
    }
  },
};
