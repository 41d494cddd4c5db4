// The event envelope (DESIGN.md section 3) and the data of each event name, as TypeScript types.
// schemas/event.schema.json is the runtime contract; pipeline-schema.test.ts proves the two agree.
import type { CategoryName } from './policy.js';
import type { AzureRegion } from './regions.js';

export const SCHEMA_VERSION = '1.0';

export type Classification = 'non-personal' | 'billing' | 'customer-diagnostic';

/** Which cluster an event is about. `id` is the kube-system namespace UID. */
export interface ClusterRef {
  readonly id: string;
  readonly region: AzureRegion;
  readonly subscriptionId: string;
}

export type ControlPlaneInventoryData = {
  clusterCreationTimestamp: string;
  nodes: number;
  pods: number;
  podsByPhase: { Pending: number; Running: number; Succeeded: number; Failed: number; Unknown: number };
  vCores: number;
  allocatableVCores: number;
};

export type HostOsInfoData = {
  osName: string;
  osImage: string;
  kernelVersion: string;
  architecture: string;
  model: string;
  /** keyedHash(systemUUID): never the raw value. */
  deviceId: string;
  countryCode: string;
  cpuCount: number;
  ready: boolean;
  unschedulable: boolean;
  memoryPressure: boolean;
  diskPressure: boolean;
  pidPressure: boolean;
  containerRuntimeVersion?: string;
};

export type HostErrorData = {
  reason: string;
  message: string;
  stackTrace?: string;
  count: number;
  component: string;
};

export type LinuxVmKind = 'boot' | 'shutdown' | 'serviceStatus' | 'kernel' | 'applicationError' | 'authentication';

export type LinuxVmEventData = {
  kind: LinuxVmKind;
  reason: string;
  message: string;
  count: number;
};

export type CoreUsageData = {
  intervalStart: string;
  intervalEnd: string;
  quantity: number;
  unit: 'vCore';
};

export type CertificateState = 'valid' | 'expiring' | 'expired' | 'notYetValid' | 'revoked' | 'renewed';

export type CertificateStatusData = {
  notBefore: string;
  notAfter: string;
  daysToExpiry: number;
  fingerprintSha256: string;
  state: CertificateState;
  source?: 'secret' | 'csr';
};

export type KmsStatusData = {
  providers: number;
  healthyProviders: number;
  keyIdHash?: string;
  healthy: boolean;
};

export type AuditExportStatusData = {
  state: 'Disabled' | 'Progressing' | 'Enabled' | 'Failed';
  profile: 'kube-audit' | 'kube-audit-admin';
  destinationType?: 'file' | 'http';
  eventsReceived?: number;
  eventsExported?: number;
  intermediateRetentionHours?: number;
};

export type NumericSummary = {
  min: number;
  max: number;
  avg: number;
  sum: number;
};

export type DailyAggregateData = {
  category: CategoryName;
  eventName: CollectedEventName;
  /** YYYY-MM-DD (UTC). */
  day: string;
  count: number;
  /** Per numeric or boolean field (booleans as 0/1, nested fields as `a.b`). */
  numeric: Record<string, NumericSummary>;
};

/** Event name → the shape of its data. */
export interface EventDataMap {
  ControlPlaneInventory: ControlPlaneInventoryData;
  HostOsInfo: HostOsInfoData;
  HostError: HostErrorData;
  LinuxVmEvent: LinuxVmEventData;
  CoreUsage: CoreUsageData;
  CertificateStatus: CertificateStatusData;
  KmsStatus: KmsStatusData;
  AuditExportStatus: AuditExportStatusData;
  DailyAggregate: DailyAggregateData;
}

export type EventName = keyof EventDataMap;
/** The names collectors emit; DailyAggregate is made by the store. */
export type CollectedEventName = Exclude<EventName, 'DailyAggregate'>;

/** Where each collected event name belongs: fixed, so collectors cannot mislabel. */
export const EVENT_CATALOG: { readonly [N in CollectedEventName]: { category: CategoryName; classification: Classification } } = {
  ControlPlaneInventory: { category: 'controlPlane', classification: 'non-personal' },
  HostOsInfo: { category: 'hostOs', classification: 'non-personal' },
  HostError: { category: 'hostErrors', classification: 'non-personal' },
  LinuxVmEvent: { category: 'linuxVm', classification: 'non-personal' },
  CoreUsage: { category: 'billing', classification: 'billing' },
  CertificateStatus: { category: 'security', classification: 'non-personal' },
  KmsStatus: { category: 'security', classification: 'non-personal' },
  AuditExportStatus: { category: 'diagnostics', classification: 'customer-diagnostic' },
};

export const EVENT_NAMES: readonly EventName[] = [...(Object.keys(EVENT_CATALOG) as CollectedEventName[]), 'DailyAggregate'];

// Data shapes are type aliases, not interfaces, so they fit DcpEvent's index-signature `data`.

/** A scalar or a one-level nested object of scalars (podsByPhase), as the schema allows. */
export type DataValue = string | number | boolean | { readonly [key: string]: DataValue } | undefined;

/** One stored event. `data` is typed loosely here; `EventOf<N>` narrows it. */
export interface DcpEvent {
  readonly schemaVersion: typeof SCHEMA_VERSION;
  readonly id: string;
  readonly category: CategoryName;
  readonly name: EventName;
  /** RFC 3339, UTC, milliseconds. */
  readonly time: string;
  readonly cluster: ClusterRef;
  readonly classification: Classification;
  readonly data: { readonly [key: string]: DataValue };
}

export type EventOf<N extends EventName> = DcpEvent & { readonly name: N; readonly data: EventDataMap[N] };

export function isEventOf<N extends EventName>(event: DcpEvent, name: N): event is EventOf<N> {
  return event.name === name;
}
