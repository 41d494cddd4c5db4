// hostErrors and linuxVm: Kubernetes Events about Nodes, host components and system namespaces, classified, free text redacted.
import type { Registry } from 'prom-client';
import type { PolicySpec } from '../api/policy.js';
import type { KubeTransport } from '../kube/client.js';
import { Forbidden, Unauthorized } from '../kube/errors.js';
import { EVENT_FIELDS, projectEvent, type EventInfo } from '../kube/projections.js';
import { buildEvent } from '../api/envelope.js';
import type { ClusterRef, DcpEvent, HostErrorData, LinuxVmEventData, LinuxVmKind } from '../api/event.js';
import { detectPii, redactPii, type DenySet } from '../pipeline/guard.js';
import { silentLog, type Log } from '../observability/log.js';
import { cleanText } from '../pipeline/clean-text.js';
import { scrubComponent, scrubReason, scrubText } from '../pipeline/scrub.js';
import { eventCache } from '../runtime/caches.js';
import type { SkippedObjects } from '../runtime/skipped-objects.js';
import type { Clock } from '../runtime/clock.js';
import type { ChangeHandler } from '../runtime/store.js';
import { clusterRef, FlushLoop, wallClock, type Collector, type EmitEvents } from './collector.js';
import type { NamespaceProjection } from './projections.js';

// The schema's limits: text (message) at most 4096, stackTrace at most 32768.
const MESSAGE_MAX = 4096;
const STACK_TRACE_MAX = 32768;

/** The reporting controllers that run on the host: their Warnings are host errors. */
const HOST_COMPONENTS: ReadonlySet<string> = new Set([
  'kubelet',
  'kernel-monitor',
  'systemd-monitor',
  'node-problem-detector',
  'custom-plugin-monitor',
  'containerd',
  'docker',
  'kube-proxy',
  'cri-o',
]);

/**
 * Whether a Warning Event is a host error: it is about a Node, or a host component reported it.
 * NOTE: the kubelet and the runtimes also warn about the workloads they run (BackOff, FailedMount
 * of a customer's Pod); such a warning about an object in a namespace other than kube-system is a
 * workload problem, not the host's, and stays out (it would also carry the customer's names).
 */
function isHostError(e: EventInfo): boolean {
  if (e.type !== 'Warning') return false;
  if (e.regarding.kind === 'Node') return true;
  if (!HOST_COMPONENTS.has(e.reportingController.trim().toLowerCase())) return false;
  return e.regarding.namespace === '' || e.regarding.namespace === 'kube-system';
}

// A line that only a stack trace has: Go's goroutine header, Java's and Node's frames, Python's header.
const STACK_TRACE_LINE = /^(?:goroutine \d+ \[[^\]\n]*\]|(?:\t| {4})at \S|Traceback \(most recent call last\))/m;

// User names in home directories (stack traces are full of them): /home/<user>/, /Users/<user>/, C:\Users\<user>\.
const HOME_DIRECTORY = /(\/home\/|\/Users\/|\\Users\\)[^/\\\s"'<>]+/g;

// What a denied name becomes; a later one is used if the deny set holds the earlier one itself.
const NODE_PLACEHOLDERS = ['<node>', '<host>', '<*>'];

function isClean(text: string, denySet: DenySet): boolean {
  return detectPii(text).length === 0 && !denySet.matches(text);
}

/**
 * Free text made fit to leave the cluster: user names in home directories, then every entry of the
 * deny set (node names, hostnames, systemUUIDs) becomes `<node>`, then every finding of the PII
 * guard's patterns its placeholder (`<ip>`, `<email>`, `<uuid>`, `<token>`...). The result passes
 * the guard: no pattern finding and no deny-set match. Text that still would after a few rounds
 * (placeholders joining into something the deny set holds) comes back empty rather than unsafe.
 */
export function redactText(text: string, denySet: DenySet): string {
  let out = text.replace(HOME_DIRECTORY, '$1<user>');
  const placeholder = NODE_PLACEHOLDERS.find((p) => !denySet.matches(p)) ?? '';
  for (let round = 0; round < 3; round++) {
    // Patterns and the deny set name what they found; the vocabulary then takes every other word
    // nobody could have registered (a user name, a label's free text).
    out = scrubText(redactPii(denySet.redact(out, placeholder)));
    if (isClean(out, denySet)) return out;
  }
  return '';
}

/**
 * Cuts to at most `max` UTF-16 units, never through a surrogate pair, and at the last white space
 * when there is one: a word cut in two is no vocabulary word, so redacting it again would grow the text.
 */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  const hard = text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
  const space = hard.search(/\s\S*$/);
  return space > 0 ? hard.slice(0, space) : hard;
}

