// `make demo`: a local cluster with a simulated fleet, dcp-operator running against it, and what it collects.
//   node dist/hack/demo.js [--nodes 50] [--pods 1500] [--once]
// --once (or DEMO_ONCE=1) exits after the overview; otherwise it follows changes until Ctrl-C.
// Either way it stops everything it started: the operator and the cluster.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { renderEventsTable } from '../src/cli/events.js';
import { KubeClient } from '../src/kube/client.js';
import type { DcpEvent } from '../src/api/event.js';
import { showAuditExport, writeDemoAuditPolicy } from './demo-audit.js';
import { fleetNode, seedFleet } from './fleet.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DEMO = join(ROOT, '.dev/demo');
const CLUSTER = 'dcp-demo';
const KUBECONFIG = join(DEMO, 'kubeconfig');
const CLUSTER_SH = join(ROOT, 'hack/cluster/cluster.sh');
// The kubectl of the minor the cluster runs (K8S_VERSION, else the default).
const KUBECTL = join(ROOT, execFileSync(join(ROOT, 'hack/cluster/versions.sh'), ['bin'], { encoding: 'utf8' }).trim(), 'kubectl');
const DCP = join(ROOT, 'dist/src/cli/main.js');

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
const step = (s: string) => console.log(`${bold('==>')} ${s} ${dim(`(${elapsed()})`)}`);
const heading = (s: string) => console.log(`\n${bold(`── ${s} ${'─'.repeat(Math.max(0, 72 - s.length))}`)}`);

function run(file: string, args: string[], input?: string): Promise<string> {
  return new Promise((res, rej) => {
    const child = execFile(file, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => (err ? rej(new Error(`${args.join(' ')}: ${stderr || err.message}`)) : res(stdout)));
    if (input !== undefined) child.stdin?.end(input);
  });
}
const kubectl = (...args: string[]) => run(KUBECTL, ['--kubeconfig', KUBECONFIG, ...args]);
const dcp = (...args: string[]) => run(process.execPath, [DCP, ...args]);

/** The newest `n` events of each category, oldest first: a sample that shows every category. */
function newestPerCategory(events: readonly DcpEvent[], n: number): DcpEvent[] {
  const byCategory = new Map<string, DcpEvent[]>();
  for (const e of events) byCategory.set(e.category, [...(byCategory.get(e.category) ?? []), e].slice(-n));
  return [...byCategory.values()].flat().sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}

interface PolicyStatusView {
  observedGeneration?: number;
  conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
  inventory?: { nodes: number; pods: number; vCores: number };
  categories?: Record<string, { enabled: boolean; eventsEmitted: number; lastEventTime?: string }>;
  store?: { events: number; bytes: number; oldestEventTime?: string };
}

