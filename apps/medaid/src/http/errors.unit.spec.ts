// How failures map to HTTP: business codes to their statuses, retryable store conditions to 503,
// anything unexpected to a 500 without internals.
import { describe, expect, it } from '@jest/globals';
import { RETRYABLE_STORE_CODES } from '../shared/store-failures.js';
import { HTTP_STATUS, rejected, toResponse } from './errors.js';

describe('toResponse', () => {
  it('maps each business code to its status', () => {
    for (const [code, status] of Object.entries(HTTP_STATUS)) {
      const r = toResponse(rejected({ code: code as keyof typeof HTTP_STATUS, message: 'm', details: [] }));
      expect([r.status, r.body.code]).toEqual([status, code]);
    }
  });

  it('answers 503 for every retryable store condition (full queue, closing, EventStoreDB unreachable or too slow), saying a retry is safe', () => {
    for (const code of RETRYABLE_STORE_CODES) {
      const error = Object.assign(new Error('queue full'), { code });
      const r = toResponse(error);
      expect([r.status, r.body.code]).toEqual([503, code]);
      expect(r.body.message).toMatch(/retry shortly/);
    }
  });

  it('hides everything about an unexpected error', () => {
    const r = toResponse(Object.assign(new Error('SQLITE_CORRUPT at /var/lib/medaid/events.sqlite'), { code: 'SQLITE_CORRUPT' }));
    expect(r).toEqual({ status: 500, body: { code: 'INTERNAL', message: 'internal error', details: [] } });
  });
});
