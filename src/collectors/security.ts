// security: one CertificateStatus per TLS Secret and issued CSR certificate, and one KmsStatus, read once (dcp preview) or kept current (the collector); validity, fingerprints and health only.
import type { PolicySpec } from '../api/policy.js';
import type { KubeTransport } from '../kube/client.js';
import { Forbidden, Unauthorized } from '../kube/errors.js';
import { listAll } from '../kube/pager.js';
import { projectCsr, projectTlsSecret, TLS_SECRET_FIELDS, type CsrInfo, type TlsSecretInfo } from '../kube/projections.js';
import { collectionPath } from '../kube/resource.js';
import type { CertificateState, DcpEvent, EventOf, KmsStatusData } from '../api/event.js';
import { certificateEvent, certificateStatusData, csrStatusData } from './certificates.js';
import { kmsEvent, readKmsStatus } from './kms.js';
import { SecurityGauges } from './security-metrics.js';
import { silentLog, type Log } from '../observability/log.js';
import type { Registry } from '../observability/metrics.js';
import { TLS_SECRET_SELECTOR, tlsSecretCache } from '../runtime/caches.js';
import type { Clock } from '../runtime/clock.js';
import { Reflector } from '../runtime/reflector.js';
import type { SkippedObjects } from '../runtime/skipped-objects.js';
import type { ChangeHandler } from '../runtime/store.js';
import type { ReconnectRegistry } from '../runtime/reconnect-probe.js';
import { clusterRef, FlushLoop, wallClock, Wakeup, type Collector, type EmitEvents } from './collector.js';
import type { NamespaceProjection } from './projections.js';

export const CSR_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';

/** What the collector would report right now, read once from the API server (for `dcp preview`): one CertificateStatus per certificate in the configured namespaces' TLS Secrets and issued CSRs, and one KmsStatus. */
export async function securitySnapshot(options: {
  transport: KubeTransport;
  kubeSystem: NamespaceProjection;
  spec: PolicySpec;
  nowMs: number;
  signal?: AbortSignal;
}): Promise<DcpEvent[]> {
  const { transport, spec, nowMs, signal } = options;
  const security = spec.categories.security;
  const cluster = clusterRef(options.kubeSystem, spec);
  const events = new Map<string, DcpEvent>();
  const add = (e: DcpEvent): void => void events.set(e.id, e);
  for (const ns of new Set(security.certificateNamespaces)) {
    for await (const obj of listAll(transport, collectionPath('/api/v1/secrets', ns), { query: { fieldSelector: TLS_SECRET_SELECTOR }, signal })) {
      const leaf = projectTlsSecret(obj)?.certificates[0];
      if (leaf !== undefined) add(certificateEvent(cluster, nowMs, certificateStatusData(leaf, nowMs, security.expiryWarningDays, 'secret')));
    }
  }
  for await (const obj of listAll(transport, CSR_PATH, { signal })) {
    const csr = projectCsr(obj);
    const data = csr === undefined ? undefined : csrStatusData(csr, nowMs, security.expiryWarningDays);
    if (data !== undefined) add(certificateEvent(cluster, nowMs, data));
  }
  add(kmsEvent(cluster, nowMs, await readKmsStatus(transport, signal)));
  return [...events.values()];
}

// ---- the collector ----

const SECRET = { resource: 'secrets', kind: 'Secret', apiVersion: 'v1' } as const;
const CSR = { resource: 'certificatesigningrequests', kind: 'CertificateSigningRequest', apiVersion: 'certificates.k8s.io/v1' } as const;

export interface SecurityCollectorOptions {
  /** The collector owns its reflectors: one tlsSecretCache per certificate namespace and one for CSRs. */
  readonly transport: KubeTransport;
  /** The kube-system Namespace (its UID is the cluster id). */
  readonly kubeSystem: NamespaceProjection;
  /** The policy spec at start; later ones come through reconfigure(). */
  readonly spec: PolicySpec;
  readonly emit: EmitEvents;
  /** Must read epoch milliseconds. @default wallClock */
  readonly clock?: Clock;
  readonly log?: Log;
  /** Where the reflectors' dcp_watch_* metrics go. */
  readonly registry?: Registry;
  /** Where the reflectors enrol for wake-ups after an API server outage. */
  readonly reconnect?: ReconnectRegistry;
  /** Certificate states are re-evaluated (valid → expiring → expired) and KMS polled this often (at least 100 ms). @default 300000 */
  readonly checkIntervalMs?: number;
  /** Changes are gathered this long, then emitted as one batch. @default 1000 */
  readonly batchDelayMs?: number;
  /** Where a TLS Secret or CSR whose certificate cannot be read is reported (counted, warned about on the object). */
  readonly skipped?: SkippedObjects;
}

