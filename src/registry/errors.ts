// Errors the registry reports, each with a message a user can act on.
import type { CauseKind, ConnectionCause } from './cause.js';

export class RegistryError extends Error {
  override name = 'RegistryError';
}

/** etcd could not be reached (or did not answer) within the request timeout; the cause says why (cause.ts). */
export class RegistryUnavailableError extends RegistryError {
  override name = 'RegistryUnavailableError';
  readonly kind: CauseKind;
  constructor(readonly endpoints: readonly string[], detail: string | ConnectionCause) {
    super(`etcd is unreachable at ${endpoints.join(', ')}: ${typeof detail === 'string' ? detail : detail.text}`);
    this.kind = typeof detail === 'string' ? 'other' : detail.kind;
  }
}

/** etcd refused the credentials or the operation. */
export class RegistryAuthError extends RegistryError {
  override name = 'RegistryAuthError';
}

export class UnitExistsError extends RegistryError {
  override name = 'UnitExistsError';
  constructor(readonly unit: string) {
    super(`unit ${unit} already exists with different contents; use --replace to replace it`);
  }
}

export class UnitNotFoundError extends RegistryError {
  override name = 'UnitNotFoundError';
  constructor(readonly units: readonly string[]) {
    super(units.length === 1 ? `unit ${units[0]} does not exist` : `units do not exist: ${units.join(', ')}`);
  }
}

export class DuplicateMachineError extends RegistryError {
  override name = 'DuplicateMachineError';
  constructor(
    readonly machine: string,
    /** The host holding the ID, as far as its record tells. */
    readonly other: { publicIp: string; hostname: string },
  ) {
    super(
      `machine ID ${machine} is already registered by ${other.hostname || 'another host'}` +
        `${other.publicIp ? ` (${other.publicIp})` : ''}; every machine needs its own /etc/machine-id ` +
        `(regenerate it with systemd-machine-id-setup after removing the file)`,
    );
  }
}

/** The caller is not (or no longer) the engine leader: nothing was written. */
export class NotLeaderError extends RegistryError {
  override name = 'NotLeaderError';
}

export class SchemaTooNewError extends RegistryError {
  override name = 'SchemaTooNewError';
  constructor(readonly found: number, readonly supported: number, prefix: string) {
    super(
      `the registry under ${prefix} uses layout version ${found}, newer than this flotilla understands ` +
        `(${supported}); upgrade flotilla before running it against this cluster`,
    );
  }
}

/** A write lost a race with another writer too many times. */
export class RegistryConflictError extends RegistryError {
  override name = 'RegistryConflictError';
}
