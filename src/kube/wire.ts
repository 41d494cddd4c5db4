// The two encodings of a LIST page and a WATCH stream (JSON and Kubernetes protobuf), chosen by the response's Content-Type.
import type { BinaryReader } from '@bufbuild/protobuf/wire';
import { MalformedResponse } from './errors.js';
import { LineSplitter, parseWatchEvent, type WatchEvent, type WatchEventType } from './json-lines.js';
import { asMalformed, decodeAt, decodeMessage, delimited, field, fields, readerOf, repeated, skip, type FieldSet } from './protobuf.js';
import { asRecord, asString } from './resource.js';
import { parseJsonBody } from './client.js';

/** What the API server names its protobuf encoding; watches answer it with `;stream=watch`. */
export const PROTOBUF = 'application/vnd.kubernetes.protobuf';
/**
 * What to ask for when protobuf is wanted: the server picks protobuf for built-in types and JSON
 * for custom resources (and whatever else it cannot encode in protobuf), so the response's
 * Content-Type decides how it is read.
 */
export const ACCEPT_PROTOBUF = `${PROTOBUF}, application/json`;

// The four bytes before every protobuf object: "k8s\0", then a runtime.Unknown.
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

export function isProtobuf(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.trimStart().startsWith(PROTOBUF);
}

/** The parts of a List response the reflector needs. */
export interface ListPage {
  readonly resourceVersion: string;
  readonly continueToken: string | undefined;
  readonly items: readonly unknown[];
}

/** Reads a JSON List; throws MalformedResponse without metadata.resourceVersion or an items array. */
export function parseListPage(body: unknown): ListPage {
  const list = asRecord(body);
  const meta = asRecord(list?.['metadata']);
  const resourceVersion = asString(meta?.['resourceVersion']);
  const items = list?.['items'];
  // An empty list is sent as "items": null by some servers and aggregated APIs.
  if (resourceVersion === undefined || (items !== null && items !== undefined && !Array.isArray(items))) {
    throw new MalformedResponse('list response has no metadata.resourceVersion or no items array');
  }
  return { resourceVersion, continueToken: asString(meta?.['continue']), items: Array.isArray(items) ? (items as unknown[]) : [] };
}

/**
 * A List page in either encoding. For protobuf, each item is read with `itemFields` only (a
 * sparse object shaped like its JSON); for JSON, items are whole parsed objects.
 */
export function decodeListPage(body: Buffer, contentType: string | undefined, itemFields: FieldSet | undefined): ListPage {
  if (!isProtobuf(contentType)) return parseListPage(parseJsonBody(body));
  if (itemFields === undefined) throw new MalformedResponse(`a ${PROTOBUF} list came back, but no protobuf fields were given`);
  try {
    const [start, end] = unwrap(body, 0, body.length);
    const r = readerOf(body, start, end);
    let resourceVersion: string | undefined;
    let continueToken: string | undefined;
    const items: unknown[] = [];
    while (r.pos < end) {
      const [no, wt] = r.tag();
      if (no === 1) {
        const meta = readListMeta(r, body, wt, end);
        resourceVersion = meta.resourceVersion;
        continueToken = meta.continueToken;
      } else if (no === 2) {
        const [, e] = delimited(r, wt, end);
        items.push(decodeAt(r, body, e, itemFields));
      } else {
        skip(r, wt, end);
      }
    }
    if (resourceVersion === undefined) throw new MalformedResponse('list response has no metadata.resourceVersion');
    return { resourceVersion, continueToken, items };
  } catch (err) {
    throw asMalformed(err);
  }
}

function readListMeta(r: BinaryReader, buf: Buffer, wt: number, limit: number): { resourceVersion: string | undefined; continueToken: string | undefined } {
  const [s, e] = delimited(r, wt, limit);
  const meta = decodeMessage(buf, s, e, LIST_META);
  r.pos = e;
  return { resourceVersion: asString(meta['resourceVersion']), continueToken: asString(meta['continue']) };
}

const LIST_META: FieldSet = fields([
  [2, field('resourceVersion', 'string')],
  [3, field('continue', 'string')],
]);

/**
 * The `[start, end)` of the object inside a `k8s\0` envelope (runtime.Unknown's raw field). Throws
 * MalformedResponse when the bytes do not start with the envelope.
 */
export function unwrap(buf: Buffer, start: number, end: number): [number, number] {
  return unwrapUpTo(buf, start, end, end);
}

/** unwrap, but the object may run past `end` up to `limit` (a page's first bytes: its object is not all there yet). */
function unwrapUpTo(buf: Buffer, start: number, end: number, limit: number): [number, number] {
  if (end - start < MAGIC.length || MAGIC.compare(buf, start, start + MAGIC.length) !== 0) {
    throw new MalformedResponse('protobuf object does not start with the k8s envelope');
  }
  const r = readerOf(buf, start + MAGIC.length, end);
  while (r.pos < end) {
    const [no, wt] = r.tag();
    if (no === 2) return delimited(r, wt, limit);
    skip(r, wt, end);
  }
  throw new MalformedResponse('protobuf envelope holds no object');
}

/**
 * The continue token of a protobuf List from its first bytes (ListMeta is field 1, written before
 * the items): a string, undefined on the last page, null when the prefix does not tell yet.
 */
