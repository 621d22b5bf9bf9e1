// How business rejections and edge failures look over gRPC — the one place that maps them.
// The status code says what kind of failure it is; the status message is medaid's message; the
// trailing metadata carries medaid's own code and details, so a client can act on exactly the
// codes of the HTTP API, and gRPC's rich error model carries the same (rich-status.ts). Never a stack trace.
//
//   VALIDATION_FAILED, INVALID_POLICY                          → INVALID_ARGUMENT   (HTTP 400)
//   SETTLEMENT_NOT_FOUND, NOT_FOUND                            → NOT_FOUND          (HTTP 404)
//   VISIT_CONFLICT, ALREADY_REVERSED, POLICY_VERSION_CONFLICT  → ABORTED            (HTTP 409: the command conflicts
//                                                                 with what is recorded; re-read before deciding again)
//   NO_POLICY_IN_FORCE, UNKNOWN_CATEGORY, PERSON_DECEASED      → FAILED_PRECONDITION (HTTP 422: the state must change
//                                                                 first — a policy published, a category defined …)
//   ADJUSTMENT_NOT_FOUND                                       → NOT_FOUND          (HTTP 404)
//   ADJUSTMENT_ALREADY_DECIDED                                 → ABORTED            (HTTP 409)
//   ADJUSTMENT_OUT_OF_RANGE, IDEMPOTENCY_KEY_REUSED            → FAILED_PRECONDITION (HTTP 422)
//   UNAUTHENTICATED                                            → UNAUTHENTICATED    (HTTP 401: no or unknown credentials)
//   FORBIDDEN                                                  → PERMISSION_DENIED  (HTTP 403: this actor may not do this)
//   STORE_OVERLOADED, STORE_CLOSED, STORE_UNAVAILABLE,
//   STORE_DEADLINE_EXCEEDED, STORE_CONTENDED,
//   IDENTITY_UNAVAILABLE (the JWKS cannot be fetched)          → UNAVAILABLE        (HTTP 503: retry shortly; a retry
//                                                                 is never recorded twice — shared/store-failures.ts)
//   anything else                                              → INTERNAL           (HTTP 500), message "internal error"
import { Catch } from '@nestjs/common';
import type { RpcExceptionFilter } from '@nestjs/common';
import { GrpcStatus } from '@nestjs/microservices';
import { Observable, throwError } from 'rxjs';
import type { DomainError, ErrorCode, ErrorDetail } from '#domain';
import { RETRY_MESSAGE, retryableStoreCode, type RetryableStoreCode } from '../shared/store-failures.js';
import { logUnexpected } from '../shared/log.js';
import { richStatus } from './rich-status.js';

export type MedaidErrorCode = ErrorCode | 'NOT_FOUND' | 'UNAUTHENTICATED' | 'IDENTITY_UNAVAILABLE' | RetryableStoreCode | 'INTERNAL';

export const GRPC_STATUS: Record<MedaidErrorCode, GrpcStatus> = {
  VALIDATION_FAILED: GrpcStatus.INVALID_ARGUMENT,
  INVALID_POLICY: GrpcStatus.INVALID_ARGUMENT,
  SETTLEMENT_NOT_FOUND: GrpcStatus.NOT_FOUND,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  VISIT_CONFLICT: GrpcStatus.ABORTED,
  ALREADY_REVERSED: GrpcStatus.ABORTED,
  ALLOCATION_CONFLICT: GrpcStatus.ABORTED,
  POLICY_VERSION_CONFLICT: GrpcStatus.ABORTED,
  NO_POLICY_IN_FORCE: GrpcStatus.FAILED_PRECONDITION,
  UNKNOWN_CATEGORY: GrpcStatus.FAILED_PRECONDITION,
  PERSON_DECEASED: GrpcStatus.FAILED_PRECONDITION,
  ADJUSTMENT_NOT_FOUND: GrpcStatus.NOT_FOUND,
  ADJUSTMENT_ALREADY_DECIDED: GrpcStatus.ABORTED,
  ADJUSTMENT_OUT_OF_RANGE: GrpcStatus.FAILED_PRECONDITION,
  IDEMPOTENCY_KEY_REUSED: GrpcStatus.FAILED_PRECONDITION,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  FORBIDDEN: GrpcStatus.PERMISSION_DENIED,
  STORE_OVERLOADED: GrpcStatus.UNAVAILABLE,
  STORE_CLOSED: GrpcStatus.UNAVAILABLE,
  STORE_UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  STORE_DEADLINE_EXCEEDED: GrpcStatus.UNAVAILABLE,
  STORE_CONTENDED: GrpcStatus.UNAVAILABLE,
  IDENTITY_UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  INTERNAL: GrpcStatus.INTERNAL,
};

