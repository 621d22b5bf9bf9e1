// How failures map to gRPC: each medaid code to its status, the code and details in the trailers
// as printable ASCII, retryable store conditions to UNAVAILABLE, anything unexpected to INTERNAL
// without internals.
import { describe, expect, it } from '@jest/globals';
import { GrpcStatus } from '@nestjs/microservices';
import { ERROR_CODES } from '#domain';
import { ERROR_CODE_KEY, ERROR_DETAILS_KEY, GRPC_STATUS, GrpcRejected, RICH_STATUS_KEY, asciiJson, toGrpcFailure } from './grpc-errors.js';
import { BAD_REQUEST, ERROR_INFO, RPC_STATUS } from './rich-status.js';

type RichStatus = { code: number; message: string; details: Array<{ typeUrl: string; value: Uint8Array }> };
import { RETRYABLE_STORE_CODES } from '../shared/store-failures.js';

describe('toGrpcFailure', () => {
  it('maps every business code of the contract, and NOT_FOUND, to the documented status', () => {
    const expected: Record<string, GrpcStatus> = {
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
      IDENTITY_UNAVAILABLE: GrpcStatus.UNAVAILABLE,
    };
    // Given every code the domain can reject with (so a new code cannot slip through unmapped)
    for (const code of [...ERROR_CODES, 'NOT_FOUND' as const, 'IDENTITY_UNAVAILABLE' as const]) {
      // when a rejection with that code is turned into a gRPC failure
      const f = toGrpcFailure(new GrpcRejected({ code, message: `m ${code}`, details: [{ field: 'visitId', problem: 'p' }] }));
      // then it has the status, the message, and the code and details in the trailers
      expect([code, f.code]).toEqual([code, expected[code]]);
      expect(f.details).toBe(`m ${code}`);
      expect(f.metadata).toMatchObject({ [ERROR_CODE_KEY]: code, [ERROR_DETAILS_KEY]: '[{"field":"visitId","problem":"p"}]' });
      // and the rich error model says the same: the status, ErrorInfo with the code, BadRequest with the field
      const status = RPC_STATUS.toObject(RPC_STATUS.decode(f.metadata[RICH_STATUS_KEY] as Buffer)) as RichStatus;
      expect([status.code, status.message]).toEqual([expected[code], `m ${code}`]);
      expect(status.details.map((d) => d.typeUrl)).toEqual([
        'type.googleapis.com/google.rpc.ErrorInfo',
        'type.googleapis.com/google.rpc.BadRequest',
      ]);
      expect(ERROR_INFO.toObject(ERROR_INFO.decode(status.details[0]!.value))).toEqual({ reason: code, domain: 'medaid.cn' });
      expect(BAD_REQUEST.toObject(BAD_REQUEST.decode(status.details[1]!.value))).toEqual({
        fieldViolations: [{ field: 'visitId', description: 'p' }],
      });
    }
    expect(Object.keys(GRPC_STATUS).sort()).toEqual([...Object.keys(expected), ...RETRYABLE_STORE_CODES, 'INTERNAL'].sort());
  });

  it('answers UNAVAILABLE for every retryable store condition, saying a retry is safe', () => {
    for (const code of RETRYABLE_STORE_CODES) {
      const f = toGrpcFailure(Object.assign(new Error('queue full'), { code }));
      expect([f.code, f.metadata[ERROR_CODE_KEY]]).toEqual([GrpcStatus.UNAVAILABLE, code]);
      expect(f.details).toMatch(/retry shortly/);
    }
  });

  it('hides everything about an unexpected error', () => {
    const f = toGrpcFailure(Object.assign(new Error('SQLITE_CORRUPT at /var/lib/medaid/events.sqlite'), { code: 'SQLITE_CORRUPT' }));
    expect(f).toEqual({
      code: GrpcStatus.INTERNAL,
      details: 'internal error',
      metadata: { [ERROR_CODE_KEY]: 'INTERNAL', [ERROR_DETAILS_KEY]: '[]', [RICH_STATUS_KEY]: expect.any(Buffer) },
      medaidCode: 'INTERNAL',
    });
    const status = RPC_STATUS.toObject(RPC_STATUS.decode(f.metadata[RICH_STATUS_KEY] as Buffer)) as RichStatus;
    expect(status.details).toHaveLength(1); // ErrorInfo only: no fields named
    expect(JSON.stringify(status)).not.toContain('SQLITE');
  });

  it('keeps the trailers printable ASCII and bounded, whatever the details say', () => {
    // Given details in Chinese, with a control character, and far too many of them
    const details = Array.from({ length: 100 }, (_, i) => ({ field: `f${i}`, problem: `撤销原因 ${'x'.repeat(1000)}\n` }));
    const f = toGrpcFailure(new GrpcRejected({ code: 'VALIDATION_FAILED', message: '结算撤销', details }));
    const json = f.metadata[ERROR_DETAILS_KEY] as string;
    // then the JSON is ASCII only, parses back to the same text, and is capped
    expect(json).toMatch(/^[\x20-\x7e]*$/);
    const parsed = JSON.parse(json) as Array<{ field: string; problem: string }>;
    expect(parsed).toHaveLength(20);
    expect(parsed[0]!.problem.startsWith('撤销原因 xxx')).toBe(true);
    expect(json.length).toBeLessThan(8 * 1024);
    expect(f.details).toBe('结算撤销');
  });
});

describe('asciiJson', () => {
  it('escapes what is not printable ASCII, including both halves of a surrogate pair', () => {
    expect(asciiJson({ a: '低保 😀' })).toBe('{"a":"\\u4f4e\\u4fdd \\ud83d\\ude00"}');
    expect(JSON.parse(asciiJson({ a: '低保 😀' }))).toEqual({ a: '低保 😀' });
  });
});