/**
 * Clean multi-line text, redacted and trimmed, at most `max` long. Cut before redacting, so a huge note costs little, and
 * again after, as a placeholder can be longer than what it replaced; a cut can turn text into a
 * finding ("6.6.64.2-9" into an address), so every cut is redacted again.
 */
function fit(raw: string, max: number, denySet: DenySet): string {
  // Clean text first: a control character or escape sequence must not split a name the redaction looks for.
  let out = redactText(cut(cleanText(raw, 'multiline').trim(), max), denySet).trim();
  for (let i = 0; i < 3 && out.length > max; i++) out = redactText(cut(out, max), denySet).trim();
  return out.length > max ? '' : out;
}


// The schema's count: an integer, at least 0.
function countOf(e: EventInfo): number {
  return Number.isFinite(e.count) && e.count >= 0 ? Math.min(Math.floor(e.count), Number.MAX_SAFE_INTEGER) : 1;
}

/** The HostError data of a Warning Event about a Node or a host component; undefined for any other Event. */
export function hostErrorData(e: EventInfo, denySet: DenySet): HostErrorData | undefined {
  if (!isHostError(e)) return undefined;
  const note = e.note.trim();
  const hasStackTrace = STACK_TRACE_LINE.test(note);
  // With a stack trace, the message is its first line ("panic: runtime error: ...") and the trace goes whole to stackTrace.
  const message = hasStackTrace ? (note.split(/\r?\n/).find((line) => line.trim() !== '') ?? '') : note;
  const data: HostErrorData = {
    reason: scrubReason(e.reason),
    message: fit(message, MESSAGE_MAX, denySet),
    count: countOf(e),
    component: scrubComponent(e.reportingController),
  };
  if (hasStackTrace) {
    const trace = fit(note, STACK_TRACE_MAX, denySet);
    if (trace !== '') data.stackTrace = trace;
  }
  return data;
}

interface ReasonRule {
  readonly kind: LinuxVmKind;
  /** The rule holds only for Events about this kind of object. */
  readonly about?: 'Node' | 'Pod';
}

const rules = (kind: LinuxVmKind, reasons: readonly string[], about?: 'Node' | 'Pod'): [string, ReasonRule][] =>
  reasons.map((r) => [r.toLowerCase(), about === undefined ? { kind } : { kind, about }]);

/**
 * The linuxVm kind of each known reason (matched case-insensitively). Sources: kubelet, the node
 * lifecycle controller, node-problem-detector's kernel, systemd and custom-plugin monitors.
 * NOTE: NodeReady and NodeNotReady are service status: the kubelet's readiness changed. A node that
 * stops posting status is NodeNotReady whether it shut down, crashed or lost its network, so calling
 * it a shutdown would be a guess; a real boot shows as Starting/Rebooted/RegisteredNode, a real
 * shutdown as Shutdown/NodeShutdown/RemovingNode.
 */
const REASON_RULES: ReadonlyMap<string, ReasonRule> = new Map([
  ...rules('boot', ['Rebooted', 'Starting', 'RegisteredNode', 'BootIdChanged'], 'Node'),
  ...rules('shutdown', ['Shutdown', 'NodeShutdown', 'RemovingNode', 'DeletingNode'], 'Node'),
  ...rules('kernel', [
    'KernelOops',
    'KernelDeadlock',
    'KernelPanic',
    'TaskHung',
    'OOMKilling',
    'SystemOOM',
    'AUFSUmountHung',
    'DockerHung',
    'FilesystemIsReadOnly',
    'ReadonlyFilesystem',
    'Ext4Error',
    'Ext4Warning',
    'IOError',
    'MemoryReadError',
    'UnregisterNetDevice',
    'CorruptDockerOverlay2',
  ]),
  ...rules('serviceStatus', [
    'KubeletStart',
    'ContainerdStart',
    'DockerStart',
    'FrequentKubeletRestart',
    'FrequentContainerdRestart',
    'FrequentDockerRestart',
    'ContainerRuntimeUnhealthy',
    'KubeletUnhealthy',
    'NodeReady',
    'NodeNotReady',
    'NodeSchedulable',
    'NodeNotSchedulable',
  ]),
  // A system Pod's containers starting and stopping are its services' status.
  ...rules('serviceStatus', ['Started', 'Killing', 'SandboxChanged'], 'Pod'),
  ...rules('applicationError', ['BackOff', 'Failed', 'Unhealthy', 'OOMKilled', 'Evicted', 'FailedMount', 'FailedCreatePodSandBox', 'FailedKillPod'], 'Pod'),
]);

