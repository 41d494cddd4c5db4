// Hostile objects for the abuse scenario: objects at the API server's size limits, strings with control characters
// and (through protobuf, the one way in for raw bytes) invalid UTF-8, and TLS Secrets whose certificates are
// malformed, huge, 50 long, decades expired or negatively numbered. Each says what the API server and the operator
// must make of it.
import { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { selfSignedCertificate } from '../../hack/certs.js';
import type { KubeTransport } from '../../src/kube/client.js';
import { between } from './campaign.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** What the API server allows all of an object's annotations together (apimachinery TotalAnnotationSizeLimitB). */
export const ANNOTATIONS_LIMIT = 256 * KiB;

export interface HostileObject {
  readonly what: string;
  /** Creates it; rejects with the API server's refusal. */
  readonly create: () => Promise<void>;
  /** The API server must refuse it, with a message containing this; undefined: it must take it. */
  readonly refusedNaming?: string;
  /** The operator must skip it, counted in dcp_objects_skipped_total{resource="secrets"}. */
  readonly skipped?: boolean;
  /** The operator must report this certificate (its leaf's SHA-256, lowercase hex). */
  readonly fingerprint?: string;
}

export interface HostileOptions {
  readonly transport: KubeTransport;
  readonly kc: KubeConfig;
  readonly random: () => number;
  /** Pods' namespace. */
  readonly namespace: string;
  /** Where TLS Secrets go: a certificate namespace of the policy. */
  readonly secretNamespace: string;
  readonly prefix: string;
  readonly label: Readonly<Record<string, string>>;
}

/** Every C0 control, DEL, C1 controls, line and paragraph separators, a bidi override, zero-width and a lone surrogate (JSON-escaped; the server reads U+FFFD). */
export const CONTROL_TEXT = `${Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('')}\u007f\u0080\u0085\u009f\u2028\u2029\u202e\u200b\ufeff\ud800 end`;
/** Byte sequences that are not UTF-8: a lone continuation byte, 0xff/0xfe, an overlong '/', a UTF-16 surrogate, a cut 4-byte sequence. */
export const INVALID_UTF8 = Buffer.concat([Buffer.from('kernel: '), Buffer.from([0x80, 0xff, 0xfe, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf0, 0x9f, 0x98]), Buffer.from(' oops')]);

const fingerprintOf = (pem: string): string => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
const padding = (bytes: number): string => 'x'.repeat(bytes);

/** A Kubernetes protobuf request body: "k8s\0" and a runtime.Unknown around the object's bytes. */
function envelope(apiVersion: string, kind: string, raw: Uint8Array): Buffer {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(apiVersion).tag(2, WireType.LengthDelimited).string(kind).join();
  w.tag(2, WireType.LengthDelimited).bytes(raw);
  return Buffer.concat([Buffer.from('k8s\u0000', 'latin1'), w.finish()]);
}

/** ObjectMeta (name 1, namespace 3, labels 11) into `w` as field `no`. */
function writeMeta(w: BinaryWriter, no: number, name: string, namespace: string | undefined, labels: Readonly<Record<string, string>>): void {
  w.tag(no, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(name);
  if (namespace !== undefined) w.tag(3, WireType.LengthDelimited).string(namespace);
  for (const [k, v] of Object.entries(labels)) w.tag(11, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(k).tag(2, WireType.LengthDelimited).string(v).join();
  w.join();
}

/** A core/v1 Warning Event about a Node whose reason and message are raw bytes (not UTF-8). */
export function protobufNodeEvent(name: string, node: string, labels: Readonly<Record<string, string>>, reason: Uint8Array, message: Uint8Array): Buffer {
  const w = new BinaryWriter();
  writeMeta(w, 1, name, 'default', labels);
  w.tag(2, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string('Node').tag(3, WireType.LengthDelimited).string(node).tag(5, WireType.LengthDelimited).string('v1').join();
  w.tag(3, WireType.LengthDelimited).bytes(reason);
  w.tag(4, WireType.LengthDelimited).bytes(message);
  w.tag(5, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string('kernel-monitor').join();
  const seconds = Math.floor(Date.now() / 1000);
  for (const no of [6, 7]) w.tag(no, WireType.LengthDelimited).fork().tag(1, WireType.Varint).int64(seconds).join();
  w.tag(8, WireType.Varint).int32(1);
  w.tag(9, WireType.LengthDelimited).string('Warning');
  return envelope('v1', 'Event', w.finish());
}

/** A core/v1 Node whose nodeInfo's osImage and kernelVersion are raw bytes (not UTF-8). */
export function protobufNode(name: string, labels: Readonly<Record<string, string>>, osImage: Uint8Array, kernelVersion: Uint8Array): Buffer {
  const w = new BinaryWriter();
  writeMeta(w, 1, name, undefined, labels);
  const info = new BinaryWriter();
  info.tag(4, WireType.LengthDelimited).bytes(kernelVersion).tag(5, WireType.LengthDelimited).bytes(osImage);
  info.tag(6, WireType.LengthDelimited).string('containerd://1.7.27').tag(7, WireType.LengthDelimited).string('v1.34.4');
  info.tag(9, WireType.LengthDelimited).string('linux').tag(10, WireType.LengthDelimited).string('amd64');
  w.tag(3, WireType.LengthDelimited).fork().tag(7, WireType.LengthDelimited).bytes(info.finish()).join();
  return envelope('v1', 'Node', w.finish());
}

/** POSTs a protobuf body; rejects with the status and message when the API server refuses it. */
async function postProtobuf(kc: KubeConfig, path: string, body: Buffer): Promise<void> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(path, cluster.server);
  const options = { method: 'POST', hostname: url.hostname, port: url.port, path: url.pathname, headers: { 'content-type': 'application/vnd.kubernetes.protobuf', accept: 'application/json', 'content-length': body.length } };
  await kc.applyToHTTPSOptions(options);
  await new Promise<void>((resolve, reject) => {
    const req = request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ((res.statusCode ?? 0) < 300 ? resolve() : reject(new Error(`${res.statusCode}: ${Buffer.concat(chunks).toString('utf8')}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** TLS certificates, PEM: real ones built the odd ways, and the malformed ones. */
function certificates(random: () => number): { valid: { what: string; pem: string }[]; malformed: { what: string; crt: Buffer }[] } {
  const now = Date.now();
  const day = 86_400_000;
  const cert = (commonName: string, from: number, to: number, extra: { dnsNames?: string[]; serial?: Uint8Array } = {}): string =>
    selfSignedCertificate({ commonName, notBefore: new Date(from), notAfter: new Date(to), ...(extra.dnsNames ? { dnsNames: extra.dnsNames } : {}), ...(extra.serial ? { serial: extra.serial, serialAsGiven: true } : {}) }).certPem;
  const good = cert('abuse.example', now - day, now + 90 * day);
  const body = good.split('\n').slice(1, -2).join('');
  const der = Buffer.from(body, 'base64');
  const negative = Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0x80 | between(random, 0, 0x7f) : between(random, 0, 255)));
  // ~12,000 subject alternative names: a certificate of some 600 KB, below the 1 MiB a Secret may hold.
  const manyNames = Array.from({ length: 12_000 }, (_, i) => `host-${i}-${'a'.repeat(30)}.abuse.example`);
  const chain = Array.from({ length: 50 }, (_, i) => cert(`chain-${i}.abuse.example`, now - day, now + (90 + i) * day)).join('');
  const pemBlock = (b64: string): string => `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
  return {
    valid: [
      { what: 'a certificate of 600 KB (12,000 names)', pem: cert('huge.abuse.example', now - day, now + 90 * day, { dnsNames: manyNames }) },
      { what: 'a chain of 50 certificates', pem: chain },
      { what: 'a certificate expired for 40 years', pem: cert('old.abuse.example', Date.UTC(1975, 0, 1), Date.UTC(1986, 0, 1)) },
      { what: 'a certificate valid until 9999', pem: cert('forever.abuse.example', now - day, Date.UTC(9999, 11, 31)) },
      { what: 'a certificate with a negative serial number', pem: cert('negative.abuse.example', now - day, now + 90 * day, { serial: negative }) },
      { what: 'a certificate not valid for 30 years yet', pem: cert('future.abuse.example', now + 30 * 365 * day, now + 31 * 365 * day) },
    ],
    malformed: [
      { what: 'a certificate block of garbage', crt: Buffer.from(pemBlock('bm90IGEgY2VydGlmaWNhdGUgYXQgYWxs')) },
      { what: 'a certificate cut in half', crt: Buffer.from(pemBlock(der.subarray(0, Math.floor(der.length / 2)).toString('base64'))) },
      { what: 'a good certificate and then a broken one', crt: Buffer.from(good + pemBlock('////')) },
      { what: 'a private key and no certificate', crt: Buffer.from(selfSignedCertificate({ commonName: 'k', notBefore: new Date(now), notAfter: new Date(now + day) }).keyPem) },
      { what: 'bytes that are not UTF-8', crt: Buffer.concat([INVALID_UTF8, Buffer.from(Array.from({ length: 4096 }, () => between(random, 0, 255)))]) },
      { what: 'an empty tls.crt', crt: Buffer.alloc(0) },
      { what: 'a certificate block with control characters', crt: Buffer.from(pemBlock(`${body.slice(0, 40)}${CONTROL_TEXT}${body.slice(40)}`)) },
    ],
  };
}

/** The whole list, in a seeded order-independent form: sizes and bytes come from `random`. */
export function hostileObjects(o: HostileOptions): HostileObject[] {
  const post = (path: string, body: unknown): Promise<void> => o.transport.json({ method: 'POST', path, body }).then(() => undefined);
  const meta = (name: string, annotations: Record<string, string> = {}): Record<string, unknown> => ({ name, labels: o.label, annotations });
  const pod = (name: string, annotations: Record<string, string>, env: { name: string; value: string }[] = []): Promise<void> =>
    post(`/api/v1/namespaces/${o.namespace}/pods`, {
      metadata: meta(name, annotations),
      spec: { containers: [{ name: 'app', image: 'registry.example/app:1', env }], tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }] },
    });
  const node = (name: string, annotations: Record<string, string>, status: Record<string, unknown> = {}): Promise<void> =>
    post('/api/v1/nodes', { metadata: { ...meta(name, annotations), labels: { ...o.label, type: 'kwok' } }, status: { capacity: { cpu: '4', memory: '16Gi', pods: '110' }, ...status } });
  const event = (name: string, annotations: Record<string, string>, fields: { reason?: string; message?: string } = {}): Promise<void> => {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    return post('/api/v1/namespaces/default/events', {
      metadata: meta(name, annotations),
      involvedObject: { apiVersion: 'v1', kind: 'Node', name: `${o.prefix}-big-node` },
      type: 'Warning',
      reason: fields.reason ?? 'KernelOops',
      message: fields.message ?? 'kernel: BUG: unable to handle page fault',
      source: { component: 'kernel-monitor' },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
  };
  const tlsSecret = (name: string, crt: Buffer): Promise<void> =>
    post(`/api/v1/namespaces/${o.secretNamespace}/secrets`, { metadata: meta(name), type: 'kubernetes.io/tls', data: { 'tls.crt': crt.toString('base64'), 'tls.key': Buffer.from('not a key').toString('base64') } });

  // Sizes vary with the seed; every object stays on its side of its limit.
  const annotationsMax = { 'abuse.example/blob': padding(ANNOTATIONS_LIMIT - 64 - between(o.random, 0, 512)) };
  const megabyte = { 'abuse.example/blob': padding(MiB + between(o.random, 0, 1024)) };
  const envOf = (bytes: number): { name: string; value: string }[] => Array.from({ length: 16 }, (_, i) => ({ name: `BLOB_${i}`, value: padding(Math.floor(bytes / 16)) }));
  const images = (bytes: number): { names: string[]; sizeBytes: number }[] => Array.from({ length: Math.floor(bytes / 1024) }, (_, i) => ({ names: [`registry.abuse.example/${padding(960)}/img-${i}:1`], sizeBytes: 1000 }));
  // etcd takes a request of at most 1.5 MiB (--max-request-bytes): 256 KiB of annotations + at most 1.2 MiB + 16 KiB
  // of body + the object's own fields and managedFields stay ~35 KiB under it whatever the seed draws.
  const nearLimit = 1.2 * MiB + between(o.random, 0, 16 * KiB);
  const p = o.prefix;
  const { valid, malformed } = certificates(o.random);
  const objects: HostileObject[] = [
    // At the limits: annotations at their 256 KiB cap plus a body that brings the object near the 1.5 MiB etcd takes.
    { what: 'a Pod of ~1.4 MiB (256 KiB annotations, 1.2 MiB env)', create: () => pod(`${p}-big-pod`, annotationsMax, envOf(nearLimit)) },
    { what: 'a Node of ~1.4 MiB (256 KiB annotations, 1.2 MiB of image names)', create: () => node(`${p}-big-node`, annotationsMax, { images: images(nearLimit) }) },
    { what: 'an Event with 256 KiB annotations', create: () => event(`${p}-big-event`, annotationsMax) },
    { what: 'a ConfigMap of ~1 MiB', create: () => post(`/api/v1/namespaces/${o.namespace}/configmaps`, { metadata: meta(`${p}-big-cm`, annotationsMax), data: { blob: padding(MiB - 300 * KiB) } }) },
    // Past them: refused by the API server, never seen by the operator.
    { what: 'a Pod with 1 MiB of annotations', create: () => pod(`${p}-mb-pod`, megabyte), refusedNaming: 'metadata.annotations' },
    { what: 'a Node with 1 MiB of annotations', create: () => node(`${p}-mb-node`, megabyte), refusedNaming: 'metadata.annotations' },
    { what: 'an Event with 1 MiB of annotations', create: () => event(`${p}-mb-event`, megabyte), refusedNaming: 'metadata.annotations' },
    { what: 'a Pod of ~2.5 MiB', create: () => pod(`${p}-huge-pod`, {}, envOf(2.5 * MiB)), refusedNaming: 'larger than max' },
    // Strings no one should have to read.
    { what: 'a Pod with control characters in annotations and env', create: () => pod(`${p}-ctl-pod`, { 'abuse.example/notes': CONTROL_TEXT }, [{ name: 'NOTES', value: CONTROL_TEXT }]) },
    { what: 'a Node with control characters in nodeInfo', create: () => node(`${p}-ctl-node`, { 'abuse.example/notes': CONTROL_TEXT }, { nodeInfo: { osImage: CONTROL_TEXT, kernelVersion: CONTROL_TEXT, containerRuntimeVersion: CONTROL_TEXT, kubeletVersion: 'v1.34.4', operatingSystem: 'linux', architecture: 'amd64', machineID: '', systemUUID: CONTROL_TEXT, bootID: '', kubeProxyVersion: '' } }) },
    { what: 'a Warning Event with control characters in reason and message', create: () => event(`${p}-ctl-event`, {}, { reason: 'KernelOops', message: CONTROL_TEXT }) },
    { what: 'a Warning Event of ~1 MiB message', create: () => event(`${p}-long-event`, {}, { message: `kernel: ${padding(MiB)}` }) },
    { what: 'a Warning Event whose reason and message are not UTF-8 (protobuf)', create: () => postProtobuf(o.kc, '/api/v1/namespaces/default/events', protobufNodeEvent(`${p}-utf8-event`, `${p}-utf8-node`, o.label, INVALID_UTF8, INVALID_UTF8)) },
    { what: 'a Node whose osImage and kernelVersion are not UTF-8 (protobuf)', create: () => postProtobuf(o.kc, '/api/v1/nodes', protobufNode(`${p}-utf8-node`, o.label, INVALID_UTF8, INVALID_UTF8)) },
  ];
  valid.forEach((c, i) => objects.push({ what: `a TLS Secret with ${c.what}`, create: () => tlsSecret(`${p}-cert-${i}`, Buffer.from(c.pem)), fingerprint: fingerprintOf(c.pem) }));
  malformed.forEach((c, i) => objects.push({ what: `a TLS Secret with ${c.what}`, create: () => tlsSecret(`${p}-bad-cert-${i}`, c.crt), skipped: true }));
  return objects;
}

