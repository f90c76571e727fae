// Hidden helpers the completion scripts call: names, one a line, nothing on failure.
import { defineCommand } from './common.js';

export const completeUnits = defineCommand<object>({
  command: '__complete-units',
  describe: 'unit names, for shell completion',
  hidden: true,
  completion: { flags: [], args: 'none' },
  run: async (ctx) => {
    const units = await (await ctx.driver()).listUnits();
    ctx.out(units.map((u) => `${u.name}\n`).join(''));
  },
});

export const completeMachines = defineCommand<object>({
  command: '__complete-machines',
  describe: 'machine IDs, for shell completion',
  hidden: true,
  completion: { flags: [], args: 'none' },
  run: async (ctx) => {
    const machines = await (await ctx.driver()).listMachines();
    ctx.out(machines.map((m) => `${m.id}\n`).join(''));
  },
});
