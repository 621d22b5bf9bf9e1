// Entry of the writer thread (started by GroupCommitter): owns the one write connection and runs
// each group commit it is sent, so the COMMIT's fsync happens off the main thread. Batches arrive
// one at a time (the main thread waits for each reply), so no queue is needed here.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { openWriteConnection } from './sqlite-connections.js';
import { writeBatch } from './write-batch.js';
import { errorInfo, type FromWriter, type ToWriter, type WriterWorkerData } from './writer-protocol.js';

const data = workerData as Partial<WriterWorkerData> | null;
if (isMainThread || parentPort === null || data?.medaidSqliteWriter !== true || typeof data.path !== 'string') {
  throw new Error('sqlite-writer.worker.js runs only as the event store writer thread (see GroupCommitter)');
}
const port = parentPort;
const reply = (message: FromWriter): void => port.postMessage(message);

let connection: ReturnType<typeof openWriteConnection> | undefined;
try {
  connection = openWriteConnection(data.path, data.tagRules ?? null);
} catch (error) {
  // e.g. an unsupported schema version: reported, so that open() rejects with the reason
  reply({ type: 'open_failed', error: errorInfo(error) });
  port.close();
}

if (connection !== undefined) {
  const conn = connection;
  port.on('message', (message: ToWriter) => {
    if (message.type === 'close') {
      conn.close(); // as the last connection, SQLite checkpoints the WAL here, off the main thread
      port.close(); // nothing left to keep the thread alive: it exits
      return;
    }
    try {
      reply(writeBatch(conn, message));
    } catch (error) {
      reply({ type: 'failed', error: errorInfo(error) });
    }
  });
  reply({ type: 'ready' });
}
