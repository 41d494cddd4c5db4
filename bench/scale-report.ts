// Turns a bench-scale result into docs/benchmarks.md: the machine and its load, one table per size, and each target met or missed.

export interface Run {
  program: string;
  syncS: number;
  cpuToSyncS: number;
  rssAfterSyncMb: number;
  objects: string;
  churn?: { updates: number; achievedRate: number; cpuS: number; cpuPer10kEventsS: number; rssAfterMb: number };
  latency?: {
    achievedRate: number;
    metricsP50Ms: number;
    metricsP99Ms: number;
    statusP50Ms: number;
    statusP99Ms: number;
    changes: number;
    /** The same delay for a plain watch in the bench process: the API server's and the machine's share. */
    watchP50Ms?: number;
    watchP99Ms?: number;
  };
}

export interface SizeResult {
  pods: number;
  nodes: number;
  seedSeconds: number;
  podJsonBytes: number;
  apiServerRssMb: number | undefined;
  runs: Run[];
  /** Live heap MB after sync and a GC of the Pod and Node caches alone (bench/watch-sync.ts), by mode. */
  heap?: Record<string, number>;
}

export interface ScaleResult {
  date: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string };
  load: { before: number[]; after: number[] };
  settings: { churnSeconds: number; rate: number; latencySeconds: number; sizes: number[] };
  stoppedBecause: string | undefined;
  sizes: SizeResult[];
}

/** kube-state-metrics v2.20.0, pods and nodes, measured by the maintainers on this kind of machine (PERFORMANCE.md): the best of their runs. */
const KSM: Readonly<Record<number, { syncS: number; cpuS: number; rssMb: number }>> = {
  10_000: { syncS: 1.8, cpuS: 2.0, rssMb: 407 },
  30_000: { syncS: 6.4, cpuS: 6.0, rssMb: 1095 },
};

const f = (n: number | undefined, digits = 1): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits));

/**
 * Pods the program said it had cached when it synced ("34 nodes, 1000 pods" or "pods=1000 nodes=34"), if it said so.
 * NOTE: client-node's informer lists without paging; at 100k Pods the list (about 800 MB of JSON) is larger than
 * a V8 string can be, and its start() still resolves, with no Pods: such a run is marked, not shown as a sync.
 */
export function cachedPods(r: Run): number | undefined {
  const m = /(\d+) pods|pods=(\d+)/.exec(r.objects);
  return m ? Number(m[1] ?? m[2]) : undefined;
}

/** A run that synced with fewer Pods than the size: its times and memory describe a failed list. */
export const incomplete = (r: Run, pods: number): boolean => (cachedPods(r) ?? pods) < pods;

function table(s: SizeResult): string {
  const rows = [
    '| program | synced s | CPU s to sync | RSS after sync MB | churn updates/s reached | RSS after churn MB | CPU s / 10k events | change→/metrics p50 / p99 ms | change→status p50 / p99 ms | change→plain watch p50 / p99 ms |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of s.runs) {
    const lat = r.latency;
    rows.push(
      `| ${r.program}${incomplete(r, s.pods) ? ` (**incomplete**: cached ${cachedPods(r)} of ${s.pods} Pods; its list failed)` : ''} | ${f(r.syncS, 2)} | ${f(r.cpuToSyncS, 2)} | ${f(r.rssAfterSyncMb, 0)} | ${f(r.churn?.achievedRate, 0)} | ${f(r.churn?.rssAfterMb, 0)} | ${f(r.churn?.cpuPer10kEventsS, 2)} | ${lat ? `${f(lat.metricsP50Ms, 0)} / ${f(lat.metricsP99Ms, 0)}` : '–'} | ${lat ? `${f(lat.statusP50Ms, 0)} / ${f(lat.statusP99Ms, 0)}` : '–'} | ${lat?.watchP50Ms !== undefined ? `${f(lat.watchP50Ms, 0)} / ${f(lat.watchP99Ms, 0)}` : '–'} |`,
    );
  }
  const ksm = KSM[s.pods];
  if (ksm !== undefined) rows.push(`| kube-state-metrics (PERFORMANCE.md, not this run) | ${ksm.syncS} | ${ksm.cpuS} | ${ksm.rssMb} | | | | | | |`);
  return rows.join('\n');
}

