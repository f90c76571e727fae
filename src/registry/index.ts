// The registry: the only code that knows etcd keys.
export { connect, mapError, DEFAULT_REQUEST_TIMEOUT_MS, type Connection, type ConnectionOptions } from './connection.js';
export * from './errors.js';
export { Informer, watchEventsReceived, type InformerEvent, type InformerHandler } from './informer.js';
export { DEFAULT_PREFIX, Keys, LAYOUT_VERSION, normalizePrefix } from './keys.js';
export { placementValue, type PlanOp, type PlanResult } from './plan.js';
export { formatLeaseId, type RegistryLease } from './lease.js';
export { listDuplicates, machineHolder, machinePresence, reportDuplicate, withdrawDuplicate } from './machines.js';
export * from './records.js';
export {
  Registry,
  type CreateOptions,
  type CreateResult,
  type LeaderToken,
  type Paged,
  type RawKV,
  type RegistryOptions,
  type UnitWithState,
} from './registry.js';
