import { checkService } from '../../src/discovery/names.js';
import { CtlError, UsageError } from '../../src/ctl/errors.js';
import { toJson } from '../../src/ctl/format.js';
import { registryFromGlobals, type GlobalOptions } from '../../src/ctl/options.js';
import { formatTable } from '../../src/ctl/table.js';
import type { EndpointRecord, Registry } from '../../src/registry/index.js';
import { defineCommand } from './common.js';

/** A registry connection from flotctl's global options (discovery commands talk to etcd directly). */
export async function discoveryRegistry(g: GlobalOptions): Promise<Registry> {
  if (g.driver === 'api') throw new CtlError('announce and services need --driver etcd (the daemon API does not serve them)');
  return registryFromGlobals(g);
}

export function formatEndpoints(list: readonly EndpointRecord[], opts: { full: boolean; noLegend: boolean }): string {
  const rows = list.map((e) => [
    e.service,
    e.instance,
    e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`,
    Object.entries(e.attributes)
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || '-',
    e.unit ?? '-',
    e.machine ? (opts.full ? e.machine : e.machine.slice(0, 8)) : '-',
  ]);
  return formatTable(opts.noLegend ? rows : [['SERVICE', 'INSTANCE', 'ADDRESS', 'ATTRIBUTES', 'UNIT', 'MACHINE'], ...rows]);
}

/** One endpoint in `services -o json`: every field, null where the table shows `-`. */
export interface EndpointJson {
  service: string;
  instance: string;
  host: string;
  port: number;
  attributes: Record<string, string>;
  unit: string | null;
  machine: string | null;
}

/** `services -o json`: one object, like every flotctl JSON output (docs/flotctl.md). */
export function endpointsJson(list: readonly EndpointRecord[]): { endpoints: EndpointJson[] } {
  return {
    endpoints: list.map((e) => ({
      service: e.service,
      instance: e.instance,
      host: e.host,
      port: e.port,
      attributes: e.attributes,
      unit: e.unit ?? null,
      machine: e.machine ?? null,
    })),
  };
}

interface ServicesArgs {
  service?: string;
  output?: string;
  full?: boolean;
  noLegend?: boolean;
}

export const services = defineCommand<ServicesArgs>({
  command: 'services [service]',
  describe: 'List the endpoints announced for discovery (of one service, or of all)',
  builder: (y) =>
    y
      .positional('service', { type: 'string', describe: 'service name' })
      .option('full', { alias: 'l', type: 'boolean', default: false, describe: 'do not shorten machine IDs' })
      .option('no-legend', { type: 'boolean', default: false, describe: 'do not print the header line' })
      .option('output', { alias: 'o', type: 'string', choices: ['table', 'json'], default: 'table', describe: 'output format' }),
  completion: { flags: ['--full', '-l', '--no-legend', '--output', '-o'], args: 'none' },
  run: async (ctx, argv) => {
    if (argv.service !== undefined) {
      try {
        checkService(argv.service);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    }
    const registry = await discoveryRegistry(ctx.globals);
    try {
      const list = (await registry.listEndpoints(argv.service)).sort(
        (a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0),
      );
      ctx.out(argv.output === 'json' ? toJson(endpointsJson(list)) : formatEndpoints(list, { full: argv.full === true, noLegend: argv.noLegend === true }));
    } finally {
      registry.close();
    }
  },
});