/** Heap per cached Pod (with its share of Nodes, 1 per 30 Pods): the slope of the live heap between the smallest and largest size. */
function heapSlopes(result: ScaleResult): string {
  const withHeap = result.sizes.filter((s) => s.heap !== undefined);
  if (withHeap.length === 0) return 'not measured';
  const rows = ['| Pods | ' + Object.keys(withHeap[0]?.heap ?? {}).join(' MB | ') + ' MB |', '|---|' + Object.keys(withHeap[0]?.heap ?? {}).map(() => '---|').join('')];
  for (const s of withHeap) rows.push(`| ${s.pods} | ${Object.values(s.heap ?? {}).map((v) => f(v, 1)).join(' | ')} |`);
  const first = withHeap[0];
  const last = withHeap[withHeap.length - 1];
  if (first !== undefined && last !== undefined && last.pods > first.pods) {
    const per = Object.entries(last.heap ?? {}).map(([k, v]) => `${k} ${f(((v - (first.heap?.[k] ?? 0)) * 1024 * 1024) / (last.pods - first.pods), 0)} bytes`);
    rows.push('', `Live heap per added Pod (and 1/30 of a Node), ${first.pods} → ${last.pods}: ${per.join(', ')}.`);
  }
  return rows.join('\n');
}

function verdict(ok: boolean | undefined): string {
  return ok === undefined ? 'not measured' : ok ? '**met**' : '**missed**';
}

function targets(result: ScaleResult): string {
  const lines: string[] = [];
  const dcp = (s: SizeResult): Run | undefined => s.runs.find((r) => r.program === 'dcp-protobuf');
  for (const pods of [10_000, 30_000]) {
    const s = result.sizes.find((x) => x.pods === pods);
    const r = s === undefined ? undefined : dcp(s);
    const ksm = KSM[pods];
    if (ksm === undefined) continue;
    lines.push(
      `- ${pods / 1000}k Pods, time to synced ≤ 0.7 × ${ksm.syncS} s = ${f(0.7 * ksm.syncS, 2)} s: ${r ? `${f(r.syncS, 2)} s, ` : ''}${verdict(r && r.syncS <= 0.7 * ksm.syncS)}`,
      `- ${pods / 1000}k Pods, CPU to sync ≤ 0.5 × ${ksm.cpuS} s = ${f(0.5 * ksm.cpuS, 2)} s: ${r ? `${f(r.cpuToSyncS, 2)} s, ` : ''}${verdict(r && r.cpuToSyncS <= 0.5 * ksm.cpuS)}`,
    );
  }
  const at30 = result.sizes.find((x) => x.pods === 30_000);
  const r30 = at30 === undefined ? undefined : dcp(at30);
  lines.push(`- RSS ≤ 150 MB at 30k Pods: ${r30 ? `${f(r30.rssAfterSyncMb, 0)} MB, ` : ''}${verdict(r30 && r30.rssAfterSyncMb <= 150)}`);
  const measured = result.sizes.map((s) => ({ pods: s.pods, r: dcp(s) })).filter((x): x is { pods: number; r: Run } => x.r !== undefined);
  if (measured.length >= 2) {
    const first = measured[0] as { pods: number; r: Run };
    const last = measured[measured.length - 1] as { pods: number; r: Run };
    const perPodKb = ((last.r.rssAfterSyncMb - first.r.rssAfterSyncMb) * 1024) / (last.pods - first.pods);
    lines.push(`- RSS growth < 1 kB per added Pod (${first.pods} → ${last.pods}): ${f(perPodKb, 2)} kB, ${verdict(perPodKb < 1)}`);
  } else {
    lines.push('- RSS growth < 1 kB per added Pod: not measured (one size only)');
  }
  const lat = measured.map((x) => x.r.latency).filter((l) => l !== undefined);
  const worstMetrics = lat.length === 0 ? undefined : Math.max(...lat.map((l) => l.metricsP99Ms));
  const worstStatus = lat.length === 0 ? undefined : Math.max(...lat.map((l) => l.statusP99Ms));
  lines.push(`- change→/metrics p99 ≤ 100 ms (worst size): ${worstMetrics !== undefined ? `${f(worstMetrics, 0)} ms, ` : ''}${verdict(worstMetrics === undefined ? undefined : worstMetrics <= 100)}`);
  lines.push(`- change→status p99 ≤ 300 ms (worst size): ${worstStatus !== undefined ? `${f(worstStatus, 0)} ms, ` : ''}${verdict(worstStatus === undefined ? undefined : worstStatus <= 300)}`);
  return lines.join('\n');
}

