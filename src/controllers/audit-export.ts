// Applies the audit-export extension: creates, updates (rolling the Deployment), puts back and removes its objects,
// and reads back what status.auditExport should say. Its caches watch only the extension's labelled objects.
import { randomBytes, X509Certificate } from 'node:crypto';
import type { AuditExportSpec, AuditExportStatus } from '../api/policy.js';
import { EXPORTER_NAME, EXTENSION_SELECTOR, STATUS_CONFIGMAP, STATUS_KEY, TLS_SECRET, TOKEN_KEY } from '../audit/names.js';
import { selfSignedCertificate } from '../audit/x509.js';
import type { KubeTransport } from '../kube/client.js';
import { Conflict, NotFound } from '../kube/errors.js';
import { asRecord, asString, collectionPath } from '../kube/resource.js';
import type { Log } from '../observability/log.js';
import { Reflector, type ReflectorOptions } from '../runtime/reflector.js';
import type { ReadStore } from '../runtime/store.js';
import { isSubset, planAuditExport, serviceHost, type DesiredObject, type TlsMaterial } from './audit-export-plan.js';
import { auditExportStatus, parseReport } from './audit-export-state.js';

export type KubeObject = Record<string, unknown>;

/** The kinds the extension is made of, with their collection paths. */
export const EXTENSION_KINDS = {
  ServiceAccount: '/api/v1/serviceaccounts',
  Secret: '/api/v1/secrets',
  ConfigMap: '/api/v1/configmaps',
  Service: '/api/v1/services',
  Deployment: '/apis/apps/v1/deployments',
} as const;
export type ExtensionKind = keyof typeof EXTENSION_KINDS;

export type ExtensionCaches = Record<ExtensionKind, Reflector<KubeObject>>;

/** One cache per kind, in the operator namespace, of the objects labelled as the extension's. */
export function extensionCaches(namespace: string, common: Omit<ReflectorOptions<KubeObject>, 'path' | 'project' | 'resource'>): ExtensionCaches {
  const make = (kind: ExtensionKind): Reflector<KubeObject> =>
    new Reflector<KubeObject>({
      ...common,
      path: EXTENSION_KINDS[kind],
      namespace,
      labelSelector: EXTENSION_SELECTOR,
      resource: `audit-${kind.toLowerCase()}s`,
      project: (obj) => {
        const o = asRecord(obj);
        return o ? structuredClone(o) : undefined;
      },
    });
  return { ServiceAccount: make('ServiceAccount'), Secret: make('Secret'), ConfigMap: make('ConfigMap'), Service: make('Service'), Deployment: make('Deployment') };
}

export interface AuditExportOptions {
  readonly transport: KubeTransport;
  readonly namespace: string;
  readonly stores: Record<ExtensionKind, ReadStore<KubeObject>>;
  /** The image the exporter Pods run (the operator's own). */
  readonly image: string;
  readonly log: Log;
  /** @default Date.now */
  readonly now?: () => number;
}

/** What the controller needs of the policy. */
export interface AuditPolicyView {
  readonly uid: string | undefined;
  readonly spec: AuditExportSpec;
}

const CERT_RENEW_BEFORE_MS = 30 * 86_400_000;
const fromB64 = (v: unknown): string | undefined => (typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : undefined);

export class AuditExport {
  private readonly now: () => number;
  /** The material last seen in the Secret or generated here: used while the Secret is missing from the cache. */
  private generated: TlsMaterial | undefined;

