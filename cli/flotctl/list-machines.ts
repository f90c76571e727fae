import { MACHINE_FIELDS, duplicateHost, formatMachines, machinesJson, toJson } from '../../src/ctl/format.js';
import { defineCommand, LIST_FLAGS, listOptions, type ListArgs } from './common.js';

export const listMachines = defineCommand<ListArgs>({
  command: 'list-machines',
  describe: 'List the machines in the cluster',
  builder: (y) => listOptions(y, MACHINE_FIELDS, 'machine,ip,metadata'),
  completion: { flags: LIST_FLAGS, args: 'none' },
  run: async (ctx, argv) => {
    const opts = { fields: argv.fields, full: argv.full, noLegend: argv.noLegend };
    if (argv.output !== 'json') formatMachines([], opts); // refuse bad --fields before any request
    const machines = await (await ctx.driver()).listMachines();
    ctx.out(argv.output === 'json' ? toJson(machinesJson(machines)) : formatMachines(machines, opts));
    // Said on stderr, so the table stays as fleetctl prints it.
    for (const m of machines) {
      for (const d of m.duplicates ?? []) {
        ctx.warn(`machine ${m.id} is also the machine ID of ${duplicateHost(d)}, which does not act on its schedule while ${m.hostname || 'this machine'} holds it; give each host its own /etc/machine-id`);
      }
    }
  },
});
