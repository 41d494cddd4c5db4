// The audit-export extension's objects for a policy (pure): ServiceAccount, TLS Secret, ConfigMap, Service, Deployment.
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type { ExporterConfig } from '../audit/config.js';
import {
  CONFIG_CONFIGMAP,
  EXPORTER_CONFIG_FILE,
  EXPORTER_NAME,
  EXTENSION_LABELS,
  POLICY_FILE,
  SERVICE_PORT,
  TLS_SECRET,
  TOKEN_KEY,
  WEBHOOK_KUBECONFIG_FILE,
  WEBHOOK_PORT,
} from '../audit/names.js';
import { auditPolicy } from '../audit/profile.js';
import { API_VERSION, KIND, POLICY_NAME, type AuditExportSpec } from '../api/policy.js';

/** The serving certificate and the token the API server presents: generated once, then kept in the TLS Secret. */
export interface TlsMaterial {
  readonly certPem: string;
  readonly keyPem: string;
  readonly token: string;
}

export interface AuditPlanInput {
  readonly spec: AuditExportSpec;
  readonly namespace: string;
  /** The policy's uid: every object is owned by it, so deleting the policy removes them too. */
  readonly policyUid: string | undefined;
  readonly tls: TlsMaterial;
  /** The Service's ClusterIP once it has one: the API server reaches the exporter by IP (host networking has no cluster DNS). */
  readonly clusterIP: string | undefined;
  readonly image: string;
}

/** A Kubernetes object the controller writes: apiVersion, kind, metadata and the rest. */
export interface DesiredObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { name: string; namespace: string; labels: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: unknown[] };
  readonly [field: string]: unknown;
}

export const CONFIG_HASH_ANNOTATION = 'datacollection.arc.io/config-hash';
const MOUNT = '/etc/dcp-audit';
const STATE_DIR = '/var/lib/dcp-audit';

/** The DNS name in the serving certificate, and the TLS server name the webhook kubeconfig asks for. */
export const serviceHost = (namespace: string): string => `${EXPORTER_NAME}.${namespace}.svc`;

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

export function exporterConfig(spec: AuditExportSpec): ExporterConfig {
  const d = spec.destination;
  const destination: ExporterConfig['destination'] =
    d.type === 'file'
      ? { type: 'file', path: d.path ?? '/var/lib/dcp/audit' }
      : d.type === 'http'
        ? { type: 'http', url: d.url ?? '', ...(d.secretRef ? { credentialKey: d.secretRef.key } : {}) }
        : { type: 'azureBlob', resourceId: d.resourceId ?? '', credentialKey: d.secretRef?.key ?? '' };
  return { profile: spec.profile, destination, intermediateRetentionHours: spec.intermediateRetentionHours, bufferMaxBytes: spec.bufferMaxMiB * 1024 * 1024 };
}

/** The kubeconfig kube-apiserver's --audit-webhook-config-file takes. */
export function webhookKubeconfig(namespace: string, clusterIP: string | undefined, tls: TlsMaterial): string {
  const host = serviceHost(namespace);
  const server = `https://${clusterIP ?? host}:${SERVICE_PORT}/audit`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: EXPORTER_NAME, cluster: { server, 'certificate-authority-data': b64(tls.certPem), 'tls-server-name': host } }],
    users: [{ name: 'kube-apiserver', user: { token: tls.token } }],
    contexts: [{ name: 'audit-webhook', context: { cluster: EXPORTER_NAME, user: 'kube-apiserver' } }],
    'current-context': 'audit-webhook',
  });
}

function meta(name: string, input: AuditPlanInput): DesiredObject['metadata'] {
  return {
    name,
    namespace: input.namespace,
    labels: { ...EXTENSION_LABELS },
    ...(input.policyUid
      ? { ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name: POLICY_NAME, uid: input.policyUid, controller: true, blockOwnerDeletion: false }] }
      : {}),
  };
}

