// The ledger (总账): double-entry postings of every payout, reversal, adjustment, subsidy and
// allocation, in an append-only, hash-chained journal written by one checkpointed follower of
// the global event log. No framework here; sqlite-journal.ts is the one file that knows SQLite.
export * from './journal.js';
export * from './postings.js';
export * from './ledger-writer.js';
export * from './sqlite-journal.js';
export * from './journal-thread.js';
export * from './log-follower.js';
export * from './projections.js';
export * from './report-tables.js';
export * from './report-thread.js';
