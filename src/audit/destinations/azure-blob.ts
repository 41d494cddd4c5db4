// The azureBlob destination: append blobs laid out as Azure diagnostic settings write them,
// <container insights-logs-<profile>>/resourceId=<ID>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json, one record per line.
import { BlobServiceClient, ContainerClient, RestError } from '@azure/storage-blob';
import type { AuditRecord } from '../audit-event.js';
import { blobContainerFor, type AuditProfile } from '../profile.js';
import type { CredentialSource } from './credential.js';
import { byHour, DestinationError, hourParts, type AuditDestination } from './destination.js';

export interface AzureBlobDestinationOptions {
  readonly profile: AuditProfile;
  /** The Azure resource ID the records belong to (upper-cased in blob names, as Azure does). */
  readonly resourceId: string;
  /** A connection string, or an account (or container) URL carrying a SAS token. */
  readonly credential: CredentialSource;
}

// An append block may carry at most 4 MiB (older service versions; newer allow more).
const MAX_BLOCK = 4 * 1024 * 1024;

export function blobNameFor(resourceId: string, time: number): string {
  const { y, m, d, h } = hourParts(time);
  const id = resourceId.toUpperCase().replace(/^\/?/, '/');
  return `resourceId=${id}/y=${y}/m=${m}/d=${d}/h=${h}/m=00/PT1H.json`;
}

/** One line of a PT1H.json blob: Azure's diagnostic record, the audit event unchanged in properties.log. */
export function diagnosticRecord(profile: AuditProfile, resourceId: string, r: AuditRecord): string {
  return JSON.stringify({
    time: new Date(r.time).toISOString(),
    resourceId: resourceId.toUpperCase(),
    category: profile,
    operationName: 'Microsoft.ContainerService/managedClusters/diagnosticLogs/Read',
    properties: { log: r.json, stream: 'stdout', pod: 'kube-apiserver' },
  });
}

// One try per call: the exporter retries with its own backoff and buffers meanwhile; SDK retries would only hold the writer.
const PIPELINE = { retryOptions: { maxTries: 1, tryTimeoutInMs: 30_000 } };

function clientFor(credential: string): BlobServiceClient {
  return /^https?:\/\//i.test(credential) ? new BlobServiceClient(credential, undefined, PIPELINE) : BlobServiceClient.fromConnectionString(credential, PIPELINE);
}

function asDestinationError(err: unknown, what: string): DestinationError {
  if (err instanceof DestinationError) return err;
  if (err instanceof RestError) {
    const status = err.statusCode ?? 0;
    // 401/403 (bad key, expired SAS) and 404 (no such account) will not heal; 408, 429, 5xx and network errors may.
    const refused = status === 401 || status === 403 || status === 404;
    return new DestinationError(`azureBlob ${what}: ${status || err.code || ''} ${err.message.split('\n')[0] ?? ''}`.trim(), refused, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  // A malformed connection string is the Secret's fault.
  const refused = /connection string|Invalid/i.test(message);
  return new DestinationError(`azureBlob ${what}: ${message}`, refused, { cause: err });
}

export class AzureBlobDestination implements AuditDestination {
  readonly type = 'azureBlob' as const;
  private container: ContainerClient | undefined;
  private credentialInUse: string | undefined;
  private readonly created = new Set<string>();

  constructor(private readonly options: AzureBlobDestinationOptions) {}

  private async containerClient(): Promise<ContainerClient> {
    const credential = await this.options.credential();
    if (this.container && credential === this.credentialInUse) return this.container;
    const name = blobContainerFor(this.options.profile);
    // A SAS URL may already name the container.
    const url = /^https?:\/\//i.test(credential) ? new URL(credential) : undefined;
    const namesContainer = url !== undefined && url.pathname.replace(/^\/+|\/+$/g, '').split('/').pop() === name;
    const container = namesContainer ? new ContainerClient(credential, undefined, PIPELINE) : clientFor(credential).getContainerClient(name);
    try {
      await container.createIfNotExists();
    } catch (err) {
      // A SAS scoped to the container may not create it; writing will tell whether it exists.
      if (!(err instanceof RestError && err.statusCode === 403)) throw asDestinationError(err, `container ${name}`);
    }
    this.container = container;
    this.credentialInUse = credential;
    this.created.clear();
    return container;
  }

  async write(records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    const container = await this.containerClient().catch((err: unknown) => {
      throw asDestinationError(err, 'credential');
    });
    for (const [hour, group] of byHour(records)) {
      const name = blobNameFor(this.options.resourceId, hour);
      const blob = container.getAppendBlobClient(name);
      try {
        if (!this.created.has(name)) {
          await blob.createIfNotExists({ blobHTTPHeaders: { blobContentType: 'application/json' } });
          this.created.add(name);
        }
        let chunk = '';
        for (const r of group) {
          const line = `${diagnosticRecord(this.options.profile, this.options.resourceId, r)}\n`;
          if (chunk !== '' && Buffer.byteLength(chunk) + Buffer.byteLength(line) > MAX_BLOCK) {
            await blob.appendBlock(chunk, Buffer.byteLength(chunk));
            chunk = '';
          }
          chunk += line;
        }
        if (chunk !== '') await blob.appendBlock(chunk, Buffer.byteLength(chunk));
      } catch (err) {
        this.created.delete(name);
        throw asDestinationError(err, `${container.containerName}/${name}`);
      }
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
