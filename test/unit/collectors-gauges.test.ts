// The gauges behind the certificate, KMS and billing alerts follow the whole current state.
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { billingGauges } from '../../src/collectors/billing-metrics.js';
import { SecurityGauges } from '../../src/collectors/security-metrics.js';

const value = async (registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> => {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name) as { values: { value: number; labels: Record<string, string> }[] } | undefined;
  return metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
};

describe('collector gauges', function () {
  it('counts certificates by state and drops a resolved state back to 0', async function () {
    const registry = new Registry();
    const gauges = new SecurityGauges(registry);
    gauges.record(['valid'], undefined);
    expect(await value(registry, 'dcp_kms_healthy'), 'no KMS reading yet: no gauge, so no false alarm').to.equal(undefined);
    gauges.record(['valid', 'expiring', 'expiring', 'expired'], { providers: 2, healthyProviders: 1, healthy: false });
    expect(await value(registry, 'dcp_certificates', { state: 'expiring' })).to.equal(2);
    expect(await value(registry, 'dcp_certificates', { state: 'expired' })).to.equal(1);
    expect(await value(registry, 'dcp_kms_healthy')).to.equal(0);
    expect(await value(registry, 'dcp_kms_providers')).to.equal(2);
    gauges.record(['valid', 'renewed'], { providers: 2, healthyProviders: 2, healthy: true });
    expect(await value(registry, 'dcp_certificates', { state: 'expiring' })).to.equal(0);
    expect(await value(registry, 'dcp_certificates', { state: 'renewed' })).to.equal(1);
    expect(await value(registry, 'dcp_kms_healthy')).to.equal(1);
  });

  it('keeps the end and length of the newest billed interval', async function () {
    const registry = new Registry();
    const onBilled = billingGauges(registry);
    onBilled([], 0);
    expect(await value(registry, 'dcp_billing_last_interval_end_timestamp_seconds')).to.equal(undefined);
    onBilled([{ start: 0, end: 3_600_000, intervalSeconds: 3600, quantity: 4 }, { start: 3_600_000, end: 7_200_000, intervalSeconds: 3600, quantity: 4 }], 7_200_000);
    expect(await value(registry, 'dcp_billing_last_interval_end_timestamp_seconds')).to.equal(7200);
    expect(await value(registry, 'dcp_billing_interval_seconds')).to.equal(3600);
  });
});
