// The machines key space (`machines/<id>`), beyond Registry's own methods:
// which machines are present, including those whose record this version
// cannot read. Registry.listMachines skips such records; a caller that asks
// "is this machine in the cluster?" (flotilla-lab's status and its wait for
// nodes to register) must still count them, since the key is the presence.
import type { Registry } from './registry.js';
import type { RegistryLease } from './lease.js';
import { decode, encode, type DuplicateRecord, type MachineRecord } from './records.js';

/**
 * Machine ID -> its record, for every machine with a presence key; the
 * record is undefined when it does not decode (records.ts), which
 * Registry.tryDecode logs with the registry's logger.
 */
export async function machinePresence(registry: Registry): Promise<Map<string, MachineRecord | undefined>> {
  const prefix = registry.keys.machinesPrefix;
  const page = await registry.listPrefix(prefix);
  return new Map(page.items.map((kv) => [kv.key.slice(prefix.length), registry.tryDecode(decode.machine, kv.key, kv.value)]));
}

/** Who holds a machine ID now: the lease its presence key is bound to, and its record (undefined when absent). */
export async function machineHolder(registry: Registry, id: string): Promise<{ lease: string; record: MachineRecord | undefined } | undefined> {
  const kv = await registry.getRaw(registry.keys.machine(id));
  return kv ? { lease: kv.lease, record: registry.tryDecode(decode.machine, kv.key, kv.value) } : undefined;
}

/** Tells the cluster this host has a machine ID another live host holds, for as long as the lease lives. */
export async function reportDuplicate(registry: Registry, record: DuplicateRecord, host: string, lease: RegistryLease): Promise<void> {
  const key = registry.keys.duplicate(record.machine, host);
  await registry.conn.call(`report duplicate machine ${record.machine}`, () => registry.client.put(key).value(encode(record)).lease(lease.id));
}

export async function withdrawDuplicate(registry: Registry, machine: string, host: string): Promise<void> {
  await registry.conn.call(`withdraw duplicate machine ${machine}`, () => registry.client.delete().key(registry.keys.duplicate(machine, host)));
}

/** Machine ID -> the hosts that have it too and do not act on it. */
export async function listDuplicates(registry: Registry): Promise<Map<string, DuplicateRecord[]>> {
  const page = await registry.listPrefix(registry.keys.duplicatesPrefix);
  const out = new Map<string, DuplicateRecord[]>();
  for (const kv of page.items) {
    const rec = registry.tryDecode(decode.duplicate, kv.key, kv.value);
    if (rec) out.set(rec.machine, [...(out.get(rec.machine) ?? []), rec]);
  }
  return out;
}
