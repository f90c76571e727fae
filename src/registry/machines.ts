// The machines key space: presence (`machines/<id>`, under each agent's
// lease), dynamic metadata, drain marks and reported duplicate IDs.
// machinePresence also counts machines whose record this version cannot
// read. Registry.listMachines skips such records; a caller that asks "is
// this machine in the cluster?" (flotilla-lab's status and its wait for
// nodes to register) must still count them, since the key is the presence.
import { CAS_ATTEMPTS } from './batch.js';
import { DuplicateMachineError, RegistryConflictError } from './errors.js';
import { Keys } from './keys.js';
import { listDecoded, listPrefix, tryDecode, type RegistryCtx } from './kv.js';
import type { Registry } from './registry.js';
import type { RegistryLease } from './lease.js';
import { decode, encode, type DuplicateRecord, type MachineRecord } from './records.js';

/**
 * Registers this machine's presence under its lease. Refuses an ID held by
 * another live host; takes over a record left by this same host's earlier
 * run (same host name and boot ID) in one transaction that swaps the
 * record onto the new lease, so no revision shows the machine absent (a
 * gap in which the engine would move every unit). The old lease is left to
 * expire, not revoked: the states still bound to it stay until the agent
 * republishes them under the new lease. Proven by registry.test.ts "takes
 * over presence ... in one transaction".
 */
export async function registerMachine(ctx: RegistryCtx, record: MachineRecord, lease: RegistryLease): Promise<void> {
  const { client } = ctx;
  const key = ctx.keys.machine(record.id);
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    const res = await ctx.conn.call(`register machine ${record.id}`, () =>
      client
        .if(key, 'Create', '==', 0)
        .then(client.put(key).value(encode(record)).lease(lease.id))
        .else(client.get(key))
        .commit(),
    );
    if (res.succeeded) return;
    const kv = res.responses[0]?.response_range?.kvs[0];
    if (!kv) continue;
    if (kv.lease === lease.id) return; // already ours
    const other = tryDecode(ctx.log, decode.machine, key, kv.value.toString());
    const sameHost = other && other.bootId === record.bootId && other.hostname === record.hostname;
    if (!sameHost) throw new DuplicateMachineError(record.id, other ?? { publicIp: '', hostname: '' });
    ctx.log.info('taking over presence left by an earlier run of this machine', { machine: record.id });
    const swapped = await ctx.conn.call(`take over machine ${record.id}`, () =>
      client
        .if(key, 'Mod', '==', kv.mod_revision)
        .then(client.put(key).value(encode(record)).lease(lease.id))
        .commit(),
    );
    if (swapped.succeeded) return;
  }
  throw new RegistryConflictError(`machine ${record.id} presence kept changing; try again`);
}

/** Updates this machine's presence record (e.g. metadata after SIGHUP), keeping its lease. */
export async function updateMachine(ctx: RegistryCtx, record: MachineRecord, lease: RegistryLease): Promise<void> {
  const { client } = ctx;
  const key = ctx.keys.machine(record.id);
  const res = await ctx.conn.call(`update machine ${record.id}`, () =>
    client.if(key, 'Lease', '==', lease.id).then(client.put(key).value(encode(record)).lease(lease.id)).commit(),
  );
  if (!res.succeeded) throw new DuplicateMachineError(record.id, { publicIp: '', hostname: '' });
}

/** Removes this machine's presence (its lease's other keys stay until revoked). */
export async function withdrawMachine(ctx: RegistryCtx, id: string, lease: RegistryLease): Promise<void> {
  const { client } = ctx;
  const key = ctx.keys.machine(id);
  await ctx.conn.call(`withdraw machine ${id}`, () => client.if(key, 'Lease', '==', lease.id).then(client.delete().key(key)).commit());
}

export async function listMachines(ctx: RegistryCtx): Promise<MachineRecord[]> {
  return await listDecoded(ctx, ctx.keys.machinesPrefix, decode.machine);
}

/** Sets dynamic metadata of a machine; it outlives the machine's lease. */
export async function setMetadata(ctx: RegistryCtx, machine: string, key: string, value: string): Promise<void> {
  await ctx.conn.call('set metadata', () => ctx.client.put(ctx.keys.metadata(machine, key)).value(encode({ value })));
}

export async function deleteMetadata(ctx: RegistryCtx, machine: string, key: string): Promise<void> {
  await ctx.conn.call('delete metadata', () => ctx.client.delete().key(ctx.keys.metadata(machine, key)));
}

/** Dynamic metadata of every machine: machine -> key -> value. */
export async function listMetadata(ctx: RegistryCtx): Promise<Map<string, Record<string, string>>> {
  const prefix = ctx.keys.metadataPrefix;
  const page = await listPrefix(ctx, prefix);
  const out = new Map<string, Record<string, string>>();
  for (const kv of page.items) {
    const pair = Keys.splitPair(kv.key.slice(prefix.length));
    const rec = tryDecode(ctx.log, decode.metadata, kv.key, kv.value);
    if (!pair || !rec) continue;
    const m = out.get(pair[0]) ?? {};
    m[pair[1]] = rec.value;
    out.set(pair[0], m);
  }
  return out;
}

/** Marks a machine drained (the engine moves its units away and places none there) or clears the mark. */
export async function setDraining(ctx: RegistryCtx, machine: string, draining: boolean): Promise<void> {
  const key = ctx.keys.drain(machine);
  if (draining) await ctx.conn.call('drain machine', () => ctx.client.put(key).value(encode({ since: new Date().toISOString() })));
  else await ctx.conn.call('undrain machine', () => ctx.client.delete().key(key));
}

/** IDs of the machines marked drained (present or not). */
export async function listDraining(ctx: RegistryCtx): Promise<string[]> {
  const prefix = ctx.keys.drainPrefix;
  const page = await listPrefix(ctx, prefix);
  return page.items.filter((kv) => tryDecode(ctx.log, decode.drain, kv.key, kv.value)).map((kv) => kv.key.slice(prefix.length));
}

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
