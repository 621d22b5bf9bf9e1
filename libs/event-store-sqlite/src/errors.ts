// Errors of the SQLite adapter beyond the port's own (WrongExpectedRevisionError, EventIdConflictError).

/** Back-pressure: the append queue is full; the caller should retry later (HTTP 503). */
export class StoreOverloadedError extends Error {
  readonly code = 'STORE_OVERLOADED';
  constructor(readonly maxPendingAppends: number) {
    super(`event store overloaded: ${maxPendingAppends} appends already pending, retry later`);
  }
}

export class StoreClosedError extends Error {
  readonly code = 'STORE_CLOSED';
  constructor() {
    super('event store is closed');
  }
}

/**
 * The writer thread died (or could not be reached). Appends that were in flight may or may not
 * have been committed — like a lost connection to a database server — so the caller must re-read
 * before retrying; an idempotent retry (same event ids) is always safe. Later appends fail with it.
 */
export class StoreWriterFailedError extends Error {
  readonly code = 'STORE_WRITER_FAILED';
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`event store writer thread failed: ${detail}`, options);
  }
}

/** A SQLite error from the writer thread, rebuilt on the main thread (the message and the SQLite code survive). */
export class SqliteWriteError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}
