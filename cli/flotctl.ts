#!/usr/bin/env node
// flotctl: the fleetctl-compatible command line of flotilla. See docs/flotctl.md.
import { hideBin } from 'yargs/helpers';
import { processIO } from '../src/ctl/io.js';
import { exitQuietlyOnClosedPipe, exitWhenFlushed } from '../src/process-exit.js';
import { runFlotctl } from './flotctl/run.js';

// Every command ends here: its output reaches a slow pipe whole, and a
// reader that closes the pipe early ends flotctl quietly (docs/flotctl.md).
exitQuietlyOnClosedPipe();
await exitWhenFlushed(await runFlotctl(hideBin(process.argv), processIO()));
