// The operator as a whole: caches on every replica; collection, the policy controller and all writes on the leader only.
import { setMaxListeners } from 'node:events';
import { Counter, type Registry } from 'prom-client';
import { GROUP, PLURAL, POLICY_NAME, VERSION } from '../api/policy.js';
import { NAMESPACE_FIELDS, NODE_FIELDS, POD_FIELDS, projectNamespace, projectNode, projectPod } from '../collectors/projections.js';
import { KubeClient, type ApiServerAccess, type KubeTransport, type WireFormat } from '../kube/client.js';
import { EventRecorder } from '../kube/recorder.js';
import type { Logger } from '../observability/logger.js';
import type { Check } from '../observability/http.js';
import type { Clock } from '../runtime/clock.js';
import { Controller } from '../runtime/controller.js';
import { Backoff, type BackoffOptions } from '../runtime/backoff.js';
import { sleep } from '../runtime/clock.js';
import { ApiServerWatchdog } from '../runtime/apiserver-watchdog.js';
import { fencedTransport, OPEN_FENCE, type Fence } from '../runtime/fence.js';
import { ReconnectProbe } from '../runtime/reconnect-probe.js';
import { LeaderElector } from '../runtime/leader.js';
import { storeFailureReason } from '../store/errors.js';
import { Reflector } from '../runtime/reflector.js';
import { SkippedObjects } from '../runtime/skipped-objects.js';
import { AuditExport, extensionCaches, type ExtensionCaches } from './audit-export.js';
import { Collection } from './collection.js';
import { PolicyReconciler, projectPolicy, type CachedPolicy } from './policy-controller.js';

export const LEASE_NAME = 'dcp-operator';
export const CONTROLLER_NAME = `${GROUP}/dcp-operator`;

export interface OperatorOptions {
  readonly kc: ApiServerAccess;
  readonly dataDir: string;
  /** Where the Lease, the device-key Secret and the billing ConfigMap live. */
  readonly namespace: string;
  readonly leaderElect: boolean;
  /** Unique per replica. */
  readonly identity: string;
  readonly log: Logger;
  readonly registry: Registry;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  /** Watch stall detection, for tests. @default the reflector's (timeoutSeconds + 30 s) */
  readonly watchStallTimeoutMs?: number;
  /** Watch restart delays, for tests. @default the reflector's (800 ms doubling to 30 s) */
  readonly watchBackoff?: BackoffOptions;
  /** Wall clock for collectors and the store. */
  readonly clock?: Clock;
  /** An API server silent for this long is stalled: /readyz fails, APIServerResponsive turns False. @default 30000 */
  readonly apiServerStallMs?: number;
  /** Delays between attempts to open the store while leading. @default 1 s doubling to 60 s */
  readonly storeRetry?: { initialMs: number; maxMs: number };
  /** The image of the audit-exporter Pods. @default DEFAULT_IMAGE */
  readonly auditExporterImage?: string;
  /** How core resources are read: protobuf (only the fields kept are decoded) or JSON. @default 'protobuf' */
  readonly wire?: WireFormat;
}

/** The operator's own image: the exporter is the same binary (`dcp audit-exporter`). */
export const DEFAULT_IMAGE = 'dcp-operator:0.1.0';

/**
 * The controller whose signal stops the whole operator. Every long-running part listens to it
 * (a reflector per cache, the elector, the controller, collection) plus a request or two in
 * flight each: 11 and more listeners are the design, not a leak (test/unit/operator-listeners
 * shows the count stays flat through an API-server outage), so the limit is raised for this
 * signal only, and kept for every other.
 */
export function operatorStop(): AbortController {
  const stop = new AbortController();
  setMaxListeners(ROOT_SIGNAL_LISTENERS, stop.signal);
  return stop;
}

/** Listeners the root signal may have before Node warns: several times what a run uses (about 12). */
export const ROOT_SIGNAL_LISTENERS = 50;

