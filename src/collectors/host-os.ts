// hostOs: one HostOsInfo event per Node when it appears and when a reported fact changes, by allow-list, device ID hashed.
import { createHmac } from 'node:crypto';
import { countryOf } from '../api/regions.js';
import type { PolicySpec } from '../api/policy.js';
import { buildEvent } from '../api/envelope.js';
import type { ClusterRef, DcpEvent, EventOf, HostOsInfoData } from '../api/event.js';
import { cleanText } from '../pipeline/clean-text.js';
import type { DenySet } from '../pipeline/guard.js';
import { silentLog, type Log } from '../observability/log.js';
import { Backoff } from '../runtime/backoff.js';
import { sleep, type Clock } from '../runtime/clock.js';
import type { ChangeHandler, ReadStore } from '../runtime/store.js';
import { clusterRef, FlushLoop, wallClock, type Collector, type EmitEvents } from './collector.js';
import type { NamespaceProjection, NodeProjection } from './projections.js';

/**
 * systemUUID values that name no machine: firmware that was never given one reports all zeros, all
 * F's, a well-known sample UUID or a BIOS default string; many machines then share the value.
 * Compared after trimming, lower-casing and dropping braces, dashes and spaces.
 */
const PLACEHOLDER_SYSTEM_UUIDS: ReadonlySet<string> = new Set([
  // The SMBIOS sample UUID that some OEM boards ship with unchanged.
  '03000200040005000006000700080009',
  'notsettable',
  'notspecified',
  'notpresent',
  'tobefilledbyo.e.m.',
  'defaultstring',
  'systemuuid',
  'none',
  'null',
  'unknown',
  'n/a',
]);

/** The systemUUID as hashed (trimmed, lower-cased), or undefined when it is empty or a placeholder. */
export function usableSystemUuid(systemUUID: string): string | undefined {
  const uuid = systemUUID.trim().toLowerCase();
  const bare = uuid.replace(/[{}\s-]/g, '');
  if (bare === '' || /^(.)\1*$/.test(bare) || PLACEHOLDER_SYSTEM_UUIDS.has(bare)) return undefined;
  return uuid;
}

/**
 * The device ID: HMAC-SHA256 under the cluster's key of the Node's systemUUID (lower-cased, as
 * tools disagree on its case), hex. NOTE: a Node whose systemUUID is empty, missing or a placeholder
 * (all zeros, all F's, any one repeated digit, a BIOS default string; see usableSystemUuid) is hashed
 * by its object UID instead, which the API server makes unique: a hash of a shared value would give
 * many machines one device ID. Such a Node gets a new device ID if its Node object is re-created.
 */
export function deviceIdOf(key: Buffer, node: NodeProjection): string {
  const uuid = usableSystemUuid(node.nodeInfo.systemUUID);
  return createHmac('sha256', key)
    .update(uuid ?? `node-uid:${node.uid}`)
    .digest('hex');
}

// The schema's shortText: 1..256 characters of clean single-line text (a kubelet reports what the machine says).
function text(value: string): string {
  const t = cleanText(value).trim();
  if (t === '') return 'unknown';
  // Never through a surrogate pair.
  return t.length <= 256 ? t : t.slice(0, /[\ud800-\udbff]/.test(t.charAt(255)) ? 255 : 256);
}

/**
 * The event data of one Node: an allow-list of its reported facts. NOTE: nothing else of the Node
 * may be copied here; its name, labels (but the instance type), addresses and systemUUID are personal
 * or identifying, and the guard's deny set is only the second line of defence.
 */
export function hostOsData(node: NodeProjection, deviceId: string, countryCode: string): HostOsInfoData {
  const info = node.nodeInfo;
  const data: HostOsInfoData = {
    osName: text(info.operatingSystem),
    osImage: text(info.osImage),
    kernelVersion: text(info.kernelVersion),
    architecture: text(info.architecture),
    model: text(vmSize(node.instanceType)),
    deviceId,
    countryCode,
    cpuCount: Math.floor(node.cpuCapacity),
    ready: node.ready,
    unschedulable: node.unschedulable,
    memoryPressure: node.memoryPressure,
    diskPressure: node.diskPressure,
    pidPressure: node.pidPressure,
  };
  if (info.containerRuntimeVersion.trim() !== '') data.containerRuntimeVersion = text(info.containerRuntimeVersion);
  return data;
}

