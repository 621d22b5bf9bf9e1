// The medaid domain: pure TypeScript, no framework, no I/O, no clock, no randomness.
export * from './primitives.js';
export * from './policy.js';
export * from './calculation.js';
export * from './person.js';
export * from './visit.js';
export * from './adjustment.js';
export * from './funds.js';
export * from './report.js';
export * from './report-year.js';
export * from './subsidy.js';
export * from './events.js';
