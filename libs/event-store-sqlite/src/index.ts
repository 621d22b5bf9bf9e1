export {
  SqliteEventStore,
  SqliteLogReader,
  StoreClosedError,
  StoreOverloadedError,
  type SqliteEventStoreOptions,
  type SqliteEventStoreStats,
} from './sqlite-event-store.js';
