// `make bench` scale benchmark: on a fresh local cluster with NODES Nodes and PODS Pods, runs dcp-operator,
// a makeInformer baseline and a counts-only floor one after another, and prints sync time, CPU and RSS side
// by side; then measures how fast a Pod change reaches dcp's /metrics and the policy status.
//   node dist/bench/sync.js [--nodes 300] [--pods 10000] [--rate 500] [--seconds 10]
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { seedFleet, waitForDefaultServiceAccount } from '../hack/fleet.js';
import { KubeClient } from '../src/kube/client.js';
import { ROOT, startBenchCluster, type BenchCluster } from './cluster.js';
import { baselineSynced, changeLatency, measure, percentile, stop, type Sample } from './measure.js';

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
