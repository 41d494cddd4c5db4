// Gauges for the security category, for alerts: certificates by state, and whether KMS is healthy.
import type { CertificateState, KmsStatusData } from '../api/event.js';
import { gauge, type Registry } from '../observability/metrics.js';

const STATES: readonly CertificateState[] = ['valid', 'expiring', 'expired', 'notYetValid', 'revoked', 'renewed'];

export class SecurityGauges {
  private readonly certificates;

  constructor(private readonly registry?: Registry) {
    this.certificates = gauge(registry, 'dcp_certificates', "Certificates in the watched TLS Secrets and issued CSRs, by state (expiring: within the policy's expiryWarningDays).", ['state']);
  }

  /** Sets the gauges from the whole current state (every state is written, so a resolved one drops to 0). */
  record(states: readonly CertificateState[], kms: KmsStatusData | undefined): void {
    for (const state of STATES) this.certificates.set({ state }, states.filter((s) => s === state).length);
    // Registered at the first KMS reading: a label-less gauge reads 0 until set, which would say "unhealthy".
    if (kms !== undefined) {
      gauge(this.registry, 'dcp_kms_healthy', '1 when the API server reports every KMS provider healthy (or none configured), 0 when one is not.', []).set(kms.healthy ? 1 : 0);
      gauge(this.registry, 'dcp_kms_providers', 'KMS providers the API server reports.', []).set(kms.providers);
    }
  }
}
