// hostErrors and linuxVm: classification by reason, redaction that always satisfies the PII guard, and the collectors' emission on a fake API server.
import { expect } from 'chai';
import fc from 'fast-check';
import type { PolicySpec } from '../../src/api/policy.js';
import { parsePolicy } from '../../src/api/validation.js';
import { hostErrorData, HostErrorsCollector, LinuxVmCollector, linuxVmData, linuxVmKind, redactText } from '../../src/collectors/host-events.js';
import type { NamespaceProjection } from '../../src/collectors/projections.js';
import { readJson, type KubeRequest, type KubeTransport, type QueryValue, type ResponseStream } from '../../src/kube/client.js';
import { projectEvent, type EventInfo } from '../../src/kube/projections.js';
import { buildEvent } from '../../src/api/envelope.js';
import type { ClusterRef, DcpEvent } from '../../src/api/event.js';
import { DenySet, detectPii, PiiGuard, redactPii } from '../../src/pipeline/guard.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { settle, startRun } from './collector-run.js';
import { dirt } from './planted-text.js';

const T0 = Date.parse('2026-03-01T00:00:00.000Z');
const KUBE_SYSTEM: NamespaceProjection = { uid: '0b9c8d7e-0000-4000-8000-000000000001', creationTimestamp: '2025-12-01T08:00:00Z' };
const SYSTEM_NAMESPACES = ['kube-system', 'kube-node-lease', 'kube-public', 'dcp-system'];
const NODE = 'aks-nodepool1-31415926-vmss000002';
const CLUSTER: ClusterRef = { id: KUBE_SYSTEM.uid, region: 'westeurope', subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001' };

function spec(categories: { hostErrors?: boolean; linuxVm?: boolean; systemNamespaces?: string[] } = {}): PolicySpec {
  return parsePolicy({
    apiVersion: 'datacollection.arc.io/v1alpha1',
    kind: 'DataCollectionPolicy',
    metadata: { name: 'default' },
    spec: {
      subscriptionId: CLUSTER.subscriptionId,
      region: CLUSTER.region,
      categories: {
        hostErrors: { enabled: categories.hostErrors ?? true },
        linuxVm: { enabled: categories.linuxVm ?? true, ...(categories.systemNamespaces ? { systemNamespaces: categories.systemNamespaces } : {}) },
      },
    },
  }).spec;
}

function denied(): DenySet {
  const d = new DenySet();
  d.add([NODE, `${NODE}.internal.cloudapp.net`, 'EC2A1B3C-4D5E-6F70-8192-A3B4C5D6E7F8']);
  return d;
}

interface RawEventOptions {
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly type?: string;
  readonly reason: string;
  readonly note?: string;
  readonly kind?: string;
  readonly regardingName?: string;
  readonly regardingNamespace?: string;
  readonly controller?: string;
  readonly count?: number;
  readonly time?: string;
}

/** An events.k8s.io/v1 Event as the API server serves it. */
function rawEvent(o: RawEventOptions): Record<string, unknown> {
  const kind = o.kind ?? 'Node';
  const namespace = o.namespace ?? (kind === 'Node' ? 'default' : (o.regardingNamespace ?? 'kube-system'));
  const name = o.name ?? `${o.regardingName ?? NODE}.${o.reason.toLowerCase()}`;
  const time = o.time ?? '2026-03-01T00:00:00.000000Z';
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name, namespace, uid: o.uid ?? `uid-${namespace}-${name}`, resourceVersion: '1', creationTimestamp: '2026-03-01T00:00:00Z' },
    eventTime: time,
    reportingController: o.controller ?? 'kubelet',
    reportingInstance: NODE,
    action: 'Report',
    reason: o.reason,
    regarding: { kind, name: o.regardingName ?? NODE, ...(kind === 'Node' ? {} : { namespace: o.regardingNamespace ?? namespace }), uid: 'r-uid' },
    note: o.note ?? '',
    type: o.type ?? 'Warning',
    ...(o.count !== undefined && o.count > 1 ? { series: { count: o.count, lastObservedTime: time } } : {}),
  };
}

function info(o: RawEventOptions): EventInfo {
  const e = projectEvent(rawEvent(o));
  if (e === undefined) throw new Error('not an event');
  return e;
}

/** Admitted by the guard that holds the same deny set, and valid against the schema. */
function expectStorable(event: DcpEvent, denySet: DenySet): void {
  expect(validateEvent(event)).to.deep.equal({ ok: true, event });
  expect(new PiiGuard({ denySet }).inspect(event)).to.deep.equal([]);
}

// ---------------------------------------------------------------------------------------------
// Generators (after test/unit/pipeline-guard.test.ts): everything the guard must stop.

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
const b64url = (bytes: Uint8Array | string): string => Buffer.from(bytes).toString('base64url');
const hexByte = fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0'));
const nodeName = fc.stringMatching(/^[a-z][a-z0-9-]{2,20}[a-z0-9]$/);