export class Operator {
  private readonly transport: KubeClient;
  /** What every leader-only write goes through: the current term's fence is checked first. */
  private readonly writes: KubeTransport;
  /** The fence of the current (or last) leader term; a lost term's fence stays, refusing stray writes. */
  private fence: Fence = OPEN_FENCE;
  private readonly policies: Reflector<CachedPolicy>;
  private readonly nodes;
  private readonly pods;
  private readonly namespaces;
  /** The audit-export extension's own objects (labelled), in the operator namespace. */
  private readonly extension: ExtensionCaches;
  /** Every cache by name, for health checks, sync waits and the Ready condition. */
  private readonly caches: Record<string, Reflector<unknown>>;
  private leading = false;
  private readonly skipped: SkippedObjects;
  private allSynced: Promise<unknown> | undefined;
  /** The leader's collection while it leads; its store's write state feeds /readyz. */
  private collection: Collection | undefined;
  /** Why the leader's store did not open, while it retries. */
  private storeOpenError: string | undefined;
  private readonly watchdog: ApiServerWatchdog;
  /** Wakes caches that back off from an unreachable API server as soon as it is ready again. */
  private readonly reconnectProbe: ReconnectProbe;
  /** The leader's reconcile trigger, while it leads. */
  private enqueuePolicy: (() => void) | undefined;
  private readonly storeOpenFailures: Counter<'reason'>;

  constructor(private readonly options: OperatorOptions) {
    const { registry, log } = options;
    this.transport = new KubeClient(options.kc, options.wire !== undefined ? { wire: options.wire } : {});
    this.writes = fencedTransport(this.transport, () => this.fence);
    this.storeOpenFailures = new Counter({
      name: 'dcp_store_open_failures_total',
      help: 'Failed attempts of the leader to open the event store, by reason (errno code, Locked or Other).',
      labelNames: ['reason'] as const,
      registers: [registry],
    });
    // One reporter for every object the caches and collectors cannot read; only the leader writes Events.
    const recorder = this.recorder();
    this.skipped = new SkippedObjects({ registry, log, record: (e) => recorder.record(e), canRecord: () => this.leading });
    this.reconnectProbe = new ReconnectProbe({
      transport: this.transport,
      registry,
      onReconnect: (woken) => log.info('API server ready again: watches retry now', { caches: woken }),
    });
    const common = (resource: string, kind: string, apiVersion = 'v1') => ({
      transport: this.transport,
      registry,
      reconnect: this.reconnectProbe,
      resource,
      ...(options.watchStallTimeoutMs !== undefined ? { stallTimeoutMs: options.watchStallTimeoutMs } : {}),
      ...(options.watchBackoff !== undefined ? { backoff: options.watchBackoff } : {}),
      onError: (err: Error, reason: string) => log.warn('watch restarting', { resource, reason, error: err.message }),
      onMalformed: (key: string | undefined, obj: unknown) =>
        this.skipped.report({ resource, kind, apiVersion, object: obj, ...(key !== undefined ? { key } : {}), reason: 'MalformedObject', note: `this ${kind} lacks fields the collectors need` }),
    });
    this.policies = new Reflector({ ...common('datacollectionpolicies', 'DataCollectionPolicy', `${GROUP}/${VERSION}`), path: `/apis/${GROUP}/${VERSION}/${PLURAL}`, project: projectPolicy });
    this.nodes = new Reflector({ ...common('nodes', 'Node'), path: '/api/v1/nodes', project: projectNode, fields: NODE_FIELDS });
    this.pods = new Reflector({ ...common('pods', 'Pod'), path: '/api/v1/pods', project: projectPod, fields: POD_FIELDS });
    this.namespaces = new Reflector({ ...common('namespaces', 'Namespace'), path: '/api/v1/namespaces', fieldSelector: 'metadata.name=kube-system', project: projectNamespace, fields: NAMESPACE_FIELDS });
    const { resource: _resource, ...extensionCommon } = common('audit-export', 'Object');
    this.extension = extensionCaches(options.namespace, extensionCommon);
    this.caches = {
      datacollectionpolicies: this.policies,
      nodes: this.nodes,
      pods: this.pods,
      namespaces: this.namespaces,
      ...Object.fromEntries(Object.values(this.extension).map((r) => [r.resource, r])),
    } as Record<string, Reflector<unknown>>;
    this.watchdog = new ApiServerWatchdog({
      transport: this.transport,
      caches: Object.values(this.caches),
      registry,
      ...(options.apiServerStallMs !== undefined ? { thresholdMs: options.apiServerStallMs } : {}),
      onChange: (responsive, silentMs) => {
        if (responsive) log.info('API server answers again', { silentMs });
        else log.warn('API server stalled: no answer', { silentMs, thresholdMs: options.apiServerStallMs ?? 30_000 });
        this.enqueuePolicy?.();
      },
    });
  }

