// `make bench` scale benchmark: on a fresh local cluster with NODES Nodes and PODS Pods, runs dcp-operator,
// a makeInformer baseline and a counts-only floor one after another, and prints sync time, CPU and RSS side
// by side; then measures how fast a Pod change reaches dcp's /metrics and the policy status.
//   node dist/bench/sync.js [--nodes 300] [--pods 10000] [--rate 500] [--seconds 10]
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { seedFleet, waitForDefaultServiceAccount } from '../hack/fleet.js';
import { KubeClient } from '../src/kube/client.js';
import { Conflict } from '../src/kube/errors.js';
import { ROOT, startBenchCluster, type BenchCluster } from './cluster.js';

const CLK_TCK = 100;

interface Sample {
  program: string;
  syncMs: number;
  cpuS: number;
  rssMb: number;
  objects: string;
}

function procStats(pid: number): { cpuS: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuS = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { cpuS, rssMb: rssKb / 1024 };
}

/** Starts a program and resolves when `isSynced` sees a line of its output; then samples CPU and RSS. */
async function measure(program: string, command: string[], isSynced: (line: string) => string | undefined): Promise<{ sample: Sample; child: ChildProcess; lines: string[] }> {
  const started = performance.now();
  const child = spawn(process.execPath, command, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const objects = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${program} did not sync in 180 s`)), 180_000);
    let buf = '';
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString('utf8');
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        const found = isSynced(line);
        if (found !== undefined) {
          clearTimeout(timer);
          resolve(found);
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${program} exited with ${code}:\n${lines.slice(-20).join('\n')}`)));
  });
  const syncMs = performance.now() - started;
  const pid = child.pid ?? 0;
  const { cpuS } = procStats(pid);
  await new Promise((r) => setTimeout(r, 2000));
  const { rssMb } = procStats(pid);
  return { sample: { program, syncMs, cpuS, rssMb, objects }, child, lines };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

const baselineSynced = (line: string): string | undefined => (line.startsWith('synced ') ? line.split(' ').slice(2).join(' ') : undefined);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function metricSum(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(' ').pop());
  return sum;
}

/**
 * Creates Pods at `rate`/s for `seconds` and, in parallel, reads dcp's /metrics and the policy status as
 * fast as they answer: the delay of the k-th create is when a reader first saw ≥ base + k Pods minus when
 * the API server acknowledged it.
 */
