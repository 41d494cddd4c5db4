// Plans the policy's status from what the operator observes (pure): conditions, inventory, store, audit export.
import { applyConditions, type DesiredCondition } from '../api/conditions.js';
import type { AuditExportStatus, DataCollectionPolicy, PolicySpec, PolicyStatus, SinkStatus } from '../api/policy.js';

/** What the running operator knows right now; every field is optional so the plan works before collectors exist. */
export interface Observed {
  /** Why the spec could not be used, when it could not. */
  invalidSpec?: string;
  /** Whether this replica leads (only the leader collects and writes). */
  leading: boolean;
  /** Names of caches that have not synced yet. */
  unsyncedCaches: string[];
  clusterCreationTimestamp?: string;
  inventory?: { nodes: number; pods: number; vCores: number };
  categories?: PolicyStatus['categories'];
  store?: { events: number; bytes: number; oldestEventTime?: string; rawDaysApplied?: number; error?: string };
  /** The API server stall watchdog: whether it answers, and since when it has not. */
  apiServer?: { responsive: boolean; thresholdMs: number; stalledSince?: string; lastError?: string; lastStall?: { since: string; seconds: number } };
  /** Appends or cursor writes are failing now (a full, read-only or forbidden data directory). */
  storeWrite?: { reason: string; message: string; since: number };
  /** The leader could not open the event store (it retries): the errno-like reason and a message. */
  storeUnavailable?: { reason: string; message: string };
  /** What the audit-export controller found (see audit-export-state.ts). */
  auditExport?: AuditExportStatus;
  /** Delivery per sink, and how long a sink may fail before Delivering turns False. */
  delivery?: { sinks: SinkStatus[]; failingThresholdMs: number };
  /** Sinks the operator will not send to, with the reason (a residency rule it enforces itself). */
  refusedSinks?: string[];
}

function regionCondition(spec: PolicySpec, observed: Observed): DesiredCondition {
  const sinks = spec.export.sinks ?? [];
  if (observed.refusedSinks && observed.refusedSinks.length > 0) {
    return { type: 'RegionEnforced', status: 'False', reason: 'SinkRefused', message: `not sending to: ${observed.refusedSinks.join('; ')}` };
  }
  const regional = sinks.filter((s) => s.region === spec.region).length;
  const central = sinks.length - regional;
  const centralNote = central === 0 ? '' : `; ${central} central sink(s) receive de-identified aggregates only`;
  return {
    type: 'RegionEnforced',
    status: 'True',
    reason: 'SinksInRegion',
    message: `events are stored and sent in ${spec.region} only: ${regional} regional sink(s)${centralNote}`,
  };
}

function retentionCondition(spec: PolicySpec, observed: Observed): DesiredCondition {
  const store = observed.store;
  if (!store) return { type: 'RetentionEnforced', status: 'Unknown', reason: 'StoreNotOpen', message: 'the event store is not open yet' };
  if (store.error) return { type: 'RetentionEnforced', status: 'False', reason: 'SweepFailed', message: store.error };
  if (store.rawDaysApplied !== spec.retention.rawDays) {
    return { type: 'RetentionEnforced', status: 'Unknown', reason: 'SweepPending', message: `retention of ${spec.retention.rawDays} days applies at the next sweep` };
  }
  return {
    type: 'RetentionEnforced',
    status: 'True',
    reason: 'Swept',
    message: `raw events older than ${spec.retention.rawDays} days and aggregates older than ${spec.retention.aggregateDays} days are deleted`,
  };
}

