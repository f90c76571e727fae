import { blockAttempts, loadOrStart } from '../../src/ctl/lifecycle.js';
import { BLOCKING_FLAGS, blockingOptions, defineCommand, replaceOption, unitsPositional, type BlockingArgs } from './common.js';

export const load = defineCommand<BlockingArgs & { units: string[]; replace: boolean }>({
  command: 'load <units..>',
  describe: 'Schedule units onto machines and load them into systemd without starting them',
  builder: (y) => blockingOptions(replaceOption(unitsPositional(y, 'unit files or names'))),
  completion: { flags: [...BLOCKING_FLAGS, '--replace'], args: 'units-or-files' },
  run: (ctx, argv) => loadOrStart(ctx, argv.units, 'loaded', { replace: argv.replace, attempts: blockAttempts(argv) }),
});
