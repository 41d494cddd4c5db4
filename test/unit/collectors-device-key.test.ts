// The device key: read if it exists, created once if not, and a lost create race resolved by reading the winner's key.
import { expect } from 'chai';
import { DEVICE_KEY_SECRET, deviceKeySecret, getOrCreateDeviceKey, keyOfSecret, MalformedDeviceKey } from '../../src/collectors/device-key.js';
import type { KubeRequest, KubeTransport, ResponseStream } from '../../src/kube/client.js';
import { Conflict, Forbidden, NotFound } from '../../src/kube/errors.js';

type Answer = unknown | Error;

/**
 * Plays back the API server's answers in order and records the requests. The real API server is
 * exercised by the e2e suite; this covers the create race, which a test cannot provoke there on cue.
 */
class Scripted implements KubeTransport {
  readonly requests: KubeRequest[] = [];
  constructor(private readonly answers: Answer[]) {}

  stream(): Promise<ResponseStream> {
    return Promise.reject(new Error('not used'));
  }

  async json(req: KubeRequest): Promise<unknown> {
    this.requests.push(req);
    await Promise.resolve();
    const a = this.answers.shift();
    if (a instanceof Error) throw a;
    return a;
  }
}

const secretWith = (key: Buffer): unknown => ({ metadata: { name: DEVICE_KEY_SECRET, resourceVersion: '1' }, data: { key: key.toString('base64') } });

describe('collectors: device key', function () {
  it('uses the key of an existing Secret and creates nothing', async function () {
    const key = Buffer.alloc(32, 1);
    const t = new Scripted([secretWith(key)]);
    expect(await getOrCreateDeviceKey({ transport: t, namespace: 'dcp-system' })).to.deep.equal(key);
    expect(t.requests.map((r) => [r.method ?? 'GET', r.path])).to.deep.equal([['GET', '/api/v1/namespaces/dcp-system/secrets/dcp-device-key']]);
  });

  it('creates an immutable Secret with 32 random bytes when there is none', async function () {
    const key = Buffer.alloc(32, 2);
    const t = new Scripted([new NotFound(404, 'NotFound', 'not found'), secretWith(key)]);
    const got = await getOrCreateDeviceKey({ transport: t, namespace: 'dcp-system', random: () => key });
    expect(got).to.deep.equal(key);
    const post = t.requests[1];
    expect(post?.method).to.equal('POST');
    expect(post?.path).to.equal('/api/v1/namespaces/dcp-system/secrets');
    expect(post?.body).to.deep.equal(deviceKeySecret('dcp-system', key));
    expect(post?.body).to.deep.include({ immutable: true, type: 'Opaque' });
  });

  it('takes the key another replica created first when its own create meets 409', async function () {
    const mine = Buffer.alloc(32, 3);
    const theirs = Buffer.alloc(32, 4);
    const t = new Scripted([new NotFound(404, 'NotFound', 'not found'), new Conflict(409, 'AlreadyExists', 'exists'), secretWith(theirs)]);
    expect(await getOrCreateDeviceKey({ transport: t, namespace: 'dcp-system', random: () => mine })).to.deep.equal(theirs);
    expect(t.requests.map((r) => r.method ?? 'GET')).to.deep.equal(['GET', 'POST', 'GET']);
  });

  it('passes other errors on rather than creating a new key', async function () {
    const t = new Scripted([new Forbidden(403, 'Forbidden', 'no')]);
    let caught: unknown;
    try {
      await getOrCreateDeviceKey({ transport: t, namespace: 'dcp-system' });
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(Forbidden);
    expect(t.requests).to.have.length(1);
  });

  it('refuses a Secret without a usable key instead of replacing it', function () {
    expect(() => keyOfSecret({ data: {} })).to.throw(MalformedDeviceKey);
    expect(() => keyOfSecret({ data: { key: Buffer.alloc(8).toString('base64') } })).to.throw(MalformedDeviceKey);
    expect(() => keyOfSecret(undefined)).to.throw(MalformedDeviceKey);
  });
});