  /**
   * Resolves once every cache has listed; rejects if `signal` aborts first. NOTE: one abort
   * listener per call, not one per cache: the stores are awaited without the signal (a waiter
   * of a cache that never syncs is dropped with the operator).
   */
  private synced(signal: AbortSignal): Promise<unknown> {
    this.allSynced ??= Promise.all(Object.values(this.caches).map((r) => r.store.waitUntilSynced()));
    if (signal.aborted) return Promise.reject(signal.reason);
    const synced = this.allSynced;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      void synced.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve(undefined);
      });
    });
  }

  private recorder(): EventRecorder {
    return new EventRecorder(this.writes, CONTROLLER_NAME, this.options.identity, undefined, (err) =>
      this.options.log.warn('could not record an Event', { error: String(err) }),
    );
  }

  /** /healthz: the process answers. /readyz: every cache has synced (a standby is ready too: it is warm). */
  checks(): { healthz: Record<string, Check>; readyz: Record<string, Check> } {
    const readyz: Record<string, Check> = {};
    for (const [name, r] of Object.entries(this.caches)) {
      readyz[`cache-${name}`] = () => (r.store.hasSynced ? undefined : `${name} not synced (${r.health().lastError ?? r.phase})`);
    }
    readyz['apiserver'] = () => {
      const state = this.watchdog.state();
      return state.responsive ? undefined : `no answer from the API server for more than ${state.thresholdMs / 1000}s${state.lastError ? ` (${state.lastError})` : ''}`;
    };
    // Only the leader writes; a standby's store check passes (it has nothing to write).
    readyz['store'] = () => {
      if (this.storeOpenError !== undefined) return this.storeOpenError;
      const failure = this.collection?.writeFailure();
      return failure ? `writes fail (${failure.reason}): ${failure.message}` : undefined;
    };
    return { healthz: { ping: () => undefined }, readyz };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Runs until `signal` aborts; then stops the watches, finishes in-flight work, flushes the store and releases the Lease. */
  async run(signal: AbortSignal): Promise<void> {
    const { log } = this.options;
    const started = performance.now();
    const watches = [...Object.values(this.caches).map((r) => r.start(signal)), this.watchdog.run(signal), this.reconnectProbe.run(signal)];
    void this.synced(signal).then(
      () => log.info('caches synced', { ms: Math.round(performance.now() - started), nodes: this.nodes.store.size, pods: this.pods.store.size }),
      () => undefined,
    );
    if (this.options.leaderElect) {
      const elector = new LeaderElector({
        transport: this.transport,
        namespace: this.options.namespace,
        name: LEASE_NAME,
        identity: this.options.identity,
        registry: this.options.registry,
        ...(this.options.leaseDurationMs !== undefined ? { leaseDurationMs: this.options.leaseDurationMs } : {}),
        ...(this.options.renewDeadlineMs !== undefined ? { renewDeadlineMs: this.options.renewDeadlineMs } : {}),
        ...(this.options.retryPeriodMs !== undefined ? { retryPeriodMs: this.options.retryPeriodMs } : {}),
        onStartedLeading: (leading, fence) => this.lead(leading, fence),
        onNewLeader: (identity) => log.info('leader', { leader: identity, me: identity === this.options.identity }),
        onError: (err) => log.warn('leader election', { error: String(err) }),
      });
      await elector.start(signal);
    } else {
      await this.lead(signal);
    }
    await Promise.allSettled(watches);
  }

  /**
   * Opens the store for this term, retrying until it opens or `signal` aborts. NOTE: a store that
   * cannot be opened (a full, read-only or mis-mounted volume, a second writer) is usually fixed
   * outside the process, so the leader keeps its term and retries instead of exiting: the policy
   * says why (Ready False, StoreUnavailable) the whole time, nothing relists, and collection starts
   * by itself once the volume is fixed. A crash loop would say it only in a pod's restart count.
   */
  private async openCollection(signal: AbortSignal, onChange: () => void): Promise<Collection | undefined> {
    const { log, registry } = this.options;
    const backoff = new Backoff({ initialMs: this.options.storeRetry?.initialMs ?? 1000, maxMs: this.options.storeRetry?.maxMs ?? 60_000, jitter: 0.2 });
    for (;;) {
      try {
        return await Collection.open({
          transport: this.writes,
          fence: this.fence,
          namespace: this.options.namespace,
          dataDir: this.options.dataDir,
          nodes: this.nodes.store,
          pods: this.pods.store,
          namespaces: this.namespaces.store,
          registry,
          log,
          onChange,
          skipped: this.skipped,
          reconnect: this.reconnectProbe,
          ...(this.options.clock ? { clock: this.options.clock } : {}),
        });
      } catch (err) {
        if (signal.aborted) return undefined;
        const reason = storeFailureReason(err);
        const message = `the event store at ${this.options.dataDir} cannot be opened: ${err instanceof Error ? err.message : String(err)}`;
        this.storeOpenFailures.inc({ reason });
        this.storeOpenError = message;
        const retryInMs = backoff.next(Date.now());
        log.error('store cannot be opened; retrying', { dataDir: this.options.dataDir, reason, error: err instanceof Error ? err.message : String(err), retryInMs });
        await this.reportStoreUnavailable(reason, message);
        await sleep(retryInMs, signal);
        if (signal.aborted) return undefined;
      }
    }
  }

  /** Writes the policy's status for a term without a store: Ready False with the reason, before the next retry. */
  private async reportStoreUnavailable(reason: string, message: string): Promise<void> {
    const reconciler = new PolicyReconciler({
      policies: this.policies.store,
      transport: this.writes,
      recorder: this.recorder(),
      collection: { apply: async () => undefined, observe: () => ({ storeUnavailable: { reason, message } }) },
      apiServer: () => this.watchdog.state(),
      caches: Object.fromEntries(Object.entries(this.caches).map(([name, r]) => [name, r.store])),
      log: this.options.log,
    });
    try {
      await reconciler.reconcile(POLICY_NAME);
    } catch (err) {
      this.options.log.warn('could not report the store failure in the policy status', { error: String(err) });
    }
  }

  /**
   * One leader term: everything that writes runs here and stops when `signal` aborts. Every write
   * of the term (store appends, sink deliveries, API writes) checks `fence` right before it is made.
   */
  private async lead(signal: AbortSignal, fence: Fence = OPEN_FENCE): Promise<void> {
    const { log, registry } = this.options;
    this.fence = fence;
    this.leading = true;
    // Caches sync before the controller starts (as in controller-runtime): a reconcile never sees a half list.
    try {
      await this.synced(signal);
    } catch {
      this.leading = false;
      return; // stopped while syncing
    }
    log.info('leading: starting collection', { identity: this.options.identity });
    let controller: Controller | undefined;
    const enqueue = (): void => controller?.enqueue(POLICY_NAME);
    this.enqueuePolicy = enqueue;
    let collection: Collection | undefined;
    try {
      collection = await this.openCollection(signal, enqueue);
      this.storeOpenError = undefined;
      if (!collection) return; // stopped while retrying
      this.collection = collection;
      collection.start(signal);
      const auditExport = new AuditExport({
        transport: this.writes,
        namespace: this.options.namespace,
        stores: {
          ServiceAccount: this.extension.ServiceAccount.store,
          Secret: this.extension.Secret.store,
          ConfigMap: this.extension.ConfigMap.store,
          Service: this.extension.Service.store,
          Deployment: this.extension.Deployment.store,
        },
        image: this.options.auditExporterImage ?? DEFAULT_IMAGE,
        log,
      });
      const reconciler = new PolicyReconciler({
        policies: this.policies.store,
        auditExport,
        apiServer: () => this.watchdog.state(),
        transport: this.writes,
        recorder: this.recorder(),
        collection,
        caches: Object.fromEntries(Object.entries(this.caches).map(([name, r]) => [name, r.store])),
        log,
      });
      controller = new Controller({
        name: 'datacollectionpolicy',
        reconcile: (key) => reconciler.reconcile(key),
        registry,
        onError: (key, err, requeued) => log.error('reconcile failed', { key, error: String(err), requeued }),
      });
      const unsubscribe = this.policies.store.subscribe((_type, key) => controller?.enqueue(key), { replay: true });
      // Any change to an extension object (a hand edit, a deletion, a Pod turning ready, the exporter's report) re-runs the policy.
      const unsubscribeExtension = Object.values(this.extension).map((r) => r.store.subscribe(() => enqueue()));
      enqueue();
      try {
        await controller.start(signal);
      } finally {
        unsubscribe();
        for (const u of unsubscribeExtension) u();
      }
    } catch (err) {
      if (!signal.aborted) log.error('leader term failed', { error: String(err) });
      throw err;
    } finally {
      this.collection = undefined;
      this.storeOpenError = undefined;
      this.enqueuePolicy = undefined;
      await collection?.close();
      this.leading = false;
      log.info('stopped leading: collection closed');
    }
  }
}

