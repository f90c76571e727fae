// flotilla/discovery: announce, resolve and watch service endpoints kept in
// the registry under `services/<service>/<instance>` (docs/discovery.md).
export { Announcement, DEFAULT_TTL_SECONDS, MIN_TTL_SECONDS, type AnnounceOptions, type AnnouncementEvents } from './announcer.js';
export { EndpointCache, type ChangeListener, type EndpointChange } from './cache.js';
export { Discovery, ServiceWatch, type DiscoveryOptions, type EndpointSpec, type ServiceWatchEvents } from './client.js';
export { DEFAULT_DNS_DOMAIN, DEFAULT_DNS_TTL, DnsAnswerer, normalizeDomain, type EndpointSource } from './dns-answer.js';
export { DnsFront, parseListen, type DnsFrontOptions } from './dns-server.js';
export { DiscoveryNameError, checkInstance, checkService, defaultInstance, instanceLabel, parseHostPort } from './names.js';
export type { EndpointRecord } from '../registry/index.js';
