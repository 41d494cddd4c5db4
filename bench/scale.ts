// `make bench-scale`: one local cluster grown size by size (1k → 100k Deployment-style Pods, 30 per Node); at each size, dcp run
// over protobuf and over JSON, the client-node informer and the counts-only floor (and kube-state-metrics with KSM_BIN) one after
// another: time and CPU to synced, RSS after sync and after churn, CPU per 10k watch events, change → /metrics and → status.
// Writes docs/benchmarks.md, bench/results/<date>.json and docs/benchmarks.png.
//   node dist/bench/scale.js [--sizes 1000,10000,30000,60000,100000] [--churn-seconds 300] [--rate 500] [--latency-seconds 10]
//                            [--programs dcp-protobuf,dcp-json,informer,floor] [--smoke] [--out-dir .]
//   node dist/bench/scale.js --report bench/results/A.json,bench/results/B.json   (one report from runs of single sizes)
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { waitForDefaultServiceAccount } from '../hack/fleet.js';
import { KubeClient } from '../src/kube/client.js';
import { ROOT, startBenchCluster, type BenchCluster } from './cluster.js';
import { baselineSynced, changeLatency, measure, percentile, procStats, stop } from './measure.js';
import { renderPlot } from './plot.js';
import { churn, growFleet, PODS_PER_NODE, prepareFleet } from './scale-fleet.js';
import { incomplete, writeReport, type Run, type ScaleResult, type SizeResult } from './scale-report.js';

const PROGRAMS = ['dcp-protobuf', 'dcp-json', 'informer', 'floor', 'kube-state-metrics'] as const;
type Program = (typeof PROGRAMS)[number];

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

/** The RSS of the cluster's kube-apiserver, found by its cluster name on the command line. */
function apiServerRssMb(cluster: string): number | undefined {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes('kube-apiserver') && cmd.includes(`/${cluster}/`)) return Math.round(procStats(Number(pid)).rssMb);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

async function deleteLatencyPods(client: KubeClient): Promise<void> {
  // A collection delete answers when all are gone; past the API server's 60 s request timeout it hangs up while the
  // deletion goes on. Either way, what counts is that the Pods are gone, polled below.
  try {
    await client.json({ method: 'DELETE', path: '/api/v1/namespaces/bench/pods', query: { gracePeriodSeconds: 0 }, idleTimeoutMs: 600_000 });
  } catch (err) {
    console.log(`    deleting the latency Pods: ${err instanceof Error ? err.message : String(err)}; waiting for them to go`);
  }
  for (let i = 0; i < 600; i++) {
    const list = (await client.json({ path: '/api/v1/namespaces/bench/pods', query: { limit: 1 } })) as { items: unknown[] };
    if (list.items.length === 0) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

interface Args {
  sizes: number[];
  churnSeconds: number;
  rate: number;
  latencySeconds: number;
  programs: Program[];
  outDir: string;
  smoke: boolean;
  /** Result files to merge into one report instead of measuring (a long run done one size at a time). */
  report: string[] | undefined;
}

function args(): Args {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: process.env.SIZES ?? '1000,10000,30000,60000,100000' },
      'churn-seconds': { type: 'string', default: process.env.CHURN_SECONDS ?? '300' },
      rate: { type: 'string', default: process.env.RATE ?? '500' },
      'latency-seconds': { type: 'string', default: '10' },
      programs: { type: 'string', default: 'dcp-protobuf,dcp-json,informer,floor' },
      'out-dir': { type: 'string', default: ROOT },
      smoke: { type: 'boolean', default: false },
      report: { type: 'string' },
    },
  });
  const programs = values.programs.split(',').map((p) => {
    if (!(PROGRAMS as readonly string[]).includes(p)) throw new Error(`unknown program ${p}; one of ${PROGRAMS.join(', ')}`);
    return p as Program;
  });
  if (process.env.KSM_BIN !== undefined && !programs.includes('kube-state-metrics')) programs.push('kube-state-metrics');
  const smoke = values.smoke === true;
  return {
    // The smoke (in make test) proves the whole path on a tiny fleet; its numbers mean nothing.
    sizes: smoke ? [150] : values.sizes.split(',').map(Number),
    churnSeconds: smoke ? 2 : Number(values['churn-seconds']),
    rate: smoke ? 50 : Number(values.rate),
    latencySeconds: smoke ? 2 : Number(values['latency-seconds']),
    programs,
    outDir: resolve(values['out-dir']),
    smoke,
    report: values.report?.split(',').map((f) => resolve(f)),
  };
}

