// The systemd driver: connectSystemd() gives the D-Bus implementation of SystemdDriver.
export { connectSystemd, DbusSystemd, DEFAULT_UNIT_DIR, type DbusDriverOptions } from './dbus.js';
export { BusClosedError, SystemdError } from './errors.js';
export { JOB_RESULTS, type JobResult, type SystemdDriver, type UnitStatus } from './types.js';
