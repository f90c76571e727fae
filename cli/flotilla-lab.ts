#!/usr/bin/env node
// flotilla-lab: one-command local clusters of real systemd nodes (see
// docs/lab.md). etcd and systemd-nspawn nodes over an overlay of the host
// root, each running flotillad as a service, each in a network namespace of
// its own on the lab's bridge; network faults (cut, partition, slow, heal). The lab outlives
// this command; its state lives in one folder (--dir).
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { usageMessage } from '../src/ctl/usage.js';
import { down, up } from '../src/lab/cluster.js';
import { envFileText, LabError } from '../src/lab/lab-folder.js';
import { cut, heal, parseSides, parseSlow, partition, slow } from '../src/lab/faults.js';
import { addNode, killNode, nodeRecord, runningNode, stopNode } from '../src/lab/lab-nodes.js';
import { status, type LabStatus } from '../src/lab/lab-status.js';
import { DEFAULT_LAB_DIR, labLayout } from '../src/lab/lab-state.js';
import { LAB_ETCD_USER, readCredentials } from '../src/lab/lab-secure.js';
import { exitQuietlyOnClosedPipe, exitWhenFlushed } from '../src/process-exit.js';

const say = (line: string): void => void process.stdout.write(line + '\n');
const note = (line: string): void => void process.stderr.write(`flotilla-lab: ${line}\n`);

/** A usage error, already reported: exit code 2. */
class UsageExit extends Error {}

