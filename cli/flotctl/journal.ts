import { CtlError } from '../../src/ctl/errors.js';
import { defineCommand } from './common.js';

export const journal = defineCommand<{ unit: string }>({
  command: 'journal <unit>',
  describe: "Print a unit's journal from its machine (needs the daemon API: not available yet)",
  builder: (y) =>
    y
      .positional('unit', { type: 'string', describe: 'unit name' })
      .option('lines', { type: 'number', default: 10, describe: 'number of recent lines' })
      .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'keep printing new lines' })
      .option('output', { type: 'string', default: 'short', describe: 'journalctl output format' }),
  completion: { flags: ['--lines', '--follow', '-f', '--output'], args: 'units' },
  run: async () => {
    throw new CtlError('journal is not available until the daemon API lands (issue 9)');
  },
});