/**
 * The identifying strings of a Node that no event may carry: its name, hostnames and raw systemUUID.
 * A placeholder systemUUID identifies nothing, and denying one ('None', 'Unknown') would redact ordinary words.
 */
export function nodeIdentifiers(name: string, node: NodeProjection): string[] {
  const out = [name, ...node.hostnames];
  if (usableSystemUuid(node.nodeInfo.systemUUID) !== undefined) out.push(node.nodeInfo.systemUUID);
  return out;
}

/**
 * Keeps the PII guard's deny set holding every Node's name, hostnames and systemUUID, including
 * Nodes already cached. Entries are never removed: a deleted Node's name may still appear in later
 * Events about it. Returns the unsubscribe function. Run it in every replica that runs the pipeline,
 * whether or not hostOs is enabled: the other categories' free text is what it protects.
 */
export function denyNodeIdentifiers(nodes: ReadStore<NodeProjection>, denySet: DenySet): () => void {
  return nodes.subscribe(
    (_type, key, newValue) => {
      if (newValue !== undefined) denySet.add(nodeIdentifiers(key, newValue));
    },
    { replay: true },
  );
}

/**
 * The instance-type label is the one label value emitted, so only a value shaped like a VM size passes
 * (Standard_D4s_v5, m5.large, n2-standard-4: label characters and at least one digit); anything else,
 * e.g. a person's name put there by hand, becomes 'unknown'.
 */
export function vmSize(label: string | undefined): string {
  return label !== undefined && /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/.test(label) && /\d/.test(label) ? label : '';
}

/** The HostOsInfo event of a Node's facts: one formula for the collector and `dcp preview`. */
export function hostOsEvent(cluster: ClusterRef, time: Date, deviceId: string, data: HostOsInfoData): EventOf<'HostOsInfo'> {
  // The source key is the device ID, never the Node name; the 1 s bucket keeps a flap (A, B, A) three events.
  return buildEvent({ name: 'HostOsInfo', cluster, time, sourceKey: deviceId, data });
}

export interface HostOsCollectorOptions {
  readonly nodes: ReadStore<NodeProjection>;
  /** The kube-system Namespace (its UID is the cluster id). */
  readonly kubeSystem: NamespaceProjection;
  /** The policy spec at start; later ones come through reconfigure(). */
  readonly spec: PolicySpec;
  readonly emit: EmitEvents;
  /**
   * The cluster's HMAC key, fetched once per run (retried with backoff until it succeeds), e.g.
   * `(signal) => getOrCreateDeviceKey({ transport, namespace, signal })`.
   */
  readonly deviceKey: (signal: AbortSignal) => Promise<Buffer>;
  /** When given, each Node's identifiers are denied before any event about it is built. */
  readonly denySet?: DenySet;
  /** Must read epoch milliseconds. @default wallClock */
  readonly clock?: Clock;
  readonly log?: Log;
  /** Changes are gathered this long, then emitted as one batch. @default 1000 */
  readonly batchDelayMs?: number;
  /** At most this many events per emit() call. @default 500 */
  readonly maxBatch?: number;
}

/**
 * Emits a Node's HostOsInfo when the Node appears and whenever the emitted facts differ from the
 * last ones stored for it. Change callbacks only mark the Node dirty; a flush reads the current state
 * of dirty Nodes, so a burst of updates costs one event. Heartbeats never get here: the projection
 * leaves out the fields they touch, so the cache sees no change.
 */
export class HostOsCollector implements Collector {
  readonly category = 'hostOs' as const;
  private spec: PolicySpec;
  private readonly clock: Clock;
  private readonly log: Log;
  private readonly batchDelayMs: number;
  private readonly maxBatch: number;
  private key: Buffer | undefined;
  private running = false;
  private readonly dirty = new Set<string>();
  /** Node key → JSON of the data last stored for it. */
  private readonly lastEmitted = new Map<string, string>();
  private readonly flusher: FlushLoop;

