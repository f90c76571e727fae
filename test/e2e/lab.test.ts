// flotilla-lab end to end, through its CLI as a user runs it: a lab
// outlives the command that started it; status, exec, kill and add work on
// it from later commands; down leaves no process, mount, folder, network namespace or link, is
// idempotent, and cleans up after a CLI killed half-way through `up` whose
// state file and node records are gone too.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existingLabCgroups } from '../../src/lab/cgroup.js';
import { down } from '../../src/lab/cluster.js';
import type { LabStatus } from '../../src/lab/lab-status.js';
import { freePorts } from '../../src/lab/etcd.js';
import { run, type RunResult } from '../../src/lab/exec.js';
import { labLayout, readLabState } from '../../src/lab/lab-state.js';
import { attachNode, cleanup, makeRunDir, mountsUnder, skipWithoutNodes } from '../../src/lab/nodes.js';
import { isAlive } from '../../src/lab/proc.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(repo, 'cli', 'flotilla-lab.ts');
const built = existsSync(path.join(repo, 'dist', 'cli', 'flotillad.js'));

describe.skipIf(skipWithoutNodes('flotilla-lab tests (test/e2e/lab.test.ts)'))('flotilla-lab', () => {
  let runDir = '';
  const strays: ChildProcess[] = [];

  beforeAll(() => {
    runDir = makeRunDir();
  });

  // Also after a failure: take down every lab of this run, then sweep.
  afterAll(async () => {
    for (const child of strays) child.kill('SIGKILL');
    if (!runDir) return;
    for (const entry of readdirSync(runDir)) {
      if (entry !== 'owner.json') await down(path.join(runDir, entry)).catch((err: unknown) => console.error(err));
    }
    await cleanup(runDir);
    if (mountsUnder(runDir).length === 0) rmSync(runDir, { recursive: true, force: true });
  });

  it('brings up a lab that outlives the CLI; status, exec, kill, add; down leaves nothing and is idempotent', async () => {
    const dir = path.join(runDir, 'lab');
    const [port = 0] = await freePorts('127.0.0.1', 1);
    const netBefore = await netSnapshot();
    const started = Date.now();
    const upped = await lab(dir, ['up', '--nodes', '2', '--etcd-members', '1', '--etcd-port', String(port), '--metadata', 'n1=role=web,zone=a']);
    expect(upped.code, upped.stderr + upped.stdout).toBe(0);
    console.log(`flotilla-lab up (2 nodes, 1 etcd member) took ${Date.now() - started} ms (CLI included)`);
    // The lab's own range: a /24 in 10/8 with the host at .1, etcd at .2, nodes from .11.
    const net = /network: bridge \S+ with (10\.\d+\.\d+\.)1 in /.exec(upped.stdout)?.[1] ?? 'none';
    const endpoint = `http://${net}2:${port}`;
    expect(upped.stdout).toContain(`FLOTCTL_ENDPOINT=${endpoint}`);

    // The CLI has exited; the lab runs on.
    let s = await status(dir);
    expect(s.exists).toBe(true);
    expect(s.etcd).toMatchObject([{ name: 'etcd1', clientUrl: endpoint, state: 'healthy', faults: [] }]);
    expect(s.nodes.map((n) => [n.name, n.ip, n.state])).toEqual([
      ['n1', `${net}11`, 'running'],
      ['n2', `${net}12`, 'running'],
    ]);
    expect(new Set(s.nodes.map((n) => n.machineId)).size).toBe(2);
    expect(s.nodes[0]?.metadata).toEqual({ role: 'web', zone: 'a' });
    expect(s.nodes[1]?.metadata).toEqual({});
    // flotillad is installed as a service with the lab's drop-in; it runs
    // (and its machine registers) once the checkout is built.
    expect(s.nodes.map((n) => n.flotillad)).toEqual(built ? ['active', 'active'] : ['inactive', 'inactive']);
    if (built) expect(s.nodes.map((n) => n.registered)).toEqual([true, true]);
    const table = await lab(dir, ['status']);
    expect(table.stdout).toMatch(new RegExp(`n1\\s+[0-9a-f]{32}\\s+${net.replaceAll('.', '\\.')}11\\s+running`));

    // exec runs in the node, with its identity, and passes the exit code on.
    const n2 = s.nodes[1];
    expect((await lab(dir, ['exec', 'n1', '--', 'hostname'])).stdout.trim()).toBe('n1');
    expect((await lab(dir, ['exec', 'n2', '--', 'cat', '/etc/machine-id'])).stdout.trim()).toBe(n2?.machineId);
    expect((await lab(dir, ['exec', 'n1', '--', 'sh', '-c', 'exit 7'])).code).toBe(7);
    const shown = await lab(dir, ['exec', 'n1', '--', 'systemctl', 'show', 'flotillad.service', '-p', 'LoadState', '-p', 'DropInPaths']);
    expect(shown.stdout).toContain('LoadState=loaded');
    expect(shown.stdout).toContain('flotillad.service.d/lab.conf');
    const conf = await lab(dir, ['exec', 'n1', '--', 'cat', '/etc/flotilla/flotilla.conf']);
    expect(conf.stdout).toContain(`etcd_servers=${endpoint}`);
    expect(conf.stdout).toContain(`public_ip=${net}11`);
    expect(conf.stdout).toContain('metadata=role=web,zone=a');
    // nodes are provisioned by vagrant/provision.sh, the path Vagrant VMs take
    expect(conf.stdout).toContain('# Written by provision.sh');
    expect((await lab(dir, ['logs', 'n1'])).code).toBe(0);

    // kill: every process of the node dies at once; the other node runs on.
    expect((await lab(dir, ['exec', 'n2', '--', 'systemd-run', '--unit=probe', 'sleep', '300'])).code).toBe(0);
    const node2 = attachNode(path.join(dir, 'nodes', 'n2'));
    const before = node2?.processes() ?? [];
    expect(nodeCgroups(dir)).toEqual(['n1', 'n2']);
    expect(before.length).toBeGreaterThanOrEqual(4); // nspawn, systemd, journald, sleep (and flotillad)
    const killed = await lab(dir, ['kill', 'n2']);
    expect(killed.code, killed.stderr).toBe(0);
    expect(before.filter(isAlive)).toEqual([]);
    expect(processesOf(path.join(dir, 'nodes', 'n2'), [n2?.machineId ?? 'none'])).toEqual([]);
    expect(nodeCgroups(dir)).toEqual(['n1']);
    s = await status(dir);
    expect(s.nodes.map((n) => [n.name, n.state, n.flotillad])).toEqual([
      ['n1', 'running', built ? 'active' : 'inactive'],
      ['n2', 'killed', '-'],
    ]);
    expect((await lab(dir, ['exec', 'n2', '--', 'true'])).stderr).toMatch(/not running/);

    // add boots a third node at the next address.
    const added = await lab(dir, ['add']);
    expect(added.code, added.stderr).toBe(0);
    s = await status(dir);
    expect(s.nodes.map((n) => [n.name, n.ip, n.state])).toEqual([
      ['n1', `${net}11`, 'running'],
      ['n2', `${net}12`, 'killed'],
      ['n3', `${net}13`, 'running'],
    ]);
    expect(new Set(s.nodes.map((n) => n.machineId)).size).toBe(3);
    const ids = s.nodes.map((n) => n.machineId);
    expect(processesOf(dir, ids).length).toBeGreaterThan(0);
    expect(nodeCgroups(dir)).toEqual(['n1', 'n3']);

    const downed = await lab(dir, ['down']);
    expect(downed.code, downed.stderr).toBe(0);
    expect(processesOf(dir, ids)).toEqual([]);
    expect(existingLabCgroups(labLayout(dir).nodesDir)).toEqual([]);
    expect(await findmntUnder(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    // Its range is gone from the host (no probe: with no route of its own, it would leave by the default route).
    expect((await run(['ip', '-4', 'route', 'show', 'table', 'all'])).stdout).not.toContain(endpoint.slice('http://'.length, endpoint.lastIndexOf('.')));
    // No namespace, veth or bridge of the lab is left.
    expect(await netSnapshot()).toEqual(netBefore);

    const again = await lab(dir, ['down']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing to do');
    expect((await lab(dir, ['status'])).code).toBe(3);
  });

  it.skipIf(!built)('systemctl reload flotillad applies metadata (status shows it) and logs what needs a restart; metadata typos are refused; logs -n of an ended node', async () => {
    const dir = path.join(runDir, 'reload');
    const [port = 0] = await freePorts('127.0.0.1', 1);
    // A NODE= spec for a node that is not booted is refused before anything starts.
    const typoUp = await lab(dir, ['up', '--nodes', '1', '--etcd-port', String(port), '--metadata', 'n9=role=x']);
    expect(typoUp.code).not.toBe(0);
    expect(typoUp.stderr).toContain('--metadata names node n9, which is not booted here (booting: n1)');
    expect(existsSync(dir)).toBe(false);

    const upped = await lab(dir, ['up', '--nodes', '1', '--etcd-port', String(port), '--metadata', 'n1=role=web']);
    expect(upped.code, upped.stderr + upped.stdout).toBe(0);
    expect((await status(dir)).nodes.map((n) => [n.name, n.registered, n.metadata])).toEqual([['n1', true, { role: 'web' }]]);

    // add NAME with --metadata for another name: refused, nothing booted.
    const typoAdd = await lab(dir, ['add', 'n6', '--metadata', 'n9=role=x']);
    expect(typoAdd.code).not.toBe(0);
    expect(typoAdd.stderr).toContain('--metadata names node n9, which is not booted here (booting: n6)');
    expect((await status(dir)).nodes.map((n) => n.name)).toEqual(['n1']);
    expect(existsSync(path.join(dir, 'nodes', 'n6'))).toBe(false);

    // Reload: metadata is applied, agent_ttl is logged as needing a restart.
    const pid = async (): Promise<string> => (await lab(dir, ['exec', 'n1', '--', 'systemctl', 'show', '-p', 'MainPID', '--value', 'flotillad'])).stdout.trim();
    const before = await pid();
    const edit = await lab(dir, ['exec', 'n1', '--', 'sed', '-i', '-e', 's/^metadata=.*/metadata=role=db/', '-e', 's/^agent_ttl=.*/agent_ttl=7/', '/etc/flotilla/flotilla.conf']);
    expect(edit.code, edit.stderr).toBe(0);
    const reload = await lab(dir, ['exec', 'n1', '--', 'systemctl', 'reload', 'flotillad']);
    expect(reload.code, reload.stderr).toBe(0);
    const journal = async (): Promise<Record<string, unknown>[]> =>
      (await lab(dir, ['exec', 'n1', '--', 'journalctl', '-u', 'flotillad', '-o', 'cat', '--no-pager'])).stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const deadline = Date.now() + 15_000;
    while (!(await journal()).some((l) => l['msg'] === 'configuration reloaded') && Date.now() < deadline) await sleep(200);
    const lines = await journal();
    expect(lines.filter((l) => l['msg'] === 'option changed; it takes effect after a restart').map((l) => [l['level'], l['option']])).toEqual([['warn', 'agent_ttl']]);
    expect(lines.find((l) => l['msg'] === 'configuration reloaded')).toMatchObject({ applied: 'metadata', unapplied: 'agent_ttl' });
    expect(await pid()).toBe(before); // reloaded, not restarted
    // status shows the metadata the machine runs with now (its record in etcd).
    expect((await status(dir)).nodes[0]?.metadata).toEqual({ role: 'db' });

    // Once the node has ended: its own flotilla.conf, and -n for its console.
    expect((await lab(dir, ['kill', 'n1'])).code).toBe(0);
    const gone = Date.now() + 20_000; // its presence in etcd expires after agent_ttl (5 s)
    while ((await status(dir)).nodes[0]?.registered !== false && Date.now() < gone) await sleep(500);
    expect((await status(dir)).nodes.map((n) => [n.state, n.registered, n.metadata])).toEqual([['killed', false, { role: 'db' }]]);
    const logs = await lab(dir, ['logs', 'n1', '-n', '3']);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stderr).toContain('showing its console log instead');
    expect(logs.stdout.trimEnd().split('\n')).toHaveLength(3);
    expect(readFileSync(path.join(dir, 'nodes', 'n1', 'nspawn.log'), 'utf8').trimEnd().split('\n').length).toBeGreaterThan(3);

    expect((await lab(dir, ['down'])).code).toBe(0);
  });

  it('down cleans up after a CLI killed during up, with the state file and node records gone', async () => {
    const dir = path.join(runDir, 'crashed');
    const [port = 0] = await freePorts('127.0.0.1', 1);
    const netBefore = await netSnapshot();
    const cli = spawn(process.execPath, ['--import', 'tsx', CLI, '--dir', dir, 'up', '--nodes', '3', '--etcd-port', String(port)], {
      cwd: repo,
      stdio: 'ignore',
    });
    strays.push(cli);
    // Kill it once the first node is recorded, while the next one boots.
    const deadline = Date.now() + 60_000;
    while ((readLabState(labLayout(dir))?.nodes.length ?? 0) < 1) {
      if (Date.now() > deadline || cli.exitCode !== null) throw new Error('up did not record a node in time');
      await sleep(20);
    }
    cli.kill('SIGKILL');
    await new Promise((resolve) => cli.once('exit', resolve));
    await sleep(300); // let a boot the CLI had started get going

    const ids = nodeFolders(dir).map((d) => readOr(path.join(d, 'upper', 'etc', 'machine-id')).trim()).filter(Boolean);
    expect(ids.length).toBeGreaterThanOrEqual(1);
    expect(processesOf(dir, ids).length).toBeGreaterThan(0);
    const endpoint = readLabState(labLayout(dir))?.etcd.endpoints[0] ?? 'none';
    expect(await netSnapshot()).not.toEqual(netBefore);
    // Lose every handle the lab keeps: what is left is what the kernel says.
    rmSync(labLayout(dir).stateFile);
    for (const d of nodeFolders(dir)) for (const f of ['node.json', 'nspawn.pid']) rmSync(path.join(d, f), { force: true });
    rmSync(path.join(labLayout(dir).etcdDir, 'etcd1', 'etcd.pid'), { force: true });
    rmSync(path.join(labLayout(dir).etcdDir, 'owner.pid'), { force: true });

    const downed = await lab(dir, ['down']);
    expect(downed.code, downed.stderr).toBe(0);
    expect(processesOf(dir, ids)).toEqual([]);
    expect(existingLabCgroups(labLayout(dir).nodesDir)).toEqual([]);
    expect(await findmntUnder(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    // Its range is gone from the host (no probe: with no route of its own, it would leave by the default route).
    expect((await run(['ip', '-4', 'route', 'show', 'table', 'all'])).stdout).not.toContain(endpoint.slice('http://'.length, endpoint.lastIndexOf('.')));
    expect(await netSnapshot()).toEqual(netBefore);
  });
});

// The nodes that have a cgroup of their own in the lab's (src/lab/cgroup.ts),
// the same in every hierarchy.
function nodeCgroups(dir: string): string[] {
  const lists = existingLabCgroups(labLayout(dir).nodesDir).map((group) =>
    readdirSync(group, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort().join(','),
  );
  const [first = '', ...rest] = lists;
  expect(rest.every((l) => l === first), lists.join(' / ')).toBe(true);
  return first === '' ? [] : first.split(',');
}

async function lab(dir: string, args: string[]): Promise<RunResult> {
  return run([process.execPath, '--import', 'tsx', CLI, '--dir', dir, ...args], { timeoutMs: 120_000 });
}

async function status(dir: string): Promise<LabStatus> {
  const result = await lab(dir, ['status', '--json']);
  return JSON.parse(result.stdout) as LabStatus;
}

// Every process of a lab by accounts independent of the lab's code: its
// command line names the lab's folder, or its root holds one of the nodes'
// machine IDs.
function processesOf(dir: string, machineIds: readonly string[]): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const pid = Number(entry);
    if (!isAlive(pid)) continue;
    const argv = readOr(`/proc/${pid}/cmdline`).split('\0');
    // The CLI's own --dir argument is the folder itself; the lab's processes name paths inside it.
    const namesDir = argv.some((a) => a.startsWith(dir + '/') || a.includes(`=${dir}/`));
    const inNode = machineIds.includes(readOr(`/proc/${pid}/root/etc/machine-id`).trim());
    if (namesDir || inNode) found.push(pid);
  }
  return found;
}

function nodeFolders(dir: string): string[] {
  const nodes = path.join(dir, 'nodes');
  return existsSync(nodes) ? readdirSync(nodes).map((n) => path.join(nodes, n)) : [];
}

async function findmntUnder(dir: string): Promise<string[]> {
  const result = await run(['findmnt', '-rn', '-o', 'TARGET']);
  return result.stdout.split('\n').filter((t) => t === dir || t.startsWith(dir + '/'));
}

// The host's network namespaces and links, as ip lists them.
async function netSnapshot(): Promise<{ namespaces: string[]; links: string[] }> {
  const namespaces = (await run(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean).sort();
  const links = (await run(['ip', '-br', 'link'])).stdout.split('\n').map((l) => (l.split(/\s+/)[0] ?? '').replace(/@.*/, '')).filter(Boolean).sort();
  return { namespaces, links };
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
