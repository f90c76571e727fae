import { describe, expect, it } from 'vitest';
import { parseSides, parseSlow, qdiscArgs } from '../../../src/lab/faults.js';
import { etcdIp, labNetwork, netnsName, nodeIndexOf, nodeIp, overlaps, vethName } from '../../../src/lab/network.js';

describe("the lab's network plan", () => {
  it('derives a /24 in 10/8, the bridge and every name from the folder alone', () => {
    const a = labNetwork('/var/lib/flotilla-lab');
    expect(labNetwork('/var/lib/flotilla-lab/')).toEqual(a);
    expect(a.subnet).toMatch(/^10\.\d{1,3}\.\d{1,3}\.0\/24$/);
    expect(a.hostIp).toBe(a.subnet.replace('.0/24', '.1'));
    expect(a.bridge).toMatch(/^flab-[0-9a-f]{4}$/);
    const b = labNetwork('/tmp/other-lab');
    expect([b.subnet, b.bridge, netnsName(b, 'n1')]).not.toEqual([a.subnet, a.bridge, netnsName(a, 'n1')]);
    // Link names fit the kernel's 15 characters.
    expect(vethName(a, nodeIp(a, 244)).length).toBeLessThanOrEqual(15);
  });

  it('numbers hosts: etcd members .2-.4, nodes .11-.254, and back', () => {
    const net = labNetwork('/x');
    const p = net.hostIp.slice(0, -1);
    expect([etcdIp(net, 1), etcdIp(net, 3), nodeIp(net, 1), nodeIp(net, 244)]).toEqual([`${p}2`, `${p}4`, `${p}11`, `${p}254`]);
    expect(() => nodeIp(net, 245)).toThrow('out of range');
    expect(() => etcdIp(net, 4)).toThrow('out of range');
    expect(nodeIndexOf(net, `${p}13`)).toBe(3);
    expect(nodeIndexOf(net, `${p}2`)).toBeUndefined();
    expect(nodeIndexOf(net, '127.0.0.13')).toBeUndefined();
  });

  it('tells overlapping prefixes apart from disjoint ones', () => {
    expect(overlaps('10.1.2.0/24', '10.1.2.0/24')).toBe(true);
    expect(overlaps('10.0.0.0/8', '10.1.2.0/24')).toBe(true);
    expect(overlaps('10.1.2.7', '10.1.2.0/24')).toBe(true);
    expect(overlaps('10.1.3.0/24', '10.1.2.0/24')).toBe(false);
    expect(overlaps('192.0.2.0/24', '10.1.2.0/24')).toBe(false);
    expect(overlaps('0.0.0.0/0', '10.1.2.0/24')).toBe(true);
  });
});

describe("the lab's fault commands' arguments", () => {
  it('reads partition sides as words or one string', () => {
    expect(parseSides(['n1,n2', '/', 'n3'])).toEqual([['n1', 'n2'], ['n3']]);
    expect(parseSides(['n1,etcd1/n2', 'etcd2'])).toEqual([['n1', 'etcd1'], ['n2', 'etcd2']]);
    expect(parseSides(['n1', 'n2'])).toEqual([['n1', 'n2']]);
  });

  it('reads slow options and refuses bad ones with one message', () => {
    expect(parseSlow({ delay: '200ms', loss: '5%' })).toEqual({ delayMs: 200, lossPct: 5 });
    expect(parseSlow({ rate: '1mbit' })).toEqual({ rateBits: 1_000_000 });
    expect(parseSlow({ rate: '500kbps' })).toEqual({ rateBits: 4_000_000 });
    expect(() => parseSlow({})).toThrow('slow needs --delay, --loss or --rate');
    expect(() => parseSlow({ delay: '200' })).toThrow('--delay "200" is not a duration');
    expect(() => parseSlow({ loss: '120%' })).toThrow('--loss "120%" is not a percentage');
    expect(() => parseSlow({ rate: '1' })).toThrow('--rate "1" is not a rate');
  });

  it('chooses netem for delay and loss, tbf for a rate alone', () => {
    expect(qdiscArgs({ delayMs: 200, lossPct: 5 })).toEqual(['netem', 'delay', '200ms', 'loss', '5%']);
    expect(qdiscArgs({ delayMs: 50, rateBits: 1e6 })).toEqual(['netem', 'delay', '50ms', 'rate', '1000000bit']);
    expect(qdiscArgs({ rateBits: 1e6 })).toEqual(['tbf', 'rate', '1000000bit', 'burst', '32768', 'latency', '1s']);
    expect(qdiscArgs({ rateBits: 1e9 })[4]).toBe('2500000');
  });
});
