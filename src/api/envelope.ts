// Builds event envelopes with a deterministic id, so the same fact observed twice gets the same id.
import type { CategoryName } from './policy.js';
import { sha256Hex } from './hash.js';
import {
  EVENT_CATALOG,
  SCHEMA_VERSION,
  type ClusterRef,
  type CollectedEventName,
  type DailyAggregateData,
  type EventDataMap,
  type EventOf,
} from './event.js';

/** Start of the `bucketSeconds`-wide bucket holding `time`, as RFC 3339. */
export function timeBucket(time: Date, bucketSeconds: number): string {
  const width = Math.max(1, Math.floor(bucketSeconds)) * 1000;
  return new Date(Math.floor(time.getTime() / width) * width).toISOString();
}

/**
 * The event id: sha256 over cluster, category, name, source key and time bucket, truncated to
 * 128 bits. NOTE: receivers and the store deduplicate on it, so it must not depend on anything
 * that changes between two observations of the same fact (process start, wall-clock time).
 */
export function eventId(parts: { clusterId: string; category: CategoryName; name: string; sourceKey: string; bucket: string }): string {
  return sha256Hex(parts.clusterId, parts.category, parts.name, parts.sourceKey, parts.bucket).slice(0, 32);
}

export interface BuildEventInput<N extends CollectedEventName> {
  readonly name: N;
  readonly cluster: ClusterRef;
  /** When the fact was observed (or, for billing, the end of the interval). */
  readonly time: Date;
  /**
   * What the fact is about, within its name: e.g. a Node's keyed hash, a certificate fingerprint,
   * 'cluster' for cluster-wide facts. It only enters the hash, but prefer non-identifying keys anyway.
   */
  readonly sourceKey: string;
  /** Facts within one bucket are the same fact. Default 1 s; an explicit `bucket` string wins. */
  readonly bucketSeconds?: number;
  readonly bucket?: string;
  readonly data: EventDataMap[N];
}

export function buildEvent<N extends CollectedEventName>(input: BuildEventInput<N>): EventOf<N> {
  const { category, classification } = EVENT_CATALOG[input.name];
  const bucket = input.bucket ?? timeBucket(input.time, input.bucketSeconds ?? 1);
  return {
    schemaVersion: SCHEMA_VERSION,
    id: eventId({ clusterId: input.cluster.id, category, name: input.name, sourceKey: input.sourceKey, bucket }),
    category,
    name: input.name,
    time: input.time.toISOString(),
    cluster: { id: input.cluster.id, region: input.cluster.region, subscriptionId: input.cluster.subscriptionId },
    classification,
    data: input.data,
  } as EventOf<N>;
}

/** The envelope of a daily aggregate: one per cluster, day, category and event name. */
export function buildAggregate(cluster: ClusterRef, data: DailyAggregateData): EventOf<'DailyAggregate'> {
  return {
    schemaVersion: SCHEMA_VERSION,
    id: eventId({ clusterId: cluster.id, category: data.category, name: 'DailyAggregate', sourceKey: data.eventName, bucket: data.day }),
    category: data.category,
    name: 'DailyAggregate',
    time: `${data.day}T00:00:00.000Z`,
    cluster: { id: cluster.id, region: cluster.region, subscriptionId: cluster.subscriptionId },
    classification: 'non-personal',
    data,
  };
}
