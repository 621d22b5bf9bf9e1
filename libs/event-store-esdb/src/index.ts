export {
  EsdbDeadlineExceededError,
  EsdbEventStore,
  EsdbStoreClosedError,
  EsdbUnavailableError,
  type EsdbEventStoreOptions,
} from './esdb-event-store.js';
