// Self-fencing on real systemd nodes (issue 15.5): one node's flotillad talks
// to etcd through a proxy on loopback (as in scenarios-failures.test.ts: the
// nodes share the host's network namespace) and has agent_fence_after=3s.
// Cut off, it stops its unit after the fence, and the unit becomes active on
// the other node only after that. The order is read from the unit itself:
// it notes /proc/uptime when it starts and after its process ended
// (ExecStopPost); the nodes share the host's kernel, so the two compare.
import { afterAll, describe, expect, it } from 'vitest';
import { skipWithoutNodes } from '../../src/lab/nodes.js';
import { eventually, LabCluster } from '../helpers/lab-cluster.js';
import { startProxy, type CuttableProxy } from '../helpers/proxy.js';

const FENCE_S = 3;

describe.skipIf(skipWithoutNodes('self-fencing (test/e2e/fence.test.ts)'))('self-fencing on real nodes', () => {
  let c: LabCluster | undefined;
  let proxy: CuttableProxy | undefined;
  afterAll(async () => {
    proxy?.cut();
    await c?.close();
    await proxy?.close();
  });

  it('a node cut off from etcd with agent_fence_after stops its unit before it starts on the other node', async () => {
    c = await LabCluster.start({ nodes: 2 });
    const lab = c;
    const machines = async (): Promise<string[]> => (await lab.registry.listMachines()).map((m) => lab.nameOf(m.id) ?? m.id).sort();
    // The node with the lower machine ID gets the unit (least loaded, ties by ID).
    const [cut, other] = [...lab.running()].sort((a, b) => (lab.machineId(a) < lab.machineId(b) ? -1 : 1)) as [string, string];
    // On the lab's bridge: the nodes have networks of their own and no loopback path to the host.
    proxy = await startProxy(lab.endpoint, lab.hostIp);
    const before = await lab.show(cut, 'flotillad.service', 'MainPID');
    await lab.exec(cut, ['sed', '-i', `s|^etcd_servers=.*|etcd_servers=${proxy.url}|`, '/etc/flotilla/flotilla.conf']);
    await lab.exec(cut, ['sh', '-c', `echo agent_fence_after=${FENCE_S}s >> /etc/flotilla/flotilla.conf`]);
    await lab.exec(cut, ['systemctl', 'restart', 'flotillad.service'], { timeoutMs: 60_000 });
    await eventually(
      async () => (await lab.show(cut, 'flotillad.service', 'MainPID')) !== before && (await machines()).includes(cut),
      `${cut}'s flotillad back, through the proxy, fencing`,
    );

    const note = (what: string): string => `/bin/sh -c 'read up _ < /proc/uptime; echo "$$(uname -n) ${what} $$up" >> /var/tmp/fenced.log'`;
    lab.writeUnit(
      'fenced.service',
      `[Service]\nExecStartPre=${note('start')}\nExecStart=/bin/sleep 4001\nExecStopPost=${note('stop')}\n`,
    );
    await lab.ctl('start', 'fenced.service');
    expect(await lab.activeOn('fenced.service')).toEqual([cut]);

    const cutAt = Date.now();
    proxy.cut();
    await eventually(async () => (await lab.isActive(cut, 'fenced.service')) !== 'active', `fenced.service stopped on ${cut}`, 15_000);
    const stoppedAfterMs = Date.now() - cutAt;
    await eventually(async () => (await lab.isActive(other, 'fenced.service')) === 'active', `fenced.service active on ${other}`, 40_000);
    const startedAfterMs = Date.now() - cutAt;

    /** Seconds of uptime at which the unit noted `what` on `node`. */
    const noted = async (node: string, what: string): Promise<number[]> => {
      const host = await lab.sh(node, 'uname', '-n');
      return (await lab.sh(node, 'cat', '/var/tmp/fenced.log'))
        .split('\n')
        .map((l) => l.trim().split(' '))
        .filter(([h, w]) => h === host && w === what)
        .map(([, , up]) => Number(up));
    };
    const stoppedAt = (await noted(cut, 'stop')).at(-1)!;
    const startedAt = (await noted(other, 'start')).at(-1)!;
    console.log(
      `self-fencing: stopped on ${cut} ${stoppedAfterMs} ms after the cut, active on ${other} ${startedAfterMs} ms after it; ` +
        `the copy on ${other} started ${Math.round((startedAt - stoppedAt) * 1000)} ms after the one on ${cut} had ended`,
    );
    expect(stoppedAt).toBeGreaterThan(0);
    expect(startedAt).toBeGreaterThan(stoppedAt);
    expect(stoppedAfterMs).toBeLessThan((FENCE_S + 2) * 1000);
    // The engine saw the machine gone no sooner than the cut, and then held the unit for fence + 5 s.
    expect(startedAfterMs).toBeGreaterThan((FENCE_S + 5) * 1000);

    // Back: it does not start the unit again; the unit stays on the other node only.
    proxy.restore();
    await eventually(async () => (await machines()).includes(cut), `${cut} registered again`, 20_000);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await lab.activeOn('fenced.service')).toEqual([other]);
  }, 180_000);
});
