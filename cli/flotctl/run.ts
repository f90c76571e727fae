// The flotctl runner: parses a command line (expanding command prefixes),
// runs the command with the given I/O, and turns every failure into one
// line on stderr and an exit code: 0 success, 1 failure, 2 usage error.
// `--version` answers before yargs and the list of commands are imported,
// and each command imports its own code (and the driver) as it runs
// (docs/flotctl.md, Speed; test/unit/ctl/lazy.test.ts).
import type { Argv } from 'yargs';
import { CtlContext, type CtlContextOptions } from '../../src/ctl/context.js';
import { CtlError, UsageError } from '../../src/ctl/errors.js';
import type { CtlIO } from '../../src/ctl/io.js';
import { GLOBAL_FLAGS, GLOBAL_FLAG_NAMES, GLOBAL_VALUE_FLAGS, envBoolean, envDefault, envName, envValue, checkGlobalFlags, validateGlobals, type DriverName, type GlobalOptions } from '../../src/ctl/options.js';
import { markOperands } from '../../src/ctl/operands.js';
import { commandPosition, expandCommand, resolveCommandName, type CommandIndex } from '../../src/ctl/prefix.js';
import { usageMessage } from '../../src/ctl/usage.js';
import { VERSION } from '../../src/version.js';
import type { CtlCommand, RunState } from './common.js';

function commandIndex(commands: readonly CtlCommand[]): CommandIndex {
  return {
    visible: commands.filter((c) => !c.hidden).map((c) => c.name),
    hidden: commands.filter((c) => c.hidden).map((c) => c.name),
    valueFlags: GLOBAL_VALUE_FLAGS,
    knownFlags: new Set([...GLOBAL_FLAG_NAMES, 'help', 'h', ...commands.flatMap((c) => c.completion.flags.map((f) => f.replace(/^--?/, '')))]),
  };
}

async function parser(commands: readonly CtlCommand[], env: CtlIO['env'], args: readonly string[]): Promise<Argv> {
  const { default: yargs } = await import('yargs');
  let y = yargs()
    .scriptName('flotctl')
    // usageMessage() rewrites yargs' English messages, whatever LANG says.
    .detectLocale(false)
    .locale('en')
    .usage('flotctl [global options] <command> [options]\n\nManages systemd units across a flotilla cluster, as fleetctl did for fleet.')
    .parserConfiguration({ 'boolean-negation': false })
    .exitProcess(false)
    .strict()
    .version(false)
    .help('help')
    .alias('help', 'h')
    .wrap(100)
    .demandCommand(1, 'no command given; see flotctl help')
    .fail((msg, err) => {
      throw err ?? new UsageError(usageMessage(msg, args));
    });
  for (const f of GLOBAL_FLAGS) {
    const def = envDefault(f, env);
    y = y.option(f.flag, {
      type: f.type,
      global: true,
      describe: f.env === false ? f.describe : `${f.describe} [env ${envName(f.flag)}, ${envName(f.flag, 'FLEETCTL_')}]`,
      ...(def !== undefined ? { default: def } : {}),
      ...(f.aliases ? { alias: [...f.aliases] } : {}),
      ...(f.coerce ? { coerce: f.coerce } : {}),
      ...(f.choices ? { choices: [...f.choices] } : {}),
    });
  }
  for (const c of commands) y = y.command(c.module);
  return y;
}

function globalsOf(argv: Record<string, unknown>): GlobalOptions {
  const str = (k: string): string | undefined => (typeof argv[k] === 'string' ? (argv[k] as string) : undefined);
  return {
    endpoint: str('endpoint'),
    driver: (str('driver') ?? 'etcd') as DriverName,
    etcdKeyPrefix: str('etcd-key-prefix') ?? '/flotilla/',
    keyFile: str('key-file'),
    certFile: str('cert-file'),
    caFile: str('ca-file'),
    username: str('username'),
    password: str('password'),
    apiTokenFile: str('api-token-file'),
    requestTimeout: typeof argv['request-timeout'] === 'number' ? (argv['request-timeout'] as number) : NaN,
    debug: argv['debug'] === true,
  };
}

/** `help X` → `X --help`, with X's prefix expanded. */
function helpArgs(args: string[], at: number, index: CommandIndex): string[] {
  const topic = args[at + 1];
  if (topic === undefined || topic.startsWith('-')) return ['--help'];
  return [resolveCommandName(topic, index), '--help'];
}

function debugWanted(args: readonly string[], env: CtlIO['env']): boolean {
  if (args.includes('--debug')) return true;
  const v = envValue({ flag: 'debug' }, env);
  return v !== undefined && envBoolean(v.raw) === true;
}

/** Runs flotctl with these arguments (without the program name); resolves to the exit code. */
export async function runFlotctl(argv: readonly string[], io: CtlIO, opts: CtlContextOptions = {}): Promise<number> {
  const debug = debugWanted(argv, io.env);
  let ctx: CtlContext | undefined;
  let command: string | undefined;
  let commands: readonly CtlCommand[] = [];
  try {
    const cut = argv.indexOf('--');
    if ((cut < 0 ? argv : argv.slice(0, cut)).includes('--version')) {
      io.out(`flotctl version ${VERSION}\n`);
      return 0;
    }
    commands = (await import('./commands.js')).COMMANDS;
    const index = commandIndex(commands);
    const expanded = expandCommand(argv, index);
    const cmd = expanded.command;
    let args = expanded.args;
    if (cmd === 'help') args = helpArgs(args, commandPosition(args, index.valueFlags), index);
    else command = cmd;
    args = markOperands(args, commandPosition(args, index.valueFlags));
    const state: RunState = { ctx: undefined as unknown as CtlContext };
    let parsed: Record<string, unknown> = {};
    let helpText = '';
    (await parser(commands, io.env, args)).parse(args, { __run: state }, (err, a, output) => {
      if (err) throw err;
      parsed = a as Record<string, unknown>;
      helpText = output;
    });
    if (!state.action) {
      // --help (or nothing to do): yargs produced the text.
      if (helpText) io.out(helpText.endsWith('\n') ? helpText : `${helpText}\n`);
      return 0;
    }
    checkGlobalFlags(parsed, io.env);
    const globals = globalsOf(parsed);
    validateGlobals(globals);
    ctx = new CtlContext(io, globals, opts);
    state.ctx = ctx;
    await state.action();
    return 0;
  } catch (err) {
    return report(err, io, debug, command, commands);
  } finally {
    if (ctx) await ctx.close().catch(() => undefined);
  }
}

function report(err: unknown, io: CtlIO, debug: boolean, command: string | undefined, commands: readonly CtlCommand[]): number {
  const e = err instanceof Error ? err : new Error(String(err));
  let msg = e.message.split('\n')[0] ?? e.message;
  if (e instanceof UsageError && command) {
    const spec = commands.find((c) => c.name === command)?.module.command;
    const usage = typeof spec === 'string' ? `flotctl ${spec}` : `flotctl ${command}`;
    if (/^Not enough non-option arguments/.test(msg)) msg = `missing arguments: usage: ${usage}`;
    if (!/see flotctl help/.test(msg)) msg += `; see flotctl help ${command}`;
  }
  io.err(`flotctl: ${msg}\n`);
  if (debug && e.stack) io.err(`${e.stack}\n`);
  return e instanceof CtlError ? e.exitCode : 1;
}
