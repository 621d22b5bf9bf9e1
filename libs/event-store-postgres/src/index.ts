export {
  PostgresDeadlineExceededError,
  PostgresEventStore,
  PostgresStoreClosedError,
  PostgresStoreInUseError,
  PostgresUnavailableError,
  type PostgresEventStoreOptions,
} from './postgres-event-store.js';
