// The service's log: pino (the logger Fastify ships), JSON lines with an ISO time and the level's
// name. Operational lines go to stderr; one line per HTTP request or gRPC call goes to stdout (off
// with --quiet), so stdout can be shipped as an access log on its own. Both write synchronously:
// a line about a crash must not be lost with the process. Nothing personal is logged: request
// lines carry the method, the path, the status and the request id, never a body.
import { pino } from 'pino';

const options: pino.LoggerOptions = {
  base: null, // no pid or hostname in every line: the orchestrator adds where a line came from
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
};

/** Operational lines (start, stop, retries, errors), on stderr. */
export const log = pino(options, pino.destination({ fd: 2, sync: true }));
/** One line per HTTP request or gRPC call, on stdout. */
export const accessLog = pino(options, pino.destination({ fd: 1, sync: true }));

/** The service's log in the shape the libraries take (LedgerLog, KafkaLog): level, message, fields. */
export const logLine = (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void =>
  log[level](fields, msg);

/** An unexpected error, with its stack, for whoever runs the service (never sent to a client). */
export const logUnexpected = (msg: string, error: unknown, fields: Record<string, unknown> = {}): void =>
  log.error({ ...fields, error: String((error as Error)?.stack ?? error) }, msg);