function auditCondition(spec: PolicySpec, observed: Observed): DesiredCondition {
  if (!spec.diagnostics.auditExport.enabled) {
    return { type: 'AuditExportReady', status: 'True', reason: 'Disabled', message: 'audit export is disabled' };
  }
  const state = observed.auditExport?.state ?? 'Progressing';
  const message = observed.auditExport?.message ?? state;
  // The reason says why (ExporterNotReady, DestinationRefused, SecretNotFound, ...), the state alone would not.
  const reason = observed.auditExport?.reason ?? state;
  if (state === 'Enabled') return { type: 'AuditExportReady', status: 'True', reason, message };
  if (state === 'Failed') return { type: 'AuditExportReady', status: 'False', reason, message };
  return { type: 'AuditExportReady', status: 'Unknown', reason, message };
}

/** A CamelCase condition reason for an errno-like store failure reason. */
const WRITE_REASONS: Readonly<Record<string, string>> = {
  ENOSPC: 'NoSpace',
  EDQUOT: 'QuotaExceeded',
  EROFS: 'ReadOnlyFilesystem',
  EACCES: 'PermissionDenied',
  EPERM: 'PermissionDenied',
  Locked: 'InUse',
  ENOENT: 'DataDirectoryMissing',
};

function storeWritableCondition(observed: Observed): DesiredCondition {
  const unavailable = observed.storeUnavailable;
  if (unavailable) return { type: 'StoreWritable', status: 'False', reason: WRITE_REASONS[unavailable.reason] ?? 'OpenFailed', message: unavailable.message };
  const failing = observed.storeWrite;
  if (failing) {
    const since = new Date(failing.since).toISOString().replace(/\.\d{3}Z$/, 'Z');
    return { type: 'StoreWritable', status: 'False', reason: WRITE_REASONS[failing.reason] ?? 'WriteFailed', message: `writes to the data directory fail since ${since}: ${failing.message}` };
  }
  if (!observed.store) return { type: 'StoreWritable', status: 'Unknown', reason: 'StoreNotOpen', message: 'the event store is not open yet' };
  return { type: 'StoreWritable', status: 'True', reason: 'Writable', message: 'appends and cursor writes succeed' };
}

function apiServerCondition(observed: Observed): DesiredCondition | undefined {
  const api = observed.apiServer;
  if (!api) return undefined;
  const threshold = `${Math.round(api.thresholdMs / 1000)}s`;
  if (api.responsive) {
    const last = api.lastStall ? ` (it last stalled at ${api.lastStall.since}: no answer for ${api.lastStall.seconds}s)` : '';
    return { type: 'APIServerResponsive', status: 'True', reason: 'Responsive', message: `the API server answers within ${threshold}${last}` };
  }
  const since = api.stalledSince ? ` since ${api.stalledSince}` : '';
  const why = api.lastError ? `: ${api.lastError}` : '';
  return { type: 'APIServerResponsive', status: 'False', reason: 'Stalled', message: `no answer from the API server for more than ${threshold}${since}${why}` };
}

/**
 * False when a sink refuses for good (401/403: retrying will not help until someone fixes the
 * credentials) or has failed for longer than the threshold; a short failure only shows in status.sinks[].
 */
export function deliveringCondition(observed: Observed, now: Date): DesiredCondition | undefined {
  const delivery = observed.delivery;
  if (!delivery) return undefined;
  const sinks = delivery.sinks;
  if (sinks.length === 0) return { type: 'Delivering', status: 'True', reason: 'NoSinks', message: 'no sink has been tried yet' };
  const why = (s: SinkStatus): string => `${s.name} (${s.lastErrorClass ?? 'Unknown'} since ${s.failingSince ?? '?'}, ${s.backlogEvents} events waiting): ${s.lastError ?? ''}`;
  const refused = sinks.filter((s) => s.state === 'Failing' && s.lastErrorClass === 'Refused');
  if (refused.length > 0) return { type: 'Delivering', status: 'False', reason: 'SinkRefused', message: `refused (401/403): ${refused.map(why).join('; ')}` };
  const threshold = delivery.failingThresholdMs;
  const stuck = sinks.filter((s) => s.state === 'Failing' && s.failingSince !== undefined && now.getTime() - Date.parse(s.failingSince) > threshold);
  if (stuck.length > 0) {
    return { type: 'Delivering', status: 'False', reason: 'SinkFailing', message: `failing for more than ${Math.round(threshold / 1000)}s: ${stuck.map(why).join('; ')}` };
  }
  const behind = sinks.filter((s) => s.state !== 'Delivering').map((s) => `${s.name} ${s.state}`);
  return { type: 'Delivering', status: 'True', reason: 'Delivering', message: behind.length > 0 ? `sinks deliver; ${behind.join(', ')}` : 'every sink has accepted what was stored' };
}

