// The protobuf reader on bytes captured from a real API server (hack/capture-wire-fixtures.ts): the same projections as the JSON path, field by field.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { NAMESPACE_FIELDS, NODE_FIELDS, POD_FIELDS, projectNamespace, projectNode, projectPod } from '../../src/collectors/projections.js';
import { errorFromStatus, Gone, MalformedResponse, parseStatus } from '../../src/kube/errors.js';
import type { WatchEvent } from '../../src/kube/json-lines.js';
import { EVENT_FIELDS, projectEvent, projectTlsSecret, TLS_SECRET_FIELDS } from '../../src/kube/projections.js';
import type { FieldSet } from '../../src/kube/protobuf.js';
import { objectKey, resourceVersionOf } from '../../src/kube/resource.js';
import { decodeListPage, peekContinueProtobuf, PROTOBUF, watchDecoder } from '../../src/kube/wire.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/wire');
const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, name));

interface Case {
  readonly name: string;
  readonly fields: FieldSet;
  readonly project: (obj: unknown) => unknown;
}

const CASES: readonly Case[] = [
  { name: 'pods', fields: POD_FIELDS, project: projectPod },
  { name: 'nodes', fields: NODE_FIELDS, project: projectNode },
  { name: 'namespaces', fields: NAMESPACE_FIELDS, project: projectNamespace },
  { name: 'events', fields: EVENT_FIELDS, project: projectEvent },
  { name: 'secrets', fields: TLS_SECRET_FIELDS, project: projectTlsSecret },
];

function projected(items: readonly unknown[], project: (obj: unknown) => unknown): Map<string, unknown> {
  return new Map(items.map((item) => [objectKey(item) ?? '', project(item)]));
}

/** Feeds a body to a watch decoder in chunks cut at `cuts`, as a socket might deliver it. */
function decodeWatch(body: Buffer, contentType: string, fields: FieldSet, cuts: readonly number[] = []): Array<WatchEvent | MalformedResponse> {
  const d = watchDecoder(contentType, fields);
  const out: Array<WatchEvent | MalformedResponse> = [];
  let at = 0;
  for (const cut of [...cuts, body.length]) {
    out.push(...d.push(body.subarray(at, cut)));
    at = cut;
  }
  out.push(...d.flush());
  return out;
}

function events(xs: Array<WatchEvent | MalformedResponse>): WatchEvent[] {
  for (const x of xs) if (x instanceof Error) throw x;
  return xs as WatchEvent[];
}

