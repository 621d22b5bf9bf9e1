// How business rejections and edge failures look over HTTP: always `{code, message, details}`,
// never a stack trace.
import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import { DomainError, ErrorCode, Result } from '#domain';
import { RETRY_MESSAGE, retryableStoreCode } from '../shared/store-failures.js';
import { logUnexpected } from '../shared/log.js';

export const HTTP_STATUS: Record<ErrorCode, number> = {
  VALIDATION_FAILED: 400,
  INVALID_POLICY: 400,
  SETTLEMENT_NOT_FOUND: 404,
  VISIT_CONFLICT: 409,
  POLICY_VERSION_CONFLICT: 409,
  ALREADY_REVERSED: 409,
  ALLOCATION_CONFLICT: 409,
  NO_POLICY_IN_FORCE: 422,
  UNKNOWN_CATEGORY: 422,
  PERSON_DECEASED: 422,
  FORBIDDEN: 403,
  ADJUSTMENT_NOT_FOUND: 404,
  ADJUSTMENT_ALREADY_DECIDED: 409,
  ADJUSTMENT_OUT_OF_RANGE: 422,
  IDEMPOTENCY_KEY_REUSED: 422,
};

/** A rejection on its way to the client; thrown only between controller and filter. */
export class Rejected extends Error {
  constructor(
    readonly status: number,
    readonly body: { code: string; message: string; details: unknown[] },
  ) {
    super(body.message);
  }
}

export const rejected = (e: DomainError) => new Rejected(HTTP_STATUS[e.code], { code: e.code, message: e.message, details: e.details });
export const notFound = (what: string) => new Rejected(404, { code: 'NOT_FOUND', message: `${what} not found`, details: [] });
/** No credentials, or credentials that are not valid (http/actor.ts); never says which token was tried. */
export const unauthenticated = (message: string) => new Rejected(401, { code: 'UNAUTHENTICATED', message, details: [] });
export const forbidden = (message: string) => new Rejected(403, { code: 'FORBIDDEN', message, details: [] });

export function unwrap<T>(r: Result<T> | { ok: false; error: DomainError }): T {
  if (!r.ok) throw rejected(r.error);
  return (r as { value: T }).value;
}

interface Reply {
  status(code: number): Reply;
  header(k: string, v: string): Reply;
  send(body: unknown): void;
}
interface Req {
  medaidOutcome?: string;
  log?: { error(o: unknown): void };
}

@Catch()
export class ErrorFilter implements ExceptionFilter {
  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const reply = http.getResponse<Reply>();
    const request = http.getRequest<Req>();
    const { status, body } = toResponse(error);
    request.medaidOutcome = body.code;
    if (status === 503) reply.header('retry-after', String(RETRY_AFTER_SECONDS));
    if (status >= 500 && status !== 503) logUnexpected('unhandled error', error);
    reply.status(status).header('content-type', 'application/json; charset=utf-8').send(body);
  }
}

export const RETRY_AFTER_SECONDS = 1;

export function toResponse(error: unknown): { status: number; body: { code: string; message: string; details: unknown[] } } {
  if (error instanceof Rejected) return { status: error.status, body: error.body };
  const storeCode = retryableStoreCode(error);
  if (storeCode !== undefined) return { status: 503, body: { code: storeCode, message: RETRY_MESSAGE, details: [] } };
  if (error instanceof HttpException) {
    const status = error.getStatus();
    const code = status === 404 ? 'NOT_FOUND' : status === 413 ? 'PAYLOAD_TOO_LARGE' : status < 500 ? 'VALIDATION_FAILED' : 'INTERNAL';
    // Malformed bodies (not JSON, prototype keys, wrong content type) arrive here from the parser.
    const details = code === 'VALIDATION_FAILED' || code === 'PAYLOAD_TOO_LARGE' ? [{ field: '(body)', problem: error.message }] : [];
    return { status, body: { code, message: status < 500 ? error.message : 'internal error', details } };
  }
  const e = error as { statusCode?: number; code?: string; message?: string };
  // Fastify's own errors (malformed JSON, wrong content type, body too large) are client errors.
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    if (e.statusCode === 429)
      return { status: 429, body: { code: 'RATE_LIMITED', message: e.message ?? 'too many requests', details: [] } };
    const code = e.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : e.statusCode === 404 ? 'NOT_FOUND' : 'VALIDATION_FAILED';
    return {
      status: e.statusCode,
      body: { code, message: e.message ?? 'bad request', details: [{ field: '(body)', problem: e.message ?? 'bad request' }] },
    };
  }
  return { status: 500, body: { code: 'INTERNAL', message: 'internal error', details: [] } };
}
