// The README stays true: every command in its ```sh blocks runs (make demo non-interactively), and nothing is left running.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { needsLocalControlPlane, ROOT } from './harness.js';

function sh(command: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 300_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { cwd: ROOT, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

/** The commands of the README's ```sh blocks, comments stripped, in order. */
export function readmeCommands(markdown: string): string[] {
  const commands: string[] = [];
  const blocks = markdown.matchAll(/```sh\n([\s\S]*?)```/g);
  for (const [, body] of blocks) {
    for (const line of (body ?? '').split('\n')) {
      const command = line.replace(/\s+#.*$/, '').replace(/^#.*$/, '').trim();
      if (command !== '') commands.push(command);
    }
  }
  return commands;
}

/** Processes of this checkout's kwokctl cluster, by its directory in their command line (another checkout's may run too). */
async function clusterProcesses(name: string): Promise<string[]> {
  const { out } = await sh(`ps -eo stat=,args= | awk '$1 !~ /^Z/' | grep -F '${join(ROOT, '.dev', 'kwok', 'clusters', name)}/' | grep -v grep || true`);
  return out.split('\n').filter((l) => l.trim() !== '');
}

describe('the README', function () {
  this.timeout(600_000);
  const commands = readmeCommands(readFileSync(join(ROOT, 'README.md'), 'utf8'));

  before(function () {
    needsLocalControlPlane(this, 'make demo and make test start local clusters of their own');
  });

  it('shows the two commands of the quick start: make demo and make test', function () {
    expect(commands).to.include.members(['make demo', 'make test']);
  });

  it('runs make demo to an overview with the policy Ready and the fleet counted, then leaves nothing running', async function () {
    const { code, out } = await sh('make demo', { DEMO_ONCE: '1', NODES: '6', PODS: '90' });
    expect(code, out).to.equal(0);
    expect(out).to.include('the policy is Ready');
    const row = out.split('\n').find((l) => l.startsWith('default '));
    expect(row, out).to.match(/^default\s+eastus\s+28\s+Disabled\s+6\s+\S+\s+True/);
    expect(out).to.match(/nodes 6 {3}pods 90 /);
    expect(out).to.include('overview reached in');
    expect(out).to.include('nothing left running.');
    expect(await clusterProcesses('dcp-demo')).to.deep.equal([]);
  });

  it('runs every other command in order, and make dev-cluster-down leaves no process', async function () {
    const others = commands.filter((c) => c !== 'make demo' && c !== 'make test');
    expect(others.length).to.be.greaterThan(0);
    try {
      for (const command of others) {
        const { code, out } = await sh(command);
        expect(code, `${command}\n${out}`).to.equal(0);
        if (command.endsWith('get dcp')) expect(out).to.match(/^default\s+eastus\s+28/m);
      }
    } finally {
      await sh('make dev-cluster-down');
    }
    expect(await clusterProcesses('dcp-dev')).to.deep.equal([]);
  });
});
