// The operator as a whole: caches on every replica; collection, the policy controller and all writes on the leader only.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { GROUP, PLURAL, POLICY_NAME, VERSION } from '../api/policy.js';
import { projectNamespace, projectNode, projectPod } from '../collectors/projections.js';
import { KubeClient } from '../kube/client.js';
import { EventRecorder } from '../kube/recorder.js';
import type { Logger } from '../observability/logger.js';
import type { Check } from '../observability/http.js';
import type { Clock } from '../runtime/clock.js';
import { Controller } from '../runtime/controller.js';
import { LeaderElector } from '../runtime/leader.js';
import { Reflector } from '../runtime/reflector.js';
import { SkippedObjects } from '../runtime/skipped-objects.js';
import { Collection } from './collection.js';
import { PolicyReconciler, projectPolicy, type CachedPolicy } from './policy-controller.js';

export const LEASE_NAME = 'dcp-operator';
export const CONTROLLER_NAME = `${GROUP}/dcp-operator`;

export interface OperatorOptions {
  readonly kc: KubeConfig;
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
  /** Wall clock for collectors and the store. */
  readonly clock?: Clock;
}

export class Operator {
  private readonly transport: KubeClient;
  private readonly policies: Reflector<CachedPolicy>;
  private readonly nodes;
  private readonly pods;
  private readonly namespaces;
  /** Every cache by name, for health checks, sync waits and the Ready condition. */
  private readonly caches: Record<string, Reflector<unknown>>;
  private leading = false;
  private readonly skipped: SkippedObjects;

  constructor(private readonly options: OperatorOptions) {
    const { registry, log } = options;
    this.transport = new KubeClient(options.kc);
    // One reporter for every object the caches and collectors cannot read; only the leader writes Events.
    const recorder = this.recorder();
    this.skipped = new SkippedObjects({ registry, log, record: (e) => recorder.record(e), canRecord: () => this.leading });
    const common = (resource: string, kind: string, apiVersion = 'v1') => ({
      transport: this.transport,
      registry,
      resource,
      ...(options.watchStallTimeoutMs !== undefined ? { stallTimeoutMs: options.watchStallTimeoutMs } : {}),
      onError: (err: Error, reason: string) => log.warn('watch restarting', { resource, reason, error: err.message }),
      onMalformed: (key: string | undefined, obj: unknown) =>
        this.skipped.report({ resource, kind, apiVersion, object: obj, ...(key !== undefined ? { key } : {}), reason: 'MalformedObject', note: `this ${kind} lacks fields the collectors need` }),
    });
    this.policies = new Reflector({ ...common('datacollectionpolicies', 'DataCollectionPolicy', `${GROUP}/${VERSION}`), path: `/apis/${GROUP}/${VERSION}/${PLURAL}`, project: projectPolicy });
    this.nodes = new Reflector({ ...common('nodes', 'Node'), path: '/api/v1/nodes', project: projectNode });
    this.pods = new Reflector({ ...common('pods', 'Pod'), path: '/api/v1/pods', project: projectPod });
    this.namespaces = new Reflector({ ...common('namespaces', 'Namespace'), path: '/api/v1/namespaces', fieldSelector: 'metadata.name=kube-system', project: projectNamespace });
    this.caches = { datacollectionpolicies: this.policies, nodes: this.nodes, pods: this.pods, namespaces: this.namespaces } as Record<string, Reflector<unknown>>;
  }

  /** Resolves once every cache has listed; rejects if `signal` aborts first. */
  private synced(signal: AbortSignal): Promise<unknown> {
    return Promise.all(Object.values(this.caches).map((r) => r.store.waitUntilSynced(signal)));
  }

  private recorder(): EventRecorder {
    return new EventRecorder(this.transport, CONTROLLER_NAME, this.options.identity, undefined, (err) =>
      this.options.log.warn('could not record an Event', { error: String(err) }),
    );
  }

  /** /healthz: the process answers. /readyz: every cache has synced (a standby is ready too: it is warm). */
  checks(): { healthz: Record<string, Check>; readyz: Record<string, Check> } {
    const readyz: Record<string, Check> = {};
    for (const [name, r] of Object.entries(this.caches)) {
      readyz[`cache-${name}`] = () => (r.store.hasSynced ? undefined : `${name} not synced (${r.health().lastError ?? r.phase})`);
    }
    return { healthz: { ping: () => undefined }, readyz };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Runs until `signal` aborts; then stops the watches, finishes in-flight work, flushes the store and releases the Lease. */
  async run(signal: AbortSignal): Promise<void> {
    const { log } = this.options;
    const started = performance.now();
    const watches = Object.values(this.caches).map((r) => r.start(signal));
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
        onStartedLeading: (leading) => this.lead(leading),
        onNewLeader: (identity) => log.info('leader', { leader: identity, me: identity === this.options.identity }),
        onError: (err) => log.warn('leader election', { error: String(err) }),
      });
      await elector.start(signal);
    } else {
      await this.lead(signal);
    }
    await Promise.allSettled(watches);
  }

  /** One leader term: everything that writes runs here and stops when `signal` aborts. */
  private async lead(signal: AbortSignal): Promise<void> {
    const { log, registry } = this.options;
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
    let collection: Collection | undefined;
    try {
      collection = await Collection.open({
        transport: this.transport,
        namespace: this.options.namespace,
        dataDir: this.options.dataDir,
        nodes: this.nodes.store,
        pods: this.pods.store,
        namespaces: this.namespaces.store,
        registry,
        log,
        onChange: enqueue,
        skipped: this.skipped,
        ...(this.options.clock ? { clock: this.options.clock } : {}),
      });
      collection.start(signal);
      const reconciler = new PolicyReconciler({
        policies: this.policies.store,
        transport: this.transport,
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
      enqueue();
      try {
        await controller.start(signal);
      } finally {
        unsubscribe();
      }
    } catch (err) {
      if (!signal.aborted) log.error('leader term failed', { error: String(err) });
      throw err;
    } finally {
      await collection?.close();
      this.leading = false;
      log.info('stopped leading: collection closed');
    }
  }
}

