// What the command modules share: how a yargs command hands its work to the
// runner (run.ts), and the flags several commands take.
import type { Argv, CommandModule } from 'yargs';
import type { CtlContext } from '../../src/ctl/context.js';
import type { CompletionCommand } from '../../src/ctl/completion.js';
import { unmarkOperands } from '../../src/ctl/operands.js';

/** Passed to yargs as parse context: a handler leaves its work here, the runner runs it. */
export interface RunState {
  ctx: CtlContext;
  action?: (() => Promise<void>) | undefined;
}

/** A flotctl command: its yargs module plus what completion needs to know. */
export interface CtlCommand {
  name: string;
  module: CommandModule;
  hidden?: boolean;
  completion: Omit<CompletionCommand, 'name'>;
}

export interface CommandSpec<A> {
  /** yargs command string, e.g. `start <units..>`. */
  command: string;
  describe: string;
  hidden?: boolean;
  builder?: (y: Argv) => Argv;
  run: (ctx: CtlContext, argv: A) => Promise<void>;
  completion: Omit<CompletionCommand, 'name'>;
}

export function defineCommand<A>(spec: CommandSpec<A>): CtlCommand {
  const name = spec.command.split(' ')[0]!;
  const module: CommandModule = {
    command: spec.command,
    describe: spec.hidden ? false : spec.describe,
    builder: (y) => (spec.builder ? spec.builder(y) : y),
    handler: (argv) => {
      const state = (argv as unknown as { __run: RunState }).__run;
      unmarkOperands(argv);
      state.action = () => spec.run(state.ctx, argv as unknown as A);
    },
  };
  return { name, module, hidden: spec.hidden ?? false, completion: spec.completion };
}

export interface BlockingArgs {
  noBlock?: boolean;
  blockAttempts?: number;
}

export const BLOCKING_FLAGS = ['--no-block', '--block-attempts'];

export function blockingOptions(y: Argv): Argv {
  return y
    .option('no-block', { type: 'boolean', describe: 'do not wait for the units to reach the state' })
    .option('block-attempts', { type: 'number', describe: 'give up after N attempts of 2 seconds; 0 (default) waits forever' });
}

export interface SubmitArgs {
  replace: boolean;
  allowUnknownKeys: boolean;
}

export const SUBMIT_FLAGS = ['--replace', '--allow-unknown-keys'];

/** --replace and --allow-unknown-keys, taken by every command that submits units. */
export function submitOptions(y: Argv): Argv {
  return y
    .option('replace', { type: 'boolean', default: false, describe: 'replace units whose local file differs from the registry' })
    .option('allow-unknown-keys', {
      type: 'boolean',
      default: false,
      describe: 'accept [X-Fleet] keys this version does not know (keys of a newer version), with a warning',
    });
}

export interface ListArgs {
  fields?: string;
  full?: boolean;
  noLegend?: boolean;
  output?: string;
}

export const LIST_FLAGS = ['--fields', '--full', '-l', '--no-legend', '--output', '-o'];

export function listOptions(y: Argv, validFields: readonly string[], defaults: string): Argv {
  return y
    .option('fields', { type: 'string', describe: `columns to print: ${validFields.join(',')} (default ${defaults})` })
    .option('full', { alias: 'l', type: 'boolean', default: false, describe: 'do not shorten machine IDs and hashes' })
    .option('no-legend', { type: 'boolean', default: false, describe: 'do not print the header line' })
    .option('output', { alias: 'o', type: 'string', choices: ['table', 'json'], default: 'table', describe: 'output format' });
}

export const unitsPositional = (y: Argv, what = 'units'): Argv =>
  y.positional('units', { type: 'string', array: true, describe: what });