export function writeReport(result: ScaleResult, resultsFile: string): string {
  const m = result.machine;
  const load = (l: number[]): string => l.map((x) => x.toFixed(1)).join(' / ');
  const sizes = result.sizes
    .map(
      (s) =>
        `### ${s.pods.toLocaleString('en-US')} Pods on ${s.nodes.toLocaleString('en-US')} Nodes\n\nSeeded in ${f(s.seedSeconds)} s; a Pod is ${s.podJsonBytes} bytes of JSON; the API server's RSS was ${s.apiServerRssMb ?? '?'} MB.\n\n${table(s)}`,
    )
    .join('\n\n');
  return `# Benchmarks

Generated by \`make bench-scale\` (bench/scale.ts) on ${result.date.slice(0, 16).replace('T', ' ')} UTC; raw figures in \`${resultsFile}\`.

![RSS and time to synced against Pod count](benchmarks.png)

## What runs

One local cluster (hack/cluster: upstream kube-apiserver, etcd and kwok Nodes) is grown size by size with Deployment-style
Pods (owner reference, labels, annotations, two containers with requests, limits, probes and env, a projected token volume;
kwok fills in their status), 30 per Node. At each size these run one after another against the same objects, the order
rotating from size to size:

- **dcp-protobuf**: \`dcp run --wire protobuf\` (the default) with the sample policy, so collection runs;
- **dcp-json**: the same with \`--wire json\`;
- **informer**: @kubernetes/client-node 1.4 \`makeInformer\` for Pods and Nodes (whole objects cached);
- **floor**: a paged LIST (limit 500) and a watch over https with \`JSON.parse\`, counts only;
- kube-state-metrics when \`KSM_BIN\` names its binary (not available here: the Go proxy does not serve it; the
  maintainers' figures from PERFORMANCE.md are shown for comparison, measured separately).

Per program: wall time from start to synced (process start included), its CPU seconds until then, RSS 2 s later; then
${result.settings.churnSeconds} s of churn at ${result.settings.rate} Pod updates/s (an annotation patch: one MODIFIED event
per update) and the CPU it took per 10,000 events and RSS after it; for dcp, Pods created at ${result.settings.rate}/s for
${result.settings.latencySeconds} s and the delay until \`dcp_inventory_pods\` on /metrics and the policy's status count them
(each from the API server's answer to the create to the answer of the first read that shows it, so a read's own round
trip is included), and for reference the same delay for a plain watch in the bench process: what any client's watch
takes on this API server and machine.

## Machine and load

${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}. The machine is shared: the API server, etcd, kwok, the
load generator and the program measured all run on these ${m.cpus} cores, and other engineers' test runs were running at the
same time. Load average (1/5/15 min) at start ${load(result.load.before)}, at the end ${load(result.load.after)}: with
${m.cpus} cores, anything above ${m.cpus} means the programs waited for CPU, so absolute times are pessimistic and noisy;
compare programs within one size (they ran minutes apart under similar load), not across runs.
${result.stoppedBecause !== undefined ? `\n**The run stopped early:** ${result.stoppedBecause}\n` : ''}
## Results

${sizes}

## Memory per cached object

The operator's Pod and Node caches alone (\`bench/watch-sync.ts --mode reflector\`, no collection), and the floor, which
keeps nothing: live heap after sync and a full GC.

${heapSlopes(result)}

## Targets (issue 17), dcp-protobuf

${targets(result)}

## Reproduce

\`\`\`sh
make bench-scale                                   # all sizes: 1k, 10k, 30k, 60k, 100k (an hour or more, ~10 GB for the API server at 100k)
make bench-scale SIZES=1000,10000 CHURN_SECONDS=60 # a shorter run
KSM_BIN=/path/to/kube-state-metrics make bench-scale
\`\`\`

Heap per cached object (live heap after a GC, no collection running):
\`node --expose-gc dist/bench/watch-sync.js --kubeconfig F --mode reflector --wire protobuf\` at two sizes.
`;
}
