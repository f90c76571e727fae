import { blockAttempts, destroy as destroyUnits } from '../../src/ctl/lifecycle.js';
import { BLOCKING_FLAGS, blockingOptions, defineCommand, unitsPositional, type BlockingArgs } from './common.js';

export const destroy = defineCommand<BlockingArgs & { units: string[] }>({
  command: 'destroy <units..>',
  describe: 'Remove units from the cluster, stopping and unloading them first',
  builder: (y) => blockingOptions(unitsPositional(y)),
  completion: { flags: BLOCKING_FLAGS, args: 'units' },
  run: (ctx, argv) => destroyUnits(ctx, argv.units, blockAttempts(argv)),
});