const planted: fc.Arbitrary<{ value: string; deny?: string }> = fc.oneof(
  fc.emailAddress().map((value) => ({ value })),
  fc.ipV4().map((value) => ({ value })),
  fc.ipV6().map((value) => ({ value })),
  fc.uuid().map((value) => ({ value })),
  fc.tuple(fc.array(hexByte, { minLength: 6, maxLength: 6 }), fc.constantFrom(':', '-')).map(([b, sep]) => ({ value: b.join(sep) })),
  fc
    .tuple(fc.string({ minLength: 1, maxLength: 20 }), fc.uint8Array({ minLength: 16, maxLength: 64 }))
    .map(([sub, sig]) => ({ value: `${b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub }))}.${b64url(sig)}` })),
  fc.tuple(fc.constantFrom('Bearer', 'Basic'), fc.uint8Array({ minLength: 16, maxLength: 48 })).map(([scheme, bytes]) => ({ value: `${scheme} ${b64(bytes)}` })),
  fc
    .tuple(fc.constantFrom('password', 'api_key', 'client_secret', 'token'), fc.constantFrom('=', ': ', '="'), fc.stringMatching(/^[A-Za-z0-9!#%*]{6,24}$/).filter((s) => /[^a-z]/.test(s)))
    .map(([key, op, secret]) => ({ value: `${key}${op}${secret}` })),
  fc
    .tuple(fc.constantFrom('CERTIFICATE', 'RSA PRIVATE KEY'), fc.uint8Array({ minLength: 32, maxLength: 200 }))
    .map(([label, bytes]) => ({ value: `-----BEGIN ${label}-----\n${b64(bytes)}\n-----END ${label}-----` })),
  fc.uint8Array({ minLength: 48, maxLength: 200 }).map((bytes) => ({ value: `MII${b64(bytes)}` })),
  fc.uint8Array({ minLength: 32, maxLength: 64 }).map((bytes) => ({ value: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA${b64(bytes)} admin` })),
  fc.tuple(nodeName, fc.boolean()).map(([name, upper]) => ({ deny: name, value: upper ? name.toUpperCase() : name })),
  fc.domain().map((host) => ({ deny: host, value: host })),
  fc.tuple(fc.stringMatching(/^[A-Z][a-z]{2,10}$/), fc.stringMatching(/^[A-Z][a-z]{2,12}$/)).map(([a, b]) => ({ deny: `${a} ${b}`, value: `${a} ${b}` })),
);

const around = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40, unit: 'binary' }));
const separator = fc.constantFrom('', ' ', '\n', '\t', ', ', '; ', ' (', ') ', '"', ' <', '> ', ': ', '=', '.', '-', ':');

describe('host events: redaction', function () {
  it('leaves nothing the PII guard or the deny set would flag, whatever surrounds it (property, 2,000 runs)', function () {
    this.timeout(30_000); // seconds of CPU: CI machines run several suites at once
    fc.assert(
      fc.property(fc.array(planted, { minLength: 1, maxLength: 4 }), around, separator, separator, around, (plants, before, sep1, sep2, after) => {
        const denySet = new DenySet();
        denySet.add(plants.flatMap((p) => (p.deny === undefined ? [] : [p.deny])));
        const text = `${before}${sep1}${plants.map((p) => p.value).join(sep2)}${sep2}${after}`;
        const out = redactText(text, denySet);
        expect(detectPii(out), out).to.deep.equal([]);
        expect(denySet.matches(out), out).to.equal(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves any text clean, also with deny entries drawn from the text itself (property)', function () {
    fc.assert(
      fc.property(fc.string({ maxLength: 200, unit: 'binary' }), fc.array(fc.string({ minLength: 3, maxLength: 12 }), { maxLength: 5 }), (text, entries) => {
        const denySet = new DenySet();
        // Pieces of the text itself, plus entries the placeholders spell: the hardest deny sets there are.
        denySet.add([...entries, text.slice(0, 8), text.slice(5, 20), 'node', 'host', 'ip']);
        const out = redactText(text, denySet);
        return detectPii(out).length === 0 && !denySet.matches(out);
      }),
      { numRuns: 1000 },
    );
  });

  it('keeps text made of the vocabulary as it is (property)', function () {
    const word = fc.constantFrom('kernel', 'oops', 'node', 'is', 'not', 'ready', 'failed', 'to', 'mount', 'volume', 'restarted', '5', 'times', 'containerd');
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 30 }), (words) => {
        const text = words.join(' ');
        return redactText(text, new DenySet()) === text;
      }),
      { numRuns: 300 },
    );
  });

  it('puts a placeholder where each finding was and keeps the rest', function () {
    const d = denied();
    expect(redactText(`kernel: BUG on ${NODE.toUpperCase()} (10.240.0.4) from fe80::1: refused, mapped ::ffff:10.0.0.1`, d)).to.equal(
      'kernel: BUG on <node> (<ip>) from <ip>: refused, mapped <ip>',
    );
    expect(redactText('nic 00:1a:2b:3c:4d:5e of ec2a1b3c-4d5e-6f70-8192-a3b4c5d6e7f8, boot c0ffee00-0000-4000-8000-000000000000', d)).to.equal(
      'nic <mac> of <node>, boot <uuid>',
    );
    expect(redactText('sudo by jane@example.org with password=Hunter2x and Bearer QWxhZGRpbjpvcGVuc2VzYW1l', d)).to.equal('sudo by <email> with <secret> and <token>');
    expect(redactText('-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY----- done', d)).to.equal('<key> done');
    // Paths keep no word outside the vocabulary: a user name in them is gone either way.
    expect(redactText('panic in /home/alice/go/src/app/main.go:42 and C:\\Users\\bob\\app.js', d)).to.equal('panic in /home/<user><redacted> and <redacted><user><redacted>');
  });

  it('keeps versions, clock times and durations, which are no addresses, but not code identifiers', function () {
    const text = 'kernel 6.6.64.2-9.azl3 on Ubuntu 22.04.4 LTS, took 12:30:45.123 and 5m0s in std::vector<int>::push_back (main.go:42 +0x1d), invalid bearer token';
    expect(redactText(text, denied())).to.equal('kernel 6.6.64.2-9.azl3 on Ubuntu 22.04.4 LTS, took 12:30:45.123 and 5m0s in <redacted> (<redacted>), invalid bearer token');
  });
});

describe('host events: DenySet.redact and redactPii', function () {
  it('redacts denied entries on the word boundaries matches() uses, ignoring case, longest entry first', function () {
    const d = new DenySet();
    d.add(['node-1', 'node-1.example.internal', 'jane doe']);
    expect(d.redact('node-1: kubelet stopped; node-10 fine; mynode-1 fine', '<node>')).to.equal('<node>: kubelet stopped; node-10 fine; mynode-1 fine');
    expect(d.redact('NODE-1.EXAMPLE.INTERNAL rebooted', '<node>')).to.equal('<node> rebooted');
    expect(d.redact('login by Jane Doe, then jane doe again', '<node>')).to.equal('login by <node>, then <node> again');
    expect(d.redact('nothing here', '<node>')).to.equal('nothing here');
    expect(new DenySet().redact('node-1', '<node>')).to.equal('node-1');
  });

  it('matches() still sees exactly what it saw before', function () {
    const d = new DenySet();
    d.add(['aks-nodepool1-12345678-vmss000000', 'node-1', 'jane.doe']);
    expect(d.matches('Node AKS-NODEPOOL1-12345678-VMSS000000 rebooted')).to.equal(true);
    expect(d.matches('node-10: kubelet stopped')).to.equal(false);
    expect(d.matches('mynode-1 ok')).to.equal(false);
    expect(d.matches('login by jane.doe.')).to.equal(true);
  });

  it('redactPii replaces exactly what detectPii finds', function () {
    expect(redactPii('to 203.0.113.9 and 2001:db8::7 from a@b.example')).to.equal('to <ip> and <ip> from <email>');
    expect(redactPii('pool 10.0.0.1-10.0.0.9 exhausted')).to.equal('pool <ip>-<ip> exhausted');
    expect(redactPii('token: context deadline exceeded')).to.equal('token: context deadline exceeded');
  });
});

describe('host events: classification', function () {
  const kind = (o: RawEventOptions, namespaces = SYSTEM_NAMESPACES) => linuxVmKind(info(o), namespaces);

  it('sorts Node events by reason, case-insensitively', function () {
    const cases: [string, string, string | undefined][] = [
      ['Normal', 'Starting', 'boot'],
      ['Warning', 'Rebooted', 'boot'],
      ['Normal', 'RegisteredNode', 'boot'],
      ['Normal', 'Shutdown', 'shutdown'],
      ['Normal', 'RemovingNode', 'shutdown'],
      ['Warning', 'KernelOops', 'kernel'],
      ['Warning', 'kerneldeadlock', 'kernel'],
      ['Warning', 'OOMKilling', 'kernel'],
      ['Warning', 'FilesystemIsReadOnly', 'kernel'],
      ['Warning', 'TaskHung', 'kernel'],
      ['Normal', 'KubeletStart', 'serviceStatus'],
      ['Warning', 'FrequentContainerdRestart', 'serviceStatus'],
      ['Warning', 'ContainerRuntimeUnhealthy', 'serviceStatus'],
      ['Normal', 'NodeNotReady', 'serviceStatus'],
      ['Normal', 'NodeReady', 'serviceStatus'],
      ['Warning', 'SSHLoginFailed', 'authentication'],
      ['Warning', 'Unauthorized', 'authentication'],
      ['Normal', 'NodeHasSufficientMemory', undefined],
      ['Normal', 'NodeAllocatableEnforced', undefined],
      // An unknown Warning about a Node is a host error, not a linuxVm event.
      ['Warning', 'InvalidDiskCapacity', undefined],
    ];
    for (const [type, reason, expected] of cases) expect(kind({ type, reason }), reason).to.equal(expected);
  });

  it('sorts events about Pods in system namespaces, and ignores the noise', function () {
    const pod = (type: string, reason: string, namespace = 'kube-system') => kind({ type, reason, kind: 'Pod', regardingName: 'coredns-7d9f8c6b5-x2x9z', regardingNamespace: namespace });
    expect(pod('Normal', 'Started')).to.equal('serviceStatus');
    expect(pod('Normal', 'Killing')).to.equal('serviceStatus');
    expect(pod('Normal', 'SandboxChanged')).to.equal('serviceStatus');
    expect(pod('Warning', 'BackOff')).to.equal('applicationError');
    expect(pod('Warning', 'Unhealthy', 'dcp-system')).to.equal('applicationError');
    expect(pod('Warning', 'Evicted')).to.equal('applicationError');
    expect(pod('Warning', 'SomethingNew')).to.equal('applicationError');
    expect(pod('Warning', 'FailedToRefreshCertificate')).to.equal('authentication');
    for (const noise of ['Scheduled', 'Pulled', 'Pulling', 'Created', 'LeaderElection']) expect(pod('Normal', noise), noise).to.equal(undefined);
    // "Starting" is a boot only for a Node.
    expect(pod('Normal', 'Starting')).to.equal(undefined);
  });

  it('takes nothing from outside the system namespaces but Node events', function () {
    expect(kind({ type: 'Warning', reason: 'BackOff', kind: 'Pod', regardingName: 'payroll-api-0', regardingNamespace: 'payroll' })).to.equal(undefined);
    expect(kind({ type: 'Warning', reason: 'KernelOops', kind: 'Pod', regardingName: 'x', regardingNamespace: 'payroll' })).to.equal(undefined);
    expect(kind({ type: 'Warning', reason: 'BackOff', kind: 'Pod', regardingName: 'x', regardingNamespace: 'payroll' }, ['payroll'])).to.equal('applicationError');
    expect(kind({ type: 'Warning', reason: 'BackOff', kind: 'Pod', regardingName: 'x', regardingNamespace: 'kube-system' }, [])).to.equal(undefined);
  });

  it('takes Warnings about Nodes and host components as host errors, but not workload problems', function () {
    const d = denied();
    expect(hostErrorData(info({ reason: 'InvalidDiskCapacity', controller: 'kubelet' }), d)).to.not.equal(undefined);
    expect(hostErrorData(info({ reason: 'KernelOops', controller: 'kernel-monitor' }), d)).to.not.equal(undefined);
    // A Warning about a Node from any controller.
    expect(hostErrorData(info({ reason: 'NodeNotReady', controller: 'node-controller' }), d)).to.not.equal(undefined);
    // A system Pod failing is the host's problem; a customer's Pod is not.
    const podWarning = (namespace: string, controller = 'kubelet') =>
      hostErrorData(info({ reason: 'BackOff', kind: 'Pod', regardingName: 'app-0', regardingNamespace: namespace, controller }), d);
    expect(podWarning('kube-system')).to.not.equal(undefined);
    expect(podWarning('payroll')).to.equal(undefined);
    expect(podWarning('payroll', 'containerd')).to.equal(undefined);
    // Not a host component, not about a Node.
    expect(podWarning('kube-system', 'deployment-controller')).to.equal(undefined);
    expect(hostErrorData(info({ type: 'Normal', reason: 'Starting' }), d)).to.equal(undefined);
  });
});

describe('host events: data built from realistic events', function () {
  it('a node-problem-detector KernelOops naming the host and an address', function () {
    const d = denied();
    const e = info({
      reason: 'KernelOops',
      controller: 'kernel-monitor',
      count: 3,
      note: `kernel: BUG: unable to handle page fault for address: ffffa0f4c3d2e000 on ${NODE}.internal.cloudapp.net (10.240.0.4)`,
    });
    const data = hostErrorData(e, d);
    expect(data).to.deep.equal({
      reason: 'KernelOops',
      message: 'kernel: BUG: unable to handle page fault for address: <redacted> on <node> (<ip>)',
      count: 3,
      component: 'kernel-monitor',
    });
    if (data === undefined) return;
    expectStorable(buildEvent({ name: 'HostError', cluster: CLUSTER, time: new Date(T0), sourceKey: e.uid, data }), d);
  });

  it('the kubelet reporting a Node NotReady', function () {
    const d = denied();
    const e = info({ type: 'Normal', reason: 'NodeNotReady', controller: 'node-controller', note: `Node ${NODE} status is now: NodeNotReady` });
    const data = linuxVmData(e, SYSTEM_NAMESPACES, d);
    expect(data).to.deep.equal({ kind: 'serviceStatus', reason: 'NodeNotReady', message: 'Node <node> status is now: NodeNotReady', count: 1 });
    if (data === undefined) return;
    expectStorable(buildEvent({ name: 'LinuxVmEvent', cluster: CLUSTER, time: new Date(T0), sourceKey: e.uid, data }), d);
  });

  it('a Go panic: the first line as message, the redacted trace as stackTrace', function () {
    const d = denied();
    const note = [
      'panic: runtime error: invalid memory address or nil pointer dereference',
      '[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x1d2c4e5]',
      '',
      'goroutine 112 [running]:',
      'k8s.io/kubernetes/pkg/kubelet.(*Kubelet).syncPod(0xc000b2a000, {0x2f1e3c0, 0xc0012c4000})',
      '\t/home/builder/go/src/k8s.io/kubernetes/pkg/kubelet/kubelet.go:1784 +0x1d2',
      `created by main.main on ${NODE}`,
    ].join('\n');
    const data = hostErrorData(info({ reason: 'KubeletPanic', controller: 'kubelet', note }), d);
    expect(data?.message).to.equal('panic: runtime error: invalid memory address or nil pointer dereference');
    expect(data?.stackTrace).to.contain('goroutine 112 [running]:').and.contain('on <node>');
    expect(data?.stackTrace).to.not.contain('builder').and.not.contain(NODE);
  });

  it('Java and Python traces are stack traces too; a one-line error is not', function () {
    const d = denied();
    const java = hostErrorData(info({ reason: 'AgentCrashed', note: 'java.lang.IllegalStateException: boom\n\tat com.example.Agent.run(Agent.java:42)' }), d);
    expect(java).to.include({ message: 'java.lang.IllegalStateException: <redacted>' });
    expect(java?.stackTrace).to.equal('java.lang.IllegalStateException: <redacted>\n\tat <redacted>(<redacted>)');
    const python = hostErrorData(info({ reason: 'AgentCrashed', note: 'Traceback (most recent call last):\n  File "agent.py", line 3, in <module>\nValueError: x' }), d);
    expect(python).to.include({ message: 'Traceback (most recent call last):' });
    const plain = hostErrorData(info({ reason: 'FreeDiskSpaceFailed', note: 'failed to garbage collect required amount of images. Wanted to free 1234 bytes, but freed 0 bytes' }), d);
    expect(plain).to.not.have.property('stackTrace');
  });

  it('fills an empty reason and controller with "unknown" and cuts long notes to the schema limits', function () {
    const d = denied();
    const e = info({ reason: ' ', controller: '', note: `${'kernel oops '.repeat(500)} ${NODE}` });
    const data = hostErrorData(e, d);
    expect(data).to.include({ reason: 'unknown', component: 'unknown' });
    expect(data?.message).to.have.length.within(4000, 4096);
    const long = linuxVmData(info({ reason: 'KernelOops', note: `${'node '.repeat(60)}\n${'kernel '.repeat(6_000)}` }), SYSTEM_NAMESPACES, d);
    expect(long?.message).to.have.length.within(4000, 4096);
    const trace = hostErrorData(info({ reason: 'R'.repeat(300), note: `panic: x\ngoroutine 1 [running]:\n${'f\n'.repeat(20_000)}` }), d);
    expect(trace?.reason, 'not a reason of known words').to.equal('Other');
    expect(trace?.stackTrace).to.have.length.at.most(32768);
    if (data === undefined || trace === undefined) return;
    expectStorable(buildEvent({ name: 'HostError', cluster: CLUSTER, time: new Date(T0), sourceKey: 'a', data }), d);
    expectStorable(buildEvent({ name: 'HostError', cluster: CLUSTER, time: new Date(T0), sourceKey: 'b', data: trace }), d);
  });

  it('builds clean, valid events the guard admits from any note, with controls, escapes and lone surrogates planted (property)', function () {
    fc.assert(
      fc.property(fc.array(planted, { maxLength: 3 }), around, fc.array(dirt, { maxLength: 4 }), fc.constantFrom('kubelet', 'kernel-monitor', ''), (plants, text, dirts, controller) => {
        const d = new DenySet();
        d.add(plants.flatMap((p) => (p.deny === undefined ? [] : [p.deny])));
        const e = info({ reason: 'KernelOops', controller, note: `${text} ${plants.map((p, i) => `${dirts[i] ?? ''}${p.value}`).join(' ')} ${dirts.join('x')}` });
        const host = hostErrorData(e, d);
        const vm = linuxVmData(e, SYSTEM_NAMESPACES, d);
        if (host === undefined || vm === undefined) return false;
        const guard = new PiiGuard({ denySet: d });
        const events = [
          buildEvent({ name: 'HostError', cluster: CLUSTER, time: new Date(T0), sourceKey: e.uid, data: host }),
          buildEvent({ name: 'LinuxVmEvent', cluster: CLUSTER, time: new Date(T0), sourceKey: e.uid, data: vm }),
        ];
        return events.every((ev) => validateEvent(ev).ok && guard.inspect(ev).length === 0);
      }),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The collectors against a fake API server: lists and watches of events.k8s.io/v1 Events.

type Raw = Record<string, unknown>;

function field(obj: unknown, path: string): string {
  let v: unknown = obj;
  for (const part of path.split('.')) v = typeof v === 'object' && v !== null ? (v as Raw)[part] : undefined;
  return typeof v === 'string' ? v : '';
}

function meta(obj: Raw): { name: string; namespace: string } {
  return { name: field(obj, 'metadata.name'), namespace: field(obj, 'metadata.namespace') };
}

class OpenWatch {
  private readonly queue: string[] = [];
  private wake: (() => void) | undefined;
  closed = false;

  constructor(
    readonly wants: (obj: Raw) => boolean,
    private readonly signal: AbortSignal | undefined,
  ) {}

  push(type: string, object: Raw): void {
    if (!this.wants(object)) return;
    this.queue.push(`${JSON.stringify({ type, object })}\n`);
    this.wake?.();
  }

  async *lines(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        const line = this.queue.shift();
        if (line !== undefined) {
          yield Buffer.from(line);
          continue;
        }
        if (this.signal?.aborted === true) throw new Error('aborted');
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          this.signal?.addEventListener('abort', () => resolve(), { once: true });
        });
        this.wake = undefined;
      }
    } finally {
      this.closed = true;
    }
  }
}

/** Serves List and Watch of Events from a map, with the field selectors the collectors use. */
class FakeEventsApi implements KubeTransport {
  private readonly objects = new Map<string, Raw>();
  private resourceVersion = 100;
  readonly requests: { path: string; query: Readonly<Record<string, QueryValue>> }[] = [];
  readonly watches: OpenWatch[] = [];

  get openWatches(): OpenWatch[] {
    return this.watches.filter((w) => !w.closed);
  }

  put(obj: Raw): void {
    const { namespace, name } = meta(obj);
    const key = `${namespace}/${name}`;
    const type = this.objects.has(key) ? 'MODIFIED' : 'ADDED';
    const stored = { ...obj, metadata: { ...(obj['metadata'] as Raw), resourceVersion: String(++this.resourceVersion) } };
    this.objects.set(key, stored);
    for (const w of this.openWatches) w.push(type, stored);
  }

  remove(obj: Raw): void {
    const { namespace, name } = meta(obj);
    const stored = this.objects.get(`${namespace}/${name}`);
    if (stored === undefined) return;
    this.objects.delete(`${namespace}/${name}`);
    for (const w of this.openWatches) w.push('DELETED', stored);
  }

  async stream(req: KubeRequest): Promise<ResponseStream> {
    await Promise.resolve();
    const query = req.query ?? {};
    this.requests.push({ path: req.path, query });
    const namespace = /\/namespaces\/([^/]+)\/events$/.exec(req.path)?.[1];
    const selectors = String(query['fieldSelector'] ?? '')
      .split(',')
      .filter((s) => s !== '')
      .map((s) => s.split('='));
    const wants = (obj: Raw): boolean => (namespace === undefined || meta(obj).namespace === namespace) && selectors.every(([k, v]) => field(obj, k ?? '') === v);
    if (query['watch'] === undefined) {
      const body = JSON.stringify({ kind: 'EventList', apiVersion: 'events.k8s.io/v1', metadata: { resourceVersion: String(this.resourceVersion) }, items: [...this.objects.values()].filter(wants) });
      return { statusCode: 200, close: () => undefined, [Symbol.asyncIterator]: async function* () { yield Buffer.from(body); } };
    }
    const watch = new OpenWatch(wants, req.signal);
    this.watches.push(watch);
    return { statusCode: 200, close: () => undefined, [Symbol.asyncIterator]: () => watch.lines() };
  }

  async json(req: KubeRequest): Promise<unknown> {
    return readJson(await this.stream(req));
  }
}

class World {
  readonly clock = new ManualClock(T0);
  readonly api = new FakeEventsApi();
  readonly denySet = denied();
  readonly batches: DcpEvent[][] = [];
  readonly warnings: string[] = [];
  emitFailures = 0;
  readonly emit = async (events: readonly DcpEvent[]): Promise<void> => {
    await Promise.resolve();
    if (this.emitFailures > 0) {
      this.emitFailures--;
      throw new Error('store down');
    }
    this.batches.push([...events]);
  };

  get events(): DcpEvent[] {
    return this.batches.flat();
  }

  async start(make: 'hostErrors' | 'linuxVm', s: PolicySpec = spec()) {
    const log = { debug() {}, info() {}, error() {}, warn: (m: string) => this.warnings.push(m) };
    const options = { transport: this.api, kubeSystem: KUBE_SYSTEM, spec: s, emit: this.emit, denySet: this.denySet, clock: this.clock, log };
    const collector = make === 'hostErrors' ? new HostErrorsCollector(options) : new LinuxVmCollector(options);
    return startRun(collector);
  }

  /** Lets the watches deliver what is pending first, so the flush timer they start falls inside `ms`. */
  async advance(ms: number): Promise<void> {
    await settle();
    this.clock.advance(ms);
    await settle();
  }
}

const oops = (count = 1, time = '2026-03-01T00:00:00.000000Z') =>
  rawEvent({ reason: 'KernelOops', controller: 'kernel-monitor', count, time, note: `kernel: BUG at ${NODE} from 10.1.2.3` });
const customerBackOff = rawEvent({ reason: 'BackOff', kind: 'Pod', regardingName: 'payroll-api-0', regardingNamespace: 'payroll', note: 'Back-off restarting failed container api in pod payroll-api-0_payroll' });
const corednsBackOff = rawEvent({ reason: 'BackOff', kind: 'Pod', regardingName: 'coredns-7d9f8c6b5-x2x9z', regardingNamespace: 'kube-system', note: 'Back-off restarting failed container coredns' });
const corednsPulled = rawEvent({ type: 'Normal', reason: 'Pulled', kind: 'Pod', regardingName: 'coredns-7d9f8c6b5-x2x9z', regardingNamespace: 'kube-system', note: 'Container image already present' });
const nodeStarting = rawEvent({ type: 'Normal', reason: 'Starting', note: 'Starting kubelet.' });

describe('host events: the hostErrors collector', function () {
  it('watches Warning Events cluster-wide and emits the ones already there in one batch, valid and admitted by the guard', async function () {
    const w = new World();
    for (const e of [oops(), customerBackOff, corednsBackOff, nodeStarting]) w.api.put(e);
    const r = await w.start('hostErrors');
    expect(w.api.requests.map((q) => q.path)).to.include('/apis/events.k8s.io/v1/events');
    expect(w.api.requests.every((q) => q.query['fieldSelector'] === 'type=Warning')).to.equal(true);
    await w.advance(1_000);
    expect(w.batches).to.have.length(1);
    expect(w.events.map((e) => e.data['reason']).sort()).to.deep.equal(['BackOff', 'KernelOops']);
    for (const e of w.events) {
      expectStorable(e, w.denySet);
      expect(e).to.deep.include({ category: 'hostErrors', name: 'HostError', time: '2026-03-01T00:00:00.000Z' });
    }
    expect(JSON.stringify(w.events)).to.not.contain('payroll').and.not.contain(NODE).and.not.contain('10.1.2.3');
    await r.stop();
    expect(w.clock.pending).to.equal(0);
    expect(w.api.openWatches).to.have.length(0);
  });

  it('reports a new occurrence (count or time changed) as a new event, and nothing for other changes or deletions', async function () {
    const w = new World();
    w.api.put(oops());
    const r = await w.start('hostErrors');
    await w.advance(1_000);
    expect(w.events).to.have.length(1);
    w.api.put({ ...oops(), note: 'reworded' });
    w.api.remove(oops());
    await w.advance(5_000);
    expect(w.events).to.have.length(1);
    w.api.put(oops(2, '2026-03-01T00:05:00.000000Z'));
    w.api.put(oops(3, '2026-03-01T00:06:00.000000Z'));
    await w.advance(1_000);
    // A burst of changes to one Event costs one event, with its latest count.
    expect(w.events).to.have.length(2);
    expect(w.events[1]?.data['count']).to.equal(3);
    expect(w.events[1]?.time).to.equal('2026-03-01T00:06:00.000Z');
    expect(w.events[1]?.id).to.not.equal(w.events[0]?.id);
    await r.stop();
  });

  it('gives the same occurrence the same id in the next run (the store drops the duplicate)', async function () {
    const w = new World();
    w.api.put(oops());
    const first = await w.start('hostErrors');
    await w.advance(1_000);
    await first.stop();
    const second = await w.start('hostErrors');
    await w.advance(1_000);
    await second.stop();
    expect(w.events).to.have.length(2);
    expect(w.events[0]?.id).to.equal(w.events[1]?.id);
  });

  it('stops watching when disabled, emits nothing meanwhile, and lists again when enabled', async function () {
    const w = new World();
    w.api.put(oops());
    const r = await w.start('hostErrors');
    r.collector.reconfigure(spec({ hostErrors: false }));
    await w.advance(1_000);
    expect(w.api.openWatches).to.have.length(0);
    w.api.put(oops(2, '2026-03-01T00:05:00.000000Z'));
    await w.advance(60_000);
    expect(w.events).to.have.length(0);
    r.collector.reconfigure(spec({ hostErrors: true }));
    await settle();
    expect(w.api.openWatches).to.have.length(1);
    await w.advance(1_000);
    expect(w.events.map((e) => e.data['count'])).to.deep.equal([2]);
    await r.stop();
    expect(w.clock.pending).to.equal(0);
  });

  it('does not start at all while disabled', async function () {
    const w = new World();
    w.api.put(oops());
    const r = await w.start('hostErrors', spec({ hostErrors: false }));
    await w.advance(10_000);
    expect(w.api.requests).to.have.length(0);
    await r.stop();
  });

  it('retries a batch the event store refused, and logs it', async function () {
    const w = new World();
    w.emitFailures = 2;
    w.api.put(oops());
    const r = await w.start('hostErrors');
    await w.advance(1_000);
    expect(w.events).to.have.length(0);
    for (let i = 0; i < 10 && w.events.length === 0; i++) await w.advance(60_000);
    expect(w.events).to.have.length(1);
    expect(w.warnings.filter((m) => m.includes('retrying'))).to.have.length(2);
    await r.stop();
    expect(w.clock.pending).to.equal(0);
  });

  it('emits at most 500 events per call', async function () {
    const w = new World();
    for (let i = 0; i < 1_201; i++) w.api.put(rawEvent({ name: `oops-${i}`, reason: 'KernelOops', controller: 'kernel-monitor' }));
    const r = await w.start('hostErrors');
    await w.advance(1_000);
    await w.advance(0);
    await w.advance(0);
    expect(w.batches.map((b) => b.length)).to.deep.equal([500, 500, 201]);
    expect(new Set(w.events.map((e) => e.id)).size).to.equal(1_201);
    await r.stop();
  });
});

describe('host events: the linuxVm collector', function () {
  it('watches each system namespace and Node events cluster-wide, and emits only what the table classifies', async function () {
    const w = new World();
    const nodeReady = rawEvent({ type: 'Normal', reason: 'NodeReady', note: `Node ${NODE} status is now: NodeReady` });
    for (const e of [nodeStarting, nodeReady, corednsBackOff, corednsPulled, customerBackOff]) w.api.put(e);
    const r = await w.start('linuxVm', spec({ systemNamespaces: ['kube-system', 'dcp-system'] }));
    const paths = w.api.requests.filter((q) => q.query['watch'] === undefined).map((q) => `${q.path}?${String(q.query['fieldSelector'] ?? '')}`);
    expect(paths.sort()).to.deep.equal([
      '/apis/events.k8s.io/v1/events?regarding.kind=Node',
      '/apis/events.k8s.io/v1/namespaces/dcp-system/events?',
      '/apis/events.k8s.io/v1/namespaces/kube-system/events?',
    ]);
    await w.advance(1_000);
    const got = w.events.map((e) => `${String(e.data['kind'])}:${String(e.data['reason'])}`).sort();
    expect(got).to.deep.equal(['applicationError:BackOff', 'boot:Starting', 'serviceStatus:NodeReady']);
    for (const e of w.events) expectStorable(e, w.denySet);
    await r.stop();
    expect(w.api.openWatches).to.have.length(0);
    expect(w.clock.pending).to.equal(0);
  });

  it('reports an Event seen by two of its watches once', async function () {
    const w = new World();
    w.api.put(nodeStarting);
    // Node events live in "default"; a policy may well list it.
    const r = await w.start('linuxVm', spec({ systemNamespaces: ['default'] }));
    await w.advance(1_000);
    expect(w.events).to.have.length(1);
    await r.stop();
  });

  it('follows a change of the system namespaces: a new namespace is listed, a dropped one no longer watched', async function () {
    const w = new World();
    const leaseWarning = rawEvent({ reason: 'FailedUpdate', kind: 'Lease', regardingName: 'lease-a', regardingNamespace: 'kube-node-lease', note: 'x' });
    w.api.put(leaseWarning);
    w.api.put(corednsBackOff);
    const r = await w.start('linuxVm', spec({ systemNamespaces: ['kube-system'] }));
    await w.advance(1_000);
    expect(w.events.map((e) => e.data['reason'])).to.deep.equal(['BackOff']);
    r.collector.reconfigure(spec({ systemNamespaces: ['kube-node-lease'] }));
    await w.advance(1_000);
    expect(w.events.map((e) => e.data['reason'])).to.deep.equal(['BackOff', 'FailedUpdate']);
    const watched = w.api.openWatches.map((o) => o.wants(corednsBackOff));
    expect(watched).to.not.include(true);
    // Events about Nodes are still watched.
    expect(w.api.openWatches.some((o) => o.wants(nodeStarting))).to.equal(true);
    await r.stop();
  });

  it('stops when disabled and reports the cached Events again when enabled', async function () {
    const w = new World();
    w.api.put(nodeStarting);
    const r = await w.start('linuxVm');
    await w.advance(1_000);
    r.collector.reconfigure(spec({ linuxVm: false }));
    await settle();
    expect(w.api.openWatches).to.have.length(0);
    r.collector.reconfigure(spec({ linuxVm: true }));
    await w.advance(1_000);
    expect(w.events).to.have.length(2);
    expect(w.events[0]?.id).to.equal(w.events[1]?.id);
    await r.stop();
    expect(w.clock.pending).to.equal(0);
  });
});
