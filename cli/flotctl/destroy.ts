import { BLOCKING_FLAGS, blockingOptions, defineCommand, unitsPositional, type BlockingArgs } from './common.js';

export const destroy = defineCommand<BlockingArgs & { units: string[] }>({
  command: 'destroy <units..>',
  describe: 'Remove units from the cluster, stopping and unloading them first',
  builder: (y) => blockingOptions(unitsPositional(y)),
  completion: { flags: BLOCKING_FLAGS, args: 'units' },
  run: async (ctx, argv) => {
    const { blockAttempts, destroy: destroyUnits } = await import('../../src/ctl/lifecycle.js');
    await destroyUnits(ctx, argv.units, blockAttempts(argv));
  },
});
