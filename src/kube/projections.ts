// What the caches keep of Events, TLS Secrets and CSRs (Node, Pod and Namespace projections live in collectors/projections.ts).
import { X509Certificate } from 'node:crypto';
import { field, fields, map, objectFields, objectMeta, type FieldSet } from './protobuf.js';
import { asRecord, asString, metadataOf } from './resource.js';

/*
 * Each projection returns undefined for an object that lacks what identifies it (metadata.uid):
 * the reflector then skips it and counts it as malformed. Optional fields get neutral values.
 * Projections copy what they keep and never hold on to the object, so the parsed page can be
 * collected; no label, annotation or free text is kept unless named here.
 */

function str(v: unknown, fallback = ''): string {
  return asString(v) ?? fallback;
}

function uidOf(obj: unknown): string | undefined {
  return asString(metadataOf(obj)?.['uid']);
}

export interface EventRegarding {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** An events.k8s.io/v1 Event. `note` is free text: the pipeline's PII guard must see it before it leaves. */
export interface EventInfo {
  readonly uid: string;
  /** Normal or Warning. */
  readonly type: string;
  readonly reason: string;
  readonly action: string;
  readonly note: string;
  readonly regarding: EventRegarding;
  readonly reportingController: string;
  /** When it last happened: series.lastObservedTime, eventTime, deprecatedLastTimestamp or creation. */
  readonly time: string;
  /** How many times it happened (series.count, deprecatedCount, else 1). */
  readonly count: number;
}

export function projectEvent(obj: unknown): EventInfo | undefined {
  const uid = uidOf(obj);
  if (uid === undefined) return undefined;
  const o = asRecord(obj);
  const reg = asRecord(o?.['regarding']);
  const series = asRecord(o?.['series']);
  const seriesCount = series?.['count'];
  const deprecatedCount = o?.['deprecatedCount'];
  return {
    uid,
    type: str(o?.['type']),
    reason: str(o?.['reason']),
    action: str(o?.['action']),
    note: str(o?.['note']),
    regarding: {
      kind: str(reg?.['kind']),
      namespace: str(reg?.['namespace']),
      name: str(reg?.['name']),
      uid: str(reg?.['uid']),
    },
    reportingController: str(o?.['reportingController'], str(asRecord(o?.['deprecatedSource'])?.['component'])),
    time: str(
      series?.['lastObservedTime'],
      str(o?.['eventTime'], str(o?.['deprecatedLastTimestamp'], str(metadataOf(obj)?.['creationTimestamp']))),
    ),
    count: typeof seriesCount === 'number' ? seriesCount : typeof deprecatedCount === 'number' && deprecatedCount > 0 ? deprecatedCount : 1,
  };
}

export interface CertificateInfo {
  /** RFC 3339. */
  readonly notBefore: string;
  readonly notAfter: string;
  /** SHA-256 of the DER, as colon-separated hex (what openssl prints). */
  readonly fingerprintSha256: string;
  readonly serialNumber: string;
  readonly isCa: boolean;
}

/** A kubernetes.io/tls Secret: validity and fingerprints only, never key material. */
export interface TlsSecretInfo {
  readonly uid: string;
  /** The chain in tls.crt, leaf first. */
  readonly certificates: readonly CertificateInfo[];
  /** Why tls.crt could not be read, '' if it could. */
  readonly error: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Parses every certificate of a PEM bundle; throws on the first that is not a certificate. */
export function parseCertificates(pem: string): CertificateInfo[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  return blocks.map((block) => {
    const c = new X509Certificate(block);
    return {
      notBefore: new Date(c.validFrom).toISOString(),
      notAfter: new Date(c.validTo).toISOString(),
      fingerprintSha256: c.fingerprint256,
      serialNumber: c.serialNumber,
      isCa: c.ca,
    };
  });
}

export function projectTlsSecret(obj: unknown): TlsSecretInfo | undefined {
  const uid = uidOf(obj);
  if (uid === undefined) return undefined;
  // NOTE: only `tls.crt` is read; `tls.key` is never touched, so no key material is kept.
  const crt = asString(asRecord(asRecord(obj)?.['data'])?.['tls.crt']);
  if (crt === undefined) return { uid, certificates: [], error: 'tls.crt is missing' };
  try {
    const certificates = parseCertificates(Buffer.from(crt, 'base64').toString('utf8'));
    return { uid, certificates, error: certificates.length === 0 ? 'tls.crt holds no PEM certificate' : '' };
  } catch (err) {
    return { uid, certificates: [], error: `tls.crt: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/**
 * A certificates.k8s.io/v1 CertificateSigningRequest: its signer, its conditions and the certificate
 * it was issued. NOTE: spec.request, spec.username, spec.uid, spec.groups and spec.extra are never
 * read: the request is the requester's key material and the rest names a person or a machine.
 */
export interface CsrInfo {
  readonly uid: string;
  /** e.g. kubernetes.io/kube-apiserver-client-kubelet: a fixed signer name, not a person. */
  readonly signerName: string;
  readonly approved: boolean;
  readonly denied: boolean;
  /** The signer could not issue, or (for this operator) the issued certificate is withdrawn. */
  readonly failed: boolean;
  /** status.certificate, leaf first; empty until the signer issues one. */
  readonly certificates: readonly CertificateInfo[];
  /** Why status.certificate could not be read, '' if it could or is absent. */
  readonly error: string;
}

/** True when `conditions` holds `type` with status True (objects written before status was required have none). */
function hasCondition(conditions: readonly unknown[], type: string): boolean {
  return conditions.some((c) => {
    const r = asRecord(c);
    const status = asString(r?.['status']);
    return asString(r?.['type']) === type && (status === undefined || status === 'True');
  });
}

export function projectCsr(obj: unknown): CsrInfo | undefined {
  const uid = uidOf(obj);
  if (uid === undefined) return undefined;
  const o = asRecord(obj);
  const status = asRecord(o?.['status']);
  const rawConditions = status?.['conditions'];
  const conditions: readonly unknown[] = Array.isArray(rawConditions) ? rawConditions : [];
  const info = {
    uid,
    signerName: str(asRecord(o?.['spec'])?.['signerName']),
    approved: hasCondition(conditions, 'Approved'),
    denied: hasCondition(conditions, 'Denied'),
    failed: hasCondition(conditions, 'Failed'),
  };
  // status.certificate is []byte in Go: base64 of the PEM chain in JSON.
  const crt = asString(status?.['certificate']);
  if (crt === undefined || crt === '') return { ...info, certificates: [], error: '' };
  try {
    const certificates = parseCertificates(Buffer.from(crt, 'base64').toString('utf8'));
    return { ...info, certificates, error: certificates.length === 0 ? 'status.certificate holds no PEM certificate' : '' };
  } catch (err) {
    return { ...info, certificates: [], error: `status.certificate: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/* The protobuf fields each projection above reads (events.k8s.io/v1 and core/v1 generated.proto). */

const OBJECT_REFERENCE: FieldSet = fields([
  [1, field('kind', 'string')],
  [2, field('namespace', 'string')],
  [3, field('name', 'string')],
  [4, field('uid', 'string')],
]);

export const EVENT_FIELDS: FieldSet = objectFields(objectMeta([[8, field('creationTimestamp', 'time')]]), [
  [2, field('eventTime', 'microtime')],
  [
    3,
    field(
      'series',
      fields([
        [1, field('count', 'int')],
        [2, field('lastObservedTime', 'microtime')],
      ]),
    ),
  ],
  [4, field('reportingController', 'string')],
  [6, field('action', 'string')],
  [7, field('reason', 'string')],
  [8, field('regarding', OBJECT_REFERENCE)],
  [10, field('note', 'string')],
  [11, field('type', 'string')],
  [12, field('deprecatedSource', fields([[1, field('component', 'string')]]))],
  [14, field('deprecatedLastTimestamp', 'time')],
  [15, field('deprecatedCount', 'int')],
]);

/** Only tls.crt of a Secret's data is read: the key (tls.key) is skipped unread. */
export const TLS_SECRET_FIELDS: FieldSet = objectFields(objectMeta(), [[2, map('data', 'base64', ['tls.crt'])]]);
