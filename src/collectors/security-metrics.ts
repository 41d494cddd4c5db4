// Gauges for the security category, for alerts: certificates by state, and whether KMS is healthy.
import type { CertificateState, KmsStatusData } from '../api/event.js';
import { gauge, type Registry } from '../observability/metrics.js';

const STATES: readonly CertificateState[] = ['valid', 'expiring', 'expired', 'notYetValid', 'revoked', 'renewed'];

export class SecurityGauges {
  private readonly certificates;
  private readonly kmsHealthy;
  private readonly kmsProviders;

  constructor(registry?: Registry) {
    this.certificates = gauge(registry, 'dcp_certificates', 'Certificates in the watched TLS Secrets and issued CSRs, by state (expiring: within the policy\'s expiryWarningDays).', ['state']);
    this.kmsHealthy = gauge(registry, 'dcp_kms_healthy', '1 when the API server reports every KMS provider healthy (or none configured), 0 when one is not.', []);
    this.kmsProviders = gauge(registry, 'dcp_kms_providers', 'KMS providers the API server reports.', []);
  }

  /** Sets the gauges from the whole current state (every state is written, so a resolved one drops to 0). */
  record(states: readonly CertificateState[], kms: KmsStatusData | undefined): void {
    for (const state of STATES) this.certificates.set({ state }, states.filter((s) => s === state).length);
    if (kms !== undefined) {
      this.kmsHealthy.set(kms.healthy ? 1 : 0);
      this.kmsProviders.set(kms.providers);
    }
  }
}