function readyCondition(others: DesiredCondition[], observed: Observed): DesiredCondition {
  if (!observed.leading) return { type: 'Ready', status: 'Unknown', reason: 'NotLeading', message: 'waiting for the leader' };
  if (observed.unsyncedCaches.length > 0) {
    return { type: 'Ready', status: 'False', reason: 'CachesSyncing', message: `waiting for caches: ${observed.unsyncedCaches.join(', ')}` };
  }
  if (observed.storeUnavailable) {
    return { type: 'Ready', status: 'False', reason: 'StoreUnavailable', message: `${observed.storeUnavailable.message} (${observed.storeUnavailable.reason}); retrying` };
  }
  // Delivering stays out: the store keeps the backlog, so collection itself is fine while a sink is down.
  const failing = others.filter((c) => c.status === 'False' && c.type !== 'Delivering');
  if (failing.length > 0) {
    return { type: 'Ready', status: 'False', reason: 'ConditionsFailing', message: failing.map((c) => `${c.type}: ${c.message}`).join('; ') };
  }
  return { type: 'Ready', status: 'True', reason: 'Collecting', message: 'collecting as the policy says' };
}

/** The status the policy should have; lastTransitionTime is kept for conditions whose status did not change. */
export function planStatus(policy: DataCollectionPolicy, observed: Observed, now: Date): PolicyStatus {
  const generation = policy.metadata.generation ?? 0;
  const previous = policy.status;
  let desired: DesiredCondition[];
  if (observed.invalidSpec !== undefined) {
    const accepted: DesiredCondition = { type: 'Accepted', status: 'False', reason: 'InvalidSpec', message: observed.invalidSpec };
    desired = [accepted, { type: 'Ready', status: 'False', reason: 'InvalidSpec', message: 'the spec was not accepted' }];
  } else {
    const spec = policy.spec;
    const accepted: DesiredCondition = { type: 'Accepted', status: 'True', reason: 'Valid', message: 'the spec is valid' };
    const apiServer = apiServerCondition(observed);
    const delivering = deliveringCondition(observed, now);
    const others = [
      accepted,
      regionCondition(spec, observed),
      retentionCondition(spec, observed),
      auditCondition(spec, observed),
      storeWritableCondition(observed),
      ...(apiServer ? [apiServer] : []),
      ...(delivering ? [delivering] : []),
    ];
    desired = [others[0] as DesiredCondition, readyCondition(others, observed), ...others.slice(1)];
  }
  const status: PolicyStatus = {
    ...previous,
    observedGeneration: generation,
    conditions: applyConditions(previous?.conditions, desired, generation, now),
  };
  if (observed.clusterCreationTimestamp) status.clusterCreationTimestamp = observed.clusterCreationTimestamp;
  if (observed.inventory) status.inventory = observed.inventory;
  if (observed.categories) status.categories = observed.categories;
  if (observed.store) {
    const { events, bytes, oldestEventTime } = observed.store;
    status.store = oldestEventTime ? { events, bytes, oldestEventTime } : { events, bytes };
  }
  if (observed.delivery) status.sinks = observed.delivery.sinks;
  status.auditExport = policy.spec.diagnostics?.auditExport?.enabled
    ? (observed.auditExport ?? { state: 'Progressing' })
    : (observed.auditExport ?? { state: 'Disabled' });
  return status;
}
