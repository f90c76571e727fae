import { CtlError } from '../../src/ctl/errors.js';
import { defineCommand, unitsPositional } from './common.js';

export const status = defineCommand<{ units: string[] }>({
  command: 'status <units..>',
  describe: "Print systemd's status of units on their machines (needs the daemon API: not available yet)",
  builder: (y) => unitsPositional(y),
  completion: { flags: [], args: 'units' },
  run: async () => {
    throw new CtlError('status is not available until the daemon API lands (issue 9)');
  },
});
