// Network faults on a running lab, for nodes and etcd members alike (each
// lives in a network namespace of its own on the lab's bridge, network.ts):
//   cut        the host end of its veth goes down: it loses etcd, every
//              other node and the host at once (packets are dropped, so
//              connections hang and time out rather than being refused);
//   partition  sides that cannot reach each other: inside every namespace
//              of one side, a blackhole route for each address of the
//              others (nodes named on no side, and the host, reach all);
//   slow       a qdisc on both ends of its veth, so traffic to and from it
//              is delayed/lost (netem) or rate-limited (tbf);
//   heal       undoes all three for the hosts named (every host by default).
// The kernel holds the state (link, routes, qdiscs); faultsOf() reads it back.
import { existsSync } from 'node:fs';
import { run, runOk } from './exec.js';
import { LabError, requireState } from './lab-folder.js';
import { withLabLock } from './lab-lock.js';
import { labLayout, type LabState } from './lab-state.js';
import { labNetwork, netnsName, netnsPath, vethName } from './network.js';

/** A node or etcd member as the faults see it. */
export interface NetHost {
  name: string;
  ip: string;
  /** Its network namespace's name (ip -n). */
  netns: string;
  /** The host end of its veth pair. */
  veth: string;
}

export interface SlowSpec {
  /** One-way delay added in each direction, ms (netem). */
  delayMs?: number;
  /** Packets lost in each direction, percent (netem). */
  lossPct?: number;
  /** Rate limit in each direction, bits per second (tbf, or netem's rate with delay/loss). */
  rateBits?: number;
}

/** The lab's nodes and etcd members by name. */
export function netHosts(dir: string, state: LabState): NetHost[] {
  const net = labNetwork(dir);
  const all = [...state.etcd.members, ...state.nodes].map((h) => ({ name: h.name, ip: h.ip }));
  return all.map((h) => ({ ...h, netns: netnsName(net, h.name), veth: vethName(net, h.ip) }));
}

/** Cuts a node or member off: its veth's host end goes down. */
export async function cut(dir: string, name: string): Promise<void> {
  await withHosts(dir, [name], async ([host]) => {
    if (host) await ip('link', 'set', host.veth, 'down');
  });
}

/**
 * Splits the named hosts into sides that cannot reach each other. Each name
 * may appear once; nothing is applied unless all of it is.
 */
export async function partition(dir: string, sides: readonly string[][]): Promise<void> {
  if (sides.length < 2 || sides.some((s) => s.length === 0)) throw new LabError('partition needs two sides, each with at least one name: partition A,B / C');
  const names = sides.flat();
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length > 0) throw new LabError(`partition: ${[...new Set(twice)].join(', ')} named on more than one side`);
  await withHosts(dir, names, async (hosts) => {
    const byName = new Map(hosts.map((h) => [h.name, h]));
    const added: [NetHost, NetHost][] = [];
    try {
      for (const [i, side] of sides.entries()) {
        for (const [j, other] of sides.entries()) {
          if (i === j) continue;
          for (const a of side) {
            for (const b of other) {
              const [from, to] = [byName.get(a), byName.get(b)];
              if (!from || !to) continue;
              await ip('-n', from.netns, 'route', 'replace', 'blackhole', `${to.ip}/32`);
              added.push([from, to]);
            }
          }
        }
      }
    } catch (err) {
      for (const [from, to] of added) await run(['ip', '-n', from.netns, 'route', 'del', 'blackhole', `${to.ip}/32`]);
      throw err;
    }
  });
}

/** Slows the traffic to and from a node or member; replaces an earlier slow. */
export async function slow(dir: string, name: string, spec: SlowSpec): Promise<void> {
  const args = qdiscArgs(spec);
  await withHosts(dir, [name], async ([host]) => {
    if (!host) return;
    const ends: string[][] = [['tc'], ['tc', '-n', host.netns]];
    const devs = [host.veth, 'eth0'];
    for (const [i, tc] of ends.entries()) {
      const r = await run([...tc, 'qdisc', 'replace', 'dev', devs[i] ?? '', 'root', ...args]);
      if (r.code === 0) continue;
      // Nothing half-applied: the end done already is cleared.
      if (i > 0) await run(['tc', 'qdisc', 'del', 'dev', host.veth, 'root']);
      if (/qdisc kind is unknown/i.test(r.stderr) && args[0] === 'netem') {
        throw new LabError(
          `slow --delay/--loss needs tc's netem qdisc, which this kernel lacks (no sch_netem module, CONFIG_NET_SCH_NETEM); --rate alone works without it (tbf)`,
        );
      }
      throw new LabError(`tc qdisc replace ... ${args.join(' ')} on ${name} failed: ${(r.stderr || r.stdout).trim()}`);
    }
  });
}

/** Heals the named hosts (every host of the lab when none is named): link up, no blackhole route to or from them, no qdisc. */
export async function heal(dir: string, names: readonly string[] = []): Promise<string[]> {
  return withHosts(dir, names, async (hosts, all) => {
    for (const h of hosts) {
      await ip('link', 'set', h.veth, 'up');
      await ip('-n', h.netns, 'route', 'flush', 'type', 'blackhole');
      for (const other of all) if (other !== h) await run(['ip', '-n', other.netns, 'route', 'del', 'blackhole', `${h.ip}/32`]);
      // "no qdisc to delete" is fine: that end was not slowed.
      await run(['tc', 'qdisc', 'del', 'dev', h.veth, 'root']);
      await run(['tc', '-n', h.netns, 'qdisc', 'del', 'dev', 'eth0', 'root']);
    }
    return hosts.map((h) => h.name);
  }, true);
}

