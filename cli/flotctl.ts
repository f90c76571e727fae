#!/usr/bin/env node
// flotctl: the fleetctl-compatible command line of flotilla. See docs/flotctl.md.
import { hideBin } from 'yargs/helpers';
import { processIO } from '../src/ctl/io.js';
import { runFlotctl } from './flotctl/run.js';

const code = await runFlotctl(hideBin(process.argv), processIO());
process.exit(code);
