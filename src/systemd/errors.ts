// Errors of the systemd driver, with messages naming the call and the unit.
/** A D-Bus call to systemd failed; `dbusName` is the D-Bus error name (org.freedesktop.systemd1.NoSuchUnit, …). */
export class SystemdError extends Error {
  override readonly name = 'SystemdError';
  constructor(
    message: string,
    readonly dbusName?: string,
  ) {
    super(message);
  }
}

/** The bus connection was lost (or closed) before the call was answered. */
export class BusClosedError extends Error {
  override readonly name = 'BusClosedError';
}
