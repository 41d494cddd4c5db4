// The watch body parser: whole events out of arbitrary chunks, and refusal of what is not a watch event.
import { expect } from 'chai';
import { LineSplitter, parseWatchEvent } from '../../src/kube/json-lines.js';
import { MalformedResponse } from '../../src/kube/errors.js';

function feed(splitter: LineSplitter, chunks: Buffer[]): string[] {
  const out: string[] = [];
  for (const c of chunks) out.push(...splitter.push(c));
  return out;
}

/** Cuts a buffer into pieces at the given byte offsets. */
function cut(buf: Buffer, offsets: number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let start = 0;
  for (const o of [...offsets, buf.length]) {
    pieces.push(buf.subarray(start, o));
    start = o;
  }
  return pieces;
}

const ev = (type: string, name: string, rv: string): string =>
  JSON.stringify({ type, object: { metadata: { name, namespace: 'default', resourceVersion: rv } } });

describe('watch stream parsing', function () {
  it('returns every line of a chunk that holds several events', function () {
    const body = Buffer.from(`${ev('ADDED', 'a', '1')}\n${ev('MODIFIED', 'a', '2')}\n`);
    expect(feed(new LineSplitter(), [body]).map((l) => parseWatchEvent(l).type)).to.deep.equal(['ADDED', 'MODIFIED']);
  });

  it('yields the same events whatever the chunk boundaries', function () {
    const text = `${ev('ADDED', 'a', '1')}\n${ev('BOOKMARK', 'b', '2')}\n${ev('DELETED', 'c', '3')}\n`;
    const body = Buffer.from(text);
    const expected = text.split('\n').filter((l) => l !== '');
    // Every single cut point, and a byte-by-byte feed.
    for (let i = 1; i < body.length; i++) {
      expect(feed(new LineSplitter(), cut(body, [i])), `cut at ${i}`).to.deep.equal(expected);
    }
    const bytes = [...body].map((b) => Buffer.from([b]));
    expect(feed(new LineSplitter(), bytes)).to.deep.equal(expected);
  });

  it('decodes a multi-byte character split across two chunks', function () {
    const line = ev('ADDED', 'café-日本', '7');
    const body = Buffer.from(`${line}\n`);
    const at = body.indexOf(Buffer.from('日')) + 1; // inside the 3-byte sequence
    const lines = feed(new LineSplitter(), cut(body, [at]));
    expect(lines).to.deep.equal([line]);
    const parsed = parseWatchEvent(lines[0] ?? '');
    expect((parsed.object as { metadata: { name: string } }).metadata.name).to.equal('café-日本');
  });

  it('holds an unterminated line until its newline arrives, and flushes it at the end of the body', function () {
    const s = new LineSplitter();
    expect(s.push(Buffer.from('{"type":"ADD'))).to.deep.equal([]);
    expect(s.push(Buffer.from('ED","object":{}}'))).to.deep.equal([]);
    expect(s.flush()).to.equal('{"type":"ADDED","object":{}}');
    expect(s.flush()).to.equal(undefined);
  });

  it('ignores empty lines and carriage returns', function () {
    const lines = feed(new LineSplitter(), [Buffer.from(`\n\r\n${ev('ADDED', 'a', '1')}\r\n\n`)]);
    expect(lines).to.deep.equal([ev('ADDED', 'a', '1')]);
  });

  it('refuses a line that is not JSON, has an unknown type or no object', function () {
    expect(() => parseWatchEvent('{"type":"ADDED","object":')).to.throw(MalformedResponse);
    expect(() => parseWatchEvent('{"type":"CHANGED","object":{}}')).to.throw(MalformedResponse, /unknown watch event type/);
    expect(() => parseWatchEvent('{"type":"ADDED"}')).to.throw(MalformedResponse, /no object/);
    expect(() => parseWatchEvent('[1,2]')).to.throw(MalformedResponse);
  });

  it('reads an ERROR event with its Status object', function () {
    const e = parseWatchEvent('{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (5)"}}');
    expect(e.type).to.equal('ERROR');
    expect((e.object as { code: number }).code).to.equal(410);
  });
});
