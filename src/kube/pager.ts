// Paging a LIST: every item page by page, and one page request whose body is read eagerly and whose continue token is read from its first bytes.
import type { KubeRequest, KubeTransport, QueryValue } from './client.js';
import { asRecord, asString } from './resource.js';
import { isProtobuf, peekContinueProtobuf } from './wire.js';

/** Items per LIST page: a large list is read in pages, never as one huge response. */
export const LIST_PAGE_SIZE = 500;

export interface ListAllOptions {
  /** Selectors and the like; `limit` and `continue` are the pager's. */
  readonly query?: Readonly<Record<string, QueryValue>>;
  readonly signal?: AbortSignal;
  /** Items per page. @default LIST_PAGE_SIZE */
  readonly pageSize?: number;
}

/** Every item of a LIST at `path`, page by page: one page is held at a time, so a large cluster is read in bounded memory. */
export async function* listAll(transport: KubeTransport, path: string, options: ListAllOptions = {}): AsyncGenerator<unknown> {
  const { query, signal, pageSize = LIST_PAGE_SIZE } = options;
  let token: string | undefined;
  do {
    const page = asRecord(await transport.json({ path, query: { ...query, limit: pageSize, continue: token }, signal }));
    const items = page?.['items'];
    if (Array.isArray(items)) yield* items;
    // The last page has no continue token, or an empty one, which asString reads as none.
    token = asString(asRecord(page?.['metadata'])?.['continue']);
  } while (token !== undefined);
}

const ITEMS = Buffer.from('"items":');
// The list metadata is a few hundred bytes; past this, stop looking for it.
const PEEK_LIMIT = 64 * 1024;

/**
 * The continue token of a List from the first bytes of its JSON: a string, undefined when the
 * page is the last, or null when it cannot be told yet (or at all) from `prefix`. The API server
 * writes `metadata` before `items`, so the token is known long before the page is complete.
 */
export function peekContinue(prefix: Buffer): string | undefined | null {
  const at = prefix.indexOf(ITEMS);
  if (at === -1) return null;
  let head = prefix.toString('utf8', 0, at).trimEnd();
  if (head.endsWith(',')) head = head.slice(0, -1);
  try {
    const meta = asRecord(asRecord(JSON.parse(`${head}}`))?.['metadata']);
    return meta === undefined ? null : asString(meta['continue']);
  } catch {
    return null;
  }
}

/**
 * A page being fetched. Its body is read as fast as it arrives (not when someone asks), so a
 * page requested ahead of its turn is transferred while the previous one is parsed; that overlap
 * is what makes a paged sync about as fast as one big list without holding the whole list.
 */
export interface PageFetch {
  /** The continue token this page was asked with (undefined for a first page). */
  readonly token: string | undefined;
  /** This page's own continue token as soon as its first bytes tell it; null if they did not. Never rejects. */
  readonly next: Promise<string | undefined | null>;
  /** The whole body; rejects with the request's typed error. */
  readonly body: Promise<Buffer>;
  /** The response's Content-Type, once the body has resolved. */
  contentType(): string | undefined;
  /** Abandons the request and closes its connection. */
  cancel(): void;
}

/** Starts a page request at once. `req.signal` stops it too. */
export function fetchPage(transport: KubeTransport, req: KubeRequest, token: string | undefined): PageFetch {
  const ctl = new AbortController();
  const outer = req.signal;
  const onAbort = (): void => ctl.abort(outer?.reason);
  if (outer?.aborted === true) ctl.abort(outer.reason);
  else outer?.addEventListener('abort', onAbort, { once: true });
  let tellNext: (t: string | undefined | null) => void = () => undefined;
  const next = new Promise<string | undefined | null>((resolve) => (tellNext = resolve));
  let contentType: string | undefined;
  const body = (async (): Promise<Buffer> => {
    try {
      const res = await transport.stream({ ...req, query: { ...req.query, continue: token }, signal: ctl.signal });
      contentType = res.contentType;
      const peek = isProtobuf(contentType) ? peekContinueProtobuf : peekContinue;
      const chunks: Buffer[] = [];
      let size = 0;
      let peeking = true;
      for await (const chunk of res) {
        chunks.push(chunk);
        size += chunk.length;
        if (peeking) {
          const found = peek(chunks.length === 1 ? chunk : Buffer.concat(chunks));
          if (found !== null || size > PEEK_LIMIT) {
            peeking = false;
            tellNext(found);
          }
        }
      }
      return Buffer.concat(chunks, size);
    } finally {
      tellNext(null);
      outer?.removeEventListener('abort', onAbort);
    }
  })();
  // A page fetched ahead may be cancelled and never awaited; its rejection is not an unhandled one.
  body.catch(() => undefined);
  return { token, next, body, contentType: () => contentType, cancel: () => ctl.abort(new Error('page no longer needed')) };
}
