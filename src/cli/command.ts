// The shape of a `dcp` subcommand: its flags, usage text and what it runs (main.ts dispatches to it).
import type { ParseArgsConfig } from 'node:util';

export interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** Resolves with the exit code. */
  run(values: Record<string, string | boolean | string[] | boolean[] | undefined>, positionals: string[]): Promise<number>;
}