async function main(): Promise<void> {
  await yargs(hideBin(process.argv))
    // usageMessage() rewrites yargs' English messages, whatever LANG says.
    .detectLocale(false)
    .locale('en')
    .scriptName('flotilla-lab')
    .usage('$0 <command>\n\nLocal flotilla clusters of real systemd nodes (systemd-nspawn) and etcd, on a network of their own.')
    .parserConfiguration({ 'populate--': true })
    .option('dir', {
      type: 'string',
      default: process.env['FLOTILLA_LAB_DIR'] ?? DEFAULT_LAB_DIR,
      describe: 'state folder of the lab (env FLOTILLA_LAB_DIR)',
      // Given twice (an alias with --dir, then --dir again): the last one counts.
      coerce: (v: unknown): string => String(Array.isArray(v) ? v[v.length - 1] : v),
    })
    .command(
      'up',
      'start etcd and N nodes running flotillad',
      (y) =>
        y
          .option('nodes', { type: 'number', default: 3, describe: "number of nodes (n1, n2, ... at .11, .12, ... of the lab's range)" })
          .option('etcd-members', { type: 'number', default: 1, choices: [1, 3], describe: 'etcd cluster size' })
          .option('etcd-port', { type: 'number', default: 2379, describe: "etcd's client port on each member's address" })
          .option('metadata', { type: 'string', array: true, default: [], describe: 'k=v,... for every node, or NODE=k=v,... for one' })
          .option('secure', { type: 'boolean', default: false, describe: 'etcd with TLS, client certificates and authentication (certificates made with openssl)' }),
      async (argv) => {
        let aborted = false;
        const onInt = (): void => {
          if (aborted) process.exit(130); // second Ctrl-C: leave the rest to `down`
          aborted = true;
          note('interrupted: tearing down what was started (Ctrl-C again to leave it to `flotilla-lab down`)');
        };
        process.on('SIGINT', onInt);
        const result = await up({
          dir: argv.dir,
          nodes: argv.nodes,
          etcdMembers: argv['etcd-members'],
          etcdPort: argv['etcd-port'],
          metadata: argv.metadata.map(String),
          log: say,
          aborted: () => aborted,
          secure: argv.secure,
        });
        process.off('SIGINT', onInt);
        const endpoints = result.state.etcd.endpoints.join(',');
        const n = result.state.nodes.length;
        say(`\nlab up in ${(result.ms / 1000).toFixed(1)} s: ${n} node(s), etcd at ${endpoints}, state in ${result.state.dir}`);
        if (result.registered === undefined) {
          say('flotillad is not built (npm run build): the nodes run without it');
        } else if (result.registered.length < n) {
          say(`warning: only ${result.registered.length} of ${n} machines registered in etcd; see 'flotilla-lab logs NODE'`);
        } else {
          say(`all ${n} machines registered in etcd`);
        }
        const creds = readCredentials(result.state.dir);
        if (creds) say(`etcd requires TLS client certificates (CA, certificate and key in ${creds.dir}) and user ${LAB_ETCD_USER}'s password`);
        say('\nPoint flotctl at it:');
        for (const line of envFileText(result.state.etcd.endpoints, creds).trimEnd().split('\n')) {
          say(`  ${line.startsWith('export FLOTCTL_PASSWORD=') ? `export FLOTCTL_PASSWORD=... (in ${labLayout(argv.dir).envFile})` : line}`);
        }
        say(`  (or: source ${labLayout(argv.dir).envFile})`);
        if (!creds) say(`  flotctl --endpoint ${endpoints} list-machines`);
        else say(`  source ${labLayout(argv.dir).envFile}; flotctl list-machines`);
        say(`\nflotilla-lab status | exec NODE -- CMD | logs NODE | kill NODE | add [NODE] | cut/heal/partition/slow | down`);
      },
    )
    .command('down', 'end every process of the lab, unmount, delete its folder (idempotent)', (y) => y, async (argv) => {
      const dir = labLayout(argv.dir).dir;
      const report = await down(dir);
      if (!report.existed) say(`no lab in ${dir}: nothing to do`);
      else say(`lab down: killed ${report.killed.length} process(es), unmounted ${report.unmounted.length}, removed ${report.network.length} network namespace(s) and link(s), removed ${dir}`);
      if (!report.existed && report.network.length > 0) say(`removed what was left of its network: ${report.network.join(', ')}`);
    })
    .command(
      'status',
      'nodes (machine ID, address, state, flotillad) and etcd members',
      (y) => y.option('json', { type: 'boolean', default: false }),
      async (argv) => {
        const s = await status(argv.dir);
        if (argv.json) say(JSON.stringify(s, null, 2));
        else printStatus(s);
        if (!s.exists) process.exitCode = 3;
      },
    )
    .command(
      'exec <node> [cmd..]',
      'run a command in a node: exec n1 -- systemctl status',
      (y) => y.positional('node', { type: 'string', demandOption: true }).positional('cmd', { type: 'string', array: true }),
      async (argv) => {
        const dashes: unknown = argv['--'];
        const rest = Array.isArray(dashes) ? dashes.map(String) : [];
        const cmd = [...(argv.cmd ?? []).map(String), ...rest];
        const node = runningNode(argv.dir, argv.node);
        const command = node.enterCommand(cmd.length > 0 ? cmd : ['/bin/bash', '-l']);
        process.exitCode = await runInherited(command.argv, command.env);
      },
    )
    .command(
      'logs <node>',
      "the node's flotillad journal (or its console with --console)",
      (y) =>
        y
          .positional('node', { type: 'string', demandOption: true })
          .option('lines', { alias: 'n', type: 'number', describe: 'last N lines' })
          .option('follow', { alias: 'f', type: 'boolean', default: false })
          .option('console', { type: 'boolean', default: false, describe: "the node's console (systemd-nspawn's output)" }),
      async (argv) => {
        const record = nodeRecord(argv.dir, argv.node);
        const tail = argv.lines === undefined ? [] : ['-n', String(argv.lines)];
        const showConsole = (follow: boolean): Promise<number> =>
          runInherited(['tail', ...(follow ? ['-f'] : []), ...(tail.length ? tail : ['-n', '+1']), record.logFile]);
        if (argv.console) {
          process.exitCode = await showConsole(argv.follow);
          return;
        }
        let node;
        try {
          node = runningNode(argv.dir, argv.node);
        } catch (err) {
          // The console of a node that has ended, with -n as asked; it grows no more, so no -f.
          note(`${(err as Error).message}; showing its console log instead`);
          process.exitCode = await showConsole(false);
          return;
        }
        const command = node.enterCommand(['journalctl', '-u', 'flotillad.service', '--no-pager', ...tail, ...(argv.follow ? ['-f'] : [])]);
        process.exitCode = await runInherited(command.argv, command.env);
      },
    )
    .command('kill <node>', "machine death: SIGKILL the node's init, so every process in it dies at once", (y) => y.positional('node', { type: 'string', demandOption: true }), async (argv) => {
      await killNode(argv.dir, argv.node);
      say(`node ${argv.node} killed`);
    })
    .command('stop <node>', 'power a node off cleanly (flotillad withdraws its machine)', (y) => y.positional('node', { type: 'string', demandOption: true }), async (argv) => {
      await stopNode(argv.dir, argv.node);
      say(`node ${argv.node} stopped`);
    })
    .command(
      'add [node]',
      'boot one more node with the next address',
      (y) =>
        y
          .positional('node', { type: 'string', describe: 'its name (default n<next>)' })
          .option('metadata', { type: 'string', array: true, default: [], describe: 'k=v,... for the node' }),
      async (argv) => {
        const record = await addNode(argv.dir, argv.node, { metadata: argv.metadata.map(String), log: say });
        say(`node ${record.name}: ${record.ip}, machine ${record.machineId}, booted in ${(record.bootMs / 1000).toFixed(1)} s`);
      },
    )
    .command('cut <node>', 'cut a node or etcd member (etcd1, ...) off the network: it loses etcd, every node and the host', (y) => y.positional('node', { type: 'string', demandOption: true }), async (argv) => {
      await cut(argv.dir, argv.node);
      say(`${argv.node} cut off ('flotilla-lab heal ${argv.node}' to undo)`);
    })
    .command(
      'partition <sides..>',
      'split nodes and etcd members into sides that cannot reach each other: partition n1,etcd1 / n2,n3',
      (y) => y.positional('sides', { type: 'string', array: true, demandOption: true }),
      async (argv) => {
        const sides = parseSides(argv.sides.map(String));
        await partition(argv.dir, sides);
        say(`partitioned: ${sides.map((s) => s.join(',')).join(' / ')} ('flotilla-lab heal' to undo)`);
      },
    )
    .command(
      'slow <node>',
      'slow the traffic to and from a node or etcd member: --delay 200ms --loss 5% (netem) or --rate 1mbit (tbf)',
      (y) =>
        y
          .positional('node', { type: 'string', demandOption: true })
          .option('delay', { type: 'string', describe: 'added each way, e.g. 200ms (needs the kernel\'s netem)' })
          .option('loss', { type: 'string', describe: 'packets lost each way, e.g. 5% (needs the kernel\'s netem)' })
          .option('rate', { type: 'string', describe: 'rate limit each way, e.g. 1mbit or 500kbps' }),
      async (argv) => {
        await slow(argv.dir, argv.node, parseSlow({ delay: argv.delay, loss: argv.loss, rate: argv.rate }));
        say(`${argv.node} slowed ('flotilla-lab heal ${argv.node}' to undo)`);
      },
    )
    .command(
      'heal [nodes..]',
      'undo cut, partition and slow for the nodes and members named (all of them by default)',
      (y) => y.positional('nodes', { type: 'string', array: true }),
      async (argv) => {
        const healed = await heal(argv.dir, (argv.nodes ?? []).map(String));
        say(`healed ${healed.join(', ') || 'nothing'}`);
      },
    )
    .demandCommand(1, 'name a command: up, down, status, exec, logs, kill, stop, add, cut, partition, slow, heal')
    .strict()
    .help()
    .fail((msg, err) => {
      if (err) throw err;
      note(`${usageMessage(msg, hideBin(process.argv))} (see 'flotilla-lab --help')`);
      throw new UsageExit(msg);
    })
    .parseAsync();
}

