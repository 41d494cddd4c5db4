// The image `make image` builds: reproducible (a second build gives the same digest), and runnable: its
// root filesystem, unpacked, runs its entrypoint in a chroot (own mount and PID namespaces) as uid 65532
// against the local cluster as the deploy ServiceAccount, and the policy goes Ready with events collected.
// As root it refuses to start.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { cluster, ROOT, run, type TestCluster } from './harness.js';
import { killAllOperators, waitFor } from './operator-process.js';
import { applyOk, getPolicy, policyYaml, readyAtGeneration } from './pipeline-helpers.js';

const BUILT = join(ROOT, '.dev/image');
const RBAC = ['deploy/base/namespace.yaml', 'deploy/base/rbac.yaml'].map((f) => join(ROOT, f));

interface Descriptor {
  digest: string;
  size: number;
}
interface ImageConfig {
  config: { User: string; Entrypoint: string[]; Env: string[]; WorkingDir: string };
}

const blob = (layout: string, digest: string): string => join(layout, 'blobs', ...digest.split(':'));
const json = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

function readImage(layout: string): { manifest: { config: Descriptor; layers: Descriptor[] }; config: ImageConfig; digest: string } {
  const index = json<{ manifests: Descriptor[] }>(join(layout, 'index.json'));
  const top = index.manifests[0];
  if (!top) throw new Error(`${layout}: empty index`);
  const manifest = json<{ config: Descriptor; layers: Descriptor[] }>(blob(layout, top.digest));
  return { manifest, config: json<ImageConfig>(blob(layout, manifest.config.digest)), digest: top.digest };
}

/** Why this machine cannot run the entrypoint in a chroot, or undefined when it can. */
async function chrootImpossible(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'chroot and unshare need root (CAP_SYS_CHROOT, CAP_SYS_ADMIN); this test runs as an unprivileged user';
  const r = await run('unshare', ['--mount', '--pid', '--fork', 'chroot', '/', 'true']);
  return r.code === 0 ? undefined : `unshare/chroot refused here: ${r.stderr.trim()}`;
}

/**
 * Stops dcp in the chroot: unshare --fork ignores SIGTERM while it waits, so the signal goes to its
 * child (the entrypoint, PID 1 of its namespace, which handles SIGTERM) by that child's host pid.
 */
