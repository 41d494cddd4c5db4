// List pages: every item of a LIST page by page, and pages fetched ahead (the continue token read from a page's first bytes, a fetch that can be cancelled).
import { expect } from 'chai';
import type { KubeRequest, KubeTransport, ResponseStream } from '../../src/kube/client.js';
import { fetchPage, listAll, peekContinue } from '../../src/kube/pager.js';

const page = (cont: string | undefined): string =>
  JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '42', ...(cont !== undefined ? { continue: cont } : {}), remainingItemCount: 3 }, items: [{ metadata: { name: 'a' } }] });

/** A transport whose single response yields the given chunks, then waits for `release` before ending. */
function slowTransport(chunks: string[]): { transport: KubeTransport; release: () => void; signals: AbortSignal[] } {
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  const signals: AbortSignal[] = [];
  const transport: KubeTransport = {
    async stream(req: KubeRequest): Promise<ResponseStream> {
      const signal = req.signal ?? new AbortController().signal;
      signals.push(signal);
      return {
        statusCode: 200,
        close: () => undefined,
        async *[Symbol.asyncIterator]() {
          const [first, ...rest] = chunks;
          if (first !== undefined) yield Buffer.from(first);
          await Promise.race([
            released,
            new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('cancelled')), { once: true })),
          ]);
          for (const c of rest) yield Buffer.from(c);
        },
      };
    },
    json: () => Promise.reject(new Error('not used')),
  };
  return { transport, release, signals };
}

describe('list pages fetched ahead', function () {
  it('reads the continue token from the first bytes of a page', function () {
    const body = Buffer.from(page('tok-1'));
    const head = body.subarray(0, body.indexOf('"items"') + 9);
    expect(peekContinue(head)).to.equal('tok-1');
  });

  it('tells the last page by its missing continue token', function () {
    expect(peekContinue(Buffer.from(page(undefined)))).to.equal(undefined);
  });

  it('cannot tell before the items begin, or when metadata does not come first', function () {
    const body = page('tok');
    expect(peekContinue(Buffer.from(body.slice(0, 40)))).to.equal(null);
    expect(peekContinue(Buffer.from('{"items":[],"metadata":{"continue":"x"}}'))).to.equal(null);
  });

  it('knows the next token while the page body is still arriving', async function () {
    const body = page('tok-2');
    const cut = body.indexOf('"items"') + 10;
    const { transport, release } = slowTransport([body.slice(0, cut), body.slice(cut)]);
    const f = fetchPage(transport, { path: '/api/v1/pods', query: { limit: 500 } }, 'tok-1');
    expect(await f.next).to.equal('tok-2');
    let complete = false;
    void f.body.then(() => (complete = true));
    await new Promise((r) => setImmediate(r));
    expect(complete, 'the body is not complete yet').to.equal(false);
    release();
    expect(JSON.parse((await f.body).toString('utf8'))).to.deep.include({ kind: 'PodList' });
  });

  it('asks with the continue token it was given', async function () {
    const seen: Array<Record<string, unknown>> = [];
    const transport: KubeTransport = {
      async stream(req) {
        seen.push({ ...req.query });
        return { statusCode: 200, close: () => undefined, async *[Symbol.asyncIterator]() { yield Buffer.from(page(undefined)); } };
      },
      json: () => Promise.reject(new Error('not used')),
    };
    await fetchPage(transport, { path: '/api/v1/pods', query: { limit: 500 } }, 'tok-9').body;
    expect(seen).to.deep.equal([{ limit: 500, continue: 'tok-9' }]);
  });

  it('aborts its request when cancelled or when the caller\'s signal aborts, and never leaves a rejection unhandled', async function () {
    const { transport, signals } = slowTransport([page('x').slice(0, 10)]);
    const f = fetchPage(transport, { path: '/p' }, undefined);
    await new Promise((r) => setImmediate(r));
    f.cancel();
    expect(signals[0]?.aborted).to.equal(true);
    expect(await f.next).to.equal(null);

    const outer = new AbortController();
    const g = fetchPage(transport, { path: '/p', signal: outer.signal }, undefined);
    await new Promise((r) => setImmediate(r));
    outer.abort();
    expect(signals[1]?.aborted).to.equal(true);
    let failed = false;
    await g.body.catch(() => (failed = true));
    expect(failed).to.equal(true);
  });
});

