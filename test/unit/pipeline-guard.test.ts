// The PII guard: planted personal or secret values never pass, ordinary operational text does.
import { expect } from 'chai';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { EVENT_CATALOG, type CollectedEventName, type DcpEvent } from '../../src/api/event.js';
import { EXAMPLE_CLUSTER, exampleEvent } from '../../src/pipeline/examples.js';
import { DenySet, PiiGuard, detectPii } from '../../src/pipeline/guard.js';

const T = new Date('2026-11-24T21:00:00.000Z');
const NAMES = Object.keys(EVENT_CATALOG) as CollectedEventName[];
const EXAMPLES: DcpEvent[] = NAMES.map((n) => exampleEvent(n, T));

const withField = (e: DcpEvent, field: string, value: string): DcpEvent => ({ ...e, data: { ...e.data, [field]: value } });

/** (event, one of its string data fields): where a collector could leak something. */
const stringSlots: [DcpEvent, string][] = EXAMPLES.flatMap((e) => Object.entries(e.data).flatMap(([k, v]) => (typeof v === 'string' ? [[e, k] as [DcpEvent, string]] : [])));

const b64url = (bytes: Uint8Array | string): string => Buffer.from(bytes).toString('base64url');
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

const hexByte = fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0'));
const nodeName = fc.stringMatching(/^[a-z][a-z0-9-]{2,20}[a-z0-9]$/).filter((s) => !['true', 'false', 'none', 'null', 'linux', 'default', 'enabled', 'disabled', 'windows'].includes(s));

