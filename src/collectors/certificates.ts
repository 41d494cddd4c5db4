// Certificate facts: where a TLS Secret's or issued CSR's certificate stands, its fingerprint, and its CertificateStatus event.
import { buildEvent } from '../api/envelope.js';
import type { CertificateState, CertificateStatusData, ClusterRef, EventOf } from '../api/event.js';
import type { CertificateInfo, CsrInfo } from '../kube/projections.js';

const DAY_MS = 86_400_000;
/** A fact is reported once per day per state (and at once when the state changes). */
const DAY_SECONDS = 86_400;

/**
 * Where a certificate stands at `nowMs`. Both ends of the validity period are inclusive (RFC 5280
 * 4.1.2.5), so a certificate is expired only after notAfter; it is expiring from exactly
 * `expiryWarningDays` days before notAfter.
 */
export function certificateState(cert: { notBefore: string; notAfter: string }, nowMs: number, expiryWarningDays: number): CertificateState {
  const notBefore = Date.parse(cert.notBefore);
  const notAfter = Date.parse(cert.notAfter);
  if (nowMs < notBefore) return 'notYetValid';
  if (nowMs > notAfter) return 'expired';
  if (notAfter - nowMs <= expiryWarningDays * DAY_MS) return 'expiring';
  return 'valid';
}

/** SHA-256 fingerprint as the schema wants it: lower-case hex, no colons (openssl and node print `AB:CD:…`). */
export function fingerprintHex(cert: CertificateInfo): string {
  return cert.fingerprintSha256.replace(/:/g, '').toLowerCase();
}

/**
 * The event data of one certificate: validity and fingerprint only. NOTE: the serial number, subject,
 * SANs and the Secret's or CSR's name and namespace are left out on purpose: they name hosts and people.
 */
export function certificateStatusData(
  cert: CertificateInfo,
  nowMs: number,
  expiryWarningDays: number,
  source: 'secret' | 'csr',
  renewed?: boolean,
): CertificateStatusData {
  return {
    notBefore: new Date(cert.notBefore).toISOString(),
    notAfter: new Date(cert.notAfter).toISOString(),
    daysToExpiry: Math.floor((Date.parse(cert.notAfter) - nowMs) / DAY_MS),
    fingerprintSha256: fingerprintHex(cert),
    state: renewed === true ? 'renewed' : certificateState(cert, nowMs, expiryWarningDays),
    source,
  };
}

/**
 * The data of a CSR's issued leaf. Kubernetes has no revocation API; a CSR that was issued and later
 * got a Failed condition (how a signer or an admin withdraws it) is the closest fact, so it is 'revoked'.
 */
export function csrStatusData(csr: CsrInfo, nowMs: number, expiryWarningDays: number): CertificateStatusData | undefined {
  const leaf = csr.certificates[0];
  if (leaf === undefined) return undefined;
  const data = certificateStatusData(leaf, nowMs, expiryWarningDays, 'csr');
  return csr.failed ? { ...data, state: 'revoked' } : data;
}

/** The CertificateStatus event: the fingerprint and state are the source key, so one state is one event a day. */
export function certificateEvent(cluster: ClusterRef, nowMs: number, data: CertificateStatusData): EventOf<'CertificateStatus'> {
  return buildEvent({
    name: 'CertificateStatus',
    cluster,
    time: new Date(nowMs),
    sourceKey: `${data.fingerprintSha256}:${data.state}`,
    bucketSeconds: DAY_SECONDS,
    data,
  });
}