/** What faults each host has now, read from the kernel: 'cut', 'partitioned from X,Y', 'slow (tbf rate 1Mbit)'. */
export async function faultsOf(dir: string, state: LabState): Promise<Map<string, string[]>> {
  const hosts = netHosts(dir, state).filter((h) => existsSync(netnsPath(labNetwork(dir), h.name)));
  const byIp = new Map(hosts.map((h) => [h.ip, h.name]));
  const out = new Map<string, string[]>();
  for (const h of hosts) {
    const faults: string[] = [];
    const link = JSON.parse((await run(['ip', '-j', 'link', 'show', h.veth])).stdout || '[]') as { flags?: string[] }[];
    if (link[0] && !(link[0].flags ?? []).includes('UP')) faults.push('cut');
    const routes = JSON.parse((await run(['ip', '-j', '-n', h.netns, 'route', 'show', 'type', 'blackhole'])).stdout || '[]') as { dst?: string }[];
    const from = routes.map((r) => byIp.get(r.dst ?? '') ?? r.dst ?? '?');
    if (from.length > 0) faults.push(`partitioned from ${from.join(',')}`);
    const qdiscs = JSON.parse((await run(['tc', '-j', 'qdisc', 'show', 'dev', h.veth])).stdout || '[]') as { kind?: string; root?: boolean }[];
    const slowed = qdiscs.find((q) => q.root && (q.kind === 'tbf' || q.kind === 'netem'));
    if (slowed) faults.push(`slow (${slowed.kind})`);
    out.set(h.name, faults);
  }
  return out;
}

/** `A,B / C` (as one string or several words) into sides: [['A','B'],['C']]. */
export function parseSides(words: readonly string[]): string[][] {
  return words
    .join(' ')
    .split('/')
    .map((side) => side.split(/[\s,]+/).filter(Boolean));
}

/** slow's options as given on the command line; one clear message for a bad one. */
export function parseSlow(opts: { delay?: string; loss?: string; rate?: string }): SlowSpec {
  const spec: SlowSpec = {};
  if (opts.delay !== undefined) {
    const m = /^(\d+(?:\.\d+)?)(us|ms|s)$/.exec(opts.delay);
    if (!m) throw new LabError(`--delay ${JSON.stringify(opts.delay)} is not a duration such as 200ms or 1s`);
    spec.delayMs = Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[m[2] ?? 'ms']!;
  }
  if (opts.loss !== undefined) {
    const m = /^(\d+(?:\.\d+)?)%?$/.exec(opts.loss);
    if (!m || Number(m[1]) > 100) throw new LabError(`--loss ${JSON.stringify(opts.loss)} is not a percentage such as 5%`);
    spec.lossPct = Number(m[1]);
  }
  if (opts.rate !== undefined) {
    const m = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$/i.exec(opts.rate);
    const unit = m?.[2]?.toLowerCase() ?? '';
    const bits = m ? Number(m[1]) * ({ bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9 } as Record<string, number>)[unit]! : 0;
    if (!m || bits < 8_000) throw new LabError(`--rate ${JSON.stringify(opts.rate)} is not a rate of at least 8kbit such as 1mbit or 500kbps (tc's units)`);
    spec.rateBits = Math.round(bits);
  }
  if (spec.delayMs === undefined && spec.lossPct === undefined && spec.rateBits === undefined) {
    throw new LabError('slow needs --delay, --loss or --rate (say, slow n1 --rate 1mbit)');
  }
  return spec;
}

/** tc's words after `root` for a slow spec: netem for delay/loss, tbf for a rate alone. */
export function qdiscArgs(spec: SlowSpec): string[] {
  if (spec.delayMs === undefined && spec.lossPct === undefined) {
    const bits = spec.rateBits ?? 0;
    // A burst of at least 1/50 s of traffic (and 32 KiB): below rate/HZ tbf would not reach its rate.
    const burst = Math.max(32 * 1024, Math.ceil(bits / 8 / 50));
    return ['tbf', 'rate', `${bits}bit`, 'burst', String(burst), 'latency', '1s'];
  }
  return [
    'netem',
    ...(spec.delayMs !== undefined ? ['delay', `${spec.delayMs}ms`] : []),
    ...(spec.lossPct !== undefined ? ['loss', `${spec.lossPct}%`] : []),
    ...(spec.rateBits !== undefined ? ['rate', `${spec.rateBits}bit`] : []),
  ];
}

// Runs fn under the lab's lock with the named hosts (all of them when none
// is named and allByDefault), refusing unknown names before anything is done.
async function withHosts<T>(dir: string, names: readonly string[], fn: (hosts: NetHost[], all: NetHost[]) => Promise<T>, allByDefault = false): Promise<T> {
  const layout = labLayout(dir);
  return withLabLock(layout.dir, async () => {
    const state = requireState(layout);
    const all = netHosts(layout.dir, state);
    const unknown = names.filter((n) => !all.some((h) => h.name === n));
    if (unknown.length > 0) {
      throw new LabError(`no node or etcd member ${unknown.join(', ')} in the lab (there are: ${all.map((h) => h.name).join(', ')})`);
    }
    const hosts = names.length === 0 && allByDefault ? all : all.filter((h) => names.includes(h.name));
    const net = labNetwork(layout.dir);
    const missing = hosts.filter((h) => !existsSync(netnsPath(net, h.name)));
    if (missing.length > 0) {
      throw new LabError(`${missing.map((h) => h.name).join(', ')} has no network namespace of its own (a lab started before per-node networks? 'down' and 'up' again)`);
    }
    return fn(hosts, all);
  });
}

async function ip(...args: string[]): Promise<void> {
  await runOk(['ip', ...args], { timeoutMs: 10_000 });
}