/** Every object of the extension, in the order they are applied. */
export function planAuditExport(input: AuditPlanInput): DesiredObject[] {
  const { spec, namespace, tls } = input;
  const serviceAccount: DesiredObject = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(EXPORTER_NAME, input) };
  const service: DesiredObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(EXPORTER_NAME, input),
    spec: {
      type: 'ClusterIP',
      selector: { 'app.kubernetes.io/name': EXPORTER_NAME },
      ports: [
        { name: 'webhook', port: SERVICE_PORT, targetPort: WEBHOOK_PORT, protocol: 'TCP' },
        { name: 'metrics', port: 8080, targetPort: 8080, protocol: 'TCP' },
      ],
    },
  };
  const secret: DesiredObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(TLS_SECRET, input),
    type: 'Opaque',
    data: {
      'tls.crt': b64(tls.certPem),
      'tls.key': b64(tls.keyPem),
      'ca.crt': b64(tls.certPem),
      [TOKEN_KEY]: b64(tls.token),
      [WEBHOOK_KUBECONFIG_FILE]: b64(webhookKubeconfig(namespace, input.clusterIP, tls)),
    },
  };
  const configMap: DesiredObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(CONFIG_CONFIGMAP, input),
    data: {
      [POLICY_FILE]: stringify(auditPolicy(spec.profile)),
      [EXPORTER_CONFIG_FILE]: `${JSON.stringify(exporterConfig(spec), null, 2)}\n`,
    },
  };
  const credential = spec.destination.secretRef;
  const filePath = spec.destination.type === 'file' ? (spec.destination.path ?? '/var/lib/dcp/audit') : undefined;
  // NOTE: the hash covers everything the Pod reads, so any change of profile, destination or certificate rolls it.
  const hash = createHash('sha256')
    .update(JSON.stringify([configMap.data, secret.data, credential ?? null, input.image]))
    .digest('hex')
    .slice(0, 16);
  const volumes: unknown[] = [
    { name: 'config', configMap: { name: CONFIG_CONFIGMAP } },
    { name: 'tls', secret: { secretName: TLS_SECRET } },
    { name: 'state', emptyDir: { sizeLimit: `${spec.bufferMaxMiB + 64}Mi` } },
  ];
  const mounts: unknown[] = [
    { name: 'config', mountPath: `${MOUNT}/config`, readOnly: true },
    { name: 'tls', mountPath: `${MOUNT}/tls`, readOnly: true },
    { name: 'state', mountPath: STATE_DIR },
  ];
  if (credential) {
    volumes.push({ name: 'credentials', secret: { secretName: credential.name, items: [{ key: credential.key, path: credential.key }] } });
    mounts.push({ name: 'credentials', mountPath: `${MOUNT}/credentials`, readOnly: true });
  }
  if (filePath) {
    volumes.push({ name: 'destination', hostPath: { path: filePath, type: 'DirectoryOrCreate' } });
    mounts.push({ name: 'destination', mountPath: filePath });
  }
  const labels = { ...EXTENSION_LABELS };
  const deployment: DesiredObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(EXPORTER_NAME, input),
    spec: {
      replicas: 1,
      selector: { matchLabels: { 'app.kubernetes.io/name': EXPORTER_NAME } },
      // A new Pod is ready before the old one goes: the API server always has a receiver.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels, annotations: { [CONFIG_HASH_ANNOTATION]: hash } },
        spec: {
          serviceAccountName: EXPORTER_NAME,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          terminationGracePeriodSeconds: 30,
          containers: [
            {
              name: 'exporter',
              image: input.image,
              args: [
                'audit-exporter',
                `--config=${MOUNT}/config/${EXPORTER_CONFIG_FILE}`,
                `--listen=:${WEBHOOK_PORT}`,
                `--tls-cert=${MOUNT}/tls/tls.crt`,
                `--tls-key=${MOUNT}/tls/tls.key`,
                `--token-file=${MOUNT}/tls/${TOKEN_KEY}`,
                `--state-dir=${STATE_DIR}`,
                `--credentials-dir=${MOUNT}/credentials`,
                '--metrics-addr=:8080',
                '--health-addr=:8081',
              ],
              env: [
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              ],
              ports: [
                { name: 'webhook', containerPort: WEBHOOK_PORT },
                { name: 'metrics', containerPort: 8080 },
                { name: 'health', containerPort: 8081 },
              ],
              readinessProbe: { httpGet: { path: '/readyz', port: 'health' }, periodSeconds: 5 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'health' }, periodSeconds: 10 },
              resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: mounts,
            },
          ],
          volumes,
        },
      },
    },
  };
  return [serviceAccount, service, secret, configMap, deployment];
}

/**
 * Whether every field the controller sets has that value in the live object (fields the API server
 * adds, defaults and status, are ignored; arrays must match element by element).
 */
export function isSubset(desired: unknown, live: unknown): boolean {
  if (Array.isArray(desired)) {
    return Array.isArray(live) && live.length === desired.length && desired.every((d, i) => isSubset(d, live[i]));
  }
  if (typeof desired === 'object' && desired !== null) {
    if (typeof live !== 'object' || live === null || Array.isArray(live)) return false;
    const l = live as Record<string, unknown>;
    return Object.entries(desired as Record<string, unknown>).every(([k, v]) => isSubset(v, l[k]));
  }
  return desired === live;
}
