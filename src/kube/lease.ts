// Typed calls for one coordination.k8s.io/v1 Lease: read, create, and update with optimistic concurrency.
import type { KubeTransport } from './client.js';
import { MalformedResponse, NotFound } from './errors.js';
import { asRecord, asString, metadataOf } from './resource.js';

/** The spec of a Lease as leader election uses it. */
export interface LeaseRecord {
  /** '' when released. */
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  readonly acquireTime: string | undefined;
  readonly renewTime: string | undefined;
  readonly leaseTransitions: number;
}

export interface Lease {
  readonly record: LeaseRecord;
  /** Sent back on update: the server refuses it (409 Conflict) if someone wrote in between. */
  readonly resourceVersion: string;
}

export function parseLease(obj: unknown): Lease {
  const resourceVersion = asString(metadataOf(obj)?.['resourceVersion']);
  if (resourceVersion === undefined) throw new MalformedResponse('lease has no metadata.resourceVersion');
  const spec = asRecord(asRecord(obj)?.['spec']) ?? {};
  const duration = spec['leaseDurationSeconds'];
  const transitions = spec['leaseTransitions'];
  return {
    resourceVersion,
    record: {
      holderIdentity: asString(spec['holderIdentity']) ?? '',
      leaseDurationSeconds: typeof duration === 'number' ? duration : 0,
      acquireTime: asString(spec['acquireTime']),
      renewTime: asString(spec['renewTime']),
      leaseTransitions: typeof transitions === 'number' ? transitions : 0,
    },
  };
}

export class LeaseClient {
  private readonly collection: string;

  constructor(
    private readonly transport: KubeTransport,
    readonly namespace: string,
    readonly name: string,
  ) {
    this.collection = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  }

  /** The Lease, or undefined if it does not exist. */
  async get(signal?: AbortSignal): Promise<Lease | undefined> {
    try {
      return parseLease(await this.transport.json({ path: `${this.collection}/${encodeURIComponent(this.name)}`, signal }));
    } catch (err) {
      if (err instanceof NotFound) return undefined;
      throw err;
    }
  }

  /** Creates it; throws Conflict if it already exists. */
  async create(record: LeaseRecord, signal?: AbortSignal): Promise<Lease> {
    const body = this.object(record, undefined);
    return parseLease(await this.transport.json({ method: 'POST', path: this.collection, body, signal }));
  }

  /** Replaces it if it is still at `resourceVersion`; throws Conflict otherwise. */
  async update(record: LeaseRecord, resourceVersion: string, signal?: AbortSignal): Promise<Lease> {
    const body = this.object(record, resourceVersion);
    return parseLease(await this.transport.json({ method: 'PUT', path: `${this.collection}/${encodeURIComponent(this.name)}`, body, signal }));
  }

  private object(record: LeaseRecord, resourceVersion: string | undefined): unknown {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace, ...(resourceVersion !== undefined ? { resourceVersion } : {}) },
      spec: {
        holderIdentity: record.holderIdentity,
        leaseDurationSeconds: record.leaseDurationSeconds,
        acquireTime: record.acquireTime,
        renewTime: record.renewTime,
        leaseTransitions: record.leaseTransitions,
      },
    };
  }
}
