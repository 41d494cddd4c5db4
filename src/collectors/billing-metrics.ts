// Gauges for the billing meter, for the "missing billing interval" alert: when the last billed
// interval ended and how long intervals are, so the alert needs no copy of the policy.
import { gauge, type Registry } from '../observability/metrics.js';
import type { CoreUsageInterval } from './metering.js';

/**
 * The BillingMeter's onBilled handler that keeps the gauges. They are registered at the first billed
 * interval: a label-less gauge reads 0 until set, and 0 would look like an interval missed since 1970.
 */
export function billingGauges(registry?: Registry): (intervals: readonly CoreUsageInterval[], watermarkMs: number) => void {
  return (intervals) => {
    const last = intervals.at(-1);
    if (last === undefined) return;
    gauge(registry, 'dcp_billing_last_interval_end_timestamp_seconds', 'End of the newest billed (stored) CoreUsage interval, Unix seconds.', []).set(last.end / 1000);
    gauge(registry, 'dcp_billing_interval_seconds', 'Length of the newest billed CoreUsage interval.', []).set(last.intervalSeconds);
  };
}
