import { blockAttempts, restart as restartUnits } from '../../src/ctl/lifecycle.js';
import { BLOCKING_FLAGS, blockingOptions, defineCommand, unitsPositional, type BlockingArgs } from './common.js';

export const restart = defineCommand<BlockingArgs & { units: string[] }>({
  command: 'restart <units..>',
  describe: 'Stop then start units (global units on every machine running them)',
  builder: (y) => blockingOptions(unitsPositional(y)),
  completion: { flags: BLOCKING_FLAGS, args: 'units' },
  run: (ctx, argv) => restartUnits(ctx, argv.units, blockAttempts(argv)),
});
