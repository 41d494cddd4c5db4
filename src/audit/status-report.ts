// The exporter tells the operator how it is doing: a small ConfigMap the controller reads into status.auditExport,
// and Warning Events when it had to drop events.
import type { KubeTransport } from '../kube/client.js';
import { NotFound } from '../kube/errors.js';
import type { EventRecorder } from '../kube/recorder.js';
import type { ExporterStatus } from './exporter.js';
import { EXTENSION_LABELS, EXPORTER_NAME, STATUS_CONFIGMAP, STATUS_KEY } from './names.js';

/** What the exporter reports; the controller parses the same shape. */
export interface ReportedStatus {
  readonly destinationUp: boolean | null;
  readonly destinationRefused: boolean;
  readonly lastError?: string;
  readonly backlogBytes: number;
  readonly backlogEvents: number;
  readonly backlogOldestTime?: string;
  readonly reportedAt: string;
}

export function toReported(s: ExporterStatus, now: number): ReportedStatus {
  return {
    destinationUp: s.destinationUp ?? null,
    destinationRefused: s.destinationRefused,
    ...(s.lastError !== undefined ? { lastError: s.lastError } : {}),
    backlogBytes: s.backlogBytes,
    backlogEvents: s.backlogEvents,
    ...(s.backlogOldest !== undefined ? { backlogOldestTime: new Date(s.backlogOldest).toISOString() } : {}),
    reportedAt: new Date(now).toISOString(),
  };
}

export class StatusReporter {
  private last: string | undefined;

  constructor(
    private readonly transport: KubeTransport,
    private readonly namespace: string,
    private readonly recorder: EventRecorder,
  ) {}

  /** Writes the ConfigMap when the status (without its time stamp) changed, or once a minute as a heartbeat. */
  async report(status: ReportedStatus): Promise<void> {
    const { reportedAt, ...rest } = status;
    const key = JSON.stringify(rest);
    const minute = reportedAt.slice(0, 16);
    if (key + minute === this.last) return;
    const path = `/api/v1/namespaces/${this.namespace}/configmaps/${STATUS_CONFIGMAP}`;
    const body = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: STATUS_CONFIGMAP, namespace: this.namespace, labels: EXTENSION_LABELS },
      data: { [STATUS_KEY]: JSON.stringify(status) },
    };
    try {
      await this.transport.json({ method: 'PUT', path, body });
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
      await this.transport.json({ method: 'POST', path: `/api/v1/namespaces/${this.namespace}/configmaps`, body });
    }
    this.last = key + minute;
  }

  warn(reason: string, note: string): void {
    void this.recorder.record({
      regarding: { apiVersion: 'apps/v1', kind: 'Deployment', name: EXPORTER_NAME, namespace: this.namespace },
      type: 'Warning',
      reason,
      action: 'ExportAudit',
      note,
    });
  }
}