  constructor(private readonly options: AuditExportOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Brings the cluster to what the policy asks for and says what status.auditExport should be. */
  async reconcile(policy: AuditPolicyView | undefined): Promise<AuditExportStatus> {
    const now = this.now();
    if (!policy?.spec.enabled) {
      await this.removeAll();
      return auditExportStatus({ enabled: false, now });
    }
    let problem: { reason: string; message: string } | undefined;
    try {
      await this.apply(policy);
    } catch (err) {
      if (err instanceof Conflict) throw err; // the cache lags a write: retry soon
      problem = { reason: 'ApplyFailed', message: `could not apply the extension: ${err instanceof Error ? err.message : String(err)}` };
    }
    problem ??= await this.credentialProblem(policy.spec);
    const status = asRecord(this.live('ConfigMap', STATUS_CONFIGMAP)?.data);
    const report = parseReport(asString(status?.[STATUS_KEY]));
    const deployment = this.live('Deployment', EXPORTER_NAME);
    return auditExportStatus({ enabled: true, now, ...(problem ? { problem } : {}), ...(deployment ? { deployment } : {}), ...(report ? { report } : {}) });
  }

  private live(kind: ExtensionKind, name: string): KubeObject | undefined {
    return this.options.stores[kind].get(`${this.options.namespace}/${name}`);
  }

  private async apply(policy: AuditPolicyView): Promise<void> {
    const tls = this.tlsMaterial();
    const input = { spec: policy.spec, namespace: this.options.namespace, policyUid: policy.uid, tls, image: this.options.image };
    // The Service first: the webhook kubeconfig names its ClusterIP.
    const firstPass = planAuditExport({ ...input, clusterIP: undefined });
    const service = firstPass.find((o) => o.kind === 'Service');
    if (!service) throw new Error('the plan has no Service');
    const liveService = await this.ensure(service);
    const clusterIP = asString(asRecord(liveService?.spec)?.clusterIP);
    for (const obj of planAuditExport({ ...input, clusterIP: clusterIP === 'None' ? undefined : clusterIP })) {
      if (obj.kind !== 'Service') await this.ensure(obj);
    }
  }

  /** Creates the object, or replaces it when a field the plan sets differs (hand edits are put back). */
  private async ensure(desired: DesiredObject): Promise<KubeObject | undefined> {
    const { transport, namespace, log } = this.options;
    const kind = desired.kind as ExtensionKind;
    const collection = collectionPath(EXTENSION_KINDS[kind], namespace);
    const live = this.live(kind, desired.metadata.name);
    if (!live) {
      try {
        const created = asRecord(await transport.json({ method: 'POST', path: collection, body: desired }));
        log.info('audit export: created', { kind, name: desired.metadata.name });
        return created;
      } catch (err) {
        if (err instanceof Conflict) return undefined; // already there: the cache has not seen it yet
        throw err;
      }
    }
    if (isSubset(desired, live)) return live;
    const liveMeta = asRecord(live.metadata) ?? {};
    const body: KubeObject = { ...desired, metadata: { ...desired.metadata, resourceVersion: liveMeta.resourceVersion } };
    if (kind === 'Service') {
      // ClusterIPs are immutable: carry them over.
      const liveSpec = asRecord(live.spec) ?? {};
      body.spec = { ...(desired.spec as KubeObject), clusterIP: liveSpec.clusterIP, clusterIPs: liveSpec.clusterIPs };
    }
    const updated = asRecord(await transport.json({ method: 'PUT', path: `${collection}/${desired.metadata.name}`, body }));
    log.info('audit export: updated to match the policy', { kind, name: desired.metadata.name });
    return updated;
  }

  /** The serving certificate and token: kept from the Secret while valid, generated otherwise. */
  private tlsMaterial(): TlsMaterial {
    const data = asRecord(this.live('Secret', TLS_SECRET)?.data);
    const certPem = fromB64(data?.['tls.crt']);
    const keyPem = fromB64(data?.['tls.key']);
    const token = fromB64(data?.[TOKEN_KEY]);
    // NOTE: remembered, so a Secret deleted by hand comes back with the same certificate and token and the
    // API server's copy of the webhook kubeconfig keeps working.
    if (certPem && keyPem && token && this.usable(certPem)) return (this.generated = { certPem, keyPem, token });
    if (this.generated && this.usable(this.generated.certPem)) return this.generated;
    const host = serviceHost(this.options.namespace);
    const now = this.now();
    const { certPem: cert, keyPem: key } = selfSignedCertificate({
      commonName: host,
      dnsNames: [host, `${host}.cluster.local`, `${EXPORTER_NAME}.${this.options.namespace}`],
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 365 * 86_400_000),
    });
    this.generated = { certPem: cert, keyPem: key, token: randomBytes(32).toString('base64url') };
    this.options.log.info('audit export: generated the webhook serving certificate and token');
    return this.generated;
  }

  private usable(certPem: string): boolean {
    try {
      const cert = new X509Certificate(certPem);
      return Date.parse(cert.validTo) - this.now() > CERT_RENEW_BEFORE_MS && cert.checkHost(serviceHost(this.options.namespace)) !== undefined;
    } catch {
      return false;
    }
  }

  /** A destination Secret that is missing, or lacks its key, is a Failed state with a reason, not a crash loop. */
  private async credentialProblem(spec: AuditExportSpec): Promise<{ reason: string; message: string } | undefined> {
    const ref = spec.destination.secretRef;
    if (!ref) return undefined;
    const { namespace, transport } = this.options;
    try {
      const secret = asRecord(await transport.json({ path: `/api/v1/namespaces/${namespace}/secrets/${encodeURIComponent(ref.name)}` }));
      const data = asRecord(secret?.data);
      if (!asString(data?.[ref.key])) {
        return { reason: 'SecretKeyMissing', message: `Secret ${namespace}/${ref.name} has no key "${ref.key}" (destination.secretRef.key)` };
      }
      return undefined;
    } catch (err) {
      if (err instanceof NotFound) return { reason: 'SecretNotFound', message: `Secret ${namespace}/${ref.name} named by destination.secretRef does not exist` };
      return { reason: 'SecretUnreadable', message: `cannot read Secret ${namespace}/${ref.name}: ${err instanceof Error ? err.message : String(err)}` };
    }
  }

  /** Deletes every labelled object of the extension (the exporter's status ConfigMap included). */
  private async removeAll(): Promise<void> {
    const { transport, namespace, log } = this.options;
    for (const kind of Object.keys(EXTENSION_KINDS) as ExtensionKind[]) {
      for (const obj of this.options.stores[kind].list()) {
        const name = asString(asRecord(obj.metadata)?.name);
        if (!name) continue;
        try {
          await transport.json({ method: 'DELETE', path: `${collectionPath(EXTENSION_KINDS[kind], namespace)}/${name}`, query: { propagationPolicy: 'Background' } });
          log.info('audit export: removed', { kind, name });
        } catch (err) {
          if (!(err instanceof NotFound)) throw err;
        }
      }
    }
  }
}
