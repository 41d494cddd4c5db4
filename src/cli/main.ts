#!/usr/bin/env node
// The `dcp` command: parses the subcommand and its flags, runs it, and is the only place that exits.
import { parseArgs } from 'node:util';
import type { Command } from './command.js';

const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => (await import('./run.js')).runCommand,
  events: async () => (await import('./events.js')).eventsCommand,
  preview: async () => (await import('./preview.js')).previewCommand,
  'audit-exporter': async () => (await import('./audit-exporter.js')).auditExporterCommand,
};

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

async function main(argv: string[]): Promise<number> {
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
    console.error(`dcp ${name}: ${err instanceof Error ? err.message : String(err)}\n\n${command.usage}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(command.usage);
    return 0;
  }
  return command.run(parsed.values, parsed.positionals);
}

main(process.argv.slice(2)).then(
  // Exit explicitly: a command has already closed what it opened, and a stray keep-alive socket must not hold the process.
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`dcp: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
