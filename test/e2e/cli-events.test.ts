// `dcp events` as a child process, reading the store of a running `dcp run` against the local control plane.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { CATEGORY_NAMES } from '../../src/api/policy.js';
import type { DcpEvent } from '../../src/api/event.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import { cluster, RUN_LABEL, type TestCluster } from './harness.js';
import { killAllOperators, OperatorProcess, runDcp, waitFor } from './operator-process.js';
import { policyYaml } from './pipeline-helpers.js';

async function eventsJson(dataDir: string, extra: string[] = []): Promise<DcpEvent[]> {
  const r = await runDcp(['events', '--data-dir', dataDir, '--output', 'json', ...extra]);
  if (r.code !== 0) throw new Error(`dcp events failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as DcpEvent[];
}

const POLICY = policyYaml({ categories: { controlPlane: { intervalSeconds: 10 } } });

describe('dcp events against the store of a running operator', function () {
  this.timeout(180_000);
  let c: TestCluster;
  let op: OperatorProcess;
  let nodeCount = 0;

  before(async function () {
    c = cluster();
    await c.resetPolicy();
    await c.createNodes([
      { name: `cli-ev-${c.runId}-a`, cpu: '4', instanceType: 'Standard_D4s_v5', nodeInfo: { osImage: 'Ubuntu 22.04.5 LTS' } },
      { name: `cli-ev-${c.runId}-b`, cpu: '8', instanceType: 'Standard_D8s_v5' },
    ]);
    nodeCount = (await c.kubectlOk(['get', 'nodes', '-o', 'name'])).split('\n').filter((l) => l.trim() !== '').length;
    expect((await c.apply(POLICY)).code).to.equal(0);
    op = new OperatorProcess(c.kubeconfigPath);
    await op.started();
    // One HostOsInfo per Node and a ControlPlaneInventory: then every category this test reads has data.
    await waitFor(
      async () => {
        const events = await eventsJson(op.dataDir);
        return events.filter((e) => e.category === 'hostOs').length >= nodeCount && events.some((e) => e.category === 'controlPlane');
      },
      60_000,
      'host OS and inventory events in the store',
      500,
    );
  });

  after(async function () {
    if (op) await op.stop();
    killAllOperators();
    await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
    await c.kubectl(['delete', 'nodes', '-l', `${RUN_LABEL}=${c.runId}`, '--wait=false']);
    op?.cleanup();
  });

  it('prints the stored envelopes as one JSON array, each valid and byte for byte as stored', async function () {
    // Stop the writer first, so the files and the output describe the same moment.
    await op.stop();
    const r = await runDcp(['events', '--data-dir', op.dataDir, '--output', 'json']);
    expect(r.code, r.stderr).to.equal(0);
    const events = JSON.parse(r.stdout) as DcpEvent[];
    expect(events.length).to.be.greaterThan(nodeCount);
    for (const e of events) expect(validateEvent(e), e.id).to.deep.include({ ok: true });

    const stored: string[] = [];
    for (const f of (await readdir(join(op.dataDir, 'raw'))).sort()) {
      const text = await readFile(join(op.dataDir, 'raw', f), 'utf8');
      for (const line of text.split('\n')) if (line) stored.push(line.slice(line.indexOf(' ') + 1));
    }
    const printed = r.stdout.split('\n').slice(1, -2).map((l) => l.replace(/,$/, ''));
    expect(printed).to.deep.equal(stored);
  });

  it('reads beside a running operator without disturbing it', async function () {
    const second = new OperatorProcess(c.kubeconfigPath, [], op.dataDir);
    await second.started();
    await waitFor(() => second.hasLog('collection started'), 30_000, 'collection to start again');
    const before = await eventsJson(second.dataDir);
    await waitFor(async () => (await eventsJson(second.dataDir)).length > before.length, 30_000, 'a new event while dcp events reads', 500);
    expect(second.exitCode).to.equal(undefined);
    await second.stop();
  });

  it('filters by --category, naming categories as the policy does', async function () {
    const hostOs = await eventsJson(op.dataDir, ['--category', 'hostOs']);
    expect(hostOs.length).to.be.at.least(nodeCount);
    expect(new Set(hostOs.map((e) => e.category))).to.deep.equal(new Set(['hostOs']));
    const inventory = await eventsJson(op.dataDir, ['--category', 'controlPlane', '--limit', '1']);
    expect(inventory.map((e) => e.name)).to.deep.equal(['ControlPlaneInventory']);
  });

  it('prints a table with aligned columns, local times, summaries and a count per category', async function () {
    const r = await runDcp(['events', '--data-dir', op.dataDir, '--output', 'table']);
    expect(r.code, r.stderr).to.equal(0);
    const lines = r.stdout.trimEnd().split('\n');
    const header = lines[0] ?? '';
    expect(header.split(/\s{2,}/)).to.deep.equal(['TIME', 'CATEGORY', 'NAME', 'ID', 'SUMMARY']);
    const rows = lines.slice(1, lines.indexOf(''));
    expect(rows.length).to.be.greaterThan(nodeCount);
    const columns = ['CATEGORY', 'NAME', 'ID', 'SUMMARY'].map((h) => header.indexOf(h));
    for (const row of rows) {
      expect(row).to.match(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} {2}/);
      for (const at of columns) expect(row[at - 1] === ' ' && row[at] !== ' ', `column at ${at} in: ${row}`).to.equal(true);
    }
    expect(rows.find((row) => row.includes('HostOsInfo'))).to.match(/osImage="Ubuntu [^"]+" cpu=\d+ ready=(true|false)/);
    expect(rows.find((row) => row.includes('ControlPlaneInventory'))).to.match(new RegExp(`nodes=${nodeCount} pods=\\d+ vCores=`));
    const footer = lines.at(-1) ?? '';
    // A count per category in the policy's order (the shared cluster's Events and Secrets feed the others).
    const counts = CATEGORY_NAMES.map((c) => [c, rows.filter((row) => row.split(/\s{2,}/)[1] === c).length] as const).filter(([, n]) => n > 0);
    expect(counts.map(([c]) => c).slice(0, 2)).to.deep.equal(['hostOs', 'controlPlane']);
    expect(footer).to.equal([`${rows.length} events`, ...counts.map(([c, n]) => `${c} ${n}`), 'times in UTC'].join(' · '));
  });

  it('refuses an unknown category, listing the valid ones, and a directory without a store', async function () {
    const bad = await runDcp(['events', '--data-dir', op.dataDir, '--category', 'hostname']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('unknown category "hostname"; valid categories: hostOs, controlPlane, hostErrors, linuxVm, billing, security, diagnostics');
    const missing = await runDcp(['events', '--data-dir', join(op.dataDir, 'nowhere')]);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.match(/no event store at .*nowhere: the directory does not exist/);
    expect(missing.stdout).to.equal('');
  });

  it('shows no daily aggregates before a day has finished, and says so', async function () {
    const r = await runDcp(['events', '--data-dir', op.dataDir, '--aggregates']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^No daily aggregates/);
  });
});
