#!/usr/bin/env node
// flotillad: the daemon every machine runs (agent, and engine unless
// disabled). Options come from /etc/flotilla/flotilla.conf, FLOTILLA_*
// variables and flags (in rising precedence); see docs/configuration.md.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { OPTION_NAMES } from '../src/config/config.js';
import { startDaemon, VERSION } from '../src/daemon.js';

async function main(): Promise<void> {
  let y = yargs(hideBin(process.argv))
    .scriptName('flotillad')
    .usage('$0 [options]\n\nRuns the flotilla agent (and engine) on this machine.')
    .option('config', { type: 'string', describe: 'configuration file (default /etc/flotilla/flotilla.conf)' })
    .version(VERSION)
    .strict();
  for (const name of OPTION_NAMES) y = y.option(name.replaceAll('_', '-'), { type: 'string', describe: `sets ${name}` });
  const argv = await y.parseAsync();
  const flags: Record<string, string | undefined> = {};
  for (const name of OPTION_NAMES) {
    const v = (argv as Record<string, unknown>)[name.replaceAll('_', '-')];
    if (typeof v === 'string') flags[name] = v;
  }
  const daemon = await startDaemon({ config: { file: argv.config, flags } });
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    // SIGTERM/SIGINT: stop and unload local units, withdraw, so they move.
    void daemon.stop({ purge: true }).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`flotillad: stopping after ${signal} failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    void daemon.reload().catch((err: unknown) => process.stderr.write(`flotillad: reload failed: ${(err as Error).message}\n`));
  });
}

main().catch((err: unknown) => {
  const e = err as Error;
  process.stderr.write(`flotillad: ${e.message}\n`);
  if (process.env['FLOTILLA_DEBUG']) process.stderr.write(`${e.stack ?? ''}\n`);
  process.exit(1);
});
