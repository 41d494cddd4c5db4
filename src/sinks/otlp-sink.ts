// The otlp sink: OTLP/HTTP JSON logs to <url>/v1/logs, so any OpenTelemetry Collector can take the stream.
import type { DcpEvent } from '../api/event.js';
import { silentLog, type Log } from '../observability/log.js';
import { HttpTransport, type HttpTransportOptions } from './http-transport.js';
import { toOtlpLogs } from './otlp.js';
import type { EventSink } from './sink.js';

export interface OtlpSinkOptions extends HttpTransportOptions {
  readonly name: string;
  /** For observedTimeUnixNano. @default Date.now */
  readonly now?: () => number;
}

/** The logs endpoint: the URL as given if it already names /v1/logs, else with /v1/logs appended. */
export function otlpLogsUrl(url: string): string {
  const u = new URL(url);
  if (!u.pathname.endsWith('/v1/logs')) u.pathname = `${u.pathname.replace(/\/+$/, '')}/v1/logs`;
  return u.toString();
}

export class OtlpSink implements EventSink {
  readonly type = 'otlp' as const;
  readonly name: string;
  private readonly transport: HttpTransport;
  private readonly now: () => number;
  private readonly log: Log;

  constructor(options: OtlpSinkOptions) {
    this.name = options.name;
    this.now = options.now ?? Date.now;
    this.log = options.log ?? silentLog;
    this.transport = new HttpTransport({ ...options, url: otlpLogsUrl(options.url) });
  }

  async send(events: readonly DcpEvent[], signal: AbortSignal): Promise<void> {
    if (events.length === 0) return;
    const res = await this.transport.post(JSON.stringify(toOtlpLogs(events, this.now())), signal);
    // A partial success is final by the OTLP spec: retrying would be rejected the same way.
    const partial = parsePartialSuccess(res.body);
    if (partial) this.log.warn('sink: OTLP receiver rejected some log records', { sink: this.name, ...partial });
  }

  close(): Promise<void> {
    this.transport.close();
    return Promise.resolve();
  }
}

function parsePartialSuccess(body: string): { rejectedLogRecords: number; errorMessage?: string } | undefined {
  try {
    const p = (JSON.parse(body) as { partialSuccess?: { rejectedLogRecords?: string | number; errorMessage?: string } }).partialSuccess;
    const rejected = Number(p?.rejectedLogRecords ?? 0);
    return rejected > 0 ? { rejectedLogRecords: rejected, errorMessage: p?.errorMessage } : undefined;
  } catch {
    return undefined;
  }
}
