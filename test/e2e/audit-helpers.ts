// For the audit-export e2e tests: Azurite, a second control plane wired to an exporter, exporter processes, reading destinations.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { ROOT } from './harness.js';
import { DCP, waitFor, type LogLine } from './operator-process.js';

/** Azurite's well-known development account (public, documented, not a secret). */
const AZURITE_ACCOUNT = 'devstoreaccount1';
const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** A line-buffered JSON-log child process started by a test, always stopped by its pid. */
class Child {
  readonly logs: LogLine[] = [];
  readonly output: string[] = [];
  exitCode: number | null | undefined;
  private readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    let buffered = '';
    const take = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        this.output.push(line);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          // not JSON
        }
      }
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve((this.exitCode = code))));
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.exitCode === undefined) this.child.kill(signal);
    return this.exited;
  }
}

export class Azurite {
  private proc: Child | undefined;
  port = 0;
  readonly dir = mkdtempSync(join(tmpdir(), 'dcp-azurite-'));

  get connectionString(): string {
    return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${this.port}/${AZURITE_ACCOUNT};`;
  }

  /** Starts on a free port the first time, on the same port (and data) after a stop. */
  async start(): Promise<void> {
    const bin = join(ROOT, 'node_modules/.bin/azurite-blob');
    const args = ['--blobHost', '127.0.0.1', '--blobPort', String(this.port), '--location', this.dir, '--skipApiVersionCheck', '--disableTelemetry', '--silent', '--loose'];
    const proc = new Child(spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.proc = proc;
    await waitFor(() => proc.output.some((l) => /listens on http:\/\/127\.0\.0\.1:\d+/.test(l)) || proc.exitCode !== undefined, 30_000, 'Azurite to listen');
    const m = proc.output.map((l) => /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(l)).find((x) => x);
    if (!m?.[1]) throw new Error(`Azurite did not start: ${proc.output.join('\n')}`);
    this.port = Number(m[1]);
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
    this.proc = undefined;
  }

  /** Every line of every append blob in the container, by blob name. */
  async blobLines(container: string): Promise<Map<string, string[]>> {
    const c = BlobServiceClient.fromConnectionString(this.connectionString).getContainerClient(container);
    const out = new Map<string, string[]>();
    if (!(await c.exists())) return out;
    for await (const b of c.listBlobsFlat()) {
      const buf = await c.getBlobClient(b.name).downloadToBuffer();
      out.set(b.name, buf.toString('utf8').split('\n').filter((l) => l !== ''));
    }
    return out;
  }

  async cleanup(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `dcp audit-exporter` as a child process; the addresses come from its start-up log line. */
export class ExporterProcess extends Child {
  constructor(args: string[]) {
    super(spawn(process.execPath, [DCP, 'audit-exporter', '--metrics-addr', '127.0.0.1:0', '--health-addr', '127.0.0.1:0', '--log-level', 'debug', ...args], { stdio: ['ignore', 'ignore', 'pipe'] }));
  }

  private started(): LogLine | undefined {
    return this.logs.find((l) => l.message === 'dcp audit-exporter started');
  }

  async ready(): Promise<void> {
    await waitFor(() => this.started() !== undefined || this.exitCode !== undefined, 20_000, 'the exporter to start');
    if (!this.started()) throw new Error(`exporter exited ${String(this.exitCode)}: ${this.output.join('\n')}`);
  }

  private port(field: 'webhook' | 'metrics' | 'health'): number {
    return Number(String(this.started()?.[field]).split(':').pop());
  }

  get webhookPort(): number {
    return this.port('webhook');
  }

  async metric(name: string, labelFilter = ''): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.port('metrics')}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
      if (labelFilter && !line.includes(labelFilter)) continue;
      sum += Number(line.split(' ').pop());
    }
    return sum;
  }
}

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 180_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A second local control plane whose kube-apiserver writes an audit log and calls an audit webhook. */
export class AuditedControlPlane {
  readonly name = `dcp-audit-${process.pid}-${randomBytes(2).toString('hex')}`;
  readonly kubeconfig = join(ROOT, '.dev/e2e', `${this.name}.kubeconfig`);

  get auditLog(): string {
    return join(process.env.KWOK_WORKDIR ?? join(ROOT, '.dev/kwok'), 'clusters', this.name, 'logs', 'audit.log');
  }

  async start(policyFile: string, webhookKubeconfig: string): Promise<void> {
    const args = [
      'up',
      this.name,
      this.kubeconfig,
      '--kube-audit-policy',
      policyFile,
      '--extra-args',
      `kube-apiserver=audit-webhook-config-file=${webhookKubeconfig}`,
      '--extra-args',
      'kube-apiserver=audit-webhook-batch-max-wait=1s',
      '--extra-args',
      'kube-apiserver=audit-webhook-initial-backoff=1s',
    ];
    // Another engineer's cluster may take a port at the same moment: retry.
    for (let attempt = 1; ; attempt++) {
      const r = await run(join(ROOT, 'hack/cluster/cluster.sh'), args);
      if (r.code === 0) return;
      await run(join(ROOT, 'hack/cluster/cluster.sh'), ['down', this.name]);
      if (attempt >= 3) throw new Error(`audited control plane did not start: ${r.stderr}`);
    }
  }

  async stop(): Promise<void> {
    await run(join(ROOT, 'hack/cluster/cluster.sh'), ['down', this.name]);
    rmSync(this.kubeconfig, { force: true });
  }
}

/** The audit events in a file destination, in file order. */
export function fileDestinationEvents(dir: string): Record<string, unknown>[] {
  const events: Record<string, unknown>[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith('.jsonl')) {
        for (const line of readFileSync(p, 'utf8').split('\n')) if (line !== '') events.push(JSON.parse(line) as Record<string, unknown>);
      }
    }
  };
  walk(dir);
  return events;
}