async function main(): Promise<void> {
  const a = args();
  if (a.report !== undefined) {
    await writeResult(a.outDir, mergeResults(a.report));
    return;
  }
  const startedAt = new Date();
  let cluster: BenchCluster | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'dcp-bench-scale-'));
  const children = new Set<ChildProcess>();
  const cleanup = (): void => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    cluster?.delete();
    rmSync(dataDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  const sizes: SizeResult[] = [];
  let stoppedBecause: string | undefined;
  const loadBefore = loadavg();
  try {
    cluster = await startBenchCluster();
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfig);
    const client = new KubeClient(kc);
    cluster.kubectl(['apply', '-f', join(ROOT, 'crds')]);
    // Right after the apply the CRD may have no status yet, which `kubectl wait` reports as an error: ask again.
    for (let i = 0; ; i++) {
      try {
        cluster.kubectl(['wait', '--for=condition=Established', 'crd/datacollectionpolicies.datacollection.arc.io']);
        break;
      } catch (err) {
        if (i >= 20) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    cluster.kubectl(['create', 'namespace', 'dcp-system']);
    cluster.kubectl(['create', 'namespace', 'bench']);
    await waitForDefaultServiceAccount(client, 'bench');
    cluster.kubectl(['apply', '-f', join(ROOT, 'deploy/samples/default-policy.yaml')]);
    const owners = await prepareFleet(client);
    let seeded = 0;
    for (const [s, size] of a.sizes.entries()) {
      console.log(`==> growing the fleet to ${size} Pods on ${Math.ceil(size / PODS_PER_NODE)} Nodes`);
      const t0 = performance.now();
      try {
        await growFleet(client, owners, seeded, size);
        await cluster.settle(size);
      } catch (err) {
        stoppedBecause = `seeding ${size} Pods failed: ${err instanceof Error ? err.message : String(err)} (API server RSS ${apiServerRssMb(cluster.name) ?? '?'} MB)`;
        console.log(`    ${stoppedBecause}`);
        break;
      }
      seeded = size;
      const seedSeconds = (performance.now() - t0) / 1000;
      const sample = (await client.json({ path: '/api/v1/namespaces/shop/pods', query: { limit: 1 } })) as { items: unknown[] };
      const podJsonBytes = Buffer.byteLength(JSON.stringify(sample.items[0] ?? {}));
      console.log(`    seeded in ${seedSeconds.toFixed(1)} s; one Pod is ${podJsonBytes} bytes of JSON; API server RSS ${apiServerRssMb(cluster.name) ?? '?'} MB`);
      await new Promise((r) => setTimeout(r, a.smoke ? 500 : 5000));
      // Alternate: each size starts with a different program, so no program always runs on the coolest machine.
      const order = a.programs.map((_, i) => a.programs[(i + s) % a.programs.length] as Program);
      const runs: Run[] = [];
      for (const program of order) {
        const run = await runProgram(program, cluster, client, dataDir, size, a, children);
        console.log(`    ${JSON.stringify(run)}`);
        runs.push(run);
      }
      const heap = liveHeap(cluster.kubeconfig);
      console.log(`    live heap after sync and GC: ${JSON.stringify(heap)}`);
      sizes.push({ pods: size, nodes: Math.ceil(size / PODS_PER_NODE), seedSeconds, podJsonBytes, apiServerRssMb: apiServerRssMb(cluster.name), runs, heap });
      const next = a.sizes[s + 1];
      if (next !== undefined) await writeOutputs(a, startedAt, loadBefore, sizes, `the run was cut off while growing to or measuring ${next} Pods (results up to ${size} are complete)`);
    }
    client.destroy();
  } finally {
    cleanup();
  }
  await writeOutputs(a, startedAt, loadBefore, sizes, stoppedBecause);
}

/** The caches alone (the operator's reflectors for Pods and Nodes, no collection): live heap after a GC, per wire format. */
function liveHeap(kubeconfig: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const wire of ['protobuf', 'json']) {
    const line = execFileSync(process.execPath, ['--expose-gc', join(ROOT, 'dist/bench/watch-sync.js'), '--kubeconfig', kubeconfig, '--mode', 'reflector', '--wire', wire], { encoding: 'utf8' });
    out[`reflector-${wire}`] = (JSON.parse(line.trim().split('\n').pop() ?? '{}') as { heapUsedMB: number }).heapUsedMB;
  }
  const floor = execFileSync(process.execPath, ['--expose-gc', join(ROOT, 'dist/bench/watch-sync.js'), '--kubeconfig', kubeconfig, '--mode', 'floor'], { encoding: 'utf8' });
  out['floor'] = (JSON.parse(floor.trim().split('\n').pop() ?? '{}') as { heapUsedMB: number }).heapUsedMB;
  return out;
}

