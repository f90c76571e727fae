// flotillad's HTTP API (fleet's v1 under /fleet/v1, and /metrics). See docs/api.md.
export { ApiCache } from './cache.js';
export { ClusterMetrics, type EngineProbe } from './cluster-metrics.js';
export { ApiError } from './errors.js';
export { API_PREFIX, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './handlers.js';
export { MAX_BODY_BYTES } from './body.js';
export { Gauge, MetricsRegistry, instrumentConnection } from './metrics.js';
export { ApiServer, DEFAULT_API_SOCKET, type ApiServerOptions } from './server.js';
export { ApiConfigError, checkTcpOptions, parseListen, type ApiTcpOptions } from './options.js';
export type { ApiMachine, ApiUnit, ApiUnitState, UnitOption } from './units.js';
