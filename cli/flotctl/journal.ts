import { JOURNAL_OUTPUTS } from '../../src/api/local-units.js';
import { CtlError, UsageError } from '../../src/ctl/errors.js';
import { unitArg } from '../../src/ctl/units.js';
import { defineCommand } from './common.js';

export const journal = defineCommand<{ unit: string; lines: number; follow: boolean; output: string }>({
  command: 'journal <unit>',
  describe: "Print a unit's journal from its machine (a global unit's from every machine); refuses inactive units",
  builder: (y) =>
    y
      .positional('unit', { type: 'string', describe: 'unit name' })
      .option('lines', { alias: 'n', type: 'number', default: 10, describe: 'number of recent lines' })
      .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'keep printing new lines (until interrupted)' })
      .option('output', { type: 'string', default: 'short', choices: JOURNAL_OUTPUTS, describe: 'journalctl output format (-o)' })
      // fleetctl ran journalctl over SSH, with sudo when asked; flotillad reads the journal as root
      .option('sudo', { type: 'boolean', default: false, describe: "fleetctl's; accepted, no effect: flotillad reads the journal as root" }),
  completion: { flags: ['--lines', '-n', '--follow', '-f', '--output', '--sudo'], args: 'units' },
  run: async (ctx, argv) => {
    const { name } = unitArg(argv.unit);
    if (!Number.isInteger(argv.lines) || argv.lines < 0 || argv.lines > 100_000) throw new UsageError('--lines must be a whole number from 0 to 100000');
    const { MachineClient, followWhilePresent, linePrefixer, placeUnit } = await import('../../src/ctl/remote.js');
    const { unit, machines } = await placeUnit(await ctx.driver(), name, { rejectInactive: true });
    const q = new URLSearchParams({ lines: String(argv.lines), follow: String(argv.follow), output: argv.output });
    const path = `/flotilla/v1/units/${encodeURIComponent(name)}/journal?${q}`;
    const client = new MachineClient(ctx.globals);
    try {
      if (argv.follow && machines.length > 1) {
        // Every machine at once, each line prefixed with its machine; one
        // that goes away is reported at once and the others are still followed.
        let gone = 0;
        await Promise.all(
          machines.map(async (m) => {
            const lines = linePrefixer(`${m.legend}: `, (t) => ctx.out(t));
            try {
              await followWhilePresent(client, await ctx.driver(), m, { path, onData: (c) => lines.write(c) });
            } catch (err) {
              gone++;
              ctx.warn((err as Error).message);
            } finally {
              lines.flush();
            }
          }),
        );
        if (gone > 0) throw new CtlError(`${gone} of ${machines.length} machines running ${name} went away while following`);
        return;
      }
      for (const [j, m] of machines.entries()) {
        if (unit.global) ctx.out(`${j > 0 ? '\n' : ''}=== ${name} on ${m.legend} ===\n`);
        if (argv.follow) await followWhilePresent(client, await ctx.driver(), m, { path, onData: (c) => ctx.out(c) });
        else await client.get(m, { path, onData: (c) => ctx.out(c) });
      }
    } finally {
      client.close();
    }
  },
});
