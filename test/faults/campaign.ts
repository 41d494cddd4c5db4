// The fault campaign's shared parts: rounds and seed, a seeded random source, continuous churn, the operator's vital signs, and one line of counts per scenario.
import { appendFileSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { selfSignedCertificate } from '../../src/audit/x509.js';
import type { DcpEvent } from '../../src/api/event.js';
import { KubeClient, type KubeTransport } from '../../src/kube/client.js';
import { ROOT, RUN_LABEL, type TestCluster } from '../e2e/harness.js';
import { killAllOperators, OperatorProcess, waitFor } from '../e2e/operator-process.js';
import { applyOk, condition, getPolicy, policyYaml, readyAtGeneration, REGION, type SinkSpec, storeIds } from '../e2e/pipeline-helpers.js';

/** Rounds per scenario: 2 in `make test` (the smoke), more from `make faults` (FAULT_ROUNDS). */
export const ROUNDS = Math.max(1, Number(process.env.FAULT_ROUNDS ?? 2));
/** The seed of every random choice (moments, downtimes, churn); printed in each line so a run can be repeated. */
export const SEED = Number(process.env.FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Longest downtime of a fault, in seconds: short in the smoke, up to 30 s in `make faults`. */
export const MAX_DOWN_S = Math.max(1, Number(process.env.FAULT_MAX_DOWN_S ?? 3));
/**
 * Issue 16: status and /metrics equal the truth within 5 s of the API server's recovery. `make faults` sets
 * FAULT_RECOVERY_LIMIT_S=5 and a round past it fails; the smoke in `make test` only reports the time (no wall-clock
 * thresholds in tests: there the rest of the suite sets the machine's pace).
 */
export const RECOVERY_LIMIT_MS = process.env.FAULT_RECOVERY_LIMIT_S === undefined ? undefined : Number(process.env.FAULT_RECOVERY_LIMIT_S) * 1000;

/** Fails the round if recovery took longer than the campaign's limit (call after reportRound, so the round is on record). */
export function expectRecoveredInTime(ms: number, round: number): void {
  if (RECOVERY_LIMIT_MS !== undefined) expect(ms, `ms until status and /metrics equalled a fresh list after round ${round}`).to.be.at.most(RECOVERY_LIMIT_MS);
}

/**
 * mulberry32: small, fast and good enough to choose moments. One stream per scenario for its choices
 * (moments, downtimes, fault kinds) and another for its churn, so the choices repeat exactly under a
 * seed however many churn steps happened to fit between them.
 */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [min, max]. */
export const between = (random: () => number, min: number, max: number): number => min + Math.floor(random() * (max - min + 1));

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ChurnCounts {
  podsCreated: number;
  podsUpdated: number;
  podsDeleted: number;
  nodesCreated: number;
  nodesDeleted: number;
  warningEvents: number;
  secretsRenewed: number;
  /** Operations the API server refused or could not take (it was down): retried by the next step. */
  failed: number;
}

export interface ChurnOptions {
  readonly transport: KubeTransport;
  readonly random: () => number;
  /** Namespace of the churned Pods and Warning Events about them. */
  readonly namespace: string;
  /** Where TLS Secrets are renewed: a certificate namespace of the policy. */
  readonly secretNamespace: string;
  /** Prefix of churned Node names (unique per run). */
  readonly prefix: string;
  /** Label every object carries, for cleanup. */
  readonly label: Readonly<Record<string, string>>;
  /** Pause between steps. @default 150 */
  readonly stepMs?: number;
}

/**
 * Continuous churn as a cluster makes it: Pods created, relabelled and deleted, kwok Nodes coming
 * and going, Warning Events about Nodes (host errors), and a TLS Secret renewed. Runs until
 * stopped; `pause()` lets an invariant check compare against a cluster that holds still.
 */
export class Churn {
  readonly counts: ChurnCounts = { podsCreated: 0, podsUpdated: 0, podsDeleted: 0, nodesCreated: 0, nodesDeleted: 0, warningEvents: 0, secretsRenewed: 0, failed: 0 };
  private readonly pods: string[] = [];
  private readonly nodes: string[] = [];
  private seq = 0;
  private running: Promise<void> | undefined;
  private stopped = false;
  private paused: Promise<void> | undefined;
  private resumePaused: (() => void) | undefined;

  constructor(private readonly options: ChurnOptions) {}

  /** Nodes that exist now (for Pods to land on). */
  get nodeNames(): readonly string[] {
    return this.nodes;
  }

  start(): void {
    this.stopped = false;
    this.running ??= this.loop();
  }

  /** Resolves once the step in flight is done; no step runs until resume(). */
  async pause(): Promise<void> {
    this.paused ??= new Promise<void>((resolve) => (this.resumePaused = resolve));
    await this.inFlight;
  }

  resume(): void {
    this.resumePaused?.();
    this.paused = undefined;
    this.resumePaused = undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.resume();
    await this.running;
    this.running = undefined;
  }

  get total(): number {
    const c = this.counts;
    return c.podsCreated + c.podsUpdated + c.podsDeleted + c.nodesCreated + c.nodesDeleted + c.warningEvents + c.secretsRenewed;
  }

  private inFlight: Promise<void> = Promise.resolve();

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (this.paused !== undefined) await this.paused;
      if (this.stopped) break;
      this.inFlight = this.step().catch(() => void this.counts.failed++);
      await this.inFlight;
      await sleep(this.options.stepMs ?? 150);
    }
  }

  private async step(): Promise<void> {
    const { random } = this.options;
    const r = random();
    if (this.nodes.length < 2 || (r < 0.06 && this.nodes.length < 8)) return this.createNode();
    if (r < 0.1 && this.nodes.length > 2) return this.deleteNode();
    if (r < 0.45 && this.pods.length < 60) return this.createPod();
    if (r < 0.6 && this.pods.length > 0) return this.updatePod();
    if (r < 0.8 && this.pods.length > 0) return this.deletePod();
    if (r < 0.95) return this.warningEvent();
    return this.renewSecret();
  }

  private pick<T>(items: readonly T[]): T | undefined {
    return items[Math.floor(this.options.random() * items.length)];
  }

  private async createNode(): Promise<void> {
    const name = `${this.options.prefix}-n${this.seq++}`;
    await this.options.transport.json({
      method: 'POST',
      path: '/api/v1/nodes',
      body: {
        metadata: { name, labels: { ...this.options.label, type: 'kwok', 'node.kubernetes.io/instance-type': 'Standard_D4s_v5' }, annotations: { 'kwok.x-k8s.io/node': 'fake' } },
        status: { capacity: { cpu: '4', memory: '16Gi', pods: '110' }, allocatable: { cpu: '4', memory: '16Gi', pods: '110' }, nodeInfo: { operatingSystem: 'linux', architecture: 'amd64', osImage: 'Ubuntu 24.04.2 LTS', kernelVersion: '6.8.0-1021-azure', kubeletVersion: 'v1.34.4', containerRuntimeVersion: 'containerd://1.7.27', systemUUID: '', machineID: '', bootID: '', kubeProxyVersion: '' } },
      },
    });
    this.nodes.push(name);
    this.counts.nodesCreated++;
  }

  private async deleteNode(): Promise<void> {
    const name = this.nodes.shift();
    if (name === undefined) return;
    await this.options.transport.json({ method: 'DELETE', path: `/api/v1/nodes/${name}` });
    this.counts.nodesDeleted++;
  }

  private async createPod(): Promise<void> {
    const node = this.pick(this.nodes);
    const name = `churn-${this.seq++}`;
    await this.options.transport.json({
      method: 'POST',
      path: `/api/v1/namespaces/${this.options.namespace}/pods`,
      body: {
        metadata: { name, labels: { ...this.options.label, round: '0' } },
        spec: { nodeName: node, containers: [{ name: 'app', image: 'registry.example/app:1' }], tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }] },
      },
    });
    this.pods.push(name);
    this.counts.podsCreated++;
  }

  private async updatePod(): Promise<void> {
    const name = this.pick(this.pods);
    if (name === undefined) return;
    await this.options.transport.json({
      method: 'PATCH',
      path: `/api/v1/namespaces/${this.options.namespace}/pods/${name}`,
      contentType: 'application/merge-patch+json',
      body: { metadata: { labels: { round: String(this.seq++) } } },
    });
    this.counts.podsUpdated++;
  }

  private async deletePod(): Promise<void> {
    const i = Math.floor(this.options.random() * this.pods.length);
    const [name] = this.pods.splice(i, 1);
    if (name === undefined) return;
    await this.options.transport.json({ method: 'DELETE', path: `/api/v1/namespaces/${this.options.namespace}/pods/${name}`, query: { gracePeriodSeconds: 0 } });
    this.counts.podsDeleted++;
  }

  private async warningEvent(): Promise<void> {
    const node = this.pick(this.nodes);
    if (node === undefined) return;
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    await this.options.transport.json({
      method: 'POST',
      path: `/api/v1/namespaces/default/events`,
      body: {
        metadata: { name: `${node}.${this.seq++}`, labels: this.options.label },
        involvedObject: { apiVersion: 'v1', kind: 'Node', name: node },
        type: 'Warning',
        reason: this.pick(['KernelOops', 'TaskHung', 'FrequentKubeletRestart', 'OOMKilling']) ?? 'KernelOops',
        message: 'kernel: BUG: unable to handle page fault',
        source: { component: 'kernel-monitor' },
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
    this.counts.warningEvents++;
  }

  private async renewSecret(): Promise<void> {
    const now = Date.now();
    const { certPem, keyPem } = selfSignedCertificate({ commonName: 'churn.example', notBefore: new Date(now - 60_000), notAfter: new Date(now + 90 * 86_400_000) });
    const name = `${this.options.prefix}-tls`;
    const body = { metadata: { name, labels: this.options.label }, type: 'kubernetes.io/tls', stringData: { 'tls.crt': certPem, 'tls.key': keyPem } };
    const path = `/api/v1/namespaces/${this.options.secretNamespace}/secrets`;
    try {
      await this.options.transport.json({ method: 'PUT', path: `${path}/${name}`, body });
    } catch {
      await this.options.transport.json({ method: 'POST', path, body });
    }
    this.counts.secretsRenewed++;
  }
}

/** Open sockets and resident memory of a process, from /proc (Linux). */
export function vitals(pid: number): { sockets: number; rssMb: number } {
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      // closed between readdir and readlink
    }
  }
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { sockets, rssMb: Math.round(Number(rss ?? 0) / 1024) };
}