interface SecretCache {
  readonly reflector: Reflector<TlsSecretInfo>;
  readonly stop: AbortController;
  readonly unsubscribe: () => void;
}

/**
 * Watches TLS Secrets in the configured namespaces and all CSRs, and polls KMS health. A flush
 * evaluates every known certificate against the clock and emits the ones whose event id (fingerprint,
 * state, day) differs from the last one emitted for that object: so a state change is reported at
 * once, an unchanged state once a day, and a restart or a new leader repeats only ids already stored.
 */
export class SecurityCollector implements Collector {
  readonly category = 'security' as const;
  private spec: PolicySpec;
  private readonly clock: Clock;
  private readonly log: Log;
  private readonly checkIntervalMs: number;
  private readonly batchDelayMs: number;
  private running = false;
  /** Wakes the idle loop when the category is enabled again. */
  private readonly enabledWake: Wakeup;
  /** Aborts the current enabled period (reflectors, checks); undefined while disabled. */
  private session: AbortController | undefined;
  private readonly secretCaches = new Map<string, SecretCache>();
  private csrs: Reflector<CsrInfo> | undefined;
  /** Reflectors that were told to stop and have not yet; run() waits for them. */
  private readonly stopping = new Set<Promise<void>>();
  /** Object key ('secret:ns/name', 'csr:name', 'kms') → id of the last event stored for it. */
  private readonly sent = new Map<string, string>();
  /** Secrets whose leaf changed while watched, not yet reported as renewed. */
  private readonly renewals = new Set<string>();
  private kms: KmsStatusData | undefined;
  private dirty = false;
  private readonly flusher: FlushLoop;
  private readonly gauges: SecurityGauges;

  constructor(private readonly options: SecurityCollectorOptions) {
    this.gauges = new SecurityGauges(options.registry);
    this.spec = options.spec;
    this.clock = options.clock ?? wallClock;
    this.log = options.log ?? silentLog;
    this.checkIntervalMs = Math.max(100, options.checkIntervalMs ?? 300_000);
    this.batchDelayMs = options.batchDelayMs ?? 1000;
    this.enabledWake = new Wakeup(this.clock);
    this.flusher = new FlushLoop({
      clock: this.clock,
      flush: () => this.flush(),
      pending: () => this.dirty,
      active: () => this.session !== undefined && !this.session.signal.aborted,
    });
  }

  async run(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error('SecurityCollector is already running');
    this.running = true;
    try {
      while (!signal.aborted) {
        if (this.spec.categories.security.enabled) await this.runEnabled(signal);
        else await this.enabledWake.sleep(Infinity, signal);
      }
    } finally {
      this.running = false;
    }
  }

  reconfigure(spec: PolicySpec): void {
    const was = this.spec.categories.security;
    this.spec = spec;
    const now = spec.categories.security;
    if (!now.enabled) {
      // NOTE: ending the session forgets what was emitted, which is what makes re-enabling report everything again.
      this.session?.abort();
      return;
    }
    if (!was.enabled) {
      this.enabledWake.wake();
      return;
    }
    if (this.session === undefined) return;
    this.syncNamespaces(this.session.signal);
    if (was.expiryWarningDays !== now.expiryWarningDays) this.markDirty(0);
  }

