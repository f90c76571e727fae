#!/usr/bin/env node
// flotillad: the daemon every machine runs (agent, and engine unless
// disabled). Options come from /etc/flotilla/flotilla.conf, FLOTILLA_*
// variables and flags (in rising precedence); see docs/configuration.md.
// Flags are read with node's own parseArgs: yargs alone would add 14 MB to
// a daemon that runs on every machine.
import { parseArgs } from 'node:util';
import { OPTION_NAMES } from '../src/config/config.js';
import { startDaemon } from '../src/daemon.js';
import { exitWhenFlushed } from '../src/process-exit.js';
import { invalidProcessText } from '../src/process-text.js';
import { VERSION } from '../src/version.js';

const USAGE = `usage: flotillad [--config FILE] [--<option> VALUE ...]

Runs the flotilla agent (and the engine, unless disable_engine) on this machine.
Options (see docs/configuration.md): ${OPTION_NAMES.map((n) => `--${n.replaceAll('_', '-')}`).join(' ')}
`;

async function main(): Promise<void> {
  // Node has already turned bytes that are not UTF-8 into U+FFFD (metadata would carry them to etcd).
  const badText = invalidProcessText({ args: process.argv.length - 2, envPrefix: 'FLOTILLA_' });
  if (badText) {
    process.stderr.write(`flotillad: ${badText}\n`);
    return await exitWhenFlushed(2);
  }
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    config: { type: 'string' },
    help: { type: 'boolean' },
    version: { type: 'boolean' },
  };
  for (const name of OPTION_NAMES) options[name.replaceAll('_', '-')] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    process.stderr.write(`flotillad: ${(err as Error).message}\n${USAGE}`);
    return await exitWhenFlushed(2);
  }
  if (values['help']) {
    process.stdout.write(USAGE);
    return;
  }
  if (values['version']) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const flags: Record<string, string | undefined> = {};
  for (const name of OPTION_NAMES) {
    const v = values[name.replaceAll('_', '-')];
    if (typeof v === 'string') flags[name] = v;
  }
  const file = typeof values['config'] === 'string' ? values['config'] : undefined;
  const daemon = await startDaemon({ config: { file, flags } });
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    // SIGTERM/SIGINT: as the shutdown option says (keep: units run on for
    // the next run to adopt; drain: they are stopped and move). The last log
    // lines reach the journal before the process goes.
    void daemon.stop().then(
      () => exitWhenFlushed(0),
      (err: unknown) => {
        process.stderr.write(`flotillad: stopping after ${signal} failed: ${(err as Error).message}\n`);
        return exitWhenFlushed(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    // reload() logs its failure as a JSON line.
    void daemon.reload().catch(() => undefined);
  });
}

main().catch((err: unknown) => {
  const e = err as Error;
  process.stderr.write(`flotillad: ${e.message}\n`);
  if (process.env['FLOTILLA_DEBUG']) process.stderr.write(`${e.stack ?? ''}\n`);
  void exitWhenFlushed(1);
});
