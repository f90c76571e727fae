import { BLOCKING_FLAGS, blockingOptions, defineCommand, unitsPositional, type BlockingArgs } from './common.js';

export const restart = defineCommand<BlockingArgs & { units: string[] }>({
  command: 'restart <units..>',
  describe: 'Stop then start units (global units on every machine running them)',
  builder: (y) => blockingOptions(unitsPositional(y)),
  completion: { flags: BLOCKING_FLAGS, args: 'units' },
  run: async (ctx, argv) => {
    const { blockAttempts, restart: restartUnits } = await import('../../src/ctl/lifecycle.js');
    await restartUnits(ctx, argv.units, blockAttempts(argv));
  },
});
