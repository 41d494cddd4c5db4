// The preview report: the snapshot's events built, admitted, routed and serialized by each sink, with the reasons and notes people read.
import { categoryEnabled } from '../../api/categories.js';
import type { DcpEvent } from '../../api/event.js';
import { CATEGORY_NAMES, POLICY_NAME, type CategoryName, type PolicySpec, type Sink } from '../../api/policy.js';
import { countryOf } from '../../api/regions.js';
import type { RoutingPolicy } from '../../pipeline/routing.js';
import { countBy, plural } from '../table.js';
import { admit, denySetOf, snapshotEvents, type DroppedEvent } from './admit.js';
import type { StoredAggregates } from './aggregates.js';
import { planSinks, renderSinkBody, type SinkBody, type SinkPlan } from './sinks.js';
import type { ClusterSnapshot } from './snapshot.js';

/** The operator's dispatcher reads at most this many records per batch (its default batchSize). */
export const DISPATCH_BATCH = 500;

export interface SinkPreview {
  readonly name: string;
  readonly type: Sink['type'];
  readonly region: Sink['region'];
  /** The URL the body is POSTed to (http, otlp), or the file it is appended to (file). */
  readonly destination: string;
  readonly receives: boolean;
  /** Why it receives what it does, or why nothing. */
  readonly reason: string;
  readonly events: readonly DcpEvent[];
  /** `category/name` → count. */
  readonly counts: Readonly<Record<string, number>>;
  readonly bytes: number;
  /** POSTs (or appends) the dispatcher would make, at most 500 events each. */
  readonly requests: number;
  readonly headers: Readonly<Record<string, string>>;
  /** The exact body, or null when the sink would receive nothing now. */
  readonly body: string | null;
  /** The sink cannot be built (the operator skips it the same way). */
  readonly error?: string;
}

export interface PreviewReport {
  readonly generatedAt: string;
  readonly policy: {
    readonly name: string;
    readonly region: PolicySpec['region'];
    readonly country: string;
    readonly subscriptionId: string;
    readonly forwardAggregatesToCentral: boolean;
    readonly retention: PolicySpec['retention'];
    readonly categories: Readonly<Record<CategoryName, boolean>>;
  };
  readonly cluster: { readonly id: string; readonly nodes: number; readonly pods: number; readonly vCores: number };
  /** Where device IDs come from; `reason` says why they are placeholders. */
  readonly deviceKey: { readonly source: 'secret' | 'placeholder'; readonly secret: string; readonly reason?: string };
  readonly sinks: readonly SinkPreview[];
  /** What the store would hold: every event of the snapshot that passed validation and the guard. */
  readonly stored: readonly DcpEvent[];
  readonly dropped: readonly DroppedEvent[];
  readonly notes: readonly string[];
}

const countsOf = (events: readonly DcpEvent[]): Record<string, number> => Object.fromEntries(countBy(events, (e) => `${e.category}/${e.name}`));

function reasonFor(plan: SinkPlan, aggregates: StoredAggregates, total: number): string {
  if (plan.events.length > 0) return [...plan.delivered.keys()].join('; ');
  if (total === 0) return 'nothing is collected now: controlPlane and hostOs are both disabled';
  const why = [...plan.withheld].map(([reason, n]) => `${reason} (${plural(n, 'event')} withheld)`).join('; ');
  return plan.sink.region === 'central' && aggregates.events.length === 0 ? `${why}; daily aggregates: ${aggregates.note}` : why;
}

