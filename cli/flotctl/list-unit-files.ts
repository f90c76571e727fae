import { UNIT_FILE_FIELDS, formatUnitFiles, toJson, unitFileRows, unitFilesJson } from '../../src/ctl/format.js';
import { defineCommand, LIST_FLAGS, listOptions, type ListArgs } from './common.js';

export const listUnitFiles = defineCommand<ListArgs>({
  command: 'list-unit-files',
  describe: 'List the unit files in the cluster, with their desired and current states',
  builder: (y) => listOptions(y, UNIT_FILE_FIELDS, 'unit,hash,dstate,state,target'),
  completion: { flags: LIST_FLAGS, args: 'none' },
  run: async (ctx, argv) => {
    const opts = { fields: argv.fields, full: argv.full, noLegend: argv.noLegend };
    if (argv.output !== 'json') formatUnitFiles([], opts);
    const driver = await ctx.driver();
    const [units, machines] = await Promise.all([driver.listUnits(), driver.listMachines()]);
    const rows = unitFileRows(units, machines);
    ctx.out(argv.output === 'json' ? toJson(unitFilesJson(rows)) : formatUnitFiles(rows, opts, (m) => ctx.warn(m)));
  },
});
