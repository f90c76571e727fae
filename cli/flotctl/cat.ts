import { CtlError } from '../../src/ctl/errors.js';
import { catJson, toJson } from '../../src/ctl/format.js';
import { unitArg } from '../../src/ctl/units.js';
import { defineCommand } from './common.js';

export const cat = defineCommand<{ unit: string; output: string }>({
  command: 'cat <unit>',
  describe: 'Print a unit file as stored in the registry',
  builder: (y) =>
    y
      .positional('unit', { type: 'string', describe: 'unit name' })
      .option('output', { alias: 'o', type: 'string', choices: ['text', 'json'], default: 'text', describe: 'output format' }),
  completion: { flags: ['--output', '-o'], args: 'units' },
  run: async (ctx, argv) => {
    const { name } = unitArg(argv.unit);
    const unit = (await (await ctx.driver()).getUnits([name])).get(name);
    if (!unit) throw new CtlError(`unit ${name} does not exist`);
    // The file exactly as stored: nothing added, nothing removed.
    ctx.out(argv.output === 'json' ? toJson(catJson(unit)) : unit.text);
  },
});