export const ERROR_CODE_KEY = 'medaid-error-code';
export const ERROR_DETAILS_KEY = 'medaid-error-details';
/** gRPC's standard trailer for the rich error model (rich-status.ts). */
export const RICH_STATUS_KEY = 'grpc-status-details-bin';

/** Bounds on what one failure carries, so its trailers stay far below the 8 KiB metadata default. */
const MAX_DETAILS = 20;
const MAX_TEXT_CHARS = 300;

/** A failure as it goes on the wire: `code` and `details` are what grpc-js reads from an error. */
export interface GrpcFailure {
  code: GrpcStatus;
  details: string;
  /** Trailing metadata: printable ASCII values, as non-binary gRPC metadata must be, and the binary rich status. */
  metadata: Record<string, string | Buffer>;
  medaidCode: MedaidErrorCode;
}

/** A rejection on its way to the client; thrown only between controller and filter. */
export class GrpcRejected extends Error {
  constructor(readonly error: { code: MedaidErrorCode; message: string; details: ErrorDetail[] }) {
    super(error.message);
  }
}

export function unwrap<T>(r: { ok: true; value: T } | { ok: false; error: DomainError }): T {
  if (!r.ok) throw new GrpcRejected(r.error);
  return r.value;
}

export const notFound = (what: string) => new GrpcRejected({ code: 'NOT_FOUND', message: `${what} not found`, details: [] });

export function toGrpcFailure(error: unknown): GrpcFailure {
  if (error instanceof GrpcRejected) return failure(error.error.code, error.error.message, error.error.details);
  const storeCode = retryableStoreCode(error);
  if (storeCode !== undefined) return failure(storeCode, RETRY_MESSAGE, []);
  return failure('INTERNAL', 'internal error', []);
}

function failure(medaidCode: MedaidErrorCode, message: string, details: ErrorDetail[]): GrpcFailure {
  const bounded = details.slice(0, MAX_DETAILS).map((d) => ({ field: clip(d.field), problem: clip(d.problem) }));
  const code = GRPC_STATUS[medaidCode];
  return {
    code,
    details: clip(message),
    metadata: {
      [ERROR_CODE_KEY]: medaidCode,
      [ERROR_DETAILS_KEY]: asciiJson(bounded),
      [RICH_STATUS_KEY]: richStatus(code, clip(message), medaidCode, bounded),
    },
    medaidCode,
  };
}

export function isGrpcFailure(v: unknown): v is GrpcFailure {
  const f = v as Partial<GrpcFailure> | null;
  return typeof f?.code === 'number' && typeof f.details === 'string' && typeof f.medaidCode === 'string' && typeof f.metadata === 'object';
}

const clip = (text: string) => (text.length <= MAX_TEXT_CHARS ? text : `${text.slice(0, MAX_TEXT_CHARS - 1)}…`);

/** JSON with every character outside printable ASCII escaped (\uXXXX), so it is still the same JSON. */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Turns whatever a gRPC handler threw into its GrpcFailure; an unexpected one is logged here, not sent. */
@Catch()
export class GrpcErrorFilter implements RpcExceptionFilter {
  catch(error: unknown): Observable<never> {
    const f = toGrpcFailure(error);
    if (f.medaidCode === 'INTERNAL') {
      logUnexpected('unhandled error', error);
    }
    return throwError(() => f);
  }
}