export function peekContinueProtobuf(prefix: Buffer): string | undefined | null {
  try {
    const [start] = unwrapUpTo(prefix, 0, prefix.length, Number.MAX_SAFE_INTEGER);
    const r = readerOf(prefix, start, prefix.length);
    const [no, wt] = r.tag();
    if (no !== 1) return undefined;
    const [s, e] = delimited(r, wt, prefix.length);
    return asString(decodeMessage(prefix, s, e, LIST_META)['continue']);
  } catch {
    // The prefix ends inside the envelope or the list metadata: not yet known.
    return null;
  }
}

/** Splits a watch body into events. `push` returns what the chunk completed; a malformed frame is returned as its error. */
export interface WatchDecoder {
  push(chunk: Buffer): Array<WatchEvent | MalformedResponse>;
  /** At the end of the body: an unterminated last JSON line, or an error for half a protobuf frame. */
  flush(): Array<WatchEvent | MalformedResponse>;
}

export function watchDecoder(contentType: string | undefined, objectFields: FieldSet | undefined): WatchDecoder {
  if (!isProtobuf(contentType)) return new JsonWatchDecoder();
  if (objectFields === undefined) throw new MalformedResponse(`a ${PROTOBUF} watch came back, but no protobuf fields were given`);
  return new ProtobufWatchDecoder(objectFields);
}

class JsonWatchDecoder implements WatchDecoder {
  private readonly lines = new LineSplitter();

  push(chunk: Buffer): Array<WatchEvent | MalformedResponse> {
    return this.lines.push(chunk).map(parseLine);
  }

  flush(): Array<WatchEvent | MalformedResponse> {
    const tail = this.lines.flush();
    return tail === undefined ? [] : [parseLine(tail)];
  }
}

function parseLine(line: string): WatchEvent | MalformedResponse {
  try {
    return parseWatchEvent(line);
  } catch (err) {
    return asMalformed(err);
  }
}

const TYPES: ReadonlySet<string> = new Set<WatchEventType>(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);
// Frames are a few kB; a length past this is a stream out of step, not an object.
const MAX_FRAME = 64 * 1024 * 1024;

/** Length-prefixed frames (4 bytes, big-endian), each a metav1.WatchEvent whose object is an enveloped object. */
export class ProtobufWatchDecoder implements WatchDecoder {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly objectFields: FieldSet) {}

  push(chunk: Buffer): Array<WatchEvent | MalformedResponse> {
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Array<WatchEvent | MalformedResponse> = [];
    let at = 0;
    while (buf.length - at >= 4) {
      const len = buf.readUInt32BE(at);
      if (len > MAX_FRAME) {
        out.push(new MalformedResponse(`watch frame of ${len} bytes`));
        this.pending = Buffer.alloc(0);
        return out;
      }
      if (buf.length - at - 4 < len) break;
      out.push(this.decodeFrame(buf, at + 4, at + 4 + len));
      at += 4 + len;
    }
    // NOTE: a copy, so a frame's tail does not keep the whole chunk alive.
    this.pending = at === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(at));
    return out;
  }

  flush(): Array<WatchEvent | MalformedResponse> {
    if (this.pending.length === 0) return [];
    this.pending = Buffer.alloc(0);
    return [new MalformedResponse('watch body ends inside a frame')];
  }

  private decodeFrame(buf: Buffer, start: number, end: number): WatchEvent | MalformedResponse {
    try {
      // The API server writes WatchEvents raw; accept an enveloped one too.
      const [s, e] = buf.length - start >= 4 && MAGIC.compare(buf, start, start + 4) === 0 ? unwrap(buf, start, end) : [start, end];
      const r = readerOf(buf, s, e);
      let type: string | undefined;
      let object: [number, number] | undefined;
      while (r.pos < e) {
        const [no, wt] = r.tag();
        if (no === 1) {
          const [ts, te] = delimited(r, wt, e);
          type = buf.toString('utf8', ts, te);
          r.pos = te;
        } else if (no === 2) {
          // RawExtension { raw = 1 }
          const [rs, re] = delimited(r, wt, e);
          const raw = readerOf(buf, rs, re);
          while (raw.pos < re) {
            const [rno, rwt] = raw.tag();
            if (rno === 1) {
              object = delimited(raw, rwt, re);
              raw.pos = object[1];
            } else skip(raw, rwt, re);
          }
          r.pos = re;
        } else {
          skip(r, wt, e);
        }
      }
      if (type === undefined || !TYPES.has(type)) return new MalformedResponse(`unknown watch event type ${String(type)}`);
      if (object === undefined) return new MalformedResponse(`watch event ${type} has no object`);
      const [os, oe] = unwrap(buf, object[0], object[1]);
      const set = type === 'ERROR' ? STATUS : this.objectFields;
      return { type: type as WatchEventType, object: decodeMessage(buf, os, oe, set) };
    } catch (err) {
      return asMalformed(err);
    }
  }
}

/** metav1.Status as parseStatus reads it. */
const STATUS: FieldSet = fields([
  [2, field('status', 'string')],
  [3, field('message', 'string')],
  [4, field('reason', 'string')],
  [
    5,
    field(
      'details',
      fields([
        [4, repeated('causes', fields([[1, field('reason', 'string')]]))],
        [5, field('retryAfterSeconds', 'int')],
      ]),
    ),
  ],
  [6, field('code', 'int')],
]);
