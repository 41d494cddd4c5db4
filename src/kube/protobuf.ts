// A selective protobuf reader for Kubernetes objects: walks only the fields a projection names and skips the rest by length.
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { MalformedResponse } from './errors.js';

/*
 * The API server's protobuf encoding (k8s.io/api/.../generated.proto) is read here without generated
 * code: a projection names the field numbers it needs (FieldSet) and the reader builds a sparse
 * object shaped like the JSON of the same object, so the JSON path's projection functions run on it
 * unchanged. Every field not named is skipped by its length without being decoded or copied.
 */

/** How a named scalar is turned into its JSON value. */
export type Scalar =
  | 'string'
  | 'bool'
  | 'int'
  /** bytes, as JSON writes them: base64. */
  | 'base64'
  /** metav1.Time {seconds, nanos} → RFC 3339 at seconds; the zero time → absent (JSON null). */
  | 'time'
  /** metav1.MicroTime → RFC 3339 with microseconds; the zero time → absent. */
  | 'microtime'
  /** resource.Quantity {string} → its string. */
  | 'quantity';

export interface Field {
  /** The JSON name the value gets. */
  readonly name: string;
  /** A scalar, or the fields to read of a nested message. */
  readonly type: Scalar | FieldSet;
  /** A repeated field: the values become an array. */
  readonly repeated?: boolean;
  /** A map<string, type> field: entries become an object; with `keys`, only those keys are read. */
  readonly map?: boolean;
  readonly keys?: ReadonlySet<string>;
}

/** The fields to read of one message, by field number. */
export type FieldSet = ReadonlyMap<number, Field>;

export const field = (name: string, type: Scalar | FieldSet): Field => ({ name, type });
export const repeated = (name: string, type: Scalar | FieldSet): Field => ({ name, type, repeated: true });
export const map = (name: string, type: Scalar | FieldSet, keys?: readonly string[]): Field => ({
  name,
  type,
  map: true,
  ...(keys !== undefined ? { keys: new Set(keys) } : {}),
});
export const fields = (entries: ReadonlyArray<readonly [number, Field]>): FieldSet => new Map(entries);

/** ObjectMeta's identity (what the cache key, the resourceVersion and most projections need) plus `extra`. */
export function objectMeta(extra: ReadonlyArray<readonly [number, Field]> = []): FieldSet {
  return fields([
    [1, field('name', 'string')],
    [3, field('namespace', 'string')],
    [5, field('uid', 'string')],
    [6, field('resourceVersion', 'string')],
    ...extra,
  ]);
}

/** A top-level object (Pod, Node, ...): metadata is field 1 in every Kubernetes type; `rest` are its other fields. */
export function objectFields(meta: FieldSet, rest: ReadonlyArray<readonly [number, Field]> = []): FieldSet {
  return fields([[1, field('metadata', meta)], ...rest]);
}

// 0001-01-01T00:00:00Z, Go's zero time: JSON writes it as null.
const ZERO_TIME_SECONDS = -62135596800;

/**
 * Reads one message of `buf[start, end)` into a sparse object of the named fields. Throws
 * MalformedResponse on bytes that are not protobuf. Strings are decoded from `buf` directly.
 */
export function decodeMessage(buf: Buffer, start: number, end: number, set: FieldSet): Record<string, unknown> {
  const r = readerOf(buf, start, end);
  try {
    return readFields(r, buf, end, set);
  } catch (err) {
    throw asMalformed(err);
  }
}

/** Like decodeMessage, on a reader already at the message's first byte (one reader for a whole list). */
export function decodeAt(r: BinaryReader, buf: Buffer, end: number, set: FieldSet): Record<string, unknown> {
  return readFields(r, buf, end, set);
}

export function asMalformed(err: unknown): MalformedResponse {
  if (err instanceof MalformedResponse) return err;
  return new MalformedResponse(`protobuf: ${err instanceof Error ? err.message : String(err)}`);
}

/** A reader over `buf` positioned at `start`; it cannot read past `end`. One reader serves a whole message tree. */
export function readerOf(buf: Buffer, start: number, end: number): BinaryReader {
  const r = new BinaryReader(end === buf.length ? buf : buf.subarray(0, end));
  r.pos = start;
  return r;
}

function readFields(r: BinaryReader, buf: Buffer, end: number, set: FieldSet): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  while (r.pos < end) {
    const [no, wt] = r.tag();
    const f = set.get(no);
    if (f === undefined) {
      skip(r, wt, end);
      continue;
    }
    if (f.map === true) {
      readMapEntry(r, buf, wt, end, f, out);
      continue;
    }
    const value = readValue(r, buf, wt, end, f.type);
    if (value === undefined) continue;
    if (f.repeated === true) {
      const list = out[f.name];
      if (Array.isArray(list)) list.push(value);
      else out[f.name] = [value];
    } else {
      out[f.name] = value;
    }
  }
  if (r.pos !== end) throw new MalformedResponse('protobuf: a field runs past the end of its message');
  return out;
}

