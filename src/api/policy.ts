// The DataCollectionPolicy API: one TypeBox definition gives the TypeScript types, the CRD's
// OpenAPI schema (hack/generate-crd.ts) and runtime validation (validation.ts).
//
// Convention: a property that carries a `default` is NOT wrapped in Type.Optional. The API
// server fills it in before anything reads the object, so the TypeScript type says it is
// always there; the CRD generator drops such properties from `required` (see crd.ts).
import { Type, type Static, type TSchema, type SchemaOptions } from '@sinclair/typebox';
import { AZURE_REGIONS, CENTRAL } from './regions.js';

export const GROUP = 'datacollection.arc.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'DataCollectionPolicy';
export const PLURAL = 'datacollectionpolicies';
export const SINGULAR = 'datacollectionpolicy';
export const SHORT_NAME = 'dcp';
export const POLICY_NAME = 'default';

interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  fieldPath?: string;
}

/** Schema options plus the Kubernetes extensions this API uses. */
interface KubeOptions extends SchemaOptions {
  description: string;
  'x-kubernetes-validations'?: CelRule[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
}

function StringEnum<const T extends readonly string[]>(values: T, options: KubeOptions) {
  // maxLength lets the API server bound the cost of CEL rules that read the value.
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], maxLength: Math.max(...values.map((v) => v.length)), ...options });
}

const immutable = (field: string): CelRule => ({ rule: 'self == oldSelf', message: `${field} is immutable: delete and recreate the policy to change it` });

const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
const GUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

const namespaceList = (description: string, def: string[]) =>
  Type.Array(Type.String({ description: 'A namespace name.', maxLength: 63, pattern: DNS_LABEL }), {
    description,
    default: def,
    maxItems: 64,
    'x-kubernetes-list-type': 'set',
  } satisfies KubeOptions);

const SecretKeyRef = Type.Object(
  {
    name: Type.String({ description: 'Name of a Secret in the operator namespace.', minLength: 1, maxLength: 253 }),
    key: Type.String({ description: 'Key in that Secret whose value is the bearer token.', minLength: 1, maxLength: 253 }),
  },
  { description: 'A key of a Secret in the operator namespace holding a bearer token.' },
);

const enabledFlag = (what: string) => Type.Boolean({ description: `Collect ${what}.`, default: true });

const intervalSeconds = (description: string, def: number) =>
  Type.Integer({ description, default: def, minimum: 10, maximum: 86400 });

export const RetentionSchema = Type.Object(
  {
    rawDays: Type.Integer({ description: 'Days raw events are kept before they are purged.', default: 28, minimum: 1, maximum: 28 }),
    aggregateDays: Type.Integer({
      description: 'Days daily de-identified aggregates are kept.',
      default: 365,
      minimum: 28,
      maximum: 3650,
    }),
  },
  { description: 'How long collected data is kept.', default: {} },
);

export const CategoriesSchema = Type.Object(
  {
    hostOs: Type.Object(
      { enabled: enabledFlag('host OS facts of each Node') },
      { description: 'Host OS name, version, model, device ID (keyed hash), country and flags per Node.', default: {} },
    ),
    controlPlane: Type.Object(
      {
        enabled: enabledFlag('control-plane inventory'),
        intervalSeconds: intervalSeconds('Seconds between inventory events.', 60),
      },
      { description: 'Cluster creation time, node, pod and vCore counts.', default: {} },
    ),
    hostErrors: Type.Object(
      { enabled: enabledFlag('host error events') },
      { description: 'Warning Events about Nodes and host components.', default: {} },
    ),
    linuxVm: Type.Object(
      {
        enabled: enabledFlag('Linux VM lifecycle and service events'),
        systemNamespaces: namespaceList('Namespaces whose events count as system events.', [
          'kube-system',
          'kube-node-lease',
          'kube-public',
          'dcp-system',
        ]),
      },
      { description: 'Boot, shutdown, service and kernel events from system namespaces only.', default: {} },
    ),
    billing: Type.Object(
      { intervalSeconds: intervalSeconds('Seconds in one metering interval.', 3600) },
      {
        description: 'The billing meter (vCores over time). Always on: it has no enabled field.',
        default: {},
      },
    ),
    security: Type.Object(
      {
        enabled: enabledFlag('certificate and KMS health'),
        certificateNamespaces: namespaceList('Namespaces whose TLS Secrets are inspected.', ['kube-system', 'dcp-system']),
        expiryWarningDays: Type.Integer({
          description: 'Report a certificate as expiring this many days before notAfter.',
          default: 30,
          minimum: 1,
          maximum: 365,
        }),
      },
      { description: 'Certificate validity and KMS plugin health; never key material.', default: {} },
    ),
  },
  { description: 'Which categories are collected, and how often.', default: {} },
);