describe('protobuf reader on captured API server bytes', function () {
  for (const c of CASES) {
    it(`${c.name}: a protobuf list gives the same projections as its JSON, field by field`, function () {
      const pb = decodeListPage(fixture(`${c.name}.list.pb`), PROTOBUF, c.fields);
      const json = decodeListPage(fixture(`${c.name}.list.json`), 'application/json', undefined);
      expect(pb.resourceVersion).to.equal(json.resourceVersion);
      expect(pb.items.length, 'the fixture holds objects').to.be.greaterThan(0);
      const fromPb = projected(pb.items, c.project);
      const fromJson = projected(json.items, c.project);
      expect([...fromPb.keys()]).to.deep.equal([...fromJson.keys()]);
      for (const [key, value] of fromJson) {
        expect(value, `${c.name} ${key} projects`).to.not.equal(undefined);
        expect(fromPb.get(key), `${c.name} ${key}`).to.deep.equal(value);
      }
    });
  }

  it('reads only the named fields: a Pod keeps no containers, a TLS Secret never its key', function () {
    const pod = decodeListPage(fixture('pods.list.pb'), PROTOBUF, POD_FIELDS).items[0] as Record<string, Record<string, unknown>>;
    expect(Object.keys(pod)).to.have.members(['metadata', 'spec', 'status']);
    expect(Object.keys(pod['spec'] ?? {})).to.deep.equal(['nodeName']);
    expect(Object.keys(pod['metadata'] ?? {})).to.have.members(['name', 'namespace', 'uid', 'resourceVersion']);
    const secrets = decodeListPage(fixture('secrets.list.pb'), PROTOBUF, TLS_SECRET_FIELDS).items as Array<{ data?: Record<string, unknown> }>;
    for (const s of secrets) expect(Object.keys(s.data ?? {})).to.deep.equal(['tls.crt']);
  });

  it('tells the continue token from the first bytes of a page, and never a wrong one from fewer', function () {
    const page = fixture('pods.page1.pb');
    const token = decodeListPage(page, PROTOBUF, POD_FIELDS).continueToken;
    expect(token).to.be.a('string').and.not.equal('');
    expect(peekContinueProtobuf(page)).to.equal(token);
    let firstKnown = -1;
    for (let n = 0; n < page.length; n++) {
      const peeked = peekContinueProtobuf(page.subarray(0, n));
      expect([null, token], `prefix of ${n} bytes`).to.include(peeked);
      if (peeked !== null && firstKnown === -1) firstKnown = n;
    }
    expect(firstKnown, 'known long before the page ends').to.be.within(1, 400);
    // The last page names no successor.
    expect(peekContinueProtobuf(fixture('pods.list.pb'))).to.equal(undefined);
  });

  it('a protobuf watch gives the JSON watch\'s events (types, versions, projections), whatever the chunk boundaries', function () {
    const json = events(decodeWatch(fixture('pods.watch.json'), 'application/json', POD_FIELDS));
    const body = fixture('pods.watch.pb');
    const types = json.map((e) => e.type);
    expect(types).to.include.members(['ADDED', 'BOOKMARK', 'MODIFIED', 'DELETED']);
    const cutsList: number[][] = [[], [1], [2, 3, 5, 7], Array.from({ length: Math.floor(body.length / 97) }, (_, i) => (i + 1) * 97)];
    for (let i = 1; i < Math.min(body.length, 300); i++) cutsList.push([i]);
    for (const cuts of cutsList) {
      const pb = events(decodeWatch(body, `${PROTOBUF};stream=watch`, POD_FIELDS, cuts));
      expect(pb.map((e) => e.type), `cuts ${cuts.join(',')}`).to.deep.equal(types);
      pb.forEach((e, i) => {
        const j = json[i];
        expect(resourceVersionOf(e.object)).to.equal(resourceVersionOf(j?.object));
        if (e.type !== 'BOOKMARK') {
          expect(objectKey(e.object)).to.equal(objectKey(j?.object));
          expect(projectPod(e.object)).to.deep.equal(projectPod(j?.object));
        }
      });
    }
  });

  it('reads the ERROR event of an expired watch as a 410 Gone', function () {
    const [first, ...rest] = events(decodeWatch(fixture('pods.watch-expired.pb'), `${PROTOBUF};stream=watch`, POD_FIELDS));
    expect(first?.type).to.equal('ERROR');
    expect(rest).to.deep.equal([]);
    const err = errorFromStatus(parseStatus(first?.object, 500));
    expect(err).to.be.instanceOf(Gone);
    expect(err.message).to.match(/too old resource version/);
  });

  it('reports bytes that are not a watch frame or an object as malformed, never as an event', function () {
    const body = fixture('pods.watch.pb');
    const cut = decodeWatch(body.subarray(0, body.length - 3), `${PROTOBUF};stream=watch`, POD_FIELDS);
    expect(cut[cut.length - 1]).to.be.instanceOf(MalformedResponse);
    const garbage = Buffer.concat([Buffer.from([0, 0, 0, 4]), Buffer.from('oops')]);
    expect(decodeWatch(garbage, `${PROTOBUF};stream=watch`, POD_FIELDS)[0]).to.be.instanceOf(MalformedResponse);
    expect(decodeWatch(Buffer.from([0xff, 0xff, 0xff, 0xff, 1]), `${PROTOBUF};stream=watch`, POD_FIELDS)[0]).to.be.instanceOf(MalformedResponse);
    expect(() => decodeListPage(Buffer.from('k8s\0garbage'), PROTOBUF, POD_FIELDS)).to.throw(MalformedResponse);
    expect(() => decodeListPage(Buffer.from('{"kind":"PodList"'), PROTOBUF, POD_FIELDS)).to.throw(MalformedResponse, /envelope/);
    const page = fixture('pods.list.pb');
    expect(() => decodeListPage(page.subarray(0, page.length - 10), PROTOBUF, POD_FIELDS)).to.throw(MalformedResponse);
  });
});