  /** One enabled period: reflectors up, KMS polled and states re-evaluated every check, until disabled or stopped. */
  private async runEnabled(outer: AbortSignal): Promise<void> {
    const session = new AbortController();
    const onStop = (): void => session.abort();
    outer.addEventListener('abort', onStop, { once: true });
    this.session = session;
    const signal = session.signal;
    const csrs = new Reflector<CsrInfo>({
      transport: this.options.transport,
      path: CSR_PATH,
      project: projectCsr,
      registry: this.options.registry,
      ...(this.options.reconnect ? { reconnect: this.options.reconnect } : {}),
      onError: (err, reason) => this.watchError('CSR watch restarting', { reason, error: String(err) }, err),
      onMalformed: (key, object) => this.skip(CSR, { object, ...(key !== undefined ? { key } : {}) }, 'MalformedObject', 'this CertificateSigningRequest lacks metadata.uid'),
    });
    this.csrs = csrs;
    const unsubscribeCsrs = csrs.store.subscribe(this.onCsr, { replay: true });
    this.track(csrs.start(signal));
    this.syncNamespaces(signal);
    const tick = new Wakeup(this.clock);
    try {
      while (!signal.aborted) {
        await this.pollKms(signal);
        // The clock moved: a certificate may have become expiring or expired, or a day begun.
        this.markDirty(0);
        await tick.sleep(this.checkIntervalMs, signal);
      }
    } finally {
      outer.removeEventListener('abort', onStop);
      unsubscribeCsrs();
      this.csrs = undefined;
      for (const ns of [...this.secretCaches.keys()]) this.stopNamespace(ns);
      this.session = undefined;
      this.flusher.cancel();
      while (this.stopping.size > 0 || this.flusher.busy) await Promise.all([...this.stopping, this.flusher.idle()]);
      this.sent.clear();
      this.renewals.clear();
      this.kms = undefined;
      this.dirty = false;
    }
  }

  /** Reflectors retry on their own; only a refusal (RBAC, credentials) is worth a warning, as retrying will not cure it. */
  private watchError(message: string, meta: Record<string, unknown>, err: Error): void {
    if (err instanceof Forbidden || err instanceof Unauthorized) this.log.warn(message, meta);
    else this.log.debug(message, meta);
  }

  private track(done: Promise<void>): void {
    const p = done.catch((err: unknown) => {
      this.log.warn('security watch ended with an error', { error: String(err) });
    });
    this.stopping.add(p);
    void p.then(() => this.stopping.delete(p));
  }

  /** Starts and stops Secret reflectors so there is one per configured namespace. */
  private syncNamespaces(signal: AbortSignal): void {
    if (signal.aborted) return;
    const wanted = new Set(this.spec.categories.security.certificateNamespaces);
    for (const ns of [...this.secretCaches.keys()]) if (!wanted.has(ns)) this.stopNamespace(ns);
    for (const ns of wanted) {
      if (this.secretCaches.has(ns)) continue;
      const stop = new AbortController();
      const onStop = (): void => stop.abort();
      signal.addEventListener('abort', onStop, { once: true });
      const reflector = tlsSecretCache(this.options.transport, ns, projectTlsSecret, {
        fields: TLS_SECRET_FIELDS,
        registry: this.options.registry,
        ...(this.options.reconnect ? { reconnect: this.options.reconnect } : {}),
        onError: (err, reason) => this.watchError('TLS Secret watch restarting', { namespace: ns, reason, error: String(err) }, err),
        onMalformed: (key, object) => this.skip(SECRET, { object, ...(key !== undefined ? { key } : {}) }, 'MalformedObject', 'this Secret lacks metadata.uid'),
      });
      const unsubscribe = reflector.store.subscribe(this.onSecret, { replay: true });
      this.secretCaches.set(ns, { reflector, stop, unsubscribe });
      this.track(reflector.start(stop.signal).finally(() => signal.removeEventListener('abort', onStop)));
    }
  }

  private stopNamespace(ns: string): void {
    const cache = this.secretCaches.get(ns);
    if (cache === undefined) return;
    this.secretCaches.delete(ns);
    cache.unsubscribe();
    cache.stop.abort();
    for (const key of this.renewals) if (key.startsWith(`secret:${ns}/`)) this.renewals.delete(key);
    // Its certificates' memory goes at the next flush, which no longer sees them.
    this.markDirty(this.batchDelayMs);
  }

  private readonly onSecret: ChangeHandler<TlsSecretInfo> = (type, key, newValue, oldValue) => {
    const id = `secret:${key}`;
    if (newValue === undefined) {
      this.renewals.delete(id);
      this.markDirty(this.batchDelayMs);
      return;
    }
    if (newValue.error !== '' && newValue.error !== oldValue?.error) {
      this.skip(SECRET, { key, uid: newValue.uid }, 'UnreadableCertificate', `no certificate state is reported for it: ${newValue.error}`);
    }
    const was = oldValue?.certificates[0]?.fingerprintSha256;
    const is = newValue.certificates[0]?.fingerprintSha256;
    // A renewal is a new leaf in a Secret already watched; a Secret seen for the first time is not one.
    if (type === 'updated' && was !== undefined && is !== undefined && was !== is) this.renewals.add(id);
    this.markDirty(this.batchDelayMs);
  };

