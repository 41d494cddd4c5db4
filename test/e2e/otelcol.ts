// A real OpenTelemetry Collector (bin/otelcol, built from hack/otelcol) as a child process for e2e tests:
// written config, readiness by its listening port, stop by pid, and the log records its file exporter wrote.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ROOT } from './harness.js';
import { waitFor } from './operator-process.js';

export const OTELCOL = join(ROOT, 'bin/otelcol');

/** A free TCP port on 127.0.0.1 (the kernel picks it; the collector binds it right after). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const listening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/** Collector telemetry off (no :8888 shared with other collectors on this machine), warnings only. */
export const QUIET_TELEMETRY = { telemetry: { metrics: { level: 'none' }, logs: { level: 'warn' } } };

export class Collector {
  readonly output: string[] = [];
  private child: ChildProcess | undefined;

  constructor(
    readonly dir: string,
    readonly name: string,
    readonly config: Record<string, unknown>,
    /** The port the test waits on. */
    readonly port: number,
  ) {}

  get configFile(): string {
    return join(this.dir, `${this.name}.yaml`);
  }

  async start(env: NodeJS.ProcessEnv = {}): Promise<void> {
    writeFileSync(this.configFile, stringify(this.config));
    const child = spawn(OTELCOL, ['--config', this.configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.child = child;
    const keep = (chunk: Buffer): void => void this.output.push(chunk.toString('utf8'));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`otelcol ${this.name} exited (${child.exitCode}): ${this.output.join('')}`);
      return listening(this.port);
    }, 30_000, `otelcol ${this.name} to listen on ${this.port}`, 100);
  }

  /** SIGTERM by pid and wait for the exit (the collector flushes its exporters on shutdown). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** What a file exporter wrote (format json): one OTLP ExportLogsServiceRequest per line. */
export function fileExporterRequests(path: string): unknown[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as unknown);
}
