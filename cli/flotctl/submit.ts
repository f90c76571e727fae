import { SUBMIT_FLAGS, defineCommand, submitOptions, unitsPositional, type SubmitArgs } from './common.js';

export const submit = defineCommand<SubmitArgs & { units: string[] }>({
  command: 'submit <units..>',
  describe: 'Upload unit files (or instances of templates) to the cluster without loading them',
  builder: (y) => submitOptions(unitsPositional(y, 'unit files or names')),
  completion: { flags: [...SUBMIT_FLAGS], args: 'units-or-files' },
  run: async (ctx, argv) => {
    const { submitUnits } = await import('../../src/ctl/lifecycle.js');
    await submitUnits(ctx, argv.units, { replace: argv.replace, allowUnknownKeys: argv.allowUnknownKeys });
  },
});
