// Reconciles the DataCollectionPolicy: applies it to collection, writes status (only when it changed), records transitions.
import { conditionTransitions } from '../api/conditions.js';
import { API_VERSION, GROUP, KIND, PLURAL, POLICY_NAME, VERSION, type DataCollectionPolicy, type PolicyStatus } from '../api/policy.js';
import { InvalidPolicyError, parsePolicy } from '../api/validation.js';
import type { KubeTransport } from '../kube/client.js';
import { NotFound } from '../kube/errors.js';
import type { EventRecorder } from '../kube/recorder.js';
import { asRecord } from '../kube/resource.js';
import type { Log } from '../observability/log.js';
import type { ReconcileResult } from '../runtime/controller.js';
import { deepEqual, type ReadStore } from '../runtime/store.js';
import type { AuditPolicyView } from './audit-export.js';
import { planStatus, type Observed } from './policy-status.js';
import type { AuditExportStatus } from '../api/policy.js';

/** The policy as the cache keeps it: the whole (small) object, unvalidated, so a bad one can be reported. */
export interface CachedPolicy {
  metadata: { name: string; uid?: string; generation?: number; resourceVersion?: string; creationTimestamp?: string };
  spec: unknown;
  status?: PolicyStatus;
}

export function projectPolicy(obj: unknown): CachedPolicy | undefined {
  const o = asRecord(obj);
  const m = asRecord(o?.metadata);
  if (!o || !m || typeof m.name !== 'string') return undefined;
  return {
    metadata: {
      name: m.name,
      ...(typeof m.uid === 'string' ? { uid: m.uid } : {}),
      ...(typeof m.generation === 'number' ? { generation: m.generation } : {}),
      ...(typeof m.creationTimestamp === 'string' ? { creationTimestamp: m.creationTimestamp } : {}),
    },
    spec: o.spec,
    ...(o.status !== undefined ? { status: o.status as PolicyStatus } : {}),
  };
}

/** What the reconciler drives: the leader's collection (undefined on a standby). */
export interface CollectionHandle {
  apply(spec: DataCollectionPolicy['spec'] | undefined): Promise<void>;
  observe(): Partial<Observed>;
}

/** What the reconciler drives for the audit-export extension (undefined: not managed by this process). */
export interface AuditExportHandle {
  reconcile(policy: AuditPolicyView | undefined): Promise<AuditExportStatus>;
}

export interface PolicyReconcilerOptions {
  readonly policies: ReadStore<CachedPolicy>;
  readonly auditExport?: AuditExportHandle;
  /** Whether the API server answers (the operator's stall watchdog). */
  readonly apiServer?: () => NonNullable<Observed['apiServer']>;
  readonly transport: KubeTransport;
  readonly recorder: EventRecorder;
  readonly collection: CollectionHandle;
  /** Caches that must have synced before the policy is Ready, by name. */
  readonly caches: Record<string, { readonly hasSynced: boolean }>;
  readonly log: Log;
  readonly now?: () => Date;
  /** Status refresh period (store figures change without an event). @default 30000 */
  readonly resyncMs?: number;
}

export const STATUS_PATH = `/apis/${GROUP}/${VERSION}/${PLURAL}/${POLICY_NAME}/status`;

export class PolicyReconciler {
  private readonly now: () => Date;
  private lastSpecJson: string | undefined;

  constructor(private readonly options: PolicyReconcilerOptions) {
    this.now = options.now ?? (() => new Date());
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    if (key !== POLICY_NAME) return {}; // the API server refuses other names; nothing to do
    const { policies, collection, log } = this.options;
    const cached = policies.get(key);
    if (!cached) {
      if (this.lastSpecJson !== undefined) log.info('policy deleted: collection stops');
      this.lastSpecJson = undefined;
      await collection.apply(undefined);
      // The garbage collector removes the owned objects too; removing them here is quicker and covers orphans.
      await this.options.auditExport?.reconcile(undefined);
      return {};
    }
    let policy: DataCollectionPolicy;
    let invalidSpec: string | undefined;
    try {
      policy = parsePolicy({ apiVersion: API_VERSION, kind: KIND, metadata: cached.metadata, spec: cached.spec, status: cached.status });
    } catch (err) {
      invalidSpec = err instanceof InvalidPolicyError ? err.problems.join('; ') : String(err);
      policy = { metadata: cached.metadata, spec: cached.spec as DataCollectionPolicy['spec'], ...(cached.status ? { status: cached.status } : {}) };
    }
    if (invalidSpec === undefined) {
      const specJson = JSON.stringify(policy.spec);
      if (specJson !== this.lastSpecJson) log.info('policy applied', { generation: policy.metadata.generation });
      this.lastSpecJson = specJson;
      await collection.apply(policy.spec);
    } else {
      log.warn('policy spec is invalid: collection stops', { problems: invalidSpec });
      this.lastSpecJson = undefined;
      await collection.apply(undefined);
    }
    const unsyncedCaches = Object.entries(this.options.caches)
      .filter(([, c]) => !c.hasSynced)
      .map(([name]) => name);
    // An invalid spec leaves the extension as it is: removing the customer's audit export over a typo would lose events.
    const auditExport =
      invalidSpec === undefined && this.options.auditExport
        ? await this.options.auditExport.reconcile({ uid: policy.metadata.uid, spec: policy.spec.diagnostics.auditExport })
        : undefined;
    const observed: Observed = {
      leading: true,
      unsyncedCaches,
      ...collection.observe(),
      ...(this.options.apiServer ? { apiServer: this.options.apiServer() } : {}),
      ...(auditExport ? { auditExport } : {}),
      ...(invalidSpec !== undefined ? { invalidSpec } : {}),
    };
    await this.writeStatus(policy, planStatus(policy, observed, this.now()));
    // While the extension settles, look again soon: its state follows Pods and the exporter's reports.
    const settling = auditExport?.state === 'Progressing' || auditExport?.state === 'Failed';
    return { requeueAfter: unsyncedCaches.length > 0 ? 1000 : settling ? 5000 : (this.options.resyncMs ?? 30_000) };
  }

  /** NOTE: writes only when the status differs, so a steady policy costs no API calls. */
  private async writeStatus(policy: DataCollectionPolicy, status: PolicyStatus): Promise<void> {
    if (deepEqual(policy.status ?? {}, status)) return;
    try {
      await this.options.transport.json({ method: 'PATCH', path: STATUS_PATH, body: { status } });
    } catch (err) {
      if (err instanceof NotFound) return; // deleted meanwhile: the next reconcile stops collection
      throw err;
    }
    const regarding = { apiVersion: API_VERSION, kind: KIND, name: POLICY_NAME, ...(policy.metadata.uid ? { uid: policy.metadata.uid } : {}) };
    for (const c of conditionTransitions(policy.status?.conditions, status.conditions ?? [])) {
      await this.options.recorder.record({
        regarding,
        type: c.status === 'False' ? 'Warning' : 'Normal',
        reason: `${c.type}${c.status === 'True' ? '' : c.status === 'False' ? 'False' : 'Unknown'}`,
        action: 'Reconcile',
        note: `${c.type} is ${c.status} (${c.reason}): ${c.message}`,
      });
    }
  }
}