describe('every item of a list, page by page', function () {
  /** A transport answering LISTs from `pages` in order, each page's continue token naming the next. */
  function pagedTransport(pages: unknown[][]): { transport: KubeTransport; requests: KubeRequest[] } {
    const requests: KubeRequest[] = [];
    const transport: KubeTransport = {
      stream: () => Promise.reject(new Error('not used')),
      json(req) {
        requests.push(req);
        const at = req.query?.['continue'] === undefined ? 0 : Number(req.query['continue']);
        const more = at + 1 < pages.length ? { continue: String(at + 1) } : {};
        return Promise.resolve({ kind: 'List', metadata: { resourceVersion: '7', ...more }, items: pages[at] ?? [] });
      },
    };
    return { transport, requests };
  }

  it('yields the items of every page in order, asking each with the previous continue token', async function () {
    const { transport, requests } = pagedTransport([[1, 2], [3], [4, 5]]);
    const seen: unknown[] = [];
    for await (const item of listAll(transport, '/api/v1/pods')) seen.push(item);
    expect(seen).to.deep.equal([1, 2, 3, 4, 5]);
    expect(requests.map((r) => r.query)).to.deep.equal([
      { limit: 500, continue: undefined },
      { limit: 500, continue: '1' },
      { limit: 500, continue: '2' },
    ]);
  });

  it('keeps the caller\'s query and signal on every page, with the page size it was given', async function () {
    const { transport, requests } = pagedTransport([[1], [2]]);
    const signal = new AbortController().signal;
    const seen: unknown[] = [];
    for await (const item of listAll(transport, '/api/v1/secrets', { query: { fieldSelector: 'type=kubernetes.io/tls' }, signal, pageSize: 100 })) seen.push(item);
    expect(seen).to.deep.equal([1, 2]);
    expect(requests.map((r) => r.query)).to.deep.equal([
      { fieldSelector: 'type=kubernetes.io/tls', limit: 100, continue: undefined },
      { fieldSelector: 'type=kubernetes.io/tls', limit: 100, continue: '1' },
    ]);
    expect(requests.every((r) => r.signal === signal && r.path === '/api/v1/secrets')).to.equal(true);
  });

  it('ends at a page whose continue token is empty instead of asking again with it', async function () {
    const requests: KubeRequest[] = [];
    const transport: KubeTransport = {
      stream: () => Promise.reject(new Error('not used')),
      json(req) {
        requests.push(req);
        const first = req.query?.['continue'] === undefined;
        return Promise.resolve({ kind: 'List', metadata: { continue: first ? '1' : '' }, items: [first ? 1 : 2] });
      },
    };
    const seen: unknown[] = [];
    for await (const item of listAll(transport, '/api/v1/pods')) seen.push(item);
    expect(seen).to.deep.equal([1, 2]);
    expect(requests.map((r) => r.query?.['continue'])).to.deep.equal([undefined, '1']);
  });

  it('ends after a page without items or continue token', async function () {
    const requests: KubeRequest[] = [];
    const transport: KubeTransport = {
      stream: () => Promise.reject(new Error('not used')),
      json(req) {
        requests.push(req);
        return Promise.resolve({ kind: 'List', metadata: {} });
      },
    };
    const seen: unknown[] = [];
    for await (const item of listAll(transport, '/api/v1/nodes')) seen.push(item);
    expect(seen).to.deep.equal([]);
    expect(requests).to.have.length(1);
  });
});
