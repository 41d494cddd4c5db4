// Bad invocations of all three commands, as a person would type them: the exact first line, the exit code, never a stack trace.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { cluster } from './harness.js';
import { runDcp } from './operator-process.js';

interface Case {
  readonly args: (dirs: Dirs) => string[];
  readonly first: string | ((dirs: Dirs) => string);
  readonly code: number;
}

interface Dirs {
  readonly tmp: string;
  readonly kubeconfig: string;
  readonly file: string;
  readonly garbage: string;
  readonly noContext: string;
  readonly locked: string;
  readonly store: string;
  /** Holds a tls.crt and tls.key that are not PEM. */
  readonly badCert: string;
}

const RUN_HINT = "run 'dcp run --help' for the flags";

const CASES: readonly Case[] = [
  // dcp run: every flag is checked before anything starts
  { args: () => ['run', '--kubeconfig', '/nonexistent'], first: 'dcp run: --kubeconfig /nonexistent cannot be read (ENOENT: no such file or directory)', code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.garbage], first: (d) => `dcp run: --kubeconfig ${d.garbage} is not a usable kubeconfig (it sets no current-context)`, code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.noContext], first: (d) => `dcp run: --kubeconfig ${d.noContext} is not a usable kubeconfig (its current context "gone" names no cluster)`, code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.tmp], first: (d) => `dcp run: --kubeconfig ${d.tmp} is not a usable kubeconfig (EISDIR: illegal operation on a directory)`, code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--metrics-addr', 'nonsense'], first: 'dcp run: --metrics-addr "nonsense" is not a listen address (use host:port or :port, e.g. 127.0.0.1:8080 or :8080, with a port from 0 to 65535)', code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--health-addr', ':99999'], first: 'dcp run: --health-addr ":99999" is not a listen address (use host:port or :port, e.g. 127.0.0.1:8080 or :8080, with a port from 0 to 65535)', code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--metrics-addr', '127.0.0.1:9000', '--health-addr', '127.0.0.1:9000'], first: 'dcp run: --health-addr 127.0.0.1:9000 is the same as --metrics-addr (each endpoint needs its own port)', code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--lease-duration', 'banana'], first: 'dcp run: --lease-duration "banana" is not a duration (use a number and a unit: 500ms, 15s, 2m, 1h)', code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--retry-period', '0s'], first: 'dcp run: --retry-period "0s" is not a duration (it must be longer than zero)', code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--renew-deadline', '20s'], first: 'dcp run: --renew-deadline 20s is not shorter than --lease-duration 15s (a leader must renew before its lease expires)', code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--retry-period', '9s'], first: 'dcp run: --retry-period 9s is too long for --renew-deadline 10s (the retry period plus 20% jitter must fit in the renew deadline)', code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--shutdown-timeout', '12'], first: 'dcp run: --shutdown-timeout "12" is not a duration (use a number and a unit: 500ms, 15s, 2m, 1h)', code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--log-level', 'loud'], first: 'dcp run: --log-level "loud" is not a log level (use one of error, warn, info, debug)', code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--namespace', 'Bad_NS'], first: 'dcp run: --namespace "Bad_NS" is not a namespace name (lowercase letters, digits and "-", at most 63 characters)', code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--data-dir', d.file], first: (d) => `dcp run: --data-dir ${d.file} is not a directory (it names a file; give a directory the operator may own)`, code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--data-dir', join(d.file, 'sub')], first: (d) => `dcp run: --data-dir ${join(d.file, 'sub')} is not a directory (a part of the path is a file)`, code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--data-dir', '/proc/dcp-data'], first: 'dcp run: --data-dir /proc/dcp-data cannot be created (ENOENT: no such file or directory)', code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--data-dir', '/sys/fs'], first: 'dcp run: --data-dir /sys/fs is not writable (EACCES: permission denied)', code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--data-dir', d.locked], first: (d) => `dcp run: --data-dir ${d.locked} is in use by process ${process.pid} (one dcp run writes a data directory; give each its own)`, code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--metrics-cert-dir', d.tmp], first: (d) => `dcp run: --metrics-cert-dir ${d.tmp} is given without --metrics-secure (a certificate is for HTTPS; add --metrics-secure)`, code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--data-dir', join(d.tmp, 'data-nocert'), '--metrics-secure', '--metrics-cert-dir', d.tmp], first: (d) => `dcp run: --metrics-cert-dir ${d.tmp} holds no usable certificate (tls.crt cannot be read (ENOENT))`, code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, '--data-dir', join(d.tmp, 'data-badcert'), '--metrics-secure', '--metrics-cert-dir', d.badCert], first: (d) => `dcp run: --metrics-cert-dir ${d.badCert} holds no usable certificate (tls.crt and tls.key are not a certificate and its key (error:0480006C:PEM routines::no start line))`, code: 2 },
  { args: () => ['run', '--bogus'], first: "dcp run: unknown flag --bogus (it is not one of this command's flags)", code: 2 },
  { args: () => ['run', '--data-dir'], first: 'dcp run: --data-dir needs a value (none was given)', code: 2 },
  { args: () => ['run', '--leader-elect=yes'], first: 'dcp run: --leader-elect takes no value (it is a switch)', code: 2 },
  { args: (d) => ['run', '--kubeconfig', d.kubeconfig, 'now'], first: 'dcp run: unexpected argument "now" (dcp run takes flags only)', code: 2 },
  // dcp events
  { args: (d) => ['events', '--data-dir', d.store, '--limit', '0'], first: 'dcp events: --limit "0" is not a positive whole number', code: 2 },
  { args: (d) => ['events', '--data-dir', d.store, '--category', 'hostname'], first: 'dcp events: unknown category "hostname"; valid categories: hostOs, controlPlane, hostErrors, linuxVm, billing, security, diagnostics', code: 2 },
  { args: (d) => ['events', '--data-dir', d.store, '--since', 'yesterday'], first: 'dcp events: --since: "yesterday" is not a duration (e.g. 500ms, 15s, 2m, 1h, 7d), or an RFC 3339 time', code: 2 },
  { args: (d) => ['events', '--data-dir', d.store, '--output', 'yaml'], first: 'dcp events: --output "yaml" is not one of json, table', code: 2 },
  { args: () => ['events', '--follow'], first: "dcp events: unknown flag --follow (it is not one of this command's flags)", code: 2 },
  { args: (d) => ['events', '--data-dir', d.store, 'hostOs'], first: 'dcp events: unexpected argument "hostOs" (dcp events takes flags only)', code: 2 },
  { args: (d) => ['events', '--data-dir', join(d.tmp, 'nowhere')], first: (d) => `dcp events: no event store at ${join(d.tmp, 'nowhere')}: the directory does not exist (dcp run creates it; pass the --data-dir it was given)`, code: 1 },
  // dcp preview
  { args: () => ['preview', '--kubeconfig', '/nonexistent'], first: 'dcp preview: --kubeconfig /nonexistent cannot be read (ENOENT: no such file or directory)', code: 2 },
  { args: (d) => ['preview', '--kubeconfig', d.kubeconfig, '--output', 'yaml'], first: 'dcp preview: --output "yaml" is not one of json, table', code: 2 },
  { args: (d) => ['preview', '--kubeconfig', d.kubeconfig, '--body-events', 'many'], first: 'dcp preview: --body-events "many" is not a whole number or \'all\'', code: 2 },
  { args: () => ['preview', '--namespace'], first: 'dcp preview: --namespace needs a value (none was given)', code: 2 },
  // dcp itself
  { args: () => ['serve'], first: 'dcp: unknown command "serve"', code: 2 },
];