export const AUDIT_DESTINATION_TYPES = ['file', 'http', 'azureBlob'] as const;

export const AuditDestinationSchema = Type.Object(
  {
    type: StringEnum(AUDIT_DESTINATION_TYPES, {
      description: 'Where audit events go: a directory on the node (file), an HTTP endpoint (http), or an Azure Storage account (azureBlob).',
    }),
    path: Type.Optional(Type.String({ description: 'Directory for type file (on the node running the exporter).', minLength: 1, maxLength: 4096, pattern: '^/' })),
    url: Type.Optional(Type.String({ description: 'Endpoint for type http.', minLength: 1, maxLength: 2048 })),
    resourceId: Type.Optional(
      Type.String({
        description: 'For azureBlob: the Azure resource ID the records belong to; blobs are named resourceId=<ID>/y=/m=/d=/h=/m=00/PT1H.json.',
        minLength: 1,
        maxLength: 1024,
      }),
    ),
    secretRef: Type.Optional(
      Type.Object(
        {
          name: Type.String({ description: 'Name of a Secret in the operator namespace.', minLength: 1, maxLength: 253 }),
          key: Type.String({ description: 'Key in that Secret: the bearer token (http), or a connection string or SAS URL (azureBlob).', minLength: 1, maxLength: 253 }),
        },
        { description: 'A key of a Secret in the operator namespace holding the destination credential.' },
      ),
    ),
  },
  {
    description: 'The customer-owned storage audit events are exported to.',
    default: { type: 'file', path: '/var/lib/dcp/audit' },
    'x-kubernetes-validations': [
      { rule: "self.type != 'file' || has(self.path)", message: 'a file destination needs path' },
      { rule: "self.type != 'file' || (!has(self.url) && !has(self.secretRef))", message: 'a file destination takes only path, not url or secretRef' },
      { rule: "self.type != 'http' || has(self.url)", message: 'an http destination needs url' },
      { rule: "self.type != 'http' || !has(self.path)", message: 'an http destination takes url (and secretRef), not path' },
      { rule: "self.type == 'azureBlob' || !has(self.resourceId)", message: 'resourceId belongs to an azureBlob destination only' },
      { rule: "self.type != 'azureBlob' || has(self.secretRef)", message: 'an azureBlob destination needs secretRef: a Secret key holding a connection string or a SAS URL' },
      { rule: "self.type != 'azureBlob' || has(self.resourceId)", message: 'an azureBlob destination needs resourceId, e.g. /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Kubernetes/connectedClusters/<name>' },
      { rule: "self.type != 'azureBlob' || (!has(self.path) && !has(self.url))", message: 'an azureBlob destination takes secretRef and resourceId, not path or url' },
      {
        rule: "!has(self.resourceId) || self.resourceId.lowerAscii().startsWith('/subscriptions/')",
        message: 'resourceId must be an Azure resource ID starting with /subscriptions/',
      },
      { rule: "!has(self.url) || self.url.startsWith('https://') || self.url.startsWith('http://')", message: 'url must start with https:// or http://' },
    ],
  } satisfies KubeOptions,
);