/** Writes the results so far: after every size, so a run cut short still leaves its table and plot. */
async function writeOutputs(a: Args, startedAt: Date, loadBefore: number[], sizes: SizeResult[], stoppedBecause: string | undefined): Promise<void> {
  await writeResult(a.outDir, {
    date: startedAt.toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    load: { before: loadBefore, after: loadavg() },
    settings: { churnSeconds: a.churnSeconds, rate: a.rate, latencySeconds: a.latencySeconds, sizes: a.sizes },
    stoppedBecause,
    sizes,
  });
}

/** One result from runs of single sizes: their sizes in order, the first run's start, machine and settings, the last one's end load. */
function mergeResults(files: readonly string[]): ScaleResult {
  const runs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as ScaleResult).sort((x, y) => x.date.localeCompare(y.date));
  const [first] = runs;
  const last = runs[runs.length - 1];
  if (first === undefined || last === undefined) throw new Error('--report needs at least one results file');
  const sizes = runs.flatMap((r) => r.sizes).sort((x, y) => x.pods - y.pods);
  return {
    ...first,
    load: { before: first.load.before, after: last.load.after },
    settings: { ...first.settings, sizes: sizes.map((s) => s.pods) },
    // An earlier run that stopped at a size a later run measured is complete now: only the last run's stop counts.
    stoppedBecause: last.stoppedBecause,
    sizes,
  };
}

