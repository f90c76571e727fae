import { UNIT_FIELDS, formatUnits, pendingNote, toJson, unitRows, unitsJson } from '../../src/ctl/format.js';
import { defineCommand, LIST_FLAGS, listOptions, type ListArgs } from './common.js';

export const listUnits = defineCommand<ListArgs>({
  command: 'list-units',
  describe: 'List the units loaded on machines, their systemd states, and pending units',
  builder: (y) => listOptions(y, UNIT_FIELDS, 'unit,machine,active,sub'),
  completion: { flags: LIST_FLAGS, args: 'none' },
  run: async (ctx, argv) => {
    const opts = { fields: argv.fields, full: argv.full, noLegend: argv.noLegend };
    if (argv.output !== 'json') formatUnits([], opts);
    const driver = await ctx.driver();
    const [units, states, machines] = await Promise.all([driver.listUnits(), driver.listStates(), driver.listMachines()]);
    const rows = unitRows(units, states, machines);
    if (argv.output === 'json') {
      ctx.out(toJson(unitsJson(rows)));
      return;
    }
    ctx.out(formatUnits(rows, opts));
    if (!argv.noLegend) ctx.io.err(pendingNote(rows, argv.fields));
  },
});
