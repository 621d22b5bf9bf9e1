// PROTOCOL TEST DOUBLE — this is NOT EventStoreDB: an in-process gRPC server speaking the subset of
// EventStoreDB's public protocol that libs/event-store-esdb uses, for tests only (see esdb-double.ts).
export { EsdbDouble, type EsdbDoubleOptions } from './esdb-double.js';