async function writeResult(outDir: string, result: ScaleResult): Promise<void> {
  const startedAt = new Date(result.date);
  const loadBefore = result.load.before;
  const sizes = result.sizes;
  const stamp = startedAt.toISOString().slice(0, 16).replace(/[:T]/g, '-');
  const resultsDir = join(outDir, 'bench/results');
  const docsDir = join(outDir, 'docs');
  mkdirSync(resultsDir, { recursive: true });
  mkdirSync(docsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
  const points = sizes.flatMap((s) => s.runs.filter((r) => !incomplete(r, s.pods)).map((r) => ({ program: r.program, pods: s.pods, rssMb: r.rssAfterSyncMb, syncS: r.syncS })));
  writeFileSync(join(docsDir, 'benchmarks.png'), await renderPlot(points, `${result.machine.cpus} cores, load ${loadBefore.map((l) => l.toFixed(1)).join('/')} at start; ${startedAt.toISOString().slice(0, 10)}`));
  writeFileSync(join(docsDir, 'benchmarks.md'), writeReport(result, `bench/results/${stamp}.json`));
  console.log(`wrote ${join(docsDir, 'benchmarks.md')}, docs/benchmarks.png and bench/results/${stamp}.json`);
}

async function runProgram(program: Program, cluster: BenchCluster, client: KubeClient, dataDir: string, pods: number, a: Args, children: Set<ChildProcess>): Promise<Run> {
  let metricsPort = 0;
  const dcpSynced = (line: string): string | undefined => {
    if (line.includes('"dcp run started"')) metricsPort = Number(/"metrics":"[^"]*:(\d+)"/.exec(line)?.[1] ?? 0);
    const m = line.includes('"caches synced"') ? /"nodes":(\d+),"pods":(\d+)/.exec(line) : null;
    return m ? `${m[1]} nodes, ${m[2]} pods` : undefined;
  };
  // Node flags as deployed (deploy/base/statefulset.yaml sets NODE_OPTIONS), so the figures are the Deployment's.
  const dcp = (wire: string): string[] => ['--max-semi-space-size=4', join(ROOT, 'dist/src/cli/main.js'), 'run', '--kubeconfig', cluster.kubeconfig, '--data-dir', dataDir, '--metrics-addr', '127.0.0.1:0', '--health-addr', '127.0.0.1:0', '--wire', wire];
  let m;
  if (program === 'dcp-protobuf' || program === 'dcp-json') {
    m = await measure(program, dcp(program === 'dcp-json' ? 'json' : 'protobuf'), dcpSynced, { timeoutMs: 600_000 });
  } else if (program === 'informer' || program === 'floor') {
    const script = program === 'informer' ? 'informer-baseline.js' : 'floor.js';
    m = await measure(program, [join(ROOT, 'dist/bench', script), cluster.kubeconfig], baselineSynced, { timeoutMs: 600_000 });
  } else {
    const port = await freePort();
    const telemetry = await freePort();
    const poll = async (): Promise<string | undefined> => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      let n = 0;
      for (let at = text.indexOf('\nkube_pod_info{'); at !== -1; at = text.indexOf('\nkube_pod_info{', at + 1)) n++;
      return n >= pods ? `${n} pods` : undefined;
    };
    const ksmArgs = ['--kubeconfig', cluster.kubeconfig, '--resources=pods,nodes', '--host=127.0.0.1', `--port=${port}`, '--telemetry-host=127.0.0.1', `--telemetry-port=${telemetry}`];
    m = await measure(program, ksmArgs, () => undefined, { bin: process.env.KSM_BIN ?? '', poll, timeoutMs: 600_000 });
  }
  children.add(m.child);
  const pid = m.child.pid ?? 0;
  const run: Run = { program, syncS: m.sample.syncMs / 1000, cpuToSyncS: m.sample.cpuS, rssAfterSyncMb: m.sample.rssMb, objects: m.sample.objects };
  try {
    if (a.churnSeconds > 0) {
      const before = procStats(pid).cpuS;
      const c = await churn(client, pods, a.rate, a.churnSeconds);
      // The watch has the last updates a moment after the server acknowledged them.
      await new Promise((r) => setTimeout(r, 1000));
      const after = procStats(pid);
      run.churn = { updates: c.updates, achievedRate: c.achievedRate, cpuS: after.cpuS - before, cpuPer10kEventsS: c.updates > 0 ? ((after.cpuS - before) / c.updates) * 10_000 : NaN, rssAfterMb: after.rssMb };
    }
    if ((program === 'dcp-protobuf' || program === 'dcp-json') && a.latencySeconds > 0 && metricsPort > 0) {
      const lat = await changeLatency(client, metricsPort, a.rate, a.latencySeconds);
      run.latency = {
        achievedRate: lat.achieved,
        metricsP50Ms: percentile(lat.metrics, 50),
        metricsP99Ms: percentile(lat.metrics, 99),
        statusP50Ms: percentile(lat.status, 50),
        statusP99Ms: percentile(lat.status, 99),
        changes: lat.metrics.length,
        watchP50Ms: percentile(lat.watch, 50),
        watchP99Ms: percentile(lat.watch, 99),
      };
      await deleteLatencyPods(client);
    }
  } finally {
    await stop(m.child);
    children.delete(m.child);
  }
  return run;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
