// The exporter's metrics (names other dashboards and alerts rely on: keep them).
import type { Counter, Gauge, Registry } from 'prom-client';
import { counter, gauge } from '../observability/metrics.js';

export interface AuditMetrics {
  readonly received: Counter<'source'>;
  readonly written: Counter<'destination'>;
  readonly dropped: Counter<'reason'>;
  readonly refused: Counter<'reason'>;
  readonly backlogBytes: Gauge;
  readonly backlogOldestSeconds: Gauge;
  readonly destinationUp: Gauge;
}

export function auditMetrics(registry: Registry | undefined): AuditMetrics {
  return {
    received: counter(registry, 'dcp_audit_events_received_total', 'Audit events received, by source (webhook, log).', ['source']),
    written: counter(registry, 'dcp_audit_events_written_total', 'Audit events written to the destination.', ['destination']),
    dropped: counter(
      registry,
      'dcp_audit_events_dropped_total',
      'Audit events not exported: profile (left out by the profile), duplicate, buffer_full, retention_expired, malformed.',
      ['reason'],
    ),
    refused: counter(registry, 'dcp_audit_requests_refused_total', 'Webhook requests refused: unauthenticated, forbidden, too_large, malformed.', ['reason']),
    backlogBytes: gauge(registry, 'dcp_audit_backlog_bytes', 'Bytes of audit events buffered on disk while the destination is unavailable.', []),
    backlogOldestSeconds: gauge(registry, 'dcp_audit_backlog_oldest_seconds', 'Age of the oldest buffered audit event batch (0 when none).', []),
    destinationUp: gauge(registry, 'dcp_audit_destination_up', '1 when the last write to the destination succeeded.', []),
  };
}
