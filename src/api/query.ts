// Query strings: only the parameters an endpoint knows, each at most once;
// and the system parameters every request of a Google-discovery API may
// carry, which fleet's clients send on /fleet/v1.
import { badRequest } from './errors.js';

export function onlyParams(query: URLSearchParams, allowed: readonly string[]): void {
  const seen = new Set<string>();
  for (const key of query.keys()) {
    if (!allowed.includes(key)) throw badRequest(`unknown query parameter ${JSON.stringify(key)}${allowed.length ? `; allowed: ${allowed.join(', ')}` : ''}`);
    if (seen.has(key)) throw badRequest(`query parameter ${key} given twice`);
    seen.add(key);
  }
}

/**
 * The standard parameters of a googleapi client (fleet's API is described
 * by a discovery document, and fleetctl's generated client adds `alt=json`
 * to every call; `fields`, `prettyPrint`, `quotaUser`, `userIp` and `trace`
 * are options of the same client). None changes the answer: it is always
 * the whole resource as JSON, which a client asking for some `fields` reads
 * as well.
 */
export const SYSTEM_PARAMS = ['alt', 'fields', 'prettyPrint', 'quotaUser', 'userIp', 'trace'] as const;

/**
 * Checks the system parameters of a /fleet/v1 request and returns the query
 * without them, for the endpoint's own onlyParams. `alt` other than `json`
 * (media, proto) is refused rather than answered in a format not asked for.
 */
export function withoutSystemParams(query: URLSearchParams): URLSearchParams {
  const rest = new URLSearchParams();
  const seen = new Set<string>();
  for (const [key, value] of query) {
    if (!(SYSTEM_PARAMS as readonly string[]).includes(key)) {
      rest.append(key, value);
      continue;
    }
    if (seen.has(key)) throw badRequest(`query parameter ${key} given twice`);
    seen.add(key);
    if (key === 'alt' && value !== 'json') throw badRequest(`alt=${value} is not supported: this API answers JSON only (alt=json)`);
    if (key === 'prettyPrint' && value !== 'true' && value !== 'false') throw badRequest('prettyPrint must be true or false');
  }
  return rest;
}
