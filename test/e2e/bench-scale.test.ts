// The smoke of `make bench-scale`: the whole path (own cluster, fleet, four programs, churn, latency, report, plot) on a tiny fleet.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ROOT } from './harness.js';

describe('make bench-scale (smoke)', function () {
  this.timeout(420_000);
  let out: string;

  before(() => {
    out = mkdtempSync(join(tmpdir(), 'dcp-bench-smoke-'));
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  it('writes the table, the raw results and a PNG plot for every program', async function () {
    const child = spawn(process.execPath, [join(ROOT, 'dist/bench/scale.js'), '--smoke', '--out-dir', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr.on('data', (c: Buffer) => (log += c.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code, log).to.equal(0);
    const md = readFileSync(join(out, 'docs/benchmarks.md'), 'utf8');
    for (const program of ['dcp-protobuf', 'dcp-json', 'informer', 'floor']) expect(md).to.match(new RegExp(`\\| ${program} \\| \\d`));
    const png = readFileSync(join(out, 'docs/benchmarks.png'));
    expect(png.subarray(1, 4).toString('latin1')).to.equal('PNG');
    const [file] = readdirSync(join(out, 'bench/results'));
    const result = JSON.parse(readFileSync(join(out, 'bench/results', file ?? ''), 'utf8')) as { sizes: Array<{ pods: number; runs: Array<{ program: string; syncS: number; churn?: unknown; latency?: { changes: number } }> }> };
    const runs = result.sizes[0]?.runs ?? [];
    expect(runs.map((r) => r.program)).to.have.members(['dcp-protobuf', 'dcp-json', 'informer', 'floor']);
    for (const r of runs) {
      expect(r.syncS, r.program).to.be.greaterThan(0);
      expect(r.churn, r.program).to.not.equal(undefined);
    }
    expect(runs.find((r) => r.program === 'dcp-protobuf')?.latency?.changes).to.be.greaterThan(0);
    expect(existsSync(join(out, 'docs/benchmarks.png'))).to.equal(true);
  });
});