/** Skips a field by its length: nothing of it is decoded or copied. */
export function skip(r: BinaryReader, wt: WireType, end: number): void {
  if (wt === WireType.LengthDelimited) {
    const len = r.uint32();
    r.pos += len;
    if (r.pos > end) throw new MalformedResponse('protobuf: a field runs past the end of its message');
    return;
  }
  r.skip(wt);
}

/** The bounds [start, end) of the length-delimited field the reader is at; the reader stays at its start. */
export function delimited(r: BinaryReader, wt: WireType, limit: number): [number, number] {
  if (wt !== WireType.LengthDelimited) throw new MalformedResponse(`protobuf: expected a length-delimited field, got wire type ${wt}`);
  const len = r.uint32();
  const start = r.pos;
  const end = start + len;
  if (end > limit) throw new MalformedResponse('protobuf: a field runs past the end of its message');
  return [start, end];
}

function readValue(r: BinaryReader, buf: Buffer, wt: WireType, limit: number, type: Scalar | FieldSet): unknown {
  if (typeof type !== 'string') {
    const [, e] = delimited(r, wt, limit);
    return readFields(r, buf, e, type);
  }
  switch (type) {
    case 'string': {
      const [s, e] = delimited(r, wt, limit);
      r.pos = e;
      return buf.toString('utf8', s, e);
    }
    case 'base64': {
      const [s, e] = delimited(r, wt, limit);
      r.pos = e;
      return buf.toString('base64', s, e);
    }
    case 'bool':
      expectVarint(wt);
      return r.bool();
    case 'int':
      expectVarint(wt);
      return Number(r.int64());
    case 'quantity': {
      const [, e] = delimited(r, wt, limit);
      return readFields(r, buf, e, QUANTITY)['string'];
    }
    case 'time':
    case 'microtime': {
      const [, e] = delimited(r, wt, limit);
      const t = readFields(r, buf, e, TIME);
      // The zero time is written as an empty message (metav1.Time.Marshal); JSON writes it as null.
      if (t['seconds'] === undefined && t['nanos'] === undefined) return undefined;
      const seconds = typeof t['seconds'] === 'number' ? t['seconds'] : 0;
      const nanos = typeof t['nanos'] === 'number' ? t['nanos'] : 0;
      if (seconds === ZERO_TIME_SECONDS && nanos === 0) return undefined;
      return formatTime(seconds, type === 'microtime' ? nanos : undefined);
    }
  }
}

const QUANTITY: FieldSet = fields([[1, field('string', 'string')]]);
const TIME: FieldSet = fields([
  [1, field('seconds', 'int')],
  [2, field('nanos', 'int')],
]);

/** metav1.Time's JSON (RFC 3339, UTC, seconds) or MicroTime's (six fractional digits) when `nanos` is given. */
export function formatTime(seconds: number, nanos?: number): string {
  const iso = new Date(seconds * 1000).toISOString().slice(0, 19);
  if (nanos === undefined) return `${iso}Z`;
  return `${iso}.${String(Math.floor(nanos / 1000)).padStart(6, '0')}Z`;
}

function expectVarint(wt: WireType): void {
  if (wt !== WireType.Varint) throw new MalformedResponse(`protobuf: expected a varint, got wire type ${wt}`);
}

/** One map entry {key = 1, value = 2}: the value is decoded only when its key is wanted. */
function readMapEntry(r: BinaryReader, buf: Buffer, wt: WireType, limit: number, f: Field, out: Record<string, unknown>): void {
  const [, e] = delimited(r, wt, limit);
  let key = '';
  let valueAt = -1;
  let valueType = WireType.LengthDelimited;
  while (r.pos < e) {
    const [no, t] = r.tag();
    if (no === 1) {
      const [ks, ke] = delimited(r, t, e);
      r.pos = ke;
      key = buf.toString('utf8', ks, ke);
    } else {
      if (no === 2) {
        valueAt = r.pos;
        valueType = t;
      }
      skip(r, t, e);
    }
  }
  if (r.pos !== e) throw new MalformedResponse('protobuf: a map entry runs past its end');
  if (f.keys !== undefined && !f.keys.has(key)) return;
  const target = (out[f.name] ??= {}) as Record<string, unknown>;
  if (valueAt === -1) {
    // An absent value is its type's zero value.
    target[key] = typeof f.type === 'string' ? (f.type === 'bool' ? false : f.type === 'int' ? 0 : '') : {};
    return;
  }
  r.pos = valueAt;
  target[key] = readValue(r, buf, valueType, e, f.type);
  r.pos = e;
}