export const DiagnosticsSchema = Type.Object(
  {
    auditExport: Type.Object(
      {
        enabled: Type.Boolean({ description: 'Install the audit-export extension.', default: false }),
        profile: StringEnum(['kube-audit', 'kube-audit-admin'] as const, {
          description: 'kube-audit exports every audit event; kube-audit-admin leaves out get, list and watch.',
          default: 'kube-audit-admin',
        }),
        destination: AuditDestinationSchema,
        intermediateRetentionHours: Type.Integer({
          description: 'Hours the exporter may keep its own intermediate data (the buffer while the destination is down): older data is deleted, delivered or not.',
          default: 48,
          minimum: 1,
          maximum: 48,
        }),
        bufferMaxMiB: Type.Integer({
          description: 'Upper bound of the on-disk buffer used while the destination is down; past it the oldest events are dropped (counted, with a Warning Event).',
          default: 256,
          minimum: 1,
          maximum: 10240,
        }),
      },
      { description: 'Export of Kubernetes audit events to customer storage.', default: {} },
    ),
  },
  { description: 'Customer diagnostics.', default: {} },
);

export const SINK_TYPES = ['http', 'otlp', 'file'] as const;
export const SINK_REGIONS = [...AZURE_REGIONS, CENTRAL] as const;

export const SinkSchema = Type.Object(
  {
    name: Type.String({ description: 'Unique name of the sink.', minLength: 1, maxLength: 63, pattern: DNS_LABEL }),
    type: StringEnum(SINK_TYPES, { description: 'file writes JSON lines, http posts JSON batches, otlp posts OTLP/HTTP logs.' }),
    url: Type.Optional(Type.String({ description: 'Endpoint for http and otlp sinks.', minLength: 1, maxLength: 2048 })),
    path: Type.Optional(Type.String({ description: 'Directory for file sinks.', minLength: 1, maxLength: 4096, pattern: '^/' })),
    secretRef: Type.Optional(SecretKeyRef),
    region: StringEnum(SINK_REGIONS, {
      description: "Where the sink stores data: the policy region, or 'central' for de-identified aggregates only.",
    }),
  },
  {
    description: 'One destination for collected events.',
    'x-kubernetes-validations': [
      { rule: "self.type != 'file' || has(self.path)", message: 'a file sink needs path' },
      { rule: "self.type != 'file' || (!has(self.url) && !has(self.secretRef))", message: 'a file sink takes only path, not url or secretRef' },
      { rule: "self.type == 'file' || has(self.url)", message: 'http and otlp sinks need url' },
      { rule: "self.type == 'file' || !has(self.path)", message: 'http and otlp sinks take url (and secretRef), not path' },
      { rule: "!has(self.url) || self.url.startsWith('https://') || self.url.startsWith('http://')", message: 'url must start with https:// or http://' },
    ],
  } satisfies KubeOptions,
);

export const ExportSchema = Type.Object(
  {
    sinks: Type.Optional(
      Type.Array(SinkSchema, {
        description: 'Destinations for collected events.',
        maxItems: 16,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
      } satisfies KubeOptions),
    ),
    forwardAggregatesToCentral: Type.Boolean({
      description: "Allow de-identified aggregates to go to sinks with region 'central'.",
      default: false,
    }),
  },
  {
    description: 'Where collected events are sent.',
    default: {},
    'x-kubernetes-validations': [
      {
        rule: "!has(self.sinks) || !self.sinks.exists(s, s.region == 'central') || self.forwardAggregatesToCentral",
        message: "a sink with region 'central' needs forwardAggregatesToCentral: true",
      },
    ],
  } satisfies KubeOptions,
);

export const PolicySpecSchema = Type.Object(
  {
    subscriptionId: Type.String({
      description: 'The Azure subscription the cluster belongs to (a GUID). Immutable.',
      maxLength: 36,
      'x-kubernetes-validations': [
        { rule: `self.matches('${GUID}')`, message: 'subscriptionId must be a GUID such as 3f2c1a9e-0000-4000-8000-000000000001' },
        immutable('subscriptionId'),
      ],
    } satisfies KubeOptions),
    region: StringEnum(AZURE_REGIONS, {
      description: 'The Azure region where collected data lives. Immutable.',
      'x-kubernetes-validations': [immutable('region')],
    }),
    retention: RetentionSchema,
    categories: CategoriesSchema,
    diagnostics: DiagnosticsSchema,
    export: ExportSchema,
  },
  {
    description: 'What the cluster collects about itself, where it lives, how long it is kept.',
    'x-kubernetes-validations': [
      {
        rule: "!has(self.export.sinks) || self.export.sinks.all(s, s.region == self.region || s.region == 'central')",
        // A messageExpression naming the sinks costs more than the API server allows; the region is named instead.
        messageExpression: "'every sink region must equal spec.region (' + self.region + \") or be 'central'\"",
      },
    ],
  } satisfies KubeOptions,
);