describe('dcp: bad invocations', function () {
  this.timeout(60_000);
  let dirs: Dirs;

  before(function () {
    const tmp = mkdtempSync(join(tmpdir(), 'dcp-cli-errors-'));
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'not a directory\n');
    const garbage = join(tmp, 'garbage.kubeconfig');
    writeFileSync(garbage, 'just: some\nyaml: [1, 2]\n');
    const noContext = join(tmp, 'no-context.kubeconfig');
    writeFileSync(noContext, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\ncurrent-context: gone\n');
    // A data dir whose lock a live process (this test runner) holds: a second writer.
    const locked = join(tmp, 'locked');
    mkdirSync(locked);
    writeFileSync(join(locked, 'LOCK'), String(process.pid));
    const store = join(tmp, 'store');
    mkdirSync(join(store, 'raw'), { recursive: true });
    const badCert = join(tmp, 'bad-cert');
    mkdirSync(badCert);
    writeFileSync(join(badCert, 'tls.crt'), 'not a certificate\n');
    writeFileSync(join(badCert, 'tls.key'), 'not a key\n');
    dirs = { tmp, kubeconfig: cluster().kubeconfigPath, file, garbage, noContext, locked, store, badCert };
  });

  after(function () {
    chmodSync(dirs.tmp, 0o700);
    rmSync(dirs.tmp, { recursive: true, force: true });
  });

  it(`has at least 20 cases across run, events and preview (${CASES.length})`, function () {
    expect(CASES.length).to.be.at.least(20);
    for (const command of ['run', 'events', 'preview']) expect(CASES.filter((c) => c.args(dirs)[0] === command).length, command).to.be.at.least(4);
  });

  const placeholders: Dirs = { tmp: '<tmp>', kubeconfig: '<kubeconfig>', file: '<file>', garbage: '<garbage>', noContext: '<no-context>', locked: '<locked>', store: '<store>', badCert: '<bad-cert>' };
  for (const c of CASES) {
    it(`dcp ${c.args(placeholders).join(' ')} → one line, exit ${c.code}`, async function () {
      const args = c.args(dirs);
      const r = await runDcp(args);
      const first = typeof c.first === 'string' ? c.first : c.first(dirs);
      expect(r.stderr.split('\n')[0], `dcp ${args.join(' ')}`).to.equal(first);
      expect(r.code, `dcp ${args.join(' ')}: ${r.stderr}`).to.equal(c.code);
      expect(`${r.stdout}${r.stderr}`).to.not.include('    at ');
      // A usage error is the line, then the usage or a hint: nothing else.
      if (c.code === 2 && args[0] === 'run' && !first.includes('unknown flag') && !first.includes('needs a value') && !first.includes('takes no value')) {
        expect(r.stderr).to.equal(`${first}\n\n${RUN_HINT}\n`);
      }
      expect(r.stdout).to.equal('');
    });
  }

  describe('a runtime failure of dcp run', function () {
    let busy: Server;
    let port = 0;

    before(async function () {
      busy = createServer();
      await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
      const address = busy.address();
      port = typeof address === 'object' && address ? address.port : 0;
    });

    after(async function () {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    });

    it('is one JSON log line with the cause, exit 1, and a stack only at --log-level debug', async function () {
      const dataDir = join(dirs.tmp, 'busy-port');
      for (const level of ['info', 'debug']) {
        const r = await runDcp(['run', '--kubeconfig', dirs.kubeconfig, '--data-dir', dataDir, '--metrics-addr', `127.0.0.1:${port}`, '--health-addr', '127.0.0.1:0', '--log-level', level]);
        expect(r.code, r.stderr).to.equal(1);
        const lines = r.stderr.trimEnd().split('\n');
        const logs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
        const failed = logs.filter((l) => l.message === 'dcp run failed');
        expect(failed, r.stderr).to.have.length(1);
        expect(failed[0]?.level).to.equal('error');
        expect(failed[0]?.error).to.equal(`cannot listen on --metrics-addr 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
        if (level === 'info') {
          expect(failed[0]).to.not.have.property('stack');
          expect(r.stderr).to.not.include('    at ');
        } else {
          expect(String(failed[0]?.stack)).to.include('    at ');
        }
      }
    });
  });
});
