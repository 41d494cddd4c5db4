// PII guard: the last check before storage. Drops any event whose strings look like personal or secret data.
import { isIPv6 } from 'node:net';
import type { DcpEvent } from '../api/event.js';
import { silentLog, type Log } from '../observability/log.js';
import { counter, type Registry } from '../observability/metrics.js';

export type PiiKind =
  | 'email'
  | 'ipv4'
  | 'ipv6'
  | 'mac'
  | 'uuid'
  | 'jwt'
  | 'authHeader'
  | 'credential'
  | 'pem'
  | 'keyMaterial'
  | 'hostname'
  | 'denied';

export interface PiiFinding {
  readonly kind: PiiKind;
  /** Where in the event, e.g. `data.message`. Never the value. */
  readonly path: string;
}

// A token after "bearer"/"password=" that is all lower-case letters is prose ("bearer token expired"), not a secret.
const looksLikeSecret = (s: string): boolean => s.length >= 6 && !/^[a-z-]+$/.test(s);

// A four-part version is no address: Azure Linux kernels read 6.6.64.2-9.azl3, tags v1.2.3.4.
// A range "10.0.0.1-10.0.0.9" still fails on its second address.
const looksLikeVersion = (m: RegExpExecArray): boolean =>
  /[vV]$/.test(m.input.slice(0, m.index)) || /^[-+~][0-9A-Za-z]/.test(m.input.slice(m.index + m[0].length));

const PATTERNS: readonly { kind: PiiKind; re: RegExp; accept?: (m: RegExpExecArray) => boolean }[] = [
  { kind: 'email', re: /[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/g },
  {
    kind: 'ipv4',
    re: /(?<!\d)(?<!\d\.)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?!\d)(?!\.\d)/g,
    accept: (m) => m.slice(1, 5).every((o) => Number(o) <= 255) && !looksLikeVersion(m),
  },
  { kind: 'mac', re: /(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}/g },
  // Machine UUIDs; the two envelope fields that are UUIDs by design are exempt (see inspect).
  { kind: 'uuid', re: /[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}/g },
  { kind: 'jwt', re: /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g },
  { kind: 'authHeader', re: /(?:bearer|basic)\s+([A-Za-z0-9\-._~+/]+=*)/gi, accept: (m) => looksLikeSecret(m[1] ?? '') },
  {
    // key=value is an assignment whatever the value; "token: context deadline" is prose unless the value looks random.
    kind: 'credential',
    re: /(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|access[_-]?key)["']?(\s*[=:]\s*)["']?([^\s"',;]+)/gi,
    accept: (m) => (m[1]?.trim() === '=' && (m[2] ?? '').length >= 4) || looksLikeSecret(m[2] ?? ''),
  },
  { kind: 'pem', re: /-----(?:BEGIN|END)[A-Z0-9 ]*-----/g },
  // Key material without armour: "PRIVATE KEY", OpenSSH public keys, base64 DER (starts MII).
  { kind: 'keyMaterial', re: /PRIVATE KEY|ssh-(?:rsa|dss|ed25519|ecdsa-[a-z0-9-]+)\s+AAAA[0-9A-Za-z+/]{16,}|MII[A-Za-z0-9+/]{60,}/g },
];

// Runs of characters an IPv6 address is made of; each run with two or more colons is a candidate.
const IPV6_RUN = /[0-9A-Fa-f:.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*/g;

/** The IPv6 addresses in `text`, as [start, end) spans. */
function ipv6Spans(text: string): [number, number][] {
  const spans: [number, number][] = [];
  for (const m of text.matchAll(IPV6_RUN)) {
    // A run glued to a word (C++'s `std::vector`, Rust's `io::Error`) is a path, not an address.
    if (/[G-Zg-z_]/.test(text.charAt(m.index - 1))) continue;
    const run = m[0].replace(/\.+$/, '');
    // Also try without one colon that punctuation ("addr fe80::1: refused") may have glued on.
    const lead = run.startsWith(':') ? 1 : 0;
    const trail = run.endsWith(':') ? 1 : 0;
    for (const [l, t] of [[0, 0], [0, trail], [lead, 0], [lead, trail]] as const) {
      const v = run.slice(l, run.length - t);
      // '::' alone (also C++'s 'ns::name') names no host; demand a hex digit.
      if (/[0-9A-Fa-f]/.test(v) && isIPv6(v)) {
        spans.push([m.index + l, m.index + run.length - t]);
        break;
      }
    }
  }
  return spans;
}

function containsIpv6(text: string): boolean {
  return ipv6Spans(text).length > 0;
}

/** The pattern-detectable kinds of PII in `text` (without the deny-set). */
export function detectPii(text: string, options: { allowUuid?: boolean } = {}): PiiKind[] {
  const found: PiiKind[] = [];
  for (const { kind, re, accept } of PATTERNS) {
    if (kind === 'uuid' && options.allowUuid) continue;
    re.lastIndex = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      if (!accept || accept(m)) {
        found.push(kind);
        break;
      }
    }
  }
  if (containsIpv6(text)) found.push('ipv6');
  return found;
}

