// Test-only protobuf encoder for the few Pod fields the reflector tests script, in the API server's framing (k8s\0 envelope, length-prefixed watch frames).
import { BinaryWriter } from '@bufbuild/protobuf/wire';

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type Json = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const rec = (v: unknown): Json => (typeof v === 'object' && v !== null ? (v as Json) : {});

/** ObjectMeta: name 1, namespace 3, uid 5, resourceVersion 6, labels 11. */
function writeMeta(w: BinaryWriter, meta: Json): void {
  for (const [no, key] of [
    [1, 'name'],
    [3, 'namespace'],
    [5, 'uid'],
    [6, 'resourceVersion'],
  ] as const) {
    const v = str(meta[key]);
    if (v !== undefined) w.tag(no, 2).string(v);
  }
  for (const [k, v] of Object.entries(rec(meta['labels']))) {
    w.tag(11, 2).fork().tag(1, 2).string(k).tag(2, 2).string(String(v)).join();
  }
}

/** A Pod: metadata 1, spec 2 (nodeName 10, plus a container the reader must skip), status 3 (phase 1). */
export function encodePod(pod: unknown): Uint8Array {
  const o = rec(pod);
  const w = new BinaryWriter();
  w.tag(1, 2).fork();
  writeMeta(w, rec(o['metadata']));
  w.join();
  const nodeName = str(rec(o['spec'])['nodeName']);
  // containers (field 2 of PodSpec): bytes nobody asked for.
  w.tag(2, 2).fork().tag(2, 2).fork().tag(1, 2).string('app').tag(2, 2).string('registry.example/app:1').join();
  if (nodeName !== undefined) w.tag(10, 2).string(nodeName);
  w.join();
  const phase = str(rec(o['status'])['phase']);
  if (phase !== undefined) w.tag(3, 2).fork().tag(1, 2).string(phase).join();
  return w.finish();
}

/** metav1.Status: status 2, message 3, reason 4, code 6. */
export function encodeStatus(status: unknown): Uint8Array {
  const o = rec(status);
  const w = new BinaryWriter();
  w.tag(2, 2).string(str(o['status']) ?? 'Failure');
  w.tag(3, 2).string(str(o['message']) ?? '');
  w.tag(4, 2).string(str(o['reason']) ?? '');
  if (typeof o['code'] === 'number') w.tag(6, 0).int32(o['code']);
  return w.finish();
}

/** `k8s\0` + runtime.Unknown { typeMeta 1 { apiVersion 1, kind 2 }, raw 2 }. */
export function envelope(kind: string, raw: Uint8Array): Buffer {
  const w = new BinaryWriter();
  w.tag(1, 2).fork().tag(1, 2).string('v1').tag(2, 2).string(kind).join();
  w.tag(2, 2).bytes(raw);
  return Buffer.concat([MAGIC, w.finish()]);
}

/** A PodList page in its envelope: ListMeta 1 { resourceVersion 2, continue 3 }, items 2. */
export function encodePodList(rv: string, items: readonly unknown[], cont?: string): Buffer {
  const w = new BinaryWriter();
  w.tag(1, 2).fork().tag(2, 2).string(rv);
  if (cont !== undefined) w.tag(3, 2).string(cont);
  w.join();
  for (const item of items) w.tag(2, 2).bytes(encodePod(item));
  return envelope('PodList', w.finish());
}

/** One watch frame: 4-byte length, then a raw WatchEvent { type 1, object 2 { raw 1: enveloped object } }. */
export function encodeWatchFrame(type: string, object: unknown): Buffer {
  const raw = type === 'ERROR' ? envelope('Status', encodeStatus(object)) : envelope('Pod', encodePod(object));
  const w = new BinaryWriter();
  w.tag(1, 2).string(type);
  w.tag(2, 2).fork().tag(1, 2).bytes(raw).join();
  const event = w.finish();
  const len = Buffer.alloc(4);
  len.writeUInt32BE(event.length);
  return Buffer.concat([len, event]);
}
