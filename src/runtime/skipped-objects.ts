// Objects the operator cannot read: counted in dcp_objects_skipped_total{resource} and told on the object by a rate-limited Warning Event.
import { Counter, type Registry } from 'prom-client';
import type { ObjectRef, RecordedEvent } from '../kube/recorder.js';
import { asRecord, asString } from '../kube/resource.js';
import { silentLog, type Log } from '../observability/log.js';

export const SKIPPED_METRIC = 'dcp_objects_skipped_total';

export interface SkippedObject {
  /** The metric's `resource` label: the plural resource name (nodes, secrets, certificatesigningrequests, events). */
  readonly resource: string;
  /** The kind and group version the Event names when the object does not say (list items carry neither). */
  readonly kind: string;
  readonly apiVersion: string;
  /** The object as the API server sent it, if at hand; only apiVersion, kind and metadata are read. */
  readonly object?: unknown;
  /** Its cache key (namespace/name or name), when the object is not at hand or lacks a name. */
  readonly key?: string;
  /** Its UID, when the object is not at hand. */
  readonly uid?: string;
  /** The Event's reason, CamelCase: MalformedObject, UnreadableCertificate. */
  readonly reason: string;
  /** Why it was skipped, for `kubectl describe`: what is missing or unreadable, never a value of the object. */
  readonly note: string;
}

export interface SkippedObjectsOptions {
  readonly registry?: Registry;
  readonly log?: Log;
  /** Records the Warning Event; never throws (EventRecorder.record). Without it, skips are only counted and logged. */
  readonly record?: (event: RecordedEvent) => Promise<void>;
  /** Whether this replica may write Events now (the leader only). @default always */
  readonly canRecord?: () => boolean;
  /** Epoch or monotonic milliseconds. @default Date.now */
  readonly now?: () => number;
  /** At most one Event per object and reason this often. @default 600000 (10 minutes) */
  readonly perObjectIntervalMs?: number;
  /** At most this many Events in a burst, refilled at `eventsPerMinute`: a flood of bad objects must not flood the API server. @default 20 */
  readonly burst?: number;
  /** @default 10 */
  readonly eventsPerMinute?: number;
}

// Objects remembered for the per-object limit; past this the oldest are forgotten (a repeat then costs one more Event).
const MAX_REMEMBERED = 10_000;

/**
 * The one place that reports an object a cache or collector had to skip. NOTE: the object's name
 * goes only into the Warning Event on the object itself (inside the cluster, where `kubectl
 * describe` shows it); the metric has the resource only, and the log line the UID, so nothing
 * the operator exports or logs names the object.
 */
export class SkippedObjects {
  private readonly counter: Counter<'resource'>;
  private readonly log: Log;
  private readonly now: () => number;
  private readonly perObjectIntervalMs: number;
  private readonly burst: number;
  private readonly refillPerMs: number;
  private tokens: number;
  private refilledAt: number;
  /** object and reason → when its last Event was recorded. */
  private readonly lastRecorded = new Map<string, number>();
  /** Events left out by the limits, for a test or a log line. */
  suppressed = 0;

  constructor(private readonly options: SkippedObjectsOptions = {}) {
    const registers = options.registry ? [options.registry] : [];
    const existing = options.registry?.getSingleMetric(SKIPPED_METRIC);
    this.counter =
      (existing as Counter<'resource'> | undefined) ??
      new Counter({ name: SKIPPED_METRIC, help: 'Objects skipped because the operator could not read them (missing fields, unreadable certificates).', labelNames: ['resource'] as const, registers });
    this.log = options.log ?? silentLog;
    this.now = options.now ?? Date.now;
    this.perObjectIntervalMs = options.perObjectIntervalMs ?? 600_000;
    this.burst = Math.max(1, options.burst ?? 20);
    this.refillPerMs = Math.max(0, options.eventsPerMinute ?? 10) / 60_000;
    this.tokens = this.burst;
    this.refilledAt = this.now();
  }

  /** Counts the object, logs it (by UID) and, within the limits, records a Warning Event on it. Never throws. */
  report(skip: SkippedObject): void {
    this.counter.inc({ resource: skip.resource });
    const ref = objectRef(skip);
    this.log.warn('skipping an object the operator cannot read', { resource: skip.resource, reason: skip.reason, uid: ref?.uid ?? skip.uid, problem: skip.note });
    if (ref === undefined || this.options.record === undefined || this.options.canRecord?.() === false) return;
    if (!this.admit(`${skip.resource}\u0000${ref.uid ?? `${ref.namespace ?? ''}/${ref.name}`}\u0000${skip.reason}`)) {
      this.suppressed++;
      return;
    }
    void this.options.record({ regarding: ref, type: 'Warning', reason: skip.reason, action: 'Collect', note: `dcp-operator skipped this object: ${skip.note}` });
  }

  /** Whether an Event for `key` is within both limits now; takes a token when it is. */
  private admit(key: string): boolean {
    const now = this.now();
    const last = this.lastRecorded.get(key);
    if (last !== undefined && now - last < this.perObjectIntervalMs) return false;
    this.tokens = Math.min(this.burst, this.tokens + (now - this.refilledAt) * this.refillPerMs);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    this.lastRecorded.delete(key);
    this.lastRecorded.set(key, now);
    if (this.lastRecorded.size > MAX_REMEMBERED) {
      const oldest = this.lastRecorded.keys().next();
      if (oldest.done !== true) this.lastRecorded.delete(oldest.value);
    }
    return true;
  }
}

/** The Event's `regarding`: from the object's metadata, else its cache key; undefined when it has no name at all. */
function objectRef(skip: SkippedObject): ObjectRef | undefined {
  const obj = asRecord(skip.object);
  const meta = asRecord(obj?.['metadata']);
  let name = asString(meta?.['name']);
  let namespace = asString(meta?.['namespace']);
  if ((name === undefined || name === '') && skip.key !== undefined) {
    const slash = skip.key.indexOf('/');
    name = slash === -1 ? skip.key : skip.key.slice(slash + 1);
    namespace ??= slash === -1 ? undefined : skip.key.slice(0, slash);
  }
  if (name === undefined || name === '') return undefined;
  const uid = asString(meta?.['uid']) ?? skip.uid;
  return {
    apiVersion: asString(obj?.['apiVersion']) ?? skip.apiVersion,
    kind: asString(obj?.['kind']) ?? skip.kind,
    name,
    ...(namespace !== undefined && namespace !== '' ? { namespace } : {}),
    ...(uid !== undefined && uid !== '' ? { uid } : {}),
  };
}
