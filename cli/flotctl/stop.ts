import { BLOCKING_FLAGS, blockingOptions, defineCommand, unitsPositional, type BlockingArgs } from './common.js';

export const stop = defineCommand<BlockingArgs & { units: string[] }>({
  command: 'stop <units..>',
  describe: 'Stop units, leaving them loaded on their machines',
  builder: (y) => blockingOptions(unitsPositional(y)),
  completion: { flags: BLOCKING_FLAGS, args: 'units' },
  run: async (ctx, argv) => {
    const { blockAttempts, stop: stopUnits } = await import('../../src/ctl/lifecycle.js');
    await stopUnits(ctx, argv.units, blockAttempts(argv));
  },
});
