// The e2e harness: a real local cluster (upstream binaries run by kwokctl) or E2E_KUBECONFIG, and helpers for tests.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { projectNamespace, type NamespaceProjection } from '../../src/collectors/projections.js';
import { KubeClient } from '../../src/kube/client.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CLUSTER_SH = join(ROOT, 'hack/cluster/cluster.sh');
const VERSIONS_SH = join(ROOT, 'hack/cluster/versions.sh');
/** The Kubernetes minor the suite runs on: K8S_VERSION (e.g. 1.37) or the default CI builds. */
export const K8S_MINOR = process.env.K8S_VERSION ?? execFileSync(VERSIONS_SH, ['default'], { encoding: 'utf8' }).trim();
/** That minor's binaries (bin/ for the default, bin/<minor>/ otherwise; versions.sh refuses an unpinned one). */
const K8S_BIN = join(ROOT, execFileSync(VERSIONS_SH, ['bin', K8S_MINOR], { encoding: 'utf8' }).trim());
export const KUBECTL = join(K8S_BIN, 'kubectl');

/** The exact Kubernetes release pinned for K8S_MINOR (hack/cluster/go.mod or hack/cluster/<minor>/go.mod). */
export function pinnedKubernetesVersion(): string {
  const module = K8S_BIN === join(ROOT, 'bin') ? 'hack/cluster' : `hack/cluster/${K8S_MINOR}`;
  const version = /^\s*(?:require\s+)?k8s\.io\/kubernetes\s+(v\S+)/m.exec(readFileSync(join(ROOT, module, 'go.mod'), 'utf8'))?.[1];
  if (version === undefined) throw new Error(`${module}/go.mod pins no k8s.io/kubernetes`);
  return version;
}
export const CRD_DIR = join(ROOT, 'crds');

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export function run(file: string, args: string[], input?: string, env?: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<ExecResult> {
  return new Promise((resolvePromise) => {
    // A bounded wait: a control plane that cannot start fails its test with its error, not a suite-wide hang.
    const child = execFile(file, args, { env: env ?? process.env, maxBuffer: 256 * 1024 * 1024, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolvePromise({ stdout, stderr, code });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** hack/cluster/cluster.sh with these arguments (up, down, stop, start, kwokctl); never throws. */
export function clusterSh(args: string[], timeoutMs?: number): Promise<ExecResult> {
  return run(CLUSTER_SH, args, undefined, undefined, timeoutMs);
}

/** Where cluster.sh keeps a cluster's state (pids/, logs/, kubeconfig). */
export function clusterDir(name: string): string {
  return join(process.env.KWOK_WORKDIR ?? join(ROOT, '.dev/kwok'), 'clusters', name);
}

export interface NodeSpec {
  name: string;
  cpu?: string;
  memory?: string;
  instanceType?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  nodeInfo?: Partial<k8s.V1NodeSystemInfo>;
}

export interface PodSpec {
  name: string;
  namespace: string;
  nodeName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A label every object the harness creates carries, so a shared cluster can be cleaned up. */
export const RUN_LABEL = 'dcp-e2e-run';

export class TestCluster {
  readonly kc = new k8s.KubeConfig();
  readonly runId = randomBytes(3).toString('hex');

  constructor(
    readonly kubeconfigPath: string,
    /** The kwokctl cluster name when the harness started it; undefined for E2E_KUBECONFIG. */
    readonly name: string | undefined,
  ) {
    this.kc.loadFromFile(kubeconfigPath);
  }

  get owned(): boolean {
    return this.name !== undefined;
  }

  core(): k8s.CoreV1Api {
    return this.kc.makeApiClient(k8s.CoreV1Api);
  }

  custom(): k8s.CustomObjectsApi {
    return this.kc.makeApiClient(k8s.CustomObjectsApi);
  }

  kubectl(args: string[], input?: string): Promise<ExecResult> {
    return run(KUBECTL, ['--kubeconfig', this.kubeconfigPath, ...args], input);
  }

  async kubectlOk(args: string[], input?: string): Promise<string> {
    const r = await this.kubectl(args, input);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  }

  /** kubectl apply of YAML text; resolves with the result so tests can assert refusals. */
  apply(yaml: string): Promise<ExecResult> {
    return this.kubectl(['apply', '-f', '-'], yaml);
  }

  /** Applies the CRD and waits until it is Established. */
  async ensureCrd(): Promise<void> {
    await this.kubectlOk(['apply', '-f', CRD_DIR]);
    // Right after a create, kubectl wait can read a CRD with no status yet and fail at once ("accessor error"): ask again.
    for (let attempt = 1; ; attempt++) {
      const r = await this.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/datacollectionpolicies.datacollection.arc.io']);
      if (r.code === 0) return;
      if (attempt >= 5 || !r.stderr.includes('accessor error')) throw new Error(`kubectl wait for the CRD failed (${r.code}): ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  /** The CRD installed, the operator namespace present and no policy yet: where every operator test starts. */
  async resetPolicy(): Promise<void> {
    await this.ensureCrd();
    await this.ensureNamespace('dcp-system');
    await this.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
  }

  /** Nodes managed by kwok (annotation kwok.x-k8s.io/node: fake), with the facts a real kubelet reports. */
  async createNodes(specs: NodeSpec[]): Promise<void> {
    const core = this.core();
    for (const spec of specs) {
      await core.createNode({ body: this.nodeObject(spec) });
    }
  }

  nodeObject(spec: NodeSpec): k8s.V1Node {
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: spec.name,
        labels: {
          'kubernetes.io/hostname': spec.name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          'type': 'kwok',
          [RUN_LABEL]: this.runId,
          ...(spec.instanceType ? { 'node.kubernetes.io/instance-type': spec.instanceType } : {}),
          ...spec.labels,
        },
        annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0', ...spec.annotations },
      },
      // On a shared cluster (E2E_KUBECONFIG) nothing runs these Nodes: the taint keeps real workloads off them.
      spec: this.owned ? {} : { taints: [{ key: 'kwok.x-k8s.io/node', value: 'fake', effect: 'NoSchedule' }] },
      status: {
        capacity: { cpu: spec.cpu ?? '4', memory: spec.memory ?? '16Gi', pods: '110' },
        allocatable: { cpu: spec.cpu ?? '4', memory: spec.memory ?? '16Gi', pods: '110' },
        nodeInfo: {
          architecture: 'amd64',
          bootID: '',
          containerRuntimeVersion: 'containerd://1.7.27',
          kernelVersion: '6.8.0-1021-azure',
          kubeProxyVersion: '',
          kubeletVersion: 'v1.34.4',
          machineID: '',
          operatingSystem: 'linux',
          osImage: 'Ubuntu 24.04.2 LTS',
          systemUUID: '',
          ...spec.nodeInfo,
        },
      },
    };
  }

  async createPods(specs: PodSpec[]): Promise<void> {
    const core = this.core();
    for (const spec of specs) {
      await core.createNamespacedPod({
        namespace: spec.namespace,
        body: {
          metadata: { name: spec.name, labels: { [RUN_LABEL]: this.runId, ...spec.labels }, annotations: spec.annotations },
          spec: {
            nodeName: spec.nodeName,
            containers: [{ name: 'app', image: 'registry.example/app:1' }],
            tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
          },
        },
      });
    }
  }

  /** The kube-system Namespace as the collectors see it (its UID is the cluster id). */
  async kubeSystem(): Promise<NamespaceProjection> {
    const client = new KubeClient(this.kc);
    try {
      const ns = projectNamespace(await client.json({ path: '/api/v1/namespaces/kube-system' }));
      if (ns === undefined) throw new Error('kube-system has no uid');
      return ns;
    } finally {
      client.destroy();
    }
  }

  async ensureNamespace(name: string): Promise<void> {
    const core = this.core();
    try {
      await core.readNamespace({ name });
    } catch {
      await core.createNamespace({ body: { metadata: { name, labels: { [RUN_LABEL]: this.runId } } } });
    }
  }

  /** A kubeconfig that authenticates only with a ServiceAccount token (so RBAC applies). */
  async tokenKubeconfig(namespace: string, serviceAccount: string, file: string): Promise<string> {
    const token = (await this.kubectlOk(['-n', namespace, 'create', 'token', serviceAccount, '--duration=1h'])).trim();
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const ca = cluster.caData ?? (cluster.caFile ? readFileSync(cluster.caFile).toString('base64') : undefined);
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: cluster.server, 'certificate-authority-data': ca } }],
      users: [{ name: serviceAccount, user: { token } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: serviceAccount } }],
      'current-context': 'c',
    };
    writeFileSync(file, stringify(config));
    return file;
  }

  private requireOwned(what: string): string {
    if (!this.name) throw new Error(`${what} needs a cluster the harness started (not E2E_KUBECONFIG)`);
    return this.name;
  }

  /** Stops and starts the whole control plane on the same data and ports. */
  async restartApiServer(downMs = 0): Promise<void> {
    await this.stopControlPlane();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.startControlPlane();
  }

  async stopControlPlane(): Promise<void> {
    const name = this.requireOwned('stopping the control plane');
    const r = await run(CLUSTER_SH, ['stop', name]);
    if (r.code !== 0) throw new Error(`stop cluster: ${r.stderr}`);
  }

  async startControlPlane(): Promise<void> {
    const name = this.requireOwned('starting the control plane');
    const r = await run(CLUSTER_SH, ['start', name], undefined, undefined, 90_000);
    if (r.code !== 0) {
      const logs = await run(CLUSTER_SH, ['kwokctl', name, 'logs', 'kube-apiserver']);
      throw new Error(`start cluster (${r.code}): ${r.stderr}\nkube-apiserver log tail:\n${logs.stdout.split('\n').slice(-15).join('\n')}`);
    }
    await this.waitForApiServer();
  }

  async waitForApiServer(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.kubectl(['get', '--raw', '/readyz']);
      if (r.code === 0) return;
      if (Date.now() > deadline) throw new Error(`API server not ready: ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 250));
    }
  }

  /** The kube-apiserver's process id (kwokctl's pid file; a restart writes a new one). */
  apiServerPid(): number {
    const name = this.requireOwned('reading the API server pid');
    return Number(readFileSync(join(clusterDir(name), 'pids/kube-apiserver.pid'), 'utf8').trim());
  }

  /**
   * Compacts etcd past every resourceVersion a client can hold and restarts the API server, so a watch resuming
   * from its last version gets 410 Gone. The API server is frozen first and killed, not stopped: a running or
   * gracefully stopping server sends bookmarks, and one carrying etcd's latest revision lets a watch resume after
   * the restart without a 410 when nothing was written in between. Frozen, it sends nothing; a write straight to
   * etcd (outside /registry, which the API server never reads) then puts the compacted revision past all it sent.
   */
  async compactEtcd(): Promise<number> {
    const name = this.requireOwned('compacting etcd');
    const etcdctl = async (...args: string[]): Promise<string> => {
      const r = await run(CLUSTER_SH, ['kwokctl', name, 'etcdctl', ...args]);
      if (r.code !== 0) throw new Error(`etcdctl ${args[0]}: ${r.stderr}`);
      return r.stdout;
    };
    const pid = this.apiServerPid();
    process.kill(pid, 'SIGSTOP');
    let revision: number | undefined;
    try {
      await etcdctl('put', '/dcp-e2e/compaction-marker', String(Date.now()));
      const parsed = JSON.parse(await etcdctl('endpoint', 'status', '-w', 'json')) as Array<{ Status: { header: { revision: number } } }>;
      revision = parsed[0]?.Status.header.revision;
      if (revision === undefined) throw new Error('etcdctl endpoint status: no revision');
      await etcdctl('compact', String(revision));
    } catch (err) {
      // Never leave the shared control plane frozen.
      process.kill(pid, 'SIGCONT');
      throw err;
    }
    process.kill(pid, 'SIGKILL');
    await this.restartApiServer();
    return revision;
  }

  /** kwokctl scale: a fleet of kwok Nodes or Pods in seconds. */
  async scale(kind: 'node' | 'pod', replicas: number): Promise<void> {
    const name = this.requireOwned('kwokctl scale');
    const r = await run(CLUSTER_SH, ['kwokctl', name, 'scale', kind, '--replicas', String(replicas)]);
    if (r.code !== 0) throw new Error(`kwokctl scale ${kind}: ${r.stderr}`);
  }

  /** Deletes what this run created in a shared cluster (labelled with its run id). */
  async cleanupShared(): Promise<void> {
    const selector = `${RUN_LABEL}=${this.runId}`;
    await this.kubectl(['delete', 'pods', '-A', '-l', selector, '--wait=false']);
    await this.kubectl(['delete', 'nodes', '-l', selector, '--wait=false']);
    await this.kubectl(['delete', 'namespaces', '-l', selector, '--wait=false']);
    await this.kubectl(['delete', 'datacollectionpolicies', '--all', '--wait=false']);
  }
}

let current: TestCluster | undefined;

/**
 * Skips the calling test (or hook) on a cluster the harness did not start (E2E_KUBECONFIG: kind, AKS…),
 * printing why: restarting the API server, compacting etcd, kwok playing the kubelet and the like need the
 * local control plane. Everything else runs unchanged there.
 */
export function needsLocalControlPlane(ctx: Mocha.Context, why: string): void {
  if (cluster().owned) return;
  console.log(`      skipped on E2E_KUBECONFIG: needs the local control plane (${why})`);
  ctx.skip();
}

export function cluster(): TestCluster {
  if (!current) throw new Error('no test cluster: run the e2e suite with --require dist/test/e2e/hooks.js');
  return current;
}

/** Starts a uniquely named cluster (or adopts E2E_KUBECONFIG). */
export async function startTestCluster(): Promise<TestCluster> {
  const external = process.env.E2E_KUBECONFIG;
  if (external) {
    current = new TestCluster(resolve(external), undefined);
    return current;
  }
  const name = `dcp-e2e-${process.pid}-${randomBytes(2).toString('hex')}`;
  const dir = join(ROOT, '.dev/e2e');
  mkdirSync(dir, { recursive: true });
  const kubeconfig = join(dir, `${name}.kubeconfig`);
  started = name;
  const r = await run(CLUSTER_SH, ['up', name, kubeconfig]);
  if (r.code !== 0) throw new Error(`kwokctl create cluster ${name} failed: ${r.stderr}\n${r.stdout}`);
  current = new TestCluster(kubeconfig, name);
  await current.waitForApiServer();
  return current;
}

let started: string | undefined;

/** Deletes the cluster this process started; synchronous so it also works from exit and signal handlers. */
export function deleteTestClusterSync(): void {
  const name = started;
  started = undefined;
  if (!name) return;
  try {
    execFileSync(CLUSTER_SH, ['down', name], { stdio: 'ignore', timeout: 60_000 });
  } catch {
    // best effort: the next line reports it
    console.error(`could not delete cluster ${name}; run: hack/cluster/cluster.sh down ${name}`);
  }
}
