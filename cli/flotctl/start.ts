import { BLOCKING_FLAGS, SUBMIT_FLAGS, blockingOptions, defineCommand, submitOptions, unitsPositional, type BlockingArgs, type SubmitArgs } from './common.js';

export const start = defineCommand<BlockingArgs & SubmitArgs & { units: string[] }>({
  command: 'start <units..>',
  describe: 'Schedule units onto machines and start them (submitting them first if needed)',
  builder: (y) => blockingOptions(submitOptions(unitsPositional(y, 'unit files or names'))),
  completion: { flags: [...BLOCKING_FLAGS, ...SUBMIT_FLAGS], args: 'units-or-files' },
  run: async (ctx, argv) => {
    const { blockAttempts, loadOrStart } = await import('../../src/ctl/lifecycle.js');
    await loadOrStart(ctx, argv.units, 'launched', { replace: argv.replace, allowUnknownKeys: argv.allowUnknownKeys, attempts: blockAttempts(argv) });
  },
});
