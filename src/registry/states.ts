// The key spaces written under leases by the agents: unit states
// (`states/<unit>/<machine>`, what systemd says) and service endpoints
// (`services/<service>/<instance>`, for discovery). Both vanish with the
// lease of whoever published them.
import { WRITE_CONCURRENCY, inParallel } from './batch.js';
import { listDecoded, txn, type RegistryCtx } from './kv.js';
import type { RegistryLease } from './lease.js';
import { decode, encode, type EndpointRecord, type StateRecord } from './records.js';

// ---- states ----------------------------------------------------------

/** Publishes states each under its own lease, many per transaction. */
export async function publishStatesUnder(ctx: RegistryCtx, entries: readonly { state: StateRecord; leaseId: string }[]): Promise<void> {
  const { client, keys } = ctx;
  const chunks: (typeof entries)[] = [];
  for (let i = 0; i < entries.length; i += ctx.maxTxnOps) chunks.push(entries.slice(i, i + ctx.maxTxnOps));
  await inParallel(chunks, WRITE_CONCURRENCY, async (chunk) => {
    const ops = chunk.map(({ state: s, leaseId }) => client.put(keys.state(s.unit, s.machine)).value(encode(s)).lease(leaseId));
    await ctx.conn.call('publish states', () => txn(client, ops));
  });
}

export async function deleteStates(ctx: RegistryCtx, entries: readonly { unit: string; machine: string }[]): Promise<void> {
  const { client, keys } = ctx;
  for (let i = 0; i < entries.length; i += ctx.maxTxnOps) {
    const ops = entries.slice(i, i + ctx.maxTxnOps).map((e) => client.delete().key(keys.state(e.unit, e.machine)));
    await ctx.conn.call('delete states', () => txn(client, ops));
  }
}

export async function listStates(ctx: RegistryCtx, unit?: string): Promise<StateRecord[]> {
  return await listDecoded(ctx, unit ? ctx.keys.statesOf(unit) : ctx.keys.statesPrefix, decode.state);
}

// ---- services --------------------------------------------------------

/** Announces an endpoint for discovery, bound to the given lease. */
export async function announce(ctx: RegistryCtx, endpoint: EndpointRecord, lease: RegistryLease): Promise<void> {
  await ctx.conn.call(`announce ${endpoint.service}`, () =>
    ctx.client.put(ctx.keys.endpoint(endpoint.service, endpoint.instance)).value(encode(endpoint)).lease(lease.id),
  );
}

export async function withdrawEndpoint(ctx: RegistryCtx, service: string, instance: string): Promise<void> {
  await ctx.conn.call(`withdraw ${service}`, () => ctx.client.delete().key(ctx.keys.endpoint(service, instance)));
}

export async function listEndpoints(ctx: RegistryCtx, service?: string): Promise<EndpointRecord[]> {
  return await listDecoded(ctx, service ? ctx.keys.servicesOf(service) : ctx.keys.servicesPrefix, decode.endpoint);
}
