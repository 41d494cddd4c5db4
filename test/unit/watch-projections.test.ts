// Event and TLS Secret projections, object keys and collection paths.
import { expect } from 'chai';
import { projectEvent, projectTlsSecret } from '../../src/kube/projections.js';
import { collectionPath, objectKey, splitKey, StringPool } from '../../src/kube/resource.js';

// A self-signed EC certificate made with openssl for this test (serial 0x1234, valid 2026-11-25 to 2036-11-22).
const CERT_PEM = `-----BEGIN CERTIFICATE-----
MIIBcTCCARegAwIBAgICEjQwCgYIKoZIzj0EAwIwFzEVMBMGA1UEAwwMdGVzdC5l
eGFtcGxlMB4XDTI2MTEyNTIwMDUwM1oXDTM2MTEyMjIwMDUwM1owFzEVMBMGA1UE
AwwMdGVzdC5leGFtcGxlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8VdTUIlH
w+cjoSNDluMsmndvWn2p0LeweXOf191q8ShRncMpp8kTwZmu6SZaM2HFtjZxpKid
h635pHzmAdwMc6NTMFEwHQYDVR0OBBYEFAZSL0RHODrmVYjSOHVQzaGdXnn4MB8G
A1UdIwQYMBaAFAZSL0RHODrmVYjSOHVQzaGdXnn4MA8GA1UdEwEB/wQFMAMBAf8w
CgYIKoZIzj0EAwIDSAAwRQIgbZ+6qrljN6LHM59azJJmfp/7zJle8/2QcaHESXi0
AwoCIQCz3E/Tg+jyw9pY8YTaJXH8ZBCqkWXFVRoj+feok66ezA==
-----END CERTIFICATE-----
`;

describe('projections', function () {
  it('finds an object without a uid malformed', function () {
    expect(projectEvent({ metadata: { name: 'x' } })).to.equal(undefined);
    expect(projectEvent('text')).to.equal(undefined);
    expect(projectTlsSecret([])).to.equal(undefined);
  });

  it('reads an events.k8s.io/v1 Event, preferring the series for time and count', function () {
    const e = {
      metadata: { uid: 'e1', name: 'n1.abc', namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z' },
      type: 'Warning',
      reason: 'NodeNotReady',
      action: 'Check',
      note: 'Node n1 status is now: NodeNotReady',
      regarding: { kind: 'Node', name: 'n1', uid: 'nu' },
      reportingController: 'node-controller',
      eventTime: '2026-01-01T00:00:01.000000Z',
      series: { count: 4, lastObservedTime: '2026-01-01T00:05:00.000000Z' },
    };
    expect(projectEvent(e)).to.deep.equal({
      uid: 'e1',
      type: 'Warning',
      reason: 'NodeNotReady',
      action: 'Check',
      note: 'Node n1 status is now: NodeNotReady',
      regarding: { kind: 'Node', namespace: '', name: 'n1', uid: 'nu' },
      reportingController: 'node-controller',
      time: '2026-01-01T00:05:00.000000Z',
      count: 4,
    });
  });

  it('falls back to the deprecated fields of an Event written through core/v1', function () {
    const e = { metadata: { uid: 'e2' }, deprecatedSource: { component: 'kubelet' }, deprecatedLastTimestamp: '2026-01-02T00:00:00Z', deprecatedCount: 3 };
    expect(projectEvent(e)).to.deep.include({ reportingController: 'kubelet', time: '2026-01-02T00:00:00Z', count: 3 });
  });

  it('keeps a TLS Secret\'s certificate validity and fingerprint, never its key', function () {
    const secret = {
      metadata: { uid: 's1', name: 'tls', namespace: 'kube-system' },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': Buffer.from(CERT_PEM).toString('base64'), 'tls.key': Buffer.from('-----BEGIN PRIVATE KEY-----\nsecret\n').toString('base64') },
    };
    const info = projectTlsSecret(secret);
    expect(info).to.deep.equal({
      uid: 's1',
      error: '',
      certificates: [
        {
          notBefore: '2026-11-25T20:05:03.000Z',
          notAfter: '2036-11-22T20:05:03.000Z',
          fingerprintSha256: 'B7:28:14:5D:34:94:2E:08:7B:E3:56:04:34:FD:C2:F2:62:3E:E3:D0:89:68:0D:A4:2A:7B:B5:E9:25:D8:FA:80',
          serialNumber: '1234',
          isCa: true,
        },
      ],
    });
    expect(JSON.stringify(info)).not.to.contain('PRIVATE');
  });

  it('reports a TLS Secret whose certificate is missing or unreadable instead of dropping it', function () {
    expect(projectTlsSecret({ metadata: { uid: 's' }, data: {} })).to.deep.equal({ uid: 's', certificates: [], error: 'tls.crt is missing' });
    const bad = projectTlsSecret({ metadata: { uid: 's' }, data: { 'tls.crt': Buffer.from('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----').toString('base64') } });
    expect(bad?.certificates).to.deep.equal([]);
    expect(bad?.error).to.match(/^tls\.crt: /);
  });
});

describe('object keys and paths', function () {
  it('keys namespaced objects by namespace/name and cluster-scoped ones by name', function () {
    expect(objectKey({ metadata: { namespace: 'a', name: 'b' } })).to.equal('a/b');
    expect(objectKey({ metadata: { name: 'node-1' } })).to.equal('node-1');
    expect(objectKey({ metadata: {} })).to.equal(undefined);
    expect(splitKey('a/b')).to.deep.equal({ namespace: 'a', name: 'b' });
    expect(splitKey('node-1')).to.deep.equal({ namespace: undefined, name: 'node-1' });
  });

  it('hands out one shared copy of equal strings, and starts over past its limit', function () {
    const pool = new StringPool(2);
    // Built at run time, so the two are equal but distinct strings, as two decoded Pods' nodeNames are.
    const first = ['node', '1'].join('-');
    expect(pool.intern(first)).to.equal('node-1');
    expect(pool.intern(['node', '1'].join('-'))).to.equal(first);
    pool.intern('node-2');
    // Full: the next new string starts a fresh pool, and strings interned before are simply copies again.
    expect(pool.intern('node-3')).to.equal('node-3');
    expect(pool.intern('node-1')).to.equal('node-1');
  });

  it('narrows a collection path to one namespace', function () {
    expect(collectionPath('/api/v1/secrets', 'kube-system')).to.equal('/api/v1/namespaces/kube-system/secrets');
    expect(collectionPath('/apis/events.k8s.io/v1/events', 'default')).to.equal('/apis/events.k8s.io/v1/namespaces/default/events');
    expect(collectionPath('/api/v1/nodes')).to.equal('/api/v1/nodes');
  });
});
