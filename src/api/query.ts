// Query strings: only the parameters an endpoint knows, each at most once.
import { badRequest } from './errors.js';

export function onlyParams(query: URLSearchParams, allowed: readonly string[]): void {
  const seen = new Set<string>();
  for (const key of query.keys()) {
    if (!allowed.includes(key)) throw badRequest(`unknown query parameter ${JSON.stringify(key)}${allowed.length ? `; allowed: ${allowed.join(', ')}` : ''}`);
    if (seen.has(key)) throw badRequest(`query parameter ${key} given twice`);
    seen.add(key);
  }
}
