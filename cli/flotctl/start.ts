import { blockAttempts, loadOrStart } from '../../src/ctl/lifecycle.js';
import { BLOCKING_FLAGS, blockingOptions, defineCommand, replaceOption, unitsPositional, type BlockingArgs } from './common.js';

export const start = defineCommand<BlockingArgs & { units: string[]; replace: boolean }>({
  command: 'start <units..>',
  describe: 'Schedule units onto machines and start them (submitting them first if needed)',
  builder: (y) => blockingOptions(replaceOption(unitsPositional(y, 'unit files or names'))),
  completion: { flags: [...BLOCKING_FLAGS, '--replace'], args: 'units-or-files' },
  run: (ctx, argv) => loadOrStart(ctx, argv.units, 'launched', { replace: argv.replace, attempts: blockAttempts(argv) }),
});
