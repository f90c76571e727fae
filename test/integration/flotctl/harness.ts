// Running flotctl in-process against a real etcd, under a fresh key prefix
// per test, with a real engine and hollow machines publishing states.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { ApiServer } from '../../../src/api/index.js';
import { runFlotctl } from '../../../cli/flotctl/run.js';
import { captureIO } from '../../../src/ctl/io.js';
import { Engine } from '../../../src/engine/engine.js';
import { Informer, decode, type DecisionRecord, type Registry } from '../../../src/registry/index.js';
import { HollowCluster } from '../../helpers/hollow.js';
import { testRegistry, until } from '../../helpers/registry.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

/** A folder for local unit files, removed after the test. */
export function unitDir(files: Record<string, string | Uint8Array> = {}): { dir: string; write(name: string, text: string | Uint8Array): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flotctl-units-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string | Uint8Array): void => {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  };
  for (const [n, t] of Object.entries(files)) write(n, t);
  return { dir, write };
}

export interface Cli {
  registry: Registry;
  prefix: string;
  run(args: string[], opts?: { cwd?: string; tty?: boolean; env?: Record<string, string> }): Promise<CliResult>;
}

/**
 * Which driver the harness runs flotctl with: etcd, or with
 * FLOTCTL_TEST_DRIVER=api (test/integration/api-flotctl.test.ts) the API
 * driver against an API server on the same prefix.
 */
export const DRIVER = process.env['FLOTCTL_TEST_DRIVER'] === 'api' ? 'api' : 'etcd';

/** An API server (as flotillad runs it) on the registry's prefix, on a socket in a temporary folder. */
async function apiServer(registry: Registry): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flotctl-api-'));
  const socketPath = path.join(dir, 'api.sock');
  const server = new ApiServer({ registry, socketPath });
  onCleanup(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await server.start();
  return socketPath;
}

/** flotctl bound to a fresh prefix of this etcd. Attempts of --block-attempts last 250 ms here. */
export function cli(endpoints: string[]): Cli {
  const registry = testRegistry(endpoints);
  onCleanup(() => registry.close());
  const prefix = registry.keys.prefix;
  let socket: Promise<string> | undefined;
  return {
    registry,
    prefix,
    async run(args, opts = {}) {
      const io = captureIO({ cwd: opts.cwd, tty: opts.tty, env: opts.env ?? {} });
      const target = DRIVER === 'api' ? ['--driver', 'api', '--endpoint', `unix://${await (socket ??= apiServer(registry))}`] : ['--endpoint', endpoints.join(','), '--etcd-key-prefix', prefix];
      const code = await runFlotctl([...target, ...args], io, { attemptMs: 250 });
      return { code, stdout: io.stdout, stderr: io.stderr };
    },
  };
}

/** Every key under the CLI's prefix, sorted: to check that a refused command wrote nothing at all. */
export async function storedKeys(c: Cli): Promise<string[]> {
  return (await c.registry.client.getAll().prefix(c.prefix).keys()).sort();
}

/**
 * An engine and hollow machines on the CLI's prefix. Hollow machines only
 * acknowledge decisions; here a decision's removal also removes its state,
 * as a real agent does once it has unloaded the unit.
 */
export async function cluster(c: Cli, machines = 3, metadata?: (i: number) => Record<string, string>): Promise<HollowCluster> {
  const hollow = await HollowCluster.start(c.registry, { count: machines, ttlSeconds: 30, ...(metadata ? { metadata } : {}) });
  onCleanup(() => hollow.stop());
  const unloads = new Informer<DecisionRecord>(c.registry, c.registry.keys.schedulePrefix, decode.decision);
  unloads.subscribe((events) => {
    const gone = events.filter((e) => e.type === 'delete' && e.prev).map((e) => ({ unit: e.prev!.unit, machine: e.prev!.machine }));
    if (gone.length > 0) void c.registry.deleteStates(gone).catch(() => undefined);
  });
  await unloads.start();
  onCleanup(() => unloads.stop());
  const engine = new Engine({ registry: c.registry, id: 'engine-1', leaseTtlSeconds: 2, batchDelayMs: 2 });
  engine.start();
  onCleanup(() => engine.stop());
  await until(() => engine.leading, 10_000, 'engine leadership');
  return hollow;
}

export const SERVICE = (cmd = '/bin/sleep infinity', extra = ''): string => `[Unit]\nDescription=test unit\n\n[Service]\nExecStart=${cmd}\n${extra}`;