export interface ScenarioCounts {
  readonly scenario: string;
  readonly rounds: number;
  readonly faults: number;
  readonly churn: number;
  readonly churnFailed: number;
  /** Events acknowledged into the store. */
  readonly events: number;
  /** Distinct ids the receiver accepted. */
  readonly delivered: number;
  /** Stored ids the receiver never accepted. */
  readonly lost: number;
  /** Accepted deliveries beyond the first of each id (at-least-once: allowed, counted). */
  readonly duplicated: number;
  readonly maxRecoveryMs: number;
  readonly maxRssMb: number;
  readonly maxSockets: number;
}

/** Prints the scenario's one line (with any counts of its own after the common ones) and appends it to .dev/faults/results.jsonl (docs/reliability.md takes its tables from there). */
export function report(counts: ScenarioCounts & Readonly<Record<string, string | number>>): string {
  const line = `faults ${counts.scenario}: seed=${SEED} ${Object.entries(counts)
    .filter(([k]) => k !== 'scenario')
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ')}`;
  console.log(`      ${line}`);
  const dir = join(ROOT, '.dev/faults');
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, 'results.jsonl'), `${JSON.stringify({ at: new Date().toISOString(), seed: SEED, maxDownS: MAX_DOWN_S, ...counts })}\n`);
  return line;
}