// Reasons about logins, privileges and credentials, whatever reported them.
const AUTHENTICATION_REASON = /auth|log(?:in|on)|ssh|sudo|forbidden|certificate|credential|passw/i;

/**
 * The linuxVm kind of an Event, or undefined when it is not one: only Events about Nodes or about
 * objects in a system namespace qualify. Known reasons first (see REASON_RULES), then reasons that
 * speak of authentication, then any other Warning in a system namespace (an application error).
 * Normal Events with other reasons (Scheduled, Pulled, Created, LeaderElection...) are noise.
 */
export function linuxVmKind(e: EventInfo, systemNamespaces: readonly string[]): LinuxVmKind | undefined {
  const aboutNode = e.regarding.kind === 'Node';
  const inSystemNamespace = e.regarding.namespace !== '' && systemNamespaces.includes(e.regarding.namespace);
  if (!aboutNode && !inSystemNamespace) return undefined;
  const rule = REASON_RULES.get(e.reason.trim().toLowerCase());
  if (rule !== undefined && (rule.about === undefined || rule.about === e.regarding.kind)) return rule.kind;
  if (AUTHENTICATION_REASON.test(e.reason)) return 'authentication';
  if (inSystemNamespace && e.type === 'Warning') return 'applicationError';
  return undefined;
}

/** The LinuxVmEvent data of an Event; undefined when it is not a linuxVm event. */
export function linuxVmData(e: EventInfo, systemNamespaces: readonly string[], denySet: DenySet): LinuxVmEventData | undefined {
  const kind = linuxVmKind(e, systemNamespaces);
  if (kind === undefined) return undefined;
  return { kind, reason: scrubReason(e.reason), message: fit(e.note, MESSAGE_MAX, denySet), count: countOf(e) };
}

export interface HostEventsCollectorOptions {
  /** The collector owns its Reflector(s) on events.k8s.io/v1 Events, running only while its category is enabled. */
  readonly transport: KubeTransport;
  /** The kube-system Namespace (its UID is the cluster id). */
  readonly kubeSystem: NamespaceProjection;
  /** The policy spec at start; later ones come through reconfigure(). */
  readonly spec: PolicySpec;
  readonly emit: EmitEvents;
  /** Node names, hostnames and systemUUIDs the operator has seen: they become `<node>` in every text. */
  readonly denySet: DenySet;
  /** Must read epoch milliseconds (an Event without a readable time is dated now). @default wallClock */
  readonly clock?: Clock;
  readonly log?: Log;
  /** Where the reflectors' dcp_watch_* metrics go. */
  readonly registry?: Registry;
  /** Changes are gathered this long, then emitted as one batch. @default 1000 */
  readonly batchDelayMs?: number;
  /** Where an Event the collector cannot read is reported (counted, warned about on the Event). */
  readonly skipped?: SkippedObjects;
}

/** One slice of the Events the collector watches; `resource` names it in metrics and logs and tells slices apart. */
interface EventSlice {
  readonly resource: string;
  readonly namespace?: string;
  readonly fieldSelector?: string;
}

interface RunningSlice {
  readonly stop: AbortController;
  readonly unsubscribe: () => void;
}

// At most this many events per emit() call.
const MAX_BATCH = 500;

/**
 * What both Event collectors do: keep one reflector per wanted slice while enabled, mark every new
 * occurrence of a selected Event dirty (a new Event, or a change of its count or time), and emit the
 * dirty ones in batches. The id of an event is derived from the Event's UID and time, so reporting an
 * occurrence again (each run replays the cache; a relist does too) costs the store a duplicate it drops.
 */
abstract class EventsCollector {
  protected spec: PolicySpec;
  private readonly clock: Clock;
  private readonly log: Log;
  private readonly batchDelayMs: number;
  /** The signal of the current run; undefined when not running. */
  private signal: AbortSignal | undefined;
  private readonly slices = new Map<string, RunningSlice>();
  /** Reflectors told to stop that have not yet; run() waits for them. */
  private readonly stopping = new Set<Promise<void>>();
  /** Event UID → its latest state. By UID, so an Event seen by two slices is one entry. */
  private readonly dirty = new Map<string, EventInfo>();
  private readonly flusher: FlushLoop;