export const CONDITION_TYPES = ['Accepted', 'Ready', 'RegionEnforced', 'RetentionEnforced', 'AuditExportReady', 'StoreWritable', 'APIServerResponsive', 'Delivering'] as const;

export const ConditionSchema = Type.Object(
  {
    type: Type.String({ description: 'Type of condition in CamelCase.', maxLength: 316 }),
    status: StringEnum(['True', 'False', 'Unknown'] as const, { description: 'Status of the condition.' }),
    observedGeneration: Type.Optional(Type.Integer({ description: 'The generation this condition was set for.', format: 'int64', minimum: 0 })),
    lastTransitionTime: Type.String({ description: 'When the status last changed.', format: 'date-time' }),
    reason: Type.String({ description: 'Machine-readable CamelCase reason.', maxLength: 1024, minLength: 1 }),
    message: Type.String({ description: 'Human-readable details.', maxLength: 32768 }),
  },
  { description: 'A KEP-1623 condition.' },
);

const categoryStatus = (name: string) =>
  Type.Optional(
    Type.Object(
      {
        enabled: Type.Boolean({ description: 'Whether the category is being collected.', default: false }),
        lastEventTime: Type.Optional(Type.String({ description: 'Time of the newest event emitted.', format: 'date-time' })),
        eventsEmitted: Type.Integer({ description: 'Events emitted since the operator started leading.', default: 0, format: 'int64' }),
      },
      { description: `Collection status of ${name}.` },
    ),
  );

export const SINK_STATES = ['Delivering', 'Backlogged', 'Failing'] as const;
export const SINK_ERROR_CLASSES = ['Refused', 'Rejected', 'Throttled', 'ServerError', 'Timeout', 'Network', 'Unknown'] as const;

export const SinkStatusSchema = Type.Object(
  {
    name: Type.String({ description: 'The sink, as spec.export.sinks names it.', maxLength: 63 }),
    state: StringEnum(SINK_STATES, { description: 'Delivering (nothing waits), Backlogged (catching up), Failing (the last attempt failed).' }),
    backlogEvents: Type.Integer({ description: 'Routed events stored but not yet accepted, as last measured.', format: 'int64', minimum: 0 }),
    oldestUndeliveredTime: Type.Optional(Type.String({ description: 'Event time of the oldest event not yet accepted.', format: 'date-time' })),
    lastSuccessTime: Type.Optional(Type.String({ description: 'When the sink last accepted a batch (or had nothing to accept).', format: 'date-time' })),
    failingSince: Type.Optional(Type.String({ description: 'While Failing: when the current run of failures began.', format: 'date-time' })),
    lastErrorClass: Type.Optional(
      StringEnum(SINK_ERROR_CLASSES, { description: 'While Failing: Refused (401/403, will not heal by retrying), Rejected (other 4xx), Throttled (408/429), ServerError (5xx), Timeout, Network, Unknown.' }),
    ),
    lastError: Type.Optional(Type.String({ description: 'While Failing: the last error.', maxLength: 1024 })),
  },
  { description: 'Delivery state of one sink.' },
);