export async function count(c: TestCluster, resource: 'nodes' | 'pods'): Promise<number> {
  const out = await c.kubectlOk(['get', resource, ...(resource === 'pods' ? ['-A'] : []), '-o', 'name']);
  return out.split('\n').filter((l) => l.trim() !== '').length;
}

/**
 * Milliseconds until the operator's Pod and Node counts on /metrics equal a fresh list (the cluster holds still
 * meanwhile); with `status`, until the policy's status says so too: status.inventory equal to the list, and the
 * APIServerResponsive and Ready conditions True.
 */
export async function recovery(c: TestCluster, op: OperatorProcess, limitMs: number, options: { status?: boolean } = {}): Promise<number> {
  const started = Date.now();
  let seen = '';
  let metricsAt: number | undefined;
  await waitFor(
    async () => {
      const [pods, nodes, mPods, mNodes, policy] = await Promise.all([
        count(c, 'pods'),
        count(c, 'nodes'),
        op.metric('dcp_inventory_pods'),
        op.metric('dcp_inventory_nodes'),
        options.status === true ? getPolicy(c) : undefined,
      ]);
      seen = `api ${pods} pods ${nodes} nodes, operator ${mPods} pods ${mNodes} nodes`;
      if (pods !== mPods || nodes !== mNodes) return false;
      metricsAt ??= Date.now();
      if (options.status !== true) return true;
      const inventory = policy?.status?.inventory;
      const [responsive, ready] = [condition(policy, 'APIServerResponsive'), condition(policy, 'Ready')];
      seen += `, status ${inventory?.pods} pods ${inventory?.nodes} nodes, APIServerResponsive ${responsive?.status} (${responsive?.reason}), Ready ${ready?.status}`;
      return inventory?.pods === pods && inventory.nodes === nodes && responsive?.status === 'True' && ready?.status === 'True';
    },
    limitMs,
    options.status === true ? '/metrics and the policy status to equal a fresh list' : 'the caches to equal a fresh list',
    100,
  ).catch((err: unknown) => {
    throw new Error(`${String(err)} (${seen})`);
  });
  const ms = Date.now() - started;
  if (ms > 5000) {
    // Past the issue's 5 s: say which side lagged, and what the operator complained about meanwhile.
    const complaints = op.logs.filter((l) => l.level === 'warn' || l.level === 'error').slice(-5);
    console.log(`      slow recovery: /metrics true after ${(metricsAt ?? started) - started} ms, all after ${ms} ms (${seen}); last warnings: ${JSON.stringify(complaints)}`);
  }
  return ms;
}