/** What each kind of finding becomes in redacted text: a bracketed word that no pattern matches. */
export const PII_PLACEHOLDERS: Readonly<Record<PiiKind, string>> = {
  email: '<email>',
  ipv4: '<ip>',
  ipv6: '<ip>',
  mac: '<mac>',
  uuid: '<uuid>',
  jwt: '<token>',
  authHeader: '<token>',
  credential: '<secret>',
  pem: '<key>',
  keyMaterial: '<key>',
  hostname: '<host>',
  // What DenySet.redact is usually given: the deny set holds node names, hostnames and systemUUIDs.
  denied: '<node>',
};

// A whole armoured block: the pattern only sees its armour lines, but the base64 between them is the key.
const PEM_BLOCK = /-----BEGIN [A-Z0-9 ]*-----[\s\S]*?-----END [A-Z0-9 ]*-----/g;

/** Replaces the [start, end) spans (sorted, not overlapping) of `text` by `placeholder`. */
function replaceSpans(text: string, spans: readonly (readonly [number, number])[], placeholder: string): string {
  if (spans.length === 0) return text;
  let out = '';
  let cursor = 0;
  for (const [start, end] of spans) {
    out += text.slice(cursor, start) + placeholder;
    cursor = end;
  }
  return out + text.slice(cursor);
}

function patternSpans(text: string, re: RegExp, accept: ((m: RegExpExecArray) => boolean) | undefined): [number, number][] {
  const spans: [number, number][] = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (!accept || accept(m)) spans.push([m.index, m.index + m[0].length]);
  }
  return spans;
}

/**
 * `text` with every finding of detectPii replaced by its placeholder (`<email>`, `<ip>`, `<mac>`,
 * `<uuid>`, `<token>`, `<secret>`, `<key>`), using the same patterns and acceptance rules, so what
 * detectPii would flag is exactly what goes. IPv6 comes right after e-mail, before the MAC and IPv4
 * patterns could take bits of an address (`::ffff:10.0.0.1`) and leave the rest. A replacement can
 * join what was around it into a new finding, so passes repeat until none is left.
 */
export function redactPii(text: string): string {
  let out = text.replace(PEM_BLOCK, PII_PLACEHOLDERS.pem);
  for (let pass = 0; pass < 4; pass++) {
    for (const { kind, re, accept } of PATTERNS) {
      out = replaceSpans(out, patternSpans(out, re, accept), PII_PLACEHOLDERS[kind]);
      if (kind === 'email') out = replaceSpans(out, ipv6Spans(out), PII_PLACEHOLDERS.ipv6);
    }
    if (detectPii(out).length === 0) break;
  }
  return out;
}

const TOKEN = /[\p{L}\p{N}]+/gu;

// Values collectors commonly see in labels that identify nobody; denying them would drop every event.
const NEVER_DENIED = new Set(['true', 'false', 'yes', 'no', 'none', 'null', 'enabled', 'disabled', 'linux', 'windows', 'amd64', 'arm64', 'default']);

/**
 * Exact strings the collectors have seen and that must never leave the cluster. Today the host OS
 * collector registers each Node's name, hostnames and systemUUID; collectors that read free text
 * (Events, Secrets) are meant to register the names they see there too. Matching is case-insensitive, on word boundaries
 * (`node-1` matches "node-1 rebooted" but not "node-10"), and scales with the text, not the set.
 */
export class DenySet {
  /** Shorter entries, pure numbers and NEVER_DENIED values are ignored: they would match ordinary text. */
  static readonly MIN_LENGTH = 3;
  // first word of an entry → entries starting with it, with the word's offset in the entry
  private readonly byFirstToken = new Map<string, Map<string, number>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Registers values; returns how many were new. Safe to call on every observation. */
  add(values: Iterable<string>): number {
    let added = 0;
    for (const raw of values) {
      const entry = raw.trim().toLowerCase();
      if (entry.length < DenySet.MIN_LENGTH || /^\d+$/.test(entry) || NEVER_DENIED.has(entry)) continue;
      const first = new RegExp(TOKEN.source, 'u').exec(entry);
      if (!first) continue;
      let bucket = this.byFirstToken.get(first[0]);
      if (!bucket) this.byFirstToken.set(first[0], (bucket = new Map()));
      if (bucket.has(entry)) continue;
      bucket.set(entry, first.index);
      this.count++;
      added++;
    }
    return added;
  }

  delete(values: Iterable<string>): void {
    for (const raw of values) {
      const entry = raw.trim().toLowerCase();
      const first = new RegExp(TOKEN.source, 'u').exec(entry);
      if (first && this.byFirstToken.get(first[0])?.delete(entry)) this.count--;
    }
  }

  /** Whether any entry occurs in `text` on word boundaries. */
  matches(text: string): boolean {
    if (this.count === 0) return false;
    const lower = text.toLowerCase();
    for (const t of lower.matchAll(TOKEN)) {
      if (this.longestAt(lower, t[0], t.index, 0) !== undefined) return true;
    }
    return false;
  }