export const PolicyStatusSchema = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer({ description: 'The spec generation the status reflects.', format: 'int64' })),
    conditions: Type.Optional(
      Type.Array(ConditionSchema, {
        description: 'Accepted, Ready, RegionEnforced, RetentionEnforced, AuditExportReady, StoreWritable, APIServerResponsive, Delivering.',
        maxItems: 16,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
      } satisfies KubeOptions),
    ),
    clusterCreationTimestamp: Type.Optional(Type.String({ description: 'Creation time of the kube-system namespace.', format: 'date-time' })),
    inventory: Type.Optional(
      Type.Object(
        {
          nodes: Type.Integer({ description: 'Nodes in the cluster.', default: 0 }),
          pods: Type.Integer({ description: 'Pods in the cluster.', default: 0 }),
          vCores: Type.Number({ description: 'Sum of Node CPU capacity, in cores.', default: 0 }),
        },
        { description: 'The latest control-plane inventory.' },
      ),
    ),
    categories: Type.Optional(
      Type.Object(
        {
          hostOs: categoryStatus('hostOs'),
          controlPlane: categoryStatus('controlPlane'),
          hostErrors: categoryStatus('hostErrors'),
          linuxVm: categoryStatus('linuxVm'),
          billing: categoryStatus('billing'),
          security: categoryStatus('security'),
          diagnostics: categoryStatus('diagnostics'),
        },
        { description: 'Per-category collection status.' },
      ),
    ),
    store: Type.Optional(
      Type.Object(
        {
          events: Type.Integer({ description: 'Raw events in the store.', default: 0, format: 'int64' }),
          oldestEventTime: Type.Optional(Type.String({ description: 'Time of the oldest raw event kept.', format: 'date-time' })),
          bytes: Type.Integer({ description: 'Bytes the store occupies on disk.', default: 0, format: 'int64' }),
        },
        { description: 'The embedded event store.' },
      ),
    ),
    sinks: Type.Optional(
      Type.Array(SinkStatusSchema, {
        description: 'Delivery per sink, as the leader sees it.',
        maxItems: 32,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
      } satisfies KubeOptions),
    ),
    auditExport: Type.Optional(
      Type.Object(
        {
          state: StringEnum(['Disabled', 'Progressing', 'Enabled', 'Failed'] as const, {
            description: 'State of the audit-export extension.',
            default: 'Disabled',
          }),
          reason: Type.Optional(Type.String({ description: 'Why the extension is in this state (CamelCase).', maxLength: 1024 })),
          message: Type.Optional(Type.String({ description: 'Details of the state.', maxLength: 32768 })),
          backlogBytes: Type.Optional(Type.Integer({ description: 'Bytes the exporter buffers on disk because the destination is unavailable.', format: 'int64', minimum: 0 })),
          backlogOldestTime: Type.Optional(Type.String({ description: 'When the oldest buffered batch arrived.', format: 'date-time' })),
        },
        { description: 'The audit-export extension.' },
      ),
    ),
  },
  { description: 'What the operator observed and did.' },
);

export const PolicySchema = Type.Object(
  {
    apiVersion: Type.Optional(Type.String({ description: 'APIVersion of this representation of the object.' })),
    kind: Type.Optional(Type.String({ description: 'Kind of this object.' })),
    metadata: Type.Optional(Type.Object({}, { description: 'Standard object metadata.' })),
    spec: PolicySpecSchema,
    status: Type.Optional(PolicyStatusSchema),
  },
  {
    description: 'DataCollectionPolicy governs what data the cluster collects about itself. Singleton: its name is default.',
    'x-kubernetes-validations': [{ rule: "self.metadata.name == 'default'", message: "the policy is a singleton: metadata.name must be 'default'" }],
  } satisfies KubeOptions,
);

export type PolicySpec = Static<typeof PolicySpecSchema>;
export type PolicyStatus = Static<typeof PolicyStatusSchema>;
export type Condition = Static<typeof ConditionSchema>;
export type SinkStatus = Static<typeof SinkStatusSchema>;
export type ConditionType = (typeof CONDITION_TYPES)[number];
export type Sink = Static<typeof SinkSchema>;
export type SinkType = Sink['type'];
export type SinkRegion = Sink['region'];
export type Categories = Static<typeof CategoriesSchema>;
export type CategoryName = keyof Categories | 'diagnostics';
export type AuditExportStatus = NonNullable<PolicyStatus['auditExport']>;
export type AuditExportState = AuditExportStatus['state'];
export type AuditExportSpec = PolicySpec['diagnostics']['auditExport'];
export type AuditDestination = Static<typeof AuditDestinationSchema>;

/** Object metadata as the operator reads it: only what it uses. */
export interface PolicyMetadata {
  name?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string | Date;
}

export interface DataCollectionPolicy {
  apiVersion?: string;
  kind?: string;
  metadata: PolicyMetadata;
  spec: PolicySpec;
  status?: PolicyStatus;
}

export const CATEGORY_NAMES: readonly CategoryName[] = [
  'hostOs',
  'controlPlane',
  'hostErrors',
  'linuxVm',
  'billing',
  'security',
  'diagnostics',
];

export type { TSchema };