async function stopInChroot(child: ChildProcess | undefined): Promise<void> {
  if (!child?.pid || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  for (const pid of children) process.kill(pid, 'SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

describe('the container image (make image)', function () {
  this.timeout(300_000);
  let c: TestCluster;
  let dir: string;
  let rootfs: string;
  let child: ChildProcess | undefined;

  before(async function () {
    c = cluster();
    dir = mkdtempSync(join(tmpdir(), 'dcp-e2e-image-'));
    // make image: rebuilt only when its inputs changed (the build caches by their content).
    const r = await run('bash', [join(ROOT, 'hack/image/build.sh'), BUILT], undefined, process.env, 300_000);
    if (r.code !== 0) throw new Error(`make image failed: ${r.stderr}`);
  });

  after(async function () {
    await stopInChroot(child);
    killAllOperators();
    await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('is reproducible: a second build from the same inputs has the same digest, byte for byte', async function () {
    const again = join(dir, 'again');
    const r = await run('bash', [join(ROOT, 'hack/image/build.sh'), again], undefined, process.env, 300_000);
    expect(r.code, r.stderr).to.equal(0);
    const first = readImage(join(BUILT, 'oci'));
    const second = readImage(join(again, 'oci'));
    expect(second.digest).to.equal(first.digest);
    expect(readFileSync(join(again, 'digest'), 'utf8')).to.equal(readFileSync(join(BUILT, 'digest'), 'utf8'));
    const sha = async (f: string): Promise<string> => (await run('sha256sum', [f])).stdout.split(' ')[0] ?? '';
    expect(await sha(join(again, 'dcp-operator.tar')), 'the docker load tarball').to.equal(await sha(join(BUILT, 'dcp-operator.tar')));
    const compressed = first.manifest.layers.reduce((n, l) => n + l.size, 0);
    console.log(`      image ${first.digest}: ${first.manifest.layers.length} layers, ${(compressed / 1e6).toFixed(1)} MB compressed, tarball ${(statSync(join(BUILT, 'dcp-operator.tar')).size / 1e6).toFixed(1)} MB`);
  });

  it('runs as 65532 with dcp as its entrypoint, no shell and no package manager', function () {
    const { config } = readImage(join(BUILT, 'oci'));
    expect(config.config.User).to.equal('65532:65532');
    expect(config.config.Entrypoint).to.deep.equal(['/nodejs/bin/node', '/app/dist/src/cli/main.js']);
    expect(config.config.Env).to.include('DCP_REFUSE_ROOT=1');
  });

  it('runs its entrypoint in a chroot as uid 65532 with the deploy ServiceAccount: policy Ready, events collected; refuses root', async function () {
    const impossible = await chrootImpossible();
    if (impossible) {
      console.log(`      skipped: ${impossible}`);
      this.skip();
    }
    const { manifest, config } = readImage(join(BUILT, 'oci'));
    rootfs = join(dir, 'rootfs');
    mkdirSync(rootfs);
    for (const layer of manifest.layers) {
      const r = await run('tar', ['-xzf', blob(join(BUILT, 'oci'), layer.digest), '-C', rootfs, '--same-owner', '--numeric-owner']);
      expect(r.code, r.stderr).to.equal(0);
    }
    for (const absent of ['bin/sh', 'usr/bin/apt', 'usr/bin/dpkg']) expect(existsSync(join(rootfs, absent)), absent).to.equal(false);
    expect(statSync(join(rootfs, 'var/lib/dcp')).uid).to.equal(65532);
    mkdirSync(join(rootfs, 'proc'), { recursive: true });

    // The image's environment only; unshare and chroot by absolute path (the image's PATH is /nodejs/bin).
    const env = Object.fromEntries(config.config.Env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    const [unshare, chroot] = (await run('bash', ['-c', 'command -v unshare; command -v chroot'])).stdout.trim().split('\n') as [string, string];
    const entry = config.config.Entrypoint;
    // As root (uid 0) the image refuses to start, with a message.
    const asRoot = await run(unshare, ['--mount', '--pid', '--fork', `--mount-proc=${join(rootfs, 'proc')}`, chroot, rootfs, ...entry, 'run'], undefined, env);
    expect(asRoot.code).to.equal(1);
    expect(asRoot.stderr).to.contain('refusing to run as root');

    killAllOperators();
    await c.resetPolicy();
    await c.kubectlOk(['apply', ...RBAC.flatMap((f) => ['-f', f])]);
    const kubeconfig = join(rootfs, 'home/nonroot/kubeconfig');
    await c.tokenKubeconfig('dcp-system', 'dcp-operator', kubeconfig);
    chownSync(kubeconfig, 65532, 65532);
    chmodSync(kubeconfig, 0o600);
    await c.createNodes([{ name: `image-${c.runId}`, cpu: '4', instanceType: 'Standard_D4s_v5' }]);
    let stderr = '';
    child = spawn(unshare, ['--mount', '--pid', '--fork', '--kill-child=SIGTERM', `--mount-proc=${join(rootfs, 'proc')}`,
      chroot, `--userspec=${config.config.User}`, rootfs, ...entry,
      'run', '--kubeconfig', '/home/nonroot/kubeconfig', '--data-dir', '/var/lib/dcp', '--leader-elect', '--metrics-addr', '127.0.0.1:0', '--health-addr', '127.0.0.1:0'],
    { stdio: ['ignore', 'ignore', 'pipe'], env });
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    try {
      await waitFor(() => stderr.includes('dcp run started') || child?.exitCode !== null, 30_000, 'dcp run in the chroot to start');
      expect(child.exitCode, stderr).to.equal(null);
      await applyOk(c, policyYaml({ categories: { controlPlane: { intervalSeconds: 10 }, billing: { intervalSeconds: 10 } } }));
      await readyAtGeneration(c, 90_000);
      const emitted = async (): Promise<number[]> => {
        const categories = (await getPolicy(c))?.status?.categories ?? {};
        return ['controlPlane', 'hostOs'].map((n) => categories[n]?.eventsEmitted ?? 0);
      };
      await waitFor(async () => (await emitted()).every((n) => n > 0), 90_000, 'controlPlane and hostOs events', 500).catch((err: unknown) => {
        throw new Error(`${String(err)}; emitted ${JSON.stringify(emitted)}; dcp said: ${stderr.slice(-3000)}`);
      });
      const status = await getPolicy(c);
      expect(status?.status?.store?.events ?? 0).to.be.greaterThan(0);
      const partitions = readdirSync(join(rootfs, 'var/lib/dcp/raw'));
      expect(partitions.length, 'store partitions written in the chroot').to.be.greaterThan(0);
      expect(statSync(join(rootfs, 'var/lib/dcp/raw', partitions[0] ?? '')).uid, 'owned by the image user').to.equal(65532);
      expect(stderr).to.not.match(/forbidden|unauthorized/i);
      await stopInChroot(child);
      expect(child.exitCode, `dcp in the chroot exits 0 on SIGTERM: ${stderr.slice(-2000)}`).to.equal(0);
    } finally {
      await c.kubectl(['delete', 'node', `image-${c.runId}`, '--ignore-not-found', '--wait=false']);
    }
  });
});
