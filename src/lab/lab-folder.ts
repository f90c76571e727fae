// A lab's state folder as the commands use it: the marker that makes a
// folder the lab's (so down never deletes a folder that is not), lab.json
// required by every command on a running lab, and the files `up` writes for
// users: the env file pointing flotctl at the lab and the API token.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { credentialsEnvText, type LabCredentials } from './lab-secure.js';
import { readLabState, type LabLayout, type LabState } from './lab-state.js';

/** A refusal or failure worth one clear line to the user. */
export class LabError extends Error {
  override readonly name = 'LabError';
}

/** Marks a folder as a lab's, so down never deletes a folder that is not. */
const MARKER = '.flotilla-lab';

export function markDir(layout: LabLayout): void {
  mkdirSync(layout.dir, { recursive: true });
  writeFileSync(path.join(layout.dir, MARKER), 'flotilla-lab state folder: flotilla-lab down removes it\n');
}

export function assertLabFolder(layout: LabLayout): void {
  const entries = readdirSync(layout.dir);
  if (entries.length > 0 && !entries.includes(MARKER) && !entries.includes('lab.json')) {
    throw new LabError(`${layout.dir} is not a flotilla-lab folder (no ${MARKER}); refusing to touch it`);
  }
}

export function requireState(layout: LabLayout): LabState {
  const state = readLabState(layout);
  if (state === undefined) throw new LabError(`no lab in ${layout.dir} (start one with 'flotilla-lab up')`);
  return state;
}

/** `export` lines that point flotctl at the lab (with the credentials of a secure lab). */
export function envFileText(endpoints: readonly string[], creds?: LabCredentials): string {
  return `export FLOTCTL_ENDPOINT=${endpoints.join(',')}\nexport FLOTILLA_ETCD_SERVERS=${endpoints.join(',')}\n${creds ? credentialsEnvText(creds) : ''}`;
}

/** The `export` line that gives flotctl the nodes' API token (status, journal). */
export function apiEnvText(tokenFile: string): string {
  return `export FLOTCTL_API_TOKEN_FILE=${tokenFile}\n`;
}

/** The lab's API bearer token (random, mode 0600), in its state folder. */
export function apiTokenFile(layout: LabLayout): string {
  return path.join(layout.dir, 'api-token');
}

export function readApiToken(layout: LabLayout): string | undefined {
  try {
    return readFileSync(apiTokenFile(layout), 'utf8').trim() || undefined;
  } catch {
    return undefined; // a lab made before the API token: its nodes serve no API on TCP
  }
}
