import { CtlError } from '../../src/ctl/errors.js';
import { unitArg } from '../../src/ctl/units.js';
import { defineCommand, unitsPositional } from './common.js';

export const status = defineCommand<{ units: string[] }>({
  command: 'status <units..>',
  describe: "Print systemd's status (systemctl status -l) of units on their machines; a global unit's from every machine",
  builder: (y) => unitsPositional(y),
  completion: { flags: [], args: 'units' },
  run: async (ctx, argv) => {
    const { MachineClient, placeUnit } = await import('../../src/ctl/remote.js');
    const client = new MachineClient(ctx.globals);
    let failed = 0;
    try {
      for (const [i, arg] of argv.units.entries()) {
        const { name } = unitArg(arg);
        if (i > 0) ctx.out('\n');
        try {
          const { unit, machines } = await placeUnit(await ctx.driver(), name);
          for (const [j, m] of machines.entries()) {
            if (unit.global) ctx.out(`${j > 0 ? '\n' : ''}=== ${name} on ${m.legend} ===\n`);
            let text = '';
            await client.get(m, { path: `/flotilla/v1/units/${encodeURIComponent(name)}/status`, onData: (c) => (text += c) });
            ctx.out(text);
          }
        } catch (err) {
          if (!(err instanceof CtlError) || argv.units.length === 1) throw err;
          ctx.io.err(`flotctl: ${err.message}\n`);
          failed++;
        }
      }
    } finally {
      client.close();
    }
    if (failed > 0) throw new CtlError(`status failed for ${failed} of ${argv.units.length} units`);
  },
});