  constructor(protected readonly options: HostEventsCollectorOptions) {
    this.spec = options.spec;
    this.clock = options.clock ?? wallClock;
    this.log = options.log ?? silentLog;
    this.batchDelayMs = options.batchDelayMs ?? 1000;
    this.flusher = new FlushLoop({ clock: this.clock, flush: () => this.flush(), pending: () => this.dirty.size > 0, active: () => this.signal !== undefined });
  }

  protected abstract readonly label: string;
  protected abstract enabled(spec: PolicySpec): boolean;
  /** The slices to watch while enabled. */
  protected abstract wanted(spec: PolicySpec): EventSlice[];
  /** The event of an Event, or undefined if it is not one of this category's (given the spec now). */
  protected abstract eventOf(e: EventInfo, cluster: ClusterRef, time: Date): DcpEvent | undefined;
  /** A cheap test run in the watch loop: whether the Event may become an event at all. */
  protected abstract selects(e: EventInfo): boolean;

  async run(signal: AbortSignal): Promise<void> {
    if (this.signal !== undefined) throw new Error(`the ${this.label} collector is already running`);
    if (signal.aborted) return;
    this.signal = signal;
    this.sync();
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    this.signal = undefined;
    this.sync();
    this.flusher.cancel();
    while (this.stopping.size > 0 || this.flusher.busy) await Promise.all([...this.stopping, this.flusher.idle()]);
    this.dirty.clear();
  }

  reconfigure(spec: PolicySpec): void {
    const was = this.enabled(this.spec);
    this.spec = spec;
    if (was && !this.enabled(spec)) {
      // Nothing gathered while enabled goes out once disabled.
      this.dirty.clear();
      this.flusher.cancel();
    }
    this.sync();
  }

  /** Starts and stops reflectors so exactly the wanted slices run (none when disabled or stopped). */
  private sync(): void {
    const signal = this.signal;
    const wanted = signal !== undefined && this.enabled(this.spec) ? this.wanted(this.spec) : [];
    const names = new Set(wanted.map((s) => s.resource));
    for (const [name, running] of [...this.slices]) {
      if (names.has(name)) continue;
      this.slices.delete(name);
      running.unsubscribe();
      running.stop.abort();
    }
    for (const slice of wanted) {
      if (this.slices.has(slice.resource)) continue;
      const stop = new AbortController();
      const reflector = eventCache(this.options.transport, projectEvent, {
        fields: EVENT_FIELDS,
        resource: slice.resource,
        ...(slice.namespace !== undefined ? { namespace: slice.namespace } : {}),
        ...(slice.fieldSelector !== undefined ? { fieldSelector: slice.fieldSelector } : {}),
        ...(this.options.registry !== undefined ? { registry: this.options.registry } : {}),
        // A refused watch needs an admin (RBAC), so it is a warning; anything else heals with a retry.
        onError: (err, reason) =>
          (err instanceof Forbidden || err instanceof Unauthorized ? this.log.warn : this.log.debug).call(this.log, 'Event watch restarting', { resource: slice.resource, reason, error: err.message }),
        onMalformed: (key, object) =>
          this.options.skipped?.report({
            resource: 'events',
            kind: 'Event',
            apiVersion: 'events.k8s.io/v1',
            object,
            ...(key !== undefined ? { key } : {}),
            reason: 'MalformedObject',
            note: 'this Event lacks fields the collectors need',
          }),
      });
      // Replay: a cache that already holds Events reports them; a fresh one reports its list as it arrives.
      const unsubscribe = reflector.store.subscribe(this.onEvent, { replay: true });
      this.slices.set(slice.resource, { stop, unsubscribe });
      const done = reflector
        .start(stop.signal)
        .catch((err: unknown) => {
          this.log.warn('Event watch ended with an error', { resource: slice.resource, error: String(err) });
        });
      this.stopping.add(done);
      void done.then(() => this.stopping.delete(done));
    }
  }