/** One round's figures, appended to .dev/faults/results.jsonl beside the scenario's line (the spread behind its maxima). */
export function reportRound(scenario: string, round: number, figures: Readonly<Record<string, number | string>>): void {
  const dir = join(ROOT, '.dev/faults');
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, 'results.jsonl'), `${JSON.stringify({ at: new Date().toISOString(), seed: SEED, scenario, round, ...figures })}\n`);
}

/** The worst of a scenario's rounds: recovery time, RSS and open sockets, as report() prints them. */
export class Peaks {
  maxRecoveryMs = 0;
  maxRssMb = 0;
  maxSockets = 0;

  recovered(ms: number): void {
    this.maxRecoveryMs = Math.max(this.maxRecoveryMs, ms);
  }

  /** Reads the process's vital signs, keeps the peaks and returns this reading. */
  observe(pid: number): { sockets: number; rssMb: number } {
    const v = vitals(pid);
    this.maxRssMb = Math.max(this.maxRssMb, v.rssMb);
    this.maxSockets = Math.max(this.maxSockets, v.sockets);
    return v;
  }
}

/** What a receiver has accepted: every delivery (duplicates included) and the distinct ids. */
export interface Accepted {
  readonly deliveries: number;
  readonly ids: ReadonlySet<string>;
}

export interface Drained {
  /** Ids acknowledged into the store. */
  readonly stored: Set<string>;
  /** Stored ids the receiver never accepted. */
  readonly lost: string[];
}

/** Waits (up to limitMs) until every id in the store has reached the receiver; then the stored ids and those still missing. */
export async function drainToSink(dataDir: string, accepted: () => Accepted, limitMs = 60_000): Promise<Drained> {
  let stored = new Set<string>();
  let lost: string[] = [];
  await waitFor(
    async () => {
      stored = await storeIds(dataDir);
      const { ids } = accepted();
      lost = [...stored].filter((id) => !ids.has(id));
      return lost.length === 0;
    },
    limitMs,
    'the sink to have every stored event',
    500,
  ).catch(() => undefined);
  return { stored, lost };
}

/** report() for a scenario whose events went to one receiver: the churn, drain and peak counts filled in. */
export function reportDrained(scenario: string, faults: number, churn: Churn, drained: Drained, accepted: Accepted, peaks: Peaks): string {
  return report({
    scenario,
    rounds: ROUNDS,
    faults,
    churn: churn.total,
    churnFailed: churn.counts.failed,
    events: drained.stored.size,
    delivered: accepted.ids.size,
    lost: drained.lost.length,
    duplicated: accepted.deliveries - accepted.ids.size,
    maxRecoveryMs: peaks.maxRecoveryMs,
    maxRssMb: peaks.maxRssMb,
    maxSockets: peaks.maxSockets,
  });
}

/**
 * A scenario's corner of the cluster: its namespace, the churn in it (Pods, kwok Nodes, Events, a TLS Secret named
 * after the prefix) on its own seeded stream, and cleanup of all of it.
 */
export class FaultScene {
  readonly namespace: string;
  readonly churn: Churn;

