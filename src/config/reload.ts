// What a SIGHUP can change: the daemon applies the options in LIVE_OPTIONS
// at run time and keeps running with its old value for every other option.
// The diff runs over every field of the configuration, so an option added
// later is reported as needing a restart until it is made live here.
import { isDeepStrictEqual } from 'node:util';
import { optionName, type DaemonConfig } from './config.js';

/** Fields the daemon applies on SIGHUP (src/daemon.ts reload()). */
export const LIVE_OPTIONS: ReadonlySet<keyof DaemonConfig> = new Set<keyof DaemonConfig>([
  'metadata',
  'publicIp',
  'verbosity',
  'dnsListen',
  'dnsDomain',
  'dnsTtl',
  // read when the daemon stops (src/daemon.ts stop())
  'shutdown',
]);

export interface ReloadPlan {
  /** The configuration to run with: the running one with the live options of the new one. */
  config: DaemonConfig;
  /** Option names (as in the file) whose new value is applied now. */
  applied: string[];
  /** Option names (as in the file) that changed but take effect only after a restart. */
  unapplied: string[];
}

/** Compares every option of the running and the re-read configuration. */
export function planReload(running: DaemonConfig, reread: DaemonConfig): ReloadPlan {
  const config: DaemonConfig = { ...running };
  const applied: string[] = [];
  const unapplied: string[] = [];
  const fields = new Set([...Object.keys(running), ...Object.keys(reread)] as (keyof DaemonConfig)[]);
  for (const field of fields) {
    if (isDeepStrictEqual(running[field], reread[field])) continue;
    if (LIVE_OPTIONS.has(field)) {
      setField(config, field, reread[field]);
      applied.push(optionName(field));
    } else {
      unapplied.push(optionName(field));
    }
  }
  return { config, applied: applied.sort(), unapplied: unapplied.sort() };
}

function setField<K extends keyof DaemonConfig>(config: DaemonConfig, field: K, value: DaemonConfig[K]): void {
  config[field] = value;
}
