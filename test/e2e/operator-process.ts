// Runs `dcp run` as a real child process for e2e tests: ports from its start-up log, /metrics, stop and kill.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './harness.js';

export const DCP = join(ROOT, 'dist/src/cli/main.js');

export interface LogLine {
  message: string;
  level: string;
  [key: string]: unknown;
}

const running = new Set<OperatorProcess>();

export class OperatorProcess {
  readonly logs: LogLine[] = [];
  readonly child: ChildProcess;
  readonly dataDir: string;
  metricsPort = 0;
  healthPort = 0;
  exitCode: number | null | undefined;
  private readonly exited: Promise<number | null>;
  private readonly ownsDataDir: boolean;

  constructor(kubeconfig: string, extraArgs: string[] = [], dataDir?: string, env: NodeJS.ProcessEnv = {}) {
    this.ownsDataDir = dataDir === undefined;
    this.dataDir = dataDir ?? mkdtempSync(join(tmpdir(), 'dcp-e2e-data-'));
    this.child = spawn(
      process.execPath,
      [DCP, 'run', '--kubeconfig', kubeconfig, '--data-dir', this.dataDir, '--metrics-addr', '127.0.0.1:0', '--health-addr', '127.0.0.1:0', '--log-level', 'debug', ...extraArgs],
      { stdio: ['ignore', 'inherit', 'pipe'], env: { ...process.env, ...env } },
    );
    running.add(this);
    let buffered = '';
    this.child.stderr?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const parsed = JSON.parse(line) as LogLine;
          this.logs.push(parsed);
          if (parsed.message === 'dcp run started') {
            this.metricsPort = Number(String(parsed.metrics).split(':').pop());
            this.healthPort = Number(String(parsed.health).split(':').pop());
          }
        } catch {
          this.logs.push({ message: line, level: 'raw' });
        }
      }
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      });
    });
  }

  get identity(): string | undefined {
    const started = this.logs.find((l) => l.message === 'dcp run started');
    return typeof started?.identity === 'string' ? started.identity : undefined;
  }

  async started(timeoutMs = 20_000): Promise<void> {
    await waitFor(() => this.metricsPort > 0, timeoutMs, 'dcp run to start');
  }

  async get(port: 'metrics' | 'health', path: string): Promise<{ status: number; text: string }> {
    const res = await fetch(`http://127.0.0.1:${port === 'metrics' ? this.metricsPort : this.healthPort}${path}`);
    return { status: res.status, text: await res.text() };
  }

  async metrics(): Promise<string> {
    return (await this.get('metrics', '/metrics')).text;
  }

  /** Sum of a metric's samples (all label sets) whose labels contain `labelFilter`. */
  async metric(name: string, labelFilter = ''): Promise<number | undefined> {
    const text = await this.metrics();
    let sum: number | undefined;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
      if (labelFilter && !line.includes(labelFilter)) continue;
      sum = (sum ?? 0) + Number(line.split(' ').pop());
    }
    return sum;
  }

  async ready(): Promise<boolean> {
    return (await this.get('health', '/readyz')).status === 200;
  }

  hasLog(message: string): boolean {
    return this.logs.some((l) => l.message === message);
  }

  /** Sends a signal and waits for the exit; resolves with the exit code and how long it took. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; ms: number }> {
    const started = Date.now();
    if (this.exitCode === undefined) this.child.kill(signal);
    const code = await this.exited;
    return { code, ms: Date.now() - started };
  }

  cleanup(): void {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Kills every operator process a test started and removes their data dirs (called from after hooks). */
export function killAllOperators(): void {
  for (const p of running) p.cleanup();
  running.clear();
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface CliResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs `dcp <args>` as a child process, as a person would. */
export function runDcp(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [DCP, ...args], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ stdout, stderr, code: error ? (typeof error.code === 'number' ? error.code : 1) : 0 });
    });
  });
}