  constructor(private readonly options: HostOsCollectorOptions) {
    this.spec = options.spec;
    this.clock = options.clock ?? wallClock;
    this.log = options.log ?? silentLog;
    this.batchDelayMs = options.batchDelayMs ?? 1000;
    this.maxBatch = Math.max(1, options.maxBatch ?? 500);
    this.flusher = new FlushLoop({ clock: this.clock, flush: () => this.flush(), pending: () => this.dirty.size > 0, active: () => this.running });
  }

  async run(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error('HostOsCollector is already running');
    try {
      await this.options.nodes.waitUntilSynced(signal);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    const backoff = new Backoff({ initialMs: 1000, maxMs: 30_000 });
    while (this.key === undefined && !signal.aborted) {
      try {
        this.key = await this.options.deviceKey(signal);
      } catch (err) {
        if (signal.aborted) break;
        this.log.warn('cannot read the device key; host OS events wait for it', { error: String(err) });
        await sleep(backoff.next(this.clock.now()), signal, this.clock);
      }
    }
    if (signal.aborted) return;
    this.running = true;
    // Every Node is reported once per run: it "appears" to this run of the collector.
    this.dirty.clear();
    this.lastEmitted.clear();
    const unsubscribe = this.options.nodes.subscribe(this.onNode, { replay: true });
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    unsubscribe();
    this.running = false;
    this.flusher.cancel();
    await this.flusher.idle();
  }

  reconfigure(spec: PolicySpec): void {
    const was = this.spec.categories.hostOs.enabled;
    this.spec = spec;
    const now = spec.categories.hostOs.enabled;
    if (was === now) return;
    if (!now) {
      // NOTE: forgetting what was emitted is what makes re-enabling report every Node again.
      this.dirty.clear();
      this.lastEmitted.clear();
      this.flusher.cancel();
      return;
    }
    if (!this.running) return;
    for (const key of this.options.nodes.keys()) this.dirty.add(key);
    this.flusher.schedule(this.batchDelayMs);
  }

  private readonly onNode: ChangeHandler<NodeProjection> = (_type, key, newValue) => {
    if (newValue === undefined) {
      this.dirty.delete(key);
      this.lastEmitted.delete(key);
      return;
    }
    // Denied before the Node can be in any event, so the guard knows what to look for.
    this.options.denySet?.add(nodeIdentifiers(key, newValue));
    if (!this.spec.categories.hostOs.enabled) return;
    this.dirty.add(key);
    this.flusher.schedule(this.batchDelayMs);
  };

  /** The events the dirty Nodes call for now, and the data each stands for (pure apart from reading the cache). */
  private collect(): { events: DcpEvent[]; emitted: Map<string, string> } {
    const events: DcpEvent[] = [];
    const emitted = new Map<string, string>();
    const key = this.key;
    if (key === undefined || !this.spec.categories.hostOs.enabled) {
      this.dirty.clear();
      return { events, emitted };
    }
    const cluster = clusterRef(this.options.kubeSystem, this.spec);
    const country = countryOf(this.spec.region);
    const time = new Date(this.clock.now());
    for (const name of this.dirty) {
      if (events.length >= this.maxBatch) break;
      this.dirty.delete(name);
      const node = this.options.nodes.get(name);
      if (node === undefined) continue;
      const deviceId = deviceIdOf(key, node);
      const data = hostOsData(node, deviceId, country);
      const json = JSON.stringify(data);
      if (this.lastEmitted.get(name) === json) continue;
      emitted.set(name, json);
      events.push(hostOsEvent(cluster, time, deviceId, data));
    }
    return { events, emitted };
  }

  /** Emits what the dirty Nodes call for; rejects (with the Nodes marked dirty again) if it was not stored. */
  private async flush(): Promise<void> {
    const { events, emitted } = this.collect();
    if (events.length === 0) return;
    try {
      await this.options.emit(events);
    } catch (err) {
      this.log.warn('host OS events not stored; retrying', { events: events.length, error: String(err) });
      if (this.spec.categories.hostOs.enabled) for (const name of emitted.keys()) this.dirty.add(name);
      throw err;
    }
    for (const [name, json] of emitted) {
      // A Node deleted (or the category disabled) meanwhile must not be remembered as reported.
      if (this.options.nodes.has(name) && this.spec.categories.hostOs.enabled) this.lastEmitted.set(name, json);
    }
  }
}