function printStatus(s: LabStatus): void {
  if (!s.exists) {
    say(`no lab in ${s.dir}`);
    return;
  }
  say(`lab in ${s.dir}; etcd endpoints ${s.endpoints.join(',')}${s.secure ? ` (secure: TLS client certificates, user ${LAB_ETCD_USER} with a password)` : ''}`);
  if (s.network) say(`network ${s.network.subnet} on bridge ${s.network.bridge} (the host is ${s.network.hostIp})`);
  say('');
  const faults = (f: string[]): string => f.join('; ') || '-';
  table(
    ['NODE', 'MACHINE', 'IP', 'STATE', 'FLOTILLAD', 'REGISTERED', 'METADATA', 'FAULTS'],
    s.nodes.map((n) => [
      n.name,
      n.machineId,
      n.ip,
      n.state,
      n.flotillad,
      n.registered === undefined ? '?' : n.registered ? 'yes' : 'no',
      Object.entries(n.metadata).map(([k, v]) => `${k}=${v}`).join(',') || '-',
      faults(n.faults),
    ]),
  );
  say('');
  table(['ETCD', 'URL', 'PID', 'STATE', 'FAULTS'], s.etcd.map((m) => [m.name, m.clientUrl, m.pid === undefined ? '-' : String(m.pid), m.state, faults(m.faults)]));
}

function table(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  for (const row of [header, ...rows]) say(row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
}

// Runs argv with our terminal, resolving with its exit code.
function runInherited(argv: string[], env?: Record<string, string>): Promise<number> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.resolve(2);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: 'inherit', env: env ?? process.env });
    // Ctrl-C goes to the command in the node (it shares our terminal), not to us.
    const ignore = (): void => undefined;
    process.on('SIGINT', ignore);
    child.once('error', reject);
    child.once('exit', (code, sig) => {
      process.off('SIGINT', ignore);
      resolve(code ?? 128 + (sig === null ? 0 : constants.signals[sig]));
    });
  });
}

// `flotilla-lab status --json | head -1`: a closed pipe ends the process quietly.
exitQuietlyOnClosedPipe();
main().catch((err: unknown) => {
  if (err instanceof UsageExit) return exitWhenFlushed(2);
  const e = err as Error;
  note(e instanceof LabError ? e.message : e.message.split('\n').slice(0, 20).join('\n'));
  if (process.env['FLOTILLA_DEBUG']) process.stderr.write(`${e.stack ?? ''}\n`);
  return exitWhenFlushed(1);
});