  private readonly onCsr: ChangeHandler<CsrInfo> = (_type, key, newValue, oldValue) => {
    if (newValue !== undefined && newValue.error !== '' && newValue.error !== oldValue?.error) {
      this.skip(CSR, { key, uid: newValue.uid }, 'UnreadableCertificate', `no certificate state is reported for it: ${newValue.error}`);
    }
    this.markDirty(this.batchDelayMs);
  };

  /** An object whose certificate cannot be read: counted and warned about on the object, never emitted. */
  private skip(what: typeof SECRET | typeof CSR, which: { object?: unknown; key?: string; uid?: string }, reason: string, note: string): void {
    if (this.options.skipped !== undefined) this.options.skipped.report({ ...what, ...which, reason, note });
    else this.log.warn('skipping an unreadable object', { resource: what.resource, reason, problem: note });
  }

  private async pollKms(signal: AbortSignal): Promise<void> {
    try {
      this.kms = await readKmsStatus(this.options.transport, signal, this.log);
    } catch (err) {
      if (signal.aborted) return;
      // The last status stays; the next check tries again.
      this.log.warn('cannot read KMS health from the API server; retrying at the next check', { error: String(err) });
    }
  }

  private markDirty(delayMs: number): void {
    this.dirty = true;
    this.flusher.schedule(delayMs);
  }

  /** The events the current state calls for, and for which object key each stands (pure apart from reading the caches). */
  private collect(): { events: DcpEvent[]; ids: Map<string, string>; renewed: Set<string> } {
    const now = this.clock.now();
    const days = this.spec.categories.security.expiryWarningDays;
    const cluster = clusterRef(this.options.kubeSystem, this.spec);
    const events = new Map<string, DcpEvent>();
    const ids = new Map<string, string>();
    const renewed = new Set<string>();
    const states: CertificateState[] = [];
    const consider = (key: string, event: DcpEvent): void => {
      if (event.name === 'CertificateStatus') states.push((event as EventOf<'CertificateStatus'>).data.state);
      ids.set(key, event.id);
      // One certificate in two Secrets is one fact: one event.
      if (this.sent.get(key) !== event.id) events.set(event.id, event);
    };
    for (const cache of this.secretCaches.values()) {
      for (const [name, secret] of cache.reflector.store.entries()) {
        const leaf = secret.certificates[0];
        if (leaf === undefined) continue;
        const key = `secret:${name}`;
        if (this.renewals.has(key)) {
          const e = certificateEvent(cluster, now, certificateStatusData(leaf, now, days, 'secret', true));
          events.set(e.id, e);
          renewed.add(key);
        }
        consider(key, certificateEvent(cluster, now, certificateStatusData(leaf, now, days, 'secret')));
      }
    }
    for (const [name, csr] of this.csrs?.store.entries() ?? []) {
      const data = csrStatusData(csr, now, days);
      if (data !== undefined) consider(`csr:${name}`, certificateEvent(cluster, now, data));
    }
    if (this.kms !== undefined) consider('kms', kmsEvent(cluster, now, this.kms));
    this.gauges.record(states, this.kms);
    return { events: [...events.values()], ids, renewed };
  }

  /** Emits what the state calls for; rejects (still dirty) if it was not stored. */
  private async flush(): Promise<void> {
    this.dirty = false;
    if (this.session === undefined || !this.spec.categories.security.enabled) return;
    const { events, ids, renewed } = this.collect();
    // Objects gone (deleted, namespace dropped) are forgotten: what is not seen now is not remembered.
    for (const key of [...this.sent.keys()]) if (!ids.has(key)) this.sent.delete(key);
    if (events.length === 0) return;
    try {
      await this.options.emit(events);
    } catch (err) {
      this.log.warn('security events not stored; retrying', { events: events.length, error: String(err) });
      this.dirty = true;
      throw err;
    }
    // A session ended meanwhile has cleared its memory; this flush must not refill it.
    if (this.session === undefined) return;
    for (const [key, id] of ids) this.sent.set(key, id);
    for (const key of renewed) this.renewals.delete(key);
  }
}
