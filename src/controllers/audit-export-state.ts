// What status.auditExport says (pure): from the Deployment's rollout, the exporter's own report and any problem found.
import type { AuditExportStatus } from '../api/policy.js';
import type { ReportedStatus } from '../audit/status-report.js';
import { asRecord } from '../kube/resource.js';

export interface AuditObservation {
  readonly enabled: boolean;
  /** A problem that stops the extension working whatever the Pods do (missing Secret, a write the API server refused). */
  readonly problem?: { readonly reason: string; readonly message: string };
  /** The live Deployment, if any. */
  readonly deployment?: unknown;
  /** The exporter's last report. */
  readonly report?: ReportedStatus;
  readonly now: number;
}

/** Pods not ready for longer than this after a rollout began is a failure, not progress. */
export const NOT_READY_GRACE_MS = 3 * 60_000;
/** A report older than this says nothing about now. */
export const REPORT_STALE_MS = 3 * 60_000;

interface Rollout {
  readonly desired: number;
  readonly updated: number;
  readonly ready: number;
  readonly current: boolean;
  /** Since when the Deployment has not been Available, if it is not. */
  readonly unavailableSince?: number;
}

function rollout(deployment: unknown): Rollout | undefined {
  const d = asRecord(deployment);
  if (!d) return undefined;
  const spec = asRecord(d.spec);
  const status = asRecord(d.status) ?? {};
  const meta = asRecord(d.metadata);
  const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
  const available = (Array.isArray(status.conditions) ? status.conditions : []).map(asRecord).find((c) => c?.type === 'Available');
  const since = available && available.status !== 'True' && typeof available.lastTransitionTime === 'string' ? Date.parse(available.lastTransitionTime) : undefined;
  return {
    desired: typeof spec?.replicas === 'number' ? spec.replicas : 1,
    updated: num(status.updatedReplicas),
    ready: num(status.readyReplicas),
    current: num(status.observedGeneration) >= num(meta?.generation),
    ...(since !== undefined && !Number.isNaN(since) ? { unavailableSince: since } : {}),
  };
}

function backlog(report: ReportedStatus | undefined): Pick<AuditExportStatus, 'backlogBytes' | 'backlogOldestTime'> {
  if (!report) return {};
  return { backlogBytes: report.backlogBytes, ...(report.backlogOldestTime ? { backlogOldestTime: report.backlogOldestTime } : {}) };
}

export function auditExportStatus(o: AuditObservation): AuditExportStatus {
  if (!o.enabled) return { state: 'Disabled', reason: 'Disabled', message: 'audit export is disabled: no extension objects' };
  const b = backlog(o.report);
  if (o.problem) return { state: 'Failed', reason: o.problem.reason, message: o.problem.message, ...b };
  const r = rollout(o.deployment);
  if (!r) return { state: 'Progressing', reason: 'Installing', message: 'creating the exporter Deployment' };
  if (!r.current || r.updated < r.desired) {
    return { state: 'Progressing', reason: 'RollingOut', message: `rolling out the exporter: ${r.updated}/${r.desired} Pods updated`, ...b };
  }
  if (r.ready < r.desired) {
    const waited = r.unavailableSince !== undefined ? o.now - r.unavailableSince : 0;
    const message = `${r.ready}/${r.desired} exporter Pods ready`;
    if (waited > NOT_READY_GRACE_MS) return { state: 'Failed', reason: 'ExporterNotReady', message: `${message} for ${Math.round(waited / 60_000)} minutes`, ...b };
    return { state: 'Progressing', reason: 'ExporterNotReady', message, ...b };
  }
  const report = o.report;
  if (!report || o.now - Date.parse(report.reportedAt) > REPORT_STALE_MS) {
    return { state: 'Progressing', reason: 'AwaitingExporter', message: 'the exporter Pods are ready; waiting for the exporter to report', ...b };
  }
  if (report.destinationUp === false) {
    const since = report.backlogOldestTime ? ` since ${report.backlogOldestTime}` : '';
    const what = `${report.backlogEvents} events (${report.backlogBytes} bytes) buffered${since}`;
    return report.destinationRefused
      ? { state: 'Failed', reason: 'DestinationRefused', message: `the destination refuses writes: ${report.lastError ?? 'unknown error'}; ${what}`, ...b }
      : { state: 'Failed', reason: 'DestinationUnavailable', message: `the destination is unavailable: ${report.lastError ?? 'unknown error'}; ${what}`, ...b };
  }
  return { state: 'Enabled', reason: 'Exporting', message: 'the exporter is receiving and writing audit events', ...b };
}

export function parseReport(text: string | undefined): ReportedStatus | undefined {
  if (text === undefined) return undefined;
  try {
    const r = asRecord(JSON.parse(text));
    if (!r || typeof r.reportedAt !== 'string' || typeof r.backlogBytes !== 'number') return undefined;
    return r as unknown as ReportedStatus;
  } catch {
    return undefined;
  }
}
