// Free text by allow-list: only vocabulary words and small numbers survive; every planted value is gone.
import { expect } from 'chai';
import fc from 'fast-check';
import { detectPii } from '../../src/pipeline/guard.js';
import { REDACTED, scrubComponent, scrubReason, scrubText } from '../../src/pipeline/scrub.js';

/** Every planted value carries this, so a leak of any part of it is visible. */
const marker = fc.stringMatching(/^zq[a-z0-9]{6}$/);
const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

/** Values with no pattern a guard could find: names, hostnames, user names, labels' free text. */
const planted = fc.oneof(
  fc.tuple(marker, fc.emailAddress()).map(([m, e]) => `${m}.${e}`),
  fc.tuple(marker, fc.ipV4()).map(([m, ip]) => `${ip} ${m}`),
  fc.tuple(marker, fc.ipV6()).map(([m, ip]) => `[${ip}]:${m}`),
  fc.tuple(marker, fc.uuid()).map(([m, u]) => `${u}${m}`),
  marker.map((m) => `aks-nodepool1-${m}-vmss000001`),
  marker.map((m) => `CORP\\alice${m}`),
  marker.map((m) => `${m}.contoso.example`),
  fc.tuple(marker, fc.uint8Array({ minLength: 16, maxLength: 40 })).map(([m, b]) => `Bearer ${m}${b64url(b)}`),
  fc.tuple(marker, fc.uint8Array({ minLength: 30, maxLength: 90 })).map(([m, b]) => `-----BEGIN PRIVATE KEY-----\n${m}${Buffer.from(b).toString('base64')}\n-----END PRIVATE KEY-----`),
  fc.tuple(marker, fc.lorem({ maxCount: 4 })).map(([m, l]) => `${l} ${m}`),
);
const vocabulary = fc.constantFrom('kernel', 'oops', 'on', 'node', 'is', 'not', 'ready', 'failed', 'to', 'pull', 'image', 'for', 'restarted', '5', 'times', 'in', '20', 'minutes');
const separator = fc.constantFrom(' ', ', ', ': ', ' (', ') ', '; ', '\n', ' "', '" ');

describe('scrub: free text by allow-list', function () {
  it('keeps messages made of the vocabulary as they are', function () {
    expect(scrubText('Node is not ready')).to.equal('Node is not ready');
    expect(scrubText('containerd restarted 5 times in 20 minutes')).to.equal('containerd restarted 5 times in 20 minutes');
    expect(scrubText('read-only file system: kube-proxy failed.')).to.equal('read-only file system: kube-proxy failed.');
  });

  it('replaces names, addresses, versions and tokens by one placeholder each run', function () {
    expect(scrubText('kernel: BUG: unable to handle page fault for address: ffff8881 at 10.224.0.4')).to.equal(
      `kernel: BUG: unable to handle page fault for address: ${REDACTED} at ${REDACTED}`,
    );
    expect(scrubText('Kernel oops on aks-pool1-vmss0001 (10.0.0.4, fe80::1) reported by bob@contoso.com for CORP\\alice')).to.equal(
      `Kernel oops on ${REDACTED} (${REDACTED}) reported by ${REDACTED} for ${REDACTED}`,
    );
    expect(scrubText('Failed to pull image "registry.contoso.example/team/app:1.4.2": rpc error')).to.equal(`Failed to pull image "${REDACTED}": rpc error`);
  });

  it('drops symbols between words', function () {
    expect(scrubText('node 🔥 down ✓')).to.equal('node  down ');
  });

  it('keeps no part of a planted value, and leaves nothing a pattern would find', function () {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.oneof(planted, vocabulary), separator), { minLength: 1, maxLength: 12 }), (parts) => {
        const text = parts.map(([w, s]) => w + s).join('');
        const out = scrubText(text);
        expect(out).not.to.match(/zq[a-z0-9]{2}/);
        expect(detectPii(out)).to.deep.equal([]);
      }),
      { numRuns: 2000 },
    );
  });

  it('is stable: scrubbing scrubbed text changes nothing, so cutting and scrubbing again converges', function () {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.oneof(planted, vocabulary, fc.string()), separator), { maxLength: 12 }), (parts) => {
        const once = scrubText(parts.map(([w, s]) => w + s).join(''));
        expect(scrubText(once)).to.equal(once);
      }),
      { numRuns: 1000 },
    );
  });

  it('keeps UpperCamelCase reasons made of known words, and nothing else', function () {
    // The kubelet's and node-problem-detector's reasons (pkg/kubelet/events, npd config) are kept as they are.
    const known = [
      'KernelOops', 'KernelDeadlock', 'TaskHung', 'OOMKilling', 'AUFSUmountHung', 'DockerHung', 'FilesystemIsReadOnly', 'Ext4Error',
      'NodeNotReady', 'NodeReady', 'NodeNotSchedulable', 'NodeHasDiskPressure', 'NodeHasInsufficientMemory', 'NodeHasSufficientPID',
      'FrequentContainerdRestart', 'FrequentKubeletRestart', 'ContainerRuntimeUnhealthy', 'KubeletUnhealthy', 'CorruptDockerOverlay2',
      'BackOff', 'Failed', 'Unhealthy', 'Killing', 'Started', 'Evicted', 'Rebooted', 'Starting', 'Shutdown', 'RegisteredNode',
      'FreeDiskSpaceFailed', 'ImageGCFailed', 'ContainerGCFailed', 'InvalidDiskCapacity', 'NodeAllocatableEnforced', 'SystemOOM',
      'FailedMount', 'FailedAttachVolume', 'FailedCreatePodSandBox', 'FailedKillPod', 'NetworkNotReady', 'EvictionThresholdMet',
      'ErrImagePull', 'ImagePullBackOff', 'CrashLoopBackOff', 'KubeletSetupFailed', 'ProbeWarning', 'SandboxChanged',
    ];
    for (const r of known) expect(scrubReason(r), r).to.equal(r);
    expect(scrubReason('')).to.equal('unknown');
    for (const r of ['OOMKilling-alice', 'Failed-zq1234', 'AliceSmith', 'kernelOops', 'Node Not Ready']) expect(scrubReason(r)).to.equal('Other');
  });

  it('keeps component names made of known words', function () {
    expect(scrubComponent('kubelet')).to.equal('kubelet');
    expect(scrubComponent('kernel-monitor')).to.equal('kernel-monitor');
    expect(scrubComponent('alice-controller')).to.equal('other');
    expect(scrubComponent('')).to.equal('unknown');
  });
});
