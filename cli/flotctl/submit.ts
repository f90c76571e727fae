import { submitUnits } from '../../src/ctl/lifecycle.js';
import { defineCommand, replaceOption, unitsPositional } from './common.js';

export const submit = defineCommand<{ units: string[]; replace: boolean }>({
  command: 'submit <units..>',
  describe: 'Upload unit files (or instances of templates) to the cluster without loading them',
  builder: (y) => replaceOption(unitsPositional(y, 'unit files or names')),
  completion: { flags: ['--replace'], args: 'units-or-files' },
  run: (ctx, argv) => submitUnits(ctx, argv.units, argv.replace),
});
