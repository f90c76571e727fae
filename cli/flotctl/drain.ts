import { BLOCKING_FLAGS, blockingOptions, defineCommand, type BlockingArgs } from './common.js';

export const drain = defineCommand<BlockingArgs & { machine: string }>({
  command: 'drain <machine>',
  describe: 'Move every unit off a machine and place none there until undrain',
  builder: (y) => blockingOptions(y.positional('machine', { type: 'string', describe: 'machine ID or a unique prefix of one' })),
  completion: { flags: BLOCKING_FLAGS, args: 'machines' },
  run: async (ctx, argv) => {
    const [{ blockAttempts }, { drain: drainMachine }] = await Promise.all([import('../../src/ctl/lifecycle.js'), import('../../src/ctl/drain.js')]);
    await drainMachine(ctx, argv.machine, blockAttempts(argv));
  },
});

export const undrain = defineCommand<{ machine: string }>({
  command: 'undrain <machine>',
  describe: 'Let the engine place units on a drained machine again',
  builder: (y) => y.positional('machine', { type: 'string', describe: 'machine ID or a unique prefix of one' }),
  completion: { flags: [], args: 'machines' },
  run: async (ctx, argv) => {
    const { undrain: undrainMachine } = await import('../../src/ctl/drain.js');
    await undrainMachine(ctx, argv.machine);
  },
});
