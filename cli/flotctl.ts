#!/usr/bin/env node
// flotctl: the fleetctl-compatible command line of flotilla. See docs/flotctl.md.
import { processIO } from '../src/ctl/io.js';
import { exitQuietlyOnClosedPipe, exitWhenFlushed } from '../src/process-exit.js';
import { invalidProcessText } from '../src/process-text.js';
import { cachedHelp } from './flotctl/help-cache.js';
import { runFlotctl } from './flotctl/run.js';

// Every command ends here: its output reaches a slow pipe whole, and a
// reader that closes the pipe early ends flotctl quietly (docs/flotctl.md).
exitQuietlyOnClosedPipe();

// Node has already turned bytes that are not UTF-8 into U+FFFD; refuse them rather than write them.
const badText = invalidProcessText({ args: process.argv.length - 2, envPrefix: ['FLOTCTL_', 'FLEETCTL_'] });
if (badText) {
  process.stderr.write(`flotctl: ${badText}\n`);
  await exitWhenFlushed(2);
}
// process.argv without node and the script, as yargs' hideBin gives it (not imported: --version needs no yargs).
const args = process.argv.slice(2);
const help = cachedHelp(args, process.env, new URL('./flotctl-help.json', import.meta.url));
if (help !== undefined) {
  process.stdout.write(help);
  await exitWhenFlushed(0);
}
await exitWhenFlushed(await runFlotctl(args, processIO()));
