// The machines key space (`machines/<id>`), beyond Registry's own methods:
// which machines are present, including those whose record this version
// cannot read. Registry.listMachines skips such records; a caller that asks
// "is this machine in the cluster?" (flotilla-lab's status and its wait for
// nodes to register) must still count them, since the key is the presence.
import type { Registry } from './registry.js';
import { decode, type MachineRecord } from './records.js';

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
