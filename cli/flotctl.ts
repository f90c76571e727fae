#!/usr/bin/env node
// flotctl: the fleetctl-compatible command line of flotilla. See docs/flotctl.md.
import { hideBin } from 'yargs/helpers';
import { processIO } from '../src/ctl/io.js';
import { invalidProcessText } from '../src/process-text.js';
import { runFlotctl } from './flotctl/run.js';

// `flotctl list-units | head -1`: a closed pipe ends the output, not in a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

// Node has already turned bytes that are not UTF-8 into U+FFFD; refuse them rather than write them.
const badText = invalidProcessText({ args: process.argv.length - 2, envPrefix: 'FLOTCTL_' });
if (badText) {
  process.stderr.write(`flotctl: ${badText}\n`);
  process.exit(2);
}
const code = await runFlotctl(hideBin(process.argv), processIO());
process.exit(code);
