// An API error: an HTTP status and a message, sent as
// {"error":{"code":<status>,"message":"..."}} (fleet's error entity).
import {
  RegistryAuthError,
  RegistryConflictError,
  RegistryUnavailableError,
  UnitExistsError,
  UnitNotFoundError,
} from '../registry/errors.js';
import { UnitError } from '../unit/index.js';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const badRequest = (message: string): ApiError => new ApiError(400, message);
export const notFound = (message: string): ApiError => new ApiError(404, message);

/** The status and message an error is answered with; anything unexpected is a 500. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof UnitError) return new ApiError(400, err.message);
  if (err instanceof UnitNotFoundError) return new ApiError(404, err.message);
  if (err instanceof UnitExistsError) return new ApiError(409, err.message);
  if (err instanceof RegistryConflictError) return new ApiError(409, err.message);
  if (err instanceof RegistryUnavailableError) return new ApiError(503, err.message);
  if (err instanceof RegistryAuthError) return new ApiError(503, err.message);
  return new ApiError(500, 'internal error');
}

export function errorBody(status: number, message: string): string {
  return JSON.stringify({ error: { code: status, message } });
}
