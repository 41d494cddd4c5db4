// The http sink: POSTs each batch as a JSON array of events.
import { sha256Hex } from '../api/hash.js';
import type { DcpEvent } from '../api/event.js';
import { HttpTransport, type HttpTransportOptions } from './http-transport.js';
import type { EventSink } from './sink.js';

export interface HttpSinkOptions extends HttpTransportOptions {
  readonly name: string;
}

/** Same batch → same key, so a receiver may also deduplicate whole retried batches. */
export function batchKey(events: readonly DcpEvent[]): string {
  return sha256Hex(...events.map((e) => e.id)).slice(0, 32);
}

export class HttpSink implements EventSink {
  readonly type = 'http' as const;
  readonly name: string;
  private readonly transport: HttpTransport;

  constructor(options: HttpSinkOptions) {
    this.name = options.name;
    this.transport = new HttpTransport(options);
  }

  async send(events: readonly DcpEvent[], signal: AbortSignal): Promise<void> {
    if (events.length === 0) return;
    await this.transport.post(JSON.stringify(events), signal, { 'idempotency-key': batchKey(events) });
  }

  close(): Promise<void> {
    this.transport.close();
    return Promise.resolve();
  }
}
