// Which cgroup hierarchies a node gets a cgroup of its own in, and how those
// cgroups are named (src/lab/cgroup.ts); the e2e proof that they isolate
// nodes is test/e2e/node-cgroup.test.ts.
import { describe, expect, it } from 'vitest';
import { labCgroup, nodeCgroup, systemdHierarchies } from '../../../src/lab/cgroup.js';

const HYBRID = [
  '22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw',
  '30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '34 30 0:31 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory',
  '39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime shared:12 - cgroup cgroup rw,xattr,name=systemd',
  '40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate',
  '',
].join('\n');

describe('systemdHierarchies', () => {
  it('takes name=systemd and cgroup2 on a hybrid host, never a controller hierarchy', () => {
    expect(systemdHierarchies(HYBRID)).toEqual(['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified']);
  });

  it('takes the one hierarchy of a unified host', () => {
    expect(systemdHierarchies('30 22 0:27 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n'))
      .toEqual(['/sys/fs/cgroup']);
  });

  it('takes name=systemd alone on a legacy host, and undoes the kernel\'s escapes', () => {
    const legacy = '39 30 0:36 / /mnt/cg\\040sd rw - cgroup cgroup rw,name=systemd\n31 30 0:28 / /mnt/cpu rw - cgroup cgroup rw,cpu\n';
    expect(systemdHierarchies(legacy)).toEqual(['/mnt/cg sd']);
  });

  it('finds none where neither is mounted', () => {
    expect(systemdHierarchies('31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n')).toEqual([]);
  });
});

describe('cgroup names', () => {
  it('differ between labs in different folders and agree for one folder however it is written', () => {
    expect(labCgroup('/var/lib/flotilla-lab/nodes')).toMatch(/^\/flotilla-lab-[0-9a-f]{16}$/);
    expect(labCgroup('/var/lib/flotilla-lab/nodes')).not.toBe(labCgroup('/tmp/lab2/nodes'));
    expect(labCgroup('/var/lib/flotilla-lab/nodes/')).toBe(labCgroup('/var/lib/flotilla-lab/x/../nodes'));
  });

  it('put a node under its lab\'s cgroup, by its folder\'s name', () => {
    expect(nodeCgroup('/var/lib/flotilla-lab/nodes/n1')).toBe(`${labCgroup('/var/lib/flotilla-lab/nodes')}/n1`);
    expect(nodeCgroup('/tmp/lab2/nodes/n1')).not.toBe(nodeCgroup('/var/lib/flotilla-lab/nodes/n1'));
  });
});
