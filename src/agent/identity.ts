// Who this machine is: its machine ID, boot ID, host name and public IP.
import { readFileSync } from 'node:fs';
import os from 'node:os';

export class IdentityError extends Error {
  override readonly name = 'IdentityError';
}

/** Reads a machine ID (32 hex characters) from /etc/machine-id or the configured file. */
export function readMachineId(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new IdentityError(`cannot read the machine ID from ${file}: ${(err as Error).message}`);
  }
  if (!/^[0-9a-f]{32}$/.test(text)) {
    throw new IdentityError(`${file} does not hold a machine ID (32 lower-case hex characters); run systemd-machine-id-setup`);
  }
  return text;
}

export function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * The address other machines reach this one at: the configured one, else
 * the first IPv4 address of the interface the default route goes through.
 */
export function detectPublicIp(configured: string | undefined, routes = readRoutes(), interfaces = os.networkInterfaces()): string {
  if (configured) return configured;
  const dflt = routes.find((r) => r.destination === '00000000');
  const iface = dflt ? interfaces[dflt.iface] : undefined;
  const v4 = iface?.find((a) => a.family === 'IPv4' && !a.internal);
  return v4?.address ?? '';
}

interface Route {
  iface: string;
  destination: string;
}

function readRoutes(): Route[] {
  try {
    return readFileSync('/proc/net/route', 'utf8')
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length > 2)
      .map((f) => ({ iface: f[0]!, destination: f[1]! }));
  } catch {
    return [];
  }
}
