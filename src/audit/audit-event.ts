// Audit events as the API server produced them (audit.k8s.io/v1): parsed only far enough to route, filter and deduplicate.

/** One audit event: the few fields the exporter reads, and the event itself, untouched, as JSON text. */
export interface AuditRecord {
  readonly auditID: string;
  readonly stage: string;
  readonly verb: string;
  /** stageTimestamp (or requestReceivedTimestamp), epoch ms: decides the hour partition. */
  readonly time: number;
  /** The event exactly as received, re-serialized without whitespace. */
  readonly json: string;
}

/** A body or line that is not audit.k8s.io/v1 data; the receiver answers 400 and counts it. */
export class MalformedAudit extends Error {
  override readonly name = 'MalformedAudit';
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The idempotency key: one request's event at one stage (the generated policy leaves one stage per request). */
export const recordKey = (r: Pick<AuditRecord, 'auditID' | 'stage'>): string => `${r.auditID}/${r.stage}`;

export function toRecord(obj: unknown): AuditRecord {
  if (!isRecord(obj)) throw new MalformedAudit('an audit event must be a JSON object');
  const { auditID, stage, verb } = obj;
  if (typeof auditID !== 'string' || auditID === '') throw new MalformedAudit('an audit event needs auditID');
  if (typeof stage !== 'string' || typeof verb !== 'string') throw new MalformedAudit(`audit event ${auditID} needs stage and verb`);
  const stamp = typeof obj.stageTimestamp === 'string' ? obj.stageTimestamp : obj.requestReceivedTimestamp;
  const time = typeof stamp === 'string' ? Date.parse(stamp) : NaN;
  if (Number.isNaN(time)) throw new MalformedAudit(`audit event ${auditID} has no valid stageTimestamp`);
  return { auditID, stage, verb, time, json: JSON.stringify(obj) };
}

/** An `EventList` POSTed by the audit webhook. */
export function parseEventList(body: Buffer): AuditRecord[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new MalformedAudit(`body is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!isRecord(parsed) || parsed.kind !== 'EventList' || !Array.isArray(parsed.items)) {
    throw new MalformedAudit('body must be an audit.k8s.io/v1 EventList with items');
  }
  return parsed.items.map(toRecord);
}

/** One line of an `--audit-log-path` file (format json). */
export function parseAuditLine(line: string): AuditRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw new MalformedAudit(`audit log line is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  return toRecord(parsed);
}
