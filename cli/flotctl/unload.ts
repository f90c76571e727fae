import { blockAttempts, unload as unloadUnits } from '../../src/ctl/lifecycle.js';
import { BLOCKING_FLAGS, blockingOptions, defineCommand, unitsPositional, type BlockingArgs } from './common.js';

export const unload = defineCommand<BlockingArgs & { units: string[] }>({
  command: 'unload <units..>',
  describe: 'Stop units and unload them from their machines, keeping them in the registry',
  builder: (y) => blockingOptions(unitsPositional(y)),
  completion: { flags: BLOCKING_FLAGS, args: 'units' },
  run: (ctx, argv) => unloadUnits(ctx, argv.units, blockAttempts(argv)),
});
