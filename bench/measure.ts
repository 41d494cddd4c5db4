// What the benchmarks measure of a program they start: sync time, CPU and RSS from /proc, and how fast a Pod change reaches dcp's /metrics and policy status.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { KubeClient } from '../src/kube/client.js';
import { Conflict, RequestStalled } from '../src/kube/errors.js';
import { LineSplitter, parseWatchEvent } from '../src/kube/json-lines.js';

const CLK_TCK = 100;

export interface Sample {
  program: string;
  syncMs: number;
  cpuS: number;
  rssMb: number;
  objects: string;
}

export function procStats(pid: number): { cpuS: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuS = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { cpuS, rssMb: rssKb / 1024 };
}

export interface MeasureOptions {
  /** The executable. @default node */
  readonly bin?: string;
  /** Asked every 250 ms as well: a program that does not log its sync (kube-state-metrics) is polled. */
  readonly poll?: () => Promise<string | undefined>;
  /** @default 180000 */
  readonly timeoutMs?: number;
}

/** Starts a program and resolves when `isSynced` sees a line of its output; then samples CPU and RSS. */
export async function measure(
  program: string,
  command: string[],
  isSynced: (line: string) => string | undefined,
  options: MeasureOptions = {},
): Promise<{ sample: Sample; child: ChildProcess; lines: string[] }> {
  const started = performance.now();
  const child = spawn(options.bin ?? process.execPath, command, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const objects = await new Promise<string>((resolve, reject) => {
    const timeoutMs = options.timeoutMs ?? 180_000;
    let polling: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      clearInterval(polling);
      reject(new Error(`${program} did not sync in ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const poll = options.poll;
    if (poll !== undefined) {
      polling = setInterval(() => {
        void poll().then(
          (found) => {
            if (found === undefined) return;
            clearInterval(polling);
            clearTimeout(timer);
            resolve(found);
          },
          () => undefined,
        );
      }, 250);
    }
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
          clearInterval(polling);
          resolve(found);
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearInterval(polling);
      clearTimeout(timer);
      reject(new Error(`${program} exited with ${code}:\n${lines.slice(-20).join('\n')}`));
    });
  });
  const syncMs = performance.now() - started;
  const pid = child.pid ?? 0;
  const { cpuS } = procStats(pid);
  await new Promise((r) => setTimeout(r, 2000));
  const { rssMb } = procStats(pid);
  return { sample: { program, syncMs, cpuS, rssMb, objects }, child, lines };
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export const baselineSynced = (line: string): string | undefined => (line.startsWith('synced ') ? line.split(' ').slice(2).join(' ') : undefined);

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export async function metricSum(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(' ').pop());
  return sum;
}

/**
 * Creates Pods at `rate`/s for `seconds` and, in parallel, reads dcp's /metrics and the policy status as
 * fast as they answer: the delay of the k-th create is when a reader first saw ≥ base + k Pods minus when
 * the API server acknowledged it. `watch` is the same delay for a plain watch in this process: what any
 * client's watch takes on this API server and machine, the part of the other two that is not dcp's. A
 * change is timed when the read that shows it has answered, so each delay includes up to one read's own
 * round trip: `metricsRead` and `statusRead` are those round trips (sorted, ms).
 */
export async function changeLatency(
  client: KubeClient,
  metricsPort: number,
  rate: number,
  seconds: number,
): Promise<{ achieved: number; metrics: number[]; status: number[]; watch: number[]; metricsRead: number[]; statusRead: number[] }> {
  const seenWatch: number[] = [];
  const stopWatch = new AbortController();
  const from = (await client.json({ path: '/api/v1/namespaces/bench/pods', query: { limit: 1 } })) as { metadata: { resourceVersion: string } };
  const watching = client
    .stream({ path: '/api/v1/namespaces/bench/pods', query: { watch: 1, resourceVersion: from.metadata.resourceVersion }, signal: stopWatch.signal, idleTimeoutMs: 600_000 })
    .then(async (res) => {
      const lines = new LineSplitter();
      for await (const chunk of res) for (const line of lines.push(chunk)) if (parseWatchEvent(line).type === 'ADDED') seenWatch.push(performance.now());
    })
    .catch(() => undefined);
  const base = await metricSum(metricsPort, 'dcp_inventory_pods');
  const total = rate * seconds;
  const acks: number[] = [];
  const seenMetrics: number[] = [];
  const seenStatus: number[] = [];
  let done = false;
  const metricsRead: number[] = [];
  const statusRead: number[] = [];
  const reader = async (read: () => Promise<number>, seen: number[], took: number[]): Promise<void> => {
    while (!done || seen.length < acks.length) {
      const sent = performance.now();
      const n = (await read()) - base;
      const t = performance.now();
      took.push(t - sent);
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
  const readers = [reader(() => metricSum(metricsPort, 'dcp_inventory_pods'), seenMetrics, metricsRead), reader(readStatus, seenStatus, statusRead)];
  const started = performance.now();
  let next = 0;
  const workers = Array.from({ length: 16 }, async () => {
    for (;;) {
      const i = next++;
      // Stop at the time limit too: on a loaded server the rate is not reached, and the run must not stretch.
      if (i >= total || performance.now() - started > seconds * 1000) return;
      const due = started + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      try {
        await client.json({ method: 'POST', path: '/api/v1/namespaces/bench/pods', body: { metadata: { name: `lat-${i}` }, spec: { nodeName: 'fleet-0000', containers: [{ name: 'c', image: 'x' }] } } });
      } catch (err) {
        // A create the loaded server did not answer is not a change to time; anything else ends the run.
        if (err instanceof RequestStalled) continue;
        if (!(err instanceof Conflict)) throw err;
      }
      acks.push(performance.now());
    }
  });
  await Promise.all(workers);
  const achieved = acks.length / ((performance.now() - started) / 1000);
  done = true;
  acks.sort((a, b) => a - b);
  await Promise.all(readers);
  stopWatch.abort();
  await watching;
  const delays = (seen: number[]) => acks.map((a, k) => (seen[k] ?? NaN) - a).filter((d) => Number.isFinite(d)).sort((a, b) => a - b);
  const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
  return { achieved, metrics: delays(seenMetrics), status: delays(seenStatus), watch: delays(seenWatch), metricsRead: sorted(metricsRead), statusRead: sorted(statusRead) };
}

