// flotctl drain and undrain against a real etcd, a real engine and hollow
// machines: drain waits until each unit of the machine runs elsewhere.
import { describe, expect, it } from 'vitest';
import { useEtcd } from '../../helpers/etcd.js';
import { SERVICE, cli, cluster, unitDir } from './harness.js';

const etcd = useEtcd();

describe('flotctl drain', () => {
  it('moves every unit off the machine, waiting for each to run elsewhere; the machine takes none until undrain', async () => {
    const c = cli(etcd.endpoints);
    const hollow = await cluster(c, 3);
    const names = ['d1', 'd2', 'd3', 'd4', 'd5', 'd6'];
    const files = unitDir(Object.fromEntries(names.map((n) => [`${n}.service`, SERVICE(`/bin/${n}`)])));
    expect((await c.run(['start', ...names], { cwd: files.dir })).code).toBe(0);
    const target = hollow.ids[0]!;
    const on = (await c.registry.listDecisions()).filter((d) => d.machine === target).map((d) => d.unit).sort();
    expect(on.length).toBe(2);

    const r = await c.run(['drain', target.slice(0, 10)]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`Machine ${target} draining`);
    expect(lines.slice(1, -1).sort()).toEqual(on.map((u) => expect.stringMatching(new RegExp(`^Unit ${u.replace('.', '\\.')} launched on `))));
    expect(lines.at(-1)).toBe(`Machine ${target} drained: 2 units moved; it takes no unit until flotctl undrain`);
    const decisions = await c.registry.listDecisions();
    expect(decisions.filter((d) => d.machine === target)).toEqual([]);
    expect(decisions).toHaveLength(6);
    expect((await c.registry.listMachines()).map((m) => m.id)).toContain(target);

    expect((await c.run(['drain', 'ffff'])).stderr).toMatch(/^flotctl: no machine "ffff"; see flotctl list-machines\n$/);
    const u = await c.run(['undrain', target]);
    expect(u).toMatchObject({ code: 0, stdout: `Machine ${target} takes units again\n` });
    expect(await c.registry.listDraining()).toEqual([]);
  });
});
