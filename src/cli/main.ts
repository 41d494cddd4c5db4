#!/usr/bin/env node
// The `dcp` command: parses the subcommand and its flags, runs it, and sets the exit code once its output has drained.
import { parseArgs } from 'node:util';
import type { Command } from './command.js';

const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => (await import('./run.js')).runCommand,
  events: async () => (await import('./events.js')).eventsCommand,
  preview: async () => (await import('./preview.js')).previewCommand,
  'audit-exporter': async () => (await import('./audit-exporter.js')).auditExporterCommand,
};

/** After the exit code is set, a handle nobody closed (a keep-alive socket) may hold the process this long. */
const EXIT_GRACE_MS = 2000;

async function usage(): Promise<string> {
  const lines = ['usage: dcp <command> [flags]', '', 'commands:'];
  for (const [name, load] of Object.entries(COMMANDS)) {
    try {
      lines.push(`  ${name.padEnd(15)} ${(await load()).summary}`);
    } catch {
      // a command whose module is not built is simply not listed
    }
  }
  lines.push('', "run 'dcp <command> --help' for its flags");
  return lines.join('\n');
}

/** parseArgs' error as `<what> (<why>)`; its own messages run on with advice about '--'. */
function parseArgsProblem(err: unknown): string {
  const text = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
  const code = (err as NodeJS.ErrnoException).code;
  const option = /'(-[^' ]+)/.exec(text)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown flag ${option} (it is not one of this command's flags)`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option && text.endsWith('argument missing')) return `${option} needs a value (none was given)`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) return `${option} takes no value (it is a switch)`;
  return text.replace(/\. To specify a positional argument.*$/, '');
}

/** The image sets DCP_REFUSE_ROOT=1: there, uid 0 is a mistake in the Pod's securityContext, not a choice. */
function refusesRoot(): string | undefined {
  if (process.env.DCP_REFUSE_ROOT !== '1' || process.getuid?.() !== 0) return undefined;
  return 'dcp: refusing to run as root (uid 0) in the dcp-operator image: run as a non-root user (the image\'s is 65532; securityContext.runAsNonRoot: true)';
}

async function main(argv: string[]): Promise<number> {
  const root = refusesRoot();
  if (root) {
    console.error(root);
    return 1;
  }
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(await usage());
    return name === undefined ? 2 : 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`dcp: unknown command "${name}"\n\n${await usage()}`);
    return 2;
  }
  const command = await load();
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    console.error(`dcp ${name}: ${parseArgsProblem(err)}\n\n${command.usage}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(command.usage);
    return 0;
  }
  return command.run(parsed.values, parsed.positionals);
}

/** Resolves once everything written to a stream so far has been handed to the OS (a pipe may take its time). */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}

/** NOTE: no process.exit() while output may be queued: a pipe reader (jq, wc) would get a cut-off document. */
async function finish(code: number): Promise<void> {
  process.exitCode = code;
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  // A command has closed what it opened; a stray handle must not keep the process alive forever.
  setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
}

const debug = process.argv.includes('--log-level=debug') || process.argv[process.argv.indexOf('--log-level') + 1] === 'debug';

// A reader that went away (`dcp events | head`) is not an error of ours.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
});

main(process.argv.slice(2)).then(finish, (err: unknown) => {
  const command = process.argv[2] && process.argv[2] in COMMANDS ? `dcp ${process.argv[2]}` : 'dcp';
  const text = err instanceof Error ? (debug ? (err.stack ?? err.message) : err.message) : String(err);
  console.error(`${command}: ${text}`);
  return finish(1);
});
