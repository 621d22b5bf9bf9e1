// Entry of the ledger journal's thread (started by JournalThread): owns the one write connection
// to ledger.sqlite and posts each batch it is sent in one transaction with the checkpoint.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { FromJournal, JournalWorkerData, ToJournal } from './journal-thread.js';
import { PolicyFunds, postBatch } from './ledger-writer.js';
import { SqliteJournal } from './sqlite-journal.js';

const data = workerData as Partial<JournalWorkerData> | null;
if (isMainThread || parentPort === null || data?.medaidLedgerJournal !== true || typeof data.path !== 'string') {
  throw new Error('journal-writer.worker.js runs only as the ledger journal thread (see JournalThread)');
}
const port = parentPort;
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
  port.on('message', (message: ToJournal) => {
    if (message.type === 'close') {
      open.close();
      port.close();
      return;
    }
    try {
      for (const [policyId, version, layerFunds] of message.policies) funds.learn(policyId, version, layerFunds);
      reply({ type: 'posted', written: postBatch(open, message.events, funds) });
    } catch (error) {
      reply({ type: 'failed', message: String((error as Error)?.message ?? error) });
    }
  });
  reply({ type: 'ready' });
}
