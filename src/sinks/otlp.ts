// Encodes events as an OTLP/HTTP JSON logs request (ExportLogsServiceRequest), pure.
import { SCHEMA_VERSION, type DcpEvent } from '../api/event.js';

type AnyValue = { stringValue: string } | { intValue: string } | { boolValue: boolean };

export interface KeyValue {
  readonly key: string;
  readonly value: AnyValue;
}

export interface OtlpLogRecord {
  readonly timeUnixNano: string;
  readonly observedTimeUnixNano: string;
  readonly severityNumber: number;
  readonly severityText: string;
  readonly body: { stringValue: string };
  readonly attributes: KeyValue[];
}

export interface ExportLogsServiceRequest {
  readonly resourceLogs: {
    readonly resource: { attributes: KeyValue[] };
    readonly scopeLogs: { scope: { name: string; version: string }; logRecords: OtlpLogRecord[] }[];
  }[];
}

/** The instrumentation scope; its version is the event schema version the bodies follow. */
export const SCOPE = { name: 'dcp-operator', version: SCHEMA_VERSION };
const SEVERITY_INFO = 9;

const str = (key: string, value: string): KeyValue => ({ key, value: { stringValue: value } });

// 64-bit nanoseconds do not fit a JSON number; OTLP/JSON carries them as decimal strings.
const nanos = (ms: number): string => (BigInt(Math.round(ms)) * 1_000_000n).toString();

/** One ResourceLogs per cluster (semantic-convention attributes), one LogRecord per event, body = the event's JSON. */
export function toOtlpLogs(events: readonly DcpEvent[], observedAtMs: number): ExportLogsServiceRequest {
  const byCluster = new Map<string, DcpEvent[]>();
  for (const e of events) {
    const key = `${e.cluster.id}/${e.cluster.region}/${e.cluster.subscriptionId}`;
    const list = byCluster.get(key);
    if (list) list.push(e);
    else byCluster.set(key, [e]);
  }
  return {
    resourceLogs: [...byCluster.values()].map((group) => {
      const cluster = (group[0] as DcpEvent).cluster;
      return {
        resource: {
          attributes: [
            str('service.name', 'dcp-operator'),
            str('cloud.provider', 'azure'),
            str('cloud.region', cluster.region),
            str('cloud.account.id', cluster.subscriptionId),
            str('k8s.cluster.uid', cluster.id),
          ],
        },
        scopeLogs: [
          {
            scope: SCOPE,
            logRecords: group.map((e) => ({
              timeUnixNano: nanos(Date.parse(e.time)),
              observedTimeUnixNano: nanos(observedAtMs),
              severityNumber: SEVERITY_INFO,
              severityText: 'INFO',
              body: { stringValue: JSON.stringify(e) },
              attributes: [str('dcp.category', e.category), str('dcp.name', e.name), str('dcp.id', e.id), str('dcp.classification', e.classification)],
            })),
          },
        ],
      };
    }),
  };
}
