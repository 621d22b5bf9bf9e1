// Small helpers of the Kafka adapter, exported for the service too: the default log (JSON lines
// on stderr), exponential backoff with jitter, and a sleep that an AbortSignal cuts short.
import type { BackoffOptions, KafkaLog } from './types.js';

/** JSON lines on stderr, like the rest of the service's own log. */
export const stderrLog: KafkaLog = (level, msg, fields) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
};

/** Exponential backoff with jitter: attempt 1 waits about initialMs, doubling up to maxMs. */
export function backoffMs(attempt: number, { initialMs, maxMs }: BackoffOptions): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** Waits ms, or less when the signal aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
