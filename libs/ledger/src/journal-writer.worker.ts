// Entry of the ledger journal's thread (started by JournalThread): owns the one write connection
// to ledger.sqlite and posts each batch it is sent in one transaction with the checkpoint.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { FromJournal, JournalWorkerData, ToJournal } from './journal-thread.js';
import { PolicyFunds, postBatch } from './ledger-writer.js';
import type { LedgerLog } from './ledger-writer.js';
import { LogFollower } from './log-follower.js';
import { SqliteJournal } from './sqlite-journal.js';

const data = workerData as Partial<JournalWorkerData> | null;
if (isMainThread || parentPort === null || data?.medaidLedgerJournal !== true || typeof data.path !== 'string') {
  throw new Error('journal-writer.worker.js runs only as the ledger journal thread (see JournalThread)');
}
const port = parentPort;

/**
 * The journal is a projection: it may lag behind the log and catch up, the settlements may not
 * wait. So on Linux this thread (a task of its own there) runs at a lower priority (nice 10): when
 * both cores are busy the scheduler gives the request path and the event store's writer the
 * larger share, and the journal the rest (never nothing: its lag shows in GET /ready as ledger.behind). A
 * best effort: elsewhere, or where it is refused, the thread keeps the process's priority.
 */
const JOURNAL_THREAD_NICE = 10;
function lowerThreadPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop()); // "<pid>/task/<tid>"
    if (Number.isSafeInteger(tid) && tid > 0) setPriority(tid, JOURNAL_THREAD_NICE);
  } catch {
    // not Linux, or not allowed: same priority as the rest
  }
}
lowerThreadPriority();
const reply = (message: FromJournal): void => port.postMessage(message);

let journal: SqliteJournal | undefined;
try {
  journal = SqliteJournal.open(data.path);
} catch (error) {
  reply({ type: 'open_failed', message: String((error as Error)?.message ?? error) });
  port.close();
}

if (journal !== undefined) {
  const open = journal;
  // Policies are learnt from the batches: PolicyPublished events pass through here, and the main
  // thread sends the layer funds of the versions a batch's settlements name.
  const funds = new PolicyFunds();
  // Or this thread follows the embedded log itself (see log-follower.ts), once told to.
  let follower: LogFollower | undefined;
  let closeLog = (): void => {};
  port.on('message', (message: ToJournal) => {
    switch (message.type) {
      case 'close':
        follower?.halt();
        closeLog();
        open.close();
        port.close();
        return;
      case 'follow':
        void follow(message).catch((error: unknown) => reply({ type: 'failed', message: String((error as Error)?.message ?? error) }));
        return;
      case 'wake':
        follower?.wake();
        return;
      case 'halt':
        follower?.halt();
        reply({ type: 'halted' });
        return;
      case 'post':
        try {
          for (const [policyId, version, layerFunds] of message.policies) funds.learn(policyId, version, layerFunds);
          reply({ type: 'posted', written: postBatch(open, message.events, funds) });
        } catch (error) {
          reply({ type: 'failed', message: String((error as Error)?.message ?? error) });
        }
    }
  });

  /** Opens the log read-only on this thread and follows it; the first status is the reply. */
  async function follow(message: Extract<ToJournal, { type: 'follow' }>): Promise<void> {
    if (follower !== undefined) throw new Error('the journal thread follows the log already');
    // Loaded only in this mode: the adapter is the embedded store's, and only its reader is used.
    const { SqliteLogReader } = await import('#event-store-sqlite');
    const reader = SqliteLogReader.open(message.eventsPath);
    closeLog = () => reader.close();
    // Logged by the other side, with the log its follower was given.
    const log: LedgerLog = (level, msg, fields = {}) => reply({ type: 'log', level, msg, fields });
    follower = new LogFollower(open, reader, message.options, (status) => reply({ type: 'status', ...status }), log);
    follower.start();
  }
  reply({ type: 'ready' });
}