async function policyStatus(): Promise<PolicyStatusView | undefined> {
  try {
    return (JSON.parse(await kubectl('get', 'dcp', 'default', '-o', 'json')) as { status?: PolicyStatusView }).status;
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: process.env.NODES ?? '50' },
      pods: { type: 'string', default: process.env.PODS ?? '1500' },
      once: { type: 'boolean', default: process.env.DEMO_ONCE === '1' },
    },
  });
  const nodes = Number(values.nodes);
  const pods = Number(values.pods);
  let operator: ChildProcess | undefined;
  let stopping = false;
  const teardown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    step('stopping the operator and deleting the cluster');
    if (operator && operator.exitCode === null) {
      const exited = new Promise((r) => operator?.once('exit', r));
      operator.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (operator.exitCode === null) operator.kill('SIGKILL');
    }
    await run(CLUSTER_SH, ['down', CLUSTER]).catch(() => undefined);
    console.log('nothing left running.');
  };
  process.once('SIGINT', () => void teardown().then(() => process.exit(0)));
  process.once('SIGTERM', () => void teardown().then(() => process.exit(0)));

  try {
    rmSync(DEMO, { recursive: true, force: true });
    mkdirSync(join(DEMO, 'export'), { recursive: true });
    await run(CLUSTER_SH, ['down', CLUSTER]).catch(() => undefined);
    step(`starting a local cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok) on 127.0.0.1`);
    // The API server writes an audit log with the policy the audit-export extension uses (shown at the end).
    await run(CLUSTER_SH, ['up', CLUSTER, KUBECONFIG, '--kube-audit-policy', writeDemoAuditPolicy(join(DEMO, 'audit-policy.yaml'))]);
    step('installing the DataCollectionPolicy CRD and the sample policy (short intervals, a file sink)');
    await kubectl('apply', '-f', join(ROOT, 'crds'));
    await kubectl('wait', '--for=condition=Established', 'crd/datacollectionpolicies.datacollection.arc.io');
    await kubectl('create', 'namespace', 'dcp-system');
    await kubectl('apply', '-f', join(ROOT, 'deploy/samples/default-policy.yaml'));
    const patch = {
      spec: {
        categories: { controlPlane: { intervalSeconds: 15 }, billing: { intervalSeconds: 30 } },
        export: { sinks: [{ name: 'archive', type: 'file', path: join(DEMO, 'export'), region: 'eastus' }] },
      },
    };
    await kubectl('patch', 'dcp', 'default', '--type=merge', '-p', JSON.stringify(patch));

    step(`seeding a simulated fleet: ${nodes} Nodes of mixed Azure sizes, ${pods} Pods in 5 namespaces, a few Warning Events`);
    const kc = new KubeConfig();
    kc.loadFromFile(KUBECONFIG);
    const client = new KubeClient(kc);
    let lastShown = 0;
    const fleet = await seedFleet(client, {
      nodes,
      pods,
      onProgress: (what, done, total) => {
        if (done === total || performance.now() - lastShown > 2000) {
          lastShown = performance.now();
          console.log(dim(`    ${what}: ${done}/${total}`));
        }
      },
    });
    console.log(dim(`    ${fleet.failed} Pods failed, ${fleet.pending} Pending on purpose`));

    step('starting dcp run');
    operator = spawn(process.execPath, [DCP, 'run', '--kubeconfig', KUBECONFIG, '--data-dir', join(DEMO, 'data'), '--metrics-addr', '127.0.0.1:0', '--health-addr', '127.0.0.1:0', '--leader-elect', '--log-level', 'warn'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    operator.stderr?.on('data', (chunk: Buffer) => process.stderr.write(dim(chunk.toString('utf8'))));

    // Ready, with the whole fleet counted and something collected in each active category.
    for (;;) {
      const s = await policyStatus();
      const ready = s?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      const counted = (s?.inventory?.nodes ?? 0) >= nodes && (s?.inventory?.pods ?? 0) >= pods;
      const collected = ['controlPlane', 'hostOs', 'hostErrors', 'linuxVm', 'security'].every((c) => (s?.categories?.[c]?.eventsEmitted ?? 0) > 0);
      if (ready && counted && collected) break;
      if (operator.exitCode !== null) throw new Error('dcp run exited');
      await new Promise((r) => setTimeout(r, 500));
    }
    step('the policy is Ready');

    heading('kubectl get dcp');
    process.stdout.write(await kubectl('get', 'dcp'));
    const status = (await policyStatus()) ?? {};
    heading('conditions');
    for (const c of status.conditions ?? []) console.log(`  ${c.type.padEnd(18)} ${c.status.padEnd(7)} ${c.reason.padEnd(15)} ${c.message}`);
    heading('inventory');
    const inv = status.inventory;
    console.log(`  nodes ${inv?.nodes}   pods ${inv?.pods}   vCores ${inv?.vCores}   store: ${status.store?.events ?? 0} events, ${status.store?.bytes ?? 0} bytes`);
    heading('collected events, the newest 2 of each category (dcp events --category C --output table)');
    const eventsOut = await dcp('events', '--data-dir', join(DEMO, 'data'), '--output', 'json')
      .then((json) => renderEventsTable(newestPerCategory(JSON.parse(json) as DcpEvent[], 2)))
      .catch((err: unknown) => `  (dcp events: ${String(err)})\n`);
    process.stdout.write(eventsOut);
    heading('what would leave the cluster now (dcp preview)');
    const previewOut = await dcp('preview', '--kubeconfig', KUBECONFIG, '--output', 'table').catch((err: unknown) => `  (dcp preview: ${String(err)})\n`);
    process.stdout.write(previewOut.split('\n').slice(0, 60).join('\n') + '\n');
    console.log(dim(`\noverview reached in ${elapsed()}`));

    await showAuditExport({
      root: ROOT,
      demoDir: DEMO,
      kubeconfig: KUBECONFIG,
      auditLog: join(process.env.KWOK_WORKDIR ?? join(ROOT, '.dev/kwok'), 'clusters', CLUSTER, 'logs', 'audit.log'),
      dcp: DCP,
      kubectl,
      step,
      heading,
      dim,
    });

    if (values.once) return 0;
    heading('following changes (a Node joins every 20 s); Ctrl-C stops everything');
    let prev = status;
    let added = 0;
    const churn = setInterval(() => {
      void client.json({ method: 'POST', path: '/api/v1/nodes', body: fleetNode('fleet', nodes + added++) }).catch(() => undefined);
    }, 20_000);
    try {
      while (!stopping && operator.exitCode === null) {
        await new Promise((r) => setTimeout(r, 1000));
        const s = await policyStatus();
        if (!s) continue;
        const t = new Date().toLocaleTimeString();
        if (s.inventory?.nodes !== prev.inventory?.nodes) console.log(`  ${t}  nodes ${prev.inventory?.nodes} → ${s.inventory?.nodes}, vCores ${prev.inventory?.vCores} → ${s.inventory?.vCores}`);
        if ((s.categories?.billing?.eventsEmitted ?? 0) > (prev.categories?.billing?.eventsEmitted ?? 0)) console.log(`  ${t}  billing interval closed (${s.categories?.billing?.eventsEmitted} so far)`);
        if ((s.categories?.hostOs?.eventsEmitted ?? 0) > (prev.categories?.hostOs?.eventsEmitted ?? 0)) console.log(`  ${t}  host OS facts reported for ${(s.categories?.hostOs?.eventsEmitted ?? 0) - (prev.categories?.hostOs?.eventsEmitted ?? 0)} node(s)`);
        if ((s.categories?.controlPlane?.eventsEmitted ?? 0) > (prev.categories?.controlPlane?.eventsEmitted ?? 0)) console.log(`  ${t}  inventory event: ${s.inventory?.nodes} nodes, ${s.inventory?.pods} pods, ${s.inventory?.vCores} vCores`);
        const more = (c: string): number => (s.categories?.[c]?.eventsEmitted ?? 0) - (prev.categories?.[c]?.eventsEmitted ?? 0);
        for (const [c, what] of [['hostErrors', 'host error(s)'], ['linuxVm', 'Linux VM event(s)'], ['security', 'certificate/KMS status event(s)']] as const) {
          if (more(c) > 0) console.log(`  ${t}  ${c}: ${more(c)} new ${what}`);
        }
        prev = s;
      }
    } finally {
      clearInterval(churn);
    }
    return 0;
  } finally {
    await teardown();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);