async function changeLatency(client: KubeClient, metricsPort: number, rate: number, seconds: number): Promise<{ achieved: number; metrics: number[]; status: number[] }> {
  const base = await metricSum(metricsPort, 'dcp_inventory_pods');
  const total = rate * seconds;
  const acks: number[] = [];
  const seenMetrics: number[] = [];
  const seenStatus: number[] = [];
  let done = false;
  const reader = async (read: () => Promise<number>, seen: number[]): Promise<void> => {
    while (!done || seen.length < acks.length) {
      const n = (await read()) - base;
      const t = performance.now();
      while (seen.length < n) seen.push(t);
      // Every 10 ms: fine enough to measure, light enough not to be the load being measured.
      await new Promise((r) => setTimeout(r, 10));
      if (done && performance.now() - (acks[acks.length - 1] ?? 0) > 15_000) break;
    }
  };
  const readStatus = async (): Promise<number> => {
    const p = (await client.json({ path: '/apis/datacollection.arc.io/v1alpha1/datacollectionpolicies/default' })) as { status?: { inventory?: { pods?: number } } };
    return p.status?.inventory?.pods ?? 0;
  };
  const readers = [reader(() => metricSum(metricsPort, 'dcp_inventory_pods'), seenMetrics), reader(readStatus, seenStatus)];
  const started = performance.now();
  let next = 0;
  const workers = Array.from({ length: 16 }, async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      const due = started + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      try {
        await client.json({ method: 'POST', path: '/api/v1/namespaces/bench/pods', body: { metadata: { name: `lat-${i}` }, spec: { nodeName: 'fleet-0000', containers: [{ name: 'c', image: 'x' }] } } });
      } catch (err) {
        if (!(err instanceof Conflict)) throw err;
      }
      acks.push(performance.now());
    }
  });
  await Promise.all(workers);
  const achieved = total / ((performance.now() - started) / 1000);
  done = true;
  acks.sort((a, b) => a - b);
  await Promise.all(readers);
  const delays = (seen: number[]) => acks.map((a, k) => (seen[k] ?? NaN) - a).filter((d) => Number.isFinite(d)).sort((a, b) => a - b);
  return { achieved, metrics: delays(seenMetrics), status: delays(seenStatus) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: process.env.NODES ?? '300' },
      pods: { type: 'string', default: process.env.PODS ?? '10000' },
      rate: { type: 'string', default: process.env.RATE ?? '500' },
      seconds: { type: 'string', default: '10' },
    },
  });
  const nodes = Number(values.nodes);
  const pods = Number(values.pods);
  let cluster: BenchCluster | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'dcp-bench-'));
  const children: ChildProcess[] = [];
  const cleanup = (): void => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    cluster?.delete();
    rmSync(dataDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    cluster = await startBenchCluster();
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfig);
    const client = new KubeClient(kc);
    // The CRD first: installing one makes the API server rebuild its OpenAPI document, seconds of CPU here.
    cluster.kubectl(['apply', '-f', join(ROOT, 'crds')]);
    cluster.kubectl(['wait', '--for=condition=Established', 'crd/datacollectionpolicies.datacollection.arc.io']);
    cluster.kubectl(['create', 'namespace', 'dcp-system']);
    cluster.kubectl(['create', 'namespace', 'bench']);
    await waitForDefaultServiceAccount(client, 'bench');
    cluster.kubectl(['apply', '-f', join(ROOT, 'deploy/samples/default-policy.yaml')]);
    console.log(`==> seeding ${nodes} nodes and ${pods} pods`);
    const t0 = performance.now();
    await seedFleet(client, { nodes, pods, warningEvents: false, failedRatio: 0, pendingRatio: 0 });
    await cluster.settle(pods);
    console.log(`    seeded and settled in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // Quiet period: the API server and kwok finish what the seeding started before anything is measured.
    await new Promise((r) => setTimeout(r, 5000));

    const samples: Sample[] = [];
    const dcpArgs = [join(ROOT, 'dist/src/cli/main.js'), 'run', '--kubeconfig', cluster.kubeconfig, '--data-dir', dataDir, '--metrics-addr', '127.0.0.1:0', '--health-addr', '127.0.0.1:0'];
    let metricsPort = 0;
    const dcpSynced = (line: string): string | undefined => {
      if (line.includes('"dcp run started"')) metricsPort = Number(/"metrics":"[^"]*:(\d+)"/.exec(line)?.[1] ?? 0);
      const m = line.includes('"caches synced"') ? /"nodes":(\d+),"pods":(\d+)/.exec(line) : null;
      return m ? `${m[1]} nodes, ${m[2]} pods` : undefined;
    };
    // The same objects for all three: each program syncs alone, then stops.
    for (const [program, command, synced] of [
      ['dcp-operator', dcpArgs, dcpSynced],
      ['informer (client-node)', [join(ROOT, 'dist/bench/informer-baseline.js'), cluster.kubeconfig], baselineSynced],
      ['floor (paged list, counts)', [join(ROOT, 'dist/bench/floor.js'), cluster.kubeconfig], baselineSynced],
    ] as const) {
      const r = await measure(program, [...command], synced);
      children.push(r.child);
      samples.push(r.sample);
      await stop(r.child);
    }
    console.log(`==> change latency: dcp-operator again; creating pods at ${values.rate}/s for ${values.seconds} s`);
    const dcp = await measure('dcp-operator', dcpArgs, dcpSynced);
    children.push(dcp.child);
    const lat = await changeLatency(client, metricsPort, Number(values.rate), Number(values.seconds));
    await stop(dcp.child);

    console.log(`\n${nodes} nodes / ${pods} pods then ${Number(values.rate) * Number(values.seconds)} Pods created for the latency run, 2 cores`);
    console.log(`${'program'.padEnd(28)} ${'sync s'.padStart(7)} ${'CPU s'.padStart(7)} ${'RSS MB'.padStart(7)}  objects`);
    for (const s of samples) console.log(`${s.program.padEnd(28)} ${(s.syncMs / 1000).toFixed(2).padStart(7)} ${s.cpuS.toFixed(2).padStart(7)} ${s.rssMb.toFixed(0).padStart(7)}  ${s.objects}`);
    // kube-state-metrics cannot be built here; PERFORMANCE.md's figures for the nearest size stand in.
    const ksm = pods >= 30_000 ? ['5.8-6.7', '5.7-7.0', '1138', '1,000 nodes / 30k pods'] : ['1.6-1.8', '-', '400', '300 nodes / 10k pods'];
    console.log(`${'kube-state-metrics v2.20.0'.padEnd(28)} ${ksm[0]?.padStart(7)} ${ksm[1]?.padStart(7)} ${ksm[2]?.padStart(7)}  (PERFORMANCE.md, ${ksm[3]}, same machine kind)`);
    const fmt = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(0)} ms, p99 ${percentile(xs, 99).toFixed(0)} ms (${xs.length} changes)`;
    console.log(`\nPod change → dcp /metrics:       ${fmt(lat.metrics)} at ${lat.achieved.toFixed(0)} creates/s achieved`);
    console.log(`Pod change → policy status:      ${fmt(lat.status)}`);
  } finally {
    cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