  /** seedOffset keeps each scenario's churn stream apart from the others' under one seed. */
  constructor(
    private readonly c: TestCluster,
    private readonly prefix: string,
    seedOffset: number,
  ) {
    this.namespace = prefix;
    this.churn = new Churn({ transport: new KubeClient(c.kc), random: seeded(SEED + seedOffset), namespace: prefix, secretNamespace: 'dcp-system', prefix, label: { [RUN_LABEL]: c.runId } });
  }

  /** No operator left from an earlier test, no policy, and the scenario's namespace. */
  async create(): Promise<void> {
    killAllOperators();
    await this.c.resetPolicy();
    await this.c.ensureNamespace(this.namespace);
  }

  /**
   * A new `dcp run` (on its own kubeconfig and flags if given) collecting into one http sink at sinkUrl (named regional;
   * moreSinks besides), on a policy with control-plane (and billing) intervals of 10 s so rounds see events; resolves
   * once the policy is Ready.
   */
  async collectInto(sinkUrl: string, options: { billing?: boolean; dataDir?: string; moreSinks?: readonly SinkSpec[]; kubeconfig?: string; args?: string[] } = {}): Promise<OperatorProcess> {
    const op = new OperatorProcess(options.kubeconfig ?? this.c.kubeconfigPath, options.args ?? [], options.dataDir);
    await op.started();
    const categories = { controlPlane: { intervalSeconds: 10 }, ...(options.billing === true ? { billing: { intervalSeconds: 10 } } : {}) };
    const sinks = [{ name: 'regional', type: 'http', url: sinkUrl, region: REGION }, ...(options.moreSinks ?? [])];
    await applyOk(this.c, policyYaml({ categories, export: { sinks } }));
    await readyAtGeneration(this.c);
    return op;
  }

  /**
   * Stops the churn, then the operators (removing the data directories they own) and the receiver; on an owned
   * cluster also deletes the policy and everything the churn made.
   */
  async cleanup(operators: readonly (OperatorProcess | undefined)[], receiver: { close(): Promise<void> } | undefined): Promise<void> {
    await this.churn.stop();
    for (const op of operators) {
      await op?.stop();
      op?.cleanup();
    }
    killAllOperators();
    await receiver?.close();
    if (!this.c.owned) return;
    await this.c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
    await this.c.kubectl(['delete', 'namespace', this.namespace, '--wait=false']);
    await this.c.kubectl(['delete', 'nodes', '-l', `${RUN_LABEL}=${this.c.runId}`, '--wait=false']);
    await this.c.kubectl(['-n', 'dcp-system', 'delete', 'secret', `${this.prefix}-tls`, '--ignore-not-found']);
  }
}

/** Billing intervals in order: the gaps, overlaps and repeated intervals among them (each must be none). */
export function billingFaults(events: readonly DcpEvent[]): { intervals: number; gaps: string[]; overlaps: string[]; repeated: string[] } {
  const usage = events.filter((e) => e.name === 'CoreUsage').map((e) => ({ start: String(e.data['intervalStart']), end: String(e.data['intervalEnd']) }));
  usage.sort((a, b) => a.start.localeCompare(b.start));
  const gaps: string[] = [];
  const overlaps: string[] = [];
  const repeated: string[] = [];
  for (let i = 1; i < usage.length; i++) {
    const prev = usage[i - 1];
    const cur = usage[i];
    if (prev === undefined || cur === undefined) continue;
    if (cur.start === prev.start) repeated.push(cur.start);
    else if (Date.parse(cur.start) < Date.parse(prev.end)) overlaps.push(`${prev.start}..${prev.end} / ${cur.start}`);
    else if (cur.start !== prev.end) gaps.push(`${prev.end}..${cur.start}`);
  }
  return { intervals: usage.length, gaps, overlaps, repeated };
}

/**
 * The start of a scenario that compares each round with the calm before it: the churn runs a moment, holds still
 * until the operator equals a fresh list (status included), and the operator's vital signs become the baseline.
 * Returns them with the number of caches the operator runs (from /metrics), which bounds its reconnects.
 */
export async function warmUp(c: TestCluster, op: OperatorProcess, churn: Churn, peaks: Peaks): Promise<{ baseline: { sockets: number; rssMb: number }; caches: number }> {
  const caches = (await op.metrics()).split('\n').filter((l) => l.startsWith('dcp_watch_cache_objects{')).length;
  churn.start();
  await sleep(2000);
  await churn.pause();
  await recovery(c, op, 45_000, { status: true });
  const baseline = peaks.observe(op.child.pid ?? 0);
  churn.resume();
  return { baseline, caches };
}
