import { DEFAULT_TTL_SECONDS, DiscoveryNameError, checkService, parseHostPort } from '../../src/discovery/names.js';
import { UsageError } from '../../src/ctl/errors.js';
import { defineCommand } from './common.js';
import { discoveryRegistry } from './services.js';

interface AnnounceArgs {
  service: string;
  address: string;
  ttl: number;
  attr?: string[];
  instance?: string;
  unit?: string;
  machine?: string;
}

function parseAttrs(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new UsageError(`--attr ${JSON.stringify(a)} is not key=value`);
    out[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return out;
}

/** Resolves on the first SIGTERM, SIGINT or SIGHUP. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
    const on = (s: NodeJS.Signals): void => {
      for (const x of signals) process.off(x, on);
      resolve(s);
    };
    for (const s of signals) process.on(s, on);
  });
}

export const announce = defineCommand<AnnounceArgs>({
  command: 'announce <service> <address>',
  describe: "Announce SERVICE at HOST:PORT while this command runs (a sidekick unit's ExecStart)",
  builder: (y) =>
    y
      .positional('service', { type: 'string', describe: 'service name (a DNS label)' })
      .positional('address', { type: 'string', describe: 'HOST:PORT (or [IPv6]:PORT)' })
      .option('ttl', { type: 'number', default: DEFAULT_TTL_SECONDS, describe: 'seconds the endpoint outlives this process if it dies' })
      .option('attr', { type: 'string', array: true, describe: 'attribute key=value (repeatable)' })
      .option('instance', { type: 'string', describe: 'instance name (default HOST:PORT)' })
      .option('unit', { type: 'string', describe: 'the unit serving the endpoint, for readers' })
      .option('machine', { type: 'string', describe: 'the machine ID, for readers' }),
  completion: { flags: ['--ttl', '--attr', '--instance', '--unit', '--machine'], args: 'none' },
  run: async (ctx, argv) => {
    const signal = untilSignal();
    let spec;
    try {
      checkService(argv.service);
      const { host, port } = parseHostPort(argv.address);
      spec = { host, port, attributes: parseAttrs(argv.attr ?? []), instance: argv.instance, unit: argv.unit, machine: argv.machine };
      if (!Number.isInteger(argv.ttl) || argv.ttl < 2) throw new UsageError('--ttl must be a whole number of seconds, at least 2');
    } catch (err) {
      throw err instanceof DiscoveryNameError ? new UsageError(err.message) : err;
    }
    // The etcd client is loaded only now, as the command runs.
    const [{ Discovery }, { formatLeaseId }] = await Promise.all([import('../../src/discovery/client.js'), import('../../src/registry/lease.js')]);
    const discovery = new Discovery(await discoveryRegistry(ctx.globals), { ownsRegistry: true });
    try {
      let a;
      try {
        a = await discovery.announce(argv.service, spec, { ttl: argv.ttl });
      } catch (err) {
        throw err instanceof DiscoveryNameError ? new UsageError(err.message) : err;
      }
      a.on('lost', (err) => ctx.warn(`lease lost (${err.message}); announcing again`));
      a.on('announced', (lease) => ctx.out(`announced again under lease ${formatLeaseId(lease)}\n`));
      ctx.out(`announced ${a.service}/${a.instance} at ${argv.address} (key ${a.key}, ttl ${a.ttlSeconds} s, lease ${a.leaseId === undefined ? '?' : formatLeaseId(a.leaseId)})\n`);
      const s = await signal;
      await a.stop();
      ctx.out(`withdrawn ${a.service}/${a.instance} (${s})\n`);
    } finally {
      await discovery.close();
    }
  },
});