/** Everything the guard must stop, each with the kind it should be reported as. */
const planted: fc.Arbitrary<{ kind: string; value: string; deny?: string }> = fc.oneof(
  fc.emailAddress().map((value) => ({ kind: 'email', value })),
  fc.ipV4().map((value) => ({ kind: 'ipv4', value })),
  // '::' alone is the unspecified address: it names no host, and C++/Rust paths are full of it.
  fc.ipV6().filter((v) => v !== '::').map((value) => ({ kind: 'ipv6', value })),
  fc.uuid().map((value) => ({ kind: 'uuid', value })),
  fc.tuple(fc.array(hexByte, { minLength: 6, maxLength: 6 }), fc.constantFrom(':', '-')).map(([b, sep]) => ({ kind: 'mac', value: b.join(sep) })),
  fc
    .tuple(fc.constantFrom('HS256', 'RS256', 'ES256'), fc.string({ minLength: 1, maxLength: 20 }), fc.integer(), fc.uint8Array({ minLength: 16, maxLength: 64 }))
    .map(([alg, sub, iat, sig]) => ({ kind: 'jwt', value: `${b64url(JSON.stringify({ alg, typ: 'JWT' }))}.${b64url(JSON.stringify({ sub, iat }))}.${b64url(sig)}` })),
  fc
    .tuple(fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Basic'), fc.uint8Array({ minLength: 16, maxLength: 48 }), fc.boolean())
    .map(([scheme, bytes, url]) => ({ kind: 'authHeader', value: `${scheme} ${url ? b64url(bytes) : b64(bytes)}` })),
  fc
    .tuple(fc.constantFrom('password', 'passwd', 'api_key', 'apiKey', 'client_secret', 'token', 'access-key'), fc.constantFrom('=', ': ', '="', ' = '), fc.stringMatching(/^[A-Za-z0-9!#%*]{6,24}$/).filter((s) => /[^a-z]/.test(s)))
    .map(([key, op, secret]) => ({ kind: 'credential', value: `${key}${op}${secret}` })),
  fc
    .tuple(fc.constantFrom('CERTIFICATE', 'PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY', 'OPENSSH PRIVATE KEY'), fc.uint8Array({ minLength: 32, maxLength: 200 }))
    .map(([label, bytes]) => ({ kind: 'pem', value: `-----BEGIN ${label}-----\n${b64(bytes)}\n-----END ${label}-----` })),
  fc.uint8Array({ minLength: 48, maxLength: 200 }).map((bytes) => ({ kind: 'keyMaterial', value: `MII${b64(bytes)}` })),
  fc.uint8Array({ minLength: 32, maxLength: 64 }).map((bytes) => ({ kind: 'keyMaterial', value: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA${b64(bytes)} admin` })),
  fc.tuple(nodeName, fc.boolean()).map(([name, upper]) => ({ kind: 'denied', deny: name, value: upper ? name.toUpperCase() : name })),
  fc.domain().map((host) => ({ kind: 'denied', deny: host, value: host })),
  fc.tuple(fc.stringMatching(/^[A-Z][a-z]{2,10}$/), fc.stringMatching(/^[A-Z][a-z]{2,12}$/)).map(([a, b]) => ({ kind: 'denied', deny: `${a} ${b}`, value: `${a} ${b}` })),
);

/** Whatever text a real message puts around a value; always separated from it by something. */
const around = fc.string({ maxLength: 40 });
const separator = fc.constantFrom(' ', '\n', '\t', ', ', '; ', ' (', ') ', '"', ' <', '> ', ' [', '] ', ' = ', ': ');

describe('PII guard', function () {
  it('lets every example event through: realistic data is not mistaken for PII', function () {
    const guard = new PiiGuard();
    for (const e of EXAMPLES) expect(guard.inspect(e), e.name).to.deep.equal([]);
  });

  it('never passes an event with a planted e-mail, address, UUID, token, key or denied name (property, 2,000 runs)', function () {
    fc.assert(
      fc.property(fc.constantFrom(...stringSlots), planted, around, separator, separator, around, ([event, field], plant, before, sep1, sep2, after) => {
        const guard = new PiiGuard({ registry: new Registry() });
        if (plant.deny) guard.denySet.add([plant.deny]);
        const findings = guard.inspect(withField(event, field, `${before}${sep1}${plant.value}${sep2}${after}`));
        expect(findings.map((f) => f.kind)).to.include(plant.kind);
        expect(findings.every((f) => !f.path.startsWith('cluster.'))).to.equal(true);
        return !guard.admit(withField(event, field, plant.value));
      }),
      { numRuns: 2000 },
    );
  });

  it('also stops a planted value standing alone as the whole field', function () {
    fc.assert(
      fc.property(fc.constantFrom(...stringSlots), planted, ([event, field], plant) => {
        const guard = new PiiGuard({ registry: new Registry() });
        if (plant.deny) guard.denySet.add([plant.deny]);
        return !guard.admit(withField(event, field, plant.value));
      }),
      { numRuns: 1000 },
    );
  });

  it('passes ordinary prose (property)', function () {
    const word = fc.stringMatching(/^[a-z]{1,12}$/);
    fc.assert(
      fc.property(fc.constantFrom(...stringSlots), fc.array(word, { minLength: 1, maxLength: 30 }), ([event, field], words) => {
        return new PiiGuard({ registry: new Registry() }).inspect(withField(event, field, words.join(' '))).length === 0;
      }),
      { numRuns: 500 },
    );
  });

  it('allows the kube-system UID and the subscription GUID only in their envelope fields', function () {
    const guard = new PiiGuard({ registry: new Registry() });
    const e = exampleEvent('HostError', T);
    expect(guard.inspect(e)).to.deep.equal([]);
    expect(guard.inspect(withField(e, 'message', `cluster ${EXAMPLE_CLUSTER.id}`))).to.deep.equal([{ kind: 'uuid', path: 'data.message' }]);
    expect(guard.inspect(withField(e, 'message', `sub ${EXAMPLE_CLUSTER.subscriptionId}`))).to.deep.equal([{ kind: 'uuid', path: 'data.message' }]);
  });

  it('matches denied strings on word boundaries, ignoring case, and only inside data', function () {
    const deny = new DenySet();
    deny.add(['aks-nodepool1-12345678-vmss000000', 'node-1', 'jane.doe', 'billing']);
    expect(deny.matches('Node AKS-NODEPOOL1-12345678-VMSS000000 rebooted')).to.equal(true);
    expect(deny.matches('node-1: kubelet stopped')).to.equal(true);
    expect(deny.matches('node-10: kubelet stopped')).to.equal(false);
    expect(deny.matches('mynode-1 ok')).to.equal(false);
    expect(deny.matches('login by jane.doe.')).to.equal(true);
    const guard = new PiiGuard({ registry: new Registry(), denySet: deny });
    // 'billing' is the event's category: the envelope is fixed vocabulary, not something a collector saw.
    expect(guard.admit(exampleEvent('CoreUsage', T))).to.equal(true);
  });

  it('ignores deny entries that would match ordinary text: too short, numbers, common label values', function () {
    const deny = new DenySet();
    expect(deny.add(['a', 'ab', '8080', 'true', 'linux', '  ', '---'])).to.equal(0);
    expect(deny.size).to.equal(0);
    expect(deny.add(['abc', 'ABC', 'web-7f9c'])).to.equal(2);
    deny.delete(['web-7f9c']);
    expect(deny.matches('pod web-7f9c started')).to.equal(false);
  });

  it('does not mistake versions, times, durations and code paths for addresses', function () {
    for (const text of ['Ubuntu 22.04.4 LTS', '5.15.0-1064-azure', '6.6.64.2-9.azl3', 'v1.2.3.4', 'containerd://1.7.15', 'v1.34.4', '2026-11-24T21:00:00.000Z', 'took 12:30:45.123', 'std::vector<int>::push_back', 'main.go:42 +0x1d', 'invalid bearer token', 'failed to get token: context deadline exceeded', 'sha256:5f1e0c3b9a7d']) {
      expect(detectPii(text), text).to.deep.equal([]);
    }
  });

  // Found by the abuse fault scenario: a Node's containerRuntimeVersion named a Node created a moment later, before the
  // deny set held it, and the HostOsInfo carrying it was stored and sent.
  it('rejects a host name in a HostOsInfo software field that no deny set holds, and passes real OS, kernel and runtime versions', function () {
    const guard = new PiiGuard();
    const hostOs = exampleEvent('HostOsInfo', T);
    const real = {
      osImage: ['Ubuntu 22.04.5 LTS', 'Azure Linux 3.0', 'CBL-Mariner/Linux', 'Windows Server 2022 Datacenter', 'Flatcar Container Linux by Kinvolk 3815.2.0', 'Bottlerocket OS 1.20.0 (aws-k8s-1.29)', 'Debian GNU/Linux 12 (bookworm)', 'Red Hat Enterprise Linux CoreOS 414.92.202402201520-0 (Plow)', 'Amazon Linux 2', 'Talos (v1.7.0)'],
      kernelVersion: ['5.15.0-1079-azure', '6.6.64.2-9.azl3', '5.15.173.1-2.cm2', '10.0.20348.3207', '6.1.0-18-cloud-amd64', '5.14.0-284.55.1.el9_2.x86_64', '4.14.336-257.562.amzn2.x86_64', '3.10.0-1160.el7.x86_64'],
      containerRuntimeVersion: ['containerd://1.7.27-1', 'containerd://2.0.4', 'docker://24.0.7', 'cri-o://1.29.1'],
    };
    for (const [field, values] of Object.entries(real)) for (const v of values) expect(guard.inspect(withField(hostOs, field, v)), `${field} ${v}`).to.deep.equal([]);
    const hosts = ['ip-97-9-249-122-zq52e28y7y.ec2.internal', 'ip-10-0-0-4', 'buildhost-17.corp.example', 'dza-zq062l13vr.75.91.cal', 'aks-nodepool1-12345678-vmss00000a', 'aks-vyrlw-zq1gi6leng-vmss328184'];
    for (const field of Object.keys(real)) {
      for (const host of hosts) {
        const findings = guard.inspect(withField(hostOs, field, `containerd://1.7.25-1 built on ${host}`));
        expect(findings.map((f) => f.kind), `${field} naming ${host}`).to.include('hostname');
      }
    }
    // Elsewhere a DNS name is ordinary (a sink's host, an image registry): no hostname finding.
    expect(guard.inspect(withField(exampleEvent('HostError', T), 'message', 'pull from mcr.microsoft.com failed')).map((f) => f.kind)).to.not.include('hostname');
  });

  it('still sees an address next to a dash or inside a range', function () {
    expect(detectPii('pool 10.0.0.1-10.0.0.9 exhausted')).to.deep.equal(['ipv4']);
    expect(detectPii('from 10.1.2.3- refused')).to.deep.equal(['ipv4']);
  });

  it('counts rejections per category in dcp_events_pii_rejected_total and never logs the value', async function () {
    const registry = new Registry();
    const logged: unknown[] = [];
    const log = { debug() {}, info() {}, error() {}, warn: (_m: string, meta?: Record<string, unknown>) => logged.push(meta) };
    const guard = new PiiGuard({ registry, log });
    expect(guard.admit(withField(exampleEvent('HostError', T), 'message', 'ssh from 203.0.113.9 by root@example.org'))).to.equal(false);
    expect(guard.admit(withField(exampleEvent('LinuxVmEvent', T), 'message', 'user alice@example.org logged in'))).to.equal(false);
    expect(guard.admit(exampleEvent('LinuxVmEvent', T))).to.equal(true);
    const metric = await registry.getSingleMetricAsString('dcp_events_pii_rejected_total');
    expect(metric).to.contain('dcp_events_pii_rejected_total{category="hostErrors"} 1');
    expect(metric).to.contain('dcp_events_pii_rejected_total{category="linuxVm"} 1');
    const text = JSON.stringify(logged);
    expect(text).to.contain('ipv4').and.contain('email').and.contain('data.message');
    expect(text).to.not.contain('203.0.113.9');
    expect(text).to.not.contain('example.org');
  });
});