/** Notes on what this snapshot does not show, so an empty category is not mistaken for an idle one. */
function notesFor(spec: PolicySpec, sinks: readonly Sink[], dataDir: string): string[] {
  const notes: string[] = [];
  if (sinks.length === 0) {
    notes.push(`no sink is configured: events stay in the operator's local store (its --data-dir, e.g. ${dataDir}) for ${plural(spec.retention.rawDays, 'day')}; nothing leaves the cluster`);
  }
  if (!spec.categories.controlPlane.enabled) notes.push('controlPlane is disabled: no ControlPlaneInventory');
  if (!spec.categories.hostOs.enabled) notes.push('hostOs is disabled: no HostOsInfo');
  notes.push(`billing: CoreUsage is emitted at the end of each ${spec.categories.billing.intervalSeconds} s metering interval and goes to regional sinks only; not part of this snapshot`);
  if (!spec.categories.security.enabled) notes.push('security is disabled: no CertificateStatus or KmsStatus');
  const asTheyHappen = (['hostErrors', 'linuxVm'] as const).filter((c) => spec.categories[c].enabled);
  if (asTheyHappen.length > 0) notes.push(`${asTheyHappen.join(', ')}: emitted as Warning and system Events happen (scrubbed to known words); not part of this snapshot`);
  return notes;
}

export interface BuildReportInput {
  readonly spec: PolicySpec;
  readonly snapshot: ClusterSnapshot;
  readonly aggregates: StoredAggregates;
  readonly now: number;
  readonly operatorNamespace: string;
  readonly dataDir: string;
}

/** The whole preview: events built, admitted, routed and serialized by the sinks. */
export async function buildReport(input: BuildReportInput): Promise<PreviewReport> {
  const { spec, snapshot, aggregates, now } = input;
  const candidates = snapshotEvents(spec, snapshot, now);
  const { stored, dropped } = await admit(candidates, denySetOf(snapshot.nodes));
  const sinks = spec.export.sinks ?? [];
  const policy: RoutingPolicy = { region: spec.region, export: { forwardAggregatesToCentral: spec.export.forwardAggregatesToCentral } };
  // The dispatcher sends each sink the raw stream, then the aggregates stream.
  const plans = planSinks(sinks, [...stored, ...aggregates.events], policy);
  const previews: SinkPreview[] = [];
  for (const plan of plans) {
    const { sink } = plan;
    const base = { name: sink.name, type: sink.type, region: sink.region };
    let rendered: SinkBody;
    try {
      rendered = await renderSinkBody(sink, plan.events, now, input.operatorNamespace);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      previews.push({ ...base, destination: sink.url ?? sink.path ?? '', receives: false, reason: `the sink is not usable, so the operator skips it: ${error}`, events: [], counts: {}, bytes: 0, requests: 0, headers: {}, body: null, error });
      continue;
    }
    const body = rendered.body ?? null;
    previews.push({
      ...base,
      destination: rendered.destination,
      receives: plan.events.length > 0,
      reason: reasonFor(plan, aggregates, stored.length + aggregates.events.length),
      events: plan.events,
      counts: countsOf(plan.events),
      bytes: body === null ? 0 : Buffer.byteLength(body),
      requests: Math.ceil(plan.events.length / DISPATCH_BATCH),
      headers: rendered.headers,
      body,
    });
  }
  const notes = notesFor(spec, sinks, input.dataDir);
  if (aggregates.events.length > 0) notes.push(`daily aggregates: ${aggregates.note}`);
  const categories = Object.fromEntries(CATEGORY_NAMES.map((c) => [c, categoryEnabled(spec, c)])) as Record<CategoryName, boolean>;
  const key = snapshot.deviceKey;
  return {
    generatedAt: new Date(now).toISOString(),
    policy: {
      name: POLICY_NAME,
      region: spec.region,
      country: countryOf(spec.region),
      subscriptionId: spec.subscriptionId,
      forwardAggregatesToCentral: spec.export.forwardAggregatesToCentral,
      retention: spec.retention,
      categories,
    },
    cluster: { id: snapshot.kubeSystem.uid, nodes: snapshot.inventory.nodes, pods: snapshot.inventory.pods, vCores: snapshot.inventory.vCores },
    deviceKey:
      key.source === 'secret'
        ? { source: 'secret', secret: key.secret }
        : { source: 'placeholder', secret: key.secret, reason: key.why },
    sinks: previews,
    stored,
    dropped,
    notes,
  };
}
