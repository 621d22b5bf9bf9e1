// Store conditions a caller should retry, not report — the same list for HTTP (503 with
// Retry-After), gRPC (UNAVAILABLE) and the Kafka ingress (retried, never dead-lettered).
// A retry is always safe: settlement and reversal events have deterministic ids, so a command
// whose first attempt did reach the store is recognised and answered as a duplicate.

export const RETRYABLE_STORE_CODES = [
  'STORE_OVERLOADED', // the append queue is full (embedded store); nothing was recorded
  'STORE_CLOSED', // the service is shutting down; nothing was recorded
  'STORE_UNAVAILABLE', // EventStoreDB unreachable after the adapter's own retries
  'STORE_DEADLINE_EXCEEDED', // EventStoreDB did not answer in time; the append may or may not be recorded
  'STORE_CONTENDED', // other writers (instances) kept appending to the same stream first; nothing was recorded
] as const;
export type RetryableStoreCode = (typeof RETRYABLE_STORE_CODES)[number];

const CODES: ReadonlySet<string> = new Set(RETRYABLE_STORE_CODES);

/** The code of a retryable store condition, or undefined for any other error. */
export function retryableStoreCode(error: unknown): RetryableStoreCode | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CODES.has(code) ? (code as RetryableStoreCode) : undefined;
}

export const RETRY_MESSAGE = 'the store cannot take this command now; retry shortly (a retry is never recorded twice)';
