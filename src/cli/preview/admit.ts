// The preview's events, built with the collectors' own functions and admitted through the operator's validator and PII guard.
import { countryOf } from '../../api/regions.js';
import type { PolicySpec } from '../../api/policy.js';
import type { DcpEvent } from '../../api/event.js';
import { clusterRef } from '../../collectors/collector.js';
import { deviceIdOf, hostOsData, hostOsEvent, nodeIdentifiers } from '../../collectors/host-os.js';
import { inventoryEvent } from '../../collectors/inventory.js';
import type { NodeProjection } from '../../collectors/projections.js';
import { cleanStrings } from '../../pipeline/clean-text.js';
import { DenySet, PiiGuard } from '../../pipeline/guard.js';
import { Ingest } from '../../pipeline/ingest.js';
import { EventValidator, validateEvent } from '../../pipeline/validate.js';
import type { ClusterSnapshot } from './snapshot.js';

/**
 * ControlPlaneInventory, one HostOsInfo per Node and the security snapshot, built with the collectors'
 * own data functions, source keys and buckets, for the categories the policy enables.
 */
export function snapshotEvents(spec: PolicySpec, snapshot: ClusterSnapshot, now: number): DcpEvent[] {
  const cluster = clusterRef(snapshot.kubeSystem, spec);
  const time = new Date(now);
  const events: DcpEvent[] = [];
  if (spec.categories.controlPlane.enabled) {
    events.push(inventoryEvent(snapshot.inventory, snapshot.kubeSystem, spec, now));
  }
  if (spec.categories.hostOs.enabled) {
    const country = countryOf(spec.region);
    for (const node of snapshot.nodes.values()) {
      const deviceId = deviceIdOf(snapshot.deviceKey.key, node);
      events.push(hostOsEvent(cluster, time, deviceId, hostOsData(node, deviceId, country)));
    }
  }
  if (spec.categories.security.enabled) events.push(...(snapshot.security ?? []));
  return events;
}

/** An event the pipeline refused, described without its values (they may be what the guard stopped). */
export interface DroppedEvent {
  readonly id: string;
  readonly category: string;
  readonly name: string;
  readonly stage: 'schema' | 'pii';
  /** Schema problems (paths and rules) or guard findings (`path: kind`). */
  readonly problems: readonly string[];
}

/** The guard's deny set as the operator keeps it: every Node's name, hostnames and systemUUID. */
export function denySetOf(nodes: ReadonlyMap<string, NodeProjection>): DenySet {
  const denySet = new DenySet();
  for (const [name, node] of nodes) denySet.add(nodeIdentifiers(name, node));
  return denySet;
}

/** Runs `candidates` through the operator's Ingest (validator, then guard) into an in-memory store. */
export async function admit(candidates: readonly DcpEvent[], denySet: DenySet): Promise<{ stored: DcpEvent[]; dropped: DroppedEvent[] }> {
  const guard = new PiiGuard({ denySet });
  const stored: DcpEvent[] = [];
  const ingest = new Ingest({
    validator: new EventValidator(),
    guard,
    store: {
      append(events) {
        stored.push(...events);
        return Promise.resolve({ stored: events.length, duplicates: 0, expired: 0 });
      },
    },
  });
  const result = await ingest.submit(candidates);
  const accepted = new Set(result.accepted.map((e) => e.id));
  const dropped = candidates
    .filter((c) => !accepted.has(c.id))
    .map((c): DroppedEvent => {
      // What the ingest judged: the event with its strings cleaned.
      const cleaned = cleanStrings(c) as DcpEvent;
      const v = validateEvent(cleaned);
      const base = { id: c.id, category: c.category, name: c.name };
      if (!v.ok) return { ...base, stage: 'schema', problems: v.problems };
      return { ...base, stage: 'pii', problems: guard.inspect(cleaned).map((f) => `${f.path}: ${f.kind}`) };
    });
  return { stored, dropped };
}