  /**
   * `text` with every occurrence of an entry, on the boundaries `matches` uses, replaced by
   * `placeholder` (the longest entry wins where several start at one place). Lower-casing changes
   * the length of a few characters (the dotted capital I); text holding one comes back lower-cased.
   */
  redact(text: string, placeholder: string): string {
    if (this.count === 0) return text;
    const lower = text.toLowerCase();
    const source = lower.length === text.length ? text : lower;
    let out = '';
    let cursor = 0;
    for (const t of lower.matchAll(TOKEN)) {
      if (t.index < cursor) continue;
      const span = this.longestAt(lower, t[0], t.index, cursor);
      if (span === undefined) continue;
      out += source.slice(cursor, span[0]) + placeholder;
      cursor = span[1];
    }
    return out + source.slice(cursor);
  }

  /** The longest entry starting with the word `token` (at `index` of `lower`) that occurs there, not before `from`. */
  private longestAt(lower: string, token: string, index: number, from: number): [number, number] | undefined {
    const bucket = this.byFirstToken.get(token);
    if (!bucket) return undefined;
    let best: [number, number] | undefined;
    for (const [entry, offset] of bucket) {
      const start = index - offset;
      if (start < from || !lower.startsWith(entry, start)) continue;
      const end = start + entry.length;
      const after = lower.slice(end, end + 2);
      const endsInWord = /[\p{L}\p{N}]$/u.test(entry);
      if (endsInWord && /^[\p{L}\p{N}]/u.test(after)) continue;
      if (best === undefined || end - start > best[1] - best[0]) best = [start, end];
    }
    return best;
  }
}

export interface PiiGuardOptions {
  readonly denySet?: DenySet;
  readonly registry?: Registry;
  readonly log?: Log;
}

/** Paths whose value is a UUID by design: the kube-system UID and the subscription GUID. */
const UUID_FIELDS = new Set(['cluster.id', 'cluster.subscriptionId']);

/**
 * Paths that hold what a machine reports about its software (HostOsInfo). A host name has no place there, and one
 * the deny set does not hold (a Node not seen yet, a build host that never was a Node) has no other way to be caught.
 */
const SOFTWARE_FIELDS = new Set(['data.osImage', 'data.kernelVersion', 'data.containerRuntimeVersion']);

// Host names by their shape: a DNS name ending in a letters-only label (versions end in digits: 6.6.64.2-9.azl3,
// 5.14.0-284.el9.x86_64), an address written with dashes (EC2, GCE: ip-10-0-0-4), an Azure scale set instance (…-vmss00000a).
const HOST_NAMES: readonly RegExp[] = [
  /(?<![\w.-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}(?![\w.-])/i,
  /(?<![a-z0-9])ip-\d{1,3}-\d{1,3}-\d{1,3}-\d{1,3}(?!\d)/i,
  /-vmss[0-9a-z]{6}(?![0-9a-z])/i,
];

/** Whether `text` holds something shaped like a host name (used on SOFTWARE_FIELDS only: elsewhere DNS names are ordinary). */
export function containsHostName(text: string): boolean {
  return HOST_NAMES.some((re) => re.test(text));
}

function* strings(value: unknown, path: string): Generator<[string, string]> {
  if (typeof value === 'string') yield [path, value];
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) yield* strings(v, path ? `${path}.${k}` : k);
  }
}

/** The pipeline stage: inspect(), plus `dcp_events_pii_rejected_total{category}` and a log line on rejection. */
export class PiiGuard {
  readonly denySet: DenySet;
  private readonly rejected;
  private readonly log: Log;

  constructor(options: PiiGuardOptions = {}) {
    this.denySet = options.denySet ?? new DenySet();
    this.rejected = counter(options.registry, 'dcp_events_pii_rejected_total', 'Events dropped by the PII guard.', ['category']);
    this.log = options.log ?? silentLog;
  }

  /** Every finding in the event. Patterns apply to every string; the deny-set to `data` only (the rest is schema-fixed vocabulary); host-name shapes to SOFTWARE_FIELDS. */
  inspect(event: DcpEvent): PiiFinding[] {
    const findings: PiiFinding[] = [];
    for (const [path, text] of strings(event, '')) {
      for (const kind of detectPii(text, { allowUuid: UUID_FIELDS.has(path) })) findings.push({ kind, path });
      if (path.startsWith('data.') && this.denySet.matches(text)) findings.push({ kind: 'denied', path });
      if (SOFTWARE_FIELDS.has(path) && containsHostName(text)) findings.push({ kind: 'hostname', path });
    }
    return findings;
  }

  /** True if the event may be stored; false if it was rejected (counted and logged). */
  admit(event: DcpEvent): boolean {
    const findings = this.inspect(event);
    if (findings.length === 0) return true;
    this.rejected.inc({ category: event.category });
    // NOTE: the log names kinds and paths only; logging the value would leak what the guard just stopped.
    this.log.warn('dropped event carrying personal or secret data', { category: event.category, name: event.name, id: event.id, findings });
    return false;
  }
}
