import { BLOCKING_FLAGS, blockingOptions, defineCommand, unitsPositional, type BlockingArgs } from './common.js';

export const unload = defineCommand<BlockingArgs & { units: string[] }>({
  command: 'unload <units..>',
  describe: 'Stop units and unload them from their machines, keeping them in the registry',
  builder: (y) => blockingOptions(unitsPositional(y)),
  completion: { flags: BLOCKING_FLAGS, args: 'units' },
  run: async (ctx, argv) => {
    const { blockAttempts, unload: unloadUnits } = await import('../../src/ctl/lifecycle.js');
    await unloadUnits(ctx, argv.units, blockAttempts(argv));
  },
});
