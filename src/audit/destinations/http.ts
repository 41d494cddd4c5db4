// The http destination: POSTs each batch as an audit.k8s.io/v1 EventList (the webhook's own format), bearer token optional.
import type { AuditRecord } from '../audit-event.js';
import type { CredentialSource } from './credential.js';
import { DestinationError, type AuditDestination } from './destination.js';

export interface HttpDestinationOptions {
  readonly url: string;
  readonly token?: CredentialSource;
  /** @default 15000 */
  readonly timeoutMs?: number;
}

export class HttpDestination implements AuditDestination {
  readonly type = 'http' as const;

  constructor(private readonly options: HttpDestinationOptions) {}

  async write(records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${await this.options.token()}`;
    // The events are spliced in as received: no re-encoding of the customer's data.
    const body = `{"apiVersion":"audit.k8s.io/v1","kind":"EventList","items":[${records.map((r) => r.json).join(',')}]}`;
    let res: Response;
    try {
      res = await fetch(this.options.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000) });
    } catch (err) {
      throw new DestinationError(`http destination ${this.options.url}: ${err instanceof Error ? err.message : String(err)}`, false, { cause: err });
    }
    await res.body?.cancel();
    if (res.ok) return;
    // 408, 429 and 5xx are passing troubles; any other 4xx is a refusal a retry will not change.
    const refused = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
    throw new DestinationError(`http destination ${this.options.url} answered ${res.status} ${res.statusText}`, refused);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