  private readonly onEvent: ChangeHandler<EventInfo> = (type, _key, e, old) => {
    // A deleted Event (expired after its TTL) still happened: nothing to emit, nothing to take back.
    if (e === undefined || this.signal === undefined || !this.enabled(this.spec)) return;
    // Only a new occurrence is news; other changes (a reworded note, metadata) are not.
    if (type === 'updated' && old !== undefined && old.count === e.count && old.time === e.time) return;
    if (!this.selects(e)) return;
    this.dirty.set(e.uid, e);
    this.flusher.schedule(this.batchDelayMs);
  };

  /** Takes up to MAX_BATCH dirty Events and builds their events (redaction happens here, not in the watch loop). */
  private collect(): { events: DcpEvent[]; taken: EventInfo[] } {
    const events: DcpEvent[] = [];
    const taken: EventInfo[] = [];
    if (!this.enabled(this.spec)) {
      this.dirty.clear();
      return { events, taken };
    }
    const cluster = clusterRef(this.options.kubeSystem, this.spec);
    for (const [uid, e] of this.dirty) {
      if (events.length >= MAX_BATCH) break;
      this.dirty.delete(uid);
      // The Event's own time keeps the id the same across restarts and leader changes.
      const at = Date.parse(e.time);
      const event = this.eventOf(e, cluster, new Date(Number.isFinite(at) ? at : this.clock.now()));
      if (event === undefined) continue;
      events.push(event);
      taken.push(e);
    }
    return { events, taken };
  }

  /** Emits a batch; rejects (with its Events marked dirty again) if it was not stored. */
  private async flush(): Promise<void> {
    const { events, taken } = this.collect();
    if (events.length === 0) return;
    try {
      await this.options.emit(events);
    } catch (err) {
      this.log.warn(`${this.label} events not stored; retrying`, { events: events.length, error: String(err) });
      if (this.signal !== undefined && this.enabled(this.spec)) {
        // A newer state of the same Event, marked meanwhile, wins over the one that failed.
        for (const e of taken) if (!this.dirty.has(e.uid)) this.dirty.set(e.uid, e);
      }
      throw err;
    }
  }
}

/**
 * hostErrors: Warning Events about Nodes and host components, one HostError per occurrence.
 * One cluster-wide reflector on `type=Warning` Events, running only while the category is enabled.
 */
export class HostErrorsCollector extends EventsCollector implements Collector {
  readonly category = 'hostErrors' as const;
  protected readonly label = 'host error';

  protected enabled(spec: PolicySpec): boolean {
    return spec.categories.hostErrors.enabled;
  }

  protected wanted(): EventSlice[] {
    return [{ resource: 'events:hostErrors', fieldSelector: 'type=Warning' }];
  }

  protected selects(e: EventInfo): boolean {
    return isHostError(e);
  }

  protected eventOf(e: EventInfo, cluster: ClusterRef, time: Date): DcpEvent | undefined {
    const data = hostErrorData(e, this.options.denySet);
    return data === undefined ? undefined : buildEvent({ name: 'HostError', cluster, time, sourceKey: e.uid, data });
  }
}

/**
 * linuxVm: node lifecycle, service, kernel, application and authentication Events from system
 * namespaces and about Nodes, one LinuxVmEvent per occurrence. One reflector per system namespace
 * (all Events there) and one cluster-wide on Events about Nodes (they live in `default`).
 */
export class LinuxVmCollector extends EventsCollector implements Collector {
  readonly category = 'linuxVm' as const;
  protected readonly label = 'Linux VM';

  protected enabled(spec: PolicySpec): boolean {
    return spec.categories.linuxVm.enabled;
  }

  protected wanted(spec: PolicySpec): EventSlice[] {
    const namespaces = [...new Set(spec.categories.linuxVm.systemNamespaces)];
    return [
      { resource: 'events:linuxVm:nodes', fieldSelector: 'regarding.kind=Node' },
      ...namespaces.map((namespace) => ({ resource: `events:linuxVm:${namespace}`, namespace })),
    ];
  }

  protected selects(e: EventInfo): boolean {
    return linuxVmKind(e, this.spec.categories.linuxVm.systemNamespaces) !== undefined;
  }

  protected eventOf(e: EventInfo, cluster: ClusterRef, time: Date): DcpEvent | undefined {
    // The namespaces of now: an Event of a namespace dropped from the list since it was marked is no longer wanted.
    const data = linuxVmData(e, this.spec.categories.linuxVm.systemNamespaces, this.options.denySet);
    return data === undefined ? undefined : buildEvent({ name: 'LinuxVmEvent', cluster, time, sourceKey: e.uid, data });
  }
}
