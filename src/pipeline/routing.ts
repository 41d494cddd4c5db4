// Residency routing (DESIGN.md section 5), pure: which events may go to which sink.
import type { PolicySpec, Sink } from '../api/policy.js';
import { CENTRAL } from '../api/regions.js';
import type { DcpEvent } from '../api/event.js';

export interface Route {
  readonly deliver: boolean;
  /** Why, in words `dcp preview` can show. */
  readonly reason: string;
}

/** The part of the policy routing reads. */
export type RoutingPolicy = Pick<PolicySpec, 'region'> & { export: Pick<PolicySpec['export'], 'forwardAggregatesToCentral'> };

const yes = (reason: string): Route => ({ deliver: true, reason });
const no = (reason: string): Route => ({ deliver: false, reason });

/**
 * - An event from another region goes nowhere (the store should never hold one).
 * - A sink in the policy region gets every event, billing included.
 * - A `central` sink gets only non-personal DailyAggregates, not of billing, and only with
 *   forwardAggregatesToCentral.
 * - Any other sink gets nothing: data stays in its region.
 */
export function route(event: DcpEvent, sink: Pick<Sink, 'region'>, policy: RoutingPolicy): Route {
  if (event.cluster.region !== policy.region) return no(`event region ${event.cluster.region} is not the policy region ${policy.region}`);
  if (sink.region === policy.region) return yes('regional sink');
  if (sink.region !== CENTRAL) return no(`sink region ${sink.region} is not the policy region ${policy.region}`);
  if (!policy.export.forwardAggregatesToCentral) return no('forwardAggregatesToCentral is false');
  if (event.name !== 'DailyAggregate' || event.classification !== 'non-personal') return no('central sinks receive de-identified aggregates only');
  if (event.category === 'billing') return no('billing stays in the policy region');
  return yes('de-identified aggregate forwarded to central');
}

export function shouldDeliver(event: DcpEvent, sink: Pick<Sink, 'region'>, policy: RoutingPolicy): boolean {
  return route(event, sink, policy).deliver;
}

/** The sinks an event goes to, in policy order. */
export function sinksFor<S extends Pick<Sink, 'region'>>(event: DcpEvent, sinks: readonly S[], policy: RoutingPolicy): S[] {
  return sinks.filter((s) => shouldDeliver(event, s, policy));
}
